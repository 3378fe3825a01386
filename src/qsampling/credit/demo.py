"""The credit part of the demo province (`qsampling demo`)."""

from __future__ import annotations

import random

from sqlalchemy.ext.asyncio import AsyncSession


async def build(session: AsyncSession, *, rng: random.Random, enterprises: int) -> dict[str, int]:
    """Add this module's demo data; returns counts for the summary line."""
    return {}
