from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest
from django.utils import timezone
from django_tasks import task

from certdesk.core import periodic
from certdesk.core.models import PeriodicRun

pytestmark = pytest.mark.django_db
RUNS: list[int] = []


@task()
def tick() -> None:
    RUNS.append(1)


@pytest.fixture(autouse=True)
def registered_tick() -> Iterator[None]:
    saved = dict(periodic._REGISTRY)
    periodic._REGISTRY.clear()
    RUNS.clear()
    periodic.periodic_register(tick, every=datetime.timedelta(minutes=5))
    yield
    periodic._REGISTRY.clear()
    periodic._REGISTRY.update(saved)


def test_due_task_runs_once_per_period() -> None:
    now = timezone.now()
    assert periodic.periodic_enqueue_due(now=now) == [tick.module_path]
    assert periodic.periodic_enqueue_due(now=now + datetime.timedelta(minutes=1)) == []
    assert periodic.periodic_enqueue_due(now=now + datetime.timedelta(minutes=5)) == [tick.module_path]
    assert len(RUNS) == 2


def test_racing_scheduler_with_a_stale_read_does_not_enqueue(monkeypatch: pytest.MonkeyPatch) -> None:
    now = timezone.now()
    periodic.periodic_enqueue_due(now=now)
    stale = PeriodicRun(name=tick.module_path, next_run_at=now)  # what a racing scheduler read before the claim
    monkeypatch.setattr(PeriodicRun.objects, "get", lambda **kwargs: stale)
    assert periodic.periodic_enqueue_due(now=now) == []
    assert len(RUNS) == 1
