"""Direct asyncpg access inside the session's transaction, for the hot write paths.

SQLAlchemy's per-statement overhead (parameter processing, result wrapping) is a large share
of a submission's CPU time; the few statements of the hot path go straight to the driver on
the session's own connection, so they stay in the request's transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def driver(session: AsyncSession) -> Any:
    """The asyncpg connection under ``session``, with the transaction begun.

    SQLAlchemy sends BEGIN lazily with its first statement; when nothing ran yet (or when the
    adapter does not tell), one trivial statement through the session begins it, so raw
    statements never run outside the transaction.
    """
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    adapted = raw.dbapi_connection
    if getattr(adapted, "_transaction", None) is None:
        await session.execute(text("SELECT 1"))
    return raw.driver_connection
