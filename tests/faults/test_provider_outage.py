"""The SMTP server and the WeChat API are down for an hour of simulated time: every message is
retried on the back-off schedule (1, 2, 4, 8, 16, 32 minutes…), nothing is given up, and each is
delivered exactly once by the first retry after the providers come back.

Protection: `outbox_deliver` turns a provider failure into pending + `outbox_backoff(attempts)`;
`outbox_retry` dispatches rows that are due; NOTIFY_MAX_ATTEMPTS (12) spans about 16 hours, so an
hour's outage never exhausts it. The clock is Django's `timezone.now()`, moved by hand.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from pytest_django.fixtures import Settings

from certdesk.accounts.models import User
from certdesk.notifications.models import Channel, NotificationEvent, OutboxMessage, OutboxStatus
from certdesk.notifications.services import notification_preference_update, notification_send, outbox_retry
from tests.faults.conftest import Clock
from tests.notifications.conftest import ORDER_CONTEXT, SmtpServer, WechatState

pytestmark = pytest.mark.django_db
Capture = Callable[..., AbstractContextManager[list[Callable[[], Any]]]]
OUTAGE = datetime.timedelta(hours=1)


def _rows() -> dict[str, OutboxMessage]:
    return {row.channel: row for row in OutboxMessage.objects.filter(channel__in=[Channel.EMAIL, Channel.WECHAT])}


@pytest.mark.parametrize("down", [("email",), ("wechat",), ("email", "wechat")], ids="+".join)
def test_an_hour_long_outage_is_delivered_once_when_the_provider_returns(
    down: tuple[str, ...],
    clock: Clock,
    notified_user: User,
    smtp_server: SmtpServer,
    fake_wechat: WechatState,
    settings: Settings,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    notification_preference_update(user=notified_user, sms_enabled=False, email_enabled=True, wechat_enabled=True)
    wechat_api = settings.WECHAT_API_BASE
    if "email" in down:
        smtp_server.stop()
    if "wechat" in down:
        settings.WECHAT_API_BASE = "http://127.0.0.1:9"  # nothing listens there
    start = clock.now

    with django_capture_on_commit_callbacks(execute=True):  # the first attempt, at once
        notification_send(
            user=notified_user,
            event=NotificationEvent.SHIPPED,
            context={**ORDER_CONTEXT, "courier": "顺丰速运", "tracking_number": "SF1234567890"},
            dedupe_key="order:N20260101000001:shipped",
            link="/orders/N20260101000001/",
        )

    attempts: dict[str, list[datetime.timedelta]] = {channel: [] for channel in down}
    for channel in down:
        row = _rows()[channel]
        assert (row.status, row.attempts) == (OutboxStatus.PENDING, 1), row.last_error
        attempts[channel].append(row.claimed_at - start)  # type: ignore[operator]
    back = False
    while any(row.status != OutboxStatus.SENT for row in _rows().values()):
        pending = [row for row in _rows().values() if row.status == OutboxStatus.PENDING]
        assert pending, {row.channel: (row.status, row.last_error) for row in _rows().values()}
        clock.now = min(row.next_attempt_at for row in pending)  # the next time the sweep finds work
        if not back and clock.now - start >= OUTAGE:
            if "email" in down:
                smtp_server.start()
            settings.WECHAT_API_BASE = wechat_api
            back = True
        outbox_retry()
        for row in _rows().values():
            if row.channel in attempts and row.claimed_at - start not in attempts[row.channel]:  # type: ignore[operator]
                attempts[row.channel].append(row.claimed_at - start)  # type: ignore[operator]
        assert clock.now - start < 2 * OUTAGE, "still not delivered an hour after the providers came back"

    minutes = [0, 1, 3, 7, 15, 31, 63]  # back-off 1, 2, 4, 8, 16, 32 min; the 7th attempt is the first after the hour
    for channel in down:
        assert [int(t.total_seconds() // 60) for t in attempts[channel]] == minutes, channel
        row = _rows()[channel]
        assert row.attempts == len(minutes) < settings.NOTIFY_MAX_ATTEMPTS
        assert row.sent_at - start == datetime.timedelta(minutes=63)  # type: ignore[operator]
    assert len(smtp_server.messages) == 1
    assert len(fake_wechat.template_sends) == 1
    # Later sweeps have nothing left to do.
    clock.advance(days=1)
    assert outbox_retry() == 0
    assert len(smtp_server.messages) == 1 and len(fake_wechat.template_sends) == 1
