"""The lab batch path: NDJSON and CSV, per-row errors, one transaction, idempotent rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.models.inspections import Result, SampleItem

from .conftest import CATEGORY, World, result_body

ND = {"Content-Type": "application/x-ndjson"}


def ndjson(rows: list[dict[str, Any]]) -> bytes:
    return ("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n").encode()


async def _results(session: AsyncSession, task_ids: list[int]) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(Result).where(Result.task_id.in_(task_ids))
        )
        or 0
    )


async def test_ndjson_rows_reported_and_valid_ones_stored(
    client: httpx.AsyncClient, world: World, login, as_inspector, session: AsyncSession
) -> None:
    tasks = [await world.task() for _ in range(4)]
    other = await world.task(team=("TI-2", "TI-3"))
    rows = [
        {**result_body(), "task_id": tasks[0], "idempotency_key": "lab-1"},
        {**result_body(fail=True, samples=2), "task_id": tasks[1], "idempotency_key": "lab-2"},
        {
            **result_body(fail=True, conclusion="pass"),
            "task_id": tasks[2],
            "idempotency_key": "lab-3",
        },
        {**result_body(), "task_id": 999_999_999, "idempotency_key": "lab-4"},
        {**result_body(), "task_id": other, "idempotency_key": "lab-5"},
        {"task_id": tasks[3], "idempotency_key": "lab-6", "inspected_at": "yesterday"},
    ]
    content = ndjson(rows[:5]) + b"\n" + ndjson(rows[5:])  # a blank line is skipped
    h = await as_inspector("TI-1")
    r = await client.post("/api/v1/results:batch", content=content, headers={**h, **ND})
    assert r.status_code == 200, r.text
    rep = r.json()
    assert (rep["received"], rep["created"], rep["rejected"]) == (6, 2, 4)
    by_key = {x["idempotency_key"]: x for x in rep["rows"] if x["idempotency_key"]}
    assert by_key["lab-1"]["status"] == "created" and by_key["lab-1"]["row"] == 1
    assert by_key["lab-3"]["error"] == "InvalidInput"
    assert by_key["lab-3"]["errors"][0]["loc"] == ["conclusion"]
    assert by_key["lab-4"]["error"] == "TaskNotFound"
    assert by_key["lab-5"]["error"] == "NotOnTeam"  # an inspector: own tasks only
    last = rep["rows"][-1]
    assert last["row"] == 7 and last["error"] == "InvalidInput"
    assert ["inspected_at"] in [e["loc"] for e in last["errors"]]
    assert await _results(session, tasks) == 2
    n_items = await session.scalar(
        select(func.count())
        .select_from(SampleItem)
        .where(SampleItem.result_id == by_key["lab-2"]["result_id"])
    )
    assert n_items == 4
    got = (await client.get(f"/api/v1/tasks/{tasks[1]}", headers=h)).json()
    assert got["status"] == "submitted" and got["result"]["source"] == "batch"

    # the same batch again: nothing new, the stored rows replayed
    r = await client.post("/api/v1/results:batch", content=content, headers={**h, **ND})
    rep2 = r.json()
    assert rep2["created"] == 0 and rep2["replayed"] == 2
    assert {x["result_id"] for x in rep2["rows"] if x["status"] == "replayed"} == {
        by_key["lab-1"]["result_id"],
        by_key["lab-2"]["result_id"],
    }
    assert await _results(session, tasks) == 2

    # a key reused for another result is an error on that row only
    changed = [
        {**result_body(notes="changed"), "task_id": tasks[0], "idempotency_key": "lab-1"},
        {**result_body(), "task_id": tasks[3], "idempotency_key": "lab-7"},
    ]
    rep3 = (
        await client.post("/api/v1/results:batch", content=ndjson(changed), headers={**h, **ND})
    ).json()
    assert [x["status"] for x in rep3["rows"]] == ["error", "created"]
    assert rep3["rows"][0]["error"] == "IdempotencyKeyReused"


async def test_single_api_then_batch_retry_is_recognised(
    client: httpx.AsyncClient, world: World, as_inspector, session: AsyncSession
) -> None:
    task = await world.task()
    h = await as_inspector("TI-1")
    body = result_body()
    r = await client.post(
        f"/api/v1/tasks/{task}/result", json=body, headers={**h, "Idempotency-Key": "k-cross"}
    )
    assert r.status_code == 201
    rep = (
        await client.post(
            "/api/v1/results:batch",
            content=ndjson([{**body, "task_id": task, "idempotency_key": "k-cross"}]),
            headers={**h, **ND},
        )
    ).json()
    assert rep["rows"][0]["status"] == "replayed"
    assert rep["rows"][0]["result_id"] == r.json()["result_id"]
    assert await _results(session, [task]) == 1


async def test_duplicates_within_one_batch(
    client: httpx.AsyncClient, world: World, login, session: AsyncSession
) -> None:
    t1, t2 = await world.task(), await world.task()
    row = {**result_body(), "task_id": t1, "idempotency_key": "dup"}
    rows = [
        row,
        row,
        {**result_body(), "task_id": t1, "idempotency_key": "other"},
        {
            **result_body(codes=["9"], conclusion=None, samples=0),
            "task_id": t2,
            "idempotency_key": "closed",
            "samples": [],
        },
    ]
    lab = await login("supervisor")  # the bureau's lab service account: any task
    rep = (
        await client.post("/api/v1/results:batch", content=ndjson(rows), headers={**lab, **ND})
    ).json()
    assert [x["status"] for x in rep["rows"]] == ["created", "replayed", "error", "created"]
    assert rep["rows"][1]["result_id"] == rep["rows"][0]["result_id"]
    assert rep["rows"][2]["error"] == "IllegalTransition"
    assert await _results(session, [t1]) == 1
    closed = (await client.get(f"/api/v1/tasks/{t2}", headers=lab)).json()
    assert closed["status"] == "closed" and closed["result"]["final_at"] is not None


CSV_HEADER = (
    "task_id,idempotency_key,inspected_at,conclusion,category_codes,notes,evidence,sample_no,"
    "product_name,brand,model_spec,batch_no,production_date,quantity,quantity_unit,standard,"
    "category_code,item_name,requirement,measured_value,unit,verdict"
)


async def test_csv_lines_grouped_by_key(
    client: httpx.AsyncClient, world: World, login, session: AsyncSession
) -> None:
    t1, t2, t3 = await world.task(), await world.task(), await world.task()
    at = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    pd = (datetime.now(UTC) - timedelta(days=40)).date().isoformat()
    lines = [
        CSV_HEADER,
        f"{t1},c-1,{at},fail,A;E,,,1,电热水壶,美的,MK-1,B01,{pd},2,台,GB 4706.19,{CATEGORY},"
        "泄漏电流,≤0.75,0.5,mA,pass",
        f"{t1},c-1,{at},fail,A;E,,,1,电热水壶,美的,MK-1,B01,{pd},2,台,GB 4706.19,{CATEGORY},"
        "温升,≤75,88,K,fail",
        f"{t1},c-1,{at},fail,A;E,,,2,电水壶,美的,MK-2,B02,{pd},1,台,,,标志,,,,pass",
        f"{t2},c-2,{at},,8,拒绝检查,,,,,,,,,,,,,,,,",
        f"{t3},c-3,{at},pass,1,,,1,插座,公牛,GN-1,B9,{pd},0,个,,,,,,,pass",
    ]
    content = ("\ufeff" + "\r\n".join(lines) + "\r\n").encode()
    lab = await login("supervisor")
    r = await client.post(
        "/api/v1/results:batch",
        content=content,
        headers={**lab, "Content-Type": "text/csv; charset=utf-8"},
    )
    assert r.status_code == 200, r.text
    rep = r.json()
    assert [(x["row"], x["status"]) for x in rep["rows"]] == [
        (2, "created"),
        (5, "created"),
        (6, "error"),
    ]
    assert any(e["loc"][-1] == "quantity" for e in rep["rows"][2]["errors"])
    res = (await client.get(f"/api/v1/tasks/{t1}", headers=lab)).json()["result"]
    assert res["category_codes"] == ["A", "E"] and res["conclusion"] == "fail"
    assert [len(s["items"]) for s in res["samples"]] == [2, 1]
    assert res["samples"][0]["items"][1]["measured_value"] == "88"
    assert res["samples"][1]["category_code"] is None
    refusal = (await client.get(f"/api/v1/tasks/{t2}", headers=lab)).json()["result"]
    assert refusal["samples"] == [] and refusal["notes"] == "拒绝检查"


async def test_malformed_batches(client: httpx.AsyncClient, login) -> None:
    lab = await login("supervisor")
    r = await client.post(
        "/api/v1/results:batch", content=b"{}", headers={**lab, "Content-Type": "application/json"}
    )
    assert r.status_code == 415
    r = await client.post("/api/v1/results:batch", content=b"\n\n", headers={**lab, **ND})
    assert r.status_code == 422 and r.json()["error"] == "EmptyBatch"
    r = await client.post(
        "/api/v1/results:batch", content=b"a,b\n1,2\n", headers={**lab, "Content-Type": "text/csv"}
    )
    assert r.status_code == 422 and r.json()["error"] == "InvalidCsvHeader"
    r = await client.post(
        "/api/v1/results:batch",
        content=b"\xff\xfe\x00",
        headers={**lab, "Content-Type": "text/csv"},
    )
    assert r.status_code == 422
    rep = (
        await client.post(
            "/api/v1/results:batch", content=b"not json\n[1,2]\n", headers={**lab, **ND}
        )
    ).json()
    assert rep["rejected"] == 2
    r = await client.post("/api/v1/results:batch", content=b"{}", headers=await login("analyst"))
    assert r.status_code == 403
