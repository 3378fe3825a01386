"""Working days under the Chinese statutory holiday schedule (chinese-calendar)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qsampling.core.workdays import (
    FALLBACK_NOTE,
    MAX_WORKING_DAYS,
    WorkdayCount,
    WorkdayResult,
    add_working_days,
    is_working_day,
    working_days_between,
)


def test_national_day_2024_is_skipped() -> None:
    # 国庆节 2024: 1–7 October off; 29 September (Sunday) and 12 October (Saturday) worked.
    assert add_working_days(date(2024, 9, 30), 1) == WorkdayResult(date(2024, 10, 8), True, None)


def test_make_up_saturday_counts() -> None:
    assert is_working_day(date(2024, 10, 12)) == (True, True)  # Saturday, 调休
    assert is_working_day(date(2024, 9, 29)) == (True, True)  # Sunday, 调休
    assert add_working_days(date(2024, 10, 11), 1).due_date == date(2024, 10, 12)
    assert add_working_days(date(2024, 9, 27), 1).due_date == date(2024, 9, 29)


def test_ordinary_days() -> None:
    assert is_working_day(date(2024, 10, 1)) == (False, True)  # National Day
    assert is_working_day(date(2024, 10, 13)) == (False, True)  # plain Sunday
    assert is_working_day(date(2024, 10, 14)) == (True, True)  # plain Monday
    assert add_working_days(date(2024, 10, 14), 0) == WorkdayResult(date(2024, 10, 14), True, None)


def test_twenty_working_days_across_spring_festival_2025() -> None:
    # 春节 2025: 28 January – 4 February off; 26 January (Sunday) and 8 February (Saturday)
    # worked. From Monday 20 January: 21–24 Jan (4), 26–27 Jan (6), 5–8 Feb (10),
    # 10–14 Feb (15), 17–21 Feb (20).
    result = add_working_days(date(2025, 1, 20), 20)
    assert result == WorkdayResult(date(2025, 2, 21), True, None)
    assert working_days_between(date(2025, 1, 20), date(2025, 2, 21)) == WorkdayCount(
        20, True, None
    )


def test_labour_day_2025_has_two_statutory_days() -> None:
    # Since 2025 劳动节 is 1–2 May (five days off 1–5 May, 27 April Sunday worked).
    assert add_working_days(date(2025, 4, 30), 1).due_date == date(2025, 5, 6)
    assert is_working_day(date(2025, 4, 27)) == (True, True)


def test_far_future_falls_back_to_monday_to_friday() -> None:
    assert is_working_day(date(2099, 1, 3)) == (False, False)  # Saturday
    assert is_working_day(date(2099, 1, 5)) == (True, False)  # Monday
    result = add_working_days(date(2099, 1, 1), 5)  # Thursday
    assert result == WorkdayResult(date(2099, 1, 8), False, FALLBACK_NOTE)
    assert result.note == "超出法定节假日数据范围，按周一至周五计算"


def test_crossing_into_unknown_year_is_not_exact() -> None:
    last_known = date(2026, 12, 28)
    inside = add_working_days(last_known, 1)
    assert inside.exact
    crossing = add_working_days(last_known, 20)
    assert not crossing.exact
    assert crossing.note == FALLBACK_NOTE
    assert not working_days_between(last_known, crossing.due_date).exact


def test_before_data_range_falls_back() -> None:
    assert is_working_day(date(2003, 1, 6)) == (True, False)


def test_negative_and_reversed() -> None:
    assert add_working_days(date(2024, 10, 8), -1).due_date == date(2024, 9, 30)
    assert working_days_between(date(2024, 10, 8), date(2024, 9, 30)).days == -1
    assert working_days_between(date(2024, 10, 8), date(2024, 10, 8)).days == 0


def test_huge_n_is_refused() -> None:
    with pytest.raises(ValueError, match="working days"):
        add_working_days(date(2024, 1, 1), MAX_WORKING_DAYS + 1)


@given(
    st.dates(min_value=date(2004, 1, 1), max_value=date(2030, 12, 31)),
    st.integers(min_value=0, max_value=60),
)
def test_between_inverts_add(start: date, n: int) -> None:
    result = add_working_days(start, n)
    count = working_days_between(start, result.due_date)
    assert count.days == n
    assert count.exact == result.exact
    if n:
        assert is_working_day(result.due_date)[0]
        assert result.due_date > start
    # Never shorter than the calendar: n working days take at least n days.
    assert result.due_date - start >= timedelta(days=n)
