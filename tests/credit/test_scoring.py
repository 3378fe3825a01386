"""Scoring: incremental and set-based paths agree with the pure rules; the explainable view."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, timedelta

import pytest
from sqlalchemy import select, text

from qsampling.context import cli_actor
from qsampling.core.credit_rules import (
    CLASSES,
    EVENT_KINDS,
    SEVERITIES,
    CreditEvent,
    default_policy,
    score_enterprise,
)
from qsampling.core.credit_rules import _apply_hard_rules as core_hard_rules
from qsampling.credit import service
from qsampling.models.credit import CreditClassHistory, CreditScore
from qsampling.models.directory import Enterprise
from tests.credit.conftest import D, make_enterprises

AS_OF = D("2026-06-30")


async def _events(session, uscc: str, evs: list[tuple[str, str | None, int]]) -> None:
    for kind, sev, age in evs:
        await service.add_event(
            session, uscc=uscc, kind=kind, severity=sev, occurred_on=AS_OF - timedelta(days=age)
        )


async def test_history_records_changes_of_the_class_in_force(session) -> None:
    a, b = await make_enterprises(session, 2)
    ch = await service.rescore(session, uscc=a, as_of=AS_OF)
    assert (ch.score, ch.credit_class, ch.previous_class, ch.policy_version) == (80.0, "B", "B", 1)
    assert not ch.changed
    # an enterprise imported as C is B by its (empty) ledger
    await session.execute(
        text("UPDATE enterprises SET credit_class = 'C' WHERE uscc = :u"), {"u": b}
    )
    ch = await service.rescore(session, uscc=b, as_of=AS_OF)
    assert ch.changed and (ch.previous_class, ch.credit_class) == ("C", "B")
    hist = (
        await session.scalars(select(CreditClassHistory).where(CreditClassHistory.uscc.in_([a, b])))
    ).all()
    assert [(h.uscc, h.previous_class, h.credit_class, h.trigger) for h in hist] == [
        (b, "C", "B", "event")
    ]
    # rescoring without change adds nothing
    await service.rescore(session, uscc=b, as_of=AS_OF)
    assert (
        len(
            (
                await session.scalars(
                    select(CreditClassHistory).where(CreditClassHistory.uscc == b)
                )
            ).all()
        )
        == 1
    )


async def test_incremental_update_moves_the_directory_class(session) -> None:
    (u,) = await make_enterprises(session, 1)
    await _events(session, u, [("refusal", None, 0)])
    ch = await service.rescore(session, uscc=u, as_of=AS_OF)
    assert ch.score == 60.0 and ch.credit_class == "C"
    ent = await session.get(Enterprise, u)
    await session.refresh(ent)
    assert ent.credit_class == "C"
    stored = await session.get(CreditScore, u)
    assert float(stored.score) == 60.0 and stored.policy_version == 1 and stored.as_of == AS_OF


async def test_source_makes_events_idempotent(session) -> None:
    (u,) = await make_enterprises(session, 1)
    first = await service.add_event(
        session, uscc=u, kind="result_pass", occurred_on=AS_OF, source="x:1"
    )
    again = await service.add_event(
        session, uscc=u, kind="result_pass", occurred_on=AS_OF, source="x:1"
    )
    assert first is not None and again is None


def test_hard_rule_codes_match_the_core() -> None:
    for p in (default_policy(), replace(default_policy(), abnormal_list_max_class="D")):
        for cls in CLASSES:
            for serious in (False, True):
                for abnormal in (False, True):
                    final, code = service.hard_rule_code(
                        cls, p, on_serious_list=serious, on_abnormal_list=abnormal
                    )
                    core_final, text_ = core_hard_rules(
                        cls, p, on_serious_list=serious, on_abnormal_list=abnormal
                    )
                    assert final == core_final
                    assert (code is None) == (text_ is None)
                    if code == "serious_list":
                        assert "严重违法失信" in (text_ or "")
                    if code == "abnormal_list":
                        assert "经营异常" in (text_ or "")


async def test_set_based_recompute_equals_score_enterprise(session) -> None:
    """A random ledger over 120 enterprises, some listed: every stored score and class
    equals the pure function's."""
    usccs = await make_enterprises(session, 120, seed=5)
    rng = random.Random(42)
    ledgers: dict[str, list[CreditEvent]] = {u: [] for u in usccs}
    rows = []
    for u in usccs:
        for _ in range(rng.randint(0, 9)):
            kind = rng.choice(EVENT_KINDS)
            sev = rng.choice((None, *SEVERITIES))
            age = rng.randint(-20, 1300)  # some in the future, some past the horizon
            rows.append((u, kind, sev, AS_OF - timedelta(days=age)))
    for u, kind, sev, on in rows:
        eid = await service.add_event(session, uscc=u, kind=kind, severity=sev, occurred_on=on)
        ledgers[u].append(CreditEvent(eid, kind, sev, on))
    serious = set(usccs[:6])
    abnormal = set(usccs[4:14])
    for u in serious:
        await session.execute(
            text(
                "INSERT INTO serious_list_entries (uscc, status, rule_id, proposed_on, "
                "proposal_reason, proposal_basis, proposed_by, listed_on, expires_on) "
                "VALUES (:u, 'listed', 'MANUAL', :d, 'r', 'b', 't', :d, :e)"
            ),
            {"u": u, "d": AS_OF - timedelta(days=30), "e": AS_OF + timedelta(days=1000)},
        )
    for u in abnormal:
        await session.execute(
            text(
                "INSERT INTO abnormal_list_entries (uscc, cause, status, listed_on, reason, "
                "basis, authority, decided_by) "
                "VALUES (:u, 'unreachable', 'listed', :d, 'r', 'b', 'a', 't')"
            ),
            {"u": u, "d": AS_OF - timedelta(days=10)},
        )
    # one expired listing and one removed abnormal entry do not count
    await session.execute(
        text(
            "INSERT INTO serious_list_entries (uscc, status, rule_id, proposed_on, "
            "proposal_reason, proposal_basis, proposed_by, listed_on, expires_on, removed_on) "
            "VALUES "
            "(:u, 'removed_expired', 'MANUAL', :d, 'r', 'b', 't', :d, :e, :e)"
        ),
        {"u": usccs[50], "d": AS_OF - timedelta(days=1200), "e": AS_OF - timedelta(days=105)},
    )
    await session.flush()

    rep = await service.recompute_all(session, actor=cli_actor(), as_of=AS_OF)
    assert rep.enterprises >= 120 and rep.policy_version == 1

    stored = {
        s.uscc: s
        for s in (
            await session.scalars(select(CreditScore).where(CreditScore.uscc.in_(usccs)))
        ).all()
    }
    policy = default_policy()
    mismatches = []
    for u in usccs:
        a = score_enterprise(
            ledgers[u],
            policy=policy,
            as_of=AS_OF,
            on_serious_list=u in serious,
            on_abnormal_list=u in abnormal,
        )
        s = stored[u]
        if (float(s.score), s.credit_class, s.score_class) != (
            a.score,
            a.credit_class,
            a.score_class,
        ):
            mismatches.append((u, float(s.score), s.credit_class, a.score, a.credit_class))
        assert (s.hard_rule is None) == (a.hard_rule is None)
        assert s.as_of == AS_OF and s.policy_version == 1
    assert mismatches == []
    # the directory follows, and the incremental path agrees with the set-based one
    classes = dict(
        (
            await session.execute(
                select(Enterprise.uscc, Enterprise.credit_class).where(Enterprise.uscc.in_(usccs))
            )
        ).all()
    )
    assert classes == {u: stored[u].credit_class for u in usccs}
    for u in usccs[:30]:
        ch = await service.rescore(session, uscc=u, as_of=AS_OF)
        assert (ch.score, ch.credit_class) == (float(stored[u].score), stored[u].credit_class)
        assert not ch.changed
    assert {c for c in classes.values()} >= {"B", "C", "D"}


