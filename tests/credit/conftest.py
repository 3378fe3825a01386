"""Enterprises for credit tests, inserted with plain SQL (not through the directory API)."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from qsampling.core.uscc import generate

REGIONS = [
    ("350000", "福建省", "province", None),
    ("350100", "福州市", "city", "350000"),
    ("350102", "鼓楼区", "county", "350100"),
]
UNIT = ("CR-GL", "福州市鼓楼区市场监督管理局", "350102")

D = date.fromisoformat


async def make_enterprises(session: AsyncSession, n: int, *, seed: int = 11) -> list[str]:
    """``n`` enterprises (class B, in operation) under one county; returns their USCCs."""
    for code, name, level, parent in REGIONS:
        await session.execute(
            text(
                "INSERT INTO regions (code, name, level, parent_code) VALUES (:c, :n, :l, :p) "
                "ON CONFLICT DO NOTHING"
            ),
            {"c": code, "n": name, "l": level, "p": parent},
        )
    await session.execute(
        text(
            "INSERT INTO units (code, name, region_code) VALUES (:c, :n, :r) ON CONFLICT DO NOTHING"
        ),
        {"c": UNIT[0], "n": UNIT[1], "r": UNIT[2]},
    )
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        u = generate(rng, region_code="350102")
        if u in seen:
            continue
        seen.add(u)
        out.append(u)
    await session.execute(
        text(
            "INSERT INTO enterprises (uscc, name, entity_type, region_code, supervising_unit, "
            "size, channel, status, credit_class) "
            "SELECT u, '信用测试企业' || lpad(i::text, 5, '0') || '有限公司', '企业', '350102', "
            ":unit, 'small', 'production', '存续', 'B' "
            "FROM unnest(CAST(:us AS text[])) WITH ORDINALITY AS t(u, i) ON CONFLICT DO NOTHING"
        ),
        {"us": out, "unit": UNIT[0]},
    )
    await session.flush()
    return out


@pytest.fixture
def enterprises(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> Callable[..., Awaitable[list[str]]]:
    """``await enterprises(3)`` → committed (to the test's outer transaction) USCCs."""

    async def _make(n: int, *, seed: int = 11) -> list[str]:
        async with sessionmaker() as s:
            out = await make_enterprises(s, n, seed=seed)
            await s.commit()
        return out

    return _make
