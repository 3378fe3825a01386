"""Test harness on real PostgreSQL.

Database: ``QSAMPLING_TEST_DATABASE_URL`` when set (CI also runs the suite against the
PostgreSQL 15 service), else the embedded PostgreSQL 18 under ``QSAMPLING_DATA_DIR``.
The test database is recreated and migrated once per run; each test runs inside an outer
transaction that is rolled back, with the app's sessions joined via savepoints. Tests that
need real commits (concurrency) get a database of their own cloned from the migrated one.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from qsampling.config import Settings

# one database per run, so parallel runs on the same server never drop each other's
TEST_DB = os.environ.get("QSAMPLING_TEST_DB_NAME", f"qsampling_test_{os.getpid()}")
# migrated once and never connected to afterwards, so it can be cloned at any time
TEMPLATE_DB = TEST_DB + "_template"


def _server_url() -> str:
    """asyncpg URL of the server (database part replaced later)."""
    explicit = os.environ.get("QSAMPLING_TEST_DATABASE_URL")
    if explicit:
        return Settings(database_url=explicit).database_url or explicit
    from qsampling.db import _libpq_to_asyncpg, embedded_server_uri

    settings = Settings()
    uri = embedded_server_uri(settings.data_dir)
    return _libpq_to_asyncpg(uri, "postgres")


def with_db(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def _admin_conn(url: str) -> asyncpg.Connection:
    u = make_url(url)
    return await asyncpg.connect(
        user=u.username or "postgres",
        password=u.password or None,
        host=u.query.get("host") or u.host,
        port=u.port,
        database="postgres",
    )


async def recreate_database(url: str, name: str, template: str | None = None) -> None:
    conn = await _admin_conn(url)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        tpl = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{tpl}')
    finally:
        await conn.close()


async def drop_database(url: str, name: str) -> None:
    conn = await _admin_conn(url)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def server_url() -> str:
    return _server_url()


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """The migrated test database (created fresh once per run)."""
    from qsampling.db import upgrade

    url = with_db(server_url, TEST_DB)

    def _prepare() -> None:
        asyncio.run(recreate_database(server_url, TEMPLATE_DB))
        upgrade(with_db(server_url, TEMPLATE_DB))
        asyncio.run(recreate_database(server_url, TEST_DB, template=TEMPLATE_DB))

    # alembic's env runs its own event loop: keep it off the test loop
    import threading

    errors: list[BaseException] = []

    def _runner() -> None:
        try:
            _prepare()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=_runner)
    t.start()
    t.join()
    if errors:
        raise errors[0]
    yield url

    async def _cleanup() -> None:
        await drop_database(server_url, TEST_DB)
        await drop_database(server_url, TEMPLATE_DB)

    t = threading.Thread(target=lambda: asyncio.run(_cleanup()))
    t.start()
    t.join()


@pytest.fixture(scope="session")
def test_settings(database_url: str) -> Settings:
    return Settings(env="test", database_url=database_url, audit_seal_interval_seconds=0)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    from qsampling.db import create_engine

    eng = create_engine(database_url, pool_size=5, max_overflow=5)
    yield eng
    await eng.dispose()


@pytest.fixture
async def db_conn(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside an outer transaction that is always rolled back."""
    async with engine.connect() as conn:
        trans = await conn.begin()
        try:
            yield conn
        finally:
            await trans.rollback()


@pytest.fixture
def sessionmaker(db_conn: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(
        bind=db_conn, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )


@pytest.fixture
async def session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as s:
        yield s


@pytest.fixture
def app(test_settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> Any:
    from qsampling.app import create_app

    return create_app(test_settings, sessionmaker=sessionmaker)


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


PASSWORD = "correct horse battery"


@pytest.fixture
def login(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> Callable[..., Awaitable[dict[str, str]]]:
    """``await login("supervisor")`` → auth headers for a fresh user of that role."""
    from qsampling.auth.service import create_user
    from qsampling.context import cli_actor

    async def _login(
        role: str, *, username: str | None = None, inspector_id: str | None = None
    ) -> dict[str, str]:
        name = username or f"{role}-{uuid.uuid4().hex[:8]}"
        async with sessionmaker() as s:
            await create_user(
                s,
                username=name,
                role=role,
                password=PASSWORD,
                actor=cli_actor(),
                inspector_id=inspector_id,
            )
            await s.commit()
        r = await client.post("/api/v1/auth/token", json={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    return _login


@pytest.fixture
async def own_database(server_url: str, database_url: str) -> AsyncIterator[str]:
    """A committed database of this test's own, cloned from the migrated test database."""
    name = f"qs_t_{uuid.uuid4().hex[:10]}"
    await recreate_database(server_url, name, template=TEMPLATE_DB)
    try:
        yield with_db(server_url, name)
    finally:
        await drop_database(server_url, name)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def own_database_empty(server_url: str) -> AsyncIterator[str]:
    """An empty database of this test's own (for migration tests)."""
    name = f"qs_m_{uuid.uuid4().hex[:10]}"
    await recreate_database(server_url, name)
    try:
        yield with_db(server_url, name)
    finally:
        await drop_database(server_url, name)
