"""Time-driven jobs of the disclosure module (each idempotent).

- ``results_published``: results that became final since the last run are published (their
  public snapshot written, due date recorded). Safe to run every minute.
- ``results_published_due``: anything registered but unpublished is published by its due
  date (20 working days after the inspection ended).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.context import SYSTEM
from qsampling.disclosure import service

Job = Callable[[AsyncSession, datetime], Awaitable[int]]


async def _publish_final(session: AsyncSession, now: datetime) -> int:
    return await service.register_final_results(session, now=now, actor=SYSTEM)


async def _publish_due(session: AsyncSession, now: datetime) -> int:
    return await service.publish_due(session, now=now, actor=SYSTEM)


JOBS: list[tuple[str, Job]] = [
    ("results_published", _publish_final),
    ("results_published_due", _publish_due),
]
