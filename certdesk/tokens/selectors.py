"""Reads of the key inventory. None of them ever touches a sealed PIN."""

from __future__ import annotations

from django.db.models import QuerySet

from certdesk.tokens.models import UsbKey, UsbKeyStatus


def usb_key_get(*, sn: str) -> UsbKey | None:
    return UsbKey.objects.filter(sn=str(sn).strip()).first()


def usb_keys_in_stock_count(*, model: str = "") -> int:
    keys = UsbKey.objects.filter(status=UsbKeyStatus.IN_STOCK)
    if model:
        keys = keys.filter(model=model)
    return keys.count()


def usb_keys_of_owner(*, owner_uscc: str) -> QuerySet[UsbKey]:
    return UsbKey.objects.filter(owner_uscc=owner_uscc).prefetch_related("certificates").order_by("sn")
