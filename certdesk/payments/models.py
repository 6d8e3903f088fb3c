"""Payments of orders: one row per merchant order number handed to a gateway,
the callbacks received, refunds, and the sandbox gateway's own ledger.

Every write to a Payment or Refund happens in `certdesk.payments.services`
under the order row lock (`certdesk.orders.services.order_lock`), so a
payment and its order always change together.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from certdesk.orders.models import Order


class PaymentStatus(models.TextChoices):
    PENDING = "pending", _("待支付")
    PAID = "paid", _("已支付")
    CLOSED = "closed", _("已关闭")
    EXPIRED = "expired", _("已过期")
    REFUNDED = "refunded", _("已退款")


OPEN_STATUSES = frozenset({PaymentStatus.PENDING})
PAID_STATUSES = frozenset({PaymentStatus.PAID, PaymentStatus.REFUNDED})


class Payment(models.Model):
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments", verbose_name=_("订单"))
    gateway = models.CharField(_("支付渠道"), max_length=16)
    merchant_no = models.CharField(_("商户订单号"), max_length=32, unique=True)
    amount_fen = models.PositiveIntegerField(_("金额（分）"))
    description = models.CharField(_("商品描述"), max_length=127)
    status = models.CharField(
        _("状态"), max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.PENDING, db_index=True
    )
    # What the customer scans: weixin://…, https://qr.alipay.com/…, or the sandbox page's path.
    code_url = models.CharField(_("二维码内容"), max_length=512, blank=True)
    gateway_txn_id = models.CharField(_("渠道交易号"), max_length=64, blank=True, db_index=True)
    expires_at = models.DateTimeField(_("失效时间"))
    paid_at = models.DateTimeField(_("支付时间"), null=True, blank=True, db_index=True)
    closed_at = models.DateTimeField(_("关闭时间"), null=True, blank=True)
    # True for the payment that moved the order to PAID; a paid payment without it was money
    # received when the order no longer expected it (paid twice, paid after cancel): refund it.
    settles_order = models.BooleanField(_("结清订单"), default=False)
    # The verified callback or query result that made it paid, kept for audit.
    gateway_data = models.JSONField(_("渠道数据"), default=dict, blank=True)
    last_queried_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("付款")
        verbose_name_plural = _("付款")
        indexes = [models.Index(fields=["order", "gateway", "status"])]
        constraints = [models.CheckConstraint(condition=models.Q(amount_fen__gt=0), name="payment_amount_positive")]
        permissions = [("refund_payment", _("办理退款"))]

    def __str__(self) -> str:
        return self.merchant_no


class PaymentCallback(models.Model):
    """Every callback as received, verified or not, and what became of it."""

    gateway = models.CharField(max_length=16)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    remote_addr = models.CharField(max_length=64, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    body = models.TextField(blank=True)
    verified = models.BooleanField(default=False)
    # paid · duplicate · surplus · ignored · rejected · error
    outcome = models.CharField(max_length=16, db_index=True)
    reason = models.CharField(max_length=64, blank=True)
    merchant_no = models.CharField(max_length=64, blank=True, db_index=True)
    payment = models.ForeignKey(Payment, on_delete=models.SET_NULL, null=True, blank=True, related_name="callbacks")

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = _("支付回调")
        verbose_name_plural = _("支付回调")

    def __str__(self) -> str:
        return f"{self.gateway} {self.merchant_no} {self.outcome}"


class RefundStatus(models.TextChoices):
    PENDING = "pending", _("待提交")
    PROCESSING = "processing", _("退款中")
    SUCCEEDED = "succeeded", _("已退款")
    FAILED = "failed", _("退款失败")


class Refund(models.Model):
    """A full refund of one payment. One per payment: its refund number is what makes
    retries safe (every gateway refunds a given refund number once)."""

    payment = models.OneToOneField(Payment, on_delete=models.PROTECT, related_name="refund")
    refund_no = models.CharField(_("退款单号"), max_length=64, unique=True)
    amount_fen = models.PositiveIntegerField(_("退款金额（分）"))
    status = models.CharField(
        _("状态"), max_length=16, choices=RefundStatus.choices, default=RefundStatus.PENDING, db_index=True
    )
    reason = models.CharField(_("退款原因"), max_length=200, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    gateway_refund_id = models.CharField(_("渠道退款单号"), max_length=64, blank=True)
    gateway_data = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("退款")
        verbose_name_plural = _("退款")

    def __str__(self) -> str:
        return self.refund_no


# The sandbox gateway's side: what a payment provider would keep on its own servers.


class SandboxTradeStatus(models.TextChoices):
    NOTPAY = "NOTPAY", _("未支付")
    SUCCESS = "SUCCESS", _("支付成功")
    CLOSED = "CLOSED", _("已关闭")
    REFUND = "REFUND", _("已退款")


class SandboxTrade(models.Model):
    merchant_id = models.CharField(max_length=64)
    merchant_no = models.CharField(max_length=64, unique=True)
    txn_id = models.CharField(max_length=64, unique=True)
    amount_fen = models.PositiveIntegerField()
    description = models.CharField(max_length=127)
    status = models.CharField(max_length=8, choices=SandboxTradeStatus.choices, default=SandboxTradeStatus.NOTPAY)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True, db_index=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("沙箱交易")
        verbose_name_plural = _("沙箱交易")

    def __str__(self) -> str:
        return self.merchant_no


class SandboxRefund(models.Model):
    trade = models.ForeignKey(SandboxTrade, on_delete=models.CASCADE, related_name="refunds")
    refund_no = models.CharField(max_length=64, unique=True)
    refund_id = models.CharField(max_length=64, unique=True)
    amount_fen = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("沙箱退款")
        verbose_name_plural = _("沙箱退款")

    def __str__(self) -> str:
        return self.refund_no


class SandboxKey(models.Model):
    """The sandbox's callback signing key (Ed25519), made on first use; it signs
    nothing but sandbox callbacks, and never leaves this database."""

    key_id = models.CharField(max_length=32, unique=True)
    private_key_pem = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("沙箱签名密钥")
        verbose_name_plural = _("沙箱签名密钥")

    def __str__(self) -> str:
        return self.key_id
