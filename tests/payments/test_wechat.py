"""WeChat Pay v3 Native through the real wechatpayv3 SDK against a local fake
of the WeChat Pay API: real RSA signatures both ways, real AES-GCM resources."""

from __future__ import annotations

import datetime
import secrets
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django.fixtures import Settings

from certdesk.accounts.models import User
from certdesk.audit.models import AuditRecord
from certdesk.core.errors import DomainError
from certdesk.orders.models import Order, OrderEvent, OrderStatus
from certdesk.orders.services import order_cancel
from certdesk.payments.models import Payment, PaymentCallback, PaymentStatus, Refund, RefundStatus
from certdesk.payments.services import payment_refund, payment_start, payments_sync
from tests.payments.conftest import APPID, MCHID, Keys, post_callback
from tests.payments.fakes import FakeWeChatPay, rsa_sign

pytestmark = pytest.mark.django_db


@pytest.fixture
def started(awaiting_order: Order, customer: User, wechat: FakeWeChatPay) -> Payment:
    payment = payment_start(order=awaiting_order, gateway="wechat", actor=customer)
    wechat.user_pays(payment.merchant_no)
    return payment


def test_native_order_through_the_sdk(awaiting_order: Order, customer_client: Client, wechat: FakeWeChatPay) -> None:
    response = customer_client.post(
        reverse("payments:pay", kwargs={"number": awaiting_order.number}), {"gateway": "wechat"}
    )
    payment = Payment.objects.get(order=awaiting_order)
    assert payment.code_url.startswith("weixin://wxpay/bizpayurl?pr=")
    trade = wechat.trades[payment.merchant_no]
    assert trade["total"] == 70000
    assert "机构证书（签名+加密）" in trade["description"]
    # The QR code lives as long as our payment, in Beijing time.
    assert datetime.datetime.fromisoformat(trade["time_expire"]) == payment.expires_at.replace(microsecond=0)
    page = customer_client.get(response["Location"]).content.decode()
    assert "<svg" in page and "微信支付" in page
    assert 'data-status="pending"' in page


def test_a_forged_gateway_answer_is_not_believed(
    awaiting_order: Order, customer: User, wechat: FakeWeChatPay, keys: Keys
) -> None:
    wechat.platform_key = keys.stranger  # someone in the middle answering
    with pytest.raises(DomainError) as refused:
        payment_start(order=awaiting_order, gateway="wechat", actor=customer)
    assert refused.value.code == "gateway_unavailable"
    payment = Payment.objects.get(order=awaiting_order)
    assert (payment.code_url, payment.status) == ("", PaymentStatus.CLOSED)  # nobody saw a QR code
    wechat.platform_key = keys.platform
    retried = payment_start(order=awaiting_order, gateway="wechat", actor=customer)
    assert retried.merchant_no.endswith("P02") and retried.code_url.startswith("weixin://")


def test_valid_callback_pays_once(client: Client, started: Payment, wechat: FakeWeChatPay) -> None:
    body, headers = wechat.notification(started.merchant_no)
    assert post_callback(client, "wechat", body, headers) == 204
    assert post_callback(client, "wechat", body, headers) == 204  # WeChat repeats for 24 h
    order = Order.objects.get(pk=started.order_id)
    assert order.status == OrderStatus.PAID
    events = OrderEvent.objects.filter(order=order, kind="paid")
    assert events.count() == 1
    assert events[0].data["gateway_txn_id"] == wechat.trades[started.merchant_no]["transaction_id"]
    assert AuditRecord.objects.filter(action="order.paid", object_id=order.number).count() == 1
    payment = Payment.objects.get(pk=started.pk)
    assert payment.paid_at == datetime.datetime.fromisoformat(wechat.trades[started.merchant_no]["success_time"])
    assert payment.gateway_data["data"]["trade_state"] == "SUCCESS"
    assert list(PaymentCallback.objects.order_by("id").values_list("outcome", flat=True)) == ["paid", "duplicate"]
    assert PaymentCallback.objects.first().headers["wechatpay-serial"] == wechat.platform_serial  # type: ignore[union-attr]


