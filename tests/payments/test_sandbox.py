"""The sandbox gateway end to end, and the payment rules through it."""

from __future__ import annotations

import datetime
import json
import re
import time

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from pytest_django.fixtures import Settings

from certdesk.accounts.models import User
from certdesk.audit.models import AuditRecord
from certdesk.core.errors import DomainError, PermissionDenied
from certdesk.orders.models import Order, OrderEvent, OrderStatus
from certdesk.orders.services import order_cancel
from certdesk.payments.gateways.sandbox import sandbox_notification, sandbox_sign, sandbox_trade_pay
from certdesk.payments.models import (
    Payment,
    PaymentCallback,
    PaymentStatus,
    Refund,
    SandboxRefund,
    SandboxTrade,
    SandboxTradeStatus,
)
from certdesk.payments.services import payment_cancel_paid_order, payment_refund, payment_start, payments_sync
from tests.payments.conftest import post_callback

pytestmark = pytest.mark.django_db


def _paid_events(order: Order) -> int:
    return OrderEvent.objects.filter(order=order, kind="paid").count()


# ----------------------------------------------------------------------------- the page


def test_pay_page_owner_other_and_anonymous(
    awaiting_order: Order, customer_client: Client, other_customer: User
) -> None:
    url = reverse("payments:pay", kwargs={"number": awaiting_order.number})
    page = customer_client.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert "¥700.00" in text
    assert "证书新办 · 机构证书（签名+加密） · 2年" in text
    assert 'value="sandbox"' in text
    other = Client()
    other.force_login(other_customer)
    assert other.get(url).status_code == 404
    assert other.post(url, {"gateway": "sandbox"}).status_code == 404
    assert other.get(reverse("payments:status", kwargs={"number": awaiting_order.number})).status_code == 404
    anonymous = Client().get(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("accounts:login"))
    assert not Payment.objects.exists()


def test_sandbox_flow_end_to_end_over_http(awaiting_order: Order, customer_client: Client) -> None:
    pay_url = reverse("payments:pay", kwargs={"number": awaiting_order.number})
    started = customer_client.post(pay_url, {"gateway": "sandbox"})
    assert started.status_code == 302
    page = customer_client.get(started["Location"]).content.decode()
    assert "<svg" in page  # the QR code, inline
    assert 'hx-trigger="every 3s"' in page
    sandbox_url = re.search(r'href="(http://testserver/payments/sandbox/pay/[^"]+)"', page)
    assert sandbox_url is not None

    payer = Client()  # the phone that scanned: not logged in to the portal
    sandbox_page = payer.get(sandbox_url.group(1))
    assert sandbox_page.status_code == 200
    assert "确认支付" in sandbox_page.content.decode()
    assert "¥700.00" in sandbox_page.content.decode()
    confirmed = payer.post(sandbox_url.group(1), follow=True)
    assert "支付成功，已通知商户" in confirmed.content.decode()

    awaiting_order.refresh_from_db()
    assert awaiting_order.status == OrderStatus.PAID
    assert _paid_events(awaiting_order) == 1
    status = customer_client.get(reverse("payments:status", kwargs={"number": awaiting_order.number}))
    assert 'data-status="paid"' in status.content.decode()
    assert "支付成功" in status.content.decode()
    assert "hx-trigger" not in status.content.decode()  # polling stops
    assert reverse("orders:detail", kwargs={"number": awaiting_order.number}) in status.content.decode()
    payment = Payment.objects.get(order=awaiting_order)
    assert payment.status == PaymentStatus.PAID and payment.settles_order
    assert payment.gateway_txn_id.startswith("SBX")
    assert PaymentCallback.objects.get(payment=payment).outcome == "paid"
    assert AuditRecord.objects.filter(action="order.paid", object_id=awaiting_order.number).count() == 1

    # Paying the same trade again changes nothing more.
    payer.post(sandbox_url.group(1))
    assert _paid_events(awaiting_order) == 1
    assert "支付成功" in customer_client.get(pay_url).content.decode()


