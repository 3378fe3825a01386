"""Enterprise credit-risk classification (企业信用风险分类) from an event ledger.

Pure: plain values in, plain values out. No I/O and no clock — the evaluation date
``as_of`` is always a parameter.

Basis. Classification into A/B/C/D (信用风险低/一般/较高/高) follows the market-supervision
practice of 企业信用风险分类管理, used to set sampling ratios for 双随机、一公开 supervision.
The ledger draws on the information published under 《企业信息公示暂行条例》 (finalized
inspection results, administrative penalties, list entries), on the abnormal-operations list
(《企业经营异常名录管理暂行办法》) and on the serious-dishonesty list
(《市场监督管理严重违法失信名单管理办法》, 2021, 国家市场监督管理总局令第44号).
The numbers below are *defaults* of a versioned :class:`CreditPolicy`; a bureau may change
them, and every assessment records the policy version that produced it.

Scoring model (all defaults configurable):

* An enterprise starts at ``base_score`` = 80. With the default thresholds (A ≥ 90, B ≥ 75,
  C ≥ 60, else D) a new enterprise with no history is class B, as DESIGN §3 requires, and
  sits 5 points above the B/C line, so one minor failure alone does not make it class C.
* Each event in the ledger carries signed points by kind (and, for failed samples and
  administrative penalties, by severity). Positive points (samples with no non-conformity
  found) are capped in total at ``positive_cap``, so volume of passes cannot buy class A.
* Points decay with age: ``points = base_points × 0.5 ** (age_days / half_life_days)``
  (default half-life 365 days). Events older than ``horizon_days`` (default 1095 days ≈ 3
  years, the listing period of the serious list) or dated after ``as_of`` are ignored.
* ``score = clip(base + min(Σ positive, cap) + Σ negative, 0, 100)``, rounded to 2 places;
  the class comes from the rounded score (so a displayed 90.00 is always A).
* Hard rules cap the class: on the serious-dishonesty list → D; on the abnormal-operations
  list → at most C (both "at most": the worse of the score class and the rule class).

Every assessment lists the contributions of each event (explainable: "why this class").
:func:`score_many` is a NumPy version for recomputing many enterprises at once and gives
exactly the same scores and classes as :func:`score_enterprise`; :func:`policy_points_table`
exposes the same point table for set-based (SQL) recomputation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "ABNORMAL_LISTED",
    "ABNORMAL_REMOVED",
    "CLASSES",
    "CLASS_LABELS",
    "DOMAIN_PRODUCT_QUALITY",
    "EVENT_KINDS",
    "FALSE_DISCLOSURE",
    "KIND_LABELS",
    "NEGATIVE_KINDS",
    "PENALTY",
    "REFUSAL",
    "REINSPECTION_FAIL",
    "RESULT_FAIL",
    "RESULT_PASS",
    "SERIOUS_LISTED",
    "SERIOUS_REMOVED",
    "SEVERITIES",
    "SEVERITY_KINDS",
    "SEVERITY_LABELS",
    "UNREACHABLE",
    "Contribution",
    "CreditAssessment",
    "CreditEvent",
    "CreditPolicy",
    "EventId",
    "PolicyError",
    "classify_score",
    "decay_factor",
    "default_policy",
    "event_base_points",
    "policy_from_dict",
    "policy_points_table",
    "policy_to_dict",
    "score_enterprise",
    "score_many",
    "validate_policy",
]

EventId = str | int

# --- event kinds -------------------------------------------------------------------------
RESULT_PASS: Final = "result_pass"  # finalized result, category 1 (未发现问题)
RESULT_FAIL: Final = "result_fail"  # finalized result with a non-conforming sample
REFUSAL: Final = "refusal"  # category 8 不配合检查情节严重
UNREACHABLE: Final = "unreachable"  # category 6 通过登记的住所（经营场所）无法联系
FALSE_DISCLOSURE: Final = "false_disclosure"  # category C 公示信息隐瞒真实情况弄虚作假
REINSPECTION_FAIL: Final = "reinspection_fail"  # 复查不合格 after a failed sample
PENALTY: Final = "penalty"  # administrative penalty (行政处罚)
ABNORMAL_LISTED: Final = "abnormal_listed"
ABNORMAL_REMOVED: Final = "abnormal_removed"
SERIOUS_LISTED: Final = "serious_listed"
SERIOUS_REMOVED: Final = "serious_removed"

EVENT_KINDS: Final[tuple[str, ...]] = (
    RESULT_PASS,
    RESULT_FAIL,
    REFUSAL,
    UNREACHABLE,
    FALSE_DISCLOSURE,
    REINSPECTION_FAIL,
    PENALTY,
    ABNORMAL_LISTED,
    ABNORMAL_REMOVED,
    SERIOUS_LISTED,
    SERIOUS_REMOVED,
)
#: kinds whose points depend on the severity; other kinds ignore the severity.
SEVERITY_KINDS: Final = frozenset({RESULT_FAIL, PENALTY})
#: kinds that may carry positive (or zero) points; every other kind must be ≤ 0.
NON_NEGATIVE_KINDS: Final = frozenset({RESULT_PASS, ABNORMAL_REMOVED, SERIOUS_REMOVED})
#: kinds that count against an enterprise whatever the policy (used by 守信激励 checks).
NEGATIVE_KINDS: Final = frozenset(EVENT_KINDS) - NON_NEGATIVE_KINDS

SEVERITIES: Final[tuple[str, ...]] = ("minor", "general", "serious")
#: a severity-graded kind with no severity recorded is scored as "general".
DEFAULT_SEVERITY: Final = "general"

#: the domain tag of product-quality events (used by the serious-list proposal rules).
DOMAIN_PRODUCT_QUALITY: Final = "product_quality"

CLASSES: Final[tuple[str, ...]] = ("A", "B", "C", "D")
CLASS_LABELS: Final[dict[str, str]] = {
    "A": "信用风险低",
    "B": "信用风险一般",
    "C": "信用风险较高",
    "D": "信用风险高",
}
# Chinese output says "未发现不合格", never "合格" (DESIGN §2).
KIND_LABELS: Final[dict[str, str]] = {
    RESULT_PASS: "监督抽查未发现不合格",
    RESULT_FAIL: "监督抽查不合格",
    REFUSAL: "不配合检查情节严重（结果代码8）",
    UNREACHABLE: "通过登记的住所（经营场所）无法联系（结果代码6）",
    FALSE_DISCLOSURE: "公示信息隐瞒真实情况弄虚作假（结果代码C）",
    REINSPECTION_FAIL: "整改后复查不合格",
    PENALTY: "行政处罚",
    ABNORMAL_LISTED: "列入经营异常名录",
    ABNORMAL_REMOVED: "移出经营异常名录",
    SERIOUS_LISTED: "列入严重违法失信名单",
    SERIOUS_REMOVED: "移出严重违法失信名单",
}
SEVERITY_LABELS: Final[dict[str, str]] = {"minor": "轻微", "general": "一般", "serious": "严重"}

_MAX_HORIZON_DAYS: Final = 3660  # ten years; keeps the decay table small

_DEFAULT_WEIGHTS: Final[dict[str, float | dict[str, float]]] = {
    RESULT_PASS: 5.0,
    RESULT_FAIL: {"minor": -4.0, "general": -8.0, "serious": -15.0},
    REFUSAL: -20.0,
    UNREACHABLE: -10.0,
    FALSE_DISCLOSURE: -15.0,
    REINSPECTION_FAIL: -15.0,
    PENALTY: {"minor": -3.0, "general": -8.0, "serious": -20.0},
    ABNORMAL_LISTED: -10.0,
    ABNORMAL_REMOVED: 0.0,
    SERIOUS_LISTED: -25.0,
    SERIOUS_REMOVED: 0.0,
}

_POLICY_FIELDS: Final[tuple[str, ...]] = (
    "version",
    "base_score",
    "weights",
    "positive_cap",
    "half_life_days",
    "horizon_days",
    "class_a_min",
    "class_b_min",
    "class_c_min",
    "serious_list_class",
    "abnormal_list_max_class",
)


class PolicyError(ValueError):
    """A credit policy that cannot be used; ``errors`` lists every problem found."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors: list[str] = list(errors)
        super().__init__("; ".join(self.errors) or "invalid credit policy")


