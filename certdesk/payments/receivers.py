"""Receivers of other apps' signals."""

from __future__ import annotations

from typing import Any

from certdesk.orders.models import Order
from certdesk.payments.services import payments_close_for_cancel


def close_payments_on_cancel(sender: type[Order], *, order: Order, **kwargs: Any) -> None:
    """`order_cancelling`: close the order's open QR payments at their gateways, or refuse
    the cancel (DomainError) when a payment already succeeded — that needs a refund."""
    payments_close_for_cancel(order=order)
