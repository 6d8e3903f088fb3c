"""The worker dies during the periodic payment query (`payments_sync`): the gateway has answered
"paid" and the process is killed before, or in the middle of, the order update. After a restart
the order is PAID once, with one "paid" event; the late callback changes nothing more.

Protection: `payments.services.payment_result_apply` marks the payment paid and moves the order
in one transaction under the order's row lock, and treats a payment already paid as a duplicate;
the open payment stays in `payments_open` until that transaction commits, so the next run asks
the gateway again. Each gateway runs through its real client (sandbox ledger; WeChat Pay and
Alipay SDKs against the local fakes of tests/payments).
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from certdesk.audit.models import AuditRecord
from certdesk.orders.models import Order, OrderEvent, OrderStatus
from certdesk.payments import services as payment_services
from certdesk.payments.gateways.sandbox import sandbox_notification, sandbox_trade_pay
from certdesk.payments.models import Payment, PaymentCallback, PaymentStatus
from certdesk.payments.services import payment_start, payments_sync
from tests.faults.conftest import WorkerKilled, kill_once

pytestmark = pytest.mark.django_db

GATEWAYS = ["sandbox", "wechat", "alipay"]


def _paid_at_gateway(gateway: str, order: Order, request: pytest.FixtureRequest) -> tuple[Payment, Any]:
    fake = None if gateway == "sandbox" else request.getfixturevalue(gateway)
    payment = payment_start(order=order, gateway=gateway, actor=order.owner)
    if fake is None:
        sandbox_trade_pay(merchant_no=payment.merchant_no)
    else:
        fake.user_pays(payment.merchant_no)  # paid; its callback is lost
    return payment, fake


def _state(order: Order, payment: Payment) -> tuple[str, str, int]:
    return (
        Order.objects.get(pk=order.pk).status,
        Payment.objects.get(pk=payment.pk).status,
        OrderEvent.objects.filter(order=order, kind="paid").count(),
    )


@pytest.mark.parametrize("gateway", GATEWAYS)
@pytest.mark.parametrize(
    "kill_at",
    [
        pytest.param("order_transition", id="killed mid-update (payment row written, order not yet)"),
        pytest.param("payment_result_apply", id="killed after the gateway answered, before the update"),
    ],
)
def test_killed_during_the_payment_query_pays_once_after_restart(
    gateway: str, kill_at: str, awaiting_order: Order, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment, fake = _paid_at_gateway(gateway, awaiting_order, request)
    later = payment.created_at + datetime.timedelta(minutes=2)  # past the one-minute callback grace
    monkeypatch.setattr(payment_services, kill_at, kill_once(getattr(payment_services, kill_at), kill_at))

    with pytest.raises(WorkerKilled):
        payments_sync(now=later)

    # Nothing half-done: the payment is still open, the order still waits, no event, no audit.
    assert _state(awaiting_order, payment) == (OrderStatus.AWAITING_PAYMENT, PaymentStatus.PENDING, 0)
    assert not AuditRecord.objects.filter(action="order.paid").exists()

    assert payments_sync(now=later + datetime.timedelta(minutes=1)) == {"paid": 1}  # the restarted worker

    assert _state(awaiting_order, payment) == (OrderStatus.PAID, PaymentStatus.PAID, 1)
    assert OrderEvent.objects.get(order=awaiting_order, kind="paid").data["source"] == "query"
    assert AuditRecord.objects.filter(action="order.paid", object_id=awaiting_order.number).count() == 1
    # The next run has nothing to do, and the callback that finally arrives is a duplicate.
    assert payments_sync(now=later + datetime.timedelta(minutes=2)) == {}
    if gateway == "sandbox":
        body, headers = sandbox_notification(merchant_no=payment.merchant_no)
    elif gateway == "wechat":
        body, headers = fake.notification(payment.merchant_no)
    else:
        body, headers = fake.notification(payment.merchant_no), {}
    content_type = "application/x-www-form-urlencoded" if gateway == "alipay" else "application/json"
    reply = Client().post(
        reverse("payments:callback", kwargs={"gateway": gateway}), data=body, content_type=content_type, headers=headers
    )
    assert reply.status_code in (200, 204) and reply.content in (b"", b"success")
    assert PaymentCallback.objects.get(merchant_no=payment.merchant_no).outcome == "duplicate"
    assert _state(awaiting_order, payment) == (OrderStatus.PAID, PaymentStatus.PAID, 1)
    assert Payment.objects.get(pk=payment.pk).settles_order  # still the payment that paid the order…
    assert not OrderEvent.objects.filter(order=awaiting_order, kind="payment_surplus").exists()  # …not a surplus


def test_killed_twice_in_a_row_still_pays_once(awaiting_order: Order, monkeypatch: pytest.MonkeyPatch) -> None:
    payment = payment_start(order=awaiting_order, gateway="sandbox", actor=awaiting_order.owner)
    sandbox_trade_pay(merchant_no=payment.merchant_no)
    now = payment.created_at + datetime.timedelta(minutes=2)
    real = payment_services.order_transition
    for attempt in range(2):
        monkeypatch.setattr(payment_services, "order_transition", kill_once(real, f"crash {attempt + 1}"))
        with pytest.raises(WorkerKilled):
            payments_sync(now=now + datetime.timedelta(minutes=attempt))
    monkeypatch.setattr(payment_services, "order_transition", real)

    assert payments_sync(now=now + datetime.timedelta(minutes=5)) == {"paid": 1}
    assert _state(awaiting_order, payment) == (OrderStatus.PAID, PaymentStatus.PAID, 1)