def _default_weights() -> dict[str, float | Mapping[str, float]]:
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in _DEFAULT_WEIGHTS.items()}


@dataclass(frozen=True)
class CreditPolicy:
    """A versioned scoring policy (stored as JSON via :func:`policy_to_dict`).

    ``weights`` maps every event kind to its points: a number, or for the severity-graded
    kinds (:data:`SEVERITY_KINDS`) a mapping ``{"minor": …, "general": …, "serious": …}``.
    Negative kinds must weigh ≤ 0; passes and list removals ≥ 0.
    ``class_*_min`` are inclusive lower bounds on the rounded score.
    ``serious_list_class`` / ``abnormal_list_max_class`` are the hard-rule caps: the final
    class is the worse of the score class and the cap.

    Constructing a policy validates it (raises :class:`PolicyError`).
    """

    version: int = 1
    base_score: float = 80.0
    weights: Mapping[str, float | Mapping[str, float]] = field(
        default_factory=_default_weights, hash=False
    )
    positive_cap: float = 15.0
    half_life_days: float = 365.0
    horizon_days: int = 1095
    class_a_min: float = 90.0
    class_b_min: float = 75.0
    class_c_min: float = 60.0
    serious_list_class: str = "D"
    abnormal_list_max_class: str = "C"

    def __post_init__(self) -> None:
        errors = validate_policy(policy_to_dict(self))
        if errors:
            raise PolicyError(errors)


