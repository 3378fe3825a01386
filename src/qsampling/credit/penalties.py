"""Administrative penalties (行政处罚决定): recorded by a supervisor, they enter the credit
ledger, may propose a serious-list entry (a serious product-quality penalty) and rescore
the enterprise — all in the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.audit import service as audit
from qsampling.context import Actor
from qsampling.core.credit_rules import PENALTY
from qsampling.credit import lists, service
from qsampling.errors import Conflict, InvalidInput
from qsampling.models.credit import Penalty, SeriousListEntry


@dataclass(frozen=True)
class PenaltyRecorded:
    penalty: Penalty
    credit_event_id: int
    proposals: list[SeriousListEntry]
    change: service.ScoreChange


async def create_penalty(
    session: AsyncSession,
    *,
    uscc: str,
    decision_number: str,
    decision_date: date,
    legal_basis: str,
    severity: str,
    amount: Decimal | None,
    domain: str,
    authority: str,
    summary: str,
    actor: Actor,
    today: date,
) -> PenaltyRecorded:
    await service.enterprise_or_404(session, uscc)
    if decision_date > today:
        raise InvalidInput(
            f"decision_date {decision_date} is in the future. 处罚决定日期不能晚于今天。",
            code="DateInFuture",
        )
    decision_number = decision_number.strip()
    dup = await session.scalar(select(Penalty.id).where(Penalty.decision_number == decision_number))
    if dup is not None:
        raise Conflict(
            f"Penalty decision {decision_number!r} is already recorded (id {dup}). "
            "该处罚决定书文号已登记。",
            code="DuplicateDecision",
            extra={"penalty_id": dup},
        )
    p = Penalty(
        uscc=uscc,
        decision_number=decision_number,
        decision_date=decision_date,
        legal_basis=legal_basis.strip(),
        severity=severity,
        amount=amount,
        domain=domain,
        authority=authority.strip(),
        summary=summary.strip(),
        created_by=actor.username,
    )
    session.add(p)
    await session.flush()
    event_id = await service.add_event(
        session,
        uscc=uscc,
        kind=PENALTY,
        severity=severity,
        occurred_on=decision_date,
        ref=decision_number,
        domain=domain,
        source=f"penalty:{p.id}",
    )
    assert event_id is not None  # a new penalty id is a new source
    await audit.record(
        session,
        actor=actor,
        action="penalty.create",
        entity_type="penalty",
        entity_id=p.id,
        payload={
            "uscc": uscc,
            "decision_number": decision_number,
            "decision_date": decision_date,
            "legal_basis": p.legal_basis,
            "severity": severity,
            "amount": str(amount) if amount is not None else None,
            "domain": domain,
            "authority": p.authority,
        },
    )
    proposals = await lists.propose_for(session, uscc=uscc, today=today)
    change = await service.rescore(session, uscc=uscc, as_of=today, trigger="penalty")
    return PenaltyRecorded(p, event_id, proposals, change)


async def list_penalties(
    session: AsyncSession, *, uscc: str | None, after_id: int | None, limit: int
) -> list[Penalty]:
    q = select(Penalty).order_by(Penalty.id).limit(limit)
    if uscc:
        q = q.where(Penalty.uscc == uscc)
    if after_id:
        q = q.where(Penalty.id > after_id)
    return list((await session.scalars(q)).all())
