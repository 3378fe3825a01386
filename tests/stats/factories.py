"""Test data for the statistics module: rows of ``final_results`` written directly.

``final_results`` is the read model the inspections module fills when a result becomes
final; statistics only read it, so the tests put exactly the rows they reason about there.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_ids = itertools.count(1_000_000)

COLUMNS = (
    "result_id",
    "sample_no",
    "task_id",
    "plan_id",
    "uscc",
    "check_item_code",
    "category_code",
    "region_code",
    "enterprise_size",
    "channel",
    "inspected_on",
    "passed",
    "inclusion_probability",
    "stratum",
    "stratum_sample_size",
    "stratum_population",
    "follow_up",
)
TYPES = (
    "bigint[]",
    "smallint[]",
    "bigint[]",
    "bigint[]",
    "text[]",
    "text[]",
    "text[]",
    "text[]",
    "text[]",
    "text[]",
    "date[]",
    "boolean[]",
    "float8[]",
    "text[]",
    "int[]",
    "int[]",
    "boolean[]",
)


@dataclass(frozen=True)
class Batch:
    """``passed`` passing and ``failed`` failing batches sharing every other attribute."""

    category: str
    region: str
    on: date
    passed: int
    failed: int = 0
    pi: float = 0.1
    stratum: str = "B"
    plan_id: int = 1
    n_h: int = 10
    big_n: int = 100
    size: str = "small"
    channel: str = "production"
    check_item: str = "CI-01"
    follow_up: bool = False


def rows_of(batches: list[Batch]) -> list[dict[str, Any]]:
    rows = []
    for b in batches:
        for ok in [True] * b.passed + [False] * b.failed:
            rid = next(_ids)
            rows.append(
                {
                    "result_id": rid,
                    "sample_no": 1,
                    "task_id": rid,
                    "plan_id": b.plan_id,
                    "uscc": "91350100MA00000000",
                    "check_item_code": b.check_item,
                    "category_code": b.category,
                    "region_code": b.region,
                    "enterprise_size": b.size,
                    "channel": b.channel,
                    "inspected_on": b.on,
                    "passed": ok,
                    "inclusion_probability": b.pi,
                    "stratum": b.stratum,
                    "stratum_sample_size": b.n_h,
                    "stratum_population": b.big_n,
                    "follow_up": b.follow_up,
                }
            )
    return rows


async def add(session: AsyncSession, *batches: Batch) -> int:
    """Insert the batches' rows in one statement; returns how many rows."""
    rows = rows_of(list(batches))
    if not rows:
        return 0
    cols = ", ".join(COLUMNS)
    arrays = ", ".join(f"CAST(:{c} AS {t})" for c, t in zip(COLUMNS, TYPES, strict=True))
    await session.execute(
        text(f"INSERT INTO final_results ({cols}) SELECT * FROM unnest({arrays})"),
        {c: [r[c] for r in rows] for c in COLUMNS},
    )
    await session.flush()
    return len(rows)