async def test_recompute_gives_the_planner_back(session) -> None:
    await make_enterprises(session, 1, seed=13)
    rep = await service.recompute_all(session, actor=cli_actor(), as_of=AS_OF)
    assert set(rep.steps) >= {"score", "update_scores", "history", "directory"}
    for name in ("enable_hashagg", "enable_nestloop", "enable_seqscan"):
        assert await session.scalar(text(f"SHOW {name}")) == "on"


async def test_recompute_records_history_only_for_changes(session) -> None:
    usccs = await make_enterprises(session, 3, seed=9)
    await service.recompute_all(session, actor=cli_actor(), as_of=AS_OF)
    await _events(session, usccs[0], [("refusal", None, 0)])
    rep = await service.recompute_all(session, actor=cli_actor(), as_of=AS_OF)
    assert rep.changed == 1
    hist = (
        await session.scalars(
            select(CreditClassHistory)
            .where(CreditClassHistory.uscc == usccs[0])
            .order_by(CreditClassHistory.id)
        )
    ).all()
    assert [(h.previous_class, h.credit_class, h.trigger) for h in hist] == [
        ("B", "C", "recompute"),
    ]


async def test_daily_job_recomputes_once_per_day(session) -> None:
    from datetime import UTC, datetime

    from qsampling.credit.jobs import daily_recompute

    await make_enterprises(session, 2, seed=3)
    now = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)
    assert await daily_recompute(session, now) >= 2
    assert await daily_recompute(session, now) == 0
    assert await daily_recompute(session, now + timedelta(days=1)) >= 2


