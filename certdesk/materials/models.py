"""Uploaded paperwork: one file per order and material slot."""

from __future__ import annotations

import secrets

from django.db import models
from django.utils.translation import gettext_lazy as _

from certdesk.catalog.models import MaterialKind
from certdesk.orders.models import Order


def _random_upload_path(instance: MaterialUpload, filename: str) -> str:
    # Never the customer's file name: random, unguessable, extension from the decoded format.
    return f"materials/{secrets.token_hex(2)}/{secrets.token_urlsafe(24)}.{instance.extension}"


class UploadChannel(models.TextChoices):
    PC = "pc", _("电脑上传")
    PHONE = "phone", _("手机扫码上传")


class MaterialUpload(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="uploads")
    kind = models.ForeignKey(MaterialKind, on_delete=models.PROTECT)
    file = models.FileField(upload_to=_random_upload_path, max_length=200)
    extension = models.CharField(max_length=8)
    content_type = models.CharField(max_length=32)
    original_name = models.CharField(max_length=255, blank=True)
    size = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    channel = models.CharField(max_length=8, choices=UploadChannel.choices, default=UploadChannel.PC)
    uploaded_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["order", "kind"], name="one_upload_per_slot")]
        verbose_name = _("上传资料")
        verbose_name_plural = _("上传资料")
