"""From the inspections module's ``domain_events`` to the credit ledger.

Only final facts arrive there (DESIGN §3: only final results feed credit). Each domain
event gives zero or more credit events; each credit event's ``source`` names the domain
event (``domain_event:<id>:<kind>``), so consuming an event twice changes nothing. A
category-6 result (unreachable) also lists the enterprise on the abnormal-operations list.

Reading order. ``credit_cursors['domain_events']`` holds the highest id consumed. Ids are
taken at insert, not at commit, so a long transaction can commit an id below one already
consumed; every run therefore re-reads a window of :data:`LOOKBACK_IDS` ids below the
cursor (idempotent, cheap). Call :func:`consume` right after writing events (same
transaction) for immediate effect; ``qsampling jobs run`` calls it too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.context import SYSTEM
from qsampling.core.credit_rules import (
    DOMAIN_PRODUCT_QUALITY,
    FALSE_DISCLOSURE,
    REFUSAL,
    REINSPECTION_FAIL,
    RESULT_FAIL,
    RESULT_PASS,
    SEVERITIES,
    UNREACHABLE,
)
from qsampling.core.list_rules import BASIS_ABNORMAL
from qsampling.credit import lists, service

CURSOR = "domain_events"
LOOKBACK_IDS = 1000
BATCH = 5000

#: domain-event kinds that matter to credit (others are skipped)
CONSUMED_KINDS = (
    "result.final",
    "result.refused",
    "result.unreachable",
    "reinspection.failed",
)


@dataclass(frozen=True)
class Fact:
    kind: str
    severity: str | None
    occurred_on: date


@dataclass
class ConsumeReport:
    domain_events: int = 0
    credit_events: int = 0
    abnormal_listed: int = 0
    proposals: int = 0
    rescored: int = 0
    enterprises: set[str] = field(default_factory=set)


def _date(v: Any) -> date | None:
    if isinstance(v, str) and len(v) >= 10:
        try:
            return date.fromisoformat(v[:10])
        except ValueError:
            return None
    return None


def _codes(payload: dict[str, Any]) -> set[str]:
    for key in ("result_codes", "codes", "categories", "category_codes"):
        v = payload.get(key)
        if isinstance(v, list):
            return {str(c) for c in v}
    return set()


def _severity(payload: dict[str, Any]) -> str | None:
    sev = payload.get("severity")
    return sev if isinstance(sev, str) and sev in SEVERITIES else None


def facts_of(kind: str, payload: dict[str, Any], occurred_at: datetime) -> list[Fact]:
    """The credit facts one domain event carries.

    * ``result.final``: outcome ``fail`` → ``result_fail`` (severity from the payload when
      present, else scored as "general"); ``pass`` / ``no_problem_found`` (category 1) →
      ``result_pass``; category C → ``false_disclosure`` as well. A failed *follow-up*
      (re-inspection) result is left to ``reinspection.failed``, so the failure is counted
      once and the serious-list rule pairs it with the original failed sample.
      Categories 8 and 6 arrive as their own events.
    * ``result.refused`` → ``refusal``; ``result.unreachable`` → ``unreachable`` (and the
      abnormal-list entry); ``reinspection.failed`` → ``reinspection_fail``.

    The date is the inspection's (``inspected_on``) when the payload has it, else the day
    the fact became final (China time).
    """
    on = (
        _date(payload.get("inspected_on"))
        or _date(payload.get("occurred_on"))
        or service.china_today(occurred_at)
    )
    codes = _codes(payload)
    out: list[Fact] = []
    if kind == "result.final":
        outcome = payload.get("outcome")
        conclusion = payload.get("conclusion")
        follow_up = payload.get("plan_type") == "follow_up"
        if outcome == "fail" or (outcome is None and conclusion == "fail"):
            if not follow_up:
                out.append(Fact(RESULT_FAIL, _severity(payload), on))
        elif outcome in ("pass", "no_problem_found") or (outcome is None and conclusion == "pass"):
            out.append(Fact(RESULT_PASS, None, on))
        if "C" in codes:
            out.append(Fact(FALSE_DISCLOSURE, None, on))
    elif kind == "result.refused":
        out.append(Fact(REFUSAL, None, on))
    elif kind == "result.unreachable":
        out.append(Fact(UNREACHABLE, None, on))
    elif kind == "reinspection.failed":
        out.append(Fact(REINSPECTION_FAIL, _severity(payload), on))
    return out


def _ref(row: Any) -> str:
    parts = []
    if row.result_id is not None:
        parts.append(f"result {row.result_id}")
    if row.task_id is not None:
        parts.append(f"task {row.task_id}")
    return " / ".join(parts) or f"domain_event {row.id}"


async def consume(session: AsyncSession, *, now: datetime, limit: int = BATCH) -> ConsumeReport:
    """Consume new ``domain_events`` into the ledger (and the abnormal list), propose
    serious-list entries and rescore every enterprise touched. Idempotent."""
    rep = ConsumeReport()
    exists = await session.scalar(text("SELECT to_regclass('public.domain_events') IS NOT NULL"))
    if not exists:  # pragma: no cover - the inspections migration always creates it
        return rep
    today = service.china_today(now)
    await session.execute(
        text("INSERT INTO credit_cursors (name, last_id) VALUES (:n, 0) ON CONFLICT DO NOTHING"),
        {"n": CURSOR},
    )
    cursor = int(
        await session.scalar(
            text("SELECT last_id FROM credit_cursors WHERE name = :n FOR UPDATE"), {"n": CURSOR}
        )
        or 0
    )
    start = max(0, cursor - LOOKBACK_IDS)
    top = cursor
    touched: set[str] = set()
    while True:
        rows = (
            await session.execute(
                text(
                    "SELECT d.id, d.kind, d.occurred_at, d.uscc, d.task_id, d.result_id, "
                    "d.payload FROM domain_events d "
                    "JOIN enterprises e ON e.uscc = d.uscc "
                    "WHERE d.id > :start AND d.kind = ANY(CAST(:kinds AS text[])) "
                    "ORDER BY d.id LIMIT :lim"
                ),
                {"start": start, "kinds": list(CONSUMED_KINDS), "lim": limit},
            )
        ).all()
        if not rows:
            break
        for row in rows:
            start = row.id
            top = max(top, row.id)
            payload = row.payload if isinstance(row.payload, dict) else {}
            new_any = False
            for fact in facts_of(row.kind, payload, row.occurred_at):
                eid = await service.add_event(
                    session,
                    uscc=row.uscc,
                    kind=fact.kind,
                    severity=fact.severity,
                    occurred_on=fact.occurred_on,
                    ref=_ref(row),
                    domain=DOMAIN_PRODUCT_QUALITY,
                    source=f"domain_event:{row.id}:{fact.kind}",
                )
                if eid is not None:
                    new_any = True
                    rep.credit_events += 1
                if fact.kind == UNREACHABLE and eid is not None:
                    entry = await _list_unreachable(session, row, fact.occurred_on, today)
                    if entry is not None:
                        rep.abnormal_listed += 1
            if new_any:
                rep.domain_events += 1
                touched.add(row.uscc)
        if len(rows) < limit:
            break
    if top != cursor:
        await session.execute(
            text("UPDATE credit_cursors SET last_id = :t, updated_at = now() WHERE name = :n"),
            {"t": top, "n": CURSOR},
        )
    for uscc in sorted(touched):
        rep.proposals += len(await lists.propose_for(session, uscc=uscc, today=today))
        await service.rescore(session, uscc=uscc, as_of=today, trigger="result")
        rep.rescored += 1
    rep.enterprises = touched
    return rep


async def _list_unreachable(session: AsyncSession, row: Any, on: date, today: date) -> Any:
    """Category 6 lists the enterprise (《企业经营异常名录管理暂行办法》第四条第四项) unless an
    entry for that cause is already open."""
    open_id = await session.scalar(
        text(
            "SELECT id FROM abnormal_list_entries WHERE uscc = :u AND cause = 'unreachable' "
            "AND status <> 'removed'"
        ),
        {"u": row.uscc},
    )
    if open_id is not None:
        return None
    return await lists.list_abnormal(
        session,
        uscc=row.uscc,
        cause="unreachable",
        listed_on=min(on, today),
        reason=(f"{on.isoformat()}监督抽查中，通过登记的住所（经营场所）无法联系（结果代码6）"),
        basis=BASIS_ABNORMAL + "第四条第（四）项",
        authority=await lists.authority_for(session, row.uscc),
        decision_number=None,
        actor=SYSTEM,
        today=today,
        source=f"domain_event:{row.id}",
        source_ref=_ref(row),
    )
