"""Feeds built from the lists: the joint-punishment list for partner departments
(失信联合惩戒对象名单), the incentive list (守信激励名单) and the public list entries the
disclosure module publishes.

Public output never carries the credit class (DESIGN §3): :func:`public_list_entries` and
the joint-punishment feed give each entry's decision record only — reason, legal basis,
deciding authority, decision number and dates.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.core.credit_rules import NEGATIVE_KINDS
from qsampling.core.list_rules import measures_for
from qsampling.credit.lists import ABNORMAL_CAUSE_LABELS, to_core_serious
from qsampling.errors import InvalidInput
from qsampling.models.credit import AbnormalListEntry, SeriousListEntry
from qsampling.models.directory import Enterprise
from qsampling.responses import split_page

ListName = Literal["abnormal", "serious", "joint-punishment"]
LIST_NAMES: tuple[str, ...] = ("abnormal", "serious", "joint-punishment")

#: serious-list statuses that were ever a listing decision (proposals and rejections are
#: internal and never leave the bureau)
EVER_LISTED = ("listed", "repair_applied", "removed_repaired", "removed_expired")
IN_FORCE = ("listed", "repair_applied")
#: how far a partner's next ``changed_since`` should reach back: a change committed late by
#: a long transaction still carries its start time, so consecutive polls overlap a little.
#: Entries are keyed by ``entry_id``; receiving one twice is harmless.
FEED_OVERLAP = timedelta(minutes=5)

SERIOUS_STATUS_LABELS = {
    "listed": "列入",
    "repair_applied": "列入（信用修复申请审核中）",
    "removed_repaired": "信用修复移出",
    "removed_expired": "期满移出",
}
ABNORMAL_STATUS_LABELS = {
    "listed": "列入",
    "removal_applied": "列入（移出申请审核中）",
    "escalated": "列入（满三年未移出，已提请列入严重违法失信名单）",
    "removed": "移出",
}


@dataclass(frozen=True)
class MeasureOut:
    code: str
    name: str
    start_on: date
    end_on: date


@dataclass(frozen=True)
class FeedEntry:
    entry_id: int
    uscc: str
    enterprise_name: str
    in_force: bool
    status: str
    status_label: str
    listed_on: date
    expires_on: date
    removed_on: date | None
    reason: str
    basis: str
    authority: str
    decision_number: str | None
    removal_reason: str | None
    removal_basis: str | None
    removal_authority: str | None
    measures: list[MeasureOut]
    updated_at: datetime


@dataclass(frozen=True)
class Feed:
    generated_at: datetime
    changed_since: datetime | None
    next_changed_since: datetime
    entries: list[FeedEntry]
    next_cursor: int | None = None


def _feed_entry(e: SeriousListEntry, name: str) -> FeedEntry:
    assert e.listed_on is not None and e.expires_on is not None
    return FeedEntry(
        entry_id=e.id,
        uscc=e.uscc,
        enterprise_name=name,
        in_force=e.status in IN_FORCE,
        status=e.status,
        status_label=SERIOUS_STATUS_LABELS.get(e.status, e.status),
        listed_on=e.listed_on,
        expires_on=e.expires_on,
        removed_on=e.removed_on,
        reason=e.reason or "",
        basis=e.basis or "",
        authority=e.authority or "",
        decision_number=e.decision_number,
        removal_reason=e.removal_reason,
        removal_basis=e.removal_basis,
        removal_authority=e.removal_authority,
        measures=[
            MeasureOut(m.code, m.name, m.start_on, m.end_on)
            for m in measures_for(to_core_serious(e))
        ],
        updated_at=e.updated_at,
    )


async def joint_punishment_feed(
    session: AsyncSession,
    *,
    changed_since: datetime | None,
    after_id: int | None = None,
    limit: int = 5000,
) -> Feed:
    """Without ``changed_since``: every entry in force. With it: every entry ever listed
    that changed since then — new listings, repair applications, removals (repair or
    expiry) — so a partner can mirror the list incrementally."""
    now = await session.scalar(text("SELECT now()"))
    assert isinstance(now, datetime)
    q = (
        select(SeriousListEntry, Enterprise.name)
        .join(Enterprise, Enterprise.uscc == SeriousListEntry.uscc)
        .order_by(SeriousListEntry.id)
        .limit(limit + 1)
    )
    if changed_since is not None:
        if changed_since.tzinfo is None:
            raise InvalidInput(
                "changed_since needs a time zone, e.g. 2026-11-22T08:00:00+08:00. "
                "changed_since 须带时区。",
                code="NaiveDatetime",
            )
        q = q.where(
            SeriousListEntry.status.in_(EVER_LISTED), SeriousListEntry.updated_at >= changed_since
        )
    else:
        q = q.where(SeriousListEntry.status.in_(IN_FORCE))
    if after_id:
        q = q.where(SeriousListEntry.id > after_id)
    rows = (await session.execute(q)).all()
    page, nxt = split_page(rows, limit, lambda r: r[0].id)
    return Feed(
        generated_at=now,
        changed_since=changed_since,
        next_changed_since=now - FEED_OVERLAP,
        entries=[_feed_entry(e, name) for e, name in page],
        next_cursor=nxt,
    )


FEED_CSV_COLUMNS = (
    "entry_id",
    "uscc",
    "enterprise_name",
    "in_force",
    "status",
    "status_label",
    "listed_on",
    "expires_on",
    "removed_on",
    "reason",
    "basis",
    "authority",
    "decision_number",
    "removal_reason",
    "measure_codes",
    "measures",
    "measures_end_on",
    "updated_at",
)


def feed_csv(feed: Feed) -> bytes:
    """UTF-8 with BOM (so Excel in China opens it), one row per entry, measures joined."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(FEED_CSV_COLUMNS)
    for e in feed.entries:
        w.writerow(
            [
                e.entry_id,
                e.uscc,
                e.enterprise_name,
                "true" if e.in_force else "false",
                e.status,
                e.status_label,
                e.listed_on.isoformat(),
                e.expires_on.isoformat(),
                e.removed_on.isoformat() if e.removed_on else "",
                e.reason,
                e.basis,
                e.authority,
                e.decision_number or "",
                e.removal_reason or "",
                "|".join(m.code for m in e.measures),
                "；".join(m.name for m in e.measures),
                e.measures[0].end_on.isoformat() if e.measures else "",
                e.updated_at.isoformat(),
            ]
        )
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")


