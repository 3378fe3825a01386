"""Who sees which tasks, and the filters supervisors use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from .conftest import World, result_body


async def test_inspector_sees_only_own_tasks(
    client: httpx.AsyncClient, world: World, as_inspector
) -> None:
    mine = [await world.task(team=("TI-1", "TI-2")) for _ in range(3)]
    theirs = await world.task(team=("TI-2", "TI-3"))
    r = await client.get("/api/v1/tasks", headers=await as_inspector("TI-1"))
    assert r.status_code == 200
    ids = [t["id"] for t in r.json()["items"]]
    assert set(mine) <= set(ids) and theirs not in ids
    assert all("TI-1" in [m["inspector_id"] for m in t["team"]] for t in r.json()["items"])
    # someone else's task is invisible, not merely forbidden
    r = await client.get(f"/api/v1/tasks/{theirs}", headers=await as_inspector("TI-1"))
    assert r.status_code == 404
    r = await client.get(f"/api/v1/tasks/{theirs}", headers=await as_inspector("TI-3"))
    assert r.status_code == 200
    assert [m["name"] for m in r.json()["team"]] == ["李检二", "王检三"]


async def test_supervisor_and_analyst_see_all_with_filters(
    client: httpx.AsyncClient, world: World, as_inspector, login
) -> None:
    a = await world.task(team=("TI-1", "TI-2"))
    b = await world.task(team=("TI-2", "TI-3"))
    await client.post(
        f"/api/v1/tasks/{a}/result", json=result_body(), headers=await as_inspector("TI-1")
    )
    sup = await login("supervisor")
    r = await client.get(f"/api/v1/tasks?plan_id={world.plan_id}&limit=500", headers=sup)
    assert {a, b} <= {t["id"] for t in r.json()["items"]}
    assert r.json()["total"] >= 2
    r = await client.get(f"/api/v1/tasks?plan_id={world.plan_id}&status=submitted", headers=sup)
    assert [t["id"] for t in r.json()["items"]] == [a]
    assert r.json()["items"][0]["live_result_id"] is not None
    r = await client.get(f"/api/v1/tasks?plan_id={world.plan_id}&inspector_id=TI-3", headers=sup)
    assert [t["id"] for t in r.json()["items"]] == [b]
    uscc = r.json()["items"][0]["uscc"]
    r = await client.get(f"/api/v1/tasks?uscc={uscc}", headers=await login("analyst"))
    assert [t["id"] for t in r.json()["items"]] == [b]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    r = await client.get(
        f"/api/v1/tasks?plan_id={world.plan_id}&due_before={tomorrow}", headers=sup
    )
    assert r.json()["items"] == []  # these tasks have no due date
    r = await client.get("/api/v1/tasks?status=bogus", headers=sup)
    assert r.status_code == 422
    r = await client.get("/api/v1/tasks?limit=0", headers=sup)
    assert r.status_code == 422
    r = await client.get("/api/v1/tasks", headers=await login("partner"))
    assert r.status_code == 403


async def test_paging(client: httpx.AsyncClient, world: World, login) -> None:
    ids = [await world.task() for _ in range(5)]
    sup = await login("supervisor")
    page1 = (await client.get(f"/api/v1/tasks?plan_id={world.plan_id}&limit=2", headers=sup)).json()
    page2 = (
        await client.get(f"/api/v1/tasks?plan_id={world.plan_id}&limit=2&offset=2", headers=sup)
    ).json()
    assert page1["total"] == 5 and page1["limit"] == 2
    assert [t["id"] for t in page1["items"] + page2["items"]] == ids[:4]
