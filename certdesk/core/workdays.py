"""Working days on the Chinese calendar (法定节假日 and 调休 make-up days).

`chinesecalendar` knows the State Council's schedule for the years it ships
(2004–2026 in the pinned release). For a year it does not know we fall back to
Monday–Friday and log it once, rather than fail: a review deadline a day off
is better than an order that cannot be submitted.
"""

from __future__ import annotations

import datetime
import logging
from functools import cache

import chinese_calendar
from django.utils import timezone

logger = logging.getLogger(__name__)
END_OF_BUSINESS = datetime.time(18, 0)


@cache
def _warn_unknown_year(year: int) -> None:
    logger.warning("chinesecalendar has no data for %s; treating Monday–Friday as working days", year)


def is_working_day(day: datetime.date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        _warn_unknown_year(day.year)
        return day.weekday() < 5


def next_working_day(day: datetime.date) -> datetime.date:
    candidate = day + datetime.timedelta(days=1)
    while not is_working_day(candidate):
        candidate += datetime.timedelta(days=1)
    return candidate


def working_day_deadline(start: datetime.datetime, *, days: int = 1) -> datetime.datetime:
    """The moment `days` working days after `start` run out.

    Submitted on a working day: the same time of day on the `days`-th next working
    day. Submitted on a holiday or weekend: the clock starts on the next working
    day, so the first day ends at close of business (18:00).
    """
    local = timezone.localtime(start)
    day = local.date()
    if is_working_day(day):
        for _ in range(days):
            day = next_working_day(day)
        return local.replace(year=day.year, month=day.month, day=day.day)
    for _ in range(days):
        day = next_working_day(day)
    return timezone.make_aware(datetime.datetime.combine(day, END_OF_BUSINESS), local.tzinfo)
