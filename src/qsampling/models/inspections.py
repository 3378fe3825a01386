"""Inspection results (监督抽查): versioned results, samples, test items, evidence, the
idempotency ledger, notification → objection → retest, rectification orders, and the two
read models other modules consume: ``domain_events`` and ``final_results``.

Only *final* results reach statistics, credit and disclosure, and they reach them through
``domain_events`` (one row per fact, e.g. ``result.final``) and ``final_results`` (one narrow
row per tested sample batch), so those modules never re-read raw submissions.
"""

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
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from qsampling.models.base import Base

# DESIGN §3: result categories as published by the national platform (several may apply).
# kind: ok | problem | unreachable | refused | no_activity | closure
RESULT_CATEGORIES: tuple[tuple[str, str, str, str], ...] = (
    ("1", "未发现问题", "No problem found", "ok"),
    ("B", "未按规定公示应当公示的信息", "Required information not disclosed", "problem"),
    ("C", "公示信息隐瞒真实情况弄虚作假", "Disclosed information false or concealing", "problem"),
    (
        "6",
        "通过登记的住所（经营场所）无法联系",
        "Unreachable at the registered address",
        "unreachable",
    ),
    ("A", "发现问题待后续处理", "Problem found, follow-up pending", "problem"),
    ("E", "发现问题已责令改正", "Problem found, correction ordered", "problem"),
    ("8", "不配合检查情节严重", "Seriously refused to cooperate", "refused"),
    (
        "F",
        "未发现开展本次抽查涉及的经营活动",
        "No activity covered by this inspection",
        "no_activity",
    ),
    ("7", "已关闭停业或正在组织清算", "Closed or in liquidation", "closure"),
    ("9", "注销", "Deregistered", "closure"),
    ("10", "被吊销", "Licence revoked", "closure"),
    ("11", "被撤销", "Registration cancelled", "closure"),
    ("12", "迁出", "Moved out of the jurisdiction", "closure"),
)
RESULT_CATEGORY_CODES = tuple(c[0] for c in RESULT_CATEGORIES)
EVIDENCE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp", "application/pdf")
ORDER_STATUSES = ("open", "reinspection_passed", "reinspection_failed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ",".join(f"'{v}'" for v in values) + ")"


class ResultCategory(Base):
    """Reference list of result category codes (seeded by the migration)."""

    __tablename__ = "result_categories"

    code: Mapped[str] = mapped_column(String(2), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(50))
    name_en: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))


