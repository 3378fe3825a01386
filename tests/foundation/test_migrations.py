"""Migrations: one head; upgrade from empty; downgrade to base and up again; models match."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from qsampling.db import Base, alembic_config, create_engine, downgrade, upgrade


def _in_thread(fn: Callable[[], Any]) -> Any:
    out: list[Any] = []
    err: list[BaseException] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as e:  # noqa: BLE001
            err.append(e)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if err:
        raise err[0]
    return out[0] if out else None


def test_single_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"several migration heads: {heads}"


def test_migration_file_names_are_date_slugs() -> None:
    import re
    from pathlib import Path

    from qsampling.db import REPO_ROOT

    for p in (Path(REPO_ROOT) / "alembic" / "versions").glob("*.py"):
        assert re.match(r"^\d{4}-\d{2}-\d{2}_[a-z0-9_]+\.py$", p.name), p.name


async def _schema_diff(url: str) -> list[Any]:
    import qsampling.models  # noqa: F401

    eng = create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with eng.connect() as conn:

            def _cmp(sync_conn: Any) -> list[Any]:
                ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                return list(compare_metadata(ctx, Base.metadata))

            return await conn.run_sync(_cmp)
    finally:
        await eng.dispose()


async def _tables(url: str) -> set[str]:
    eng = create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with eng.connect() as conn:
            from sqlalchemy import text

            rows = await conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
            return {r[0] for r in rows}
    finally:
        await eng.dispose()


async def test_upgrade_from_empty_down_to_base_and_up_again(own_database_empty: str) -> None:
    url = own_database_empty
    _in_thread(lambda: upgrade(url))
    diff = await _schema_diff(url)
    assert diff == [], f"models and migrations differ: {diff}"
    _in_thread(lambda: downgrade(url, "base"))
    assert await _tables(url) <= {"alembic_version"}
    _in_thread(lambda: upgrade(url))
    assert "audit_log" in await _tables(url)
    assert await _schema_diff(url) == []


def test_server_refuses_schema_behind(own_database_empty: str) -> None:
    from qsampling.app import SchemaBehind, check_schema

    async def go() -> None:
        eng = create_engine(own_database_empty, pool_size=1, max_overflow=0)
        try:
            await check_schema(eng)
        finally:
            await eng.dispose()

    import pytest

    with pytest.raises(SchemaBehind, match="run `qsampling db upgrade`"):
        asyncio.run(go())
