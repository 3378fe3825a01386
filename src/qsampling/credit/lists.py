"""The abnormal-operations list (经营异常名录) and the serious-dishonesty list
(严重违法失信名单): decisions, proposals and time-driven transitions.

The state machines are pure (:mod:`qsampling.core.list_rules`); here each decision is
stored with its record — reason, legal basis, deciding authority, who recorded it and the
dates — audited in the same transaction, mirrored into the credit ledger
(``abnormal_listed`` …) and followed by an incremental rescore of the enterprise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.audit import service as audit
from qsampling.context import SYSTEM, Actor
from qsampling.core.credit_rules import (
    ABNORMAL_LISTED,
    ABNORMAL_REMOVED,
    SERIOUS_LISTED,
    SERIOUS_REMOVED,
)
from qsampling.core.list_rules import (
    BASIS_ABNORMAL,
    BASIS_REPAIR,
    RULE_ABNORMAL_3Y,
    AbnormalEntry,
    ListRuleError,
    SeriousEntry,
    abnormal_due_transitions,
    propose_serious,
    serious_due_transitions,
    serious_transition,
)
from qsampling.core.list_rules import (
    expires_on as serious_expires_on,
)
from qsampling.core.list_rules import (
    repair_eligible_on as serious_repair_eligible_on,
)
from qsampling.credit import service
from qsampling.errors import Conflict, InvalidInput, NotFound
from qsampling.models.credit import AbnormalListEntry, CreditEventRow, SeriousListEntry
from qsampling.models.directory import Unit

#: causes of an abnormal-list entry and their wording (《企业经营异常名录管理暂行办法》第四条)
ABNORMAL_CAUSE_LABELS: dict[str, str] = {
    "unreachable": "通过登记的住所或者经营场所无法联系",
    "annual_report": "未按照规定的期限公示年度报告",
    "disclosure_overdue": "未在责令的期限内公示有关企业信息",
    "false_disclosure": "公示企业信息隐瞒真实情况、弄虚作假",
}
RULE_MANUAL = "MANUAL"
DEFAULT_AUTHORITY = "市场监督管理部门"
_SYSTEM_RULES = "system:rules"

# ListRuleError codes that mean "the request itself is incomplete" (422); every other
# code is a conflict with the entry's state or dates (409).
_INPUT_CODES = frozenset({"MissingBasis", "MissingReason", "UnknownAction"})


def _rule_error(exc: ListRuleError) -> InvalidInput | Conflict:
    if exc.code in _INPUT_CODES:
        return InvalidInput(exc.message, code=exc.code)
    return Conflict(exc.message, code=exc.code)


def _not_future(d: date, what: str, today: date) -> None:
    if d > today:
        raise InvalidInput(
            f"{what} {d.isoformat()} is in the future (today is {today.isoformat()}). "
            "日期不能晚于今天。",
            code="DateInFuture",
        )


async def authority_for(session: AsyncSession, uscc: str) -> str:
    """The enterprise's supervising unit's name, for decisions the system records."""
    name = await session.scalar(
        select(Unit.name)
        .join_from(Unit, service.Enterprise, service.Enterprise.supervising_unit == Unit.code)
        .where(service.Enterprise.uscc == uscc)
    )
    return name or DEFAULT_AUTHORITY


# --- abnormal-operations list -------------------------------------------------------------------


def _abnormal_payload(e: AbnormalListEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "uscc": e.uscc,
        "cause": e.cause,
        "status": e.status,
        "listed_on": e.listed_on,
        "reason": e.reason,
        "basis": e.basis,
        "authority": e.authority,
        "decision_number": e.decision_number,
        "warned_on": e.warned_on,
        "removal_applied_on": e.removal_applied_on,
        "removed_on": e.removed_on,
        "removal_reason": e.removal_reason,
        "removal_basis": e.removal_basis,
        "removal_authority": e.removal_authority,
        "escalated_on": e.escalated_on,
    }


async def get_abnormal(
    session: AsyncSession, entry_id: int, *, lock: bool = False
) -> AbnormalListEntry:
    q = select(AbnormalListEntry).where(AbnormalListEntry.id == entry_id)
    if lock:
        q = q.with_for_update()
    row = await session.scalar(q)
    if row is None:
        raise NotFound(
            f"No abnormal-list entry {entry_id}. 无此经营异常名录记录。", code="EntryNotFound"
        )
    return row


async def list_abnormal(
    session: AsyncSession,
    *,
    uscc: str,
    cause: str,
    listed_on: date,
    reason: str,
    basis: str,
    authority: str,
    decision_number: str | None,
    actor: Actor,
    today: date,
    source: str | None = None,
    source_ref: str | None = None,
) -> AbnormalListEntry | None:
    """List an enterprise (a decision with its record). Returns ``None`` when ``source``
    was already listed (idempotent ingestion). 409 when an entry for the same cause is open.
    """
    await service.enterprise_or_404(session, uscc)
    _not_future(listed_on, "listed_on", today)
    if source is not None:
        seen = await session.scalar(
            select(AbnormalListEntry.id).where(AbnormalListEntry.source == source)
        )
        if seen is not None:
            return None
    open_id = await session.scalar(
        select(AbnormalListEntry.id).where(
            AbnormalListEntry.uscc == uscc,
            AbnormalListEntry.cause == cause,
            AbnormalListEntry.status != "removed",
        )
    )
    if open_id is not None:
        raise Conflict(
            f"Enterprise {uscc} is already on the abnormal-operations list for this cause "
            f"(entry {open_id}). 该企业已因同一事由列入经营异常名录。",
            code="AlreadyListed",
            extra={"entry_id": open_id},
        )
    entry = AbnormalListEntry(
        uscc=uscc,
        cause=cause,
        status="listed",
        listed_on=listed_on,
        reason=reason.strip(),
        basis=basis.strip(),
        authority=authority.strip(),
        decision_number=decision_number,
        decided_by=actor.username,
        source=source,
        source_ref=source_ref,
    )
    session.add(entry)
    await session.flush()
    await service.add_event(
        session,
        uscc=uscc,
        kind=ABNORMAL_LISTED,
        occurred_on=listed_on,
        ref=decision_number or f"经营异常名录#{entry.id}",
        source=f"abnormal:{entry.id}:listed",
    )
    await audit.record(
        session,
        actor=actor,
        action="abnormal.list",
        entity_type="abnormal_list_entry",
        entity_id=entry.id,
        payload=_abnormal_payload(entry),
    )
    await service.rescore(session, uscc=uscc, as_of=today, trigger="abnormal.list")
    await session.refresh(entry)  # server-set timestamps
    return entry


async def apply_abnormal_removal(
    session: AsyncSession,
    *,
    entry_id: int,
    applied_on: date,
    statement: str,
    actor: Actor,
    today: date,
) -> AbnormalListEntry:
    """Record the enterprise's application for removal (it says it has corrected)."""
    e = await get_abnormal(session, entry_id, lock=True)
    _not_future(applied_on, "applied_on", today)
    if e.status not in ("listed", "escalated"):
        raise Conflict(
            f"Entry {entry_id} is {e.status}; only a listed entry can be applied for removal. "
            "该记录当前状态不能申请移出。",
            code="IllegalTransition",
        )
    if applied_on < e.listed_on:
        raise InvalidInput(
            f"applied_on {applied_on} precedes the listing of {e.listed_on}. "
            "申请日期早于列入日期。",
            code="DateBeforeLastChange",
        )
    e.status = "removal_applied"
    e.removal_applied_on = applied_on
    e.removal_application = statement.strip()
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="abnormal.apply_removal",
        entity_type="abnormal_list_entry",
        entity_id=e.id,
        payload={**_abnormal_payload(e), "statement": e.removal_application},
    )
    await session.refresh(e)  # server-set timestamps
    return e


