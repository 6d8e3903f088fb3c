from __future__ import annotations

import datetime
import zoneinfo

import pytest

from certdesk.core.workdays import _warn_unknown_year, is_working_day, working_day_deadline

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("submitted", "deadline"),
    [
        ("2026-11-25 10:00", "2026-11-26 10:00"),  # Wednesday → Thursday
        ("2026-11-27 16:30", "2026-11-30 16:30"),  # Friday → Monday, across the weekend
        ("2026-11-28 09:00", "2026-11-30 18:00"),  # Saturday: the clock starts Monday
        ("2026-09-30 11:00", "2026-10-08 11:00"),  # before National Day → after the holiday
        ("2026-10-03 12:00", "2026-10-08 18:00"),  # during the holiday
        ("2026-10-09 15:00", "2026-10-10 15:00"),  # Friday → the 调休 make-up Saturday
        ("2026-02-13 10:00", "2026-02-14 10:00"),  # Friday → 调休 Saturday before Spring Festival
    ],
)
def test_deadline_follows_the_chinese_calendar(submitted: str, deadline: str) -> None:
    assert working_day_deadline(at(submitted)) == at(deadline)


def test_make_up_saturday_is_a_working_day() -> None:
    assert is_working_day(datetime.date(2026, 10, 10))
    assert not is_working_day(datetime.date(2026, 10, 1))


def test_year_outside_the_data_falls_back_to_weekdays(caplog: pytest.LogCaptureFixture) -> None:
    _warn_unknown_year.cache_clear()
    assert working_day_deadline(at("2027-03-05 10:00")) == at("2027-03-08 10:00")  # Friday → Monday
    assert "no data for 2027" in caplog.text
