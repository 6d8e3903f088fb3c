"""E-mail delivery through Django's SMTP backend to a real SMTP server on loopback:
retries while it is down, and at most one delivery per message."""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django_tasks import task_backends
from pytest_django.fixtures import Settings

from certdesk.accounts.models import User
from certdesk.notifications.channels.base import Outgoing
from certdesk.notifications.channels.email import EmailChannel
from certdesk.notifications.models import Channel, NotificationEvent, OutboxMessage, OutboxStatus
from certdesk.notifications.services import (
    notification_preference_update,
    notification_send,
    outbox_backoff,
    outbox_claim,
    outbox_deliver,
    outbox_retry,
)
from tests.notifications.conftest import ORDER_CONTEXT, SmtpServer

pytestmark = pytest.mark.django_db
Capture = Callable[..., AbstractContextManager[list[Callable[[], Any]]]]
KEY = "order:N20260101000001:shipped"


@pytest.fixture(autouse=True)
def email_only(notified_user: User) -> None:
    notification_preference_update(user=notified_user, sms_enabled=False, email_enabled=True, wechat_enabled=False)


def _shipped(user: User, **kwargs: Any) -> None:
    notification_send(
        user=user,
        event=NotificationEvent.SHIPPED,
        context={**ORDER_CONTEXT, "courier": "顺丰速运", "tracking_number": "SF1234567890"},
        dedupe_key=KEY,
        link="/orders/N20260101000001/",
        **kwargs,
    )


def _row() -> OutboxMessage:
    return OutboxMessage.objects.get(channel=Channel.EMAIL)


def test_email_is_delivered_over_smtp_with_stable_message_id_and_attachment(
    notified_user: User, smtp_server: SmtpServer, django_capture_on_commit_callbacks: Capture
) -> None:
    pdf = b"%PDF-1.7\n% invoice\n"
    with django_capture_on_commit_callbacks(execute=True):
        _shipped(notified_user, attachments=[("发票.pdf", pdf, "application/pdf")])

    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0]
    assert smtp_server.collector.envelopes[0][1] == ["owner@example.com"]
    assert message["Subject"].strip() == "【证书自助办理平台】证书已发货"  # Django folds it onto a second line
    expected_id = hashlib.sha256(f"{KEY}:email".encode()).hexdigest()[:32]
    assert message["Message-ID"] == f"<{expected_id}@certdesk.local>"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert "SF1234567890" in text.get_content()
    assert "http://127.0.0.1:8000/orders/N20260101000001/" in text.get_content()
    assert 'href="http://127.0.0.1:8000/orders/N20260101000001/"' in html.get_content()
    attachments = list(message.iter_attachments())
    assert [(part.get_filename(), part.get_content()) for part in attachments] == [("发票.pdf", pdf)]
    row = _row()
    assert row.status == OutboxStatus.SENT and row.attempts == 1
    assert row.provider_ref == f"<{expected_id}@certdesk.local>"


def test_smtp_down_is_retried_and_delivered_once_when_it_is_back(
    notified_user: User, smtp_server: SmtpServer, django_capture_on_commit_callbacks: Capture
) -> None:
    smtp_server.stop()
    with django_capture_on_commit_callbacks(execute=True):
        _shipped(notified_user)
    row = _row()
    assert row.status == OutboxStatus.PENDING
    assert row.attempts == 1
    assert "SMTP server unavailable" in row.last_error and "Connection refused" in row.last_error
    assert row.claimed_at is not None
    assert row.next_attempt_at == row.claimed_at + datetime.timedelta(minutes=1)

    # Not yet due: the sweep leaves it alone.
    assert outbox_retry(now=row.next_attempt_at - datetime.timedelta(seconds=1)) == 0

    smtp_server.start()
    assert outbox_retry(now=row.next_attempt_at) == 1
    row.refresh_from_db()
    assert row.status == OutboxStatus.SENT and row.attempts == 2
    assert len(smtp_server.messages) == 1

    # Later sweeps find nothing more to do.
    assert outbox_retry(now=row.next_attempt_at + datetime.timedelta(days=1)) == 0
    assert len(smtp_server.messages) == 1