async def decide_abnormal_removal(
    session: AsyncSession,
    *,
    entry_id: int,
    approve: bool,
    decided_on: date,
    reason: str,
    basis: str | None,
    authority: str,
    actor: Actor,
    today: date,
) -> AbnormalListEntry:
    """A supervisor verifies the application: remove (with reason, basis, authority) or
    refuse (the entry stays listed; the reason is kept)."""
    e = await get_abnormal(session, entry_id, lock=True)
    _not_future(decided_on, "decided_on", today)
    if e.status != "removal_applied":
        raise Conflict(
            f"Entry {entry_id} is {e.status}; there is no removal application to decide. "
            "该记录没有待审核的移出申请。",
            code="IllegalTransition",
        )
    assert e.removal_applied_on is not None
    if decided_on < e.removal_applied_on:
        raise InvalidInput(
            f"decided_on {decided_on} precedes the application of {e.removal_applied_on}. "
            "决定日期早于申请日期。",
            code="DateBeforeLastChange",
        )
    if approve:
        e.status = "removed"
        e.removed_on = decided_on
        e.removal_reason = reason.strip()
        e.removal_basis = (basis or BASIS_ABNORMAL).strip()
        e.removal_authority = authority.strip()
        e.removal_decided_by = actor.username
        await session.flush()
        await service.add_event(
            session,
            uscc=e.uscc,
            kind=ABNORMAL_REMOVED,
            occurred_on=decided_on,
            ref=f"经营异常名录#{e.id}移出",
            source=f"abnormal:{e.id}:removed",
        )
    else:
        e.status = "escalated" if e.escalated_on else "listed"
        e.removal_refused_note = reason.strip()
        e.removal_refused_on = decided_on
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="abnormal.remove" if approve else "abnormal.refuse_removal",
        entity_type="abnormal_list_entry",
        entity_id=e.id,
        payload={
            **_abnormal_payload(e),
            "decided_on": decided_on,
            "note": reason,
            "basis": basis,
            "authority": authority,
        },
    )
    if approve:
        await service.rescore(session, uscc=e.uscc, as_of=today, trigger="abnormal.remove")
    await session.refresh(e)  # server-set timestamps
    return e


