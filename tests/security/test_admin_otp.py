"""Staff sign in with a password and a TOTP code (STAFF_OTP_REQUIRED). The operator console enforces
the second step (accounts/staff.py); Django's admin at /staff/admin/ has its own login view, which
asks for the password only."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from certdesk.accounts.models import User
from certdesk.accounts.roles import ROLE_ADMIN

pytestmark = pytest.mark.django_db
PASSWORD = "Staff-Pass-2026-x"  # conftest.make_staff


@pytest.fixture
def payments_admin(make_staff: Callable[[str, str], User]) -> User:
    user = make_staff("13900000071", ROLE_ADMIN)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_payment", "refund_payment", "view_auditrecord"])
    )
    return User.objects.get(pk=user.pk)


def test_the_operator_console_needs_the_totp_step(payments_admin: User) -> None:
    client = Client()
    assert (
        client.post(reverse("staff_login"), {"mobile": payments_admin.mobile, "password": PASSWORD}).status_code == 302
    )
    response = client.get(reverse("review:queue"))
    assert response.status_code == 302 and reverse("staff_otp") in response["Location"]


def test_the_django_admin_needs_the_totp_step_too(payments_admin: User) -> None:
    client = Client()
    client.post(
        reverse("admin:login") + "?next=/staff/admin/", {"username": payments_admin.mobile, "password": PASSWORD}
    )
    for url in (reverse("admin:index"), reverse("admin:payments_payment_changelist")):
        response = client.get(url)
        assert response.status_code in (302, 403, 404), (url, response.status_code)
