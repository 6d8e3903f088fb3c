"""USB keys (UKey, 证书盘) in stock and in customers' hands.

A key's administrator (SO) PIN is kept sealed (Fernet, `certdesk.core.sealing`)
in a plain text column that only `usb_key_so_pin_release_once` ever opens; the
model never exposes it unsealed, so loading a key, listing keys, the admin and
the logs never see it. The certificates on a key are recorded by serial number:
the CA engine keeps the certificates themselves.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from certdesk.core.models import TimeStampedModel


class UsbKeyStatus(models.TextChoices):
    IN_STOCK = "in_stock", _("在库")
    ISSUED = "issued", _("已发放")
    LOCKED = "locked", _("已锁定")
    LOST = "lost", _("已挂失")
    RETIRED = "retired", _("已报废")


class UsbKeyCertificateRole(models.TextChoices):
    SIGN = "sign", _("签名")
    ENC = "enc", _("加密")


class UsbKey(TimeStampedModel):
    sn = models.CharField(_("序列号"), max_length=32, unique=True)
    model = models.CharField(_("型号"), max_length=64)
    vendor = models.CharField(_("厂商"), max_length=64, blank=True)
    status = models.CharField(
        _("状态"), max_length=16, choices=UsbKeyStatus.choices, default=UsbKeyStatus.IN_STOCK, db_index=True
    )
    owner_uscc = models.CharField(_("持有单位统一社会信用代码"), max_length=18, blank=True, db_index=True)
    issued_at = models.DateTimeField(_("发放时间"), null=True, blank=True)
    status_changed_at = models.DateTimeField(_("状态变更时间"), null=True, blank=True)
    # Sealed with certdesk.core.sealing.seal; never plain, never in forms, logs or the admin.
    so_pin_sealed = models.TextField(editable=False)
    # When the current SO PIN was handed out for an unlock that has not been confirmed yet.
    so_pin_released_at = models.DateTimeField(null=True, blank=True, editable=False)
    initial_user_pin_sealed = models.TextField(blank=True, editable=False)
    emulated = models.BooleanField(_("模拟 Key（SoftHSM）"), default=False)

    class Meta:
        verbose_name = _("USB Key")
        verbose_name_plural = _("USB Key")
        ordering = ("sn",)

    def __str__(self) -> str:
        return f"{self.sn}（{self.model}）"

    def __repr__(self) -> str:
        return f"<UsbKey {self.sn} {self.status}>"


class UsbKeyCertificate(models.Model):
    key = models.ForeignKey(UsbKey, on_delete=models.CASCADE, related_name="certificates", verbose_name=_("USB Key"))
    serial_hex = models.CharField(_("证书序列号"), max_length=64)
    role = models.CharField(_("用途"), max_length=8, choices=UsbKeyCertificateRole.choices)
    not_after = models.DateTimeField(_("有效期至"))
    added_at = models.DateTimeField(_("写入时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("Key 中的证书")
        verbose_name_plural = _("Key 中的证书")
        constraints = [models.UniqueConstraint(fields=("key", "serial_hex"), name="tokens_cert_unique_per_key")]
        ordering = ("key", "not_after")

    def __str__(self) -> str:
        return f"{self.serial_hex}（{self.get_role_display()}）"