# --- serious-dishonesty list ---------------------------------------------------------------------


def _serious_payload(e: SeriousListEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "uscc": e.uscc,
        "status": e.status,
        "rule_id": e.rule_id,
        "trigger_event_ids": list(e.trigger_event_ids or []),
        "proposed_on": e.proposed_on,
        "proposal_reason": e.proposal_reason,
        "listed_on": e.listed_on,
        "expires_on": e.expires_on,
        "reason": e.reason,
        "basis": e.basis,
        "authority": e.authority,
        "decision_number": e.decision_number,
        "decided_on": e.decided_on,
        "decision_note": e.decision_note,
        "repair_applied_on": e.repair_applied_on,
        "removed_on": e.removed_on,
        "removal_reason": e.removal_reason,
        "removal_basis": e.removal_basis,
        "removal_authority": e.removal_authority,
    }


def to_core_serious(e: SeriousListEntry) -> SeriousEntry:
    return SeriousEntry(
        entry_id=e.id,
        status=e.status,
        proposed_on=e.proposed_on,
        listed_on=e.listed_on,
        basis=e.basis,
        reason=e.reason,
        repair_applied_on=e.repair_applied_on,
        removed_on=e.removed_on,
        decision_note=e.decision_note,
    )


async def get_serious(
    session: AsyncSession, entry_id: int, *, lock: bool = False
) -> SeriousListEntry:
    q = select(SeriousListEntry).where(SeriousListEntry.id == entry_id)
    if lock:
        q = q.with_for_update()
    row = await session.scalar(q)
    if row is None:
        raise NotFound(
            f"No serious-list entry {entry_id}. 无此严重违法失信名单记录。", code="EntryNotFound"
        )
    return row


