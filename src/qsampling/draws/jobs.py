"""Time-driven jobs of the draws module (each idempotent)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

Job = Callable[[AsyncSession, datetime], Awaitable[int]]

JOBS: list[tuple[str, Job]] = []
