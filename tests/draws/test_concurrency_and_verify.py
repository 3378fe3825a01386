"""Two simultaneous draws (real commits), and the verifiers on a bundle from the API."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from qsampling.auth.service import create_user
from qsampling.config import Settings
from qsampling.context import cli_actor
from qsampling.db import create_engine, make_sessionmaker
from qsampling.models.draws import Draw, Task
from tests.draws.conftest import ITEM, build_province

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
ENTROPY = "66123456214365123456321"


@pytest.fixture
async def real_app(own_database: str) -> AsyncIterator[tuple[Any, Any]]:
    """The app on a database of its own: every request commits for real."""
    from qsampling.app import create_app

    engine = create_engine(own_database, pool_size=4, max_overflow=2)
    sm = make_sessionmaker(engine)
    settings = Settings(env="test", database_url=own_database, audit_seal_interval_seconds=0)
    app = create_app(settings, sessionmaker=sm)
    try:
        yield app, sm
    finally:
        await engine.dispose()


async def _committed_plan(app: Any, sm: Any) -> tuple[httpx.AsyncClient, dict[str, str], int]:
    async with sm() as s:
        await build_province(s, enterprises=60, inspectors=8)
        await create_user(
            s, username="sup", role="supervisor", password=PASSWORD, actor=cli_actor()
        )
        await s.commit()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    tok = await client.post("/api/v1/auth/token", json={"username": "sup", "password": PASSWORD})
    headers = {"Authorization": f"Bearer {tok.json()['access_token']}"}
    r = await client.post(
        "/api/v1/plans", json={"name": "并发", "check_item_code": ITEM}, headers=headers
    )
    plan_id = r.json()["id"]
    r = await client.post(f"/api/v1/plans/{plan_id}/commit", headers=headers)
    assert r.status_code == 200, r.text
    return client, headers, plan_id


async def test_two_simultaneous_draws_give_one_draw_and_one_409(real_app) -> None:
    app, sm = real_app
    client, headers, plan_id = await _committed_plan(app, sm)
    try:
        results = await asyncio.gather(
            *[
                client.post(
                    f"/api/v1/plans/{plan_id}/draw",
                    json={"entropy": ENTROPY + str(i)},
                    headers=headers,
                )
                for i in range(2)
            ]
        )
    finally:
        await client.aclose()
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 409], [r.text for r in results]
    loser = next(r for r in results if r.status_code == 409)
    assert loser.json()["error"] == "AlreadyDrawn"
    winner = next(r for r in results if r.status_code == 200).json()
    async with sm() as s:
        assert await s.scalar(select(func.count()).select_from(Draw)) == 1
        n_tasks = await s.scalar(select(func.count()).select_from(Task))
        assert n_tasks == winner["selected_count"]


def _bundle_files(data: bytes) -> dict[str, bytes]:
    zf = zipfile.ZipFile(io.BytesIO(data))
    return {n: zf.read(n) for n in zf.namelist()}


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tamper(files: dict[str, bytes], how: str) -> dict[str, bytes]:
    files = dict(files)
    result = json.loads(files["result.json"])
    if how == "pool row":
        lines = files["pool.csv"].decode().splitlines(keepends=True)
        uscc, stratum, unit = lines[1].rstrip("\n").split(",")
        lines[1] = f"{uscc},{'A' if stratum != 'A' else 'B'},{unit}\n"
        files["pool.csv"] = "".join(lines).encode()
    elif how == "entropy":
        result["entropy"] = result["entropy"][:-1] + ("0" if result["entropy"][-1] != "0" else "1")
    elif how == "nonce":
        result["nonce"] = "11" * 32
    files["result.json"] = json.dumps(result, ensure_ascii=False).encode()
    return files


async def test_verifiers_on_a_real_bundle(client, province, supervisor, tmp_path: Path) -> None:
    from qsampling.cli import app as cli_app

    await province(enterprises=60, inspectors=8)
    r = await client.post(
        "/api/v1/plans", json={"name": "验证", "check_item_code": ITEM}, headers=supervisor
    )
    plan_id = r.json()["id"]
    assert (await client.post(f"/api/v1/plans/{plan_id}/commit", headers=supervisor)).is_success
    r = await client.post(
        f"/api/v1/plans/{plan_id}/draw", json={"entropy": ENTROPY}, headers=supervisor
    )
    assert r.status_code == 200, r.text
    bundle = (await client.get(f"/api/v1/public/draws/{plan_id}/bundle")).content
    good = tmp_path / "bundle.zip"
    good.write_bytes(bundle)

    runner = CliRunner()
    res = runner.invoke(cli_app, ["verify-draw", str(good)])
    assert res.exit_code == 0 and "MATCH" in res.stdout
    script = [sys.executable, str(REPO / "scripts" / "verify_draw.py")]
    res2 = subprocess.run([*script, str(good)], capture_output=True, text=True, timeout=60)
    assert res2.returncode == 0 and res2.stdout.strip() == "MATCH", res2.stdout + res2.stderr

    for how in ("pool row", "entropy", "nonce"):
        bad = tmp_path / f"bad-{how.replace(' ', '_')}.zip"
        bad.write_bytes(_zip(_tamper(_bundle_files(bundle), how)))
        res = runner.invoke(cli_app, ["verify-draw", str(bad)])
        assert res.exit_code == 1, (how, res.output)
        assert "MATCH" not in res.stdout
        res2 = subprocess.run([*script, str(bad)], capture_output=True, text=True, timeout=60)
        assert res2.returncode == 1, (how, res2.stdout)
        assert "MATCH" not in res2.stdout

    missing = tmp_path / "nope.zip"
    res = runner.invoke(cli_app, ["verify-draw", str(missing)])
    assert res.exit_code == 2
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    res = runner.invoke(cli_app, ["verify-draw", str(junk)])
    assert res.exit_code == 2
