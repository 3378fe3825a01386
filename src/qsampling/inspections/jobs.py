"""Time-driven jobs of the inspections module (each idempotent; `qsampling jobs run`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.inspections import finalise as fin

Job = Callable[[AsyncSession, datetime], Awaitable[int]]


async def _finalise(session: AsyncSession, now: datetime) -> int:
    """Results whose objection window closed (or that were retested) become final."""
    return await fin.finalise_all_due(session, now=now)


async def _follow_up_plans(session: AsyncSession, now: datetime) -> int:
    """Follow-up plans for rectification orders still without one (retry)."""
    return await fin.ensure_follow_up_plans(session, now=now)


async def _purge_keys(session: AsyncSession, now: datetime) -> int:
    """Idempotency records older than 90 days (a retry that late gets 409, never a duplicate:
    the task has left the state that accepts a result)."""
    return await fin.purge_idempotency_keys(session, now=now)


JOBS: list[tuple[str, Job]] = [
    ("results_finalised", _finalise),
    ("follow_up_plans_created", _follow_up_plans),
    ("idempotency_keys_purged", _purge_keys),
]
