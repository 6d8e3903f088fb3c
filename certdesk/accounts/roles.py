"""Staff roles as Django groups with the order permissions they carry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import Group, Permission
from django.db import transaction

if TYPE_CHECKING:
    from certdesk.accounts.models import User

# group name → permission codenames on orders.Order
ROLES: dict[str, list[str]] = {
    "审核员": ["review_order", "view_order"],
    "制证员": ["issue_order", "view_order"],
    "客服": ["support_order", "view_order"],
    "管理员": ["review_order", "issue_order", "support_order", "view_order", "change_order"],
}
ROLE_REVIEWER, ROLE_ISSUER, ROLE_SUPPORT, ROLE_ADMIN = ROLES


@transaction.atomic
def staff_roles_ensure(**_: Any) -> None:
    """Create the role groups and give them their permissions; safe to run again (post_migrate)."""
    for name, codenames in ROLES.items():
        group, _created = Group.objects.get_or_create(name=name)
        permissions = Permission.objects.filter(content_type__app_label="orders", codename__in=codenames)
        group.permissions.add(*permissions)


def staff_permissions_preload(user: User) -> None:
    """Read the user's permissions, their own and their roles', in one query instead of ModelBackend's two.

    They go where ModelBackend keeps them for the rest of the request (`_perm_cache` on this user
    object, which lives as long as the request): `staff_required` and the staff menu's
    `perms.orders.*` then ask the database nothing more. Nothing outlives the request, so a role
    taken away counts from the next one, as before. Same set as ModelBackend.get_all_permissions.
    """
    if hasattr(user, "_perm_cache") or not user.is_active:
        return
    fields = ("content_type__app_label", "codename")
    if user.is_superuser:
        rows = Permission.objects.values_list(*fields)
    else:
        own = Permission.objects.filter(user=user).values_list(*fields).order_by()
        rows = own.union(Permission.objects.filter(group__user=user).values_list(*fields).order_by())
    user._perm_cache = {f"{app_label}.{codename}" for app_label, codename in rows}  # type: ignore[attr-defined]