async def _new_proposal(
    session: AsyncSession,
    *,
    uscc: str,
    rule_id: str,
    trigger_event_ids: list[int],
    proposed_on: date,
    reason: str,
    basis: str,
    actor: Actor,
    abnormal_entry_id: int | None = None,
) -> SeriousListEntry:
    entry = SeriousListEntry(
        uscc=uscc,
        status="proposed",
        rule_id=rule_id,
        trigger_event_ids=trigger_event_ids,
        proposed_on=proposed_on,
        proposal_reason=reason,
        proposal_basis=basis,
        proposed_by=actor.username,
        abnormal_entry_id=abnormal_entry_id,
    )
    session.add(entry)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="serious.propose",
        entity_type="serious_list_entry",
        entity_id=entry.id,
        payload=_serious_payload(entry),
    )
    await session.refresh(entry)  # server-set timestamps
    return entry


async def propose_manual(
    session: AsyncSession,
    *,
    uscc: str,
    reason: str,
    basis: str,
    proposed_on: date,
    actor: Actor,
    today: date,
) -> SeriousListEntry:
    """A supervisor proposes a listing the rules do not cover; it is decided like any other."""
    await service.enterprise_or_404(session, uscc)
    _not_future(proposed_on, "proposed_on", today)
    return await _new_proposal(
        session,
        uscc=uscc,
        rule_id=RULE_MANUAL,
        trigger_event_ids=[],
        proposed_on=proposed_on,
        reason=reason.strip(),
        basis=basis.strip(),
        actor=actor,
    )


# abnormal-list events are left out of the ledger rules: the 3-year escalation is driven by
# the abnormal list table itself (run_abnormal_due), which is authoritative.
_PROPOSAL_KINDS = ("penalty", "refusal", "reinspection_fail", "result_fail")


async def propose_for(
    session: AsyncSession, *, uscc: str, today: date, actor: Actor = SYSTEM
) -> list[SeriousListEntry]:
    """Run the proposal rules on one enterprise's ledger; store new proposals (a trigger
    already named by an entry of any status is not proposed again)."""
    rows = (
        await session.scalars(
            select(CreditEventRow)
            .where(CreditEventRow.uscc == uscc, CreditEventRow.kind.in_(_PROPOSAL_KINDS))
            .order_by(CreditEventRow.id)
        )
    ).all()
    if not rows:
        return []
    handled_rows = (
        await session.scalars(
            select(SeriousListEntry.trigger_event_ids).where(SeriousListEntry.uscc == uscc)
        )
    ).all()
    handled = {i for ids in handled_rows for i in (ids or [])}
    out = []
    for p in propose_serious([service.to_core(r) for r in rows], today, handled_event_ids=handled):
        out.append(
            await _new_proposal(
                session,
                uscc=uscc,
                rule_id=p.rule_id,
                trigger_event_ids=[int(i) for i in p.trigger_event_ids],
                proposed_on=p.proposed_on,
                reason=p.reason,
                basis=p.basis,
                actor=actor,
            )
        )
    return out


