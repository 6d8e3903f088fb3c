"""Every payment-callback forgery in one place (tests/security/corpus.py: each refusal that
tests/payments asserts, built with the same fakes and signer, plus the new cases of #9), posted to
the real callback endpoint of its gateway with the real SDKs verifying.

Setting: two orders await payment at the same gateway; the first was paid at the gateway and its
callback has not arrived yet. A forgery must be refused (400 / Alipay "fail"), logged and audited
with the expected reason, and change nothing: both orders still await payment, both payments are
still pending, no "paid" event. The genuine callback sent afterwards still pays the first order,
once, and leaves the second alone — the forgery left no state behind.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from certdesk.accounts.models import User
from certdesk.audit.models import AuditRecord
from certdesk.core.choices import BusinessType
from certdesk.orders.models import Order, OrderEvent, OrderStatus
from certdesk.orders.services import order_create
from certdesk.payments.gateways.sandbox import sandbox_notification, sandbox_trade_pay
from certdesk.payments.models import Payment, PaymentCallback, PaymentStatus
from certdesk.payments.services import payment_start
from tests.security.corpus import CallbackForgery, CallbackTarget, payment_forgery_corpus

pytestmark = pytest.mark.django_db

CORPUS = payment_forgery_corpus()
PARAMS = [
    pytest.param(
        case,
        id=case.id,
        marks=[pytest.mark.xfail(strict=True, reason=case.known_bug)] if case.known_bug else [],
    )
    for case in CORPUS
]


def test_the_corpus_gathers_the_earlier_suites_and_the_new_cases() -> None:
    origins = {case.origin for case in CORPUS}
    for module in ("test_sandbox", "test_wechat", "test_alipay"):
        assert any(f"tests/payments/{module}.py::" in origin for origin in origins), module
    new = " | ".join(case.id for case in CORPUS if case.origin.startswith("new"))
    for needle in ("another order", "duplicated", "unknown platform key", "sign_type RSA", "0.001", "-1", "1e9", "NaN"):
        assert needle in new, needle
    for gateway in ("sandbox", "wechat", "alipay"):
        assert {f"{gateway}: amount {a}" for a in ("0.001", "-1", "1e9", "NaN")} <= {case.id for case in CORPUS}


def _callback(gateway: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    content_type = "application/x-www-form-urlencoded" if gateway == "alipay" else "application/json"
    response = Client().post(
        reverse("payments:callback", kwargs={"gateway": gateway}), data=body, content_type=content_type, headers=headers
    )
    return response.status_code, response.content


def _refusal(gateway: str, status: int, content: bytes) -> bool:
    return (status, content) == (200, b"fail") if gateway == "alipay" else status == 400


def _genuine(gateway: str, target: CallbackTarget) -> tuple[bytes, dict[str, str]]:
    if gateway == "sandbox":
        return sandbox_notification(merchant_no=target.paid_merchant_no)
    if gateway == "wechat":
        return target.fake.notification(target.paid_merchant_no)
    return target.fake.notification(target.paid_merchant_no), {}


@pytest.fixture
def second_order(awaiting_order: Order, customer: User) -> Order:
    order = order_create(
        owner=customer,
        business_type=BusinessType(awaiting_order.business_type),
        certificate_type_id=awaiting_order.certificate_type_id,
        years=awaiting_order.years,
    )
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.AWAITING_PAYMENT, amount_fen=awaiting_order.amount_fen)
    order.refresh_from_db()
    return order


def _untouched(target: CallbackTarget) -> None:
    for merchant_no in (target.paid_merchant_no, target.other_merchant_no):
        payment = Payment.objects.select_related("order").get(merchant_no=merchant_no)
        assert payment.status == PaymentStatus.PENDING, merchant_no
        assert payment.order.status == OrderStatus.AWAITING_PAYMENT, merchant_no
        assert not OrderEvent.objects.filter(order=payment.order, kind__in=["paid", "payment_surplus"]).exists()


@pytest.mark.parametrize("case", PARAMS)
def test_forged_callback_is_refused_and_changes_nothing(case: CallbackForgery, request: pytest.FixtureRequest) -> None:
    target = _target_for(request, case.gateway)
    audits_before = AuditRecord.objects.filter(action="payment.callback_refused").count()

    body, headers = case.build(target)
    status, content = _callback(case.gateway, body, headers)

    logged = PaymentCallback.objects.latest("id")
    assert _refusal(case.gateway, status, content), (status, content, logged.outcome, logged.reason)
    assert logged.outcome == "rejected"
    assert logged.reason in case.reasons, (logged.reason, logged.body[:300])
    assert AuditRecord.objects.filter(action="payment.callback_refused").count() == audits_before + 1
    assert AuditRecord.objects.filter(action="payment.callback_refused").latest("seq").data["reason"] == logged.reason
    _untouched(target)

    # The refusal left nothing behind: the genuine callback still pays the paid order, once.
    genuine_body, genuine_headers = _genuine(case.gateway, target)
    assert not _refusal(case.gateway, *_callback(case.gateway, genuine_body, genuine_headers))
    paid = Payment.objects.select_related("order").get(merchant_no=target.paid_merchant_no)
    assert paid.status == PaymentStatus.PAID and paid.order.status == OrderStatus.PAID
    assert OrderEvent.objects.filter(order=paid.order, kind="paid").count() == 1
    other = Payment.objects.select_related("order").get(merchant_no=target.other_merchant_no)
    assert other.status == PaymentStatus.PENDING and other.order.status == OrderStatus.AWAITING_PAYMENT


def _target_for(request: pytest.FixtureRequest, gateway: str) -> CallbackTarget:
    awaiting = request.getfixturevalue("awaiting_order")
    second = request.getfixturevalue("second_order")
    customer = request.getfixturevalue("customer")
    fake = None if gateway == "sandbox" else request.getfixturevalue(gateway)
    paid = payment_start(order=awaiting, gateway=gateway, actor=customer)
    other = payment_start(order=second, gateway=gateway, actor=customer)
    if fake is None:
        sandbox_trade_pay(merchant_no=paid.merchant_no)
    else:
        fake.user_pays(paid.merchant_no)
    return CallbackTarget(
        gateway=gateway,
        paid_merchant_no=paid.merchant_no,
        other_merchant_no=other.merchant_no,
        fake=fake,
        keys=request.getfixturevalue("keys"),
    )


@pytest.mark.parametrize("gateway", ["sandbox", "wechat", "alipay"])
def test_a_replayed_genuine_callback_pays_its_own_order_once_and_no_other(
    gateway: str, request: pytest.FixtureRequest
) -> None:
    target = _target_for(request, gateway)
    body, headers = _genuine(gateway, target)
    for _ in range(3):  # the gateway retries; an eavesdropper replays
        assert not _refusal(gateway, *_callback(gateway, body, headers))
    paid = Payment.objects.select_related("order").get(merchant_no=target.paid_merchant_no)
    assert paid.order.status == OrderStatus.PAID
    assert OrderEvent.objects.filter(order=paid.order, kind="paid").count() == 1
    assert list(
        PaymentCallback.objects.filter(merchant_no=target.paid_merchant_no)
        .order_by("id")
        .values_list("outcome", flat=True)
    ) == ["paid", "duplicate", "duplicate"]
    other = Payment.objects.select_related("order").get(merchant_no=target.other_merchant_no)
    assert other.status == PaymentStatus.PENDING and other.order.status == OrderStatus.AWAITING_PAYMENT
    assert not OrderEvent.objects.filter(order=other.order, kind="paid").exists()
