"""Read-only views of CA state for staff. Every change goes through services (commands, the RA)."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from certdesk.pki.models import CertificateAuthority, Crl, IssuedCertificate


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CertificateAuthority)
class CertificateAuthorityAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "role",
        "status",
        "key_backend",
        "key_algorithm",
        "not_after",
        "crl_number",
        "next_crl_update",
    )
    list_filter = ("role", "status")
    exclude = ("certificate_der",)


@admin.register(IssuedCertificate)
class IssuedCertificateAdmin(ReadOnlyAdmin):
    list_display = (
        "serial",
        "profile",
        "status",
        "organisation_name",
        "uscc",
        "not_after",
        "revoked_at",
        "revocation_reason",
    )
    list_filter = ("status", "profile", "revocation_reason")
    search_fields = ("serial", "organisation_name", "uscc", "reference")
    exclude = ("public_key_der", "precertificate_der", "certificate_der")


@admin.register(Crl)
class CrlAdmin(ReadOnlyAdmin):
    list_display = ("issuer", "number", "this_update", "next_update", "entries")
    exclude = ("der",)
