"""The sandbox gateway: a payment provider simulated inside the portal, so that
`make run` can pay without a merchant account.

Two halves, kept apart as if they were two companies:

* the **provider** (`sandbox_*` functions): its own ledger (`SandboxTrade`,
  `SandboxRefund`), a "scan to pay" page, and callbacks signed with its own
  Ed25519 key (made on first use, kept in the database, never in the repo);
* the **client** (`SandboxGateway`): what the portal uses, through the same
  interface and the same callback verification path as WeChat and Alipay.

A confirmed sandbox payment is delivered to the callback view as an in-process
HTTP request (raw body + signature headers): the same URL, view and
verification path as a real gateway's POST, without depending on the server
being able to reach its own address.
"""

from __future__ import annotations

import base64
import datetime
import io
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.core.handlers.wsgi import WSGIRequest
from django.db import IntegrityError, transaction
from django.urls import resolve, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from certdesk.core.errors import DomainError
from certdesk.payments import conf
from certdesk.payments.errors import CallbackRejected, GatewayUnavailable
from certdesk.payments.gateways.base import (
    CallbackEvent,
    CallbackReply,
    GatewayTransaction,
    PaymentGateway,
    QrPayment,
    RecordLine,
    RefundOutcome,
    RefundResult,
    TxnStatus,
    json_loads_strict,
    json_reply,
)
from certdesk.payments.models import SandboxKey, SandboxRefund, SandboxTrade, SandboxTradeStatus

EVENT_SUCCESS = "TRANSACTION.SUCCESS"
H_KEY_ID, H_TIMESTAMP, H_NONCE, H_SIGNATURE = (
    "sandbox-key-id",
    "sandbox-timestamp",
    "sandbox-nonce",
    "sandbox-signature",
)

# ----------------------------------------------------------------------------- provider