def test_open_qr_code_is_reused_until_it_expires(awaiting_order: Order, customer: User) -> None:
    first = payment_start(order=awaiting_order, gateway="sandbox", actor=customer)
    assert first.merchant_no == f"{awaiting_order.number}P01"
    assert abs(first.expires_at - first.created_at - datetime.timedelta(hours=2)) < datetime.timedelta(seconds=1)
    assert payment_start(order=awaiting_order, gateway="sandbox", actor=customer).pk == first.pk

    Payment.objects.filter(pk=first.pk).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    second = payment_start(order=awaiting_order, gateway="sandbox", actor=customer)
    assert second.merchant_no == f"{awaiting_order.number}P02"
    assert second.code_url
    first.refresh_from_db()
    assert first.status == PaymentStatus.EXPIRED
    assert SandboxTrade.objects.get(merchant_no=first.merchant_no).status == SandboxTradeStatus.CLOSED
    with pytest.raises(DomainError):  # the old QR code can no longer be paid
        sandbox_trade_pay(merchant_no=first.merchant_no)


def test_expired_qr_code_shows_expired_on_the_page(
    awaiting_order: Order, customer: User, customer_client: Client
) -> None:
    payment = payment_start(order=awaiting_order, gateway="sandbox", actor=customer)
    Payment.objects.filter(pk=payment.pk).update(expires_at=timezone.now() - datetime.timedelta(minutes=1))
    page = customer_client.get(reverse("payments:pay", kwargs={"number": awaiting_order.number})).content.decode()
    assert 'data-status="expired"' in page
    assert "二维码已过期" in page


def test_only_the_owner_and_only_awaiting_orders(awaiting_order: Order, other_customer: User, customer: User) -> None:
    with pytest.raises(PermissionDenied):
        payment_start(order=awaiting_order, gateway="sandbox", actor=other_customer)
    with pytest.raises(DomainError) as refused:
        payment_start(order=awaiting_order, gateway="wechat", actor=customer)  # not enabled
    assert refused.value.code == "gateway_disabled"
    Order.objects.filter(pk=awaiting_order.pk).update(status=OrderStatus.CANCELLED)
    with pytest.raises(DomainError) as refused:
        payment_start(order=awaiting_order, gateway="sandbox", actor=customer)
    assert refused.value.code == "not_payable"


# ----------------------------------------------------------------------------- callbacks refused


@pytest.fixture
def started(awaiting_order: Order, customer: User) -> Payment:
    payment = payment_start(order=awaiting_order, gateway="sandbox", actor=customer)
    sandbox_trade_pay(merchant_no=payment.merchant_no)
    return payment


def _assert_refused(client: Client, payment: Payment, body: bytes, headers: dict[str, str], reason: str) -> None:
    assert post_callback(client, "sandbox", body, headers) == 400
    payment.order.refresh_from_db()
    assert payment.order.status == OrderStatus.AWAITING_PAYMENT
    assert _paid_events(payment.order) == 0
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.PENDING
    logged = PaymentCallback.objects.latest("id")
    assert (logged.outcome, logged.reason) == ("rejected", reason)
    assert AuditRecord.objects.filter(action="payment.callback_refused", data__reason=reason).exists()


def test_valid_sandbox_callback_through_the_endpoint(client: Client, started: Payment) -> None:
    body, headers = sandbox_notification(merchant_no=started.merchant_no)
    assert post_callback(client, "sandbox", body, headers) == 204
    assert post_callback(client, "sandbox", body, headers) == 204  # duplicate
    started.order.refresh_from_db()
    assert started.order.status == OrderStatus.PAID
    assert _paid_events(started.order) == 1
    assert list(PaymentCallback.objects.order_by("id").values_list("outcome", flat=True)) == ["paid", "duplicate"]


def test_refused_bad_signature(client: Client, started: Payment) -> None:
    body, headers = sandbox_notification(merchant_no=started.merchant_no)
    tampered = body.replace(b'"trade_state":"SUCCESS"', b'"trade_state":"SUCCESS" ')
    _assert_refused(client, started, tampered, headers, "signature_invalid")


def test_refused_changed_amount(client: Client, started: Payment) -> None:
    body, headers = sandbox_notification(merchant_no=started.merchant_no, overrides={"amount_fen": 1})
    _assert_refused(client, started, body, headers, "amount_mismatch")


def test_refused_other_merchant(client: Client, started: Payment) -> None:
    body, headers = sandbox_notification(merchant_no=started.merchant_no, overrides={"merchant_id": "someone-else"})
    _assert_refused(client, started, body, headers, "merchant_mismatch")


def test_refused_unknown_order(client: Client, started: Payment) -> None:
    body, headers = sandbox_notification(merchant_no=started.merchant_no, overrides={"out_trade_no": "XB000P01"})
    _assert_refused(client, started, body, headers, "unknown_order")


