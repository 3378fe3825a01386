"""Plans, commitments (QSDRAW-1 step 1), draws and the tasks they create."""

from __future__ import annotations

from datetime import date, datetime
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
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from qsampling.models.base import Base

PLAN_TYPES = ("routine", "follow_up", "emergency")
PLAN_STATUSES = ("draft", "committed", "drawn", "cancelled")


class Plan(Base):
    __tablename__ = "plans"
    __table_args__ = (
        CheckConstraint("plan_type IN ('routine','follow_up','emergency')", name="plan_type"),
        CheckConstraint("status IN ('draft','committed','drawn','cancelled')", name="status"),
        CheckConstraint("team_size >= 2", name="team_size_min_two"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    check_item_code: Mapped[str] = mapped_column(ForeignKey("check_items.code"), index=True)
    plan_type: Mapped[str] = mapped_column(String(16), server_default="routine")
    status: Mapped[str] = mapped_column(String(16), server_default="draft", index=True)
    # scope: {"region_prefixes": [...], "category_codes": [...], "statuses": ["存续"]}
    scope: Mapped[dict[str, Any]] = mapped_column(JSONB)
    strata_fields: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    ratios: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    quotas: Mapped[dict[str, int] | None] = mapped_column(JSONB)
    # follow-up plans: the targets are fixed, only the inspectors are drawn
    fixed_targets: Mapped[list[str] | None] = mapped_column(ARRAY(String(18)))
    team_size: Mapped[int] = mapped_column(Integer)
    max_tasks_per_inspector: Mapped[int | None] = mapped_column(Integer)
    cross_unit: Mapped[bool] = mapped_column(Boolean, server_default="false")
    exclusion_days: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[date | None] = mapped_column(Date)
    # declared before the commitment and committed in params.json (DESIGN §4 step 2)
    entropy_source: Mapped[str] = mapped_column(
        Text, server_default="dice rolled in front of witnesses (at least 20 digits)"
    )
    # why a follow-up or emergency plan was made (the finding it follows up)
    reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    committed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    drawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Commitment(Base):
    """QSDRAW-1 step 1. The frozen files are stored (pool.csv in ``draw_pool_chunks``); the nonce
    stays secret until the draw. A failed draw (unstaffable) leaves the plan committed; a
    new commit supersedes the old one."""

    __tablename__ = "commitments"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    commitment: Mapped[str] = mapped_column(String(64), unique=True)
    params_json: Mapped[bytes] = mapped_column(LargeBinary)
    pool_sha256: Mapped[str] = mapped_column(String(64))
    inspectors_csv: Mapped[bytes] = mapped_column(LargeBinary)
    exclusions_csv: Mapped[bytes] = mapped_column(LargeBinary)
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    pool_size: Mapped[int] = mapped_column(BigInteger)
    strata_sizes: Mapped[dict[str, int]] = mapped_column(JSONB)
    quotas: Mapped[dict[str, int]] = mapped_column(JSONB)
    superseded: Mapped[bool] = mapped_column(Boolean, server_default="false")
    committed_by: Mapped[str] = mapped_column(String(64), server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PoolChunk(Base):
    """A piece of a commitment's frozen ``pool.csv``: the file is the chunks' bytes in
    ``seq`` order, each chunk whole lines (see :mod:`qsampling.draws.pool`). The file is kept
    as committed, so its bytes, hash and draw never depend on how rows come back."""

    __tablename__ = "draw_pool_chunks"

    commitment_id: Mapped[int] = mapped_column(ForeignKey("commitments.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Draw(Base):
    """QSDRAW-1 steps 2–6 for a plan: exactly one per plan (unique), so a second attempt,
    concurrent or later, fails on the constraint and gets 409."""

    __tablename__ = "draws"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), unique=True)
    commitment_id: Mapped[int] = mapped_column(ForeignKey("commitments.id"), unique=True)
    entropy: Mapped[str] = mapped_column(Text)
    seed: Mapped[str] = mapped_column(String(64))
    selected_count: Mapped[int] = mapped_column(Integer)
    # how the entropy was produced on the day (witnesses, beacon round), free text
    entropy_note: Mapped[str | None] = mapped_column(Text)
    # SHA-256 of result.json as published at the draw
    result_sha256: Mapped[str | None] = mapped_column(String(64))
    drawn_by: Mapped[str] = mapped_column(String(64))
    drawn_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


TASK_STATUSES = (
    "assigned",
    "in_progress",
    "submitted",
    "notified",
    "objected",
    "retested",
    "final",
    "closed",
    "cancelled",
)


class Task(Base):
    """A drawn enterprise: its key, its inclusion probability (n_h/N_h stored as counts)."""

    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("plan_id", "uscc"),
        Index("ix_tasks_uscc_created", "uscc", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    draw_id: Mapped[int] = mapped_column(ForeignKey("draws.id"), index=True)
    uscc: Mapped[str] = mapped_column(ForeignKey("enterprises.uscc"))
    check_item_code: Mapped[str] = mapped_column(ForeignKey("check_items.code"))
    stratum: Mapped[str] = mapped_column(String(64))
    draw_key: Mapped[str] = mapped_column(String(64))
    draw_rank: Mapped[int] = mapped_column(Integer)
    stratum_sample_size: Mapped[int] = mapped_column(Integer)  # n_h
    stratum_population: Mapped[int] = mapped_column(Integer)  # N_h
    inclusion_probability: Mapped[float] = mapped_column(Float)  # n_h / N_h
    status: Mapped[str] = mapped_column(String(16), server_default="assigned", index=True)
    due_date: Mapped[date | None] = mapped_column(Date)
    # the team as drawn (QSDRAW-1 step 5), kept even if task_inspectors is changed later,
    # so the published result.json can always be rebuilt
    drawn_team: Mapped[list[str] | None] = mapped_column(ARRAY(String(32)))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class TaskInspector(Base):
    __tablename__ = "task_inspectors"

    task_id: Mapped[int] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    inspector_id: Mapped[str] = mapped_column(
        ForeignKey("inspectors.inspector_id"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer)
