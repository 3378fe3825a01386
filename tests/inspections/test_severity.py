"""A final failure tells credit how severe it was (``severity`` in ``result.final``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.credit import ingest
from qsampling.models.inspections import DomainEvent

from .conftest import World, result_body


def _d(days_ago: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).date().isoformat()


def _fail_items(body: dict[str, Any], sample: int, n: int) -> None:
    for it in body["samples"][sample]["items"][:n]:
        it.update(measured_value="0.3", verdict="fail")
    body["conclusion"] = "fail"


async def _final_event(
    client: httpx.AsyncClient, session: AsyncSession, task: int, body: dict[str, Any], h, sup
) -> dict[str, Any]:
    r = await client.post(f"/api/v1/tasks/{task}/result", json=body, headers=h)
    assert r.status_code == 201, r.text
    rid = r.json()["result_id"]
    r = await client.post(
        f"/api/v1/results/{rid}/notification", json={"notified_on": _d(20)}, headers=sup
    )
    assert r.status_code == 200, r.text
    ev = await session.scalar(
        select(DomainEvent).where(
            DomainEvent.task_id == task, DomainEvent.kind == "result.final"
        )
    )
    assert ev is not None
    return dict(ev.payload)


@pytest.mark.parametrize(
    ("shape", "codes", "severity"),
    [
        ({0: 1}, ["A"], "general"),
        ({0: 1}, ["E"], "minor"),
        ({0: 3}, ["A"], "serious"),
        ({0: 1, 1: 1}, ["A"], "serious"),
    ],
)
async def test_failed_final_result_carries_its_severity_and_credit_scores_it(
    client: httpx.AsyncClient,
    world: World,
    as_inspector,
    login,
    session: AsyncSession,
    shape: dict[int, int],
    codes: list[str],
    severity: str,
) -> None:
    h = await as_inspector("TI-1")
    sup = await login("supervisor")
    task = await world.task()
    body = result_body(days_ago=30, samples=2, items=3, codes=codes)
    for sample, n in shape.items():
        _fail_items(body, sample, n)
    payload = await _final_event(client, session, task, body, h, sup)
    assert payload["outcome"] == "fail"
    assert payload["severity"] == severity

    await ingest.consume(session, now=datetime.now(UTC))
    uscc = payload["uscc"]
    rows = (
        await session.execute(
            text("SELECT kind, severity FROM credit_events WHERE uscc = :u"), {"u": uscc}
        )
    ).all()
    assert ("result_fail", severity) in [(r.kind, r.severity) for r in rows]


async def test_passed_final_result_has_no_severity(
    client: httpx.AsyncClient, world: World, as_inspector, login, session: AsyncSession
) -> None:
    h = await as_inspector("TI-1")
    sup = await login("supervisor")
    task = await world.task()
    payload = await _final_event(client, session, task, result_body(days_ago=30), h, sup)
    assert payload["outcome"] in ("pass", "no_problem_found")
    assert payload["severity"] is None
