"""The review console: roles, queue, claim, approve / reject, concurrency."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from certdesk.accounts.models import User
from certdesk.catalog.models import CertificateType
from certdesk.core.errors import DomainError, InvalidTransition
from certdesk.orders.models import Order, OrderEvent, OrderStatus
from certdesk.review.models import ReviewClaim
from certdesk.review.services import RejectReason, review_approve, review_claim, review_reject

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewer_client(reviewer: User, staff_client_for: Callable[[User], Client]) -> Client:
    return staff_client_for(reviewer)


def test_staff_login_refuses_customers(client: Client, customer: User) -> None:
    response = client.post(reverse("staff_login"), {"mobile": customer.mobile, "password": "Cust0mer-Pass-2026"})
    assert response.status_code == 200
    assert "手机号码或密码不正确" in response.content.decode()


def test_staff_login_needs_the_totp_step(client: Client, reviewer: User, submitted_order: Order) -> None:
    client.logout()
    response = client.post(reverse("staff_login"), {"mobile": reviewer.mobile, "password": "Rev1ewer-Pass-2026"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("staff_otp"))
    # Password alone does not open staff pages.
    blocked = client.get(reverse("review:dashboard"))
    assert blocked.status_code == 302
    assert blocked["Location"].startswith(reverse("staff_otp"))
    # Enrolment shows a QR code; a wrong code is refused, the authenticator's code admits.
    page = client.get(reverse("staff_otp")).content.decode()
    assert "<svg" in page
    assert "动态码不正确" in client.post(reverse("staff_otp"), {"token": "000000x"}).content.decode()
    from certdesk.accounts.otp import demo_current_code, staff_otp_device

    device = staff_otp_device(user=reviewer)
    response = client.post(reverse("staff_otp"), {"token": demo_current_code(device), "next": reverse("review:queue")})
    assert response["Location"] == reverse("review:queue")
    device.refresh_from_db()
    assert device.confirmed
    assert "待审核" in client.get(reverse("review:dashboard")).content.decode()


def test_customer_gets_404_on_every_staff_page(customer_client: Client, submitted_order: Order) -> None:
    n = submitted_order.number
    for url in [
        reverse("review:dashboard"),
        reverse("review:queue"),
        reverse("review:order", args=[n]),
        reverse("review:form_pdf", args=[n]),
        reverse("review:file", args=[n, "agent_id"]),
    ]:
        assert customer_client.get(url).status_code == 404, url
    for url in [reverse("review:approve", args=[n]), reverse("review:claim", args=[n])]:
        assert customer_client.post(url).status_code == 404
    submitted_order.refresh_from_db()
    assert submitted_order.status == OrderStatus.SUBMITTED


def test_anonymous_goes_to_staff_login(client: Client, submitted_order: Order) -> None:
    client.logout()
    response = client.get(reverse("review:queue"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("staff_login"))


def test_staff_without_review_role_gets_404(submitted_order: Order, staff_client_for: Callable[[User], Client]) -> None:
    issuer = User.objects.create_user(mobile="13900000019", password="x-Pass-2026-x", is_staff=True)
    client = staff_client_for(issuer)
    assert client.get(reverse("review:queue")).status_code == 404
    assert client.post(reverse("review:approve", args=[submitted_order.number])).status_code == 404


def test_queue_sorted_by_deadline_with_overdue_marked(
    reviewer_client: Client, customer: User, certificate_type: CertificateType, submitted_order: Order
) -> None:
    later = Order.objects.create(
        number="XB0000000000001",
        owner=customer,
        business_type="renew",
        status=OrderStatus.SUBMITTED,
        certificate_type=certificate_type,
        review_due_at=timezone.now() + datetime.timedelta(days=10),
    )
    overdue = Order.objects.create(
        number="XB0000000000002",
        owner=customer,
        business_type="unlock",
        status=OrderStatus.SUBMITTED,
        certificate_type=certificate_type,
        review_due_at=timezone.now() - datetime.timedelta(hours=1),
    )
    page = reviewer_client.get(reverse("review:queue")).content.decode()
    assert page.index(overdue.number) < page.index(submitted_order.number) < page.index(later.number)
    assert "已超时" in page
    dashboard = reviewer_client.get(reverse("review:dashboard")).content.decode()
    assert "1 个订单已超过" in dashboard


def test_review_page_shows_data_checks_and_images(reviewer_client: Client, submitted_order: Order) -> None:
    page = reviewer_client.get(reverse("review:order", args=[submitted_order.number])).content.decode()
    assert "360426********0071" in page  # masked until the reviewer asks, audited
    assert "校验通过" in page
    assert reverse("review:file", args=[submitted_order.number, "business_licence"]) in page
    image = reviewer_client.get(reverse("review:file", args=[submitted_order.number, "business_licence"]))
    assert image.status_code == 200
    assert (
        reviewer_client.get(reverse("review:form_pdf", args=[submitted_order.number]))["Content-Type"]
        == "application/pdf"
    )


def test_approve_goes_to_awaiting_payment_with_price(reviewer_client: Client, submitted_order: Order) -> None:
    response = reviewer_client.post(reverse("review:approve", args=[submitted_order.number]))
    assert response.status_code == 302
    submitted_order.refresh_from_db()
    assert submitted_order.status == OrderStatus.AWAITING_PAYMENT
    assert submitted_order.amount_fen == 30000 * 2 + 10000


def test_free_order_skips_payment(reviewer: User, submitted_order: Order) -> None:
    Order.objects.filter(pk=submitted_order.pk).update(business_type="change")
    submitted_order.refresh_from_db()
    order = review_approve(order=submitted_order, reviewer=reviewer)
    # Free: approval counts as paid, and a change goes straight on to 待下载.
    assert order.status == OrderStatus.READY_TO_DOWNLOAD
    assert order.amount_fen == 0
    assert list(order.events.values_list("to_status", flat=True))[-2:] == ["paid", "ready_to_download"]


def test_reject_with_reasons_shown_to_customer(
    reviewer_client: Client, customer_client: Client, submitted_order: Order, customer: User
) -> None:
    response = reviewer_client.post(
        reverse("review:reject", args=[submitted_order.number]),
        {
            "target": ["material:business_licence", "field:agent_name", ""],
            "code": ["no_seal", "other", ""],
            "text": ["", "姓名与身份证不一致", ""],
        },
    )
    assert response.status_code == 302
    submitted_order.refresh_from_db()
    assert submitted_order.status == OrderStatus.REJECTED
    customer_client.force_login(customer)
    page = customer_client.get(reverse("orders:detail", args=[submitted_order.number])).content.decode()
    assert "未加盖单位公章" in page
    assert "姓名与身份证不一致" in page
    assert "经办人姓名" in page


def test_reject_needs_a_reason(reviewer_client: Client, submitted_order: Order) -> None:
    response = reviewer_client.post(reverse("review:reject", args=[submitted_order.number]), {}, follow=True)
    assert "请至少选择一条" in response.content.decode()
    submitted_order.refresh_from_db()
    assert submitted_order.status == OrderStatus.SUBMITTED


def test_claimed_order_cannot_be_decided_by_another(
    reviewer: User, second_reviewer: User, submitted_order: Order
) -> None:
    review_claim(order=submitted_order, reviewer=reviewer)
    with pytest.raises(DomainError, match="领取审核"):
        review_approve(order=submitted_order, reviewer=second_reviewer)
    # A lapsed claim can be taken over.
    ReviewClaim.objects.update(claimed_at=timezone.now() - datetime.timedelta(hours=1))
    assert review_approve(order=submitted_order, reviewer=second_reviewer).status == OrderStatus.AWAITING_PAYMENT


def test_second_decision_is_told(reviewer: User, second_reviewer: User, submitted_order: Order) -> None:
    review_approve(order=submitted_order, reviewer=reviewer)
    with pytest.raises(InvalidTransition, match="已被处理"):
        review_reject(
            order=submitted_order,
            reviewer=second_reviewer,
            reasons=[RejectReason(target="", target_label="", code="unclear")],
        )
    assert OrderEvent.objects.filter(order=submitted_order, kind__in=["approved", "rejected"]).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_approvals_make_one_event(reviewer: User, second_reviewer: User, submitted_order: Order) -> None:
    if connection.vendor == "sqlite":
        pytest.skip("row locks need a server database; CI runs this on PostgreSQL")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def decide(who: User) -> None:
        barrier.wait()
        try:
            review_approve(order=submitted_order, reviewer=who)
            outcomes.append("approved")
        except DomainError as error:
            outcomes.append(error.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(who,)) for who in (reviewer, second_reviewer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["already_decided", "approved"]
    assert OrderEvent.objects.filter(order=submitted_order, kind="approved").count() == 1