def default_policy() -> CreditPolicy:
    """The shipped default policy, version 1 (see the module docstring for the numbers)."""
    return CreditPolicy()


def policy_to_dict(policy: CreditPolicy) -> dict[str, Any]:
    """JSON-able form of ``policy`` (plain dicts, numbers and strings), for storage."""
    weights: Any = policy.weights
    if isinstance(weights, Mapping):
        weights = {kind: (dict(w) if isinstance(w, Mapping) else w) for kind, w in weights.items()}
    return {
        "version": policy.version,
        "base_score": policy.base_score,
        "weights": weights,
        "positive_cap": policy.positive_cap,
        "half_life_days": policy.half_life_days,
        "horizon_days": policy.horizon_days,
        "class_a_min": policy.class_a_min,
        "class_b_min": policy.class_b_min,
        "class_c_min": policy.class_c_min,
        "serious_list_class": policy.serious_list_class,
        "abnormal_list_max_class": policy.abnormal_list_max_class,
    }


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def validate_policy(d: Mapping[str, Any]) -> list[str]:
    """Every problem with a policy record ``d``; an empty list means it is usable.

    Checks: all fields present and no unknown ones; finite numbers of the right type;
    ``version`` ≥ 1; ``0 ≤ base_score ≤ 100``; ``half_life_days`` > 0; ``horizon_days`` an
    integer in 1..3660; ``positive_cap`` ≥ 0; ``100 ≥ class_a_min > class_b_min > class_c_min
    ≥ 0``; hard-rule classes in A–D; weights for every known kind and no unknown kind; severity
    kinds graded exactly minor/general/serious with serious ≤ general ≤ minor; signs
    (negative kinds ≤ 0, passes and removals ≥ 0).
    """
    if not isinstance(d, Mapping):
        return ["policy: must be a JSON object"]
    errors: list[str] = []
    for name in _POLICY_FIELDS:
        if name not in d:
            errors.append(f"{name}: missing field")
    for name in sorted(set(d) - set(_POLICY_FIELDS), key=str):
        errors.append(f"{name}: unknown field")

    version = d.get("version")
    if "version" in d and (not isinstance(version, int) or isinstance(version, bool)):
        errors.append("version: must be an integer")
    elif isinstance(version, int) and version < 1:
        errors.append(f"version: must be ≥ 1 (got {version})")

    numbers: dict[str, float] = {}
    for name in (
        "base_score",
        "positive_cap",
        "half_life_days",
        "class_a_min",
        "class_b_min",
        "class_c_min",
    ):
        if name not in d:
            continue
        v = d[name]
        if not _is_number(v):
            errors.append(f"{name}: must be a finite number (got {v!r})")
        else:
            numbers[name] = float(v)

    if "base_score" in numbers and not 0.0 <= numbers["base_score"] <= 100.0:
        errors.append(f"base_score: must be within [0, 100] (got {numbers['base_score']})")
    if "positive_cap" in numbers and numbers["positive_cap"] < 0:
        errors.append(f"positive_cap: must be ≥ 0 (got {numbers['positive_cap']})")
    if "half_life_days" in numbers and numbers["half_life_days"] <= 0:
        errors.append(f"half_life_days: decay half-life must be > 0 (got {d['half_life_days']})")

    if "horizon_days" in d:
        h = d["horizon_days"]
        if not isinstance(h, int) or isinstance(h, bool):
            errors.append(f"horizon_days: must be an integer number of days (got {h!r})")
        elif not 1 <= h <= _MAX_HORIZON_DAYS:
            errors.append(f"horizon_days: must be within 1..{_MAX_HORIZON_DAYS} (got {h})")

    a, b, c = (numbers.get(k) for k in ("class_a_min", "class_b_min", "class_c_min"))
    if a is not None and a > 100:
        errors.append(f"class_a_min: must be ≤ 100 (got {a})")
    if c is not None and c < 0:
        errors.append(f"class_c_min: must be ≥ 0 (got {c})")
    if a is not None and b is not None and not a > b:
        errors.append(f"thresholds out of order: class_a_min ({a}) must exceed class_b_min ({b})")
    if b is not None and c is not None and not b > c:
        errors.append(f"thresholds out of order: class_b_min ({b}) must exceed class_c_min ({c})")

    for name in ("serious_list_class", "abnormal_list_max_class"):
        if name in d and d[name] not in CLASSES:
            errors.append(f"{name}: must be one of A, B, C, D (got {d[name]!r})")

    if "weights" in d:
        errors.extend(_validate_weights(d["weights"]))
    return errors


