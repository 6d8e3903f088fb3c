"""Daily certificate expiry reminders through a pluggable selector."""

from __future__ import annotations

import datetime
from collections.abc import Iterable

import pytest
from pytest_django.fixtures import Settings

from certdesk.accounts.models import User
from certdesk.core.periodic import periodic_tasks
from certdesk.notifications.expiry import ExpiringCertificate
from certdesk.notifications.models import Notification, NotificationEvent
from certdesk.notifications.services import certificate_expiry_remind

pytestmark = pytest.mark.django_db
TZ = datetime.timezone(datetime.timedelta(hours=8))
NOW = datetime.datetime(2026, 6, 1, 9, 0, tzinfo=TZ)
CERTIFICATES: list[ExpiringCertificate] = []
ASKED: list[int] = []


def selector(*, within_days: int, now: datetime.datetime) -> Iterable[ExpiringCertificate]:
    ASKED.append(within_days)
    return [c for c in CERTIFICATES if c.not_after <= now + datetime.timedelta(days=within_days + 1)]


@pytest.fixture(autouse=True)
def certificates(settings: Settings, customer: User) -> None:
    settings.NOTIFY_EXPIRING_CERTIFICATES_SELECTOR = f"{__name__}.selector"
    settings.NOTIFY_EXPIRY_REMIND_DAYS = [30, 7, 1]
    ASKED.clear()
    CERTIFICATES[:] = [
        ExpiringCertificate(customer, "7F3A01", datetime.datetime(2026, 6, 26, 12, 0, tzinfo=TZ), "N0001"),  # 25 days
        ExpiringCertificate(customer, "7F3A02", datetime.datetime(2026, 6, 7, 12, 0, tzinfo=TZ), "N0002"),  # 6 days
        ExpiringCertificate(customer, "7F3A03", datetime.datetime(2026, 5, 31, 12, 0, tzinfo=TZ), "N0003"),  # expired
    ]


def test_reminds_each_certificate_once_per_threshold(customer: User) -> None:
    assert certificate_expiry_remind(now=NOW) == 2
    assert ASKED == [30]
    reminders = {n.context["serial"]: n for n in Notification.objects.filter(event=NotificationEvent.EXPIRING)}
    assert set(reminders) == {"7F3A01", "7F3A02"}
    assert reminders["7F3A01"].dedupe_key == "certificate:7F3A01:expiring:30"
    assert reminders["7F3A02"].dedupe_key == "certificate:7F3A02:expiring:7"
    assert "还有25天" in reminders["7F3A01"].body and "2026-06-26" in reminders["7F3A01"].body
    assert reminders["7F3A01"].link == "/orders/start/renew/"  # no key known for this fake certificate

    # The next day's run adds nothing for the same thresholds…
    certificate_expiry_remind(now=NOW + datetime.timedelta(days=1))
    assert Notification.objects.count() == 2
    # …until a certificate crosses the next one.
    certificate_expiry_remind(now=datetime.datetime(2026, 6, 6, 9, 0, tzinfo=TZ))
    assert Notification.objects.filter(dedupe_key="certificate:7F3A02:expiring:1").exists()
    assert Notification.objects.count() == 3


def test_default_selector_finds_nothing(settings: Settings) -> None:
    settings.NOTIFY_EXPIRING_CERTIFICATES_SELECTOR = "certdesk.notifications.expiry.expiring_certificates_none"
    assert certificate_expiry_remind(now=NOW) == 0
    assert Notification.objects.count() == 0


def test_periodic_tasks_are_registered() -> None:
    every = {entry.name: entry.every for entry in periodic_tasks()}
    assert every["certdesk.notifications.tasks.outbox_retry_task"] == datetime.timedelta(seconds=30)
    assert every["certdesk.notifications.tasks.certificate_expiry_remind_task"] == datetime.timedelta(days=1)
