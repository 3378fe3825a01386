"""A large mixed batch gives the same report and the same stored rows as sending each of its
rows as a batch of its own (the per-row path), and leaves the worker as it found it."""

from __future__ import annotations

import gc
import json
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from .conftest import World, result_body

ND = {"Content-Type": "application/x-ndjson"}
UNKNOWN_TASK = 999_999_998


def _mixed(tasks: list[int], foreign: int, p: str) -> list[bytes]:
    """Every kind of row a lab sends, repeated over ``tasks`` (keys prefixed with ``p``)."""
    lines: list[bytes] = []

    def add(row: dict[str, Any]) -> None:
        lines.append(json.dumps(row, ensure_ascii=False).encode())

    for k, t in enumerate(tasks):
        kind = k % 8
        key = f"{p}-{k}"
        if kind == 0:
            same = {**result_body(), "task_id": t, "idempotency_key": key}
            add(same)
            add(same)  # identical repeat
        elif kind == 1:
            add(
                {**result_body(fail=True, samples=2, items=3), "task_id": t, "idempotency_key": key}
            )
            add({**result_body(notes="改"), "task_id": t, "idempotency_key": key})  # key reused
        elif kind == 2:
            add({**result_body(fail=True, conclusion="pass"), "task_id": t, "idempotency_key": key})
            add({**result_body(), "task_id": t, "idempotency_key": key + "b"})  # after the error
        elif kind == 3:
            body = result_body(codes=["9"], conclusion=None, samples=0)
            add({**body, "samples": [], "task_id": t, "idempotency_key": key})  # closed: final
            add({**result_body(), "task_id": t, "idempotency_key": key + "b"})  # task closed
        elif kind == 4:
            body = result_body(notes="  padded  ")
            body["samples"][0]["category_code"] = "NO.SUCH"
            add({**body, "task_id": t, "idempotency_key": key})
        elif kind == 5:
            body = result_body(samples=3)
            body["samples"][1]["product_name"] = "  电水壶  "
            add({**body, "task_id": t, "idempotency_key": key, "extra": 1})
            add({**body, "task_id": t, "idempotency_key": key + "b"})
        elif kind == 6:
            lines.append(b'{"task_id": 1, "idempotency_key": "x"')  # cut short
            add({**result_body(), "task_id": UNKNOWN_TASK, "idempotency_key": key})
            add({**result_body(), "task_id": foreign, "idempotency_key": key + "f"})
        else:
            add({**result_body(codes=["8"], conclusion=None, samples=0, notes="拒绝检查"),
                 "samples": [], "task_id": t, "idempotency_key": key})  # fmt: skip
    return lines


def _norm_report(rows: list[dict[str, Any]], tasks: list[int], p: str) -> list[tuple[Any, ...]]:
    pos = {t: i for i, t in enumerate(tasks)}
    out = []
    for r in rows:
        key = r["idempotency_key"]
        detail = r["detail"] or ""
        if key:
            detail = detail.replace(key, "<key>")
        if r["task_id"] in pos:
            detail = detail.replace(str(r["task_id"]), "<task>")
        out.append(
            (
                r["status"],
                pos.get(r["task_id"], r["task_id"]),
                key.removeprefix(p) if key else key,
                r["error"],
                detail,
                json.dumps(r["errors"], ensure_ascii=False, sort_keys=True),
                r["result_id"] is not None,
            )
        )
    return out


async def _stored(session: AsyncSession, tasks: list[int]) -> list[tuple[Any, ...]]:
    pos = {t: i for i, t in enumerate(tasks)}
    rows = await session.execute(
        text("""
            SELECT t.id, t.status, r.version, r.live, r.conclusion, r.category_codes, r.notes,
                   r.source, r.final_at IS NOT NULL,
                   (SELECT json_agg(json_build_array(s.sample_no, s.product_name, s.brand,
                            s.batch_no, s.production_date, s.quantity, s.category_code,
                            (SELECT json_agg(json_build_array(i.item_no, i.name, i.requirement,
                                     i.measured_value, i.unit, i.verdict) ORDER BY i.item_no)
                             FROM test_items i WHERE i.sample_id = s.id)) ORDER BY s.sample_no)
                    FROM samples s WHERE s.result_id = r.id),
                   (SELECT count(*) FROM audit_log a
                    WHERE a.entity_type = 'result' AND a.entity_id = r.id::text),
                   (SELECT array_agg(e.kind ORDER BY e.kind) FROM domain_events e
                    WHERE e.result_id = r.id)
            FROM tasks t LEFT JOIN results r ON r.task_id = t.id
            WHERE t.id = ANY(:ids)
        """),
        {"ids": tasks},
    )
    return sorted((pos[r[0]], *(str(x) for x in r[1:])) for r in rows)


async def test_large_mixed_batch_equals_row_by_row(
    client: httpx.AsyncClient, world: World, as_inspector, session: AsyncSession
) -> None:
    n = 48
    whole = [await world.task() for _ in range(n)]
    single = [await world.task() for _ in range(n)]
    foreign = await world.task(team=("TI-2", "TI-3"))
    h = await as_inspector("TI-1")

    lines = _mixed(whole, foreign, "W")
    r = await client.post("/api/v1/results:batch", content=b"\n".join(lines), headers={**h, **ND})
    assert r.status_code == 200, r.text
    rep = r.json()
    assert [x["row"] for x in rep["rows"]] == list(range(1, len(lines) + 1))

    one_by_one: list[dict[str, Any]] = []
    for line in _mixed(single, foreign, "S"):
        got = await client.post("/api/v1/results:batch", content=line, headers={**h, **ND})
        assert got.status_code == 200, got.text
        one_by_one += got.json()["rows"]

    assert _norm_report(rep["rows"], whole, "W") == _norm_report(one_by_one, single, "S")
    statuses = {x["status"] for x in rep["rows"]}
    errors = {x["error"] for x in rep["rows"]}
    assert statuses == {"created", "replayed", "error"}
    assert {"InvalidInput", "IdempotencyKeyReused", "IllegalTransition", "TaskNotFound",
            "NotOnTeam"} <= errors  # fmt: skip
    assert rep["created"] == sum(1 for x in rep["rows"] if x["status"] == "created") > n // 2
    stored_whole = await _stored(session, whole)
    assert stored_whole == await _stored(session, single)
    # the padded notes and product name are stored trimmed, as the single-result API does
    assert any("'电水壶'" in str(s) or '"电水壶"' in str(s) for s in stored_whole)
    # the same batch again: every created row replayed with its result, nothing new stored
    again = (
        await client.post("/api/v1/results:batch", content=b"\n".join(lines), headers={**h, **ND})
    ).json()
    assert again["created"] == 0
    created = {
        x["idempotency_key"]: x["result_id"] for x in rep["rows"] if x["status"] == "created"
    }
    replayed = {
        x["idempotency_key"]: x["result_id"] for x in again["rows"] if x["status"] == "replayed"
    }
    assert created.items() <= replayed.items()
    assert await _stored(session, whole) == stored_whole


async def test_batch_leaves_garbage_collection_on(client: httpx.AsyncClient, login) -> None:
    lab = await login("supervisor")
    assert gc.isenabled()
    ok = await client.post("/api/v1/results:batch", content=b"not json\n", headers={**lab, **ND})
    assert ok.status_code == 200 and gc.isenabled()
    bad = await client.post("/api/v1/results:batch", content=b"\n", headers={**lab, **ND})
    assert bad.status_code == 422 and gc.isenabled()
