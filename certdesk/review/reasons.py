"""Reasons a reviewer picks from when refusing an order (plus free text)."""

REJECT_REASONS = {
    "unclear": "图片不清晰，请重新扫描或拍照上传",
    "no_seal": "未加盖单位公章",
    "no_signature": "经办人未在申请表上签字",
    "licence_mismatch": "与营业执照信息不一致",
    "id_mismatch": "与身份证信息不一致",
    "expired": "证件已过期",
    "wrong_material": "上传的材料与要求不符",
    "incomplete": "材料不完整（缺页或遮挡）",
    "other": "其他",
}