def test_back_off_doubles_up_to_the_cap_then_gives_up(
    notified_user: User, smtp_server: SmtpServer, settings: Settings, django_capture_on_commit_callbacks: Capture
) -> None:
    smtp_server.stop()
    with django_capture_on_commit_callbacks(execute=True):
        _shipped(notified_user)
    waits = []
    row = _row()
    while row.status == OutboxStatus.PENDING:
        assert row.claimed_at is not None
        waits.append(row.next_attempt_at - row.claimed_at)
        outbox_retry(now=row.next_attempt_at)
        row.refresh_from_db()
    assert row.status == OutboxStatus.FAILED
    assert row.attempts == settings.NOTIFY_MAX_ATTEMPTS == 12
    minutes = [int(wait.total_seconds() // 60) for wait in waits]
    assert minutes == [1, 2, 4, 8, 16, 32, 64, 128, 240, 240, 240]
    assert waits == [outbox_backoff(n) for n in range(1, 12)]
    assert outbox_retry(now=row.next_attempt_at + datetime.timedelta(days=1)) == 0


def test_recipient_refused_for_good_fails_without_retrying(
    notified_user: User, smtp_server: SmtpServer, django_capture_on_commit_callbacks: Capture
) -> None:
    async def refuse(server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        return "550 5.1.1 No such user"

    smtp_server.collector.handle_RCPT = refuse  # type: ignore[attr-defined]
    with django_capture_on_commit_callbacks(execute=True):
        _shipped(notified_user)
    row = _row()
    assert row.status == OutboxStatus.FAILED and row.attempts == 1
    assert "550" in row.last_error
    assert smtp_server.messages == []


def test_worker_killed_mid_delivery_is_delivered_after_restart_and_only_once(
    notified_user: User, smtp_server: SmtpServer, settings: Settings, django_capture_on_commit_callbacks: Capture
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as queued:
        _shipped(notified_user)
    row = _row()
    # A worker claims the row and is killed before it sends (the queued task dies with it).
    claimed_at = row.created_at
    assert outbox_claim(outbox_id=row.pk, dispatch_no=0, now=claimed_at) is not None
    lease = datetime.timedelta(seconds=settings.NOTIFY_LEASE_SECONDS)

    # While the lease runs, nobody else touches it.
    assert outbox_retry(now=claimed_at + lease - datetime.timedelta(seconds=1)) == 0
    assert _row().status == OutboxStatus.SENDING

    # After restart, the sweep finds the expired lease and delivers.
    assert outbox_retry(now=claimed_at + lease) == 1
    row.refresh_from_db()
    assert row.status == OutboxStatus.SENT and row.attempts == 2
    assert "投递中断" in row.last_error
    assert len(smtp_server.messages) == 1

    # The dead worker's task, should the queue hand it out again, finds nothing to send.
    for callback in queued:
        callback()
    assert outbox_retry(now=claimed_at + 10 * lease) == 0
    assert len(smtp_server.messages) == 1


def test_worker_that_outlived_its_lease_still_counts_as_the_delivery(
    notified_user: User, smtp_server: SmtpServer, settings: Settings, django_capture_on_commit_callbacks: Capture
) -> None:
    """A slow worker's send outlasts its lease and the sweep queues the row again; the slow
    worker's 'sent' lands before the queued task runs, so there is no second e-mail."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    with django_capture_on_commit_callbacks(execute=False):
        _shipped(notified_user)
    row = _row()
    lease = datetime.timedelta(seconds=settings.NOTIFY_LEASE_SECONDS)

    class SlowEmail(EmailChannel):
        def deliver(self, message: Outgoing) -> str:
            reference = super().deliver(message)  # the SMTP server accepted it…
            # …but the answer came so late that the lease had run out and the sweep re-queued the row.
            assert outbox_retry(now=row.created_at + 2 * lease) == 1
            assert _row().status == OutboxStatus.PENDING
            return reference

    assert outbox_deliver(outbox_id=row.pk, dispatch_no=0, now=row.created_at, backend=SlowEmail()) == "sent"
    assert _row().status == OutboxStatus.SENT

    # The re-queued task runs and finds the row already sent.
    results = task_backends["default"].results  # type: ignore[attr-defined]
    assert len(results) == 1
    assert results[0].task.call(*results[0].args, **results[0].kwargs) == "skipped"
    assert len(smtp_server.messages) == 1
