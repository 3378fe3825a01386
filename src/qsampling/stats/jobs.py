"""Time-driven jobs of the stats module (each idempotent).

None: statistics are computed on request from ``final_results``, which the inspections
module writes in the same transaction that makes a result final (issue 6 point 6), and from
its monthly summary ``final_result_counts``, which database triggers update in that same
statement. Nothing is cached, so nothing needs refreshing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

Job = Callable[[AsyncSession, datetime], Awaitable[int]]

JOBS: list[tuple[str, Job]] = []
