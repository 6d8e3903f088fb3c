"""Duplicate callbacks racing each other: the order row lock lets one win."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection
from django.test import Client

from certdesk.accounts.models import User
from certdesk.invoices.models import Invoice, InvoiceStatus
from certdesk.orders.models import Order, OrderEvent, OrderStatus
from certdesk.payments.gateways.sandbox import sandbox_notification, sandbox_trade_pay
from certdesk.payments.models import Payment, PaymentCallback, PaymentStatus
from certdesk.payments.services import payment_start
from tests.payments.conftest import post_callback
from tests.payments.fakes import FakeAlipay, FakeWeChatPay

THREADS = 50


def _race(gateway: str, body: bytes, headers: dict[str, str]) -> Counter[int]:
    barrier = threading.Barrier(THREADS)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            client = Client()
            barrier.wait()
            statuses.append(post_callback(client, gateway, body, headers))
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return Counter(statuses)


def _signed_callback(
    gateway: str, payment: Payment, wechat: FakeWeChatPay, alipay: FakeAlipay
) -> tuple[bytes, dict[str, str]]:
    if gateway == "sandbox":
        sandbox_trade_pay(merchant_no=payment.merchant_no)
        return sandbox_notification(merchant_no=payment.merchant_no)
    if gateway == "wechat":
        wechat.user_pays(payment.merchant_no)
        return wechat.notification(payment.merchant_no)
    alipay.user_pays(payment.merchant_no)
    return alipay.notification(payment.merchant_no), {}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("gateway", ["sandbox", "wechat", "alipay"])
def test_concurrent_identical_callbacks_pay_once(
    gateway: str,
    awaiting_order: Order,
    customer: User,
    wechat: FakeWeChatPay,
    alipay: FakeAlipay,
) -> None:
    if connection.vendor == "sqlite":
        pytest.skip("row locks need a server database; CI runs this on PostgreSQL")
    payment = payment_start(order=awaiting_order, gateway=gateway, actor=customer)
    body, headers = _signed_callback(gateway, payment, wechat, alipay)
    statuses = _race(gateway, body, headers)
    assert statuses == Counter({204 if gateway != "alipay" else 200: THREADS})
    order = Order.objects.get(pk=awaiting_order.pk)
    assert order.status == OrderStatus.PAID
    assert OrderEvent.objects.filter(order=order, kind="paid").count() == 1
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.PAID
    outcomes = Counter(PaymentCallback.objects.values_list("outcome", flat=True))
    assert outcomes == Counter({"paid": 1, "duplicate": THREADS - 1})
    # … and exactly one invoice, issued once.
    invoice = Invoice.objects.get(order=order)
    assert invoice.status == InvoiceStatus.ISSUED
    assert invoice.sent_count == 1
