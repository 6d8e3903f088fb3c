"""Orders (订单) of all seven business types and their event history.

Status changes happen only in `certdesk.orders.services`; each one is a
conditional update under a row lock that also writes an `OrderEvent` and an
audit record.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from certdesk.catalog.models import CertificateType
from certdesk.core.choices import BusinessType
from certdesk.core.sealing import SealedCharField


class OrderStatus(models.TextChoices):
    DRAFT = "draft", _("草稿")
    SUBMITTED = "submitted", _("待审核")
    REJECTED = "rejected", _("审核不通过")
    APPROVED = "approved", _("审核通过")
    AWAITING_PAYMENT = "awaiting_payment", _("待付款")
    PAID = "paid", _("已付款")
    TO_SHIP = "to_ship", _("待发货")
    SHIPPED = "shipped", _("已发货")
    AWAITING_PICKUP = "awaiting_pickup", _("待自提")
    READY_TO_DOWNLOAD = "ready_to_download", _("待下载")
    READY_TO_UNLOCK = "ready_to_unlock", _("待解锁")
    REMOTE_ASSISTANCE = "remote_assistance", _("远程协助")
    COMPLETED = "completed", _("完成")
    CANCELLED = "cancelled", _("已取消")
    REFUNDED = "refunded", _("已退款")


class InvoiceType(models.TextChoices):
    NORMAL = "normal", _("普通电子发票")
    SPECIAL = "special", _("增值税专用发票")


class DeliveryMethod(models.TextChoices):
    PICKUP = "pickup", _("自提")
    MAIL = "mail", _("邮寄")


class RevokeReason(models.TextChoices):
    KEY_LOST = "key_lost", _("USB Key 丢失")
    NO_LONGER_NEEDED = "no_longer_needed", _("不再需要该证书")


class Order(models.Model):
    number = models.CharField(_("订单号"), max_length=20, unique=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders")
    business_type = models.CharField(_("业务类型"), max_length=16, choices=BusinessType.choices)
    status = models.CharField(
        _("状态"), max_length=20, choices=OrderStatus.choices, default=OrderStatus.DRAFT, db_index=True
    )
    certificate_type = models.ForeignKey(CertificateType, on_delete=models.PROTECT, verbose_name=_("证书类别"))
    years = models.PositiveSmallIntegerField(_("有效期（年）"), default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # One working day after (re)submission, on the Chinese calendar; the review queue sorts by it.
    review_due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    agreement_accepted_at = models.DateTimeField(_("同意服务协议时间"), null=True, blank=True)

    # 证书信息
    cert_org_name = models.CharField(_("企业名称"), max_length=100, blank=True)
    cert_uscc = models.CharField(_("统一社会信用代码"), max_length=18, blank=True)
    # 单位信息
    org_name = models.CharField(_("单位名称"), max_length=100, blank=True)
    org_uscc = models.CharField(_("社会统一信用代码"), max_length=18, blank=True)
    legal_rep_name = models.CharField(_("法人姓名"), max_length=50, blank=True)
    legal_rep_id_number = SealedCharField(_("法人身份证号码"), blank=True)
    legal_rep_mobile = models.CharField(_("法人移动电话"), max_length=11, blank=True)
    office_phone = models.CharField(_("办公电话"), max_length=30, blank=True)
    website = models.CharField(_("企业网站"), max_length=200, blank=True)
    social_security_no = models.CharField(_("单位社保号"), max_length=30, blank=True)
    # 发票信息
    invoice_type = models.CharField(_("发票类型"), max_length=10, choices=InvoiceType.choices, blank=True)
    invoice_title = models.CharField(_("发票抬头"), max_length=100, blank=True)
    invoice_taxpayer_id = models.CharField(_("纳税人识别号"), max_length=20, blank=True)
    invoice_address = models.CharField(_("注册地址"), max_length=200, blank=True)
    invoice_phone = models.CharField(_("注册电话"), max_length=30, blank=True)
    invoice_bank = models.CharField(_("开户银行"), max_length=100, blank=True)
    invoice_account = models.CharField(_("银行账号"), max_length=40, blank=True)
    invoice_email = models.EmailField(_("接收发票邮箱"), blank=True)
    # 经办人信息
    agent_name = models.CharField(_("经办人姓名"), max_length=50, blank=True)
    agent_id_number = SealedCharField(_("经办人身份证号码"), blank=True)
    agent_mobile = models.CharField(_("经办人移动电话"), max_length=11, blank=True)
    agent_email = models.EmailField(_("经办人电子邮箱"), blank=True)
    agent_wechat = models.CharField(_("微信号"), max_length=50, blank=True)
    agent_qq = models.CharField(_("QQ号"), max_length=15, blank=True)
    # 领取方式
    delivery_method = models.CharField(_("领取方式"), max_length=10, choices=DeliveryMethod.choices, blank=True)
    recipient_name = models.CharField(_("收件人"), max_length=50, blank=True)
    recipient_phone = models.CharField(_("收件人电话"), max_length=11, blank=True)
    shipping_address = models.CharField(_("邮寄地址"), max_length=200, blank=True)

    # The USB key and certificate an order acts on (更新, 变更, 补办, 解锁, 注销), or the key written (新办).
    key_sn = models.CharField(_("USB Key 序列号"), max_length=32, blank=True, db_index=True)
    previous_serial = models.CharField(_("原证书序列号"), max_length=64, blank=True)
    revoke_reason = models.CharField(_("注销原因"), max_length=20, choices=RevokeReason.choices, blank=True)
    # For 改派: the order whose shipment is being redirected.
    related_order = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="follow_ups", verbose_name=_("原订单")
    )

    # Set by review; shown to the customer after 审核不通过.
    reject_reasons = models.JSONField(default=list, blank=True)
    amount_fen = models.PositiveIntegerField(_("应付金额（分）"), default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("订单")
        verbose_name_plural = _("订单")
        indexes = [
            models.Index(fields=["owner", "-created_at"]),
            models.Index(fields=["status", "review_due_at"]),
        ]
        permissions = [
            ("review_order", _("审核订单")),
            ("issue_order", _("制证与发货")),
            ("support_order", _("客服：远程协助与查询")),
        ]

    def __str__(self) -> str:
        return self.number


# What each event kind means to a person reading the order's history.
EVENT_LABELS = {
    "created": _("创建订单"),
    "info_saved": _("保存录入信息"),
    "agreement_accepted": _("同意《数字证书服务协议》"),
    "material_uploaded": _("上传资料"),
    "submitted": _("提交审核"),
    "resubmitted": _("修改后重新提交"),
    "review_claimed": _("审核员领取"),
    "review_released": _("审核员释放"),
    "approved": _("审核通过"),
    "rejected": _("审核不通过"),
    "cancelled": _("取消订单"),
    "paid": _("付款成功"),
    "key_written": _("证书已写入USB Key"),
    "agent_pairing": _("生成 Key 配对码"),
    "agent_paired": _("Key 已配对"),
    "certificate_issued": _("证书已签发"),
    "certificate_superseded": _("证书已被替换"),
    "certificate_revoked": _("证书已注销"),
    "certificate_downloaded": _("证书已下载到USB Key"),
    "unlock_started": _("开始在线解锁"),
    "unlocked": _("解锁完成"),
    "unlock_failed": _("在线解锁失败，转远程协助"),
    "ready_to_download": _("可下载证书"),
    "ready_to_unlock": _("可在线解锁"),
    "remote_assistance": _("转客服远程协助"),
    "revoked": _("证书已注销"),
    "redispatch_ready": _("待重新发货"),
    "assistance_done": _("远程协助完成"),
    "redispatched": _("已改派"),
    "shipped": _("已发货"),
    "ready_for_pickup": _("可自提"),
    "picked_up": _("已自提"),
    "received": _("确认收货"),
    "auto_received": _("自动确认收货"),
    "refunded": _("已退款"),
}


class OrderEvent(models.Model):
    """One row per step of an order's life: who, when, from what to what, why."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=40)
    from_status = models.CharField(max_length=20, choices=OrderStatus.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=OrderStatus.choices, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    note = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("订单事件")
        verbose_name_plural = _("订单事件")

    @property
    def kind_label(self) -> str:
        return str(EVENT_LABELS.get(self.kind, self.kind))