def _refused(client: Client, payment: Payment, body: bytes, headers: dict[str, str], reason: str) -> None:
    assert post_callback(client, "wechat", body, headers) == 400
    order = Order.objects.get(pk=payment.order_id)
    assert order.status == OrderStatus.AWAITING_PAYMENT
    assert not OrderEvent.objects.filter(order=order, kind="paid").exists()
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.PENDING
    logged = PaymentCallback.objects.latest("id")
    assert (logged.outcome, logged.reason) == ("rejected", reason)
    assert AuditRecord.objects.filter(action="payment.callback_refused", data__reason=reason).count() == 1


def test_refused_bad_signature(client: Client, started: Payment, wechat: FakeWeChatPay, keys: Keys) -> None:
    body, headers = wechat.notification(started.merchant_no)
    message = f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n{body.decode()}\n"
    headers["Wechatpay-Signature"] = rsa_sign(keys.stranger, message)
    _refused(client, started, body, headers, "signature_invalid")


def test_refused_tampered_body(client: Client, started: Payment, wechat: FakeWeChatPay) -> None:
    body, headers = wechat.notification(started.merchant_no)
    _refused(client, started, body.replace(b'"summary"', b'"summary" '), headers, "signature_invalid")


def test_refused_changed_amount(client: Client, started: Payment, wechat: FakeWeChatPay) -> None:
    body, headers = wechat.notification(started.merchant_no, resource={"amount": {"total": 1, "currency": "CNY"}})
    _refused(client, started, body, headers, "amount_mismatch")


def test_refused_other_app(client: Client, started: Payment, wechat: FakeWeChatPay) -> None:
    body, headers = wechat.notification(started.merchant_no, resource={"appid": "wx0000000000000000"})
    _refused(client, started, body, headers, "app_mismatch")


def test_refused_other_merchant(client: Client, started: Payment, wechat: FakeWeChatPay) -> None:
    body, headers = wechat.notification(started.merchant_no, resource={"mchid": "1900000999"})
    _refused(client, started, body, headers, "merchant_mismatch")


def test_refused_unknown_order(client: Client, started: Payment, wechat: FakeWeChatPay) -> None:
    body, headers = wechat.notification(started.merchant_no, resource={"out_trade_no": "XB2601010000000P01"})
    _refused(client, started, body, headers, "unknown_order")


def test_refused_stale_timestamp(client: Client, started: Payment, wechat: FakeWeChatPay) -> None:
    body, headers = wechat.notification(started.merchant_no, timestamp=int(time.time()) - 6 * 60)
    _refused(client, started, body, headers, "stale")


def test_refused_probe_signature(client: Client, started: Payment, wechat: FakeWeChatPay) -> None:
    body, headers = wechat.notification(started.merchant_no, signature="WECHATPAY/SIGNTEST/" + secrets.token_hex(64))
    _refused(client, started, body, headers, "probe_signature")


def test_refused_unknown_serial(client: Client, started: Payment, wechat: FakeWeChatPay) -> None:
    body, headers = wechat.notification(started.merchant_no, serial="PUB_KEY_ID_SOMEONE_ELSE")
    _refused(client, started, body, headers, "unknown_serial")


def test_refused_wrong_apiv3_key(client: Client, started: Payment, wechat: FakeWeChatPay) -> None:
    wechat.apiv3_key = secrets.token_hex(16)  # the resource cannot be decrypted with ours
    body, headers = wechat.notification(started.merchant_no)
    _refused(client, started, body, headers, "signature_invalid")


@pytest.mark.parametrize(
    ("event_type", "trade_state"), [("TRANSACTION.SUCCESS", "NOTPAY"), ("TRANSACTION.CLOSED", "SUCCESS")]
)
def test_non_success_pays_nothing(
    client: Client, started: Payment, wechat: FakeWeChatPay, event_type: str, trade_state: str
) -> None:
    body, headers = wechat.notification(
        started.merchant_no, event_type=event_type, resource={"trade_state": trade_state}
    )
    assert post_callback(client, "wechat", body, headers) == 204
    assert Order.objects.get(pk=started.order_id).status == OrderStatus.AWAITING_PAYMENT
    assert Payment.objects.get(pk=started.pk).status == PaymentStatus.PENDING
    assert PaymentCallback.objects.latest("id").outcome == "ignored"