def _validate_weights(weights: object) -> list[str]:
    if not isinstance(weights, Mapping):
        return ["weights: must be an object mapping event kinds to points"]
    errors: list[str] = []
    for kind in sorted(set(weights) - set(EVENT_KINDS), key=str):
        errors.append(f"weights.{kind}: unknown event kind")
    for kind in EVENT_KINDS:
        if kind not in weights:
            errors.append(f"weights.{kind}: missing")
            continue
        w = weights[kind]
        sign_ok = (lambda v: v >= 0) if kind in NON_NEGATIVE_KINDS else (lambda v: v <= 0)
        sign_word = "≥ 0" if kind in NON_NEGATIVE_KINDS else "≤ 0 (it counts against credit)"
        if kind in SEVERITY_KINDS:
            if not isinstance(w, Mapping):
                errors.append(f"weights.{kind}: must map minor/general/serious to points")
                continue
            for sev in sorted(set(w) - set(SEVERITIES), key=str):
                errors.append(f"weights.{kind}.{sev}: unknown severity")
            graded: dict[str, float] = {}
            for sev in SEVERITIES:
                if sev not in w:
                    errors.append(f"weights.{kind}.{sev}: missing")
                elif not _is_number(w[sev]):
                    errors.append(f"weights.{kind}.{sev}: must be a finite number")
                elif not sign_ok(w[sev]):
                    errors.append(f"weights.{kind}.{sev}: wrong sign, must be {sign_word}")
                else:
                    graded[sev] = float(w[sev])
            if len(graded) == 3 and not (graded["serious"] <= graded["general"] <= graded["minor"]):
                errors.append(
                    f"weights.{kind}: severity order, serious must weigh at least as much as "
                    "general, and general at least as much as minor"
                )
        elif not _is_number(w):
            errors.append(f"weights.{kind}: must be a finite number")
        elif not sign_ok(w):
            errors.append(f"weights.{kind}: wrong sign, must be {sign_word}")
    return errors


