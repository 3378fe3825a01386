"""Credit lists as pure state machines: abnormal operations, serious dishonesty, joint
punishment and the 守信激励 (incentive) list.

Pure: no I/O, no clock — ``today`` is always a parameter. Callers store the returned states
and transitions in one transaction.

Legal basis (the numbers are defaults of the bureau's policy, DESIGN §3):

* 经营异常名录 — 《企业信息公示暂行条例》 and 《企业经营异常名录管理暂行办法》: an enterprise
  that cannot be reached at its registered address (result category 6) is listed; it is
  removed on correction; an enterprise still listed after 3 years is transferred to the
  serious-dishonesty list. We warn 60 days before the 3 years are up.
* 严重违法失信名单 — 《市场监督管理严重违法失信名单管理办法》 (2021, 国家市场监督管理总局令第44号):
  listing is proposed by rules and decided by a supervisor with a legal basis and reason; it
  lasts 3 years and ends automatically; after 1 year the enterprise may apply for credit
  repair (信用修复) under 《市场监督管理信用修复管理办法》, which, if granted, removes it early.
* 失信联合惩戒 — the serious list is the feed for partner departments; each listed entry
  carries the joint-punishment measures for the listing period.

Periods in years are calendar years: the anniversary is the same month and day ``n`` years
later; a 29 February start whose anniversary year has no 29 February ends on 28 February
(the month's last day, as the Civil Code's rule on computing periods by years and months
provides when the end month has no corresponding day). Dates a period "ends on" are the day
the transition takes effect: a listing made on 2024-03-01 expires on 2027-03-01 and may be
repaired from 2025-03-01.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Final

from qsampling.core.credit_rules import (
    ABNORMAL_LISTED,
    ABNORMAL_REMOVED,
    DOMAIN_PRODUCT_QUALITY,
    NEGATIVE_KINDS,
    PENALTY,
    REFUSAL,
    REINSPECTION_FAIL,
    RESULT_FAIL,
    CreditEvent,
    EventId,
)

__all__ = [
    "ABNORMAL_ESCALATED",
    "ABNORMAL_LISTED_STATUS",
    "ABNORMAL_REMOVED_STATUS",
    "ABNORMAL_WARN_DAYS",
    "BASIS_ABNORMAL",
    "BASIS_ABNORMAL_TO_SERIOUS",
    "BASIS_REPAIR",
    "BASIS_SERIOUS",
    "JOINT_MEASURES",
    "LISTING_YEARS",
    "REPAIR_AFTER_YEARS",
    "RULE_ABNORMAL_3Y",
    "RULE_REFUSAL",
    "RULE_REINSPECTION_FAIL",
    "RULE_SERIOUS_QUALITY_PENALTY",
    "SERIOUS_ACTIONS",
    "SERIOUS_LISTED",
    "SERIOUS_PROPOSED",
    "SERIOUS_REJECTED",
    "SERIOUS_REMOVED_EXPIRED",
    "SERIOUS_REMOVED_REPAIRED",
    "SERIOUS_REPAIR_APPLIED",
    "AbnormalEntry",
    "ListRuleError",
    "Measure",
    "Proposal",
    "SeriousEntry",
    "Transition",
    "abnormal_due_transitions",
    "abnormal_escalate_on",
    "abnormal_warn_on",
    "add_years",
    "expires_on",
    "incentive_eligible",
    "measures_for",
    "propose_serious",
    "repair_eligible_on",
    "serious_due_transitions",
    "serious_transition",
]

LISTING_YEARS: Final = 3  # serious list: listed 3 years, then removed automatically
REPAIR_AFTER_YEARS: Final = 1  # credit repair may be applied for after 1 year
ABNORMAL_ESCALATE_YEARS: Final = 3  # abnormal list: 3 years still listed → serious list
ABNORMAL_WARN_DAYS: Final = 60  # warn this many days before the 3 years are up

BASIS_ABNORMAL: Final = "《企业信息公示暂行条例》《企业经营异常名录管理暂行办法》"
BASIS_SERIOUS: Final = (
    "《市场监督管理严重违法失信名单管理办法》（2021年，国家市场监督管理总局令第44号）"
)
BASIS_ABNORMAL_TO_SERIOUS: Final = (
    "《企业信息公示暂行条例》《企业经营异常名录管理暂行办法》"
    "关于列入经营异常名录满三年仍未履行相关义务的规定；" + BASIS_SERIOUS
)
BASIS_REPAIR: Final = (
    "《市场监督管理信用修复管理办法》；" + BASIS_SERIOUS + "关于列入满一年可申请信用修复的规定"
)
_BASIS_EXPIRY: Final = BASIS_SERIOUS + "关于列入严重违法失信名单期限为三年、期满移出的规定"

# --- abnormal list statuses ---------------------------------------------------------------
ABNORMAL_LISTED_STATUS: Final = "listed"
ABNORMAL_REMOVED_STATUS: Final = "removed"
ABNORMAL_ESCALATED: Final = "escalated"

# --- serious list statuses ----------------------------------------------------------------
SERIOUS_PROPOSED: Final = "proposed"
SERIOUS_LISTED: Final = "listed"
SERIOUS_REJECTED: Final = "rejected"
SERIOUS_REPAIR_APPLIED: Final = "repair_applied"
SERIOUS_REMOVED_REPAIRED: Final = "removed_repaired"
SERIOUS_REMOVED_EXPIRED: Final = "removed_expired"
_SERIOUS_IN_FORCE: Final = frozenset({SERIOUS_LISTED, SERIOUS_REPAIR_APPLIED})

SERIOUS_ACTIONS: Final[tuple[str, ...]] = (
    "confirm",
    "reject",
    "apply_repair",
    "grant_repair",
    "refuse_repair",
    "expire",
)

# --- proposal rule ids --------------------------------------------------------------------
RULE_SERIOUS_QUALITY_PENALTY: Final = "SD-QUALITY-PENALTY-SERIOUS"
RULE_REFUSAL: Final = "SD-REFUSAL"
RULE_REINSPECTION_FAIL: Final = "SD-REINSPECTION-FAIL"
RULE_ABNORMAL_3Y: Final = "SD-ABNORMAL-3Y"

#: joint-punishment measures (失信联合惩戒措施) applied to every serious-list entry.
JOINT_MEASURES: Final[tuple[tuple[str, str], ...]] = (
    ("government_procurement", "依法限制参加政府采购活动"),
    ("bidding", "依法限制参与工程建设项目招标投标"),
    ("financing", "融资授信从严审核"),
    ("honours", "依法限制参加评优评先、授予荣誉称号"),
    ("market_access", "市场准入、行政许可从严审查"),
    ("state_land", "依法限制参与国有土地使用权出让"),
    ("officers", "依法限制担任法定代表人、负责人或董事、监事、高级管理人员"),
    ("public_funds", "依法限制申请财政资金补助、政策性支持"),
    ("key_supervision", "列为重点监管对象，提高检查比例和频次"),
)


class ListRuleError(ValueError):
    """An illegal list transition. ``code`` is stable (API error code); ``message`` a
    sentence in Chinese with an English gloss, naming the dates involved."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


