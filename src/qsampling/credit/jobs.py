"""Time-driven jobs of the credit module (each idempotent; ``now`` is injected).

Order matters: new results enter the ledger first, then the list deadlines are applied,
then — once a day, or when a new policy was published — every class is recomputed so the
decay of old events is reflected.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.context import SYSTEM
from qsampling.credit import ingest, lists, service

Job = Callable[[AsyncSession, datetime], Awaitable[int]]


async def consume_results(session: AsyncSession, now: datetime) -> int:
    """Final results, refusals, unreachables, failed re-inspections → ledger, lists, class."""
    rep = await ingest.consume(session, now=now)
    return rep.credit_events


async def abnormal_deadlines(session: AsyncSession, now: datetime) -> int:
    """60-day warnings and 3-year escalations of the abnormal-operations list."""
    rep = await lists.run_abnormal_due(session, today=service.china_today(now))
    return rep.warned + rep.escalated


async def serious_deadlines(session: AsyncSession, now: datetime) -> int:
    """Automatic removal from the serious list at 3 years; repair-eligibility notices."""
    rep = await lists.run_serious_due(session, today=service.china_today(now))
    return rep.expired + rep.repair_notified


async def daily_recompute(session: AsyncSession, now: datetime) -> int:
    """Recompute every class once per (China) day and policy version; 0 when done."""
    today = service.china_today(now)
    if not await service.recompute_due(session, today=today):
        return 0
    rep = await service.recompute_all(session, actor=SYSTEM, as_of=today, trigger="daily")
    return rep.enterprises


JOBS: list[tuple[str, Job]] = [
    ("credit_results_consumed", consume_results),
    ("credit_abnormal_transitions", abnormal_deadlines),
    ("credit_serious_transitions", serious_deadlines),
    ("credit_recomputed", daily_recompute),
]