def test_refused_stale_timestamp(client: Client, started: Payment) -> None:
    body, headers = sandbox_notification(merchant_no=started.merchant_no, timestamp=int(time.time()) - 301)
    _assert_refused(client, started, body, headers, "stale")


def test_refused_unsigned(client: Client, started: Payment) -> None:
    body, _headers = sandbox_notification(merchant_no=started.merchant_no)
    _assert_refused(client, started, body, {}, "unsigned")


def test_non_success_status_pays_nothing(client: Client, started: Payment) -> None:
    body, headers = sandbox_notification(
        merchant_no=started.merchant_no, overrides={"event_type": "TRANSACTION.NOTPAY", "trade_state": "NOTPAY"}
    )
    assert post_callback(client, "sandbox", body, headers) == 204  # understood; nothing to retry
    started.order.refresh_from_db()
    assert started.order.status == OrderStatus.AWAITING_PAYMENT
    assert Payment.objects.get(pk=started.pk).status == PaymentStatus.PENDING
    logged = PaymentCallback.objects.latest("id")
    assert (logged.verified, logged.outcome, logged.reason) == (True, "ignored", "status_pending")
    assert AuditRecord.objects.filter(action="payment.callback_ignored", object_id=started.merchant_no).exists()


def test_malformed_body_signed_is_refused(client: Client, started: Payment) -> None:
    body = json.dumps({"out_trade_no": started.merchant_no, "amount_fen": "70000"}).encode()
    _assert_refused(client, started, body, sandbox_sign(body=body), "malformed")


def test_callbacks_for_unknown_or_unconfigured_gateways(client: Client, settings: Settings) -> None:
    assert post_callback(client, "nope", b"{}") == 404
    assert post_callback(client, "wechat", b"{}") == 503  # known but not configured
    settings.PAYMENT_GATEWAYS = []
    assert post_callback(client, "sandbox", b"{}") == 404  # the sandbox only ever works while enabled
    assert not PaymentCallback.objects.exists()


# ----------------------------------------------------------------------------- periodic, cancel


def test_periodic_query_applies_a_missed_callback(started: Payment) -> None:
    now = timezone.now()
    assert payments_sync(now=now) == {}  # younger than a minute: its callback may still come
    assert payments_sync(now=now + datetime.timedelta(minutes=2)) == {"paid": 1}
    started.order.refresh_from_db()
    assert started.order.status == OrderStatus.PAID
    event = OrderEvent.objects.get(order=started.order, kind="paid")
    assert event.data["source"] == "query"
    assert payments_sync(now=now + datetime.timedelta(minutes=3)) == {}


def test_periodic_task_closes_expired_payments(awaiting_order: Order, customer: User) -> None:
    payment = payment_start(order=awaiting_order, gateway="sandbox", actor=customer)
    assert payments_sync(now=timezone.now() + datetime.timedelta(minutes=5)) == {"unpaid": 1}
    assert payments_sync(now=timezone.now() + datetime.timedelta(hours=3)) == {"closed": 1}
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.EXPIRED
    assert SandboxTrade.objects.get(merchant_no=payment.merchant_no).status == SandboxTradeStatus.CLOSED


def test_periodic_task_is_registered() -> None:
    from certdesk.core.periodic import periodic_tasks

    entry = next(e for e in periodic_tasks() if e.name.endswith("payments_sync_task"))
    assert entry.every == datetime.timedelta(minutes=1)


def test_cancel_closes_the_open_transaction(awaiting_order: Order, customer: User) -> None:
    payment = payment_start(order=awaiting_order, gateway="sandbox", actor=customer)
    order_cancel(order=awaiting_order, actor=customer, reason="不办了")
    awaiting_order.refresh_from_db()
    assert awaiting_order.status == OrderStatus.CANCELLED
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CLOSED
    assert SandboxTrade.objects.get(merchant_no=payment.merchant_no).status == SandboxTradeStatus.CLOSED
    with pytest.raises(DomainError):
        sandbox_trade_pay(merchant_no=payment.merchant_no)


def test_cancel_refused_when_the_gateway_says_paid(started: Payment, customer: User) -> None:
    # Paid at the gateway, callback not here yet: cancelling must not win.
    with pytest.raises(DomainError) as refused:
        order_cancel(order=started.order, actor=customer)
    assert refused.value.code == "payment_succeeded"
    started.order.refresh_from_db()
    assert started.order.status == OrderStatus.AWAITING_PAYMENT
    assert not OrderEvent.objects.filter(order=started.order, kind="cancelled").exists()
    payments_sync(now=timezone.now() + datetime.timedelta(minutes=2))
    started.order.refresh_from_db()
    assert started.order.status == OrderStatus.PAID