def add_years(d: date, years: int) -> date:
    """Same month and day ``years`` later; 29 Feb → 28 Feb when that year has no 29 Feb."""
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # only 29 February can fail
        return d.replace(year=d.year + years, day=28)


def expires_on(listed_on: date) -> date:
    """Automatic removal date from the serious list: ``listed_on`` + 3 years."""
    return add_years(listed_on, LISTING_YEARS)


def repair_eligible_on(listed_on: date) -> date:
    """First day credit repair may be applied for: ``listed_on`` + 1 year."""
    return add_years(listed_on, REPAIR_AFTER_YEARS)


def abnormal_escalate_on(listed_on: date) -> date:
    """Day an abnormal-list entry still listed is proposed for the serious list (+3 years)."""
    return add_years(listed_on, ABNORMAL_ESCALATE_YEARS)


def abnormal_warn_on(listed_on: date) -> date:
    """Warning date: 60 days before :func:`abnormal_escalate_on`."""
    return abnormal_escalate_on(listed_on) - timedelta(days=ABNORMAL_WARN_DAYS)


@dataclass(frozen=True)
class Transition:
    """A transition that is due. ``effective_on`` is the date it fell due, which is earlier
    than ``today`` if the job that finds due transitions did not run on that day."""

    entry_id: EventId
    action: str
    effective_on: date
    reason: str
    basis: str


