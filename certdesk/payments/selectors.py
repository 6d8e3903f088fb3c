"""Payment reads."""

from __future__ import annotations

import datetime

from django.db.models import F, QuerySet

from certdesk.core.choices import BusinessType
from certdesk.orders.models import Order, OrderStatus
from certdesk.payments.gateways.base import BEIJING
from certdesk.payments.models import PAID_STATUSES, Payment, PaymentStatus, Refund, RefundStatus

# Statuses that mean "payment done" for the customer's page.
_PAID_ORDER_STATUSES = frozenset(
    {
        OrderStatus.PAID,
        OrderStatus.TO_SHIP,
        OrderStatus.SHIPPED,
        OrderStatus.AWAITING_PICKUP,
        OrderStatus.READY_TO_DOWNLOAD,
        OrderStatus.READY_TO_UNLOCK,
        OrderStatus.REMOTE_ASSISTANCE,
        OrderStatus.COMPLETED,
    }
)


def order_purpose(*, order: Order) -> str:
    """What the money is for, as shown on the payment page and sent to the gateway."""
    parts = [str(order.get_business_type_display()), order.certificate_type.name]
    if order.business_type in (BusinessType.NEW, BusinessType.RENEW):
        parts.append(f"{order.years}年")
    return " · ".join(parts)


def order_is_paid(*, order: Order) -> bool:
    return order.status in _PAID_ORDER_STATUSES


def payment_get(*, order: Order, merchant_no: str) -> Payment | None:
    return Payment.objects.filter(order=order, merchant_no=merchant_no).first()


def payment_latest(*, order: Order, gateway: str | None = None) -> Payment | None:
    """The payment the customer last started (the one their page shows)."""
    payments = Payment.objects.filter(order=order)
    if gateway:
        payments = payments.filter(gateway=gateway)
    return payments.order_by("-created_at", "-id").first()


def payment_settling(*, order: Order) -> Payment | None:
    return Payment.objects.filter(order=order, settles_order=True).first()


def payments_for_order(*, order: Order) -> QuerySet[Payment]:
    return Payment.objects.filter(order=order).select_related("refund").order_by("created_at", "id")


def payments_open(*, older_than: datetime.datetime, limit: int) -> list[Payment]:
    """Open payments created before `older_than`: the periodic query looks at these."""
    return list(
        Payment.objects.filter(status=PaymentStatus.PENDING, created_at__lt=older_than)
        .select_related("order")
        .order_by(F("last_queried_at").asc(nulls_first=True), "created_at")[:limit]
    )


def refunds_processing(*, limit: int) -> list[Refund]:
    return list(
        Refund.objects.filter(status=RefundStatus.PROCESSING).select_related("payment").order_by("updated_at")[:limit]
    )


def payments_paid_on(*, gateway: str, day: datetime.date) -> QuerySet[Payment]:
    """Payments that succeeded on a Beijing day (paid_at is the gateway's own success time)."""
    start = datetime.datetime.combine(day, datetime.time.min, tzinfo=BEIJING)
    return Payment.objects.filter(
        gateway=gateway, status__in=PAID_STATUSES, paid_at__gte=start, paid_at__lt=start + datetime.timedelta(days=1)
    ).order_by("paid_at")
