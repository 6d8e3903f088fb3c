"""Real races on PostgreSQL: two workers on one row, two callers with one dedupe key.
(SQLite lets one writer at a time in, so there is no race to show there.)"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from pytest_django.fixtures import Settings

from certdesk.accounts.models import User
from certdesk.notifications.models import Notification, NotificationEvent, OutboxMessage, OutboxStatus
from certdesk.notifications.services import notification_preference_update, notification_send, outbox_deliver
from tests.notifications.conftest import ORDER_CONTEXT, SmtpServer

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs concurrent writers (PostgreSQL)"),
]


def _race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together; each thread uses its own connection."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    return results


@pytest.fixture
def queued_only(settings: Settings) -> None:
    """Tasks are queued but not run, so the test decides who delivers."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}


def test_two_workers_on_one_row_send_one_email(notified_user: User, smtp_server: SmtpServer, queued_only: None) -> None:
    notification_preference_update(user=notified_user, sms_enabled=False, email_enabled=True, wechat_enabled=False)
    notification_send(
        user=notified_user, event=NotificationEvent.SUBMITTED, context=ORDER_CONTEXT, dedupe_key="order:N1:submitted"
    )
    row = OutboxMessage.objects.get()
    results = _race(*[lambda: outbox_deliver(outbox_id=row.pk, dispatch_no=0)] * 4)
    assert sorted(results, key=str) == [None, None, None, OutboxStatus.SENT]
    assert len(smtp_server.messages) == 1
    row.refresh_from_db()
    assert row.status == OutboxStatus.SENT and row.attempts == 1


def test_two_callers_with_one_dedupe_key_store_once(notified_user: User, queued_only: None) -> None:
    def send() -> None:
        with transaction.atomic():
            notification_send(
                user=notified_user,
                event=NotificationEvent.APPROVED_PAY,
                context={**ORDER_CONTEXT, "amount": "300.00"},
                dedupe_key="order:N1:approved_pay",
            )

    _race(send, send, send)
    assert Notification.objects.count() == 1
    assert sorted(OutboxMessage.objects.values_list("channel", flat=True)) == ["email", "sms", "wechat"]