# --- abnormal-operations list ---------------------------------------------------------------


@dataclass(frozen=True)
class AbnormalEntry:
    """An abnormal-operations list entry: status ``listed`` | ``removed`` | ``escalated``
    (proposed for the serious list). ``warned_on`` is set once the 60-day warning went out."""

    entry_id: EventId
    listed_on: date
    status: str = ABNORMAL_LISTED_STATUS
    warned_on: date | None = None


def abnormal_due_transitions(entries: Iterable[AbnormalEntry], today: date) -> list[Transition]:
    """Transitions due on ``today`` for abnormal-list entries.

    * ``warn`` from ``listed_on + 3 years − 60 days`` while still listed and not yet warned;
    * ``propose_serious`` from ``listed_on + 3 years`` while still listed. When that day has
      come, only the proposal is returned (a warning would be moot); its reason says whether
      the warning had been issued.

    Removed and escalated entries produce nothing, so running the job again after the
    caller stored the results (``warned_on`` / ``status="escalated"``) returns nothing new.
    Sorted by effective date, then entry id.
    """
    due: list[Transition] = []
    for e in entries:
        if e.status != ABNORMAL_LISTED_STATUS:
            continue
        escalate = abnormal_escalate_on(e.listed_on)
        warn = abnormal_warn_on(e.listed_on)
        if today >= escalate:
            warned = f"已于{e.warned_on.isoformat()}预警" if e.warned_on else "届满前未发出预警"
            due.append(
                Transition(
                    entry_id=e.entry_id,
                    action="propose_serious",
                    effective_on=escalate,
                    reason=(
                        f"自{e.listed_on.isoformat()}列入经营异常名录，至{escalate.isoformat()}"
                        f"满三年仍未移出（{warned}），建议列入严重违法失信名单"
                    ),
                    basis=BASIS_ABNORMAL_TO_SERIOUS,
                )
            )
        elif today >= warn and e.warned_on is None:
            due.append(
                Transition(
                    entry_id=e.entry_id,
                    action="warn",
                    effective_on=warn,
                    reason=(
                        f"自{e.listed_on.isoformat()}列入经营异常名录，将于{escalate.isoformat()}"
                        f"届满三年；届时仍未履行相关义务、未移出的，将被建议列入严重违法失信名单"
                    ),
                    basis=BASIS_ABNORMAL_TO_SERIOUS,
                )
            )
    due.sort(key=lambda t: (t.effective_on, str(t.entry_id)))
    return due


# --- serious-dishonesty list ------------------------------------------------------------------


@dataclass(frozen=True)
class SeriousEntry:
    """A serious-dishonesty list entry and its life cycle::

        proposed ──confirm──► listed ──apply_repair (≥ 1 year)──► repair_applied
            │                   │  ▲                                  │      │
          reject                │  └──────────refuse_repair───────────┘  grant_repair
            ▼                 expire (at 3 years, also from repair_applied)  ▼
        rejected                ▼                                     removed_repaired
                          removed_expired

    ``basis`` / ``reason`` are the supervisor's at confirmation; ``decision_note`` the
    reason given when rejecting a proposal or refusing a repair.
    """

    entry_id: EventId
    status: str
    proposed_on: date
    listed_on: date | None = None
    basis: str | None = None
    reason: str | None = None
    repair_applied_on: date | None = None
    removed_on: date | None = None
    decision_note: str | None = None

    @property
    def expires_on(self) -> date | None:
        return expires_on(self.listed_on) if self.listed_on else None

    @property
    def repair_eligible_on(self) -> date | None:
        return repair_eligible_on(self.listed_on) if self.listed_on else None