# --- incentives (守信激励) --------------------------------------------------------------------


@dataclass(frozen=True)
class IncentiveEntry:
    uscc: str
    name: str
    region_code: str
    score: float
    as_of: date


async def incentive_list(
    session: AsyncSession,
    *,
    today: date,
    region_prefix: str | None = None,
    after_uscc: str | None = None,
    limit: int = 100,
    clean_days: int = 730,
) -> list[IncentiveEntry]:
    """Class A enterprises (in operation) with no negative ledger event in the last
    ``clean_days`` days — :func:`qsampling.core.list_rules.incentive_eligible`, set-based."""
    rows = (
        await session.execute(
            text(
                "SELECT cs.uscc, e.name, e.region_code, cs.score, cs.as_of "
                "FROM credit_scores cs JOIN enterprises e ON e.uscc = cs.uscc "
                "WHERE cs.credit_class = 'A' AND e.status IN ('存续','在业') "
                "AND (CAST(:rp AS text) IS NULL OR e.region_code LIKE CAST(:rp AS text) || '%') "
                "AND (CAST(:after AS text) IS NULL OR cs.uscc > CAST(:after AS text)) "
                "AND NOT EXISTS (SELECT 1 FROM credit_events ce WHERE ce.uscc = cs.uscc "
                "  AND ce.kind = ANY(CAST(:neg AS text[])) "
                "  AND ce.occurred_on BETWEEN CAST(:start AS date) AND CAST(:today AS date)) "
                "ORDER BY cs.uscc LIMIT :lim"
            ),
            {
                "rp": region_prefix,
                "after": after_uscc,
                "neg": sorted(NEGATIVE_KINDS),
                "start": today - timedelta(days=clean_days),
                "today": today,
                "lim": limit,
            },
        )
    ).all()
    return [IncentiveEntry(r.uscc, r.name, r.region_code, float(r.score), r.as_of) for r in rows]


# --- public list entries (for the disclosure module) ----------------------------------------------


@dataclass(frozen=True)
class PublicListEntry:
    """One list decision as the public may see it — no credit class, no personal data."""

    list_name: str
    entry_id: int
    uscc: str
    enterprise_name: str
    region_code: str
    in_force: bool
    status: str
    status_label: str
    cause: str | None
    listed_on: date
    expires_on: date | None
    reason: str
    basis: str
    authority: str
    decision_number: str | None
    removed_on: date | None
    removal_reason: str | None
    removal_basis: str | None
    removal_authority: str | None
    measures: list[MeasureOut] = field(default_factory=list)
    updated_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["measures"] = [m.__dict__ for m in self.measures]
        return d


@dataclass(frozen=True)
class PublicPage:
    items: list[PublicListEntry]
    next_cursor: int | None