def policy_from_dict(d: Mapping[str, Any]) -> CreditPolicy:
    """Build a policy from its stored JSON form; raises :class:`PolicyError` listing all errors."""
    errors = validate_policy(d)
    if errors:
        raise PolicyError(errors)
    weights: dict[str, float | Mapping[str, float]] = {}
    for kind in EVENT_KINDS:
        w = d["weights"][kind]
        weights[kind] = {s: float(w[s]) for s in SEVERITIES} if kind in SEVERITY_KINDS else float(w)
    return CreditPolicy(
        version=int(d["version"]),
        base_score=float(d["base_score"]),
        weights=weights,
        positive_cap=float(d["positive_cap"]),
        half_life_days=float(d["half_life_days"]),
        horizon_days=int(d["horizon_days"]),
        class_a_min=float(d["class_a_min"]),
        class_b_min=float(d["class_b_min"]),
        class_c_min=float(d["class_c_min"]),
        serious_list_class=str(d["serious_list_class"]),
        abnormal_list_max_class=str(d["abnormal_list_max_class"]),
    )


def event_base_points(policy: CreditPolicy, kind: str, severity: str | None) -> float:
    """Undecayed points of one event. Unknown kind or severity → ``ValueError``.

    Severity-graded kinds without a severity are scored as ``"general"``; other kinds
    ignore the severity.
    """
    if kind not in policy.weights:
        raise ValueError(f"unknown credit event kind {kind!r}")
    if severity is not None and severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r} (expected one of {SEVERITIES})")
    w = policy.weights[kind]
    if isinstance(w, Mapping):
        return float(w[severity or DEFAULT_SEVERITY])
    return float(w)


def policy_points_table(policy: CreditPolicy) -> dict[tuple[str, str | None], float]:
    """The complete ``(kind, severity) → undecayed points`` table, severity ``None`` included.

    Every kind appears with every severity (and ``None``) so a SQL join on
    ``(kind, severity)`` never misses; the numbers are those :func:`score_enterprise` uses.
    Decay (``points × 0.5 ^ (age_days / half_life_days)``), the horizon, the positive cap,
    clipping, rounding (half-to-even on the value × 100) and the hard rules must be applied
    as in :func:`score_enterprise`.
    """
    return {
        (kind, sev): event_base_points(policy, kind, sev)
        for kind in EVENT_KINDS
        for sev in (None, *SEVERITIES)
    }


def decay_factor(age_days: int, half_life_days: float) -> float:
    """``0.5 ** (age_days / half_life_days)``: 1 today, ½ at one half-life."""
    return float(0.5 ** (age_days / half_life_days))


def _decay_table(policy: CreditPolicy) -> npt.NDArray[np.float64]:
    # The vector path looks decay factors up by integer age, computed with the very same
    # expression as the scalar path, so both give bit-identical points.
    return np.array(
        [decay_factor(a, policy.half_life_days) for a in range(policy.horizon_days + 1)],
        dtype=np.float64,
    )


def _round2(x: float) -> float:
    return float(np.round(np.float64(x), 2))


def classify_score(score: float, policy: CreditPolicy) -> str:
    """Class by score alone: A ≥ class_a_min, B ≥ class_b_min, C ≥ class_c_min, else D."""
    if score >= policy.class_a_min:
        return "A"
    if score >= policy.class_b_min:
        return "B"
    if score >= policy.class_c_min:
        return "C"
    return "D"


@dataclass(frozen=True)
class CreditEvent:
    """One ledger entry. ``severity`` only matters for failed samples and penalties;
    ``domain`` (e.g. :data:`DOMAIN_PRODUCT_QUALITY`) is used by the list-proposal rules;
    ``ref`` says where the event comes from (result id, decision number …)."""

    event_id: EventId
    kind: str
    severity: str | None
    occurred_on: date
    ref: str = ""
    domain: str | None = None


@dataclass(frozen=True)
class Contribution:
    """What one event added to the score.

    ``points = base_points × decay_factor × cap_factor``; ``cap_factor`` < 1 only for
    positive events when their decayed total exceeds the policy's ``positive_cap`` (they are
    scaled down proportionally so the contributions still add up to the score).
    """

    event_id: EventId
    kind: str
    severity: str | None
    occurred_on: date
    base_points: float
    decay_factor: float
    points: float
    cap_factor: float = 1.0


