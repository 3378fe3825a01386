"""The abnormal-operations and serious-dishonesty lists: decisions through the API, time-driven
transitions with an injected clock, and what each decision records."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select, text

from qsampling.context import cli_actor
from qsampling.core.list_rules import add_years
from qsampling.credit import jobs, lists, service
from qsampling.models.credit import AbnormalListEntry, SeriousListEntry
from tests.credit.conftest import D, make_enterprises

AUTH = "福州市鼓楼区市场监督管理局"
SUP = cli_actor()


def _at(d: date) -> datetime:
    """Noon in China on day ``d``."""
    return datetime(d.year, d.month, d.day, 4, 0, tzinfo=UTC)


async def _passes(sessionmaker, uscc: str, n: int) -> None:
    async with sessionmaker() as s:
        for i in range(n):
            await service.add_event(
                s, uscc=uscc, kind="result_pass", occurred_on=service.china_today(), ref=f"p{i}"
            )
        await service.rescore(s, uscc=uscc)
        await s.commit()


# --- abnormal-operations list through the API ------------------------------------------------


async def test_abnormal_listing_caps_the_class_and_removal_lifts_it(
    client, login, enterprises, sessionmaker, session
) -> None:
    (u,) = await enterprises(1)
    await _passes(sessionmaker, u, 3)  # 95 → A
    sup = await login("supervisor")
    r = await client.post(
        "/api/v1/credit/abnormal-list",
        json={
            "uscc": u,
            "cause": "annual_report",
            "reason": "未按照规定的期限公示2025年度报告",
            "authority": AUTH,
            "decision_number": "榕鼓市监异〔2026〕3号",
        },
        headers=sup,
    )
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["status"] == "listed" and entry["basis"].startswith("《企业信息公示暂行条例》")
    assert entry["decided_by"] == SUP.username or entry["decided_by"].startswith("supervisor-")
    eid = entry["id"]
    view = (await client.get(f"/api/v1/enterprises/{u}/credit", headers=sup)).json()
    # 95 − 10 = 85 (B by score), the abnormal list caps the class at C
    assert (view["score"], view["score_class"], view["credit_class"]) == (85.0, "B", "C")
    assert "经营异常名录" in view["hard_rule"]

    # the same cause cannot be listed twice while open
    again = await client.post(
        "/api/v1/credit/abnormal-list",
        json={"uscc": u, "cause": "annual_report", "reason": "重复列入", "authority": AUTH},
        headers=sup,
    )
    assert again.status_code == 409 and again.json()["error"] == "AlreadyListed"

    # deciding before an application is a conflict
    dec = {"approve": True, "reason": "已补报并公示年度报告", "authority": AUTH}
    r = await client.post(
        f"/api/v1/credit/abnormal-list/{eid}/removal-decision", json=dec, headers=sup
    )
    assert r.status_code == 409
    app_ = {"statement": "已补报2025年度报告并公示"}
    r = await client.post(
        f"/api/v1/credit/abnormal-list/{eid}/removal-application", json=app_, headers=sup
    )
    assert r.status_code == 200 and r.json()["status"] == "removal_applied"
    queue = (
        await client.get("/api/v1/credit/abnormal-list?status=removal_applied", headers=sup)
    ).json()
    assert [e["id"] for e in queue["items"]] == [eid]
    refuse = {"approve": False, "reason": "年度报告仍缺资产状况信息", "authority": AUTH}
    r = await client.post(
        f"/api/v1/credit/abnormal-list/{eid}/removal-decision", json=refuse, headers=sup
    )
    assert r.status_code == 200 and r.json()["status"] == "listed"
    assert r.json()["removal_refused_note"] == "年度报告仍缺资产状况信息"
    await client.post(
        f"/api/v1/credit/abnormal-list/{eid}/removal-application", json=app_, headers=sup
    )
    r = await client.post(
        f"/api/v1/credit/abnormal-list/{eid}/removal-decision", json=dec, headers=sup
    )
    assert r.status_code == 200
    done = r.json()
    assert done["status"] == "removed" and done["removed_on"] == service.china_today().isoformat()
    assert done["removal_authority"] == AUTH and done["removal_reason"] == "已补报并公示年度报告"
    view = (await client.get(f"/api/v1/enterprises/{u}/credit", headers=sup)).json()
    assert (view["credit_class"], view["hard_rule"]) == ("B", None)
    assert [h["credit_class"] for h in view["history"]][:3] == ["B", "C", "A"]
    actions = (
        (
            await session.execute(
                text(
                    "SELECT action FROM audit_log WHERE entity_type = 'abnormal_list_entry' "
                    "AND entity_id = :e ORDER BY id"
                ),
                {"e": str(eid)},
            )
        )
        .scalars()
        .all()
    )
    assert actions == [
        "abnormal.list",
        "abnormal.apply_removal",
        "abnormal.refuse_removal",
        "abnormal.apply_removal",
        "abnormal.remove",
    ]


async def test_abnormal_endpoints_reject_bad_input(client, login, enterprises) -> None:
    (u,) = await enterprises(1)
    sup = await login("supervisor")
    base = {"uscc": u, "cause": "unreachable", "reason": "住所无法联系", "authority": AUTH}
    for bad in ({"cause": "bankrupt"}, {"reason": ""}, {"listed_on": "2999-01-01"}, {"x": 1}):
        r = await client.post("/api/v1/credit/abnormal-list", json={**base, **bad}, headers=sup)
        assert r.status_code == 422, (bad, r.text)
    r = await client.get("/api/v1/credit/abnormal-list/999999", headers=sup)
    assert r.status_code == 404
    r = await client.post(
        "/api/v1/credit/abnormal-list/999999/removal-application",
        json={"statement": "已更正"},
        headers=sup,
    )
    assert r.status_code == 404
    r = await client.post("/api/v1/credit/abnormal-list", json=base, headers=await login("analyst"))
    assert r.status_code == 403


# --- abnormal deadlines (injected clock) ----------------------------------------------


async def test_abnormal_warning_and_escalation_at_three_years(session) -> None:
    (u,) = await make_enterprises(session, 1, seed=31)
    listed_on = D("2023-01-10")
    e = await lists.list_abnormal(
        session,
        uscc=u,
        cause="unreachable",
        listed_on=listed_on,
        reason="通过登记的住所无法联系",
        basis="《企业经营异常名录管理暂行办法》第四条",
        authority=AUTH,
        decision_number=None,
        actor=SUP,
        today=listed_on,
    )
    assert e is not None
    warn_day = add_years(listed_on, 3) - timedelta(days=60)  # 2025-11-11
    assert await jobs.abnormal_deadlines(session, _at(warn_day - timedelta(days=1))) == 0
    assert await jobs.abnormal_deadlines(session, _at(warn_day)) == 1
    assert await jobs.abnormal_deadlines(session, _at(warn_day)) == 0  # idempotent
    await session.refresh(e)
    assert e.warned_on == warn_day and e.status == "listed"

    escalate_day = add_years(listed_on, 3)
    assert await jobs.abnormal_deadlines(session, _at(escalate_day - timedelta(days=1))) == 0
    # the job ran late: the proposal still carries the day it fell due
    assert await jobs.abnormal_deadlines(session, _at(escalate_day + timedelta(days=3))) == 1
    assert await jobs.abnormal_deadlines(session, _at(escalate_day + timedelta(days=4))) == 0
    await session.refresh(e)
    assert e.status == "escalated" and e.escalated_on == escalate_day
    (p,) = (await session.scalars(select(SeriousListEntry).where(SeriousListEntry.uscc == u))).all()
    assert p.status == "proposed" and p.rule_id == "SD-ABNORMAL-3Y"
    assert p.proposed_on == escalate_day and p.abnormal_entry_id == e.id
    assert len(p.trigger_event_ids) == 1
    assert "已于2025-11-11预警" in p.proposal_reason
    # still on the abnormal list until removed; removal is still possible
    await lists.apply_abnormal_removal(
        session,
        entry_id=e.id,
        applied_on=escalate_day,
        statement="已变更住所登记",
        actor=SUP,
        today=escalate_day,
    )
    r = await lists.decide_abnormal_removal(
        session,
        entry_id=e.id,
        approve=False,
        decided_on=escalate_day,
        reason="经核查仍无法联系",
        basis=None,
        authority=AUTH,
        actor=SUP,
        today=escalate_day,
    )
    assert r.status == "escalated"


# --- serious list through the API --------------------------------------------------------------


async def test_serious_proposal_confirm_and_too_early_repair(client, login, enterprises) -> None:
    (u,) = await enterprises(1)
    sup = await login("supervisor")
    r = await client.post(
        "/api/v1/credit/serious-list",
        json={
            "uscc": u,
            "reason": "生产销售假冒伪劣产品，情节严重",
            "basis": "《产品质量法》第五十条",
        },
        headers=sup,
    )
    assert r.status_code == 201
    pid = r.json()["id"]
    assert r.json()["status"] == "proposed"
    proposals = (
        await client.get("/api/v1/credit/serious-list?status=proposed", headers=sup)
    ).json()
    assert pid in [e["id"] for e in proposals["items"]]
    # confirming needs a legal basis and an authority
    r = await client.post(
        f"/api/v1/credit/serious-list/{pid}/decision",
        json={"action": "confirm", "reason": "情节严重", "authority": AUTH},
        headers=sup,
    )
    assert r.status_code == 422 and r.json()["error"] == "MissingBasis"
    r = await client.post(
        f"/api/v1/credit/serious-list/{pid}/decision",
        json={"action": "confirm", "reason": "情节严重", "basis": "《办法》第九条"},
        headers=sup,
    )
    assert r.status_code == 422 and r.json()["error"] == "MissingAuthority"
    decision = {
        "action": "confirm",
        "reason": "生产销售假冒伪劣产品，货值金额较大，情节严重",
        "basis": "《市场监督管理严重违法失信名单管理办法》第九条",
        "authority": AUTH,
        "decision_number": "榕鼓市监失信〔2026〕1号",
    }
    r = await client.post(f"/api/v1/credit/serious-list/{pid}/decision", json=decision, headers=sup)
    assert r.status_code == 200, r.text
    e = r.json()
    today = service.china_today()
    assert e["status"] == "listed" and e["listed_on"] == today.isoformat()
    assert e["expires_on"] == add_years(today, 3).isoformat()
    assert e["repair_eligible_on"] == add_years(today, 1).isoformat()
    view = (await client.get(f"/api/v1/enterprises/{u}/credit", headers=sup)).json()
    assert view["credit_class"] == "D" and view["on_serious_list"]
    # a decision again is a conflict; repair too early names the first possible day
    r = await client.post(f"/api/v1/credit/serious-list/{pid}/decision", json=decision, headers=sup)
    assert r.status_code == 409 and r.json()["error"] == "IllegalTransition"
    r = await client.post(
        f"/api/v1/credit/serious-list/{pid}/repair-application",
        json={"statement": "已缴清罚款并完成整改"},
        headers=sup,
    )
    assert r.status_code == 409 and r.json()["error"] == "RepairTooEarly"
    assert add_years(today, 1).isoformat() in r.json()["detail"]


async def test_reject_needs_a_reason_and_is_final(client, login, enterprises) -> None:
    (u,) = await enterprises(1)
    sup = await login("supervisor")
    pid = (
        await client.post(
            "/api/v1/credit/serious-list",
            json={"uscc": u, "reason": "拒不配合检查", "basis": "《办法》"},
            headers=sup,
        )
    ).json()["id"]
    r = await client.post(
        f"/api/v1/credit/serious-list/{pid}/decision",
        json={"action": "reject", "reason": "经核实系误报，企业已配合检查"},
        headers=sup,
    )
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert r.json()["decision_note"] == "经核实系误报，企业已配合检查"
    r = await client.post(
        f"/api/v1/credit/serious-list/{pid}/repair-decision",
        json={"grant": True, "reason": "x" * 3, "authority": AUTH},
        headers=sup,
    )
    assert r.status_code == 409
    r = await client.post(
        "/api/v1/credit/serious-list/424242/decision",
        json={"action": "reject", "reason": "不存在"},
        headers=sup,
    )
    assert r.status_code == 404


# --- serious list over time (injected clock) -------------------------------------------


async def _listed(session, uscc: str, on: date) -> SeriousListEntry:
    p = await lists.propose_manual(
        session,
        uscc=uscc,
        reason="拒绝、阻碍监督检查，情节严重",
        basis="《办法》第十条",
        proposed_on=on,
        actor=SUP,
        today=on,
    )
    return await lists.decide_serious(
        session,
        entry_id=p.id,
        action="confirm",
        decided_on=on,
        actor=SUP,
        today=on,
        basis="《市场监督管理严重违法失信名单管理办法》第十条",
        reason="拒绝、阻碍监督检查，情节严重",
        authority=AUTH,
        decision_number="失信〔2024〕1号",
    )


async def test_credit_repair_after_one_year(session) -> None:
    (u,) = await make_enterprises(session, 1, seed=41)
    on = D("2024-01-15")
    e = await _listed(session, u, on)
    assert (await service.rescore(session, uscc=u, as_of=on)).credit_class == "D"
    # the repair-eligibility notice goes out once, on the anniversary
    assert await jobs.serious_deadlines(session, _at(D("2025-01-14"))) == 0
    assert await jobs.serious_deadlines(session, _at(D("2025-01-15"))) == 1
    assert await jobs.serious_deadlines(session, _at(D("2025-01-16"))) == 0
    await session.refresh(e)
    assert e.repair_notified_on == D("2025-01-15")
    e = await lists.decide_serious(
        session,
        entry_id=e.id,
        action="apply_repair",
        decided_on=D("2025-02-01"),
        actor=SUP,
        today=D("2025-02-01"),
        statement="已缴清罚款，完成整改，作出信用承诺",
    )
    assert e.status == "repair_applied" and e.repair_application.startswith("已缴清")
    e = await lists.decide_serious(
        session,
        entry_id=e.id,
        action="grant_repair",
        decided_on=D("2025-02-10"),
        actor=SUP,
        today=D("2025-02-10"),
        reason="已履行行政处罚决定，完成信用修复",
        authority=AUTH,
    )
    assert e.status == "removed_repaired" and e.removed_on == D("2025-02-10")
    assert e.removal_basis.startswith("《市场监督管理信用修复管理办法》")
    ch = await service.rescore(session, uscc=u, as_of=D("2025-02-10"))
    assert ch.credit_class != "D"


async def test_refused_repair_returns_to_listed_and_expiry_is_automatic(session) -> None:
    (u,) = await make_enterprises(session, 1, seed=43)
    on = D("2023-03-01")
    e = await _listed(session, u, on)
    e = await lists.decide_serious(
        session,
        entry_id=e.id,
        action="apply_repair",
        decided_on=D("2024-03-01"),
        actor=SUP,
        today=D("2024-03-01"),
        statement="申请信用修复",
    )
    e = await lists.decide_serious(
        session,
        entry_id=e.id,
        action="refuse_repair",
        decided_on=D("2024-03-05"),
        actor=SUP,
        today=D("2024-03-05"),
        reason="尚未缴清罚款",
        authority=AUTH,
    )
    assert e.status == "listed" and e.decision_note == "尚未缴清罚款"
    # not expired the day before; the job only sends the (overdue) repair-eligibility notice
    assert await jobs.serious_deadlines(session, _at(D("2026-02-28"))) == 1
    await session.refresh(e)
    assert e.status == "listed" and e.repair_notified_on == D("2026-02-28")
    # the job runs late; the removal still takes effect on the third anniversary
    assert await jobs.serious_deadlines(session, _at(D("2026-03-04"))) == 1
    assert await jobs.serious_deadlines(session, _at(D("2026-03-05"))) == 0
    await session.refresh(e)
    assert e.status == "removed_expired" and e.removed_on == D("2026-03-01")
    assert e.removal_authority == AUTH and "届满三年" in e.removal_reason
    stored = await service.credit_view(session, uscc=u)
    assert not stored.on_serious_list and stored.stored is not None
    assert stored.stored.credit_class != "D"
    actions = (
        (
            await session.execute(
                text(
                    "SELECT action FROM audit_log WHERE entity_type = 'serious_list_entry' "
                    "AND entity_id = :e ORDER BY id"
                ),
                {"e": str(e.id)},
            )
        )
        .scalars()
        .all()
    )
    assert actions == [
        "serious.propose",
        "serious.confirm",
        "serious.apply_repair",
        "serious.refuse_repair",
        "serious.repair_eligible",
        "serious.expire",
    ]


async def test_refusal_and_failed_reinspection_propose_once(session) -> None:
    (u,) = await make_enterprises(session, 1, seed=47)
    today = D("2026-05-01")
    await service.add_event(session, uscc=u, kind="refusal", occurred_on=D("2026-04-01"), ref="r8")
    f = await service.add_event(
        session, uscc=u, kind="result_fail", severity="general", occurred_on=D("2026-01-05")
    )
    ri = await service.add_event(
        session, uscc=u, kind="reinspection_fail", occurred_on=D("2026-03-20")
    )
    made = await lists.propose_for(session, uscc=u, today=today)
    assert sorted(p.rule_id for p in made) == ["SD-REFUSAL", "SD-REINSPECTION-FAIL"]
    (re,) = [p for p in made if p.rule_id == "SD-REINSPECTION-FAIL"]
    assert re.trigger_event_ids == [f, ri]
    assert await lists.propose_for(session, uscc=u, today=today) == []
    # a rejected proposal is not proposed again either
    await lists.decide_serious(
        session,
        entry_id=made[0].id,
        action="reject",
        decided_on=today,
        actor=SUP,
        today=today,
        reason="情节不属严重",
    )
    assert await lists.propose_for(session, uscc=u, today=today) == []
    rows = (
        await session.scalars(select(AbnormalListEntry).where(AbnormalListEntry.uscc == u))
    ).all()
    assert rows == []
