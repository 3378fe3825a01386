"""The disclosure part of the demo province (`qsampling demo`): publish every final result
the inspections demo produced, so the portal and the open-data API have data."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.context import SYSTEM
from qsampling.disclosure import service


async def build(session: AsyncSession, *, rng: random.Random, enterprises: int) -> dict[str, int]:
    """Add this module's demo data; returns counts for the summary line."""
    n = await service.register_final_results(
        session, now=datetime.now(UTC), actor=SYSTEM, backdate=True
    )
    return {"results published": n}
