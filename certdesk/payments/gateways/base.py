"""The one interface every payment gateway implements, and the normalised
results they return. Services never see a gateway's own field names."""

from __future__ import annotations

import datetime
import enum
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

# Gateways, their bills and their days speak Beijing time.
BEIJING = ZoneInfo("Asia/Shanghai")


class TxnStatus(enum.StrEnum):
    PENDING = "pending"  # created, not (yet) paid
    SUCCESS = "success"  # paid
    REFUNDED = "refunded"  # paid, then (partly) refunded: the money was received
    CLOSED = "closed"  # closed, expired or revoked without payment
    FAILED = "failed"  # the payer's payment failed


@dataclass(frozen=True, kw_only=True)
class GatewayTransaction:
    """A transaction as the gateway reports it (callback or query), already verified."""

    merchant_no: str
    amount_fen: int
    status: TxnStatus
    gateway_txn_id: str = ""
    paid_at: datetime.datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def money_received(self) -> bool:
        return self.status in (TxnStatus.SUCCESS, TxnStatus.REFUNDED)


@dataclass(frozen=True, kw_only=True)
class CallbackEvent:
    """A verified callback. `transaction` is None for notices that are not about a
    payment (refund notices): acknowledged, nothing to apply."""

    event: str
    merchant_no: str = ""
    transaction: GatewayTransaction | None = None


@dataclass(frozen=True)
class QrPayment:
    code_url: str
    raw: dict[str, Any] = field(default_factory=dict)


class RefundOutcome(enum.StrEnum):
    SUCCEEDED = "succeeded"
    PROCESSING = "processing"
    FAILED = "failed"


@dataclass(frozen=True, kw_only=True)
class RefundResult:
    refund_no: str
    outcome: RefundOutcome
    gateway_refund_id: str = ""
    message: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class RecordLine:
    """One successful payment in the gateway's records for a day (its bill)."""

    merchant_no: str
    gateway_txn_id: str
    amount_fen: int
    paid_at: datetime.datetime | None = None


@dataclass(frozen=True)
class CallbackReply:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"


def json_reply(status: int, payload: dict[str, str]) -> CallbackReply:
    return CallbackReply(status, json.dumps(payload, ensure_ascii=False).encode(), "application/json; charset=utf-8")


class PaymentGateway(ABC):
    """Create a QR payment, verify callbacks, query, close, refund, list records.

    Network and remote errors surface as `GatewayUnavailable`; callbacks that
    must not be acted on as `CallbackRejected(reason)`.
    """

    code: ClassVar[str]
    label: ClassVar[str]
    # Header names (lower case) worth keeping in the callback log.
    logged_headers: ClassVar[tuple[str, ...]] = ("content-type", "user-agent")

    @abstractmethod
    def create_qr(
        self, *, merchant_no: str, amount_fen: int, description: str, expires_at: datetime.datetime
    ) -> QrPayment: ...

    @abstractmethod
    def parse_callback(self, *, body: bytes, headers: Mapping[str, str]) -> CallbackEvent:
        """Verify a callback on its raw body and headers (names in lower case) and normalise it."""

    @abstractmethod
    def callback_reply(self, *, ok: bool) -> CallbackReply:
        """What the gateway expects back: received (stop retrying) or not."""

    @abstractmethod
    def query(self, *, merchant_no: str) -> GatewayTransaction | None:
        """The transaction's state at the gateway; None when the gateway has no such transaction."""

    @abstractmethod
    def close(self, *, merchant_no: str) -> GatewayTransaction | None:
        """Close it so it can no longer be paid, and report the state afterwards: a transaction
        paid before the close arrived comes back with money_received (the caller applies it)."""

    @abstractmethod
    def refund(self, *, merchant_no: str, refund_no: str, amount_fen: int, total_fen: int, reason: str) -> RefundResult:
        """Refund; the gateway refunds one refund_no once however often this is called."""

    @abstractmethod
    def refund_query(self, *, merchant_no: str, refund_no: str) -> RefundResult | None: ...

    @abstractmethod
    def records(self, *, day: datetime.date) -> list[RecordLine]:
        """Successful payments of one (Beijing) day according to the gateway, for reconciliation."""


def json_loads_strict(text: str | bytes) -> Any:
    """json.loads that refuses a repeated key: `{"trade_state":"NOTPAY", …, "trade_state":"SUCCESS"}`
    must not be read as whichever value came last."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _value in items]
        if len(keys) != len(set(keys)):
            raise ValueError("duplicate key in JSON object")
        return dict(items)

    return json.loads(text, object_pairs_hook=pairs)
