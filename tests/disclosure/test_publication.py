"""Publication of final results: due dates in working days, idempotent jobs, overdue report."""

from __future__ import annotations

from datetime import UTC, date, datetime

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.context import SYSTEM
from qsampling.core.workdays import FALLBACK_NOTE
from qsampling.disclosure import service
from tests.disclosure.conftest import Province


async def test_final_results_are_published_with_due_dates(
    session: AsyncSession, published: Province
) -> None:
    rows = (
        await session.execute(
            text(
                "SELECT result_id, inspected_on, due_date, due_exact, published_at, conclusion "
                "FROM result_publications ORDER BY result_id"
            )
        )
    ).all()
    by_id = {r.result_id: r for r in rows}
    assert set(by_id) == set(published.result_ids.values())
    ok = by_id[published.result_ids["pass"]]
    # inspected Friday 2024-09-27 (China time); 1–7 October is the National Day holiday and
    # Sunday 29 September and Saturday 12 October are make-up working days (调休)
    assert ok.inspected_on == date(2024, 9, 27)
    assert ok.due_date == date(2024, 10, 30)
    assert ok.due_exact is True
    assert ok.published_at is not None
    assert by_id[published.result_ids["refused"]].conclusion == "not_tested"
    assert by_id[published.result_ids["fail"]].conclusion == "fail"
    # the pending (not final) result is not public
    assert published.pending_result_id not in by_id


async def test_publishing_twice_changes_nothing(session: AsyncSession, published: Province) -> None:
    before = (await session.execute(text("SELECT id, updated_at FROM result_publications"))).all()
    again = await service.register_final_results(
        session, now=datetime(2024, 11, 21, tzinfo=UTC), actor=SYSTEM
    )
    assert again == 0
    after = (await session.execute(text("SELECT id, updated_at FROM result_publications"))).all()
    assert sorted(before) == sorted(after)
    audit = await session.scalar(
        text("SELECT count(*) FROM audit_log WHERE action = 'disclosure.result_published'")
    )
    assert audit == 3


def test_due_date_outside_the_known_years_falls_back_to_weekdays() -> None:
    due, exact, note = service.due_date_for(date(2199, 1, 2))
    assert exact is False
    assert note == FALLBACK_NOTE
    assert due == date(2199, 1, 30)  # 20 weekdays later


async def test_retest_verdict_replaces_the_disputed_item(
    client: httpx.AsyncClient, published: Province
) -> None:
    r = await client.get("/api/v1/public/results", params={"uscc": published.sole})
    [res] = r.json()["items"]
    [sample] = res["samples"]
    # the label item was disputed and passed the retest; the brake item still failed
    assert [f["item"] for f in sample["failed_items"]] == ["刹车性能"]
    assert res["conclusion_zh"] == "不合格"


async def test_overdue_report_for_supervisors(
    client: httpx.AsyncClient, login, published: Province
) -> None:
    sup = await login("supervisor")
    r = await client.get("/api/v1/disclosure/overdue", params={"on": "2024-11-25"}, headers=sup)
    assert r.status_code == 200, r.text
    body = r.json()
    ids = {i["result_id"]: i for i in body["items"]}
    # inspected 2024-08-01, never notified: due 2024-08-29, not final, overdue
    item = ids[published.pending_result_id]
    assert item["overdue"] is True
    assert item["final"] is False
    assert item["due_date"] == "2024-08-29"
    assert body["overdue_count"] >= 1
    # published ones are not in the report
    assert not set(ids) & set(published.result_ids.values())
    insp = await login("inspector")
    r = await client.get("/api/v1/disclosure/overdue", headers=insp)
    assert r.status_code == 403


async def test_publish_step_for_supervisors(
    client: httpx.AsyncClient, login, province: Province
) -> None:
    r = await client.get("/api/v1/public/results")
    assert r.json()["items"] == []
    sup = await login("supervisor")
    r = await client.post("/api/v1/disclosure/publish", headers=sup)
    assert r.status_code == 200
    assert r.json()["published"] == 3
    r = await client.get("/api/v1/public/results")
    assert len(r.json()["items"]) == 3
    r = await client.post("/api/v1/disclosure/publish", headers=sup)
    assert r.json() == {"published": 0, "published_due": 0}


async def test_held_result_is_published_by_its_due_date(
    session: AsyncSession, province: Province
) -> None:
    await service.snapshot_results(
        session,
        result_ids=[province.result_ids["pass"]],
        now=datetime(2024, 10, 1, tzinfo=UTC),
        publish=False,
    )
    n = await service.publish_due(session, now=datetime(2024, 10, 29, 4, tzinfo=UTC), actor=SYSTEM)
    assert n == 0  # due 2024-10-30
    n = await service.publish_due(session, now=datetime(2024, 10, 30, 1, tzinfo=UTC), actor=SYSTEM)
    assert n == 1


def test_overdue_cutoff_is_the_last_day_already_due() -> None:
    today = date(2024, 10, 29)
    cutoff = service.overdue_cutoff(today)
    assert service.due_date_for(cutoff)[0] < today
    nxt = date.fromordinal(cutoff.toordinal() + 1)
    assert service.due_date_for(nxt)[0] >= today


async def test_a_result_finalised_by_the_inspections_job_gets_published(
    session: AsyncSession, client: httpx.AsyncClient, published: Province
) -> None:
    """End to end with the real producer: the inspections module finalises a notified
    result whose objection window closed; the disclosure job then publishes it."""
    from qsampling.inspections.finalise import finalise_all_due
    from qsampling.models.inspections import Notification

    rid = published.pending_result_id
    task_id = await session.scalar(text("SELECT task_id FROM results WHERE id = :r"), {"r": rid})
    await session.execute(
        text("UPDATE tasks SET status = 'notified' WHERE id = :t"), {"t": task_id}
    )
    session.add(
        Notification(
            result_id=rid,
            notified_on=date(2024, 8, 5),
            objection_deadline=date(2024, 8, 20),
            recorded_by="supervisor-test",
        )
    )
    await session.flush()
    now = datetime(2024, 8, 21, 2, tzinfo=UTC)
    assert await finalise_all_due(session, now=now) == 1
    assert await service.register_final_results(session, now=now, actor=SYSTEM) == 1
    await session.commit()
    r = await client.get("/api/v1/public/results", params={"uscc": published.listed})
    got = {i["inspected_on"]: i for i in r.json()["items"]}
    assert got["2024-08-01"]["conclusion_zh"] == "未发现不合格"
