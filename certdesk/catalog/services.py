"""Catalogue writes: the demo catalogue that `make run` loads."""

from __future__ import annotations

from django.db import transaction

from certdesk.catalog.models import (
    BusinessOffering,
    CertificateType,
    Industry,
    MaterialKind,
    ProjectCategory,
    Region,
    RequiredMaterial,
    SubProject,
)
from certdesk.core.choices import BusinessType

_UPLOAD_RULE = "支持 jpg、jpeg、bmp、gif、png 格式，图片大小不超过3M（3072KB），不能上传修改内容后的扫描件。"

MATERIAL_KINDS = {
    "application_form": (
        "数字证书申请表",
        "经办人需在证书申请表中签字，请把打印出来的数字证书申请表加盖公章，通过扫描件或拍照形成电子图片上传。",
    ),
    "seal_sample": ("签章取样表", "请把打印出来的签章取样表加盖公章，通过扫描件或拍照形成电子图片上传。"),
    "business_licence": (
        "工商营业执照/事业单位法人证书/统一社会信用代码证",
        "请打印营业执照（或事业单位法人证书等其他载有统一社会信用代码的机构证件）复印件加盖公章，通过扫描件或拍照形成电子图片上传。",
    ),
    "legal_rep_id": ("法人代表身份证", "请把打印出来的法人代表身份证加盖公章，通过扫描件或拍照形成电子图片上传。"),
    "agent_id": ("经办人身份证", "请把打印出来的经办人身份证加盖公章，通过扫描件或拍照形成电子图片上传。"),
    "situation_statement": ("情况说明", "请把打印出来的情况说明加盖公章，通过扫描件或拍照形成电子图片上传。"),
}

# The manual's materials per business type.
MATERIALS_BY_BUSINESS = {
    BusinessType.NEW: ["application_form", "seal_sample", "business_licence", "legal_rep_id", "agent_id"],
    BusinessType.REISSUE: ["application_form", "seal_sample", "business_licence", "legal_rep_id", "agent_id"],
    BusinessType.RENEW: ["application_form", "seal_sample", "business_licence", "legal_rep_id", "agent_id"],
    BusinessType.CHANGE: ["application_form", "seal_sample", "business_licence", "legal_rep_id", "agent_id"],
    BusinessType.UNLOCK: ["application_form", "agent_id"],
    BusinessType.REVOKE: ["application_form", "agent_id"],
    BusinessType.REDISPATCH: ["situation_statement", "agent_id"],
}

# region, industry, category, sub-project, [(certificate type code, name, years, fee/yr, key fee, dual)]
DEMO_TREE = [
    (
        ("chongqing", "重庆"),
        ("cq-public-resources", "公共资源交易"),
        ("cq-ggzy", "公共资源项目"),
        ("cq-ggzy-center", "重庆市公共资源交易中心"),
        [
            ("cq-ggzy-org", "机构证书（签名+加密）", [1, 2, 3], 30000, 10000, True),
            ("cq-ggzy-org-sign", "机构签名证书", [1, 2], 20000, 10000, False),
        ],
    ),
    (
        ("chongqing", "重庆"),
        ("cq-tax", "税务"),
        ("cq-etax", "电子税务局"),
        ("cq-etax-declare", "网上申报"),
        [("cq-etax-org", "机构证书", [1, 2, 3], 25000, 8000, False)],
    ),
    (
        ("beijing", "北京"),
        ("bj-procurement", "政府采购"),
        ("bj-gov-procure", "政府采购项目"),
        ("bj-ccgp", "北京市政府采购电子交易平台"),
        [("bj-ccgp-org", "机构证书（签名+加密）", [1, 2, 3, 5], 35000, 12000, True)],
    ),
]


@transaction.atomic
def catalog_load_demo() -> int:
    """Create or refresh the demo catalogue; safe to run again. Returns certificate types touched."""
    kinds = {}
    for code, (name, instructions) in MATERIAL_KINDS.items():
        kinds[code], _ = MaterialKind.objects.update_or_create(
            code=code, defaults={"name": name, "instructions": f"{instructions}{_UPLOAD_RULE}"}
        )
    touched = 0
    for order, (region, industry, category, sub_project, types) in enumerate(DEMO_TREE):
        region_obj, _ = Region.objects.update_or_create(code=region[0], defaults={"name": region[1]})
        industry_obj, _ = Industry.objects.update_or_create(
            code=industry[0], defaults={"name": industry[1], "region": region_obj, "sort_order": order}
        )
        category_obj, _ = ProjectCategory.objects.update_or_create(
            code=category[0], defaults={"name": category[1], "industry": industry_obj}
        )
        sub_obj, _ = SubProject.objects.update_or_create(
            code=sub_project[0], defaults={"name": sub_project[1], "category": category_obj}
        )
        for code, name, years, fee, key_fee, dual in types:
            cert_type, _ = CertificateType.objects.update_or_create(
                code=code,
                defaults={
                    "name": name,
                    "sub_project": sub_obj,
                    "validity_years": years,
                    "certificate_fee_fen": fee,
                    "key_fee_fen": key_fee,
                    "dual_certificate": dual,
                },
            )
            touched += 1
            for business_type, material_codes in MATERIALS_BY_BUSINESS.items():
                BusinessOffering.objects.get_or_create(certificate_type=cert_type, business_type=business_type)
                for position, material_code in enumerate(material_codes):
                    RequiredMaterial.objects.get_or_create(
                        certificate_type=cert_type,
                        business_type=business_type,
                        kind=kinds[material_code],
                        defaults={"sort_order": position},
                    )
    return touched