def _latest_date(entry: SeriousEntry) -> date:
    dates = [entry.proposed_on, entry.listed_on, entry.repair_applied_on, entry.removed_on]
    return max(d for d in dates if d is not None)


def _require_text(value: str | None, code: str, what: str) -> str:
    if value is None or not value.strip():
        raise ListRuleError(code, what)
    return value.strip()


def serious_transition(
    entry: SeriousEntry,
    action: str,
    today: date,
    *,
    basis: str | None = None,
    reason: str | None = None,
) -> SeriousEntry:
    """Apply ``action`` to ``entry`` on ``today``; return the new state or raise
    :class:`ListRuleError`.

    Actions and their conditions:

    * ``confirm`` (proposed → listed, ``listed_on = today``): needs ``basis`` and ``reason``;
    * ``reject`` (proposed → rejected): needs ``reason``;
    * ``apply_repair`` (listed → repair_applied): only from ``listed_on + 1 year``
      (``RepairTooEarly`` otherwise) and before expiry;
    * ``grant_repair`` (repair_applied → removed_repaired, ``removed_on = today``);
    * ``refuse_repair`` (repair_applied → listed): needs ``reason``;
    * ``expire`` (listed | repair_applied → removed_expired, ``removed_on = expires_on``):
      only from ``listed_on + 3 years`` (``NotYetExpired`` otherwise).

    Codes: ``UnknownAction``, ``IllegalTransition``, ``DateBeforeLastChange``,
    ``MissingBasis``, ``MissingReason``, ``RepairTooEarly``, ``ListingExpired``,
    ``NotYetExpired``.
    """
    if action not in SERIOUS_ACTIONS:
        raise ListRuleError(
            "UnknownAction",
            f"未知的操作 {action!r}"
            f"（unknown action; expected one of {', '.join(SERIOUS_ACTIONS)}）",
        )
    allowed_from = {
        "confirm": {SERIOUS_PROPOSED},
        "reject": {SERIOUS_PROPOSED},
        "apply_repair": {SERIOUS_LISTED},
        "grant_repair": {SERIOUS_REPAIR_APPLIED},
        "refuse_repair": {SERIOUS_REPAIR_APPLIED},
        "expire": set(_SERIOUS_IN_FORCE),
    }[action]
    if entry.status not in allowed_from:
        raise ListRuleError(
            "IllegalTransition",
            f"状态为“{entry.status}”的名单记录不能执行“{action}”"
            f"（cannot {action} an entry in state {entry.status}）",
        )
    latest = _latest_date(entry)
    if today < latest:
        raise ListRuleError(
            "DateBeforeLastChange",
            f"操作日期 {today.isoformat()} 早于该记录最近一次变更日期 {latest.isoformat()}"
            f"（date precedes the entry's last change）",
        )

    if action == "confirm":
        b = _require_text(
            basis, "MissingBasis", "列入严重违法失信名单须载明法律依据（a legal basis is required）"
        )
        r = _require_text(
            reason, "MissingReason", "列入严重违法失信名单须载明理由（a reason is required）"
        )
        return replace(entry, status=SERIOUS_LISTED, listed_on=today, basis=b, reason=r)
    if action == "reject":
        r = _require_text(
            reason, "MissingReason", "不予列入须载明理由（a reason for rejecting is required）"
        )
        return replace(entry, status=SERIOUS_REJECTED, decision_note=r)

    assert entry.listed_on is not None  # in force ⇒ confirmed
    eligible = repair_eligible_on(entry.listed_on)
    expiry = expires_on(entry.listed_on)
    if action == "expire":
        if today < expiry:
            raise ListRuleError(
                "NotYetExpired",
                f"列入期限三年，{expiry.isoformat()} 届满前不能期满移出"
                f"（the listing of {entry.listed_on.isoformat()} runs until {expiry.isoformat()}）",
            )
        return replace(entry, status=SERIOUS_REMOVED_EXPIRED, removed_on=expiry)
    if today >= expiry:
        raise ListRuleError(
            "ListingExpired",
            f"列入期限已于 {expiry.isoformat()} 届满，应期满移出，不再办理信用修复"
            f"（the listing expired on {expiry.isoformat()}; expire it instead）",
        )
    if action == "apply_repair":
        if today < eligible:
            raise ListRuleError(
                "RepairTooEarly",
                "列入严重违法失信名单满一年方可申请信用修复："
                f"该记录于 {entry.listed_on.isoformat()} 列入，"
                f"最早可于 {eligible.isoformat()} 申请"
                f"（credit repair may be applied for from {eligible.isoformat()}）",
            )
        return replace(entry, status=SERIOUS_REPAIR_APPLIED, repair_applied_on=today)
    if action == "grant_repair":
        return replace(entry, status=SERIOUS_REMOVED_REPAIRED, removed_on=today)
    # refuse_repair
    r = _require_text(
        reason, "MissingReason", "不予信用修复须载明理由（a reason for refusing is required）"
    )
    return replace(entry, status=SERIOUS_LISTED, repair_applied_on=None, decision_note=r)