def _signing_key() -> tuple[str, Ed25519PrivateKey]:
    row = SandboxKey.objects.order_by("id").first()
    if row is None:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        try:
            with transaction.atomic():
                row = SandboxKey.objects.create(key_id=f"sbx-{secrets.token_hex(8)}", private_key_pem=pem)
        except IntegrityError:  # pragma: no cover - two first uses at once; take the one that won
            row = SandboxKey.objects.order_by("id").first()
            assert row is not None
    private = serialization.load_pem_private_key(row.private_key_pem.encode(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    return row.key_id, private


def sandbox_public_key(key_id: str) -> Ed25519PublicKey | None:
    row = SandboxKey.objects.filter(key_id=key_id).first()
    if row is None:
        return None
    private = serialization.load_pem_private_key(row.private_key_pem.encode(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    return private.public_key()


def sandbox_trade_get(*, merchant_no: str) -> SandboxTrade | None:
    return SandboxTrade.objects.filter(merchant_no=merchant_no).first()


def _txn_id() -> str:
    return "SBX" + timezone.localtime().strftime("%Y%m%d") + secrets.token_hex(8).upper()


@transaction.atomic
def sandbox_trade_create(
    *, merchant_id: str, merchant_no: str, amount_fen: int, description: str, expires_at: datetime.datetime
) -> SandboxTrade:
    trade, created = SandboxTrade.objects.get_or_create(
        merchant_no=merchant_no,
        defaults={
            "merchant_id": merchant_id,
            "txn_id": _txn_id(),
            "amount_fen": amount_fen,
            "description": description,
            "expires_at": expires_at,
        },
    )
    if not created and (trade.amount_fen != amount_fen or trade.merchant_id != merchant_id):
        raise GatewayUnavailable(_("沙箱：商户订单号重复。"), code="duplicate_merchant_no")
    return trade


@transaction.atomic
def sandbox_trade_pay(*, merchant_no: str, now: datetime.datetime | None = None) -> SandboxTrade:
    """The payer confirms on the 模拟支付 page."""
    now = now or timezone.now()
    trade = SandboxTrade.objects.select_for_update().filter(merchant_no=merchant_no).first()
    if trade is None:
        raise DomainError(_("交易不存在。"), code="sandbox_not_found")
    if trade.status == SandboxTradeStatus.SUCCESS:
        return trade
    if trade.status != SandboxTradeStatus.NOTPAY:
        raise DomainError(_("交易已关闭，不能支付。"), code="sandbox_closed")
    if trade.expires_at <= now:
        raise DomainError(_("二维码已过期，请在商户页面重新生成。"), code="sandbox_expired")
    trade.status = SandboxTradeStatus.SUCCESS
    trade.paid_at = now
    trade.save(update_fields=["status", "paid_at"])
    return trade


def _trade_payload(trade: SandboxTrade) -> dict[str, Any]:
    return {
        "event_type": EVENT_SUCCESS if trade.status == SandboxTradeStatus.SUCCESS else f"TRANSACTION.{trade.status}",
        "merchant_id": trade.merchant_id,
        "out_trade_no": trade.merchant_no,
        "transaction_id": trade.txn_id,
        "trade_state": trade.status,
        "amount_fen": trade.amount_fen,
        "success_time": trade.paid_at.isoformat() if trade.paid_at else None,
    }


def sandbox_sign(*, body: bytes, timestamp: int | None = None, nonce: str | None = None) -> dict[str, str]:
    """Headers that sign `body` the way the sandbox provider signs its callbacks."""
    key_id, key = _signing_key()
    timestamp = int(time.time()) if timestamp is None else timestamp
    nonce = nonce or secrets.token_hex(16)
    message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
    return {
        "Sandbox-Key-Id": key_id,
        "Sandbox-Timestamp": str(timestamp),
        "Sandbox-Nonce": nonce,
        "Sandbox-Signature": base64.b64encode(key.sign(message)).decode(),
    }


def sandbox_notification(
    *, merchant_no: str, overrides: Mapping[str, Any] | None = None, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The signed callback the provider sends for a trade (body, headers)."""
    trade = SandboxTrade.objects.get(merchant_no=merchant_no)
    payload = {**_trade_payload(trade), **(overrides or {})}
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return body, sandbox_sign(body=body, timestamp=timestamp)


def sandbox_notify(*, merchant_no: str) -> CallbackReply:
    """Deliver the trade's signed callback to the portal's callback view, as an in-process
    HTTP request: same URL, same view, same verification as a real gateway's POST, without
    needing the server to reach its own address (tests, `make run`, workers alike)."""
    body, headers = sandbox_notification(merchant_no=merchant_no)
    path = reverse("payments:callback", kwargs={"gateway": "sandbox"})
    environ = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "SERVER_NAME": "sandbox.invalid",
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        **{"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()},
    }
    match = resolve(path)
    response = match.func(WSGIRequest(environ), *match.args, **match.kwargs)
    return CallbackReply(response.status_code, response.content, response.get("Content-Type", ""))


# ----------------------------------------------------------------------------- client


def _transaction(trade: SandboxTrade) -> GatewayTransaction:
    status = {
        SandboxTradeStatus.NOTPAY: TxnStatus.PENDING,
        SandboxTradeStatus.SUCCESS: TxnStatus.SUCCESS,
        SandboxTradeStatus.REFUND: TxnStatus.REFUNDED,
        SandboxTradeStatus.CLOSED: TxnStatus.CLOSED,
    }[SandboxTradeStatus(trade.status)]
    if status == TxnStatus.PENDING and trade.expires_at <= timezone.now():
        status = TxnStatus.CLOSED  # an expired QR can no longer be paid
    return GatewayTransaction(
        merchant_no=trade.merchant_no,
        amount_fen=trade.amount_fen,
        status=status,
        gateway_txn_id=trade.txn_id,
        paid_at=trade.paid_at,
        raw=_trade_payload(trade),
    )


class SandboxGateway(PaymentGateway):
    code = "sandbox"
    label = "模拟支付（演示）"
    logged_headers = ("content-type", H_KEY_ID, H_TIMESTAMP, H_NONCE, H_SIGNATURE)

    def __init__(self, *, merchant_id: str) -> None:
        self.merchant_id = merchant_id

    def create_qr(
        self, *, merchant_no: str, amount_fen: int, description: str, expires_at: datetime.datetime
    ) -> QrPayment:
        trade = sandbox_trade_create(
            merchant_id=self.merchant_id,
            merchant_no=merchant_no,
            amount_fen=amount_fen,
            description=description,
            expires_at=expires_at,
        )
        # A path: the payment page makes it absolute with the host the customer used.
        return QrPayment(reverse("payments:sandbox_pay", kwargs={"merchant_no": trade.merchant_no}))

    def parse_callback(self, *, body: bytes, headers: Mapping[str, str]) -> CallbackEvent:
        key_id, timestamp, nonce, signature = (
            headers.get(h, "") for h in (H_KEY_ID, H_TIMESTAMP, H_NONCE, H_SIGNATURE)
        )
        if not (key_id and timestamp and nonce and signature):
            raise CallbackRejected("unsigned", "signature headers missing")
        try:
            age = abs(time.time() - int(timestamp))
        except ValueError:
            raise CallbackRejected("malformed", "timestamp") from None
        if age > conf.callback_max_age().total_seconds():
            raise CallbackRejected("stale", f"timestamp {timestamp}")
        public = sandbox_public_key(key_id)
        if public is None:
            raise CallbackRejected("unknown_key", key_id)
        try:
            public.verify(base64.b64decode(signature, validate=True), f"{timestamp}\n{nonce}\n".encode() + body + b"\n")
        except (InvalidSignature, ValueError):
            raise CallbackRejected("signature_invalid") from None
        try:
            data = json_loads_strict(body)
            merchant_no = str(data["out_trade_no"])
            amount_fen = data["amount_fen"]
            if not isinstance(amount_fen, int) or isinstance(amount_fen, bool):
                raise TypeError("amount_fen")
        except (ValueError, KeyError, TypeError) as error:
            raise CallbackRejected("malformed", str(error)) from None
        if data.get("merchant_id") != self.merchant_id:
            raise CallbackRejected("merchant_mismatch", str(data.get("merchant_id")), merchant_no=merchant_no)
        event = str(data.get("event_type", ""))
        status = TxnStatus.SUCCESS if (event == EVENT_SUCCESS and data.get("trade_state") == "SUCCESS") else None
        paid_at = _parse_time(data.get("success_time"))
        return CallbackEvent(
            event=f"{event}/{data.get('trade_state')}",
            merchant_no=merchant_no,
            transaction=GatewayTransaction(
                merchant_no=merchant_no,
                amount_fen=amount_fen,
                status=status or TxnStatus.PENDING,
                gateway_txn_id=str(data.get("transaction_id", "")),
                paid_at=paid_at,
                raw=data,
            ),
        )

    def callback_reply(self, *, ok: bool) -> CallbackReply:
        return CallbackReply(204) if ok else json_reply(400, {"code": "FAIL", "message": "rejected"})

    def query(self, *, merchant_no: str) -> GatewayTransaction | None:
        trade = SandboxTrade.objects.filter(merchant_no=merchant_no, merchant_id=self.merchant_id).first()
        return _transaction(trade) if trade else None

    def close(self, *, merchant_no: str) -> GatewayTransaction | None:
        with transaction.atomic():
            trade = SandboxTrade.objects.select_for_update().filter(merchant_no=merchant_no).first()
            if trade is None:
                return None
            if trade.status == SandboxTradeStatus.NOTPAY:
                trade.status = SandboxTradeStatus.CLOSED
                trade.closed_at = timezone.now()
                trade.save(update_fields=["status", "closed_at"])
            return _transaction(trade)

    def refund(self, *, merchant_no: str, refund_no: str, amount_fen: int, total_fen: int, reason: str) -> RefundResult:
        with transaction.atomic():
            existing = SandboxRefund.objects.filter(refund_no=refund_no).first()
            if existing is not None:
                return RefundResult(
                    refund_no=refund_no, outcome=RefundOutcome.SUCCEEDED, gateway_refund_id=existing.refund_id
                )
            trade = SandboxTrade.objects.select_for_update().filter(merchant_no=merchant_no).first()
            if trade is None or trade.status not in (SandboxTradeStatus.SUCCESS, SandboxTradeStatus.REFUND):
                return RefundResult(refund_no=refund_no, outcome=RefundOutcome.FAILED, message="交易未支付，不能退款")
            refunded = sum(r.amount_fen for r in trade.refunds.all())
            if amount_fen <= 0 or refunded + amount_fen > trade.amount_fen or total_fen != trade.amount_fen:
                return RefundResult(refund_no=refund_no, outcome=RefundOutcome.FAILED, message="退款金额不正确")
            refund = SandboxRefund.objects.create(
                trade=trade, refund_no=refund_no, refund_id="SBXR" + secrets.token_hex(8).upper(), amount_fen=amount_fen
            )
            trade.status = SandboxTradeStatus.REFUND
            trade.save(update_fields=["status"])
        return RefundResult(refund_no=refund_no, outcome=RefundOutcome.SUCCEEDED, gateway_refund_id=refund.refund_id)

    def refund_query(self, *, merchant_no: str, refund_no: str) -> RefundResult | None:
        refund = SandboxRefund.objects.filter(refund_no=refund_no, trade__merchant_no=merchant_no).first()
        if refund is None:
            return None
        return RefundResult(refund_no=refund_no, outcome=RefundOutcome.SUCCEEDED, gateway_refund_id=refund.refund_id)

    def records(self, *, day: datetime.date) -> list[RecordLine]:
        start = timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))
        trades = SandboxTrade.objects.filter(
            merchant_id=self.merchant_id,
            status__in=[SandboxTradeStatus.SUCCESS, SandboxTradeStatus.REFUND],
            paid_at__gte=start,
            paid_at__lt=start + datetime.timedelta(days=1),
        ).order_by("paid_at")
        return [
            RecordLine(merchant_no=t.merchant_no, gateway_txn_id=t.txn_id, amount_fen=t.amount_fen, paid_at=t.paid_at)
            for t in trades
        ]


def _parse_time(value: Any) -> datetime.datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)
