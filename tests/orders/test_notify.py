"""Order transitions tell the customer, in the same transaction, once per transition."""

from __future__ import annotations

import pytest

from certdesk.accounts.models import User
from certdesk.notifications.models import Notification, NotificationEvent, OutboxMessage
from certdesk.orders.models import Order, OrderStatus
from certdesk.orders.services import order_submit, order_transition
from certdesk.review.services import RejectReason, review_approve, review_reject

pytestmark = pytest.mark.django_db


def _events(user: User) -> list[str]:
    return list(Notification.objects.filter(user=user).order_by("id").values_list("event", flat=True))


def test_submit_approve_messages(complete_order: Order, customer: User, reviewer: User) -> None:
    order_submit(order=complete_order, actor=customer)
    review_approve(order=complete_order, reviewer=reviewer)
    assert _events(customer) == [NotificationEvent.SUBMITTED, NotificationEvent.APPROVED_PAY]
    approved = Notification.objects.get(event=NotificationEvent.APPROVED_PAY)
    assert "700.00元" in approved.body
    # E-mail goes to the 经办人 address the customer entered.
    assert OutboxMessage.objects.filter(channel="email", recipient="agent@example.com").exists()


def test_rejection_message_carries_the_reasons(complete_order: Order, customer: User, reviewer: User) -> None:
    order_submit(order=complete_order, actor=customer)
    review_reject(
        order=complete_order,
        reviewer=reviewer,
        reasons=[RejectReason(target="material:business_licence", target_label="营业执照", code="no_seal")],
    )
    message = Notification.objects.get(event=NotificationEvent.REJECTED)
    assert "营业执照：未加盖单位公章" in message.body


def test_no_message_for_a_transition_that_rolls_back(complete_order: Order, customer: User) -> None:
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        order_submit(order=complete_order, actor=customer)
        raise RuntimeError("rolled back")
    assert not Notification.objects.exists()


def test_each_transition_once(complete_order: Order, customer: User) -> None:
    order = order_submit(order=complete_order, actor=customer)
    order_transition(order=order, to_status=OrderStatus.REJECTED, actor=None, kind="rejected", note="资料不清晰")
    order_submit(order=order, actor=customer)
    assert _events(customer) == [NotificationEvent.SUBMITTED, NotificationEvent.REJECTED, NotificationEvent.SUBMITTED]
