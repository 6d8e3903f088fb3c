"""The RA's record of each certificate it asked the CA for, per order and role.

Written *before* the CA is asked (status REQUESTED, unique per order, role and
public key), so two agents racing, or a crash between issuance and writing to
the key, never lead to a second certificate for the same key."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from certdesk.orders.models import Order


class CertificateRole(models.TextChoices):
    SIGN = "sign", _("签名证书")
    ENC = "enc", _("加密证书")


PROFILE_FOR_ROLE = {CertificateRole.SIGN: "org-sign", CertificateRole.ENC: "org-enc"}


class OrderCertificate(models.Model):
    class Status(models.TextChoices):
        REQUESTED = "requested", _("已申请")
        ISSUED = "issued", _("已签发")
        INSTALLED = "installed", _("已写入Key")
        SUPERSEDED = "superseded", _("已被替换")
        REVOKED = "revoked", _("已注销")

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="certificates")
    role = models.CharField(max_length=8, choices=CertificateRole.choices)
    spki_sha256 = models.CharField(max_length=64)
    key_sn = models.CharField(max_length=32, blank=True, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.REQUESTED, db_index=True)
    serial = models.CharField(max_length=64, unique=True, null=True, blank=True)
    certificate_pem = models.TextField(blank=True)
    chain_pem = models.TextField(blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
    not_after = models.DateTimeField(null=True, blank=True, db_index=True)
    uscc = models.CharField(max_length=18, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    installed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["order", "role", "spki_sha256"], name="one_certificate_per_order_role_key")
        ]
