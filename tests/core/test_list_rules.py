"""List state machines with an injected clock: abnormal-operations warnings and escalation,
serious-list life cycle and credit repair, proposals, joint punishment, incentives."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from qsampling.core.credit_rules import CreditEvent
from qsampling.core.list_rules import (
    JOINT_MEASURES,
    RULE_ABNORMAL_3Y,
    RULE_REFUSAL,
    RULE_REINSPECTION_FAIL,
    RULE_SERIOUS_QUALITY_PENALTY,
    AbnormalEntry,
    ListRuleError,
    SeriousEntry,
    Transition,
    abnormal_due_transitions,
    abnormal_escalate_on,
    abnormal_warn_on,
    add_years,
    expires_on,
    incentive_eligible,
    measures_for,
    propose_serious,
    repair_eligible_on,
    serious_due_transitions,
    serious_transition,
)

D = date.fromisoformat
BASIS = "《市场监督管理严重违法失信名单管理办法》"


# --- calendar years -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "years", "expected"),
    [
        ("2023-03-01", 1, "2024-03-01"),
        ("2024-02-29", 1, "2025-02-28"),
        ("2024-02-29", 3, "2027-02-28"),
        ("2024-02-29", 4, "2028-02-29"),
        ("2023-02-28", 1, "2024-02-28"),
        ("2024-12-31", 3, "2027-12-31"),
    ],
)
def test_add_years_handles_leap_days(start: str, years: int, expected: str) -> None:
    assert add_years(D(start), years) == D(expected)


def test_period_dates() -> None:
    assert expires_on(D("2024-02-29")) == D("2027-02-28")
    assert repair_eligible_on(D("2024-02-29")) == D("2025-02-28")
    assert abnormal_escalate_on(D("2021-05-10")) == D("2024-05-10")
    assert abnormal_warn_on(D("2021-05-10")) == D("2024-03-11")  # 60 days before
    assert abnormal_warn_on(D("2024-02-29")) == D("2027-02-28") - timedelta(days=60)
    assert abnormal_warn_on(D("2024-02-29")) == D("2026-12-30")


# --- abnormal-operations list ---------------------------------------------------------------


def _apply_abnormal(entries: list[AbnormalEntry], ts: list[Transition]) -> list[AbnormalEntry]:
    """What the service does with due transitions: store them on the entries."""
    by_id = {t.entry_id: t for t in ts}
    out = []
    for e in entries:
        t = by_id.get(e.entry_id)
        if t is None:
            out.append(e)
        elif t.action == "warn":
            out.append(replace(e, warned_on=t.effective_on))
        else:
            out.append(replace(e, status="escalated"))
    return out


def test_abnormal_warning_and_escalation_timeline() -> None:
    e = AbnormalEntry("AB1", D("2021-05-10"))
    assert abnormal_due_transitions([e], D("2024-03-10")) == []
    (warn,) = abnormal_due_transitions([e], D("2024-03-11"))
    assert (warn.entry_id, warn.action, warn.effective_on) == ("AB1", "warn", D("2024-03-11"))
    assert "2024-05-10" in warn.reason
    assert "企业信息公示暂行条例" in warn.basis
    warned = replace(e, warned_on=D("2024-03-11"))
    assert abnormal_due_transitions([warned], D("2024-05-09")) == []
    (prop,) = abnormal_due_transitions([warned], D("2024-05-10"))
    assert (prop.action, prop.effective_on) == ("propose_serious", D("2024-05-10"))
    assert "严重违法失信名单" in prop.reason
    assert "已于2024-03-11预警" in prop.reason
    assert abnormal_due_transitions([replace(warned, status="escalated")], D("2025-01-01")) == []
    assert abnormal_due_transitions([replace(e, status="removed")], D("2025-01-01")) == []


def test_abnormal_leap_day_listing() -> None:
    e = AbnormalEntry(7, D("2024-02-29"))
    assert abnormal_due_transitions([e], D("2026-12-29")) == []
    assert [t.action for t in abnormal_due_transitions([e], D("2026-12-30"))] == ["warn"]
    warned = replace(e, warned_on=D("2026-12-30"))
    assert abnormal_due_transitions([warned], D("2027-02-27")) == []
    (t,) = abnormal_due_transitions([warned], D("2027-02-28"))
    assert (t.action, t.effective_on) == ("propose_serious", D("2027-02-28"))


def test_abnormal_missed_warning_gives_only_the_proposal() -> None:
    e = AbnormalEntry("AB2", D("2020-01-15"))
    (t,) = abnormal_due_transitions([e], D("2024-06-01"))
    assert t.action == "propose_serious"
    assert t.effective_on == D("2023-01-15")  # when it fell due, not when the job ran
    assert "未发出预警" in t.reason


def test_abnormal_due_transitions_are_idempotent() -> None:
    entries = [
        AbnormalEntry("a", D("2021-05-10")),
        AbnormalEntry("b", D("2021-01-01")),
        AbnormalEntry("c", D("2023-01-01")),
        AbnormalEntry("d", D("2020-01-01"), status="removed"),
    ]
    today = D("2024-04-01")
    first = abnormal_due_transitions(entries, today)
    assert [(t.entry_id, t.action) for t in first] == [("b", "propose_serious"), ("a", "warn")]
    assert first == abnormal_due_transitions(entries, today)  # pure: same input, same output
    stored = _apply_abnormal(entries, first)
    assert abnormal_due_transitions(stored, today) == []
    assert abnormal_due_transitions(stored, D("2024-04-02")) == []
    # later, "a" reaches 3 years once
    later = abnormal_due_transitions(stored, D("2024-05-10"))
    assert [(t.entry_id, t.action) for t in later] == [("a", "propose_serious")]
    assert abnormal_due_transitions(_apply_abnormal(stored, later), D("2024-05-10")) == []


# --- serious-dishonesty list ----------------------------------------------------------------


def _proposed(on: str = "2024-02-20") -> SeriousEntry:
    return SeriousEntry("S1", "proposed", D(on))


def _listed(on: str = "2024-02-29") -> SeriousEntry:
    proposed = _proposed((D(on) - timedelta(days=9)).isoformat())
    return serious_transition(proposed, "confirm", D(on), basis=BASIS, reason="拒绝监督抽查")


def test_confirm_requires_basis_and_reason() -> None:
    with pytest.raises(ListRuleError) as info:
        serious_transition(_proposed(), "confirm", D("2024-03-01"), reason="拒绝检查")
    assert info.value.code == "MissingBasis"
    with pytest.raises(ListRuleError) as info:
        serious_transition(_proposed(), "confirm", D("2024-03-01"), basis=BASIS, reason="  ")
    assert info.value.code == "MissingReason"
    e = serious_transition(_proposed(), "confirm", D("2024-03-01"), basis=BASIS, reason="拒绝检查")
    assert (e.status, e.listed_on, e.basis, e.reason) == (
        "listed",
        D("2024-03-01"),
        BASIS,
        "拒绝检查",
    )
    assert e.expires_on == D("2027-03-01")
    assert e.repair_eligible_on == D("2025-03-01")


def test_reject_proposal() -> None:
    with pytest.raises(ListRuleError) as info:
        serious_transition(_proposed(), "reject", D("2024-03-01"))
    assert info.value.code == "MissingReason"
    e = serious_transition(_proposed(), "reject", D("2024-03-01"), reason="证据不足")
    assert (e.status, e.listed_on, e.decision_note) == ("rejected", None, "证据不足")
    assert measures_for(e) == []
    with pytest.raises(ListRuleError) as info:
        serious_transition(e, "confirm", D("2024-03-02"), basis=BASIS, reason="x")
    assert info.value.code == "IllegalTransition"


def test_repair_too_early_names_the_eligible_date() -> None:
    listed = _listed("2024-02-29")
    with pytest.raises(ListRuleError) as info:
        serious_transition(listed, "apply_repair", D("2025-02-27"))
    assert info.value.code == "RepairTooEarly"
    assert "2025-02-28" in info.value.message
    assert "2025-02-28" in str(info.value)
    applied = serious_transition(listed, "apply_repair", D("2025-02-28"))
    assert (applied.status, applied.repair_applied_on) == ("repair_applied", D("2025-02-28"))


def test_repair_granted_removes_early() -> None:
    applied = serious_transition(_listed("2024-03-01"), "apply_repair", D("2025-04-01"))
    removed = serious_transition(applied, "grant_repair", D("2025-04-20"))
    assert (removed.status, removed.removed_on) == ("removed_repaired", D("2025-04-20"))
    assert serious_due_transitions([removed], D("2030-01-01")) == []
    assert {m.end_on for m in measures_for(removed)} == {D("2025-04-20")}


def test_repair_refused_returns_to_listed_and_may_be_reapplied() -> None:
    applied = serious_transition(_listed("2024-03-01"), "apply_repair", D("2025-04-01"))
    with pytest.raises(ListRuleError) as info:
        serious_transition(applied, "refuse_repair", D("2025-04-10"))
    assert info.value.code == "MissingReason"
    back = serious_transition(applied, "refuse_repair", D("2025-04-10"), reason="未履行处罚决定")
    assert (back.status, back.repair_applied_on, back.decision_note) == (
        "listed",
        None,
        "未履行处罚决定",
    )
    again = serious_transition(back, "apply_repair", D("2025-09-01"))
    assert again.status == "repair_applied"


def test_expiry_at_three_years_including_leap_day() -> None:
    listed = _listed("2024-02-29")
    with pytest.raises(ListRuleError) as info:
        serious_transition(listed, "expire", D("2027-02-27"))
    assert info.value.code == "NotYetExpired"
    assert "2027-02-28" in info.value.message
    assert serious_due_transitions([listed], D("2027-02-27")) == []
    (t,) = serious_due_transitions([listed], D("2027-02-28"))
    assert (t.entry_id, t.action, t.effective_on) == ("S1", "expire", D("2027-02-28"))
    assert "严重违法失信名单" in t.basis
    expired = serious_transition(listed, "expire", D("2027-03-05"))
    assert (expired.status, expired.removed_on) == ("removed_expired", D("2027-02-28"))


def test_expiry_also_ends_a_pending_repair_application() -> None:
    applied = serious_transition(_listed("2024-03-01"), "apply_repair", D("2026-12-01"))
    (t,) = serious_due_transitions([applied], D("2027-03-01"))
    assert t.action == "expire"
    assert "信用修复申请一并终结" in t.reason
    assert serious_transition(applied, "expire", D("2027-03-01")).status == "removed_expired"
    with pytest.raises(ListRuleError) as info:
        serious_transition(applied, "grant_repair", D("2027-03-01"))
    assert info.value.code == "ListingExpired"


def test_apply_repair_after_expiry_is_refused() -> None:
    with pytest.raises(ListRuleError) as info:
        serious_transition(_listed("2024-03-01"), "apply_repair", D("2027-03-01"))
    assert info.value.code == "ListingExpired"


def test_serious_due_transitions_are_idempotent() -> None:
    entries = [
        _listed("2024-02-29"),
        replace(_listed("2023-06-01"), entry_id="S0"),
        replace(_listed("2025-01-01"), entry_id="S2"),
        replace(_proposed(), entry_id="S3"),
    ]
    today = D("2027-03-01")
    due = serious_due_transitions(entries, today)
    assert [(t.entry_id, t.effective_on) for t in due] == [
        ("S0", D("2026-06-01")),
        ("S1", D("2027-02-28")),
    ]
    ids = {t.entry_id for t in due}
    stored = [serious_transition(e, "expire", today) if e.entry_id in ids else e for e in entries]
    assert serious_due_transitions(stored, today) == []
    assert serious_due_transitions(stored, D("2027-12-31")) == []


def test_illegal_and_unknown_actions() -> None:
    listed = _listed()
    for action in ("grant_repair", "refuse_repair", "confirm", "reject"):
        with pytest.raises(ListRuleError) as info:
            serious_transition(listed, action, D("2025-06-01"), basis=BASIS, reason="r")
        assert info.value.code == "IllegalTransition"
    with pytest.raises(ListRuleError) as info:
        serious_transition(listed, "pardon", D("2025-06-01"))
    assert info.value.code == "UnknownAction"
    with pytest.raises(ListRuleError) as info:
        serious_transition(
            _proposed("2024-02-20"), "confirm", D("2024-02-19"), basis=BASIS, reason="r"
        )
    assert info.value.code == "DateBeforeLastChange"


# --- proposals ------------------------------------------------------------------------------


def _e(
    event_id: str,
    kind: str,
    on: str,
    severity: str | None = None,
    domain: str | None = None,
) -> CreditEvent:
    return CreditEvent(event_id, kind, severity, D(on), ref=f"ref-{event_id}", domain=domain)


def test_proposal_rules() -> None:
    today = D("2025-06-30")
    events = [
        _e("p1", "penalty", "2025-01-10", "serious", "product_quality"),
        _e("p2", "penalty", "2025-01-11", "serious", None),  # domain unknown: no proposal
        _e("p3", "penalty", "2025-01-12", "general", "product_quality"),
        _e("r1", "refusal", "2025-02-01"),
        _e("f1", "result_fail", "2024-09-01", "general"),
        _e("f2", "result_fail", "2024-11-01", "minor"),
        _e("x1", "reinspection_fail", "2025-01-20"),
        _e("a1", "abnormal_listed", "2022-06-30"),
        _e("a2", "abnormal_listed", "2021-01-01"),
        _e("a2r", "abnormal_removed", "2021-08-01"),
        _e("a3", "abnormal_listed", "2022-07-01"),  # 3 years only tomorrow
        _e("r2", "refusal", "2025-07-01"),  # after today: ignored
    ]
    got = {(p.rule_id, p.trigger_event_ids) for p in propose_serious(events, today)}
    assert got == {
        (RULE_SERIOUS_QUALITY_PENALTY, ("p1",)),
        (RULE_REFUSAL, ("r1",)),
        (RULE_REINSPECTION_FAIL, ("f2", "x1")),
        (RULE_ABNORMAL_3Y, ("a1",)),
    }
    for p in propose_serious(events, today):
        assert p.proposed_on == today
        assert p.reason
        assert "严重违法失信名单" in p.basis


def test_reinspection_fail_without_prior_failure_is_not_proposed() -> None:
    events = [_e("f1", "result_fail", "2025-03-01"), _e("x1", "reinspection_fail", "2025-02-01")]
    assert propose_serious(events, D("2025-06-30")) == []


def test_handled_events_are_not_proposed_again() -> None:
    events = [_e("r1", "refusal", "2025-02-01"), _e("r2", "refusal", "2025-03-01")]
    got = propose_serious(events, D("2025-06-30"), handled_event_ids={"r1"})
    assert [p.trigger_event_ids for p in got] == [("r2",)]


# --- joint punishment -----------------------------------------------------------------------


def test_joint_measures_for_a_listed_entry() -> None:
    codes = [c for c, _ in JOINT_MEASURES]
    assert len(codes) == len(set(codes))
    names = "".join(n for _, n in JOINT_MEASURES)
    for word in (
        "政府采购",
        "招标投标",
        "融资授信",
        "评优评先",
        "行政许可",
        "国有土地",
        "法定代表人",
    ):
        assert word in names
    listed = _listed("2024-02-29")
    ms = measures_for(listed)
    assert [m.code for m in ms] == codes
    assert {(m.start_on, m.end_on) for m in ms} == {(D("2024-02-29"), D("2027-02-28"))}
    assert measures_for(_proposed()) == []


# --- incentives -----------------------------------------------------------------------------


def test_incentive_eligibility() -> None:
    today = D("2025-06-30")
    clean = [_e("1", "result_pass", "2025-01-01"), _e("2", "result_fail", "2023-06-29")]
    assert incentive_eligible("A", clean, today)
    assert not incentive_eligible("B", clean, today)
    day_730 = (today - timedelta(days=730)).isoformat()
    assert not incentive_eligible("A", [_e("3", "result_fail", day_730)], today)
    day_731 = (today - timedelta(days=731)).isoformat()
    assert incentive_eligible("A", [_e("3", "result_fail", day_731)], today)
    assert not incentive_eligible("A", [_e("4", "abnormal_listed", "2025-06-30")], today)
    assert incentive_eligible("A", [_e("5", "refusal", "2025-07-01")], today)  # future
    assert incentive_eligible("A", [_e("6", "abnormal_removed", "2025-06-01")], today)
    assert not incentive_eligible("A", [_e("7", "penalty", "2025-01-01", "minor")], today, 365)
    assert incentive_eligible("A", [_e("7", "penalty", "2024-01-01", "minor")], today, 365)