def test_refund_notice_is_acknowledged_and_changes_nothing(
    client: Client, started: Payment, wechat: FakeWeChatPay
) -> None:
    body, headers = wechat.notification(started.merchant_no, event_type="REFUND.SUCCESS")
    assert post_callback(client, "wechat", body, headers) == 204
    assert PaymentCallback.objects.latest("id").reason == "REFUND.SUCCESS"
    assert Order.objects.get(pk=started.order_id).status == OrderStatus.AWAITING_PAYMENT


def test_periodic_query_applies_a_missed_callback(started: Payment, wechat: FakeWeChatPay) -> None:
    assert payments_sync(now=timezone.now() + datetime.timedelta(minutes=2)) == {"paid": 1}
    order = Order.objects.get(pk=started.order_id)
    assert order.status == OrderStatus.PAID
    assert ("GET", f"/v3/pay/transactions/out-trade-no/{started.merchant_no}?mchid={MCHID}") in wechat.requests


def test_query_unpaid_then_close_when_expired(awaiting_order: Order, customer: User, wechat: FakeWeChatPay) -> None:
    payment = payment_start(order=awaiting_order, gateway="wechat", actor=customer)
    assert payments_sync(now=timezone.now() + datetime.timedelta(minutes=2)) == {"unpaid": 1}
    assert payments_sync(now=timezone.now() + datetime.timedelta(hours=2, minutes=1)) == {"closed": 1}
    assert wechat.trades[payment.merchant_no]["state"] == "CLOSED"
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.EXPIRED


def test_cancel_closes_the_open_transaction(awaiting_order: Order, customer: User, wechat: FakeWeChatPay) -> None:
    payment = payment_start(order=awaiting_order, gateway="wechat", actor=customer)
    order_cancel(order=awaiting_order, actor=customer)
    assert wechat.trades[payment.merchant_no]["state"] == "CLOSED"
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.CLOSED
    assert Order.objects.get(pk=awaiting_order.pk).status == OrderStatus.CANCELLED


def test_cancel_refused_while_the_gateway_is_down(awaiting_order: Order, customer: User, wechat: FakeWeChatPay) -> None:
    payment = payment_start(order=awaiting_order, gateway="wechat", actor=customer)
    wechat.down = True
    with pytest.raises(DomainError) as refused:
        order_cancel(order=awaiting_order, actor=customer)
    assert refused.value.code == "gateway_unavailable"
    assert Order.objects.get(pk=awaiting_order.pk).status == OrderStatus.AWAITING_PAYMENT
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.PENDING


def test_new_merchant_number_after_expiry_and_old_one_closed(
    awaiting_order: Order, customer: User, wechat: FakeWeChatPay
) -> None:
    first = payment_start(order=awaiting_order, gateway="wechat", actor=customer)
    Payment.objects.filter(pk=first.pk).update(expires_at=timezone.now())
    second = payment_start(order=awaiting_order, gateway="wechat", actor=customer)
    assert second.merchant_no != first.merchant_no
    assert wechat.trades[first.merchant_no]["state"] == "CLOSED"
    assert wechat.trades[second.merchant_no]["state"] == "NOTPAY"


def test_refund_twice_one_refund_at_the_gateway(
    client: Client, started: Payment, wechat: FakeWeChatPay, reviewer: User
) -> None:
    body, headers = wechat.notification(started.merchant_no)
    assert post_callback(client, "wechat", body, headers) == 204
    order = Order.objects.get(pk=started.order_id)
    payment_refund(order=order, actor=reviewer, reason="客户申请退款")
    payment_refund(order=order, actor=reviewer, reason="客户申请退款")
    assert len(wechat.refunds) == 1
    assert wechat.refunds[f"{started.merchant_no}R"]["amount"] == {"refund": 70000, "total": 70000, "currency": "CNY"}
    assert OrderEvent.objects.filter(order=order, kind="refunded").count() == 1
    assert Order.objects.get(pk=order.pk).status == OrderStatus.REFUNDED


