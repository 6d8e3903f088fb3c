"""Staff roles as Django groups with the order permissions they carry."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db import transaction

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