async def decide_serious(
    session: AsyncSession,
    *,
    entry_id: int,
    action: str,
    decided_on: date,
    actor: Actor,
    today: date,
    basis: str | None = None,
    reason: str | None = None,
    authority: str | None = None,
    decision_number: str | None = None,
    statement: str | None = None,
) -> SeriousListEntry:
    """Apply a supervisor's decision (``confirm``, ``reject``, ``apply_repair``,
    ``grant_repair``, ``refuse_repair``) to an entry, with its record."""
    e = await get_serious(session, entry_id, lock=True)
    _not_future(decided_on, "decided_on", today)
    if action in ("confirm", "grant_repair") and not (authority and authority.strip()):
        raise InvalidInput(
            "The deciding authority is required. 须载明作出决定的机关。", code="MissingAuthority"
        )
    if e.repair_decided_on is not None and decided_on < e.repair_decided_on:
        raise Conflict(
            f"Date {decided_on} precedes the last repair decision of {e.repair_decided_on}. "
            "日期早于上一次信用修复决定日期。",
            code="DateBeforeLastChange",
        )
    try:
        new = serious_transition(to_core_serious(e), action, decided_on, basis=basis, reason=reason)
    except ListRuleError as exc:
        raise _rule_error(exc) from exc
    e.status = new.status
    event: tuple[str, date, str] | None = None
    if action == "confirm":
        assert new.listed_on is not None and authority is not None
        e.listed_on = new.listed_on
        e.expires_on = serious_expires_on(new.listed_on)
        e.repair_eligible_on = serious_repair_eligible_on(new.listed_on)
        e.basis, e.reason = new.basis, new.reason
        e.authority = authority.strip()
        e.decision_number = decision_number
        e.decided_by = actor.username
        e.decided_on = decided_on
        event = (SERIOUS_LISTED, new.listed_on, decision_number or f"严重违法失信名单#{e.id}")
    elif action == "reject":
        e.decision_note = new.decision_note
        e.decided_by = actor.username
        e.decided_on = decided_on
        if authority and authority.strip():
            e.authority = authority.strip()
    elif action == "apply_repair":
        e.repair_applied_on = new.repair_applied_on
        e.repair_application = (statement or "").strip() or None
    elif action == "grant_repair":
        assert new.removed_on is not None and authority is not None
        e.removed_on = new.removed_on
        e.removal_reason = (reason or "").strip() or "信用修复申请经审核符合条件，准予提前移出"
        e.removal_basis = (basis or BASIS_REPAIR).strip()
        e.removal_authority = authority.strip()
        e.repair_decided_by = actor.username
        e.repair_decided_on = decided_on
        event = (SERIOUS_REMOVED, new.removed_on, f"严重违法失信名单#{e.id}信用修复")
    elif action == "refuse_repair":
        e.repair_applied_on = None
        e.decision_note = new.decision_note
        e.repair_decided_by = actor.username
        e.repair_decided_on = decided_on
    await session.flush()
    if event is not None:
        kind, on, ref = event
        await service.add_event(
            session,
            uscc=e.uscc,
            kind=kind,
            occurred_on=on,
            ref=ref,
            source=f"serious:{e.id}:{kind}",
        )
    await audit.record(
        session,
        actor=actor,
        action=f"serious.{action}",
        entity_type="serious_list_entry",
        entity_id=e.id,
        payload={**_serious_payload(e), "statement": statement, "authority": authority},
    )
    if event is not None:
        await service.rescore(session, uscc=e.uscc, as_of=today, trigger=f"serious.{action}")
    await session.refresh(e)  # server-set timestamps
    return e


# --- time-driven transitions ---------------------------------------------------------------------


@dataclass
class DueReport:
    warned: int = 0
    escalated: int = 0
    expired: int = 0
    repair_notified: int = 0


