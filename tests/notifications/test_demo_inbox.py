from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client

from certdesk.notifications.channels.email import ConsoleInboxEmailBackend
from certdesk.notifications.channels.sms import ConsoleSmsBackend
from certdesk.notifications.models import DemoInboxMessage

pytestmark = pytest.mark.django_db


def test_inbox_lists_sms_and_email_newest_first(client: Client) -> None:
    ConsoleSmsBackend().send(mobile="13800000001", text="第一条短信", template="notification", params={})
    backend = ConsoleInboxEmailBackend()
    backend.send_messages([mail.EmailMessage("发票已开具", "请查收", to=["a@example.com"])])
    page = client.get("/demo/inbox/").content.decode()
    assert page.index("发票已开具") < page.index("第一条短信")
    assert "a@example.com" in page


def test_inbox_filters_by_recipient(client: Client) -> None:
    ConsoleSmsBackend().send(mobile="13800000001", text="给一号", template="notification", params={})
    ConsoleSmsBackend().send(mobile="13800000002", text="给二号", template="notification", params={})
    page = client.get("/demo/inbox/", {"to": "13800000002"}).content.decode()
    assert "给二号" in page and "给一号" not in page


def test_inbox_is_404_and_keeps_nothing_outside_demo_mode(client: Client, settings: object) -> None:
    settings.DEMO_MODE = False  # type: ignore[attr-defined]
    ConsoleSmsBackend().send(mobile="13800000001", text="秘密", template="notification", params={})
    assert DemoInboxMessage.objects.count() == 0
    assert client.get("/demo/inbox/").status_code == 404
