"""Credit: versioned policies, penalties, the event ledger, scores and class history, the
abnormal-operations and serious-dishonesty lists (DESIGN §3 Credit).

Every list row carries its decision record (reason, legal basis, deciding authority, who
recorded it, dates); those columns are what the public disclosure shows later. The credit
class itself is internal and lives only in ``credit_scores`` / ``credit_class_history`` and
``enterprises.credit_class``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from qsampling.models.base import Base, TimestampMixin

CREDIT_EVENT_KINDS = (
    "result_pass",
    "result_fail",
    "refusal",
    "unreachable",
    "false_disclosure",
    "reinspection_fail",
    "penalty",
    "abnormal_listed",
    "abnormal_removed",
    "serious_listed",
    "serious_removed",
)
SEVERITIES = ("minor", "general", "serious")
PENALTY_DOMAINS = ("product_quality", "food_safety", "pricing", "advertising", "licensing", "other")
#: 《企业经营异常名录管理暂行办法》第四条: the four causes of an abnormal-list entry
ABNORMAL_CAUSES = ("unreachable", "annual_report", "disclosure_overdue", "false_disclosure")
ABNORMAL_STATUSES = ("listed", "removal_applied", "escalated", "removed")
SERIOUS_STATUSES = (
    "proposed",
    "listed",
    "rejected",
    "repair_applied",
    "removed_repaired",
    "removed_expired",
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({','.join(repr(v) for v in values)})"


class CreditPolicy(Base):
    """A published credit policy version. Exactly one is active (partial unique index)."""

    __tablename__ = "credit_policies"
    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        Index("uq_credit_policies_active", "active", unique=True, postgresql_where=text("active")),
    )

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    active: Mapped[bool] = mapped_column(Boolean, server_default="false")
    note: Mapped[str | None] = mapped_column(Text)
    published_by: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class Penalty(Base):
    """An administrative penalty decision (行政处罚决定)."""

    __tablename__ = "penalties"
    __table_args__ = (
        CheckConstraint(_in("severity", SEVERITIES), name="severity"),
        CheckConstraint(_in("domain", PENALTY_DOMAINS), name="domain"),
        CheckConstraint("amount IS NULL OR amount >= 0", name="amount_nonneg"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    uscc: Mapped[str] = mapped_column(ForeignKey("enterprises.uscc"), index=True)
    decision_number: Mapped[str] = mapped_column(String(64), unique=True)
    decision_date: Mapped[date] = mapped_column(Date)
    legal_basis: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(8))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    domain: Mapped[str] = mapped_column(String(32))
    authority: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CreditEventRow(Base):
    """One ledger entry. ``source`` is an idempotency key (``domain_event:17``,
    ``penalty:3``, ``abnormal:5:listed`` …): the same fact is never counted twice."""

    __tablename__ = "credit_events"
    __table_args__ = (
        CheckConstraint(_in("kind", CREDIT_EVENT_KINDS), name="kind"),
        CheckConstraint("severity IS NULL OR " + _in("severity", SEVERITIES), name="severity"),
        # covering: the full recompute streams the ledger in uscc order from this index
        # alone (index-only scan), and an incremental update reads one enterprise's events
        Index(
            "ix_credit_events_uscc_occurred",
            "uscc",
            "occurred_on",
            postgresql_include=["kind", "severity"],
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    uscc: Mapped[str] = mapped_column(ForeignKey("enterprises.uscc"))
    kind: Mapped[str] = mapped_column(String(24))
    severity: Mapped[str | None] = mapped_column(String(8))
    occurred_on: Mapped[date] = mapped_column(Date)
    ref: Mapped[str] = mapped_column(String(200), server_default="")
    domain: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str | None] = mapped_column(String(80), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CreditScore(Base):
    """The current class of an enterprise and the policy version and date that made it.

    ``hard_rule`` is ``serious_list`` / ``abnormal_list`` when a list rule fixed the class.
    Derived data, written only by this module from ``enterprises`` and ``credit_policies``:
    no foreign keys, because checking a million of them doubled a full recompute.
    """

    __tablename__ = "credit_scores"
    __table_args__ = (
        CheckConstraint("credit_class IN ('A','B','C','D')", name="credit_class"),
        CheckConstraint("score_class IN ('A','B','C','D')", name="score_class"),
        CheckConstraint("score >= 0 AND score <= 100", name="score_range"),
    )

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    score: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    credit_class: Mapped[str] = mapped_column(String(1))
    score_class: Mapped[str] = mapped_column(String(1))
    hard_rule: Mapped[str | None] = mapped_column(String(16))
    policy_version: Mapped[int] = mapped_column(Integer)
    as_of: Mapped[date] = mapped_column(Date)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CreditClassHistory(Base):
    """A change of the class in force. ``previous_class`` is the class before — before the
    first assessment, the directory's own value (imported, or the default B). Derived data
    like ``credit_scores`` (no foreign keys, for the set-based recompute)."""

    __tablename__ = "credit_class_history"
    __table_args__ = (
        CheckConstraint("credit_class IN ('A','B','C','D')", name="credit_class"),
        Index("ix_credit_class_history_uscc_id", "uscc", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18))
    credit_class: Mapped[str] = mapped_column(String(1))
    previous_class: Mapped[str | None] = mapped_column(String(1))
    score: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    policy_version: Mapped[int] = mapped_column(Integer)
    as_of: Mapped[date] = mapped_column(Date)
    trigger: Mapped[str] = mapped_column(String(32))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CreditRecompute(Base):
    """One full recomputation (``qsampling credit recompute`` or the daily job)."""

    __tablename__ = "credit_recomputes"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    as_of: Mapped[date] = mapped_column(Date, index=True)
    policy_version: Mapped[int] = mapped_column(ForeignKey("credit_policies.version"))
    enterprises: Mapped[int] = mapped_column(BigInteger)
    changed: Mapped[int] = mapped_column(BigInteger)
    seconds: Mapped[float] = mapped_column(Float)
    started_by: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CreditCursor(Base):
    """Where a consumer stopped in an append-only stream (``domain_events``)."""

    __tablename__ = "credit_cursors"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AbnormalListEntry(TimestampMixin, Base):
    """经营异常名录: a listing decision and its removal.

    ``listed`` → (enterprise applies) ``removal_applied`` → verified: ``removed`` (or back to
    ``listed``); still listed at 3 years → ``escalated`` (proposed for the serious list; it
    stays on this list until removed). ``warned_on`` is set when the 60-day warning went out.
    """

    __tablename__ = "abnormal_list_entries"
    __table_args__ = (
        CheckConstraint(_in("cause", ABNORMAL_CAUSES), name="cause"),
        CheckConstraint(_in("status", ABNORMAL_STATUSES), name="status"),
        CheckConstraint("removed_on IS NULL OR removed_on >= listed_on", name="removed_after"),
        Index(
            "uq_abnormal_list_entries_open",
            "uscc",
            "cause",
            unique=True,
            postgresql_where=text("status <> 'removed'"),
        ),
        Index("ix_abnormal_list_entries_updated_at", "updated_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    uscc: Mapped[str] = mapped_column(ForeignKey("enterprises.uscc"), index=True)
    cause: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16), index=True)
    listed_on: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    basis: Mapped[str] = mapped_column(Text)
    authority: Mapped[str] = mapped_column(String(200))
    decision_number: Mapped[str | None] = mapped_column(String(64))
    decided_by: Mapped[str] = mapped_column(String(64))
    source: Mapped[str | None] = mapped_column(String(80), unique=True)
    source_ref: Mapped[str | None] = mapped_column(String(200))
    warned_on: Mapped[date | None] = mapped_column(Date)
    removal_applied_on: Mapped[date | None] = mapped_column(Date)
    removal_application: Mapped[str | None] = mapped_column(Text)
    removal_refused_note: Mapped[str | None] = mapped_column(Text)
    removal_refused_on: Mapped[date | None] = mapped_column(Date)
    removed_on: Mapped[date | None] = mapped_column(Date)
    removal_reason: Mapped[str | None] = mapped_column(Text)
    removal_basis: Mapped[str | None] = mapped_column(Text)
    removal_authority: Mapped[str | None] = mapped_column(String(200))
    removal_decided_by: Mapped[str | None] = mapped_column(String(64))
    escalated_on: Mapped[date | None] = mapped_column(Date)


class SeriousListEntry(TimestampMixin, Base):
    """严重违法失信名单: a rule's (or a supervisor's) proposal and its life cycle
    (:mod:`qsampling.core.list_rules`). ``trigger_event_ids`` are ``credit_events`` ids."""

    __tablename__ = "serious_list_entries"
    __table_args__ = (
        CheckConstraint(_in("status", SERIOUS_STATUSES), name="status"),
        Index("ix_serious_list_entries_updated_at", "updated_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    uscc: Mapped[str] = mapped_column(ForeignKey("enterprises.uscc"), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    rule_id: Mapped[str] = mapped_column(String(40))
    trigger_event_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default="{}")
    proposed_on: Mapped[date] = mapped_column(Date)
    proposal_reason: Mapped[str] = mapped_column(Text)
    proposal_basis: Mapped[str] = mapped_column(Text)
    proposed_by: Mapped[str] = mapped_column(String(64))
    listed_on: Mapped[date | None] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date)
    repair_eligible_on: Mapped[date | None] = mapped_column(Date)
    # the day the job told the enterprise it may now apply for credit repair
    repair_notified_on: Mapped[date | None] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(Text)
    basis: Mapped[str | None] = mapped_column(Text)
    authority: Mapped[str | None] = mapped_column(String(200))
    decision_number: Mapped[str | None] = mapped_column(String(64))
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_on: Mapped[date | None] = mapped_column(Date)
    decision_note: Mapped[str | None] = mapped_column(Text)
    repair_applied_on: Mapped[date | None] = mapped_column(Date)
    repair_application: Mapped[str | None] = mapped_column(Text)
    repair_decided_by: Mapped[str | None] = mapped_column(String(64))
    repair_decided_on: Mapped[date | None] = mapped_column(Date)
    removed_on: Mapped[date | None] = mapped_column(Date)
    removal_reason: Mapped[str | None] = mapped_column(Text)
    removal_basis: Mapped[str | None] = mapped_column(Text)
    removal_authority: Mapped[str | None] = mapped_column(String(200))
    # set when the proposal comes from an abnormal-list entry still listed at 3 years
    abnormal_entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("abnormal_list_entries.id"), index=True
    )
