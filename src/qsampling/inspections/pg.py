"""Direct asyncpg access inside the session's transaction, for the hot write paths.

SQLAlchemy's per-statement overhead (parameter processing, result wrapping) is a large share
of a submission's CPU time; the few statements of the hot path go straight to the driver on
the session's own connection, so they stay in the request's transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def connection(session: AsyncSession) -> Any:
    """The asyncpg connection under ``session`` as it is: inside the session's transaction
    when one has begun, else in autocommit — for single statements, atomic by themselves."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def driver(session: AsyncSession) -> Any:
    """The asyncpg connection under ``session``, with the transaction begun.

    SQLAlchemy's asyncpg adapter sends BEGIN lazily with its first statement; when nothing ran
    yet, the adapter is asked to begin (what its first statement would do), so raw statements
    never run outside the transaction and commit/rollback through the session end it. An
    adapter that does not offer that gets one trivial statement through the session instead.
    """
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    adapted = raw.dbapi_connection
    if getattr(adapted, "_transaction", None) is None:
        start = getattr(adapted, "_start_transaction", None)
        if start is not None and getattr(adapted, "isolation_level", None) != "autocommit":
            await start()
        if getattr(adapted, "_transaction", None) is None:
            await session.execute(text("SELECT 1"))
    return raw.driver_connection