def serious_due_transitions(entries: Iterable[SeriousEntry], today: date) -> list[Transition]:
    """Automatic removals due on ``today``: every entry in force (listed or with a pending
    repair application) whose 3 years are up gets ``expire`` effective on its expiry date.
    Entries already removed give nothing (idempotent). Sorted by date, then entry id."""
    due: list[Transition] = []
    for e in entries:
        if e.status not in _SERIOUS_IN_FORCE or e.listed_on is None:
            continue
        expiry = expires_on(e.listed_on)
        if today >= expiry:
            pending = "（信用修复申请一并终结）" if e.status == SERIOUS_REPAIR_APPLIED else ""
            due.append(
                Transition(
                    entry_id=e.entry_id,
                    action="expire",
                    effective_on=expiry,
                    reason=(
                        f"自{e.listed_on.isoformat()}列入严重违法失信名单，"
                        f"至{expiry.isoformat()}届满三年，期满移出{pending}"
                    ),
                    basis=_BASIS_EXPIRY,
                )
            )
    due.sort(key=lambda t: (t.effective_on, str(t.entry_id)))
    return due


# --- proposals ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    """A rule's suggestion to list an enterprise; a supervisor decides (``confirm``)."""

    rule_id: str
    trigger_event_ids: tuple[EventId, ...]
    proposed_on: date
    reason: str
    basis: str


