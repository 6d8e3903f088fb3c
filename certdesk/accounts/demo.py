"""Demo accounts for `make run` (demo mode only)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import Group
from django.db import transaction

from certdesk.accounts.models import User
from certdesk.accounts.roles import ROLE_ADMIN, ROLE_ISSUER, ROLE_REVIEWER, ROLE_SUPPORT, staff_roles_ensure


@dataclass(frozen=True)
class DemoAccount:
    mobile: str
    password: str
    role: str
    group: str = ""
    is_superuser: bool = False

    @property
    def is_staff(self) -> bool:
        return bool(self.group) or self.is_superuser


DEMO_ACCOUNTS = (
    DemoAccount("13800138000", "Demo-Customer-2026", "客户（证书申请单位经办人）"),
    DemoAccount("13900139001", "Demo-Reviewer-2026", "审核员（/staff/）", group=ROLE_REVIEWER),
    DemoAccount("13900139002", "Demo-Issuer-2026", "制证员（/staff/）", group=ROLE_ISSUER),
    DemoAccount("13900139003", "Demo-Support-2026", "客服（/staff/）", group=ROLE_SUPPORT),
    DemoAccount(
        "13900139000", "Demo-Admin-2026", "管理员（/staff/ 与 /staff/admin/）", group=ROLE_ADMIN, is_superuser=True
    ),
)


@transaction.atomic
def demo_accounts_ensure() -> list[DemoAccount]:
    """Create the demo accounts, or reset their passwords; safe to run again."""
    staff_roles_ensure()
    for account in DEMO_ACCOUNTS:
        user, _ = User.objects.get_or_create(mobile=account.mobile)
        user.is_staff = account.is_staff
        user.is_superuser = account.is_superuser
        user.set_password(account.password)
        user.save()
        if account.group:
            user.groups.set([Group.objects.get(name=account.group)])
    return list(DEMO_ACCOUNTS)
