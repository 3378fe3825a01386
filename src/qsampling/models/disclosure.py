"""一公开: the public record of each final result and its publication deadline.

A ``ResultPublication`` is written when an inspection result becomes final. It is a
snapshot of exactly the fields the law makes public (enterprise business name, the check
item, the samples and verdicts, the result codes, the inspectors' names) — never ID numbers,
phone numbers, natural persons' addresses, free-text notes or the credit class — with the
due date (20 working days after the inspection ended, Chinese statutory holidays counted)
and the time it was published. The public API, the exports and the portal read only this
table, so what is public is decided in one place.
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
    Index,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from qsampling.models.base import Base

CONCLUSIONS = ("pass", "fail", "not_tested")


class ResultPublication(Base):
    __tablename__ = "result_publications"
    __table_args__ = (
        CheckConstraint("conclusion IN ('pass','fail','not_tested')", name="conclusion"),
        Index(
            "ix_result_publications_region_code",
            "region_code",
            postgresql_ops={"region_code": "text_pattern_ops"},
        ),
        Index("ix_result_publications_categories", "category_codes", postgresql_using="gin"),
        Index("ix_result_publications_codes", "result_codes", postgresql_using="gin"),
        Index("ix_result_publications_updated", "updated_at", "id"),
        Index(
            "ix_result_publications_unpublished_due",
            "due_date",
            postgresql_where="published_at IS NULL",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # the inspections module's result (the final version); one publication per result
    result_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    task_id: Mapped[int] = mapped_column(BigInteger, index=True)
    plan_id: Mapped[int | None] = mapped_column(BigInteger)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    enterprise_name: Mapped[str] = mapped_column(String(200))
    entity_type: Mapped[str] = mapped_column(String(16))
    region_code: Mapped[str] = mapped_column(String(6))
    region_name: Mapped[str] = mapped_column(String(100), server_default="")
    check_item_code: Mapped[str] = mapped_column(String(32))
    check_item_name: Mapped[str] = mapped_column(String(200), server_default="")
    inspected_on: Mapped[date] = mapped_column(Date, index=True)
    conclusion: Mapped[str] = mapped_column(String(16))
    result_codes: Mapped[list[str]] = mapped_column(ARRAY(String(4)), server_default="{}")
    category_codes: Mapped[list[str]] = mapped_column(ARRAY(String(32)), server_default="{}")
    # public sample fields only: product, brand, model_spec, batch, production_date,
    # category_code, verdict, failed_items [{item, requirement, measured, unit}]
    samples: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    # flattened copies for CSV/XLSX (and the COPY fast path of the export)
    products_text: Mapped[str] = mapped_column(Text, server_default="")
    failed_items_text: Mapped[str] = mapped_column(Text, server_default="")
    inspector_names: Mapped[list[str]] = mapped_column(ARRAY(String(50)), server_default="{}")
    # the row exactly as it appears in results.csv (no line break): the CSV export is a COPY
    # of this column, so 5 million rows stream at PostgreSQL's speed
    csv_line: Mapped[str] = mapped_column(Text, server_default="")
    final_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_date: Mapped[date] = mapped_column(Date)
    due_exact: Mapped[bool] = mapped_column(Boolean, server_default="true")
    due_note: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class DisclosureCursor(Base):
    """How far the disclosure module has consumed another module's event stream (so that
    ``qsampling jobs run`` is idempotent and does not rescan history)."""

    __tablename__ = "disclosure_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