def propose_serious(
    events: Sequence[CreditEvent],
    today: date,
    *,
    handled_event_ids: Collection[EventId] = (),
) -> list[Proposal]:
    """Proposals for the serious list from one enterprise's ledger on ``today``.

    Rules (basis: 《市场监督管理严重违法失信名单管理办法》 and the bureau's policy):

    * ``SD-QUALITY-PENALTY-SERIOUS``: an administrative penalty of severity ``serious`` in
      the product-quality domain (``domain == "product_quality"``; penalties without a
      domain are not proposed);
    * ``SD-REFUSAL``: refusing inspection (result category 8, 不配合检查情节严重);
    * ``SD-REINSPECTION-FAIL``: a failed re-inspection after a failed sample (the most
      recent failed sample on or before it is named as the second trigger);
    * ``SD-ABNORMAL-3Y``: an abnormal-list entry not removed within 3 years.

    Events after ``today`` are ignored. A proposal whose triggering events are all in
    ``handled_event_ids`` (already proposed or decided) is not made again.
    """
    handled = set(handled_event_ids)
    past = [e for e in events if e.occurred_on <= today]
    proposals: list[Proposal] = []

    def add(rule_id: str, triggers: tuple[EventId, ...], reason: str, basis: str) -> None:
        if triggers and all(t in handled for t in triggers):
            return
        proposals.append(Proposal(rule_id, triggers, today, reason, basis))

    def ref(e: CreditEvent) -> str:
        return f"（{e.ref}）" if e.ref else ""

    for e in past:
        if e.kind == PENALTY and e.severity == "serious" and e.domain == DOMAIN_PRODUCT_QUALITY:
            add(
                RULE_SERIOUS_QUALITY_PENALTY,
                (e.event_id,),
                f"{e.occurred_on.isoformat()}因产品质量违法行为受到情节严重的行政处罚{ref(e)}",
                BASIS_SERIOUS + "关于产品质量领域严重违法失信行为的规定",
            )
    for e in past:
        if e.kind == REFUSAL:
            add(
                RULE_REFUSAL,
                (e.event_id,),
                f"{e.occurred_on.isoformat()}监督抽查中不配合检查情节严重（结果代码8）{ref(e)}",
                BASIS_SERIOUS + "关于拒绝、阻碍监督检查情节严重的规定",
            )
    for e in past:
        if e.kind != REINSPECTION_FAIL:
            continue
        prior = [f for f in past if f.kind == RESULT_FAIL and f.occurred_on <= e.occurred_on]
        if not prior:
            continue
        failed = max(prior, key=lambda f: f.occurred_on)
        add(
            RULE_REINSPECTION_FAIL,
            (failed.event_id, e.event_id),
            f"{failed.occurred_on.isoformat()}监督抽查不合格{ref(failed)}，"
            f"责令整改后{e.occurred_on.isoformat()}复查仍不合格{ref(e)}",
            BASIS_SERIOUS + "关于产品质量监督抽查不合格、整改后复查仍不合格的规定",
        )
    for e in past:
        if e.kind != ABNORMAL_LISTED:
            continue
        removed = any(r.kind == ABNORMAL_REMOVED and r.occurred_on >= e.occurred_on for r in past)
        escalate = abnormal_escalate_on(e.occurred_on)
        if not removed and today >= escalate:
            add(
                RULE_ABNORMAL_3Y,
                (e.event_id,),
                f"自{e.occurred_on.isoformat()}列入经营异常名录，至{escalate.isoformat()}"
                f"满三年仍未移出{ref(e)}",
                BASIS_ABNORMAL_TO_SERIOUS,
            )
    return proposals


# --- joint punishment -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    """One joint-punishment measure for one entry, in force from ``start_on`` (listing day)
    until ``end_on`` (the day of removal — expiry, or earlier repair — when it is lifted)."""

    code: str
    name: str
    start_on: date
    end_on: date


def measures_for(entry: SeriousEntry) -> list[Measure]:
    """The joint-punishment measures of a serious-list entry (empty unless it was listed).

    ``end_on`` is the expiry date for an entry in force or expired, the removal date for
    one removed by credit repair.
    """
    if entry.listed_on is None or entry.status in (SERIOUS_PROPOSED, SERIOUS_REJECTED):
        return []
    end = expires_on(entry.listed_on)
    if entry.status == SERIOUS_REMOVED_REPAIRED and entry.removed_on is not None:
        end = entry.removed_on
    return [Measure(code, name, entry.listed_on, end) for code, name in JOINT_MEASURES]


# --- incentives (守信激励) ---------------------------------------------------------------------


def incentive_eligible(
    credit_class: str, events: Iterable[CreditEvent], today: date, clean_days: int = 730
) -> bool:
    """Whether an enterprise qualifies for the 守信激励 list on ``today``: class A and no
    negative event (failure, refusal, unreachable, false disclosure, failed re-inspection,
    penalty, list entry) dated within the last ``clean_days`` days (``today − clean_days`` …
    ``today`` inclusive)."""
    if credit_class != "A":
        return False
    window_start = today - timedelta(days=clean_days)
    return not any(
        e.kind in NEGATIVE_KINDS and window_start <= e.occurred_on <= today for e in events
    )
