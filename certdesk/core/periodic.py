"""Periodic work on top of the tasks API (which has no scheduler of its own).

Apps register a task with `periodic_register(task, every=...)` in their
`AppConfig.ready()`. `manage.py scheduler` (started by `make run` beside the
worker) enqueues each task when it is due. The due time lives in the database
and is claimed with a conditional update, so several schedulers on several
hosts still enqueue each run once.
"""

from __future__ import annotations

import datetime
from contextlib import suppress
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tasks.base import Task

from certdesk.core.models import PeriodicRun


@dataclass(frozen=True)
class PeriodicTask:
    task: Task
    every: datetime.timedelta

    @property
    def name(self) -> str:
        return self.task.module_path


_REGISTRY: dict[str, PeriodicTask] = {}


def periodic_register(task: Task, *, every: datetime.timedelta) -> None:
    entry = PeriodicTask(task, every)
    _REGISTRY[entry.name] = entry


def periodic_tasks() -> list[PeriodicTask]:
    return sorted(_REGISTRY.values(), key=lambda entry: entry.name)


def periodic_enqueue_due(*, now: datetime.datetime | None = None) -> list[str]:
    """Enqueue every registered task whose time has come; returns their names."""
    now = now or timezone.now()
    enqueued = []
    for entry in periodic_tasks():
        # Another scheduler may create the row first; its row is as good as ours.
        with suppress(IntegrityError), transaction.atomic():
            PeriodicRun.objects.get_or_create(name=entry.name, defaults={"next_run_at": now})
        row = PeriodicRun.objects.get(name=entry.name)
        if row.next_run_at > now:
            continue
        # Claim this run: only the scheduler whose UPDATE matches the old due time enqueues.
        claimed = PeriodicRun.objects.filter(name=entry.name, next_run_at=row.next_run_at).update(
            next_run_at=now + entry.every, last_run_at=now
        )
        if claimed:
            entry.task.enqueue()
            enqueued.append(entry.name)
    return enqueued
