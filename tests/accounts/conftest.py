from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.test import Client

from certdesk.notifications.models import DemoInboxMessage


@pytest.fixture
def send_code(client: Client, django_capture_on_commit_callbacks: Callable) -> Callable[..., tuple[str, str]]:
    """Press 获取验证码 on a form; returns (page text, the code from the demo inbox or '')."""

    def press(url: str, mobile: str, **extra: str) -> tuple[str, str]:
        before = DemoInboxMessage.objects.count()
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(url, {"mobile": mobile, "action": "send_code", **extra})
        assert response.status_code == 200
        code = ""
        if DemoInboxMessage.objects.count() > before:
            body = DemoInboxMessage.objects.filter(recipient=mobile).first()
            assert body is not None
            match = re.search(r"\b(\d{6})\b", body.body)
            assert match
            code = match.group(1)
        return response.content.decode(), code

    return press
