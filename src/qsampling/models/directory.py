"""一单两库: reference data, the enterprise directory, the inspector directory, check items."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from qsampling.models.base import Base, TimestampMixin

ENTITY_TYPES = ("企业", "个体工商户", "农民专业合作社", "其他")
SIZES = ("large", "medium", "small", "micro")
CHANNELS = ("production", "circulation", "e-commerce")
STATUSES = ("存续", "在业", "注销", "吊销", "撤销", "迁出", "停业", "清算")
CREDIT_CLASSES = ("A", "B", "C", "D")
CHECK_ITEM_KINDS = ("重点", "一般")


class Region(Base):
    """GB/T 2260 行政区划代码: 6 digits (2 province, 2 city, 2 county)."""

    __tablename__ = "regions"
    __table_args__ = (CheckConstraint("code ~ '^[0-9]{6}$'", name="code_six_digits"),)

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(10))  # province | city | county
    parent_code: Mapped[str | None] = mapped_column(String(6), index=True)


class Category(Base):
    """Product-category tree; dotted codes ("03", "03.02", "03.02.01") so a subtree is a
    prefix match."""

    __tablename__ = "categories"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    parent_code: Mapped[str | None] = mapped_column(String(32), index=True)
    level: Mapped[int] = mapped_column(Integer)


class Unit(Base):
    """A supervising / law-enforcement unit (市场监管所, 稽查局 …)."""

    __tablename__ = "units"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    region_code: Mapped[str | None] = mapped_column(ForeignKey("regions.code"))


class Enterprise(TimestampMixin, Base):
    """检查对象名录库. Keyed by 统一社会信用代码. Public-facing fields never carry natural
    persons' ID numbers or phone numbers (sole traders are shown by business name)."""

    __tablename__ = "enterprises"
    __table_args__ = (
        CheckConstraint(
            "entity_type IN ('企业','个体工商户','农民专业合作社','其他')", name="entity_type"
        ),
        CheckConstraint("size IN ('large','medium','small','micro')", name="size"),
        CheckConstraint("channel IN ('production','circulation','e-commerce')", name="channel"),
        CheckConstraint("credit_class IN ('A','B','C','D')", name="credit_class"),
        CheckConstraint("uscc ~ '^[0-9A-HJ-NPQRTUWXY]{18}$'", name="uscc_format"),
        Index(
            "ix_enterprises_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
        Index("ix_enterprises_categories", "category_codes", postgresql_using="gin"),
        Index(
            "ix_enterprises_region_code",
            "region_code",
            postgresql_ops={"region_code": "text_pattern_ops"},
        ),
        Index("ix_enterprises_status_class", "status", "credit_class"),
    )

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    entity_type: Mapped[str] = mapped_column(String(16))
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    address: Mapped[str | None] = mapped_column(String(300))
    supervising_unit: Mapped[str | None] = mapped_column(ForeignKey("units.code"), index=True)
    category_codes: Mapped[list[str]] = mapped_column(ARRAY(String(32)), server_default="{}")
    size: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(8), server_default="存续")
    registration_date: Mapped[date | None] = mapped_column(Date)
    credit_class: Mapped[str] = mapped_column(String(1), server_default="B")


class Inspector(TimestampMixin, Base):
    """执法检查人员名录库. Internal id, name and unit; no ID numbers or contacts here."""

    __tablename__ = "inspectors"

    inspector_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"), index=True)
    region_scope: Mapped[list[str]] = mapped_column(ARRAY(String(6)), server_default="{}")
    qualifications: Mapped[list[str]] = mapped_column(ARRAY(String(32)), server_default="{}")
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")


class Conflict(Base):
    """A declared conflict of interest (行政处罚法 art. 43): the inspector is never drawn
    for this enterprise."""

    __tablename__ = "inspector_conflicts"
    __table_args__ = (UniqueConstraint("inspector_id", "uscc"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    inspector_id: Mapped[str] = mapped_column(
        ForeignKey("inspectors.inspector_id", ondelete="CASCADE")
    )
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    reason: Mapped[str] = mapped_column(Text)
    declared_date: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CheckItem(TimestampMixin, Base):
    """随机抽查事项清单: what may be inspected, on which legal basis, at which ratios."""

    __tablename__ = "check_items"
    __table_args__ = (
        CheckConstraint("kind IN ('重点','一般')", name="kind"),
        CheckConstraint("team_size >= 2", name="team_size_min_two"),
        CheckConstraint("exclusion_days >= 0", name="exclusion_days_nonneg"),
    )

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    legal_basis: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(4))
    category_codes: Mapped[list[str]] = mapped_column(ARRAY(String(32)), server_default="{}")
    # default sampling ratio per credit class as decimal strings, e.g. {"A": "0.03", …}
    ratios: Mapped[dict[str, str]] = mapped_column(JSONB)
    exclusion_days: Mapped[int] = mapped_column(Integer, server_default="180")
    qualification: Mapped[str | None] = mapped_column(String(32))
    team_size: Mapped[int] = mapped_column(Integer, server_default="2")


IMPORT_KINDS = ("enterprises", "inspectors")


class DirectoryImport(Base):
    """One bulk import of a file into the directory: what was read and what came of it.

    The rejected rows are in :class:`DirectoryImportRejection` (downloadable as CSV). A strict
    import that found errors is kept too (``stored`` false): nothing of the file was stored,
    but the user needs the list of what to fix.
    """

    __tablename__ = "directory_imports"
    __table_args__ = (CheckConstraint("kind IN ('enterprises','inspectors')", name="kind"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    filename: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64), index=True)
    file_format: Mapped[str] = mapped_column(String(16))  # csv/utf-8, csv/gb18030, xlsx …
    strict: Mapped[bool] = mapped_column(Boolean)
    stored: Mapped[bool] = mapped_column(Boolean)
    total_rows: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    inserted: Mapped[int] = mapped_column(Integer)
    updated: Mapped[int] = mapped_column(Integer)
    unchanged: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    # columns of the file that are not part of the directory (e.g. 序号, 法定代表人电话):
    # read past and never stored
    ignored_columns: Mapped[list[str]] = mapped_column(ARRAY(String(100)), server_default="{}")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DirectoryImportRejection(Base):
    """A rejected row of an import: its row number in the file (the header is row 1), the
    column and why. Values that look like personal data are stored masked."""

    __tablename__ = "directory_import_rejections"

    import_id: Mapped[int] = mapped_column(
        ForeignKey("directory_imports.id", ondelete="CASCADE"), primary_key=True
    )
    row_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    field: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
