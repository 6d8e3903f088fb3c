"""Demo accounts for `make run` (demo mode only)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from certdesk.accounts.models import User


@dataclass(frozen=True)
class DemoAccount:
    mobile: str
    password: str
    role: str
    is_staff: bool = False
    is_superuser: bool = False


DEMO_ACCOUNTS = (
    DemoAccount("13800138000", "Demo-Customer-2026", "客户（证书申请单位经办人）"),
    DemoAccount("13900139000", "Demo-Admin-2026", "管理员（/staff/admin/）", is_staff=True, is_superuser=True),
)


@transaction.atomic
def demo_accounts_ensure() -> list[DemoAccount]:
    """Create the demo accounts, or reset their passwords; safe to run again."""
    for account in DEMO_ACCOUNTS:
        user, _ = User.objects.get_or_create(mobile=account.mobile)
        user.is_staff = account.is_staff
        user.is_superuser = account.is_superuser
        user.set_password(account.password)
        user.save()
    return list(DEMO_ACCOUNTS)
