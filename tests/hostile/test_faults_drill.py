"""The fault drills (`bench/faults.py`) as a slow test, and the database-outage answer
they rely on, pinned without a drill.

Run the drill with ``pytest -m slow tests/hostile``: a private embedded PostgreSQL (never
the shared one) is stopped and started, a uvicorn worker killed, the pool exhausted and an
export written onto a full disk, under a stream of submissions and plan draws.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from asyncpg import exceptions as pg_errors
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from qsampling.app import install_error_handlers

BENCH = Path(__file__).resolve().parents[2] / "bench" / "faults.py"


class Error(Exception):
    """Shaped like SQLAlchemy's asyncpg adapter error: the asyncpg one is its cause."""


def _outage_while_connecting() -> DBAPIError:
    cause = pg_errors.CannotConnectNowError("the database system is shutting down")
    orig = Error("the database system is shutting down")
    orig.__cause__ = cause
    return DBAPIError("SELECT 1", None, orig, connection_invalidated=False)


async def test_server_shutting_down_while_connecting_is_503() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise _outage_while_connecting()

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t"
    ) as c:
        r = await c.get("/boom")
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "DatabaseUnavailable"


@pytest.mark.slow
def test_fault_drills() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--inspectors",
            "6",
            "--tasks-per-inspector",
            "300",
            "--burst",
            "200",
            "--down",
            "4",
            "--after",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    report = proc.stdout
    assert proc.returncode == 0, report + proc.stderr[-3000:]
    for check in (
        "every 2xx submission stored exactly once",
        "no half-drawn plan",
        "audit chain verifies",
        "service healthy afterwards (/readyz 200, no restart)",
        "disk full: export fails with one line, no partial file",
        "worker killed: the master started a new one",
    ):
        assert f"PASS  {check}" in report, report