async def public_list_entries(
    session: AsyncSession,
    *,
    list_name: str,
    uscc: str | None = None,
    region_prefix: str | None = None,
    in_force: bool | None = None,
    changed_since: datetime | None = None,
    cursor: int | None = None,
    limit: int = 100,
) -> PublicPage:
    """List entries for public disclosure, oldest entry id first, keyset-paged.

    ``list_name``: ``"abnormal"`` (经营异常名录), ``"serious"`` (严重违法失信名单) or
    ``"joint-punishment"`` (the serious entries with their joint-punishment measures).
    ``cursor`` is the ``next_cursor`` of the previous page (an entry id). Serious-list
    proposals and rejected proposals are never returned; nor is the credit class.
    """
    if changed_since is not None and changed_since.tzinfo is None:
        raise InvalidInput("changed_since needs a time zone.", code="NaiveDatetime")
    if list_name not in LIST_NAMES:
        raise InvalidInput(
            f"Unknown list {list_name!r}; choose one of {', '.join(LIST_NAMES)}.",
            code="UnknownList",
        )
    limit = max(1, min(limit, 1000))
    items: list[PublicListEntry]
    if list_name == "abnormal":
        q: Any = (
            select(AbnormalListEntry, Enterprise.name, Enterprise.region_code)
            .join(Enterprise, Enterprise.uscc == AbnormalListEntry.uscc)
            .order_by(AbnormalListEntry.id)
            .limit(limit + 1)
        )
        if uscc:
            q = q.where(AbnormalListEntry.uscc == uscc)
        if region_prefix:
            q = q.where(Enterprise.region_code.startswith(region_prefix, autoescape=True))
        if in_force is True:
            q = q.where(AbnormalListEntry.status != "removed")
        elif in_force is False:
            q = q.where(AbnormalListEntry.status == "removed")
        if changed_since is not None:
            q = q.where(AbnormalListEntry.updated_at >= changed_since)
        if cursor:
            q = q.where(AbnormalListEntry.id > cursor)
        rows = (await session.execute(q)).all()
        items = [
            PublicListEntry(
                list_name="abnormal",
                entry_id=a.id,
                uscc=a.uscc,
                enterprise_name=name,
                region_code=region,
                in_force=a.status != "removed",
                status="removed" if a.status == "removed" else "listed",
                # pending applications and escalations are internal: the public sees 列入/移出
                status_label="移出" if a.status == "removed" else "列入",
                cause=a.cause,
                listed_on=a.listed_on,
                expires_on=None,
                reason=a.reason or ABNORMAL_CAUSE_LABELS.get(a.cause, ""),
                basis=a.basis,
                authority=a.authority,
                decision_number=a.decision_number,
                removed_on=a.removed_on,
                removal_reason=a.removal_reason,
                removal_basis=a.removal_basis,
                removal_authority=a.removal_authority,
                updated_at=a.updated_at,
            )
            for a, name, region in rows
        ]
    else:
        q = (
            select(SeriousListEntry, Enterprise.name, Enterprise.region_code)
            .join(Enterprise, Enterprise.uscc == SeriousListEntry.uscc)
            .where(SeriousListEntry.status.in_(EVER_LISTED))
            .order_by(SeriousListEntry.id)
            .limit(limit + 1)
        )
        if uscc:
            q = q.where(SeriousListEntry.uscc == uscc)
        if region_prefix:
            q = q.where(Enterprise.region_code.startswith(region_prefix, autoescape=True))
        if in_force is True:
            q = q.where(SeriousListEntry.status.in_(IN_FORCE))
        elif in_force is False:
            q = q.where(SeriousListEntry.status.not_in(IN_FORCE))
        if changed_since is not None:
            q = q.where(SeriousListEntry.updated_at >= changed_since)
        if cursor:
            q = q.where(SeriousListEntry.id > cursor)
        rows = (await session.execute(q)).all()
        items = []
        for s, name, region in rows:
            f = _feed_entry(s, name)
            items.append(
                PublicListEntry(
                    list_name=list_name,
                    entry_id=s.id,
                    uscc=s.uscc,
                    enterprise_name=name,
                    region_code=region,
                    in_force=f.in_force,
                    status="listed" if f.in_force else "removed",
                    status_label="列入" if f.in_force else f.status_label,
                    cause=None,
                    listed_on=f.listed_on,
                    expires_on=f.expires_on,
                    reason=f.reason,
                    basis=f.basis,
                    authority=f.authority,
                    decision_number=f.decision_number,
                    removed_on=f.removed_on,
                    removal_reason=f.removal_reason,
                    removal_basis=f.removal_basis,
                    removal_authority=f.removal_authority,
                    measures=f.measures if list_name == "joint-punishment" else [],
                    updated_at=s.updated_at,
                )
            )
    page, nxt = split_page(items, limit, lambda i: i.entry_id)
    return PublicPage(items=page, next_cursor=nxt)


def public_field_names() -> Sequence[str]:
    """The fields of a public list entry (a test checks none of them is the class)."""
    return tuple(PublicListEntry.__dataclass_fields__)