@dataclass(frozen=True)
class CreditAssessment:
    """The class of one enterprise on ``as_of`` and why.

    ``raw_score = base_score + Σ contribution.points``; ``score`` is it clipped to [0, 100]
    and rounded to 2 places. ``score_class`` is the class by score; ``credit_class`` the
    final class after hard rules; ``hard_rule`` the rule that fixed it (or ``None``).
    """

    score: float
    credit_class: str
    score_class: str
    hard_rule: str | None
    policy_version: int
    contributions: tuple[Contribution, ...]
    explanation: str
    raw_score: float
    base_score: float
    as_of: date
    ignored_event_ids: tuple[EventId, ...] = ()


def _hard_rule_text_serious(cls: str) -> str:
    return f"列入严重违法失信名单 → {cls}（on the serious-dishonesty list → {cls}）"


def _hard_rule_text_abnormal(cls: str) -> str:
    return f"列入经营异常名录 → 最高{cls}（on the abnormal-operations list → at most {cls}）"


def _apply_hard_rules(
    score_class: str, policy: CreditPolicy, *, on_serious_list: bool, on_abnormal_list: bool
) -> tuple[str, str | None]:
    """Final class and the hard-rule text.

    Each rule caps the class (the worse of score class and rule class). The text is given
    when a rule holds and its class is at least as severe as the score class — i.e. the
    rule alone would justify the final class. The serious list wins over the abnormal list.
    """
    rank = CLASSES.index(score_class)
    rule: str | None = None
    if on_abnormal_list:
        cap = CLASSES.index(policy.abnormal_list_max_class)
        if cap >= rank:
            rank, rule = cap, _hard_rule_text_abnormal(policy.abnormal_list_max_class)
    if on_serious_list:
        cap = CLASSES.index(policy.serious_list_class)
        if cap >= rank:
            rank, rule = cap, _hard_rule_text_serious(policy.serious_list_class)
    return CLASSES[rank], rule


def _fmt_points(p: float) -> str:
    return f"+{p:.2f}" if p >= 0 else f"−{-p:.2f}"


def _explain(
    *,
    score: float,
    raw: float,
    policy: CreditPolicy,
    positive: float,
    negative: float,
    score_class: str,
    final_class: str,
    hard_rule: str | None,
    contributions: Sequence[Contribution],
    capped: bool,
    n_ignored: int,
    top: int = 5,
) -> str:
    parts = [
        f"信用分{score:.2f}（基准分{policy.base_score:.2f}，加分{_fmt_points(positive)}，"
        f"减分{_fmt_points(negative)}），"
        f"按分数为{score_class}类（{CLASS_LABELS[score_class]}）"
    ]
    if capped:
        parts[0] += f"，加分已按上限{policy.positive_cap:.2f}封顶"
    if raw != min(max(raw, 0.0), 100.0):
        parts[0] += "，分数已截至0–100区间"
    text = parts[0] + "。"
    if hard_rule is not None and final_class != score_class:
        text += f"适用硬性规则：{hard_rule}，最终为{final_class}类（{CLASS_LABELS[final_class]}）。"
    elif hard_rule is not None:
        text += f"同时适用硬性规则：{hard_rule}。"
    else:
        text += f"最终为{final_class}类（{CLASS_LABELS[final_class]}）。"
    shown = [c for c in contributions if c.points != 0.0][:top]
    if shown:
        items = []
        for c in shown:
            label = KIND_LABELS.get(c.kind, c.kind)
            if c.kind in SEVERITY_KINDS:
                label += f"（{SEVERITY_LABELS[c.severity or DEFAULT_SEVERITY]}）"
            items.append(f"{c.occurred_on.isoformat()} {label} {_fmt_points(c.points)}")
        text += "主要因素：" + "；".join(items) + "。"
    else:
        text += f"评价期（{policy.horizon_days}天）内无计分记录，按基准分评定。"
    if n_ignored:
        text += f"另有{n_ignored}条记录超出评价期或晚于评价日，未计分。"
    text += f"（评价规则版本{policy.version}）"
    return text


