"""The worker dies during notification delivery.

tests/notifications/test_email_smtp.py::test_worker_killed_mid_delivery_is_delivered_after_restart_and_only_once
covers the lease path for one e-mail whose claim is made by hand. Here the real delivery code runs
and is killed inside it, for all three channels of one notification at once (SMS, e-mail over a real
SMTP server, WeChat against the local fake of its API), and then in the narrow window after the
provider accepted a message and before the "sent" update.

Protection: `outbox_deliver` claims the row with a lease before calling the provider;
`outbox_retry` returns rows whose lease ran out to pending and dispatches them once
(dispatch numbers make a stale task a no-op); provider-side idempotency keys cover the window
after acceptance (WeChat `client_msg_id`; e-mail keeps one Message-ID).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from pytest_django.fixtures import Settings

from certdesk.accounts.models import User
from certdesk.notifications import services as notification_services
from certdesk.notifications.models import Channel, DemoInboxMessage, NotificationEvent, OutboxMessage, OutboxStatus
from certdesk.notifications.services import LEASE_LOST, notification_send, outbox_deliver, outbox_retry
from tests.faults.conftest import WorkerKilled
from tests.notifications.conftest import ORDER_CONTEXT, SmtpServer, WechatState

pytestmark = pytest.mark.django_db
Capture = Callable[..., AbstractContextManager[list[Callable[[], Any]]]]
KEY = "order:N20260101000001:shipped"


def _shipped(user: User) -> None:
    notification_send(
        user=user,
        event=NotificationEvent.SHIPPED,
        context={**ORDER_CONTEXT, "courier": "顺丰速运", "tracking_number": "SF1234567890"},
        dedupe_key=KEY,
        link="/orders/N20260101000001/",
    )


def _rows() -> dict[str, OutboxMessage]:
    return {row.channel: row for row in OutboxMessage.objects.all()}


def _delivered(smtp: SmtpServer, wechat: WechatState) -> dict[str, int]:
    return {
        "email": len(smtp.messages),
        "wechat": len(wechat.template_sends),
        "sms": DemoInboxMessage.objects.filter(channel=Channel.SMS).count(),
    }


@pytest.fixture
def three_channels(notified_user: User, smtp_server: SmtpServer, fake_wechat: WechatState) -> User:
    return notified_user  # SMS (console backend), e-mail (SMTP on loopback), WeChat (fake API)


def test_killed_before_the_provider_call_every_channel_is_delivered_once_after_the_lease(
    three_channels: User,
    smtp_server: SmtpServer,
    fake_wechat: WechatState,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as queued:  # the queued tasks die with the worker
        _shipped(three_channels)
    assert set(_rows()) == {Channel.SMS, Channel.EMAIL, Channel.WECHAT}
    t0 = min(row.created_at for row in _rows().values())

    def killed(channel: Channel) -> Any:
        raise WorkerKilled(f"killed just before calling the {channel} provider")

    real_backend = notification_services.channel_backend
    monkeypatch.setattr(notification_services, "channel_backend", killed)
    for row in _rows().values():
        with pytest.raises(WorkerKilled):
            outbox_deliver(outbox_id=row.pk, dispatch_no=0, now=t0)
    monkeypatch.setattr(notification_services, "channel_backend", real_backend)

    assert {row.status for row in _rows().values()} == {OutboxStatus.SENDING}
    assert _delivered(smtp_server, fake_wechat) == {"email": 0, "wechat": 0, "sms": 0}
    lease = datetime.timedelta(seconds=settings.NOTIFY_LEASE_SECONDS)

    # While the dead worker's lease runs, the sweep leaves the rows alone…
    assert outbox_retry(now=t0 + lease - datetime.timedelta(seconds=1)) == 0
    # …then gives them to a live worker, once.
    assert outbox_retry(now=t0 + lease) == 3

    assert _delivered(smtp_server, fake_wechat) == {"email": 1, "wechat": 1, "sms": 1}
    for row in _rows().values():
        assert (row.status, row.attempts, row.last_error) == (OutboxStatus.SENT, 2, LEASE_LOST), row.channel
    # The dead worker's own tasks, handed out again by the queue, and later sweeps: nothing more.
    for callback in queued:
        callback()
    assert outbox_retry(now=t0 + 10 * lease) == 0
    assert _delivered(smtp_server, fake_wechat) == {"email": 1, "wechat": 1, "sms": 1}


def test_killed_after_the_provider_accepted_wechat_shows_it_once(
    three_channels: User,
    smtp_server: SmtpServer,
    fake_wechat: WechatState,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    """The documented window (notifications/services.py): accepted by the provider, killed before
    "sent" was stored. The row is sent again after the lease; WeChat drops the repeat by its
    client_msg_id, so the customer sees one message. E-mail has no such key at the SMTP level: the
    copy carries the same Message-ID, which mail clients use to fold duplicates."""
    with django_capture_on_commit_callbacks(execute=False):
        _shipped(three_channels)
    rows = _rows()
    t0 = min(row.created_at for row in rows.values())
    real_mark_sent = notification_services.outbox_mark_sent

    def killed(**kwargs: Any) -> bool:
        raise WorkerKilled("killed after the provider accepted, before 'sent' was stored")

    monkeypatch.setattr(notification_services, "outbox_mark_sent", killed)
    for channel in (Channel.WECHAT, Channel.EMAIL):
        with pytest.raises(WorkerKilled):
            outbox_deliver(outbox_id=rows[channel].pk, dispatch_no=0, now=t0)
    monkeypatch.setattr(notification_services, "outbox_mark_sent", real_mark_sent)
    assert len(fake_wechat.template_sends) == 1 and len(smtp_server.messages) == 1

    outbox_retry(now=t0 + datetime.timedelta(seconds=settings.NOTIFY_LEASE_SECONDS))

    assert _rows()[Channel.WECHAT].status == OutboxStatus.SENT
    assert len(fake_wechat.template_sends) == 1  # WeChat accepted the repeat and dropped it
    assert len(fake_wechat.seen_client_msg_ids) == 1
    assert _rows()[Channel.EMAIL].status == OutboxStatus.SENT
    assert len(smtp_server.messages) == 2  # the known window: a second copy…
    assert smtp_server.messages[0]["Message-ID"] == smtp_server.messages[1]["Message-ID"]  # …of the same message