def test_china_today_is_utc_plus_8() -> None:
    from datetime import UTC, datetime

    assert service.china_today(datetime(2026, 1, 1, 15, 59, tzinfo=UTC)) == date(2026, 1, 1)
    assert service.china_today(datetime(2026, 1, 1, 16, 0, tzinfo=UTC)) == date(2026, 1, 2)


# --- the API ----------------------------------------------------------------------------------


async def test_credit_view_explains_the_class(client, login, enterprises, sessionmaker) -> None:
    (u,) = await enterprises(1)
    today = service.china_today()
    async with sessionmaker() as s:
        await service.add_event(
            s,
            uscc=u,
            kind="result_fail",
            severity="serious",
            occurred_on=today - timedelta(days=365),
            ref="result 7",
        )
        await service.add_event(s, uscc=u, kind="result_pass", occurred_on=today, ref="result 9")
        await service.add_event(s, uscc=u, kind="refusal", occurred_on=today - timedelta(days=2000))
        await service.rescore(s, uscc=u, as_of=today)
        await s.commit()
    r = await client.get(f"/api/v1/enterprises/{u}/credit", headers=await login("analyst"))
    assert r.status_code == 200, r.text
    body = r.json()
    # 80 − 15 × ½ + 5 = 77.5 → B
    assert (
        body["score"] == 77.5
        and body["credit_class"] == "B"
        and body["class_label"] == "信用风险一般"
    )
    assert body["policy_version"] == 1 and body["stored"] and not body["stale"]
    by_ref = {e["ref"]: e for e in body["events"] if e["counted"]}
    assert by_ref["result 7"]["decay_factor"] == pytest.approx(0.5)
    assert by_ref["result 7"]["points"] == pytest.approx(-7.5)
    assert by_ref["result 9"]["points"] == pytest.approx(5.0)
    assert [e["kind"] for e in body["events"] if not e["counted"]] == ["refusal"]
    assert "监督抽查不合格" in body["explanation"] and "77.50" in body["explanation"]
    assert body["history"] == []  # B, as before the first assessment


async def test_credit_view_is_internal(client, login, enterprises) -> None:
    (u,) = await enterprises(1)
    r = await client.get(f"/api/v1/enterprises/{u}/credit", headers=await login("inspector"))
    assert r.status_code == 403
    r = await client.get(f"/api/v1/enterprises/{u}/credit")
    assert r.status_code == 401


async def test_credit_view_of_unknown_or_unscored_enterprise(client, login, enterprises) -> None:
    h = await login("supervisor")
    r = await client.get("/api/v1/enterprises/91350100MA0000000X/credit", headers=h)
    assert r.status_code == 404 and r.json()["error"] == "EnterpriseNotFound"
    r = await client.get("/api/v1/enterprises/not-a-code/credit", headers=h)
    assert r.status_code == 404
    (u,) = await enterprises(1, seed=77)
    r = await client.get(f"/api/v1/enterprises/{u}/credit", headers=h)
    assert r.status_code == 200
    body = r.json()
    assert body["stored"] is False and body["credit_class"] == "B" and body["score"] == 80.0
    assert "无计分记录" in body["explanation"]
