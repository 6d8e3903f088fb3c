"""Every route that takes an object id × every kind of visitor.

Customer A owns the objects. Anonymous visitors must be sent to a login page;
customer B and staff without the right role must get 404 — and no response to
them may carry A's data. The allowed visitors must get through (200 or a
redirect within the flow). A route added later without a policy here fails the
completeness test, so the matrix cannot silently fall behind the URL map.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from certdesk.accounts.models import User
from certdesk.accounts.roles import ROLE_ADMIN, ROLE_ISSUER, ROLE_REVIEWER, ROLE_SUPPORT
from certdesk.invoices.models import Invoice, InvoiceStatus
from certdesk.notifications.models import Notification
from certdesk.orders.models import Order, OrderStatus
from certdesk.orders.services import order_create

pytestmark = pytest.mark.django_db

OWNER = "owner"
ANY_STAFF = {"reviewer", "issuer", "support", "admin"}
SECRET_MARKERS = ("重庆东方测试有限公司", "360426199101010071")


@dataclass(frozen=True)
class Rule:
    allowed: frozenset[str]
    method: str = "get"
    target: str = "draft"  # which of A's objects the route is called with


def rule(*allowed: str, method: str = "get", target: str = "draft") -> Rule:
    return Rule(frozenset(allowed), method, target)


# Routes that take one of A's objects. POST-only routes are probed with POST.
RULES: dict[str, Rule] = {
    "orders:detail": rule(OWNER),
    "orders:info": rule(OWNER),
    "orders:print": rule(OWNER),
    "orders:form_pdf": rule(OWNER),
    "orders:upload": rule(OWNER),
    "orders:submit": rule(OWNER),
    "orders:cancel": rule(OWNER, method="post"),
    "materials:upload": rule(OWNER, method="post"),
    "materials:slot": rule(OWNER),
    "materials:file": rule(OWNER),
    "materials:phone_qr": rule(OWNER),
    "payments:pay": rule(OWNER, target="awaiting"),
    "payments:status": rule(OWNER, target="awaiting"),
    "fulfilment:key_pairing": rule(OWNER, target="download"),
    "fulfilment:confirm_receipt": rule(OWNER, method="post", target="shipped"),
    "invoices:pdf": rule(OWNER, target="invoiced"),
    "notifications:message_detail": rule(OWNER, target="message"),
    "review:order": rule("reviewer", "admin", target="submitted"),
    "review:claim": rule("reviewer", "admin", method="post", target="submitted"),
    "review:release": rule("reviewer", "admin", method="post", target="submitted"),
    "review:approve": rule("reviewer", "admin", method="post", target="submitted"),
    "review:reject": rule("reviewer", "admin", method="post", target="submitted"),
    "review:form_pdf": rule(*ANY_STAFF, target="submitted"),
    "review:file": rule(*ANY_STAFF, target="submitted"),
    "fulfilment:station": rule("issuer", "admin", target="paid"),
    "fulfilment:ship": rule("issuer", "admin", method="post", target="to_ship"),
    "fulfilment:pickup": rule("issuer", "admin", method="post", target="to_ship"),
    "fulfilment:hand_over": rule("issuer", "admin", method="post", target="to_ship"),
    "fulfilment:support_done": rule("support", "admin", method="post", target="assistance"),
    "invoices:staff_resend": rule(*ANY_STAFF, method="post", target="invoiced"),
}
# Staff pages without an object id.
STAFF_PAGES: dict[str, frozenset[str]] = {
    "review:dashboard": frozenset(ANY_STAFF),
    "review:queue": frozenset({"reviewer", "admin"}),
    "fulfilment:queue": frozenset({"issuer", "admin"}),
    "fulfilment:support": frozenset({"support", "admin"}),
    "invoices:staff_list": frozenset(ANY_STAFF),
}
# Routes with their own access model, tested where they live.
ELSEWHERE = {
    "materials:phone": "signed single-slot token (tests/materials)",
    "payments:callback": "gateway signatures (tests/payments)",
    "payments:sandbox_pay": "the paying phone, no login (tests/payments)",
    "notifications:wechat_oauth_callback": "signed state (tests/notifications)",
    "notifications:wechat_callback": "WeChat server signature (tests/notifications)",
    "pki:ca-certificate": "public",
    "pki:crl": "public",
    "pki:ocsp": "public",
    "pki:ocsp-get": "public",
    "orders:start": "own account only, no object id",
}


def _walk(patterns: list[Any], namespace: str = "") -> list[tuple[str, URLPattern]]:
    found = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            found += _walk(pattern.url_patterns, namespace + (f"{pattern.namespace}:" if pattern.namespace else ""))
        elif pattern.name:
            found.append((namespace + pattern.name, pattern))
    return found


def test_every_route_with_an_object_id_has_a_policy() -> None:
    for name, pattern in _walk(get_resolver().url_patterns):
        if name.startswith(("admin:", "api:")):
            continue  # Django's admin (staff + its own permissions); the agent API (bearer sessions, tests/api)
        takes_id = bool(pattern.pattern.converters) or "(?P<" in str(pattern.pattern)
        if takes_id:
            assert name in RULES or name in ELSEWHERE, f"no access policy for {name}"


@pytest.fixture
def objects(complete_order: Order, customer: User, certificate_type: Any) -> dict[str, Any]:
    def order_in(status: OrderStatus, **extra: Any) -> Order:
        order = order_create(owner=customer, business_type="new", certificate_type_id=certificate_type.pk, years=1)
        Order.objects.filter(pk=order.pk).update(
            status=status, org_name="重庆东方测试有限公司", legal_rep_id_number="360426199101010071", **extra
        )
        order.refresh_from_db()
        return order

    invoiced = order_in(OrderStatus.PAID, amount_fen=1000)
    invoice = Invoice.objects.create(
        order=invoiced,
        invoice_type="normal",
        buyer_name="重庆东方测试有限公司",
        email="a@example.com",
        amount_fen=1000,
        provider="demo",
        status=InvoiceStatus.ISSUED,
        number="DEMO1",
    )
    invoice.pdf.save("x.pdf", ContentFile("%PDF-1.4 重庆东方测试有限公司".encode()))
    message = Notification.objects.create(
        user=customer, event="submitted", title="订单已提交", body="重庆东方测试有限公司的订单"
    )
    submitted = order_in(OrderStatus.SUBMITTED)
    Order.objects.filter(pk=complete_order.pk).update(org_name="重庆东方测试有限公司")
    from certdesk.materials.models import MaterialUpload

    for upload in MaterialUpload.objects.filter(order=complete_order):
        # The submitted order gets the same scans, so staff pages have files to show.
        upload.pk = None
        upload.order = submitted
        upload.save()

    return {
        "draft": complete_order,
        "submitted": submitted,
        "awaiting": order_in(OrderStatus.AWAITING_PAYMENT, amount_fen=70000),
        "download": order_in(OrderStatus.READY_TO_DOWNLOAD, business_type="renew", key_sn="5500000001"),
        "shipped": order_in(OrderStatus.SHIPPED),
        "paid": order_in(OrderStatus.PAID),
        "to_ship": order_in(OrderStatus.TO_SHIP),
        "assistance": order_in(OrderStatus.REMOTE_ASSISTANCE, business_type="unlock"),
        "invoiced": invoiced,
        "message": message,
    }


@pytest.fixture
def visitors(
    customer: User,
    other_customer: User,
    make_staff: Callable[[str, str], User],
    staff_client_for: Callable[[User], Client],
) -> dict[str, Client]:
    owner = Client()
    owner.force_login(customer)
    stranger = Client()
    stranger.force_login(other_customer)
    admin = make_staff("13900000091", ROLE_ADMIN)
    return {
        "anonymous": Client(),
        OWNER: owner,
        "other_customer": stranger,
        "reviewer": staff_client_for(make_staff("13900000092", ROLE_REVIEWER)),
        "issuer": staff_client_for(make_staff("13900000093", ROLE_ISSUER)),
        "support": staff_client_for(make_staff("13900000094", ROLE_SUPPORT)),
        "admin": staff_client_for(admin),
    }


def _url(name: str, target: Any) -> str:
    if name == "notifications:message_detail":
        return reverse(name, kwargs={"pk": target.pk})
    kwargs = {"number": target.number}
    if name.startswith("materials:") or name == "review:file":
        kwargs["kind_code"] = "agent_id"
    return reverse(name, kwargs=kwargs)


def _assert_refused(who: str, name: str, response: Any) -> None:
    body = response.content.decode(errors="replace") if not response.streaming else ""
    if who == "anonymous":
        assert response.status_code == 302, (name, response.status_code)
        assert "login" in response["Location"], (name, response["Location"])
    else:
        assert response.status_code == 404, (who, name, response.status_code)
    for marker in SECRET_MARKERS:
        assert marker not in body, (who, name, marker)


def test_object_routes(objects: dict[str, Any], visitors: dict[str, Client]) -> None:
    for name, policy in RULES.items():
        url = _url(name, objects[policy.target])
        for who, client in visitors.items():
            if who in policy.allowed:
                if policy.method == "get":  # POSTs by allowed visitors would change A's orders; covered per app
                    response = client.get(url)
                    assert response.status_code in (200, 302), (who, name, response.status_code)
                continue
            _assert_refused(who, name, getattr(client, policy.method)(url))


def test_staff_pages(visitors: dict[str, Client], objects: dict[str, Any]) -> None:
    for name, allowed in STAFF_PAGES.items():
        url = reverse(name)
        for who, client in visitors.items():
            response = client.get(url)
            if who in allowed:
                assert response.status_code == 200, (who, name)
            elif who == "anonymous":
                assert response.status_code == 302 and "login" in response["Location"], name
            else:
                assert response.status_code == 404, (who, name, response.status_code)
                assert "重庆东方测试有限公司" not in response.content.decode()


@pytest.mark.parametrize("name", ["orders:list", "invoices:list", "notifications:message_list"])
def test_own_lists_show_nothing_of_another_account(
    name: str, objects: dict[str, Any], visitors: dict[str, Client]
) -> None:
    owner_page = visitors[OWNER].get(reverse(name)).content.decode()
    assert "重庆东方测试有限公司" in owner_page or objects["draft"].number in owner_page
    page = visitors["other_customer"].get(reverse(name)).content.decode()
    assert "重庆东方测试有限公司" not in page
    assert objects["draft"].number not in page
    assert visitors["anonymous"].get(reverse(name)).status_code == 302
