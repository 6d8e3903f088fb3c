"""Which order transitions tell the customer, and with what. Called by
`order_transition` inside its transaction, so a message exists exactly when
the change does."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from certdesk.core.money import fen_to_yuan_text
from certdesk.notifications.models import NotificationEvent
from certdesk.notifications.services import notification_send
from certdesk.orders.models import Order, OrderEvent, OrderStatus

_BY_STATUS = {
    OrderStatus.SUBMITTED: NotificationEvent.SUBMITTED,
    OrderStatus.AWAITING_PAYMENT: NotificationEvent.APPROVED_PAY,
    OrderStatus.REJECTED: NotificationEvent.REJECTED,
    OrderStatus.SHIPPED: NotificationEvent.SHIPPED,
    OrderStatus.READY_TO_DOWNLOAD: NotificationEvent.READY_TO_DOWNLOAD,
    OrderStatus.READY_TO_UNLOCK: NotificationEvent.READY_TO_UNLOCK,
    OrderStatus.REMOTE_ASSISTANCE: NotificationEvent.REMOTE_ASSISTANCE,
    OrderStatus.COMPLETED: NotificationEvent.COMPLETED,
    OrderStatus.REFUNDED: NotificationEvent.REFUNDED,
}


def order_notification_context(order: Order, **extra: Any) -> dict[str, str]:
    context = {
        "business_type": order.get_business_type_display(),
        "order_number": order.number,
        "amount": fen_to_yuan_text(order.amount_fen),
    }
    if order.agent_email:
        context["email"] = order.agent_email
    context.update({key: str(value) for key, value in extra.items()})
    return context


def order_notify(
    *, order: Order, event: NotificationEvent, occurrence: str, extra: dict[str, Any] | None = None
) -> None:
    notification_send(
        user=order.owner,
        event=event,
        context=order_notification_context(order, **(extra or {})),
        dedupe_key=f"order:{order.number}:{event.value}:{occurrence}",
        link=reverse("orders:detail", args=[order.number]),
    )


def order_notify_transition(*, order: Order, event_row: OrderEvent) -> None:
    """The customer-facing message for a transition, if it has one."""
    to_status = event_row.to_status
    if to_status == OrderStatus.PAID:
        # Paid by the customer, or approved at no charge (review skips 待付款).
        event = NotificationEvent.APPROVED if event_row.kind == "approved" else NotificationEvent.PAID
    elif to_status in _BY_STATUS:
        event = _BY_STATUS[OrderStatus(to_status)]
    else:
        return
    data = event_row.data or {}
    extra: dict[str, Any] = {}
    if event == NotificationEvent.REJECTED:
        extra["reasons"] = (
            "；".join(
                f"{r['target_label']}：{r['reason']}" if r.get("target_label") else r["reason"]
                for r in data.get("reasons", [])
            )
            or event_row.note
        )
    if event == NotificationEvent.SHIPPED:
        extra["courier"] = data.get("courier", "")
        extra["tracking_number"] = data.get("tracking_no", "")
    order_notify(order=order, event=event, occurrence=str(event_row.pk), extra=extra)