def score_enterprise(
    events: Iterable[CreditEvent],
    *,
    policy: CreditPolicy,
    as_of: date,
    on_serious_list: bool,
    on_abnormal_list: bool,
) -> CreditAssessment:
    """Score one enterprise's ledger on ``as_of`` and classify it (see module docstring).

    ``on_serious_list`` / ``on_abnormal_list`` are the list states on ``as_of`` (the list
    tables are authoritative; list events in the ledger only move the score).
    Raises ``ValueError`` for an unknown event kind or severity.
    """
    in_scope: list[tuple[CreditEvent, float, float, float]] = []  # event, base, decay, pts
    ignored: list[EventId] = []
    for ev in events:
        base_points = event_base_points(policy, ev.kind, ev.severity)
        age = (as_of - ev.occurred_on).days
        if age < 0 or age > policy.horizon_days:
            ignored.append(ev.event_id)
            continue
        decay = decay_factor(age, policy.half_life_days)
        in_scope.append((ev, base_points, decay, base_points * decay))

    # Summed in ledger order, positives and negatives apart, exactly as score_many does.
    positive = 0.0
    negative = 0.0
    for _, _, _, pts in in_scope:
        if pts > 0:
            positive += pts
        elif pts < 0:
            negative += pts
    capped = positive > policy.positive_cap
    positive_eff = min(positive, policy.positive_cap)
    cap_factor = positive_eff / positive if capped else 1.0

    raw = policy.base_score + positive_eff + negative
    score = _round2(min(max(raw, 0.0), 100.0))
    score_class = classify_score(score, policy)
    final_class, hard_rule = _apply_hard_rules(
        score_class, policy, on_serious_list=on_serious_list, on_abnormal_list=on_abnormal_list
    )

    contributions = [
        Contribution(
            event_id=ev.event_id,
            kind=ev.kind,
            severity=ev.severity,
            occurred_on=ev.occurred_on,
            base_points=base_points,
            decay_factor=decay,
            points=pts * cap_factor if pts > 0 else pts,
            cap_factor=cap_factor if pts > 0 else 1.0,
        )
        for ev, base_points, decay, pts in in_scope
    ]
    contributions.sort(key=lambda c: (-abs(c.points), -c.occurred_on.toordinal(), str(c.event_id)))

    explanation = _explain(
        score=score,
        raw=raw,
        policy=policy,
        positive=positive_eff,
        negative=negative,
        score_class=score_class,
        final_class=final_class,
        hard_rule=hard_rule,
        contributions=contributions,
        capped=capped,
        n_ignored=len(ignored),
    )
    return CreditAssessment(
        score=score,
        credit_class=final_class,
        score_class=score_class,
        hard_rule=hard_rule,
        policy_version=policy.version,
        contributions=tuple(contributions),
        explanation=explanation,
        raw_score=raw,
        base_score=policy.base_score,
        as_of=as_of,
        ignored_event_ids=tuple(ignored),
    )


def _as_str_array(values: npt.ArrayLike, *, none_as: str) -> npt.NDArray[np.str_]:
    arr = np.asarray(values)
    if arr.dtype == object:
        arr = arr.copy()
        arr[np.equal(arr, np.array(None, dtype=object))] = none_as
    return arr.astype(str)


def _codes(values: npt.NDArray[np.str_], known: Sequence[str], what: str) -> npt.NDArray[np.intp]:
    codes = np.full(values.shape, -1, dtype=np.intp)
    for i, v in enumerate(known):
        codes[values == v] = i
    if (codes < 0).any():
        unknown = sorted(set(values[codes < 0].tolist()))[:5]
        raise ValueError(f"unknown {what} {', '.join(map(repr, unknown))}")
    return codes


