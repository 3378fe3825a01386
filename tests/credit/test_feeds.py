"""Joint-punishment feed (partner role, JSON and CSV, changed_since), incentive list, public
list entries for the disclosure module."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from qsampling.context import cli_actor
from qsampling.core.list_rules import JOINT_MEASURES, add_years
from qsampling.credit import feeds, lists, service
from tests.credit.conftest import D, make_enterprises

AUTH = "福州市鼓楼区市场监督管理局"
SUP = cli_actor()


async def _serious(session, uscc: str, on, *, confirm: bool = True):
    p = await lists.propose_manual(
        session,
        uscc=uscc,
        reason="不配合检查情节严重",
        basis="《办法》第十条",
        proposed_on=on,
        actor=SUP,
        today=on,
    )
    if not confirm:
        return p
    return await lists.decide_serious(
        session,
        entry_id=p.id,
        action="confirm",
        decided_on=on,
        actor=SUP,
        today=on,
        basis="《市场监督管理严重违法失信名单管理办法》第十条",
        reason="拒绝、阻碍检查，情节严重",
        authority=AUTH,
        decision_number=f"失信〔{on.year}〕{p.id}号",
    )


async def test_partner_reads_the_feed_with_measures(client, login, sessionmaker) -> None:
    today = service.china_today()
    async with sessionmaker() as s:
        u1, u2, u3 = await make_enterprises(s, 3, seed=51)
        listed = await _serious(s, u1, today)
        await _serious(s, u2, today, confirm=False)  # a proposal is not in the feed
        await s.commit()
    partner = await login("partner")
    r = await client.get("/api/v1/feeds/joint-punishment", headers=partner)
    assert r.status_code == 200, r.text
    body = r.json()
    (e,) = body["entries"]
    assert e["entry_id"] == listed.id and e["uscc"] == u1 and e["in_force"] is True
    assert e["authority"] == AUTH and e["basis"].startswith(
        "《市场监督管理严重违法失信名单管理办法》"
    )
    assert [m["code"] for m in e["measures"]] == [c for c, _ in JOINT_MEASURES]
    codes = {m["code"] for m in e["measures"]}
    assert {"government_procurement", "bidding", "financing", "honours", "market_access"} <= codes
    assert all(m["start_on"] == today.isoformat() for m in e["measures"])
    assert all(m["end_on"] == add_years(today, 3).isoformat() for m in e["measures"])
    assert "credit_class" not in e and "score" not in e

    # CSV: BOM, header, one row per entry
    for url in (
        "/api/v1/feeds/joint-punishment?format=csv",
        "/api/v1/feeds/joint-punishment.csv",
    ):
        r = await client.get(url, headers=partner)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/csv")
        assert r.content.startswith(b"\xef\xbb\xbf")
        rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
        assert [row["uscc"] for row in rows] == [u1]
        assert "依法限制参加政府采购活动" in rows[0]["measures"]


async def test_feed_roles(client, login) -> None:
    r = await client.get("/api/v1/feeds/joint-punishment", headers=await login("supervisor"))
    assert r.status_code == 403
    assert (await client.get("/api/v1/feeds/joint-punishment")).status_code == 401
    partner = await login("partner")
    assert (
        await client.get("/api/v1/feeds/joint-punishment", headers=await login("admin"))
    ).status_code == 200
    # a partner sees nothing else
    for url in (
        "/api/v1/credit/serious-list",
        "/api/v1/credit/abnormal-list",
        "/api/v1/credit/incentives",
        "/api/v1/penalties",
        "/api/v1/credit/policies",
    ):
        assert (await client.get(url, headers=partner)).status_code == 403, url


async def test_changed_since_returns_removals(client, login, sessionmaker) -> None:
    partner = await login("partner")
    r = await client.get("/api/v1/feeds/joint-punishment", headers=partner)
    since = r.json()["next_changed_since"]
    async with sessionmaker() as s:
        (u,) = await make_enterprises(s, 1, seed=53)
        old = D("2022-01-10")
        e = await _serious(s, u, old)
        await s.commit()
    # expired by the job (its dates are in the past): a removal the partner must see
    async with sessionmaker() as s:
        from qsampling.credit.jobs import serious_deadlines

        await serious_deadlines(s, datetime.now(UTC))
        await s.commit()
    r = await client.get(
        "/api/v1/feeds/joint-punishment", params={"changed_since": since}, headers=partner
    )
    assert r.status_code == 200, r.text
    (got,) = [x for x in r.json()["entries"] if x["entry_id"] == e.id]
    assert got["in_force"] is False and got["status"] == "removed_expired"
    assert got["removed_on"] == add_years(old, 3).isoformat()
    # without changed_since: only entries in force
    r = await client.get("/api/v1/feeds/joint-punishment", headers=partner)
    assert e.id not in [x["entry_id"] for x in r.json()["entries"]]
    # a time without a zone, or not a time, is refused
    r = await client.get(
        "/api/v1/feeds/joint-punishment",
        params={"changed_since": "2026-01-01T00:00:00"},
        headers=partner,
    )
    assert r.status_code == 422 and r.json()["error"] == "NaiveDatetime"
    r = await client.get(
        "/api/v1/feeds/joint-punishment", params={"changed_since": "yesterday"}, headers=partner
    )
    assert r.status_code == 422
    r = await client.get("/api/v1/feeds/joint-punishment?format=xml", headers=partner)
    assert r.status_code == 422


async def test_incentive_list(client, login, sessionmaker) -> None:
    today = service.china_today()
    async with sessionmaker() as s:
        clean, penalised, plain = await make_enterprises(s, 3, seed=57)
        for u in (clean, penalised):
            for i in range(3):
                await service.add_event(
                    s, uscc=u, kind="result_pass", occurred_on=today - timedelta(days=i)
                )
        # a minor penalty 400 days ago: 95 − 3·½^(400/365) ≈ 93.6, still A, but not clean
        await service.add_event(
            s,
            uscc=penalised,
            kind="penalty",
            severity="minor",
            occurred_on=today - timedelta(days=400),
        )
        for u in (clean, penalised, plain):
            await service.rescore(s, uscc=u, as_of=today)
        await s.commit()
    r = await client.get("/api/v1/credit/incentives", headers=await login("analyst"))
    assert r.status_code == 200
    got = [i["uscc"] for i in r.json()["items"]]
    assert clean in got and penalised not in got and plain not in got
    assert r.json()["clean_days"] == 730
    # the SQL agrees with the pure rule
    from qsampling.core.list_rules import incentive_eligible

    async with sessionmaker() as s:
        for u in (clean, penalised, plain):
            v = await service.credit_view(s, uscc=u)
            from qsampling.credit.service import ledger, to_core

            evs = [to_core(x) for x in await ledger(s, u)]
            cls = v.stored.credit_class if v.stored else "B"
            assert incentive_eligible(cls, evs, today) == (u in got)


async def test_public_list_entries_have_no_class_and_no_proposals(session) -> None:
    u1, u2, u3 = await make_enterprises(session, 3, seed=59)
    today = service.china_today()
    listed = await _serious(session, u1, today)
    await _serious(session, u2, today, confirm=False)
    ab = await lists.list_abnormal(
        session,
        uscc=u3,
        cause="unreachable",
        listed_on=today,
        reason="住所无法联系",
        basis="《企业经营异常名录管理暂行办法》第四条",
        authority=AUTH,
        decision_number=None,
        actor=SUP,
        today=today,
    )
    assert ab is not None
    assert "credit_class" not in feeds.public_field_names()
    assert not any("score" in f or "class" in f for f in feeds.public_field_names())
    page = await feeds.public_list_entries(session, list_name="serious", limit=10)
    assert [e.entry_id for e in page.items] == [listed.id] and page.next_cursor is None
    assert page.items[0].status == "listed" and page.items[0].authority == AUTH
    page = await feeds.public_list_entries(session, list_name="joint-punishment", limit=10)
    assert len(page.items[0].measures) == len(JOINT_MEASURES)
    page = await feeds.public_list_entries(session, list_name="abnormal", uscc=u3)
    (a,) = page.items
    assert a.reason == "住所无法联系" and a.in_force and a.status_label == "列入"
    d = a.as_dict()
    assert "credit_class" not in d and d["authority"] == AUTH
    # paging
    first = await feeds.public_list_entries(session, list_name="abnormal", limit=1)
    assert len(first.items) == 1
    import pytest

    from qsampling.errors import InvalidInput

    with pytest.raises(InvalidInput):
        await feeds.public_list_entries(session, list_name="blacklist")
