"""Fault injection for tests/faults.

`WorkerKilled` stands in for SIGKILL / OOM-kill / a pulled plug at a chosen line: it derives from
BaseException, so no `except Exception` handler in the product sees it (none can "handle" a kill),
open `transaction.atomic` blocks roll back (what the database does when the dead process's
connection goes away) and no on-commit callback runs. "Restart" is calling the same entry point
again with the injection removed, as a fresh worker would.

`clock` moves Django's `timezone.now()` by hand, for schedules measured in minutes and hours.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.utils import timezone

# Fixtures owned by other suites, imported (not copied): an order paid and waiting for its key and
# its pairing code; the SMTP server and the WeChat API fake; the payment keys, fakes and order.
from tests.api.conftest import paid_order, write_code
from tests.notifications.conftest import fake_wechat, notified_user, smtp_server
from tests.payments.conftest import _fresh_gateways, alipay, awaiting_order, keys, wechat

__all__ = [
    "_fresh_gateways",
    "alipay",
    "awaiting_order",
    "fake_wechat",
    "keys",
    "notified_user",
    "paid_order",
    "smtp_server",
    "wechat",
    "write_code",
]


class WorkerKilled(BaseException):
    """The worker process died here (a BaseException: not an error the product could handle)."""


def kill_once(real: Callable[..., Any], where: str) -> Callable[..., Any]:
    """A stand-in for `real` that kills the worker the first time it is reached, then behaves."""
    state = {"killed": False}

    def stand_in(*args: Any, **kwargs: Any) -> Any:
        if not state["killed"]:
            state["killed"] = True
            raise WorkerKilled(where)
        return real(*args, **kwargs)

    return stand_in


@dataclass
class Clock:
    now: datetime.datetime = field(default_factory=timezone.now)

    def advance(self, **delta: float) -> datetime.datetime:
        self.now += datetime.timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    simulated = Clock()
    monkeypatch.setattr(timezone, "now", lambda: simulated.now)
    return simulated