def test_payment_after_cancel_is_kept_as_surplus(started: Payment) -> None:
    Order.objects.filter(pk=started.order_id).update(status=OrderStatus.CANCELLED)  # cancelled elsewhere
    body, headers = sandbox_notification(merchant_no=started.merchant_no)
    assert post_callback(Client(), "sandbox", body, headers) == 204
    started.refresh_from_db()
    assert started.status == PaymentStatus.PAID and not started.settles_order
    assert OrderEvent.objects.filter(order=started.order, kind="payment_surplus").count() == 1
    assert Order.objects.get(pk=started.order_id).status == OrderStatus.CANCELLED


# ----------------------------------------------------------------------------- refunds


@pytest.fixture
def paid(started: Payment) -> Order:
    body, headers = sandbox_notification(merchant_no=started.merchant_no)
    assert post_callback(Client(), "sandbox", body, headers) == 204
    order = Order.objects.get(pk=started.order_id)
    assert order.status == OrderStatus.PAID
    return order


def test_refund_twice_refunds_once(paid: Order, reviewer: User) -> None:
    refunded = payment_refund(order=paid, actor=reviewer, reason="客户申请退款")
    assert refunded.status == OrderStatus.REFUNDED
    again = payment_refund(order=paid, actor=reviewer, reason="客户申请退款")
    assert again.status == OrderStatus.REFUNDED
    assert SandboxRefund.objects.count() == 1
    assert OrderEvent.objects.filter(order=paid, kind="refunded").count() == 1
    refund = Refund.objects.get()
    assert (refund.status, refund.amount_fen, refund.refund_no) == ("succeeded", 70000, f"{paid.number}P01R")
    assert Payment.objects.get(order=paid).status == PaymentStatus.REFUNDED
    assert SandboxTrade.objects.get().status == SandboxTradeStatus.REFUND


def test_refund_is_staff_only_and_needs_a_reason(paid: Order, customer: User, reviewer: User) -> None:
    with pytest.raises(PermissionDenied):
        payment_refund(order=paid, actor=customer, reason="x")
    with pytest.raises(DomainError) as refused:
        payment_refund(order=paid, actor=reviewer, reason=" ")
    assert refused.value.code == "reason_required"
    assert not Refund.objects.exists()


def test_refund_refused_once_fulfilment_went_further(paid: Order, reviewer: User) -> None:
    Order.objects.filter(pk=paid.pk).update(status=OrderStatus.SHIPPED)
    with pytest.raises(DomainError) as refused:
        payment_refund(order=paid, actor=reviewer, reason="客户申请退款")
    assert refused.value.code == "not_refundable"
    assert not SandboxRefund.objects.exists()


def test_refund_allowed_in_first_post_paid_state(paid: Order, reviewer: User) -> None:
    Order.objects.filter(pk=paid.pk).update(status=OrderStatus.TO_SHIP)
    assert payment_refund(order=paid, actor=reviewer, reason="未制证，退款").status == OrderStatus.REFUNDED


def test_customer_cancel_of_a_paid_order_refunds(paid: Order, customer: User, other_customer: User) -> None:
    with pytest.raises(PermissionDenied):
        payment_cancel_paid_order(order=paid, actor=other_customer)
    order = payment_cancel_paid_order(order=paid, actor=customer, reason="不需要了")
    assert order.status == OrderStatus.REFUNDED
    assert SandboxRefund.objects.count() == 1
    event = OrderEvent.objects.get(order=paid, kind="refunded")
    assert event.actor == customer and event.note == "不需要了"


def test_cancel_of_a_paid_order_is_refused_by_the_signal_path(paid: Order, customer: User) -> None:
    with pytest.raises(DomainError):
        order_cancel(order=paid, actor=customer)
    assert Order.objects.get(pk=paid.pk).status == OrderStatus.PAID


# ----------------------------------------------------------------------------- reconciliation


