"""邮寄 and 自提 after the key is written (TO_SHIP)."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from certdesk.accounts.models import User
from certdesk.core.errors import DomainError
from certdesk.fulfilment.models import Shipment
from certdesk.fulfilment.services import (
    pickup_hand_over,
    pickup_ready,
    shipment_create,
    shipments_auto_complete,
)
from certdesk.notifications.models import DemoInboxMessage
from certdesk.orders.models import DeliveryMethod, Order, OrderEvent, OrderStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def to_ship(complete_order: Order) -> Order:
    Order.objects.filter(pk=complete_order.pk).update(status=OrderStatus.TO_SHIP)
    complete_order.refresh_from_db()
    return complete_order


def test_ship_then_customer_confirms(customer_client: Client, to_ship: Order, issuer: User) -> None:
    shipment_create(order=to_ship, issuer=issuer, courier="顺丰速运", tracking_no="sf1234567890")
    to_ship.refresh_from_db()
    assert to_ship.status == OrderStatus.SHIPPED
    page = customer_client.get(reverse("orders:detail", args=[to_ship.number])).content.decode()
    assert "SF1234567890" in page
    assert "确认收货" in page
    customer_client.post(reverse("fulfilment:confirm_receipt", args=[to_ship.number]))
    to_ship.refresh_from_db()
    assert to_ship.status == OrderStatus.COMPLETED
    assert Shipment.objects.get().received_at is not None


def test_tracking_number_used_twice_is_refused(
    to_ship: Order, issuer: User, customer: User, draft_order: Order
) -> None:
    shipment_create(order=to_ship, issuer=issuer, courier="顺丰速运", tracking_no="SF1")
    Order.objects.filter(pk=draft_order.pk).update(status=OrderStatus.TO_SHIP, delivery_method=DeliveryMethod.MAIL)
    with pytest.raises(DomainError, match="已被其他订单使用"):
        shipment_create(order=draft_order, issuer=issuer, courier="顺丰速运", tracking_no="sf1")


def test_shipping_twice_changes_nothing_twice(to_ship: Order, issuer: User) -> None:
    shipment_create(order=to_ship, issuer=issuer, courier="顺丰速运", tracking_no="SF2")
    with pytest.raises(DomainError):
        shipment_create(order=to_ship, issuer=issuer, courier="顺丰速运", tracking_no="SF3")
    assert Shipment.objects.count() == 1
    assert OrderEvent.objects.filter(order=to_ship, kind="shipped").count() == 1


def test_auto_complete_after_configured_days(to_ship: Order, issuer: User, settings: object) -> None:
    shipment_create(order=to_ship, issuer=issuer, courier="顺丰速运", tracking_no="SF4")
    days = settings.SHIPMENT_AUTO_COMPLETE_DAYS  # type: ignore[attr-defined]
    assert shipments_auto_complete(now=timezone.now() + datetime.timedelta(days=days - 1)) == 0
    assert shipments_auto_complete(now=timezone.now() + datetime.timedelta(days=days, minutes=1)) == 1
    to_ship.refresh_from_db()
    assert to_ship.status == OrderStatus.COMPLETED


def test_pickup_code_by_sms_then_hand_over(
    to_ship: Order, issuer: User, django_capture_on_commit_callbacks: Callable
) -> None:
    Order.objects.filter(pk=to_ship.pk).update(delivery_method=DeliveryMethod.PICKUP)
    with django_capture_on_commit_callbacks(execute=True):
        pickup_ready(order=to_ship, issuer=issuer)
    message = DemoInboxMessage.objects.get(recipient=to_ship.owner.mobile, channel="sms")
    assert "东方中讯服务大厅" in message.body
    code = re.search(r"取件码\s*(\d{6})", message.body).group(1)  # type: ignore[union-attr]
    with pytest.raises(DomainError, match="取件码不正确"):
        pickup_hand_over(order=to_ship, staff=issuer, code="000000" if code != "000000" else "111111")
    assert pickup_hand_over(order=to_ship, staff=issuer, code=code).status == OrderStatus.COMPLETED


def test_pickup_code_locks_after_repeated_failures(to_ship: Order, issuer: User) -> None:
    Order.objects.filter(pk=to_ship.pk).update(delivery_method=DeliveryMethod.PICKUP)
    code = pickup_ready(order=to_ship, issuer=issuer)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        with pytest.raises(DomainError, match="取件码不正确"):
            pickup_hand_over(order=to_ship, staff=issuer, code=wrong)
    with pytest.raises(DomainError, match="错误次数过多"):
        pickup_hand_over(order=to_ship, staff=issuer, code=code)


def test_pickup_order_cannot_be_mailed(to_ship: Order, issuer: User) -> None:
    Order.objects.filter(pk=to_ship.pk).update(delivery_method=DeliveryMethod.PICKUP)
    with pytest.raises(DomainError, match="自提"):
        shipment_create(order=to_ship, issuer=issuer, courier="顺丰速运", tracking_no="SF9")


def test_staff_queue_access(
    to_ship: Order, issuer: User, reviewer: User, customer_client: Client, staff_client_for: Callable[[User], Client]
) -> None:
    assert customer_client.get(reverse("fulfilment:queue")).status_code == 404
    assert staff_client_for(reviewer).get(reverse("fulfilment:queue")).status_code == 404
    client = staff_client_for(issuer)
    page = client.get(reverse("fulfilment:queue")).content.decode()
    assert to_ship.number in page
    response = client.post(
        reverse("fulfilment:ship", args=[to_ship.number]), {"courier": "顺丰速运", "tracking_no": "SF77"}, follow=True
    )
    assert "已发货" in response.content.decode()


def test_another_customer_cannot_confirm_receipt(
    client: Client, to_ship: Order, issuer: User, other_customer: User
) -> None:
    shipment_create(order=to_ship, issuer=issuer, courier="顺丰速运", tracking_no="SF5")
    client.force_login(other_customer)
    assert client.post(reverse("fulfilment:confirm_receipt", args=[to_ship.number])).status_code == 404
    to_ship.refresh_from_db()
    assert to_ship.status == OrderStatus.SHIPPED
