"""Working days (工作日) under the Chinese statutory holiday schedule.

Deadlines such as "public within 20 working days of the inspection's end" count working days:
Monday to Friday, minus the statutory holidays (法定节假日) the State Council announces each year
(《全国年节及纪念日放假办法》 and the yearly 国务院办公厅 notice), plus the make-up working
days (调休) that fall on a Saturday or Sunday. The ``chinese-calendar`` package carries those
announcements for the years it knows. For a date outside them it raises
``NotImplementedError``; here such a date is counted as Monday–Friday instead and the result
says so (``exact=False`` and :data:`FALLBACK_NOTE`), so a due date far ahead is still given,
marked as provisional until the holidays are announced.

Pure functions: no I/O, no clock.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache
from typing import Final, NamedTuple

import chinese_calendar

__all__ = [
    "FALLBACK_NOTE",
    "MAX_WORKING_DAYS",
    "WorkdayCount",
    "WorkdayResult",
    "add_working_days",
    "is_working_day",
    "working_days_between",
]

FALLBACK_NOTE: Final = "超出法定节假日数据范围，按周一至周五计算"
"""The note on a result that counted some day as Monday–Friday for lack of holiday data."""

MAX_WORKING_DAYS: Final = 10_000
"""Largest ``n`` :func:`add_working_days` accepts (about 40 years); bigger is a caller bug."""

_ONE_DAY: Final = timedelta(days=1)


class WorkdayResult(NamedTuple):
    """A due date and whether the holiday schedule covered every day counted."""

    due_date: date
    exact: bool
    note: str | None


class WorkdayCount(NamedTuple):
    """A number of working days and whether the holiday schedule covered every day counted."""

    days: int
    exact: bool
    note: str | None


@lru_cache(maxsize=8192)
def is_working_day(day: date) -> tuple[bool, bool]:
    """``(is_working_day, exact)`` for one calendar day.

    ``exact`` is false when ``chinese-calendar`` has no holiday data for the day's year; the
    answer is then simply "Monday to Friday".
    """
    try:
        return bool(chinese_calendar.is_workday(day)), True
    except NotImplementedError:
        return day.weekday() < 5, False


def _note(exact: bool) -> str | None:
    return None if exact else FALLBACK_NOTE


def add_working_days(start: date, n: int) -> WorkdayResult:
    """The ``n``-th working day after ``start``; ``start`` itself is not counted.

    ``add_working_days(date(2024, 9, 30), 1)`` is 2024-10-08: 1–7 October 2024 are the
    National Day holiday. Make-up Saturdays and Sundays (调休) count as working days. A
    negative ``n`` counts backwards (the ``|n|``-th working day before ``start``); ``n = 0``
    gives ``start``. Raises ``ValueError`` when ``|n|`` exceeds :data:`MAX_WORKING_DAYS`.
    """
    if abs(n) > MAX_WORKING_DAYS:
        raise ValueError(f"n must be within ±{MAX_WORKING_DAYS} working days, got {n}")
    step = _ONE_DAY if n >= 0 else -_ONE_DAY
    day, counted, exact = start, 0, True
    while counted < abs(n):
        day += step
        working, known = is_working_day(day)
        exact = exact and known
        counted += working
    return WorkdayResult(day, exact, _note(exact))


def working_days_between(a: date, b: date) -> WorkdayCount:
    """The number of working days ``d`` with ``a < d ≤ b`` (negative when ``b`` is before ``a``).

    The inverse of :func:`add_working_days`: for ``n ≥ 0``,
    ``working_days_between(a, add_working_days(a, n).due_date).days == n``.
    """
    sign = 1
    if b < a:
        a, b, sign = b, a, -1
    days, exact = 0, True
    day = a
    while day < b:
        day += _ONE_DAY
        working, known = is_working_day(day)
        exact = exact and known
        days += working
    return WorkdayCount(sign * days, exact, _note(exact))
