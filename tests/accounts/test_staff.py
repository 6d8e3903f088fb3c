"""Staff pages: roles and permissions read in one query a request, never kept beyond it; the shared order lookup."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from certdesk.accounts.models import User
from certdesk.accounts.roles import ROLE_ADMIN, ROLE_ISSUER, ROLE_REVIEWER, staff_permissions_preload
from certdesk.orders.models import Order

pytestmark = pytest.mark.django_db
QUEUE = reverse("review:queue")


def test_preload_matches_model_backend(make_staff: Callable[[str, str], User]) -> None:
    user = make_staff("13900000031", ROLE_REVIEWER)
    user.groups.add(Group.objects.get(name=ROLE_ISSUER))
    user.user_permissions.add(Permission.objects.get(codename="change_order"))
    user.user_permissions.add(Permission.objects.get(codename="review_order"))  # also through the role
    expected = ModelBackend().get_all_permissions(User.objects.get(pk=user.pk))
    fresh = User.objects.get(pk=user.pk)
    with CaptureQueriesContext(connection) as captured:
        staff_permissions_preload(fresh)
        assert fresh.get_all_permissions() == expected
        assert fresh.has_perm("orders.issue_order") and not fresh.has_perm("orders.support_order")
    assert len(captured) == 1
    assert expected >= {"orders.review_order", "orders.issue_order", "orders.view_order", "orders.change_order"}


def test_preload_for_superuser_and_inactive(make_staff: Callable[[str, str], User]) -> None:
    user = make_staff("13900000032", ROLE_REVIEWER)
    User.objects.filter(pk=user.pk).update(is_superuser=True)
    superuser = User.objects.get(pk=user.pk)
    expected = ModelBackend().get_all_permissions(User.objects.get(pk=user.pk))
    staff_permissions_preload(superuser)
    assert (
        superuser.get_all_permissions()
        == expected
        == {f"{p.content_type.app_label}.{p.codename}" for p in Permission.objects.select_related("content_type")}
    )
    User.objects.filter(pk=user.pk).update(is_superuser=False, is_active=False)
    inactive = User.objects.get(pk=user.pk)
    staff_permissions_preload(inactive)
    assert not inactive.has_perm("orders.review_order")
    assert inactive.get_all_permissions() == set()


def test_a_role_taken_away_counts_from_the_next_request(
    make_staff: Callable[[str, str], User], staff_client_for: Callable[[User], Client]
) -> None:
    user = make_staff("13900000033", ROLE_REVIEWER)
    client = staff_client_for(user)
    assert client.get(QUEUE).status_code == 200
    user.groups.clear()
    assert client.get(QUEUE).status_code == 404
    user.user_permissions.add(Permission.objects.get(codename="review_order"))  # a permission of their own
    assert client.get(QUEUE).status_code == 200


def test_staff_menu_follows_the_roles(
    make_staff: Callable[[str, str], User], staff_client_for: Callable[[User], Client]
) -> None:
    reviewer_page = staff_client_for(make_staff("13900000034", ROLE_REVIEWER)).get(QUEUE).content.decode()
    assert reverse("review:queue") in reviewer_page
    assert reverse("fulfilment:queue") not in reviewer_page
    assert reverse("fulfilment:support") not in reviewer_page
    admin = staff_client_for(make_staff("13900000035", ROLE_ADMIN))
    with CaptureQueriesContext(connection) as captured:
        admin_page = admin.get(reverse("review:dashboard")).content.decode()
    for name in ("review:queue", "fulfilment:queue", "fulfilment:support"):
        assert reverse(name) in admin_page
    assert sum("auth_permission" in q["sql"] for q in captured) == 1


def test_unknown_order_is_404_on_review_and_fulfilment_pages(
    make_staff: Callable[[str, str], User], staff_client_for: Callable[[User], Client], submitted_order: Order
) -> None:
    admin = staff_client_for(make_staff("13900000036", ROLE_ADMIN))
    assert admin.get(reverse("review:order", args=[submitted_order.number])).status_code == 200
    for url in (
        reverse("review:order", args=["NOPE0000000000"]),
        reverse("review:form_pdf", args=["NOPE0000000000"]),
        reverse("fulfilment:station", args=["NOPE0000000000"]),
    ):
        assert admin.get(url).status_code == 404, url
    assert admin.post(reverse("review:claim", args=["NOPE0000000000"])).status_code == 404
    assert admin.post(reverse("fulfilment:ship", args=["NOPE0000000000"])).status_code == 404
