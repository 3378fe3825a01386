"""Real concurrency on a committed database: duplicates racing for the same task."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from qsampling.app import create_app
from qsampling.config import Settings
from qsampling.db import create_engine, make_sessionmaker

from .conftest import make_token, make_world, result_body


@pytest.fixture
async def committed(own_database: str, test_settings: Settings) -> AsyncIterator[dict[str, Any]]:
    engine = create_engine(own_database, pool_size=12, max_overflow=4)
    sm = make_sessionmaker(engine)
    app = create_app(
        test_settings.model_copy(update={"database_url": own_database}), sessionmaker=sm
    )
    async with sm() as s:
        world = await make_world(s)
        tasks = [await world.task() for _ in range(2)]
        headers = await make_token(s, "inspector", "TI-1")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield {"client": client, "tasks": tasks, "headers": headers, "sm": sm}
    await engine.dispose()


async def test_racing_duplicates_write_once(committed: dict[str, Any]) -> None:
    client, (t_key, t_nokey), h = committed["client"], committed["tasks"], committed["headers"]
    body = result_body()
    with_key = [
        client.post(
            f"/api/v1/tasks/{t_key}/result", json=body, headers={**h, "Idempotency-Key": "race-1"}
        )
        for _ in range(8)
    ]
    without = [
        client.post(f"/api/v1/tasks/{t_nokey}/result", json=body, headers=h) for _ in range(8)
    ]
    keyed = await asyncio.gather(*with_key)
    plain = await asyncio.gather(*without)

    assert [r.status_code for r in keyed] == [201] * 8
    assert len({r.json()["result_id"] for r in keyed}) == 1
    assert sum(1 for r in keyed if r.headers.get("Idempotent-Replayed") != "true") == 1

    codes = sorted(r.status_code for r in plain)
    assert codes == [201] + [409] * 7
    assert {r.json()["current_state"] for r in plain if r.status_code == 409} == {"submitted"}

    async with committed["sm"]() as s:
        n = await s.scalar(
            text("SELECT count(*) FROM results WHERE task_id = ANY(:t)"),
            {"t": [t_key, t_nokey]},
        )
    assert n == 2
