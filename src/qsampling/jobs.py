"""Time-driven jobs, run by ``qsampling jobs run``. Each job is idempotent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.audit.service import seal
from qsampling.auth.service import purge_old_attempts

Job = Callable[[AsyncSession, datetime], Awaitable[int]]


async def _seal_audit(session: AsyncSession, now: datetime) -> int:
    return await seal(session)


async def _purge_logins(session: AsyncSession, now: datetime) -> int:
    return await purge_old_attempts(session, older_than=timedelta(days=30))


JOBS: list[tuple[str, Job]] = [
    ("audit_sealed", _seal_audit),
    ("login_attempts_purged", _purge_logins),
]


DOMAIN_MODULES = ("inspections", "credit", "disclosure", "draws", "directory", "stats")


def all_jobs() -> list[tuple[str, Job]]:
    import importlib

    jobs = list(JOBS)
    for mod in DOMAIN_MODULES:
        jobs.extend(importlib.import_module(f"qsampling.{mod}.jobs").JOBS)
    return jobs


async def run_all(session: AsyncSession, *, now: datetime | None = None) -> dict[str, int]:
    now = now or datetime.now(UTC)
    report: dict[str, int] = {}
    for name, job in all_jobs():
        report[name] = report.get(name, 0) + await job(session, now)
    # seal again so entries written by the jobs themselves are chained in this run
    report["audit_sealed"] += await seal(session)
    return report
