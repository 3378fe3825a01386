"""Credit classification: scores, decay, thresholds, hard rules, explanations, policies,
and the vectorised path agreeing with the scalar one."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qsampling.core.credit_rules import (
    CLASS_LABELS,
    EVENT_KINDS,
    SEVERITIES,
    CreditEvent,
    CreditPolicy,
    PolicyError,
    default_policy,
    event_base_points,
    policy_from_dict,
    policy_points_table,
    policy_to_dict,
    score_enterprise,
    score_many,
    validate_policy,
)

AS_OF = date(2025, 6, 30)


def ev(
    event_id: str | int,
    kind: str,
    age_days: int,
    severity: str | None = None,
    as_of: date = AS_OF,
) -> CreditEvent:
    return CreditEvent(
        event_id, kind, severity, as_of - timedelta(days=age_days), ref=f"R{event_id}"
    )


def score(events: list[CreditEvent], policy: CreditPolicy | None = None, **flags: bool) -> Any:
    return score_enterprise(
        events,
        policy=policy or default_policy(),
        as_of=AS_OF,
        on_serious_list=flags.get("serious", False),
        on_abnormal_list=flags.get("abnormal", False),
    )


# --- basics --------------------------------------------------------------------------------


def test_new_enterprise_without_history_is_class_b() -> None:
    a = score([])
    assert a.score == 80.0
    assert a.credit_class == "B"
    assert a.score_class == "B"
    assert a.hard_rule is None
    assert a.contributions == ()
    assert a.policy_version == 1
    assert "按基准分评定" in a.explanation


def test_class_labels() -> None:
    assert CLASS_LABELS == {
        "A": "信用风险低",
        "B": "信用风险一般",
        "C": "信用风险较高",
        "D": "信用风险高",
    }


def test_contributions_add_up_to_score_minus_base() -> None:
    events = [
        ev(1, "result_fail", 10, "general"),
        ev(2, "result_pass", 100),
        ev(3, "penalty", 400, "minor"),
        ev(4, "unreachable", 700),
        ev(5, "abnormal_listed", 700),
        ev(6, "abnormal_removed", 600),
    ]
    a = score(events)
    total = sum(c.points for c in a.contributions)
    assert math.isclose(a.raw_score - a.base_score, total, abs_tol=1e-9)
    assert abs(a.score - (a.base_score + total)) <= 0.005 + 1e-9
    assert {c.event_id for c in a.contributions} == {1, 2, 3, 4, 5, 6}


def test_contributions_sorted_by_absolute_points() -> None:
    events = [ev(1, "result_pass", 0), ev(2, "refusal", 0), ev(3, "result_fail", 0, "minor")]
    a = score(events)
    assert [c.event_id for c in a.contributions] == [2, 1, 3]
    mags = [abs(c.points) for c in a.contributions]
    assert mags == sorted(mags, reverse=True)


def test_explanation_names_the_events_and_uses_official_wording() -> None:
    events = [ev(1, "refusal", 3), ev(2, "result_pass", 5)]
    a = score(events)
    assert "不配合检查情节严重" in a.explanation
    assert "未发现不合格" in a.explanation
    # never plain "合格" for a pass (DESIGN §2)
    assert "合格" not in a.explanation.replace("不合格", "")
    assert f"{a.score:.2f}" in a.explanation
    assert a.credit_class in a.explanation


# --- decay and horizon ---------------------------------------------------------------------


def test_decay_halves_at_half_life() -> None:
    p = default_policy()
    for age, factor in [(0, 1.0), (365, 0.5), (730, 0.25)]:
        (c,) = score([ev(1, "refusal", age)]).contributions
        assert c.decay_factor == pytest.approx(factor)
        assert c.points == pytest.approx(event_base_points(p, "refusal", None) * factor)
    half = replace(p, half_life_days=100.0)
    (c,) = score([ev(1, "refusal", 100)], half).contributions
    assert c.decay_factor == pytest.approx(0.5)


def test_horizon_cut_off_and_future_events_ignored() -> None:
    p = default_policy()
    assert p.horizon_days == 1095
    at_edge = score([ev(1, "refusal", 1095)])
    assert [c.event_id for c in at_edge.contributions] == [1]
    beyond = score([ev(1, "refusal", 1096)])
    assert beyond.contributions == ()
    assert beyond.ignored_event_ids == (1,)
    assert beyond.score == 80.0
    future = score([ev(2, "refusal", -1)])
    assert future.contributions == ()
    assert future.ignored_event_ids == (2,)


# --- thresholds ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        (100.0, "A"),
        (90.0, "A"),
        (89.99, "B"),
        (89.996, "A"),  # rounds to 90.00: the displayed score decides
        (75.0, "B"),
        (74.99, "C"),
        (60.0, "C"),
        (59.99, "D"),
        (0.0, "D"),
    ],
)
def test_thresholds_at_boundaries(base: float, expected: str) -> None:
    p = replace(default_policy(), base_score=base)
    a = score([], p)
    assert a.credit_class == expected
    scores, classes = score_many(
        [], [], [], [], policy=p, n_enterprises=1, serious_flags=[False], abnormal_flags=[False]
    )
    assert classes.tolist() == [expected]
    assert scores.tolist() == [a.score]


def test_score_is_clipped_to_0_100() -> None:
    events = [ev(i, "refusal", 0) for i in range(10)]
    a = score(events)
    assert a.score == 0.0
    assert a.raw_score < 0
    assert a.credit_class == "D"
    assert "0–100" in a.explanation
    high = replace(default_policy(), base_score=95.0, positive_cap=50.0)
    assert score([ev(1, "result_pass", 0), ev(2, "result_pass", 0)], high).score == 100.0


def test_positive_points_are_capped_and_scaled_in_contributions() -> None:
    events = [ev(i, "result_pass", 0) for i in range(10)]  # 10 × 5 = 50 > cap 15
    a = score(events)
    assert a.score == 95.0
    assert a.credit_class == "A"
    assert sum(c.points for c in a.contributions) == pytest.approx(15.0)
    assert all(c.cap_factor == pytest.approx(0.3) for c in a.contributions)
    assert "封顶" in a.explanation


def test_severity_grading_and_default_severity() -> None:
    p = default_policy()
    minor = score([ev(1, "result_fail", 0, "minor")]).score
    general = score([ev(1, "result_fail", 0, "general")]).score
    serious = score([ev(1, "result_fail", 0, "serious")]).score
    assert minor > general > serious
    assert score([ev(1, "result_fail", 0, None)]).score == general
    assert event_base_points(p, "refusal", "serious") == event_base_points(p, "refusal", None)


def test_unknown_kind_or_severity_rejected() -> None:
    with pytest.raises(ValueError, match="kind"):
        score([ev(1, "bribery", 0)])
    with pytest.raises(ValueError, match="severity"):
        score([ev(1, "result_fail", 0, "catastrophic")])
    with pytest.raises(ValueError, match="kind"):
        score_many(
            [0],
            ["bribery"],
            [""],
            [0],
            policy=default_policy(),
            n_enterprises=1,
            serious_flags=[False],
            abnormal_flags=[False],
        )


# --- hard rules -----------------------------------------------------------------------------


def test_serious_list_forces_d_whatever_the_score() -> None:
    perfect = replace(default_policy(), base_score=100.0)
    a = score([], perfect, serious=True)
    assert a.score_class == "A"
    assert a.credit_class == "D"
    assert a.hard_rule is not None
    assert "列入严重违法失信名单" in a.hard_rule
    assert "D" in a.hard_rule
    assert "硬性规则" in a.explanation
    # still stated when the score alone already gives D
    low = score([ev(1, "refusal", 0), ev(2, "serious_listed", 0)], serious=True)
    assert low.score_class == "D"
    assert low.hard_rule is not None


def test_abnormal_list_caps_at_c() -> None:
    a = score([ev(1, "result_pass", 0)] * 3, abnormal=True)
    assert a.score_class == "A"
    assert a.credit_class == "C"
    assert a.hard_rule is not None
    assert "经营异常名录" in a.hard_rule
    # does not improve a D
    d = score([ev(1, "refusal", 0), ev(2, "refusal", 1)], abnormal=True)
    assert d.score_class == "D"
    assert d.credit_class == "D"
    assert d.hard_rule is None


def test_serious_list_wins_over_abnormal_list() -> None:
    a = score([], serious=True, abnormal=True)
    assert a.credit_class == "D"
    assert a.hard_rule is not None
    assert "严重违法失信名单" in a.hard_rule


# --- policies -------------------------------------------------------------------------------


def test_policy_round_trips_through_json() -> None:
    p = default_policy()
    d = json.loads(json.dumps(policy_to_dict(p), ensure_ascii=False))
    assert validate_policy(d) == []
    assert policy_from_dict(d) == p


def test_points_table_is_complete_and_matches_policy() -> None:
    p = default_policy()
    table = policy_points_table(p)
    assert set(table) == {(k, s) for k in EVENT_KINDS for s in (None, *SEVERITIES)}
    assert table[("result_fail", None)] == table[("result_fail", "general")]
    assert table[("refusal", "minor")] == table[("refusal", None)]
    assert table[("result_pass", None)] > 0
    assert all(v <= 0 for (k, _), v in table.items() if k == "penalty")


def _policy_dict(**changes: Any) -> dict[str, Any]:
    d = policy_to_dict(default_policy())
    d.update(changes)
    return d


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"class_a_min": 70.0}, "thresholds out of order"),
        ({"class_b_min": 50.0}, "thresholds out of order"),
        ({"half_life_days": -30.0}, "half_life_days"),
        ({"half_life_days": 0}, "half_life_days"),
        ({"horizon_days": -1}, "horizon_days"),
        ({"horizon_days": 10.5}, "horizon_days"),
        ({"base_score": 120.0}, "base_score"),
        ({"base_score": float("nan")}, "base_score"),
        ({"positive_cap": -1.0}, "positive_cap"),
        ({"version": 0}, "version"),
        ({"version": True}, "version"),
        ({"serious_list_class": "E"}, "serious_list_class"),
        ({"colour": "blue"}, "colour: unknown field"),
    ],
)
def test_policy_validation_errors(changes: dict[str, Any], needle: str) -> None:
    d = _policy_dict(**changes)
    errors = validate_policy(d)
    assert any(needle in e for e in errors), errors
    with pytest.raises(PolicyError) as info:
        policy_from_dict(d)
    assert info.value.errors == errors


def test_policy_validation_weights() -> None:
    d = _policy_dict()
    d["weights"]["refusal"] = 5.0  # a refusal cannot earn points
    d["weights"]["result_pass"] = -1.0
    d["weights"]["bribery"] = -50.0
    d["weights"]["penalty"] = {"minor": -30.0, "general": -8.0, "serious": -20.0}
    d["weights"]["result_fail"] = {"minor": -4.0, "general": -8.0, "fatal": -9.0}
    del d["weights"]["unreachable"]
    errors = validate_policy(d)
    assert "weights.refusal: wrong sign, must be ≤ 0 (it counts against credit)" in errors
    assert "weights.result_pass: wrong sign, must be ≥ 0" in errors
    assert "weights.bribery: unknown event kind" in errors
    assert any(e.startswith("weights.penalty: severity order") for e in errors)
    assert "weights.result_fail.fatal: unknown severity" in errors
    assert "weights.result_fail.serious: missing" in errors
    assert "weights.unreachable: missing" in errors


def test_policy_validation_missing_fields_and_non_object() -> None:
    d = _policy_dict()
    del d["class_c_min"]
    del d["weights"]
    errors = validate_policy(d)
    assert "class_c_min: missing field" in errors
    assert "weights: missing field" in errors
    assert validate_policy("nope") == ["policy: must be a JSON object"]  # type: ignore[arg-type]


def test_constructing_an_invalid_policy_raises() -> None:
    with pytest.raises(PolicyError, match="thresholds out of order"):
        CreditPolicy(class_a_min=70.0)
    with pytest.raises(PolicyError, match="half_life_days"):
        replace(default_policy(), half_life_days=-1.0)


# --- vectorised path ------------------------------------------------------------------------

_event_st = st.tuples(
    st.integers(min_value=0, max_value=5),  # enterprise
    st.sampled_from(EVENT_KINDS),
    st.sampled_from([None, *SEVERITIES]),
    st.integers(min_value=-30, max_value=1200),  # age in days
)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(_event_st, max_size=40),
    serious=st.lists(st.booleans(), min_size=6, max_size=6),
    abnormal=st.lists(st.booleans(), min_size=6, max_size=6),
    half_life=st.floats(min_value=1.0, max_value=2000.0),
    base=st.floats(min_value=0.0, max_value=100.0),
    horizon=st.integers(min_value=1, max_value=1500),
)
def test_score_many_equals_score_enterprise(
    rows: list[tuple[int, str, str | None, int]],
    serious: list[bool],
    abnormal: list[bool],
    half_life: float,
    base: float,
    horizon: int,
) -> None:
    p = replace(default_policy(), half_life_days=half_life, base_score=base, horizon_days=horizon)
    n = 6
    scores, classes = score_many(
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=object),
        np.array([r[2] for r in rows], dtype=object),
        np.array([r[3] for r in rows], dtype=np.int64),
        policy=p,
        n_enterprises=n,
        serious_flags=np.array(serious),
        abnormal_flags=np.array(abnormal),
    )
    for e in range(n):
        events = [ev(i, k, age, s) for i, (ent, k, s, age) in enumerate(rows) if ent == e]
        a = score_enterprise(
            events, policy=p, as_of=AS_OF, on_serious_list=serious[e], on_abnormal_list=abnormal[e]
        )
        assert scores[e] == a.score
        assert classes[e] == a.credit_class
        # explainability holds for any ledger
        assert math.isclose(
            a.raw_score - a.base_score, sum(c.points for c in a.contributions), abs_tol=1e-9
        )


def test_score_many_on_a_larger_random_ledger() -> None:
    rng = np.random.default_rng(20250630)
    n_ent, n_ev = 500, 4000
    idx = rng.integers(0, n_ent, n_ev)
    kinds = rng.choice(np.array(EVENT_KINDS), n_ev)
    sevs = rng.choice(np.array(["", *SEVERITIES]), n_ev)
    ages = rng.integers(-10, 1300, n_ev)
    serious = rng.random(n_ent) < 0.05
    abnormal = rng.random(n_ent) < 0.1
    p = default_policy()
    scores, classes = score_many(
        idx,
        kinds,
        sevs,
        ages,
        policy=p,
        n_enterprises=n_ent,
        serious_flags=serious,
        abnormal_flags=abnormal,
    )
    by_ent: dict[int, list[CreditEvent]] = {}
    for i in range(n_ev):
        by_ent.setdefault(int(idx[i]), []).append(
            ev(i, str(kinds[i]), int(ages[i]), str(sevs[i]) or None)
        )
    for e in range(n_ent):
        a = score_enterprise(
            by_ent.get(e, []),
            policy=p,
            as_of=AS_OF,
            on_serious_list=bool(serious[e]),
            on_abnormal_list=bool(abnormal[e]),
        )
        assert (scores[e], classes[e]) == (a.score, a.credit_class)
    assert set(classes.tolist()) <= {"A", "B", "C", "D"}


def test_score_many_input_checks() -> None:
    p = default_policy()
    common: dict[str, Any] = {"policy": p, "n_enterprises": 1}
    flags: dict[str, Any] = {"serious_flags": [False], "abnormal_flags": [False]}
    with pytest.raises(ValueError, match="same length"):
        score_many([0, 0], ["refusal"], [""], [1], **common, **flags)
    with pytest.raises(ValueError, match="n_enterprises"):
        score_many([1], ["refusal"], [""], [1], **common, **flags)
    with pytest.raises(ValueError, match="whole days"):
        score_many([0], ["refusal"], [""], [1.5], **common, **flags)
    with pytest.raises(ValueError, match="length n_enterprises"):
        score_many([0], ["refusal"], [""], [1], **common, serious_flags=[], abnormal_flags=[False])
    scores, classes = score_many([0], ["refusal"], [""], [365.0], **common, **flags)
    assert scores.tolist() == [70.0]
    assert classes.tolist() == ["C"]


# --- purity ---------------------------------------------------------------------------------


def test_core_modules_import_no_web_or_database_stack() -> None:
    code = (
        "import sys, qsampling.core.credit_rules, qsampling.core.list_rules\n"
        "bad = [m for m in ('fastapi', 'sqlalchemy', 'asyncpg', 'starlette') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
