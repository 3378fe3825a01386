"""Notification → (objection → retest) → final; the job; events; follow-up of failures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.jobs import run_all
from qsampling.models.draws import Plan
from qsampling.models.inspections import DomainEvent, FinalResult, RectificationOrder

from .conftest import CATEGORY, REGION, World, result_body


def _d(days_ago: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).date().isoformat()


async def _submit(client: httpx.AsyncClient, task: int, headers: dict[str, str], **kw: Any) -> int:
    r = await client.post(f"/api/v1/tasks/{task}/result", json=result_body(**kw), headers=headers)
    assert r.status_code == 201, r.text
    return int(r.json()["result_id"])


async def _events(session: AsyncSession, task_id: int) -> list[DomainEvent]:
    return list(
        (
            await session.scalars(
                select(DomainEvent).where(DomainEvent.task_id == task_id).order_by(DomainEvent.id)
            )
        ).all()
    )


async def test_window_closes_without_objection_final_on_read_and_by_job(
    client: httpx.AsyncClient, world: World, as_inspector, login, session: AsyncSession
) -> None:
    h = await as_inspector("TI-1")
    sup = await login("supervisor")
    t_read, t_job, t_open = await world.task(), await world.task(), await world.task()
    rids = {}
    for t in (t_read, t_job, t_open):
        rids[t] = await _submit(client, t, h, days_ago=30)
    # notified 3 days ago (t_read, t_job) and today (t_open): the windows are open
    for t, days in ((t_read, 3), (t_job, 3), (t_open, 0)):
        r = await client.post(
            f"/api/v1/results/{rids[t]}/notification",
            json={"notified_on": _d(days), "method": "direct"},
            headers=sup,
        )
        assert r.status_code == 200, r.text
        assert r.json()["task_status"] == "notified"
        assert (
            r.json()["notification"]["objection_deadline"]
            == (date.fromisoformat(_d(days)) + timedelta(days=15)).isoformat()
        )

    # checked on read: once the window has closed the GET shows (and stores) final
    await session.execute(
        text("UPDATE result_notifications SET objection_deadline = :d WHERE result_id = :r"),
        {"d": date.fromisoformat(_d(1)), "r": rids[t_read]},
    )
    await session.commit()
    got = (await client.get(f"/api/v1/tasks/{t_read}", headers=h)).json()
    assert got["status"] == "final"
    assert got["result"]["final_conclusion"] == "pass" and got["result"]["final_at"]

    # 13 days on, the job finalises t_job (window closed after 15 days), not t_open
    later = datetime.now(UTC) + timedelta(days=13)
    report = await run_all(session, now=later)
    assert report["results_finalised"] == 1
    assert (await client.get(f"/api/v1/tasks/{t_job}", headers=h)).json()["status"] == "final"
    assert (await client.get(f"/api/v1/tasks/{t_open}", headers=h)).json()["status"] == "notified"
    # running again changes nothing
    before = await session.scalar(select(func.count()).select_from(DomainEvent))
    report = await run_all(session, now=later)
    assert report["results_finalised"] == 0
    assert await session.scalar(select(func.count()).select_from(DomainEvent)) == before

    # one event per final result, with what stats/credit/disclosure need
    ev = await _events(session, t_job)
    assert [e.kind for e in ev] == ["result.final"]
    p = ev[0].payload
    assert p["conclusion"] == "pass" and p["outcome"] == "pass"
    assert p["region_code"] == REGION and p["category_codes"] == ["1"]
    assert p["inspector_names"] == ["张检一", "李检二"]
    assert p["samples"][0]["passed"] is True and p["samples"][0]["category_code"] == CATEGORY
    assert p["publish_due_date"] > p["inspected_on"]
    rows = (await session.scalars(select(FinalResult).where(FinalResult.task_id == t_job))).all()
    assert [(r.passed, r.category_code, r.region_code, r.stratum) for r in rows] == [
        (True, CATEGORY, REGION, "B")
    ]
    assert rows[0].inclusion_probability == 0.05 and rows[0].stratum_population == 100


async def test_objection_and_retest_make_the_retest_final(
    client: httpx.AsyncClient, world: World, as_inspector, login, session: AsyncSession
) -> None:
    h = await as_inspector("TI-1")
    sup = await login("supervisor")
    task = await world.task()
    rid = await _submit(client, task, h, days_ago=20, fail=True, samples=2, items=2)
    res = (await client.get(f"/api/v1/results/{rid}", headers=sup)).json()
    failed = [i["id"] for s in res["samples"] for i in s["items"] if i["verdict"] == "fail"]
    passed = [i["id"] for s in res["samples"] for i in s["items"] if i["verdict"] == "pass"]
    assert len(failed) == 1

    url = f"/api/v1/results/{rid}"
    # objection before notification: illegal
    r = await client.post(
        f"{url}/objection", json={"received_on": _d(1), "disputed_item_ids": failed}, headers=sup
    )
    assert r.status_code == 409 and r.json()["current_state"] == "submitted"
    assert (
        await client.post(f"{url}/notification", json={"notified_on": _d(10)}, headers=sup)
    ).status_code == 200
    # only failed items of this result can be disputed
    r = await client.post(
        f"{url}/objection",
        json={"received_on": _d(2), "disputed_item_ids": [passed[0]]},
        headers=sup,
    )
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == [
        "body",
        "disputed_item_ids",
        "0",
    ]
    r = await client.post(
        f"{url}/objection",
        json={"received_on": _d(2), "disputed_item_ids": [failed[0], 10**12]},
        headers=sup,
    )
    assert r.status_code == 422
    r = await client.post(
        f"{url}/objection",
        json={"received_on": _d(2), "disputed_item_ids": failed, "reason": "送检样品运输中受损"},
        headers=sup,
    )
    assert r.status_code == 200, r.text
    assert r.json()["task_status"] == "objected"
    # the retest covers exactly the disputed items
    r = await client.post(
        f"{url}/retest",
        json={
            "retested_at": datetime.now(UTC).isoformat(),
            "items": [{"test_item_id": passed[0], "verdict": "pass"}],
        },
        headers=sup,
    )
    assert r.status_code == 422
    locs = [e["loc"] for e in r.json()["errors"]]
    assert ["body", "items", "0", "test_item_id"] in locs and ["body", "items"] in locs
    r = await client.post(
        f"{url}/retest",
        json={
            "retested_at": datetime.now(UTC).isoformat(),
            "items": [
                {
                    "test_item_id": failed[0],
                    "measured_value": "0.08",
                    "unit": "mg/kg",
                    "verdict": "pass",
                }
            ],
        },
        headers=sup,
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["task_status"] == "final"
    assert out["conclusion"] == "fail" and out["final_conclusion"] == "pass"
    assert out["retest"]["conclusion"] == "pass"
    item = next(i for s in out["samples"] for i in s["items"] if i["id"] == failed[0])
    assert item["verdict"] == "fail" and item["retest_verdict"] == "pass"
    assert out["rectification"] is None  # passed on retest: nothing to rectify

    ev = await _events(session, task)
    assert [e.kind for e in ev] == ["result.final"]
    assert ev[0].payload["retested"] is True and ev[0].payload["objected"] is True
    assert ev[0].payload["conclusion"] == "pass"
    rows = (await session.scalars(select(FinalResult).where(FinalResult.task_id == task))).all()
    assert all(r.passed for r in rows) and len(rows) == 2
    # a retest is final: nothing more
    r = await client.post(
        f"{url}/retest",
        json={
            "retested_at": datetime.now(UTC).isoformat(),
            "items": [{"test_item_id": failed[0], "verdict": "fail"}],
        },
        headers=sup,
    )
    assert r.status_code == 409 and r.json()["current_state"] == "final"


async def test_objection_after_fifteen_days_is_refused(
    client: httpx.AsyncClient, world: World, as_inspector, login
) -> None:
    h = await as_inspector("TI-1")
    sup = await login("supervisor")
    task = await world.task()
    rid = await _submit(client, task, h, days_ago=20, fail=True)
    await client.post(
        f"/api/v1/results/{rid}/notification", json={"notified_on": _d(14)}, headers=sup
    )
    res = (await client.get(f"/api/v1/results/{rid}", headers=sup)).json()
    failed = [i["id"] for s in res["samples"] for i in s["items"] if i["verdict"] == "fail"]
    # lodged on day 16 (the window still shows open today, day 14): refused with the deadline
    late = (date.fromisoformat(_d(14)) + timedelta(days=16)).isoformat()
    r = await client.post(
        f"/api/v1/results/{rid}/objection",
        json={"received_on": late, "disputed_item_ids": failed},
        headers=sup,
    )
    assert r.status_code == 422  # in the future
    notified = date.fromisoformat(_d(14))
    r = await client.post(
        f"/api/v1/results/{rid}/objection",
        json={
            "received_on": (notified - timedelta(days=1)).isoformat(),
            "disputed_item_ids": failed,
        },
        headers=sup,
    )
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "received_on"]


async def test_objection_window_closed(
    client: httpx.AsyncClient, world: World, as_inspector, login
) -> None:
    h = await as_inspector("TI-1")
    sup = await login("supervisor")
    task = await world.task()
    rid = await _submit(client, task, h, days_ago=40, fail=True)
    await client.post(
        f"/api/v1/results/{rid}/notification", json={"notified_on": _d(30)}, headers=sup
    )
    res = (await client.get(f"/api/v1/results/{rid}", headers=sup)).json()
    # read after the window: final already
    assert res["task_status"] == "final"
    failed = [i["id"] for s in res["samples"] for i in s["items"] if i["verdict"] == "fail"]
    r = await client.post(
        f"/api/v1/results/{rid}/objection",
        json={"received_on": _d(1), "disputed_item_ids": failed},
        headers=sup,
    )
    assert r.status_code == 409 and r.json()["current_state"] == "final"


async def test_objection_lodged_late_is_window_closed(
    client: httpx.AsyncClient, world: World, as_inspector, login, session: AsyncSession
) -> None:
    """Recorded before the job ran, but lodged after the 15th day: ObjectionWindowClosed."""
    h = await as_inspector("TI-1")
    sup = await login("supervisor")
    task = await world.task()
    rid = await _submit(client, task, h, days_ago=40, fail=True)
    r = await client.post(
        f"/api/v1/results/{rid}/notification", json={"notified_on": _d(10)}, headers=sup
    )
    failed = [i["id"] for s in r.json()["samples"] for i in s["items"] if i["verdict"] == "fail"]
    # the window closed 5 days ago but no job has run yet: the objection's date decides
    await session.execute(
        text(
            "UPDATE result_notifications SET notified_on = :n, objection_deadline = :d "
            "WHERE result_id = :r"
        ),
        {"n": date.fromisoformat(_d(20)), "d": date.fromisoformat(_d(5)), "r": rid},
    )
    await session.commit()
    r = await client.post(
        f"/api/v1/results/{rid}/objection",
        json={"received_on": _d(4), "disputed_item_ids": failed},
        headers=sup,
    )
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "ObjectionWindowClosed"
    assert r.json()["objection_deadline"] == _d(5)
    # lodged on the last day but recorded late: accepted
    r = await client.post(
        f"/api/v1/results/{rid}/objection",
        json={"received_on": _d(5), "disputed_item_ids": failed},
        headers=sup,
    )
    assert r.status_code == 200, r.text
    assert r.json()["task_status"] == "objected"


async def test_final_fail_orders_rectification_and_a_follow_up_plan(
    client: httpx.AsyncClient, world: World, as_inspector, login, session: AsyncSession
) -> None:
    h = await as_inspector("TI-1")
    sup = await login("supervisor")
    task = await world.task()
    rid = await _submit(client, task, h, days_ago=30, fail=True)
    await client.post(
        f"/api/v1/results/{rid}/notification", json={"notified_on": _d(20)}, headers=sup
    )
    out = (await client.get(f"/api/v1/results/{rid}", headers=sup)).json()
    assert out["task_status"] == "final" and out["final_conclusion"] == "fail"
    order = out["rectification"]
    today = datetime.now(UTC).date()
    assert order["status"] == "open"
    assert date.fromisoformat(order["due_date"]) - date.fromisoformat(
        order["issued_on"]
    ) == timedelta(days=60)
    assert date.fromisoformat(order["reinspection_due_date"]) - date.fromisoformat(
        order["issued_on"]
    ) == timedelta(days=75)
    assert abs((date.fromisoformat(order["issued_on"]) - today).days) <= 1
    kinds = [e.kind for e in await _events(session, task)]
    assert kinds == ["result.final", "rectification.ordered"]
    ev = (await _events(session, task))[0].payload
    assert ev["outcome"] == "fail" and ev["samples"][0]["failed_items"][0]["name"] == "项目2"
    rows = (await session.scalars(select(FinalResult).where(FinalResult.task_id == task))).all()
    assert [r.passed for r in rows] == [False]
    # the follow-up plan comes from the draws module: targets fixed, only inspectors drawn
    plan_id = order["follow_up_plan_id"]
    assert plan_id is not None, "draws.service.create_follow_up_plan did not create a plan"
    plan = await session.scalar(select(Plan).where(Plan.id == plan_id))
    assert plan is not None and plan.plan_type == "follow_up"
    assert plan.fixed_targets == [(await _task_uscc(session, task))]
    assert plan.due_date == date.fromisoformat(order["reinspection_due_date"])


async def _task_uscc(session: AsyncSession, task_id: int) -> str:
    from qsampling.models.draws import Task

    uscc = await session.scalar(select(Task.uscc).where(Task.id == task_id))
    assert uscc is not None
    return uscc


async def test_failed_reinspection_raises_escalation(
    client: httpx.AsyncClient, follow_up_world: World, as_inspector, login, session: AsyncSession
) -> None:
    world = follow_up_world
    h = await as_inspector("TI-1")
    sup = await login("supervisor")
    task = await world.task()
    rid = await _submit(client, task, h, days_ago=50, fail=True)
    await client.post(
        f"/api/v1/results/{rid}/notification", json={"notified_on": _d(45)}, headers=sup
    )
    out = (await client.get(f"/api/v1/results/{rid}", headers=sup)).json()
    order_id = out["rectification"]["id"]
    # attach the order to our hand-made follow-up plan and re-inspect on it
    uscc = await _task_uscc(session, task)
    order = await session.scalar(
        select(RectificationOrder).where(RectificationOrder.id == order_id)
    )
    assert order is not None
    order.follow_up_plan_id = world.follow_up_plan_id
    await session.commit()
    re_task = await world.task(plan_id=world.follow_up_plan_id, uscc=uscc, drawn_days_ago=20)
    re_rid = await _submit(client, re_task, h, days_ago=19, fail=True)
    await client.post(
        f"/api/v1/results/{re_rid}/notification", json={"notified_on": _d(17)}, headers=sup
    )
    await run_all(session, now=datetime.now(UTC))
    kinds = [e.kind for e in await _events(session, re_task)]
    assert kinds == ["result.final", "reinspection.failed"]
    esc = (await _events(session, re_task))[1].payload
    assert esc["escalate"] is True and esc["original_result_id"] == rid
    assert esc["order_id"] == order_id
    await session.refresh(order)
    assert order.status == "reinspection_failed" and order.reinspection_result_id == re_rid
    # a failed re-inspection does not order yet another rectification (it escalates instead)
    assert (await client.get(f"/api/v1/results/{re_rid}", headers=sup)).json()[
        "rectification"
    ] is None
    rows = (await session.scalars(select(FinalResult).where(FinalResult.task_id == re_task))).all()
    assert [r.follow_up for r in rows] == [True]


async def test_refusal_event_for_credit(
    client: httpx.AsyncClient, world: World, as_inspector, login, session: AsyncSession
) -> None:
    h = await as_inspector("TI-2")
    sup = await login("supervisor")
    task = await world.task()
    body = {
        "inspected_at": (datetime.now(UTC) - timedelta(days=30)).isoformat(),
        "category_codes": ["8"],
        "notes": "拒绝开门",
    }
    rid = (await client.post(f"/api/v1/tasks/{task}/result", json=body, headers=h)).json()[
        "result_id"
    ]
    await client.post(
        f"/api/v1/results/{rid}/notification", json={"notified_on": _d(25)}, headers=sup
    )
    await run_all(session, now=datetime.now(UTC))
    ev = await _events(session, task)
    assert [e.kind for e in ev] == ["result.final", "result.refused"]
    assert ev[0].payload["outcome"] == "refused" and ev[0].payload["conclusion"] is None
    assert ev[0].payload["samples"] == []
    # no tested batch, nothing for the pass-rate table
    assert (
        await session.scalar(
            select(func.count()).select_from(FinalResult).where(FinalResult.task_id == task)
        )
        == 0
    )


async def test_notification_checks_dates(
    client: httpx.AsyncClient, world: World, as_inspector, login
) -> None:
    h = await as_inspector("TI-1")
    sup = await login("supervisor")
    task = await world.task()
    rid = await _submit(client, task, h, days_ago=5)
    url = f"/api/v1/results/{rid}/notification"
    future = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    r = await client.post(url, json={"notified_on": future}, headers=sup)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "notified_on"]
    r = await client.post(url, json={"notified_on": _d(10)}, headers=sup)
    assert r.status_code == 422
    r = await client.post(url, json={"notified_on": _d(1)}, headers=h)
    assert r.status_code == 403
    assert (await client.post(url, json={"notified_on": _d(1)}, headers=sup)).status_code == 200
    r = await client.post(url, json={"notified_on": _d(1)}, headers=sup)
    assert r.status_code == 409 and r.json()["current_state"] == "notified"
