"""The order state machine: allowed transitions, events, audit, cancel and resubmit."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from certdesk.accounts.models import User
from certdesk.audit.models import AuditRecord
from certdesk.core.errors import InvalidTransition
from certdesk.orders.models import Order, OrderEvent, OrderStatus
from certdesk.orders.services import order_cancel, order_submit, order_transition
from certdesk.orders.transitions import allowed_next
from tests.factories import VALID_INFO

pytestmark = pytest.mark.django_db


def test_transition_not_allowed_changes_nothing(draft_order: Order, customer: User) -> None:
    events = OrderEvent.objects.count()
    with pytest.raises(InvalidTransition, match="草稿"):
        order_transition(order=draft_order, to_status=OrderStatus.PAID, actor=customer, kind="paid")
    draft_order.refresh_from_db()
    assert draft_order.status == OrderStatus.DRAFT
    assert OrderEvent.objects.count() == events


@pytest.mark.parametrize(
    ("business_type", "status", "expected"),
    [
        ("new", "paid", {"to_ship", "refunded"}),
        ("renew", "paid", {"ready_to_download", "refunded"}),
        ("unlock", "paid", {"ready_to_unlock", "remote_assistance", "refunded"}),
        ("revoke", "paid", {"completed"}),
        ("new", "completed", set()),
        ("new", "cancelled", set()),
    ],
)
def test_transition_table(business_type: str, status: str, expected: set[str]) -> None:
    assert allowed_next(business_type=business_type, status=status) == expected


def test_reject_then_edit_and_resubmit(customer_client: Client, complete_order: Order, customer: User) -> None:
    order = order_submit(order=complete_order, actor=customer)
    order_transition(
        order=order,
        to_status=OrderStatus.REJECTED,
        actor=None,
        kind="rejected",
        set_fields={
            "reject_reasons": [{"target": "agent_name", "target_label": "经办人姓名", "reason": "与身份证不一致"}]
        },
    )
    detail = customer_client.get(reverse("orders:detail", args=[order.number])).content.decode()
    assert "审核不通过的原因" in detail
    assert "与身份证不一致" in detail
    info_url = reverse("orders:info", args=[order.number])
    assert "与身份证不一致" in customer_client.get(info_url).content.decode()
    assert customer_client.post(info_url, {**VALID_INFO, "agent_name": "李四四"}).status_code == 302
    customer_client.post(reverse("orders:submit", args=[order.number]))
    order.refresh_from_db()
    assert order.status == OrderStatus.SUBMITTED
    assert order.agent_name == "李四四"
    assert OrderEvent.objects.filter(order=order, kind="resubmitted").count() == 1


def test_cancel_before_payment(customer_client: Client, complete_order: Order, customer: User) -> None:
    order_submit(order=complete_order, actor=customer)
    response = customer_client.post(reverse("orders:cancel", args=[complete_order.number]), follow=True)
    assert "已取消" in response.content.decode()
    complete_order.refresh_from_db()
    assert complete_order.status == OrderStatus.CANCELLED
    assert AuditRecord.objects.filter(action="order.cancelled", object_id=complete_order.number).count() == 1
    # Twice changes nothing twice.
    response = customer_client.post(reverse("orders:cancel", args=[complete_order.number]), follow=True)
    assert "不能执行此操作" in response.content.decode()
    assert OrderEvent.objects.filter(order=complete_order, kind="cancelled").count() == 1


def test_cancel_after_payment_is_refused(draft_order: Order, customer: User) -> None:
    Order.objects.filter(pk=draft_order.pk).update(status=OrderStatus.PAID)
    with pytest.raises(InvalidTransition):
        order_cancel(order=draft_order, actor=customer)


@pytest.mark.django_db(transaction=True)
def test_concurrent_cancels_make_one_event(draft_order: Order, customer: User) -> None:
    if connection.vendor == "sqlite":
        pytest.skip("row locks need a server database; CI runs this on PostgreSQL")
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def cancel() -> None:
        barrier.wait()
        try:
            order_cancel(order=draft_order, actor=customer)
            outcomes.append("ok")
        except InvalidTransition:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=cancel) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok", "refused", "refused", "refused"]
    assert OrderEvent.objects.filter(order=draft_order, kind="cancelled").count() == 1
