"""domain_events → credit ledger, abnormal list, proposals and classes (idempotent), and the
class a draw commitment freezes in pool.csv."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import select, text

from qsampling.context import Actor
from qsampling.credit import ingest, service
from qsampling.credit.jobs import consume_results
from qsampling.models.credit import AbnormalListEntry, CreditEventRow, SeriousListEntry
from tests.credit.conftest import D, make_enterprises

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)


async def _emit(session, kind: str, uscc: str, result_id: int | None, **payload) -> int:
    res = await session.execute(
        text(
            "INSERT INTO domain_events (kind, occurred_at, uscc, task_id, result_id, payload) "
            "VALUES (:k, :t, :u, :task, :r, CAST(:p AS jsonb)) RETURNING id"
        ),
        {
            "k": kind,
            "t": NOW,
            "u": uscc,
            "task": result_id,
            "r": result_id,
            "p": json.dumps(payload),
        },
    )
    return int(res.scalar_one())


async def _kinds(session, uscc: str) -> list[str]:
    return list(
        (
            await session.scalars(
                select(CreditEventRow.kind)
                .where(CreditEventRow.uscc == uscc)
                .order_by(CreditEventRow.id)
            )
        ).all()
    )


def test_facts_of_result_payloads() -> None:
    f = ingest.facts_of
    on = "2026-05-20"
    assert [x.kind for x in f("result.final", {"outcome": "pass", "inspected_on": on}, NOW)] == [
        "result_pass"
    ]
    (fail,) = f("result.final", {"outcome": "fail", "conclusion": "fail", "inspected_on": on}, NOW)
    assert (fail.kind, fail.severity, fail.occurred_on) == ("result_fail", None, D(on))
    assert [
        x.kind
        for x in f("result.final", {"outcome": "problem_found", "category_codes": ["C"]}, NOW)
    ] == ["false_disclosure"]
    # a failed follow-up is counted by reinspection.failed, not twice
    assert f("result.final", {"outcome": "fail", "plan_type": "follow_up"}, NOW) == []
    assert f("result.final", {"outcome": "closed", "category_codes": ["9"]}, NOW) == []
    assert f("result.final", {"outcome": "refused", "category_codes": ["8"]}, NOW) == []
    assert [x.kind for x in f("result.refused", {}, NOW)] == ["refusal"]
    assert [x.kind for x in f("reinspection.failed", {}, NOW)] == ["reinspection_fail"]
    # no inspected_on: the day it became final, in China
    (u,) = f("result.unreachable", {}, datetime(2026, 5, 31, 17, 0, tzinfo=UTC))
    assert (u.kind, u.occurred_on) == ("unreachable", D("2026-06-01"))
    # a severity, should the payload ever carry one, is used; nonsense is ignored
    (s,) = f("result.final", {"outcome": "fail", "severity": "serious"}, NOW)
    assert s.severity == "serious"
    (s,) = f("result.final", {"outcome": "fail", "severity": "catastrophic"}, NOW)
    assert s.severity is None


async def test_consuming_results_is_idempotent_and_lists_unreachables(session) -> None:
    a, b, c = await make_enterprises(session, 3, seed=61)
    await _emit(
        session,
        "result.final",
        a,
        101,
        outcome="fail",
        conclusion="fail",
        inspected_on="2026-05-10",
        category_codes=["A"],
    )
    await _emit(
        session,
        "result.final",
        b,
        102,
        outcome="no_problem_found",
        inspected_on="2026-05-11",
        category_codes=["1"],
    )
    await _emit(
        session,
        "result.final",
        c,
        103,
        outcome="unreachable",
        inspected_on="2026-05-12",
        category_codes=["6"],
    )
    await _emit(
        session, "result.unreachable", c, 103, inspected_on="2026-05-12", category_codes=["6"]
    )
    await _emit(session, "rectification.ordered", a, 101, due_date="2026-07-30")
    assert await consume_results(session, NOW) == 3
    assert await _kinds(session, a) == ["result_fail"]
    assert await _kinds(session, b) == ["result_pass"]
    assert await _kinds(session, c) == ["unreachable", "abnormal_listed"]
    (entry,) = (
        await session.scalars(select(AbnormalListEntry).where(AbnormalListEntry.uscc == c))
    ).all()
    assert entry.cause == "unreachable" and entry.listed_on == D("2026-05-12")
    assert entry.authority == "福州市鼓楼区市场监督管理局" and entry.decided_by == "system:jobs"
    assert "结果代码6" in entry.reason and entry.source_ref == "result 103 / task 103"
    classes = dict(
        (
            await session.execute(
                text("SELECT uscc, credit_class FROM credit_scores WHERE uscc = ANY(:u)"),
                {"u": [a, b, c]},
            )
        ).all()
    )
    # 80 − 8·½^(22/365) ≈ 72.3 → C; 80 + 5·½^(21/365) ≈ 84.8 → B; listed → at most C
    assert classes == {a: "C", b: "B", c: "C"}
    # again, and with the cursor moved back: nothing new
    assert await consume_results(session, NOW) == 0
    await session.execute(text("UPDATE credit_cursors SET last_id = 0"))
    assert await consume_results(session, NOW) == 0
    assert await _kinds(session, c) == ["unreachable", "abnormal_listed"]


async def test_refusal_and_failed_reinspection_propose_listings(session) -> None:
    (u,) = await make_enterprises(session, 1, seed=63)
    await _emit(session, "result.final", u, 201, outcome="fail", inspected_on="2026-01-05")
    await _emit(
        session,
        "result.final",
        u,
        202,
        outcome="fail",
        plan_type="follow_up",
        inspected_on="2026-03-20",
    )
    await _emit(session, "reinspection.failed", u, 202, original_result_id=201, escalate=True)
    await _emit(session, "result.refused", u, 203, inspected_on="2026-05-02")
    rep = await ingest.consume(session, now=NOW)
    assert rep.proposals == 2 and rep.enterprises == {u}
    assert await _kinds(session, u) == ["result_fail", "reinspection_fail", "refusal"]
    rows = (
        await session.scalars(
            select(SeriousListEntry).where(SeriousListEntry.uscc == u).order_by(SeriousListEntry.id)
        )
    ).all()
    assert sorted(r.rule_id for r in rows) == ["SD-REFUSAL", "SD-REINSPECTION-FAIL"]
    (re,) = [r for r in rows if r.rule_id == "SD-REINSPECTION-FAIL"]
    assert "2026-01-05监督抽查不合格" in re.proposal_reason
    assert (await ingest.consume(session, now=NOW)).proposals == 0


async def test_pool_csv_records_the_class_at_commit_time(session) -> None:
    """Draws stratify by enterprises.credit_class, which this module keeps current: the
    commitment freezes the class of that moment."""
    from qsampling.draws import service as draws
    from qsampling.draws.pool import pool_csv_bytes
    from qsampling.draws.schemas import PlanCreate
    from qsampling.models.directory import CheckItem

    usccs = await make_enterprises(session, 4, seed=67)
    session.add(
        CheckItem(
            code="CR-ITEM",
            name="信用测试抽查事项",
            legal_basis="《产品质量法》第十五条",
            kind="一般",
            category_codes=[],
            ratios={"A": "1", "B": "1", "C": "1", "D": "1"},
            exclusion_days=180,
            team_size=2,
        )
    )
    for i in range(2):
        await session.execute(
            text("INSERT INTO inspectors (inspector_id, name, unit_code) VALUES (:i, :n, 'CR-GL')"),
            {"i": f"CR-INS{i}", "n": f"信用检查员{i}"},
        )
    await session.flush()
    today = service.china_today()
    await service.add_event(session, uscc=usccs[0], kind="refusal", occurred_on=today)
    await service.rescore(session, uscc=usccs[0], as_of=today)  # 60 → C
    for u in usccs[1:]:
        await service.rescore(session, uscc=u, as_of=today)
    actor = Actor(username="sup", role="supervisor")
    plan = await draws.create_plan(
        session,
        actor=actor,
        data=PlanCreate(
            name="信用分层测试",
            check_item_code="CR-ITEM",
            scope={"region_prefixes": ["350102"], "statuses": ["存续"]},
        ),
    )
    res = await draws.commit_plan(session, plan_id=plan.id, actor=actor)
    commitment_id = res.commitment.id
    before = (await pool_csv_bytes(session, commitment_id=commitment_id)).decode()
    strata = dict(line.split(",")[:2] for line in before.strip().split("\n")[1:])
    assert strata[usccs[0]] == "C" and strata[usccs[1]] == "B"
    # the class changes after the commitment; the frozen pool keeps the old one
    await service.add_event(session, uscc=usccs[0], kind="serious_listed", occurred_on=today)
    await service.rescore(session, uscc=usccs[0], as_of=today)
    assert (
        await session.scalar(
            text("SELECT credit_class FROM enterprises WHERE uscc = :u"), {"u": usccs[0]}
        )
    ) == "D"
    after = (await pool_csv_bytes(session, commitment_id=commitment_id)).decode()
    assert after == before