def test_refund_in_progress_is_followed_by_the_periodic_task(
    client: Client, started: Payment, wechat: FakeWeChatPay, reviewer: User
) -> None:
    body, headers = wechat.notification(started.merchant_no)
    post_callback(client, "wechat", body, headers)
    wechat.refund_status = "PROCESSING"
    order = payment_refund(order=Order.objects.get(pk=started.order_id), actor=reviewer, reason="退款")
    assert order.status == OrderStatus.REFUNDED  # accepted by WeChat
    refund = Refund.objects.get()
    assert refund.status == RefundStatus.PROCESSING
    assert Payment.objects.get(pk=started.pk).status == PaymentStatus.PAID
    wechat.refunds[refund.refund_no]["status"] = "SUCCESS"
    assert payments_sync()["refund_succeeded"] == 1
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED and refund.completed_at is not None
    assert Payment.objects.get(pk=started.pk).status == PaymentStatus.REFUNDED


def test_reconciliation_against_the_bill(
    client: Client, awaiting_order: Order, customer: User, wechat: FakeWeChatPay, capsys: pytest.CaptureFixture[str]
) -> None:
    payment = payment_start(order=awaiting_order, gateway="wechat", actor=customer)
    wechat.user_pays(payment.merchant_no)
    body, headers = wechat.notification(payment.merchant_no)
    assert post_callback(client, "wechat", body, headers) == 204
    day = timezone.localdate(Payment.objects.get(pk=payment.pk).paid_at)
    call_command("payments_reconcile", "--date", day.isoformat(), "--gateway", "wechat")
    assert "一致 1 笔，差异 0 处" in capsys.readouterr().out

    # Paid at WeChat, never told to us: missing locally.
    wechat.trades["XB2611270000000P01"] = {
        **wechat.trades[payment.merchant_no],
        "out_trade_no": "XB2611270000000P01",
        "transaction_id": "4200000000000000000000000001",
    }
    with pytest.raises(CommandError) as differences:
        call_command("payments_reconcile", "--date", day.isoformat(), "--gateway", "wechat")
    assert differences.value.returncode == 1
    out = capsys.readouterr().out
    assert "missing_locally" in out and "XB2611270000000P01" in out and "700.00" in out


def test_platform_certificate_mode(
    client: Client, awaiting_order: Order, customer: User, keys: Keys, settings: Settings, tmp_path: Path
) -> None:
    """Without 微信支付公钥: the SDK downloads the platform certificate (encrypted with the
    APIv3 key) and callbacks are verified with the certificate named by Wechatpay-Serial."""
    serial = x509.random_serial_number()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(keys.platform.public_key())
        .serial_number(serial)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(keys.platform, hashes.SHA256())
    )
    apiv3_key = secrets.token_hex(16)
    fake = FakeWeChatPay(
        mchid=MCHID,
        appid=APPID,
        apiv3_key=apiv3_key,
        merchant_key=keys.merchant,
        platform_key=keys.platform,
        platform_serial=format(serial, "X"),
        platform_cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
    )
    base_url = fake.start()
    try:
        settings.PAYMENT_GATEWAYS = ["wechat"]
        settings.WECHATPAY_MCHID, settings.WECHATPAY_APPID, settings.WECHATPAY_APIV3_KEY = MCHID, APPID, apiv3_key
        settings.WECHATPAY_PRIVATE_KEY = (
            keys.merchant.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            .decode()
            .replace("\n", "\\n")  # as a one-line environment variable
        )
        settings.WECHATPAY_CERT_SERIAL_NO = "444F4864EA9B34415"
        settings.WECHATPAY_CERT_DIR = str(tmp_path / "wechatpay")
        settings.WECHATPAY_BASE_URL = base_url
        payment = payment_start(order=awaiting_order, gateway="wechat", actor=customer)
        assert ("GET", "/v3/certificates") in fake.requests
        assert (tmp_path / "wechatpay" / f"{format(serial, 'X')}.pem").is_file()
        fake.user_pays(payment.merchant_no)
        body, headers = fake.notification(payment.merchant_no)
        assert post_callback(client, "wechat", body, headers) == 204
        assert Order.objects.get(pk=awaiting_order.pk).status == OrderStatus.PAID
    finally:
        fake.stop()
