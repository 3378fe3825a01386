"""Submitting results: who may, what is stored, idempotency, validation, corrections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.models.inspections import DomainEvent, Result, Sample, SampleItem

from .conftest import World, result_body


async def _count_results(session: AsyncSession, task_id: int) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(Result).where(Result.task_id == task_id)
        )
        or 0
    )


async def test_team_member_submits_and_reads_back(
    client: httpx.AsyncClient, world: World, as_inspector, session: AsyncSession
) -> None:
    task = await world.task()
    h = await as_inspector("TI-1")
    r = await client.post(f"/api/v1/tasks/{task}/result", json=result_body(), headers=h)
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert receipt["task_status"] == "submitted"
    assert receipt["version"] == 1 and receipt["final"] is False

    got = (await client.get(f"/api/v1/tasks/{task}", headers=h)).json()
    assert got["status"] == "submitted"
    assert got["live_result_id"] == receipt["result_id"]
    res = got["result"]
    assert res["conclusion"] == "pass" and res["category_codes"] == ["1"]
    assert [s["product_name"] for s in res["samples"]] == ["儿童推车 1"]
    assert [i["verdict"] for i in res["samples"][0]["items"]] == ["pass", "pass"]
    assert res["submitted_by"].startswith("inspector-")
    # the other team member sees it too
    h2 = await as_inspector("TI-2")
    assert (
        await client.get(f"/api/v1/results/{receipt['result_id']}", headers=h2)
    ).status_code == 200


async def test_only_the_team_may_submit(
    client: httpx.AsyncClient, world: World, as_inspector, login
) -> None:
    task = await world.task()
    outsider = await as_inspector("TI-3")
    r = await client.post(f"/api/v1/tasks/{task}/result", json=result_body(), headers=outsider)
    assert r.status_code == 403 and r.json()["error"] == "NotOnTeam"
    unlinked = await login("inspector")  # an inspector account with no directory entry
    r = await client.post(f"/api/v1/tasks/{task}/result", json=result_body(), headers=unlinked)
    assert r.status_code == 403 and r.json()["error"] == "NotOnTeam"
    sup = await login("supervisor")
    r = await client.post(f"/api/v1/tasks/{task}/result", json=result_body(), headers=sup)
    assert r.status_code == 403 and r.json()["error"] == "Forbidden"
    r = await client.post(
        "/api/v1/tasks/999999999/result", json=result_body(), headers=await as_inspector("TI-1")
    )
    assert r.status_code == 404 and r.json()["error"] == "TaskNotFound"


async def test_second_submission_is_refused_naming_the_state(
    client: httpx.AsyncClient, world: World, as_inspector, session: AsyncSession
) -> None:
    task = await world.task()
    h = await as_inspector("TI-1")
    assert (
        await client.post(f"/api/v1/tasks/{task}/result", json=result_body(), headers=h)
    ).status_code == 201
    r = await client.post(f"/api/v1/tasks/{task}/result", json=result_body(), headers=h)
    assert r.status_code == 409
    body = r.json()
    assert body["error"] == "IllegalTransition" and body["current_state"] == "submitted"
    assert "submitted" in body["detail"]
    assert await _count_results(session, task) == 1


async def test_idempotency_key_replays_and_refuses_reuse(
    client: httpx.AsyncClient, world: World, as_inspector, session: AsyncSession
) -> None:
    task = await world.task()
    h = {**(await as_inspector("TI-1")), "Idempotency-Key": "phone-7f3a-0001"}
    body = result_body()
    first = await client.post(f"/api/v1/tasks/{task}/result", json=body, headers=h)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    again = await client.post(f"/api/v1/tasks/{task}/result", json=body, headers=h)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert await _count_results(session, task) == 1

    other = result_body(notes="a different body")
    r = await client.post(f"/api/v1/tasks/{task}/result", json=other, headers=h)
    assert r.status_code == 409 and r.json()["error"] == "IdempotencyKeyReused"
    # the same key on another task is another request too
    task2 = await world.task()
    r = await client.post(f"/api/v1/tasks/{task2}/result", json=body, headers=h)
    assert r.status_code == 409 and r.json()["error"] == "IdempotencyKeyReused"
    assert await _count_results(session, task2) == 0


async def test_keys_are_per_user(client: httpx.AsyncClient, world: World, as_inspector) -> None:
    t1, t2 = await world.task(), await world.task()
    k = {"Idempotency-Key": "same-key"}
    r1 = await client.post(
        f"/api/v1/tasks/{t1}/result",
        json=result_body(),
        headers={**(await as_inspector("TI-1")), **k},
    )
    r2 = await client.post(
        f"/api/v1/tasks/{t2}/result",
        json=result_body(),
        headers={**(await as_inspector("TI-2")), **k},
    )
    assert (r1.status_code, r2.status_code) == (201, 201)
    assert r1.json()["result_id"] != r2.json()["result_id"]


async def test_samples_and_items_are_stored(
    client: httpx.AsyncClient, world: World, as_inspector, session: AsyncSession
) -> None:
    task = await world.task()
    h = await as_inspector("TI-2")
    r = await client.post(
        f"/api/v1/tasks/{task}/result", json=result_body(fail=True, samples=2, items=3), headers=h
    )
    assert r.status_code == 201, r.text
    rid = r.json()["result_id"]
    samples = (await session.scalars(select(Sample).where(Sample.result_id == rid))).all()
    assert sorted(s.sample_no for s in samples) == [1, 2]
    items = (await session.scalars(select(SampleItem).where(SampleItem.result_id == rid))).all()
    assert len(items) == 6
    assert sum(1 for i in items if i.verdict == "fail") == 1


async def test_closure_code_closes_the_task_and_is_final_at_once(
    client: httpx.AsyncClient, world: World, as_inspector, session: AsyncSession
) -> None:
    task = await world.task()
    h = await as_inspector("TI-1")
    body = {
        "inspected_at": datetime.now(UTC).isoformat(),
        "category_codes": ["9"],
        "notes": "营业执照已注销",
    }
    r = await client.post(f"/api/v1/tasks/{task}/result", json=body, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["task_status"] == "closed" and r.json()["final"] is True
    got = (await client.get(f"/api/v1/tasks/{task}", headers=h)).json()
    assert got["status"] == "closed" and got["result"]["final_at"] is not None
    kinds = set(
        (await session.scalars(select(DomainEvent.kind).where(DomainEvent.task_id == task))).all()
    )
    assert kinds == {"result.final", "result.closed"}


async def test_refusal_needs_no_samples(
    client: httpx.AsyncClient, world: World, as_inspector
) -> None:
    task = await world.task()
    body = {"inspected_at": datetime.now(UTC).isoformat(), "category_codes": ["8"]}
    r = await client.post(
        f"/api/v1/tasks/{task}/result", json=body, headers=await as_inspector("TI-1")
    )
    assert r.status_code == 201, r.text
    assert r.json()["task_status"] == "submitted"


def _locs(r: httpx.Response) -> list[list[str]]:
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "InvalidInput"
    return [e["loc"] for e in r.json()["errors"]]


async def test_validation_names_the_field(
    client: httpx.AsyncClient, world: World, as_inspector, session: AsyncSession
) -> None:
    task = await world.task()
    h = await as_inspector("TI-1")
    url = f"/api/v1/tasks/{task}/result"

    # conclusion must match the items
    assert ["body", "conclusion"] in _locs(
        await client.post(url, json=result_body(fail=True, conclusion="pass"), headers=h)
    )
    body = result_body()
    body["conclusion"] = "fail"
    body["category_codes"] = ["A"]
    assert ["body", "conclusion"] in _locs(await client.post(url, json=body, headers=h))
    # 1 excludes problem codes; unknown codes
    assert ["body", "category_codes"] in _locs(
        await client.post(url, json=result_body(codes=["1", "B"]), headers=h)
    )
    assert ["body", "category_codes", "1"] in _locs(
        await client.post(url, json=result_body(codes=["1", "Z"]), headers=h)
    )
    # a failed sample is a problem found
    assert ["body", "category_codes"] in _locs(
        await client.post(url, json=result_body(fail=True, codes=["B"]), headers=h)
    )
    # no future inspection; production date not after the inspection
    future = result_body()
    future["inspected_at"] = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    assert ["body", "inspected_at"] in _locs(await client.post(url, json=future, headers=h))
    late_batch = result_body(days_ago=10)
    late_batch["samples"][0]["production_date"] = (
        (datetime.now(UTC) - timedelta(days=5)).date().isoformat()
    )
    assert ["body", "samples", "0", "production_date"] in _locs(
        await client.post(url, json=late_batch, headers=h)
    )
    # before the task was drawn (60 days ago in this world)
    assert ["body", "inspected_at"] in _locs(
        await client.post(url, json=result_body(days_ago=90), headers=h)
    )
    # positive quantities (FastAPI's own validation, same shape)
    zero = result_body()
    zero["samples"][0]["quantity"] = 0
    assert ["body", "samples", "0", "quantity"] in _locs(
        await client.post(url, json=zero, headers=h)
    )
    # unreachable: nothing can be sampled; no conclusion without samples
    assert ["body", "samples"] in _locs(
        await client.post(url, json=result_body(codes=["6"], conclusion=None), headers=h)
    )
    no_samples = {
        "inspected_at": datetime.now(UTC).isoformat(),
        "category_codes": ["1"],
        "conclusion": "pass",
    }
    assert ["body", "conclusion"] in _locs(await client.post(url, json=no_samples, headers=h))
    # unknown product category and evidence
    bad_refs = result_body(evidence=["ab" * 32])
    bad_refs["samples"][0]["category_code"] = "NOPE"
    locs = _locs(await client.post(url, json=bad_refs, headers=h))
    assert ["body", "samples", "0", "category_code"] in locs and ["body", "evidence", "0"] in locs
    # naive timestamps are refused (a phone must say which time zone)
    naive = result_body()
    naive["inspected_at"] = "2026-01-05T10:00:00"
    assert ["body", "inspected_at"] in _locs(await client.post(url, json=naive, headers=h))
    # nothing was stored by any of these
    assert await _count_results(session, task) == 0
    r = await client.get(f"/api/v1/tasks/{task}", headers=h)
    assert r.json()["status"] == "assigned"


async def test_correction_before_notification_keeps_the_old_version(
    client: httpx.AsyncClient, world: World, as_inspector, login, session: AsyncSession
) -> None:
    task = await world.task()
    h = await as_inspector("TI-1")
    first = (
        await client.post(f"/api/v1/tasks/{task}/result", json=result_body(), headers=h)
    ).json()
    corrected = result_body(fail=True, correction_reason="实验室报告更正：第2项不合格")
    r = await client.put(f"/api/v1/tasks/{task}/result", json=corrected, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 2
    got = (await client.get(f"/api/v1/tasks/{task}", headers=h)).json()
    assert got["live_result_id"] == r.json()["result_id"]
    assert got["result"]["conclusion"] == "fail"
    assert got["result"]["supersedes_id"] == first["result_id"]
    assert [(v["version"], v["live"]) for v in got["result"]["versions"]] == [(1, False), (2, True)]
    old = (await client.get(f"/api/v1/results/{first['result_id']}", headers=h)).json()
    assert old["live"] is False and old["conclusion"] == "pass"
    # a correction needs a reason
    r = await client.put(f"/api/v1/tasks/{task}/result", json=result_body(), headers=h)
    assert r.status_code == 422
    # after notification no more corrections
    sup = await login("supervisor")
    n = await client.post(
        f"/api/v1/results/{r2id(got)}/notification",
        json={"notified_on": datetime.now(UTC).date().isoformat()},
        headers=sup,
    )
    assert n.status_code == 200, n.text
    r = await client.put(
        f"/api/v1/tasks/{task}/result", json=result_body(correction_reason="again"), headers=h
    )
    assert r.status_code == 409 and r.json()["current_state"] == "notified"
    # acting on the superseded version is refused
    r = await client.post(
        f"/api/v1/results/{first['result_id']}/notification",
        json={"notified_on": datetime.now(UTC).date().isoformat()},
        headers=sup,
    )
    assert r.status_code == 409 and r.json()["error"] == "ResultSuperseded"
    live = await session.scalar(
        text("SELECT count(*) FROM results WHERE task_id = :t AND live"), {"t": task}
    )
    assert live == 1


def r2id(task: dict) -> int:
    return int(task["live_result_id"])


async def test_start_then_submit(client: httpx.AsyncClient, world: World, as_inspector) -> None:
    task = await world.task()
    h = await as_inspector("TI-2")
    r = await client.post(f"/api/v1/tasks/{task}/start", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "in_progress"
    r = await client.post(f"/api/v1/tasks/{task}/start", headers=h)
    assert r.status_code == 409 and r.json()["current_state"] == "in_progress"
    r = await client.post(f"/api/v1/tasks/{task}/start", headers=await as_inspector("TI-3"))
    assert r.status_code == 403
    r = await client.post(f"/api/v1/tasks/{task}/result", json=result_body(), headers=h)
    assert r.status_code == 201
