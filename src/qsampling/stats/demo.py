"""The stats part of the demo province (`qsampling demo`).

Statistics store nothing of their own: they aggregate ``final_results`` (and its monthly
summary, kept by triggers), which the inspections part of the demo fills as its results
become final. This step only reads what
the province now shows, so the summary line says whether the charts and the early-warning
list have something to show.
"""

from __future__ import annotations

import random

from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.stats import service

# the provincial programme target the demo's report and warnings are read against
DEMO_TARGET = 0.93


async def build(session: AsyncSession, *, rng: random.Random, enterprises: int) -> dict[str, int]:
    """Count the pass-rate groups by industry and the early warnings of the latest quarter."""
    rates = await service.pass_rates(session, group_by=["category:1"])
    warnings = await service.early_warnings(session, target=DEMO_TARGET)
    return {
        "industries with final results": len(rates.rows),
        "early warnings": len(warnings.warnings),
    }