async def run_abnormal_due(session: AsyncSession, *, today: date) -> DueReport:
    """Warnings 60 days before 3 years, proposals for the serious list at 3 years."""
    rep = DueReport()
    # a superset of the entries the rules may act on (3 years − 60 days ≥ 1035 days)
    rows = (
        await session.scalars(
            select(AbnormalListEntry)
            .where(
                AbnormalListEntry.status != "removed",
                AbnormalListEntry.escalated_on.is_(None),
                AbnormalListEntry.listed_on <= today - timedelta(days=1030),
            )
            .order_by(AbnormalListEntry.id)
            .with_for_update(skip_locked=True)
        )
    ).all()
    by_id = {r.id: r for r in rows}
    core = [
        AbnormalEntry(entry_id=r.id, listed_on=r.listed_on, status="listed", warned_on=r.warned_on)
        for r in rows
    ]
    for t in abnormal_due_transitions(core, today):
        e = by_id[int(t.entry_id)]
        if t.action == "warn":
            e.warned_on = t.effective_on
            rep.warned += 1
            await session.flush()
            await audit.record(
                session,
                actor=SYSTEM,
                action="abnormal.warn",
                entity_type="abnormal_list_entry",
                entity_id=e.id,
                payload={**_abnormal_payload(e), "reason": t.reason, "basis": t.basis},
            )
            continue
        trigger = await session.scalar(
            select(CreditEventRow.id).where(CreditEventRow.source == f"abnormal:{e.id}:listed")
        )
        e.escalated_on = t.effective_on
        if e.status == "listed":
            e.status = "escalated"
        await session.flush()
        await _new_proposal(
            session,
            uscc=e.uscc,
            rule_id=RULE_ABNORMAL_3Y,
            trigger_event_ids=[int(trigger)] if trigger is not None else [],
            proposed_on=t.effective_on,
            reason=t.reason,
            basis=t.basis,
            actor=SYSTEM,
            abnormal_entry_id=e.id,
        )
        await audit.record(
            session,
            actor=SYSTEM,
            action="abnormal.escalate",
            entity_type="abnormal_list_entry",
            entity_id=e.id,
            payload={**_abnormal_payload(e), "reason": t.reason, "basis": t.basis},
        )
        rep.escalated += 1
    return rep


async def run_serious_due(session: AsyncSession, *, today: date) -> DueReport:
    """Automatic removal at 3 years; the repair-eligibility notice at 1 year."""
    rep = DueReport()
    rows = (
        await session.scalars(
            select(SeriousListEntry)
            .where(
                SeriousListEntry.status.in_(("listed", "repair_applied")),
                SeriousListEntry.expires_on <= today,
            )
            .order_by(SeriousListEntry.id)
            .with_for_update(skip_locked=True)
        )
    ).all()
    by_id = {r.id: r for r in rows}
    for t in serious_due_transitions([to_core_serious(r) for r in rows], today):
        e = by_id[int(t.entry_id)]
        try:
            new = serious_transition(to_core_serious(e), "expire", today)
        except ListRuleError:  # pragma: no cover - the due list only holds expirable entries
            continue
        e.status = new.status
        e.removed_on = new.removed_on
        e.removal_reason = t.reason
        e.removal_basis = t.basis
        e.removal_authority = e.authority
        await session.flush()
        assert new.removed_on is not None
        await service.add_event(
            session,
            uscc=e.uscc,
            kind=SERIOUS_REMOVED,
            occurred_on=new.removed_on,
            ref=f"严重违法失信名单#{e.id}期满移出",
            source=f"serious:{e.id}:{SERIOUS_REMOVED}",
        )
        await audit.record(
            session,
            actor=SYSTEM,
            action="serious.expire",
            entity_type="serious_list_entry",
            entity_id=e.id,
            payload=_serious_payload(e),
        )
        await service.rescore(session, uscc=e.uscc, as_of=today, trigger="serious.expire")
        rep.expired += 1

    notify = (
        await session.scalars(
            select(SeriousListEntry)
            .where(
                SeriousListEntry.status == "listed",
                SeriousListEntry.repair_notified_on.is_(None),
                SeriousListEntry.repair_eligible_on <= today,
            )
            .order_by(SeriousListEntry.id)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for e in notify:
        e.repair_notified_on = today
        await session.flush()
        await audit.record(
            session,
            actor=SYSTEM,
            action="serious.repair_eligible",
            entity_type="serious_list_entry",
            entity_id=e.id,
            payload={
                **_serious_payload(e),
                "repair_eligible_on": e.repair_eligible_on,
                "basis": BASIS_REPAIR,
            },
        )
        rep.repair_notified += 1
    return rep