class EvidenceFile(Base):
    """An uploaded photo or PDF, content-addressed by SHA-256 and kept in PostgreSQL."""

    __tablename__ = "evidence_files"
    __table_args__ = (
        CheckConstraint(_in("media_type", EVIDENCE_MEDIA_TYPES), name="media_type"),
        CheckConstraint("size_bytes > 0", name="size_positive"),
        CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="sha256_hex"),
    )

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(32))
    size_bytes: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    filename: Mapped[str | None] = mapped_column(String(255))
    uploaded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Result(Base):
    """One version of a task's result. A task has at most one live version (partial unique
    index); a correction before notification inserts version n+1 with a reason and keeps
    the old row (``live = false``)."""

    __tablename__ = "results"
    __table_args__ = (
        UniqueConstraint("task_id", "version"),
        Index("uq_results_live_task", "task_id", unique=True, postgresql_where=text("live")),
        CheckConstraint("conclusion IN ('pass','fail')", name="conclusion"),
        CheckConstraint("final_conclusion IN ('pass','fail')", name="final_conclusion"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("source IN ('api','batch','demo')", name="source"),
        CheckConstraint("cardinality(category_codes) >= 1", name="has_category"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"))
    version: Mapped[int] = mapped_column(Integer)
    live: Mapped[bool] = mapped_column(Boolean)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("results.id"))
    correction_reason: Mapped[str | None] = mapped_column(Text)
    inspected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    conclusion: Mapped[str | None] = mapped_column(String(4))
    category_codes: Mapped[list[str]] = mapped_column(ARRAY(String(2)))
    notes: Mapped[str | None] = mapped_column(Text)
    evidence_sha256: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")
    submitted_by: Mapped[str] = mapped_column(String(64))
    submitted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    source: Mapped[str] = mapped_column(String(8), server_default="api")
    # set once, when the result becomes final (after the retest, if any)
    final_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    final_conclusion: Mapped[str | None] = mapped_column(String(4))


class Sample(Base):
    """A sampled product batch (样品)."""

    __tablename__ = "samples"
    __table_args__ = (
        UniqueConstraint("result_id", "sample_no"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("results.id", ondelete="CASCADE"))
    sample_no: Mapped[int] = mapped_column(SmallInteger)
    product_name: Mapped[str] = mapped_column(String(200))
    brand: Mapped[str | None] = mapped_column(String(100))
    model_spec: Mapped[str | None] = mapped_column(String(200))
    batch_no: Mapped[str | None] = mapped_column(String(100))
    production_date: Mapped[date | None] = mapped_column(Date)
    quantity: Mapped[int] = mapped_column(Integer)
    quantity_unit: Mapped[str | None] = mapped_column(String(16))
    standard: Mapped[str | None] = mapped_column(String(200))
    category_code: Mapped[str | None] = mapped_column(ForeignKey("categories.code"))


class SampleItem(Base):
    """One test item of a sample (检验项目): requirement, measured value, unit, verdict."""

    __tablename__ = "test_items"
    __table_args__ = (
        UniqueConstraint("sample_id", "item_no"),
        CheckConstraint("verdict IN ('pass','fail')", name="verdict"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("results.id", ondelete="CASCADE"), index=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"))
    item_no: Mapped[int] = mapped_column(SmallInteger)
    name: Mapped[str] = mapped_column(String(200))
    requirement: Mapped[str | None] = mapped_column(Text)
    measured_value: Mapped[str | None] = mapped_column(String(200))
    unit: Mapped[str | None] = mapped_column(String(32))
    verdict: Mapped[str] = mapped_column(String(4))


class IdempotencyKey(Base):
    """The response of a write made with an ``Idempotency-Key``, stored in the same
    transaction as the write: a retry with the same key and body gets it back verbatim."""

    __tablename__ = "idempotency_keys"
    # BRIN: the purge job needs a range scan on time; a B-tree would cost every write
    __table_args__ = (
        Index("ix_idempotency_keys_created_brin", "created_at", postgresql_using="brin"),
    )

    actor: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int] = mapped_column(SmallInteger)
    response_body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Notification(Base):
    """The enterprise was notified of the result; the 15-day objection window starts."""

    __tablename__ = "result_notifications"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("results.id"), unique=True)
    notified_on: Mapped[date] = mapped_column(Date)
    objection_deadline: Mapped[date] = mapped_column(Date, index=True)
    method: Mapped[str | None] = mapped_column(String(32))
    recorded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Objection(Base):
    """异议: the enterprise disputes some test items within the window."""

    __tablename__ = "objections"
    __table_args__ = (CheckConstraint("cardinality(disputed_item_ids) >= 1", name="has_items"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("results.id"), unique=True)
    received_on: Mapped[date] = mapped_column(Date)
    disputed_item_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    reason: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Retest(Base):
    """复检 on the reserve sample: only the disputed items; its conclusion is final."""

    __tablename__ = "retests"
    __table_args__ = (CheckConstraint("conclusion IN ('pass','fail')", name="conclusion"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("results.id"), unique=True)
    objection_id: Mapped[int] = mapped_column(ForeignKey("objections.id"), unique=True)
    retested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    conclusion: Mapped[str] = mapped_column(String(4))
    notes: Mapped[str | None] = mapped_column(Text)
    evidence_sha256: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")
    recorded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RetestItem(Base):
    __tablename__ = "retest_items"
    __table_args__ = (CheckConstraint("verdict IN ('pass','fail')", name="verdict"),)

    retest_id: Mapped[int] = mapped_column(
        ForeignKey("retests.id", ondelete="CASCADE"), primary_key=True
    )
    test_item_id: Mapped[int] = mapped_column(ForeignKey("test_items.id"), primary_key=True)
    measured_value: Mapped[str | None] = mapped_column(String(200))
    unit: Mapped[str | None] = mapped_column(String(32))
    verdict: Mapped[str] = mapped_column(String(4))


class RectificationOrder(Base):
    """整改: a final FAIL orders rectification within 60 days and a re-inspection within 75
    days, through a follow-up plan (targets fixed, inspectors drawn)."""

    __tablename__ = "rectification_orders"
    __table_args__ = (CheckConstraint(_in("status", ORDER_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("results.id"), unique=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"))
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    check_item_code: Mapped[str] = mapped_column(String(32))
    issued_on: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    reinspection_due_date: Mapped[date] = mapped_column(Date)
    follow_up_plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"), index=True)
    status: Mapped[str] = mapped_column(String(24), server_default="open")
    reinspection_result_id: Mapped[int | None] = mapped_column(ForeignKey("results.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class DomainEvent(Base):
    """An append-only fact for other modules (statistics, credit, disclosure), read in ``id``
    order. Kinds: result.final, result.refused, result.unreachable, result.closed,
    rectification.ordered, reinspection.passed, reinspection.failed. A (kind, result) pair is
    emitted at most once."""

    __tablename__ = "domain_events"
    __table_args__ = (
        Index("ix_domain_events_kind_id", "kind", "id"),
        Index(
            "uq_domain_events_kind_result",
            "kind",
            "result_id",
            unique=True,
            postgresql_where=text("result_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(48))
    occurred_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    uscc: Mapped[str | None] = mapped_column(String(18), index=True)
    task_id: Mapped[int | None] = mapped_column(BigInteger)
    result_id: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)


class FinalResult(Base):
    """One row per tested sample batch of a final result: the flat table statistics
    aggregate (pass rates by category, region, period, size, channel; weights 1/π)."""

    __tablename__ = "final_results"
    __table_args__ = (
        Index("ix_final_results_cat_region_on", "category_code", "region_code", "inspected_on"),
        Index("ix_final_results_inspected_on", "inspected_on"),
    )

    result_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    sample_no: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    task_id: Mapped[int] = mapped_column(BigInteger)
    plan_id: Mapped[int] = mapped_column(BigInteger, index=True)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    check_item_code: Mapped[str] = mapped_column(String(32))
    category_code: Mapped[str] = mapped_column(String(32))
    region_code: Mapped[str] = mapped_column(String(6))
    enterprise_size: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(16))
    inspected_on: Mapped[date] = mapped_column(Date)
    passed: Mapped[bool] = mapped_column(Boolean)
    inclusion_probability: Mapped[float] = mapped_column(Float)
    stratum: Mapped[str] = mapped_column(String(64))
    stratum_sample_size: Mapped[int] = mapped_column(Integer)
    stratum_population: Mapped[int] = mapped_column(Integer)
    follow_up: Mapped[bool] = mapped_column(Boolean)


class FinalResultCount(Base):
    """Tested and passed batches of ``final_results`` per category, region, month and
    follow-up flag. Kept equal to ``final_results`` by statement-level triggers (migration
    0008), so pass rates by category, region and period add up a few hundred thousand
    rows at most instead of scanning every batch."""

    __tablename__ = "final_result_counts"
    __table_args__ = (
        CheckConstraint("tested >= 0 AND passed >= 0 AND passed <= tested", name="counts"),
    )

    category_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    region_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    follow_up: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    tested: Mapped[int] = mapped_column(BigInteger)
    passed: Mapped[int] = mapped_column(BigInteger)