def test_reconciliation_finds_missing_on_either_side(
    paid: Order, customer: User, capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from certdesk.payments.gateways.sandbox import sandbox_trade_create

    payment = Payment.objects.get(order=paid)
    day = timezone.localdate(payment.paid_at)
    call_command("payments_reconcile", "--date", day.isoformat())
    out = capsys.readouterr().out
    assert "本地 1 笔，渠道 1 笔，一致 1 笔，差异 0 处" in out and "对账一致" in out

    # The gateway took money for a trade we have no record of…
    sandbox_trade_create(
        merchant_id="certdesk-sandbox",
        merchant_no="XB2611270000000P01",
        amount_fen=12345,
        description="不是我们的订单",
        expires_at=timezone.now() + datetime.timedelta(hours=1),
    )
    sandbox_trade_pay(merchant_no="XB2611270000000P01", now=payment.paid_at)
    # …and lost the record of ours.
    SandboxTrade.objects.filter(merchant_no=payment.merchant_no).delete()
    with pytest.raises(CommandError) as differences:
        call_command("payments_reconcile", "--date", day.isoformat(), "--gateway", "sandbox")
    assert differences.value.returncode == 1
    out = capsys.readouterr().out
    assert "本地 1 笔，渠道 1 笔，一致 0 笔，差异 2 处" in out
    assert "missing_locally" in out and "XB2611270000000P01" in out and "123.45" in out
    assert "missing_at_gateway" in out and payment.merchant_no in out and "700.00" in out

    # Another day: nothing on either side.
    call_command("payments_reconcile", "--date", (day - datetime.timedelta(days=1)).isoformat())
    assert "对账一致" in capsys.readouterr().out


def test_gateway_settings_check(settings: Settings) -> None:
    from certdesk.payments.checks import gateway_settings_check

    assert gateway_settings_check() == []
    settings.PAYMENT_GATEWAYS = ["sandbox", "wechat", "paypal"]
    assert sorted(str(message.id) for message in gateway_settings_check()) == ["payments.E001", "payments.E003"]
    settings.PRODUCTION = True
    settings.PAYMENT_GATEWAYS = ["sandbox"]
    assert gateway_settings_check() == []  # left out by itself in production
    settings.PAYMENT_SANDBOX_IN_PRODUCTION = True
    assert [message.id for message in gateway_settings_check()] == ["payments.W001"]


def test_production_never_offers_the_sandbox(awaiting_order: Order, customer: User, settings: Settings) -> None:
    settings.PRODUCTION = True
    with pytest.raises(DomainError) as refused:
        payment_start(order=awaiting_order, gateway="sandbox", actor=customer)
    assert refused.value.code == "gateway_disabled"
    assert Client().get(reverse("payments:sandbox_pay", kwargs={"merchant_no": "XB1P01"})).status_code == 404


def test_an_old_qr_code_paid_meanwhile_is_found_when_replacing_it(awaiting_order: Order, customer: User) -> None:
    first = payment_start(order=awaiting_order, gateway="sandbox", actor=customer)
    sandbox_trade_pay(merchant_no=first.merchant_no)  # paid; its callback lost
    Payment.objects.filter(pk=first.pk).update(expires_at=timezone.now() + datetime.timedelta(seconds=30))
    with pytest.raises(DomainError) as refused:
        payment_start(order=awaiting_order, gateway="sandbox", actor=customer)
    assert refused.value.code == "not_payable"
    awaiting_order.refresh_from_db()
    assert awaiting_order.status == OrderStatus.PAID
    assert OrderEvent.objects.get(order=awaiting_order, kind="paid").data["source"] == "close"
    second = Payment.objects.get(order=awaiting_order, merchant_no__endswith="P02")
    assert second.status == PaymentStatus.CLOSED
    assert not SandboxTrade.objects.filter(merchant_no=second.merchant_no).exists()


def test_admin_refund_action_needs_the_permission(paid: Order, reviewer: User, rf: RequestFactory) -> None:
    from django.contrib import admin
    from django.contrib.auth.models import Permission
    from django.contrib.messages.storage.fallback import FallbackStorage

    from certdesk.payments.admin import PaymentAdmin

    model_admin = PaymentAdmin(Payment, admin.site)
    request = rf.post("/staff/admin/payments/payment/")
    request.user = reviewer
    request.session = {}  # type: ignore[assignment]
    request._messages = FallbackStorage(request)  # type: ignore[attr-defined]
    assert "refund_selected" not in model_admin.get_actions(request)

    reviewer.user_permissions.add(Permission.objects.get(codename="refund_payment"))
    request.user = User.objects.get(pk=reviewer.pk)  # permissions are cached per instance
    assert "refund_selected" in model_admin.get_actions(request)
    model_admin.refund_selected(request, Payment.objects.filter(order=paid))
    assert Order.objects.get(pk=paid.pk).status == OrderStatus.REFUNDED
    assert SandboxRefund.objects.count() == 1
