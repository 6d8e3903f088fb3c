from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from certdesk.orders.models import Order


class Shipment(models.Model):
    """A parcel sent for an order. A redispatch adds another; the newest is current."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="shipments")
    courier = models.CharField(_("快递公司"), max_length=50)
    tracking_no = models.CharField(_("快递单号"), max_length=50)
    recipient_name = models.CharField(max_length=50)
    recipient_phone = models.CharField(max_length=11)
    address = models.CharField(max_length=200)
    shipped_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    shipped_at = models.DateTimeField()
    received_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-shipped_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["courier", "tracking_no"], name="uniq_tracking_no")]


class Pickup(models.Model):
    """自提: the code sent to the customer, checked at the counter. Only an HMAC is kept."""

    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="pickup")
    code_hmac = models.CharField(max_length=64)
    ready_at = models.DateTimeField()
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    handed_over_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    handed_over_at = models.DateTimeField(null=True, blank=True)


class KeyOperation(models.TextChoices):
    WRITE = "write", _("制证：写入新Key")
    DOWNLOAD = "download", _("下载证书到原Key")
    UNLOCK = "unlock", _("在线解锁")


class AgentPairing(models.Model):
    """A one-time code shown on an order page; the agent trades it for a session.
    Only an HMAC of the code is kept; it expires in minutes and works once."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="agent_pairings")
    operation = models.CharField(max_length=10, choices=KeyOperation.choices)
    code_hmac = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)


class AgentSession(models.Model):
    """What a paired agent may do: one order, one key, one operation, for a short time."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="agent_sessions")
    operation = models.CharField(max_length=10, choices=KeyOperation.choices)
    key_sn = models.CharField(max_length=32)
    token_hmac = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
