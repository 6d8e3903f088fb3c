from django.db.models import QuerySet

from certdesk.fulfilment.models import Shipment
from certdesk.orders.models import Order, OrderStatus


def fulfilment_queue(*, status: OrderStatus) -> QuerySet[Order]:
    return Order.objects.filter(status=status).select_related("certificate_type", "owner").order_by("updated_at", "id")


def shipment_current(*, order: Order) -> Shipment | None:
    return Shipment.objects.filter(order=order).order_by("-shipped_at", "-id").first()