def score_many(
    enterprise_index: npt.ArrayLike,
    kinds: npt.ArrayLike,
    severities: npt.ArrayLike,
    ages_days: npt.ArrayLike,
    *,
    policy: CreditPolicy,
    n_enterprises: int,
    serious_flags: npt.ArrayLike,
    abnormal_flags: npt.ArrayLike,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.str_]]:
    """Vectorised :func:`score_enterprise` for many enterprises at once.

    One row per event: ``enterprise_index[i]`` in ``0..n_enterprises-1``, ``kinds[i]``,
    ``severities[i]`` (``None`` or ``""`` for none) and ``ages_days[i]`` = ``(as_of −
    occurred_on).days`` (integers). ``serious_flags`` / ``abnormal_flags`` are boolean arrays
    of length ``n_enterprises``. Returns ``(scores, classes)``: rounded scores and final
    classes, identical to :func:`score_enterprise` when each enterprise's events appear in the
    same relative order (float sums are order-sensitive). Enterprises with no events score
    ``base_score``.
    """
    idx = np.asarray(enterprise_index)
    if idx.size == 0:
        idx = np.zeros(0, dtype=np.intp)
    ages_in = np.asarray(ages_days)
    kinds_arr = _as_str_array(kinds, none_as="")
    sev_arr = _as_str_array(severities, none_as="")
    n = len(idx)
    if idx.ndim != 1 or kinds_arr.shape != (n,) or sev_arr.shape != (n,) or ages_in.shape != (n,):
        raise ValueError(
            "enterprise_index, kinds, severities and ages_days must be 1-D, same length"
        )
    serious = np.asarray(serious_flags, dtype=bool)
    abnormal = np.asarray(abnormal_flags, dtype=bool)
    if serious.shape != (n_enterprises,) or abnormal.shape != (n_enterprises,):
        raise ValueError("serious_flags and abnormal_flags must have length n_enterprises")
    if n and (
        not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0 or idx.max() >= n_enterprises
    ):
        raise ValueError("enterprise_index must hold integers in 0..n_enterprises-1")
    if np.issubdtype(ages_in.dtype, np.integer):
        ages = ages_in.astype(np.int64)
    elif n == 0:
        ages = np.zeros(0, dtype=np.int64)
    else:
        if not np.all(np.isfinite(ages_in)) or not np.all(np.floor(ages_in) == ages_in):
            raise ValueError("ages_days must be whole days")
        ages = ages_in.astype(np.int64)

    # (kind, severity) → base points through small integer codes: one vectorised string
    # comparison per known value (sorting millions of strings with np.unique is far slower).
    kind_code = _codes(kinds_arr, EVENT_KINDS, "credit event kind")
    sev_values = ("", *SEVERITIES)
    sev_code = _codes(sev_arr, sev_values, "severity")
    table = np.array(
        [[event_base_points(policy, k, s or None) for s in sev_values] for k in EVENT_KINDS],
        dtype=np.float64,
    )
    base_points = table[kind_code, sev_code]

    in_horizon = (ages >= 0) & (ages <= policy.horizon_days)
    decay = _decay_table(policy)[np.where(in_horizon, ages, 0)]
    pts = np.where(in_horizon, base_points * decay, 0.0)

    # bincount adds in row order; adding 0.0 leaves a float unchanged, so masking keeps the
    # per-enterprise sums identical to the scalar loop.
    positive = np.bincount(idx, weights=np.where(pts > 0, pts, 0.0), minlength=n_enterprises)
    negative = np.bincount(idx, weights=np.where(pts < 0, pts, 0.0), minlength=n_enterprises)
    raw = policy.base_score + np.minimum(positive, policy.positive_cap) + negative
    scores = np.round(np.clip(raw, 0.0, 100.0), 2)

    rank = np.where(
        scores >= policy.class_a_min,
        0,
        np.where(scores >= policy.class_b_min, 1, np.where(scores >= policy.class_c_min, 2, 3)),
    )
    rank = np.where(abnormal, np.maximum(rank, CLASSES.index(policy.abnormal_list_max_class)), rank)
    rank = np.where(serious, np.maximum(rank, CLASSES.index(policy.serious_list_class)), rank)
    classes = np.asarray(CLASSES)[rank]
    return scores.astype(np.float64), classes
