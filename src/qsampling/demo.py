"""`qsampling demo`: a deterministic synthetic province, built module by module."""

from __future__ import annotations

import importlib
import random

from sqlalchemy.ext.asyncio import AsyncSession

# order matters: each part builds on the ones before it
DEMO_PARTS = ("directory", "draws", "inspections", "credit", "stats", "disclosure")


async def build_demo(session: AsyncSession, *, rng: random.Random,
                     enterprises: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for part in DEMO_PARTS:
        mod = importlib.import_module(f"qsampling.{part}.demo")
        counts.update(await mod.build(session, rng=rng, enterprises=enterprises))
    return counts
