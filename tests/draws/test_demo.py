"""The demo province has real, verifiable draws."""

from __future__ import annotations

import random

from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.core.draw import verify_bundle
from qsampling.draws import demo, service
from qsampling.draws.bundle import bundle_bytes
from qsampling.models.draws import Commitment
from tests.draws.conftest import build_province


async def test_demo_commits_and_draws_verifiable_plans(session: AsyncSession) -> None:
    await build_province(session, enterprises=120, inspectors=10)
    counts = await demo.build(session, rng=random.Random(2026), enterprises=120)
    assert counts["plans"] == 1 and counts["draws"] == 1 and counts["tasks"] > 0
    rows, _ = await service.public_rows(session)
    drawn = [r for r in rows if r.draw is not None]
    assert drawn
    # the listing carries the commitment's head; the bundle needs its frozen files
    commitment = await session.get(Commitment, drawn[0].commitment.id)
    assert commitment is not None
    data = await bundle_bytes(session, draw=drawn[0].draw, commitment=commitment)
    assert verify_bundle(data).ok


async def test_demo_without_a_directory_does_nothing(session: AsyncSession) -> None:
    assert await demo.build(session, rng=random.Random(1), enterprises=0) == {
        "plans": 0,
        "draws": 0,
    }
