"""The key inventory in the Django admin. The sealed PINs are neither shown nor editable:
they are not in any field list, and the model marks them editable=False."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from certdesk.tokens.keymodels import key_unlock_method
from certdesk.tokens.models import UsbKey, UsbKeyCertificate

_UNLOCK_LABELS = {"online": "在线解锁", "remote": "远程协助", "unknown": "未知"}


class UsbKeyCertificateInline(admin.TabularInline):
    model = UsbKeyCertificate
    fields = ("serial_hex", "role", "not_after", "added_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(UsbKey)
class UsbKeyAdmin(admin.ModelAdmin):
    list_display = ("sn", "model", "vendor", "status", "owner_uscc", "unlock_method", "emulated", "issued_at")
    list_filter = ("status", "model", "emulated")
    search_fields = ("sn", "owner_uscc")
    # Status changes go through the services (row lock + audit), never through this form.
    fields = (
        "sn",
        "model",
        "vendor",
        "status",
        "owner_uscc",
        "issued_at",
        "status_changed_at",
        "emulated",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    inlines = [UsbKeyCertificateInline]

    @admin.display(description="解锁方式")
    def unlock_method(self, obj: UsbKey) -> str:
        return _UNLOCK_LABELS[key_unlock_method(obj.sn)]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Keys enter stock through `manage.py tokens_import` (the SO PIN must be sealed).
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
