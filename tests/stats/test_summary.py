"""The monthly summary ``final_result_counts``: kept equal to ``final_results`` by triggers,
and pass rates read from it are the numbers a full scan gives."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.stats import service
from qsampling.stats.service import StatsFilters, parse_group_by
from tests.stats.factories import Batch, add

CATEGORIES = ["01.01.01", "01.01.02", "01.02.01", "011.01", "02.01.01", "03"]
REGIONS = ["350102", "350103", "350203", "350581", "370102"]
START = date(2025, 11, 20)


def _random_batches(rng: random.Random, n: int) -> list[Batch]:
    return [
        Batch(
            rng.choice(CATEGORIES),
            rng.choice(REGIONS),
            START + timedelta(days=rng.randrange(0, 200)),
            passed=rng.randrange(0, 6),
            failed=rng.randrange(0, 3),
            follow_up=rng.random() < 0.15,
            check_item=rng.choice(["CI-01", "CI-02"]),
            size=rng.choice(["small", "large"]),
        )
        for _ in range(n)
    ]


async def _summary_rows(session: AsyncSession) -> list[tuple]:
    rows = await session.execute(
        text(
            "SELECT category_code, region_code, month, follow_up, tested, passed "
            "FROM final_result_counts ORDER BY 1, 2, 3, 4"
        )
    )
    return [tuple(r) for r in rows]


async def _aggregated(session: AsyncSession) -> list[tuple]:
    rows = await session.execute(
        text(
            "SELECT category_code, region_code, date_trunc('month', inspected_on)::date, "
            "follow_up, count(*), count(*) FILTER (WHERE passed) FROM final_results "
            "GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
        )
    )
    return [tuple(r) for r in rows]


async def test_triggers_keep_the_summary_equal_to_the_results(session: AsyncSession) -> None:
    rng = random.Random(7)
    await add(session, *_random_batches(rng, 60))
    await add(session, *_random_batches(rng, 40))  # a second statement onto the same keys
    assert await _summary_rows(session) == await _aggregated(session) != []

    # a corrected row moves between groups, a deleted one leaves its group
    await session.execute(
        text(
            "UPDATE final_results SET passed = NOT passed, category_code = '04.01' "
            "WHERE result_id IN (SELECT result_id FROM final_results ORDER BY result_id LIMIT 25)"
        )
    )
    await session.execute(
        text(
            "DELETE FROM final_results WHERE result_id IN "
            "(SELECT result_id FROM final_results ORDER BY result_id DESC LIMIT 30)"
        )
    )
    assert await _summary_rows(session) == await _aggregated(session)
    # a group whose last batch is deleted disappears from the summary
    await session.execute(text("DELETE FROM final_results WHERE category_code = '04.01'"))
    summary = await _summary_rows(session)
    assert summary == await _aggregated(session)
    assert all(r[0] != "04.01" for r in summary)

    await session.execute(text("TRUNCATE final_results"))
    assert await _summary_rows(session) == []


def _random_filters(rng: random.Random) -> StatsFilters:
    def day() -> date:
        # month ends, month starts and days in between all matter to the split
        d = START + timedelta(days=rng.randrange(-20, 230))
        return rng.choice([d, d.replace(day=1), service._next_month(d) - timedelta(days=1)])

    lo, hi = day(), day()
    if lo > hi:
        lo, hi = hi, lo
    return StatsFilters(
        from_date=rng.choice([None, lo]),
        to_date=rng.choice([None, hi]),
        category=rng.choice([None, None, "01", "01.01", "011", "03"]),
        region=rng.choice([None, None, "3501", "350102", "35"]),
        include_follow_up=rng.random() < 0.3,
    ).validated()


GROUPINGS = [
    [],
    ["category"],
    ["category:1", "region:city"],
    ["category", "region"],
    ["region:province", "period:month"],
    ["period:quarter"],
    ["category:2", "period:year"],
]


async def test_summary_and_full_scan_give_the_same_counts(session: AsyncSession) -> None:
    rng = random.Random(11)
    await add(session, *_random_batches(rng, 150))
    checked = 0
    for _ in range(120):
        flt = _random_filters(rng)
        specs = parse_group_by(rng.choice(GROUPINGS))
        assert service._summary_months(specs, flt) is not None
        fast = await service.grouped_counts(session, specs=specs, filters=flt)
        slow = await service.grouped_counts(session, specs=specs, filters=flt, summary=False)
        assert fast.keys == slow.keys, (flt, specs)
        assert fast.tested.tolist() == slow.tested.tolist(), (flt, specs)
        assert fast.passed.tolist() == slow.passed.tolist(), (flt, specs)
        checked += int(slow.tested.sum())
    assert checked > 1000  # the filters selected real data, not only empty sets


@pytest.mark.parametrize(
    ("group_by", "kw"),
    [
        (["size"], {}),
        (["category"], {"check_item": "CI-02"}),
        (["region"], {"plan_id": 1}),
    ],
)
async def test_questions_the_summary_cannot_answer_scan_the_results(
    session: AsyncSession, group_by: list[str], kw: dict
) -> None:
    rng = random.Random(3)
    await add(session, *_random_batches(rng, 40))
    specs = parse_group_by(group_by)
    flt = StatsFilters(**kw).validated()
    assert service._summary_months(specs, flt) is None
    res = await service.grouped_counts(session, specs=specs, filters=flt)
    assert int(res.tested.sum()) > 0


@pytest.mark.parametrize(
    ("from_date", "to_date", "months"),
    [
        (date(2026, 3, 1), date(2026, 5, 31), (date(2026, 3, 1), date(2026, 6, 1))),
        (date(2026, 3, 2), date(2026, 5, 30), (date(2026, 4, 1), date(2026, 5, 1))),
        (date(2026, 12, 15), date(2027, 1, 31), (date(2027, 1, 1), date(2027, 2, 1))),
        (date(2026, 2, 1), date(2026, 2, 28), (date(2026, 2, 1), date(2026, 3, 1))),
        (date(2028, 2, 1), date(2028, 2, 28), (date(2028, 2, 1), date(2028, 2, 1))),
        (None, date(2026, 12, 31), (None, date(2027, 1, 1))),
    ],
)
def test_whole_months_of_a_date_range(from_date, to_date, months) -> None:
    flt = StatsFilters(from_date=from_date, to_date=to_date)
    assert service._summary_months([], flt) == months


async def test_pass_rates_by_month_edges_count_every_day(session: AsyncSession) -> None:
    """A range from the middle of one month to the middle of another counts the edge days
    from the results and the whole months between from the summary."""
    await add(
        session,
        Batch("01.01.01", "350102", date(2026, 3, 14), passed=1),
        Batch("01.01.01", "350102", date(2026, 3, 15), passed=2, failed=1),
        Batch("01.01.01", "350102", date(2026, 4, 10), passed=4),
        Batch("01.01.01", "350102", date(2026, 5, 20), passed=8),
        Batch("01.01.01", "350102", date(2026, 5, 21), passed=16),
    )
    res = await service.pass_rates(
        session,
        group_by=["period:month"],
        filters=StatsFilters(from_date=date(2026, 3, 15), to_date=date(2026, 5, 20)),
    )
    assert [(r.group["period"], r.tested, r.passed) for r in res.rows] == [
        ("2026-03", 3, 2),
        ("2026-04", 4, 4),
        ("2026-05", 8, 8),
    ]
