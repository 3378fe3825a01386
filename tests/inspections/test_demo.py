"""The demo's year of inspection history (slow: builds the whole demo province)."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import text

from qsampling.db import create_engine, make_sessionmaker, transaction


@pytest.mark.slow
async def test_demo_builds_a_year_of_results(own_database: str) -> None:
    from qsampling.demo import build_demo

    engine = create_engine(own_database, pool_size=2, max_overflow=0)
    try:
        async with transaction(make_sessionmaker(engine)) as s:
            counts = await build_demo(s, rng=random.Random(2026), enterprises=1500)
        assert counts["inspection results"] > 300
        async with make_sessionmaker(engine)() as s:
            kinds = {k for (k,) in await s.execute(text("SELECT DISTINCT kind FROM domain_events"))}
            assert {
                "result.final",
                "result.refused",
                "result.unreachable",
                "rectification.ordered",
            } <= kinds
            quarters = await s.scalar(
                text(
                    "SELECT count(DISTINCT date_trunc('quarter', inspected_on)) FROM final_results"
                )
            )
            assert quarters >= 4
            fail_share = await s.scalar(text("SELECT avg((NOT passed)::int) FROM final_results"))
            assert 0.02 < float(fail_share) < 0.12
            open_ = await s.scalar(
                text("SELECT count(*) FROM tasks WHERE status IN ('submitted', 'notified')")
            )
            assert open_ > 0
            not_batch = await s.scalar(text("SELECT count(*) FROM results WHERE source <> 'batch'"))
            assert not_batch == 0  # every demo result went through the lab batch path
    finally:
        await engine.dispose()
