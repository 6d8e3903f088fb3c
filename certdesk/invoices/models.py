from django.db import models
from django.utils.translation import gettext_lazy as _

from certdesk.orders.models import InvoiceType, Order


class InvoiceStatus(models.TextChoices):
    PENDING = "pending", _("开具中")
    ISSUED = "issued", _("已开具")
    FAILED = "failed", _("开具失败")


class Invoice(models.Model):
    """One invoice per paid order, from the invoice information the customer entered."""

    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="invoice")
    invoice_type = models.CharField(_("发票类型"), max_length=10, choices=InvoiceType.choices)
    buyer_name = models.CharField(_("购买方名称"), max_length=100)
    buyer_taxpayer_id = models.CharField(_("纳税人识别号"), max_length=20, blank=True)
    buyer_address = models.CharField(max_length=200, blank=True)
    buyer_phone = models.CharField(max_length=30, blank=True)
    buyer_bank = models.CharField(max_length=100, blank=True)
    buyer_account = models.CharField(max_length=40, blank=True)
    email = models.EmailField(_("接收邮箱"))
    amount_fen = models.PositiveIntegerField(_("金额（分）"))
    status = models.CharField(max_length=10, choices=InvoiceStatus.choices, default=InvoiceStatus.PENDING)
    provider = models.CharField(max_length=32)
    number = models.CharField(_("发票号码"), max_length=32, blank=True, db_index=True)
    pdf = models.FileField(upload_to="invoices/", blank=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    sent_count = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("发票")
        verbose_name_plural = _("发票")
