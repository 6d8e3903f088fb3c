"""Alipay 当面付 through the real python-alipay-sdk against a local fake of the
Alipay open API: RSA2 signatures both ways, form-encoded notifications."""

from __future__ import annotations

import datetime
import urllib.parse

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from certdesk.accounts.models import User
from certdesk.audit.models import AuditRecord
from certdesk.core.errors import DomainError
from certdesk.orders.models import Order, OrderEvent, OrderStatus
from certdesk.orders.services import order_cancel
from certdesk.payments.amounts import yuan_to_fen
from certdesk.payments.models import Payment, PaymentCallback, PaymentStatus
from certdesk.payments.services import payment_refund, payment_start, payments_sync
from tests.payments.conftest import Keys
from tests.payments.fakes import FakeAlipay

pytestmark = pytest.mark.django_db


@pytest.fixture
def started(awaiting_order: Order, customer: User, alipay: FakeAlipay) -> Payment:
    payment = payment_start(order=awaiting_order, gateway="alipay", actor=customer)
    alipay.user_pays(payment.merchant_no)
    return payment


def _reply(client: Client, body: bytes) -> str:
    response = client.post(
        reverse("payments:callback", kwargs={"gateway": "alipay"}),
        data=body,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    return response.content.decode()


def test_precreate_through_the_sdk(awaiting_order: Order, customer_client: Client, alipay: FakeAlipay) -> None:
    response = customer_client.post(
        reverse("payments:pay", kwargs={"number": awaiting_order.number}), {"gateway": "alipay"}
    )
    payment = Payment.objects.get(order=awaiting_order)
    assert payment.code_url.startswith("https://qr.alipay.com/")
    trade = alipay.trades[payment.merchant_no]
    assert trade["total_amount"] == "700.00"  # yuan, exact
    assert trade["timeout_express"] == "120m"
    assert trade["notify_url"] == "http://127.0.0.1:8000/payments/callback/alipay/"
    page = customer_client.get(response["Location"]).content.decode()
    assert "<svg" in page and "支付宝" in page


def test_valid_notification_pays_once(client: Client, started: Payment, alipay: FakeAlipay) -> None:
    body = alipay.notification(started.merchant_no)
    assert _reply(client, body) == "success"
    assert _reply(client, body) == "success"
    order = Order.objects.get(pk=started.order_id)
    assert order.status == OrderStatus.PAID
    assert OrderEvent.objects.filter(order=order, kind="paid").count() == 1
    assert AuditRecord.objects.filter(action="order.paid", object_id=order.number).count() == 1
    payment = Payment.objects.get(pk=started.pk)
    assert payment.gateway_txn_id == alipay.trades[started.merchant_no]["trade_no"]
    assert payment.gateway_data["data"]["seller_id"] == alipay.seller_id
    assert list(PaymentCallback.objects.order_by("id").values_list("outcome", flat=True)) == ["paid", "duplicate"]


def test_trade_finished_also_pays(client: Client, started: Payment, alipay: FakeAlipay) -> None:
    assert (
        _reply(client, alipay.notification(started.merchant_no, overrides={"trade_status": "TRADE_FINISHED"}))
        == "success"
    )
    assert Order.objects.get(pk=started.order_id).status == OrderStatus.PAID


def _refused(client: Client, payment: Payment, body: bytes, reason: str) -> None:
    assert _reply(client, body) == "fail"
    assert Order.objects.get(pk=payment.order_id).status == OrderStatus.AWAITING_PAYMENT
    assert not OrderEvent.objects.filter(order=payment.order, kind="paid").exists()
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.PENDING
    logged = PaymentCallback.objects.latest("id")
    assert (logged.outcome, logged.reason) == ("rejected", reason)
    assert AuditRecord.objects.filter(action="payment.callback_refused", data__reason=reason).count() == 1


def test_refused_bad_signature(client: Client, started: Payment, alipay: FakeAlipay, keys: Keys) -> None:
    _refused(client, started, alipay.notification(started.merchant_no, sign_key=keys.stranger), "signature_invalid")


def test_refused_tampered_field(client: Client, started: Payment, alipay: FakeAlipay) -> None:
    fields = dict(urllib.parse.parse_qsl(alipay.notification(started.merchant_no).decode()))
    fields["total_amount"] = "0.01"  # changed after signing
    _refused(client, started, urllib.parse.urlencode(fields).encode(), "signature_invalid")


def test_refused_changed_amount(client: Client, started: Payment, alipay: FakeAlipay) -> None:
    body = alipay.notification(started.merchant_no, overrides={"total_amount": "699.99"})
    _refused(client, started, body, "amount_mismatch")


def test_refused_other_app(client: Client, started: Payment, alipay: FakeAlipay) -> None:
    _refused(
        client,
        started,
        alipay.notification(started.merchant_no, overrides={"app_id": "2021000000000001"}),
        "app_mismatch",
    )


def test_refused_other_seller(client: Client, started: Payment, alipay: FakeAlipay) -> None:
    body = alipay.notification(started.merchant_no, overrides={"seller_id": "2088000000000001"})
    _refused(client, started, body, "merchant_mismatch")


def test_refused_unknown_order(client: Client, started: Payment, alipay: FakeAlipay) -> None:
    body = alipay.notification(started.merchant_no, overrides={"out_trade_no": "XB2601010000000P01"})
    _refused(client, started, body, "unknown_order")


def test_refused_without_signature(client: Client, started: Payment, alipay: FakeAlipay) -> None:
    fields = dict(urllib.parse.parse_qsl(alipay.notification(started.merchant_no).decode()))
    del fields["sign"]
    _refused(client, started, urllib.parse.urlencode(fields).encode(), "unsigned")


def test_refused_rsa1_sign_type(client: Client, started: Payment, alipay: FakeAlipay) -> None:
    _refused(
        client, started, alipay.notification(started.merchant_no, overrides={"sign_type": "RSA"}), "signature_type"
    )


def test_refused_float_like_amount(client: Client, started: Payment, alipay: FakeAlipay) -> None:
    body = alipay.notification(started.merchant_no, overrides={"total_amount": "700.001"})
    _refused(client, started, body, "malformed")


@pytest.mark.parametrize("status", ["WAIT_BUYER_PAY", "TRADE_CLOSED"])
def test_non_success_status_pays_nothing(client: Client, started: Payment, alipay: FakeAlipay, status: str) -> None:
    assert _reply(client, alipay.notification(started.merchant_no, overrides={"trade_status": status})) == "success"
    assert Order.objects.get(pk=started.order_id).status == OrderStatus.AWAITING_PAYMENT
    assert Payment.objects.get(pk=started.pk).status == PaymentStatus.PENDING
    assert PaymentCallback.objects.latest("id").outcome == "ignored"


def test_gbk_notification(client: Client, started: Payment, alipay: FakeAlipay) -> None:
    """Alipay names the charset in the body; a GBK notification verifies over the decoded text."""
    body = alipay.notification(started.merchant_no, overrides={"charset": "gbk"})
    fields = dict(urllib.parse.parse_qsl(body.decode()))
    gbk = urllib.parse.urlencode(fields, encoding="gbk").encode()
    assert gbk != body  # the subject is Chinese
    assert _reply(client, gbk) == "success"
    assert Order.objects.get(pk=started.order_id).status == OrderStatus.PAID


def test_periodic_query_applies_a_missed_notification(started: Payment, alipay: FakeAlipay) -> None:
    assert payments_sync(now=timezone.now() + datetime.timedelta(minutes=2)) == {"paid": 1}
    assert Order.objects.get(pk=started.order_id).status == OrderStatus.PAID
    assert "alipay.trade.query" in alipay.requests


def test_unscanned_qr_code_is_unknown_to_alipay(awaiting_order: Order, customer: User, alipay: FakeAlipay) -> None:
    payment = payment_start(order=awaiting_order, gateway="alipay", actor=customer)
    assert payments_sync(now=timezone.now() + datetime.timedelta(minutes=2)) == {"unpaid": 1}
    order_cancel(order=awaiting_order, actor=customer)
    assert "alipay.trade.close" in alipay.requests
    assert alipay.trades[payment.merchant_no]["status"] == "TRADE_CLOSED"
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.CLOSED


def test_cancel_refused_when_paid_at_alipay(started: Payment, customer: User) -> None:
    with pytest.raises(DomainError) as refused:
        order_cancel(order=started.order, actor=customer)
    assert refused.value.code == "payment_succeeded"
    assert Order.objects.get(pk=started.order_id).status == OrderStatus.AWAITING_PAYMENT


def test_refund_twice_one_refund_at_alipay(
    client: Client, started: Payment, alipay: FakeAlipay, reviewer: User
) -> None:
    assert _reply(client, alipay.notification(started.merchant_no)) == "success"
    order = Order.objects.get(pk=started.order_id)
    payment_refund(order=order, actor=reviewer, reason="客户申请退款")
    payment_refund(order=order, actor=reviewer, reason="客户申请退款")
    assert list(alipay.refunds) == [f"{started.merchant_no}R"]
    assert alipay.refunds[f"{started.merchant_no}R"]["refund_amount"] == "700.00"
    assert alipay.requests.count("alipay.trade.refund") == 1
    assert OrderEvent.objects.filter(order=order, kind="refunded").count() == 1


def test_reconciliation_both_ways(
    client: Client, awaiting_order: Order, customer: User, alipay: FakeAlipay, capsys: pytest.CaptureFixture[str]
) -> None:
    payment = payment_start(order=awaiting_order, gateway="alipay", actor=customer)
    alipay.user_pays(payment.merchant_no)
    assert _reply(client, alipay.notification(payment.merchant_no)) == "success"
    day = timezone.localdate(Payment.objects.get(pk=payment.pk).paid_at)
    call_command("payments_reconcile", "--date", day.isoformat(), "--gateway", "alipay")
    assert "一致 1 笔" in capsys.readouterr().out
    # Alipay's record says a different amount.
    alipay.trades[payment.merchant_no]["total_amount"] = "7.00"
    with pytest.raises(CommandError) as differences:
        call_command("payments_reconcile", "--date", day.isoformat(), "--gateway", "alipay")
    assert differences.value.returncode == 1
    assert "amount_mismatch" in capsys.readouterr().out
    # Alipay has no record of it at all.
    alipay.trades.pop(payment.merchant_no)
    with pytest.raises(CommandError):
        call_command("payments_reconcile", "--date", day.isoformat(), "--gateway", "alipay")
    assert "missing_at_gateway" in capsys.readouterr().out


def test_amount_conversion_is_exact() -> None:
    assert yuan_to_fen("700.00") == 70000
    assert yuan_to_fen("0.01") == 1
    assert yuan_to_fen("19.9") == 1990
    assert yuan_to_fen("1234567.89") == 123456789
    for bad in ("700.001", "abc", "", "NaN", "Infinity"):
        with pytest.raises(ValueError):  # noqa: PT011 - one message per cause is not the point here
            yuan_to_fen(bad)
