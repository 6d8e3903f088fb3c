"""notification_send and the outbox with the console backends (what `make run` uses)."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.db import transaction
from pytest_django.fixtures import Settings

from certdesk.accounts.models import User
from certdesk.notifications.models import (
    Channel,
    DemoInboxMessage,
    Notification,
    NotificationEvent,
    OutboxMessage,
    OutboxStatus,
)
from certdesk.notifications.services import (
    notification_preference_update,
    notification_send,
    outbox_deliver,
    outbox_retry,
)
from certdesk.notifications.texts import (
    TEXTS,
    NotificationContextError,
    event_render,
    event_required_keys,
    event_wechat_values,
)
from tests.notifications.conftest import OPENID, ORDER_CONTEXT

pytestmark = pytest.mark.django_db
Capture = Callable[..., AbstractContextManager[list[Callable[[], Any]]]]


@pytest.fixture(autouse=True)
def console_email(settings: Settings) -> None:
    """The embedded default: e-mails are printed and kept for the demo inbox."""
    settings.EMAIL_BACKEND = "certdesk.notifications.channels.email.ConsoleInboxEmailBackend"


def _approved_pay(user: User, *, key: str = "order:N20260101000001:approved_pay", **extra: str) -> None:
    notification_send(
        user=user,
        event=NotificationEvent.APPROVED_PAY,
        context={**ORDER_CONTEXT, "amount": "300.00", **extra},
        dedupe_key=key,
        link="/orders/N20260101000001/",
    )


def test_send_stores_the_message_and_delivers_each_enabled_channel(
    notified_user: User, django_capture_on_commit_callbacks: Capture
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        _approved_pay(notified_user)

    notification = Notification.objects.get(user=notified_user)
    assert notification.title == "审核通过，请付款"
    assert "300.00元" in notification.body and "N20260101000001" in notification.body
    assert notification.read_at is None
    rows = {row.channel: row for row in OutboxMessage.objects.all()}
    assert set(rows) == {Channel.SMS, Channel.EMAIL, Channel.WECHAT}
    assert rows[Channel.SMS].recipient == notified_user.mobile
    assert rows[Channel.EMAIL].recipient == "owner@example.com"
    assert rows[Channel.WECHAT].recipient == OPENID
    assert {row.dedupe_key for row in rows.values()} == {
        f"order:N20260101000001:approved_pay:{channel}" for channel in ("sms", "email", "wechat")
    }
    assert all(row.status == OutboxStatus.SENT and row.attempts == 1 for row in rows.values())

    # The demo inbox shows what each console backend sent.
    inbox = {message.channel: message for message in DemoInboxMessage.objects.all()}
    assert set(inbox) == {Channel.SMS, Channel.EMAIL, Channel.WECHAT}
    assert inbox[Channel.SMS].recipient == notified_user.mobile
    assert "审核通过，请付款" in inbox[Channel.SMS].body and "300.00元" in inbox[Channel.SMS].body
    assert inbox[Channel.EMAIL].subject == "【证书自助办理平台】审核通过，请付款"
    assert "http://127.0.0.1:8000/orders/N20260101000001/" in inbox[Channel.EMAIL].body
    assert inbox[Channel.WECHAT].recipient == OPENID
    assert "300.00元" in inbox[Channel.WECHAT].body


def test_same_dedupe_key_twice_stores_and_sends_once_per_channel(
    notified_user: User, django_capture_on_commit_callbacks: Capture
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        _approved_pay(notified_user)
    with django_capture_on_commit_callbacks(execute=True) as second:
        _approved_pay(notified_user)
    assert second == []  # nothing new to deliver
    assert Notification.objects.count() == 1
    assert sorted(OutboxMessage.objects.values_list("channel", flat=True)) == ["email", "sms", "wechat"]
    assert DemoInboxMessage.objects.count() == 3


def test_repeat_after_enabling_a_channel_adds_only_that_channel(
    notified_user: User, django_capture_on_commit_callbacks: Capture
) -> None:
    notification_preference_update(user=notified_user, sms_enabled=False, email_enabled=True, wechat_enabled=True)
    with django_capture_on_commit_callbacks(execute=True):
        _approved_pay(notified_user)
    notification_preference_update(user=notified_user, sms_enabled=True, email_enabled=True, wechat_enabled=True)
    with django_capture_on_commit_callbacks(execute=True) as second:
        _approved_pay(notified_user)
    assert len(second) == 1
    assert OutboxMessage.objects.filter(channel=Channel.SMS).count() == 1
    assert OutboxMessage.objects.count() == 3


def test_a_dedupe_key_cannot_be_reused_for_another_user(notified_user: User, other_customer: User) -> None:
    _approved_pay(notified_user)
    with pytest.raises(ValueError, match="another user"):
        _approved_pay(other_customer)
    assert not Notification.objects.filter(user=other_customer).exists()


def test_rolled_back_state_change_tells_nobody(
    notified_user: User, django_capture_on_commit_callbacks: Capture
) -> None:
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        _approved_pay(notified_user)
        raise RuntimeError("the review step failed after notifying")
    assert callbacks == []
    assert Notification.objects.count() == 0
    assert OutboxMessage.objects.count() == 0
    assert DemoInboxMessage.objects.count() == 0


def test_delivery_waits_for_commit(notified_user: User, django_capture_on_commit_callbacks: Capture) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _approved_pay(notified_user)
        assert set(OutboxMessage.objects.values_list("status", flat=True)) == {OutboxStatus.PENDING}
    assert len(callbacks) == 3
    assert DemoInboxMessage.objects.count() == 0


def test_channel_preferences_are_respected(notified_user: User, django_capture_on_commit_callbacks: Capture) -> None:
    notification_preference_update(user=notified_user, sms_enabled=False, email_enabled=False, wechat_enabled=True)
    with django_capture_on_commit_callbacks(execute=True):
        _approved_pay(notified_user, key="k1")
    assert list(OutboxMessage.objects.values_list("channel", flat=True)) == ["wechat"]
    assert list(DemoInboxMessage.objects.values_list("channel", flat=True)) == ["wechat"]
    assert Notification.objects.count() == 1  # the 站内信 is written whatever the channels


def test_unbound_wechat_and_missing_email_send_nothing_there(customer: User) -> None:
    _approved_pay(customer)
    assert list(OutboxMessage.objects.values_list("channel", flat=True)) == ["sms"]


def test_order_email_in_context_wins_over_the_account_address(notified_user: User) -> None:
    _approved_pay(notified_user, email="agent@example.com")
    assert OutboxMessage.objects.get(channel=Channel.EMAIL).recipient == "agent@example.com"


def test_missing_context_is_refused_before_anything_is_stored(notified_user: User) -> None:
    with pytest.raises(NotificationContextError, match="amount"):
        notification_send(
            user=notified_user, event=NotificationEvent.APPROVED_PAY, context=ORDER_CONTEXT, dedupe_key="k"
        )
    assert Notification.objects.count() == 0


def test_every_event_has_one_text_and_each_renders_completely() -> None:
    assert set(TEXTS) == set(NotificationEvent)
    for event in NotificationEvent:
        context = {key: f"<{key}>" for key in event_required_keys(event)}
        title, body = event_render(event=event, context=context)
        assert title and body
        assert not re.search(r"[{}]", title + body), event
        wechat = event_wechat_values(event=event, context=context)
        assert wechat and not re.search(r"[{}]", "".join(wechat)), event
        # Every value asked for is shown somewhere.
        assert all(f"<{key}>" in title + body + "".join(wechat) for key in context), event


def test_event_texts_carry_what_the_customer_needs() -> None:
    def body(event: NotificationEvent, **context: str) -> str:
        return event_render(event=event, context={**ORDER_CONTEXT, **context})[1]

    assert "1个工作日" in body(NotificationEvent.SUBMITTED)
    assert "照片模糊；缺少公章" in body(NotificationEvent.REJECTED, reasons="照片模糊；缺少公章")
    shipped = body(NotificationEvent.SHIPPED, courier="顺丰速运", tracking_number="SF1234567890")
    assert "顺丰速运" in shipped and "SF1234567890" in shipped
    assert "A1B2C3" in body(NotificationEvent.READY_TO_PICKUP, pickup_code="A1B2C3", pickup_address="服务大厅")
    expiring = body(NotificationEvent.EXPIRING, serial="7F3A", not_after="2026-12-31", days="30")
    assert "30天" in expiring and "证书更新" in expiring


def test_stale_or_duplicate_task_delivers_nothing(
    notified_user: User, django_capture_on_commit_callbacks: Capture
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        _approved_pay(notified_user)
    row = OutboxMessage.objects.get(channel=Channel.SMS)
    # The task the outbox queued first (dispatch 0) arrives a second time.
    assert outbox_deliver(outbox_id=row.pk, dispatch_no=0) is None
    assert DemoInboxMessage.objects.filter(channel=Channel.SMS).count() == 1


def test_lost_first_task_is_dispatched_by_the_sweep_after_the_grace_period(
    notified_user: User, settings: Settings, django_capture_on_commit_callbacks: Capture
) -> None:
    with django_capture_on_commit_callbacks(execute=False):  # the process died before queueing
        _approved_pay(notified_user)
    created = OutboxMessage.objects.earliest("next_attempt_at").created_at
    assert outbox_retry(now=created + datetime.timedelta(seconds=5)) == 0
    grace = datetime.timedelta(seconds=settings.NOTIFY_LEASE_SECONDS + 1)
    assert outbox_retry(now=created + grace) == 3
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {OutboxStatus.SENT}
    assert DemoInboxMessage.objects.count() == 3
    assert outbox_retry(now=created + 10 * grace) == 0
    assert DemoInboxMessage.objects.count() == 3


def test_notifications_link_must_stay_on_http(notified_user: User) -> None:
    with pytest.raises(ValueError, match="link"):
        notification_send(
            user=notified_user,
            event=NotificationEvent.COMPLETED,
            context=ORDER_CONTEXT,
            dedupe_key="k",
            link="javascript:alert(1)",
        )
