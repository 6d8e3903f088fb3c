"""Which status may follow which, per business type (DESIGN.md, 订单状态)."""

from __future__ import annotations

from certdesk.core.choices import BusinessType
from certdesk.orders.models import OrderStatus as S

_BEFORE_PAYMENT: dict[str, set[str]] = {
    S.DRAFT: {S.SUBMITTED, S.CANCELLED},
    S.SUBMITTED: {S.APPROVED, S.AWAITING_PAYMENT, S.PAID, S.REJECTED, S.CANCELLED},
    S.REJECTED: {S.SUBMITTED, S.CANCELLED},
    S.APPROVED: {S.AWAITING_PAYMENT, S.PAID, S.CANCELLED},
    S.AWAITING_PAYMENT: {S.PAID, S.CANCELLED},
}
_SHIPPED_KINDS: dict[str, set[str]] = {
    S.PAID: {S.TO_SHIP, S.REFUNDED},
    # COMPLETED from TO_SHIP only when a 改派 order takes over the delivery.
    S.TO_SHIP: {S.SHIPPED, S.AWAITING_PICKUP, S.REFUNDED, S.COMPLETED},
    S.SHIPPED: {S.COMPLETED},
    S.AWAITING_PICKUP: {S.COMPLETED},
}
_AFTER_PAYMENT: dict[str, dict[str, set[str]]] = {
    BusinessType.NEW: _SHIPPED_KINDS,
    BusinessType.REISSUE: _SHIPPED_KINDS,
    BusinessType.REDISPATCH: _SHIPPED_KINDS,
    BusinessType.RENEW: {S.PAID: {S.READY_TO_DOWNLOAD, S.REFUNDED}, S.READY_TO_DOWNLOAD: {S.COMPLETED, S.REFUNDED}},
    BusinessType.CHANGE: {S.PAID: {S.READY_TO_DOWNLOAD, S.REFUNDED}, S.READY_TO_DOWNLOAD: {S.COMPLETED, S.REFUNDED}},
    BusinessType.UNLOCK: {
        S.PAID: {S.READY_TO_UNLOCK, S.REMOTE_ASSISTANCE, S.REFUNDED},
        S.READY_TO_UNLOCK: {S.COMPLETED, S.REMOTE_ASSISTANCE},
        S.REMOTE_ASSISTANCE: {S.COMPLETED},
    },
    BusinessType.REVOKE: {S.PAID: {S.COMPLETED}},
}

# States in which the customer may still change what they entered and uploaded.
EDITABLE = frozenset({S.DRAFT, S.REJECTED})
# States that can be cancelled without a refund.
CANCELLABLE = frozenset({S.DRAFT, S.SUBMITTED, S.REJECTED, S.APPROVED, S.AWAITING_PAYMENT})


def allowed_next(*, business_type: str, status: str) -> frozenset[str]:
    if status in _BEFORE_PAYMENT:
        return frozenset(_BEFORE_PAYMENT[status])
    return frozenset(_AFTER_PAYMENT.get(business_type, {}).get(status, set()))
