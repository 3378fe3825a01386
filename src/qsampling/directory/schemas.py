"""Request and response bodies of the directory module (一单两库 and reference data).

Field names are English; values that are Chinese terms of the trade stay Chinese (entity
types, registration statuses, check-item kinds). Nothing here carries a natural person's ID
number, phone number or home address: the service refuses such values in names and addresses.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def clean_text(value: str) -> str:
    """PostgreSQL text cannot hold NUL and UTF-8 cannot hold a lone surrogate: refuse both
    here (422) instead of failing deep in the driver."""
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


Text = Annotated[str, AfterValidator(clean_text)]

EntityType = Literal["企业", "个体工商户", "农民专业合作社", "其他"]
Size = Literal["large", "medium", "small", "micro"]
Channel = Literal["production", "circulation", "e-commerce"]
Status = Literal["存续", "在业", "注销", "吊销", "撤销", "迁出", "停业", "清算"]
CreditClass = Literal["A", "B", "C", "D"]
Kind = Literal["重点", "一般"]
RegionLevel = Literal["province", "city", "county"]

RegionCode = Annotated[str, Field(pattern=r"^[0-9]{6}$", examples=["350102"])]
CategoryCode = Annotated[
    str,
    Field(
        pattern=r"^[0-9A-Za-z]{1,8}(\.[0-9A-Za-z]{1,8}){0,4}$", max_length=32, examples=["03.01"]
    ),
]
ItemCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$", max_length=32)]
UnitCode = ItemCode
InspectorId = ItemCode
Qualification = ItemCode

_STRICT = ConfigDict(extra="forbid")


# --- paging ----------------------------------------------------------------------------------


class PageMeta(BaseModel):
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next page; null on the last page. 下一页游标。"
    )


# --- regions, categories, units --------------------------------------------------------------


class RegionOut(BaseModel):
    code: str
    name: str
    level: str
    parent_code: str | None


class RegionCreate(BaseModel):
    model_config = _STRICT
    code: RegionCode = Field(description="GB/T 2260 code, 6 digits. 行政区划代码。")
    name: Text = Field(min_length=1, max_length=100)


class RegionUpdate(BaseModel):
    model_config = _STRICT
    name: Text = Field(min_length=1, max_length=100)


class RegionPage(PageMeta):
    items: list[RegionOut]


class CategoryOut(BaseModel):
    code: str
    name: str
    parent_code: str | None
    level: int


class CategoryCreate(BaseModel):
    model_config = _STRICT
    code: CategoryCode = Field(
        description="Dotted code; its parent is the code without the last segment and must "
        "exist (`03.02.06` under `03.02`). 产品类别代码。"
    )
    name: Text = Field(min_length=1, max_length=100)


class CategoryUpdate(BaseModel):
    model_config = _STRICT
    name: Text = Field(min_length=1, max_length=100)


class CategoryPage(PageMeta):
    items: list[CategoryOut]


class UnitOut(BaseModel):
    code: str
    name: str
    region_code: str | None


class UnitCreate(BaseModel):
    model_config = _STRICT
    code: UnitCode = Field(examples=["FJ-350102-S01"])
    name: Text = Field(
        min_length=1, max_length=100, examples=["鼓楼区市场监督管理局东街市场监管所"]
    )
    region_code: RegionCode | None = None


class UnitUpdate(BaseModel):
    model_config = _STRICT
    name: Text | None = Field(None, min_length=1, max_length=100)
    region_code: RegionCode | None = None


class UnitPage(PageMeta):
    items: list[UnitOut]


# --- enterprises -----------------------------------------------------------------------------


class EnterpriseOut(BaseModel):
    uscc: str = Field(description="统一社会信用代码")
    name: str
    entity_type: str
    region_code: str
    address: str | None
    supervising_unit: str | None
    category_codes: list[str]
    size: str
    channel: str
    status: str
    registration_date: date | None
    credit_class: str = Field(
        description="Internal (steers sampling ratios); never published. 信用风险分类（内部）。"
    )
    created_at: datetime
    updated_at: datetime


class EnterpriseCreate(BaseModel):
    model_config = _STRICT
    uscc: Text = Field(
        max_length=64,
        description="统一社会信用代码; trimmed and upper-cased, then the GB 32100-2015 check "
        "character is verified.",
        examples=["91350102MA2XYZ1234"],
    )
    name: Text = Field(min_length=1, max_length=200)
    entity_type: EntityType | None = Field(
        None,
        description="Omitted → derived from the code (9-1 企业, 9-2 个体工商户, "
        "9-3 农民专业合作社, else 其他). 主体类型。",
    )
    region_code: RegionCode
    address: Text | None = Field(None, max_length=300)
    supervising_unit: UnitCode | None = None
    category_codes: list[CategoryCode] = Field(default_factory=list, max_length=50)
    size: Size
    channel: Channel
    status: Status = "存续"
    registration_date: date | None = None


class EnterpriseUpdate(BaseModel):
    """Only the fields sent change; `null` clears an optional field. The credit class is
    maintained by the credit module and cannot be set here."""

    model_config = _STRICT
    name: Text | None = Field(None, min_length=1, max_length=200)
    entity_type: EntityType | None = None
    region_code: RegionCode | None = None
    address: Text | None = Field(None, max_length=300)
    supervising_unit: UnitCode | None = None
    category_codes: list[CategoryCode] | None = Field(None, max_length=50)
    size: Size | None = None
    channel: Channel | None = None
    status: Status | None = None
    registration_date: date | None = None


class EnterprisePage(PageMeta):
    items: list[EnterpriseOut]


# --- inspectors and conflicts ----------------------------------------------------------------


class InspectorOut(BaseModel):
    inspector_id: str
    name: str
    unit_code: str
    region_scope: list[str]
    qualifications: list[str]
    active: bool
    created_at: datetime
    updated_at: datetime


class InspectorCreate(BaseModel):
    model_config = _STRICT
    inspector_id: InspectorId = Field(description="Internal id (not an ID-card number). 人员编号。")
    name: Text = Field(min_length=1, max_length=50)
    unit_code: UnitCode
    region_scope: list[RegionCode] = Field(
        default_factory=list,
        max_length=500,
        description="Regions the inspector may be sent to; empty = the unit decides. 执法区域。",
    )
    qualifications: list[Qualification] = Field(
        default_factory=list,
        max_length=100,
        description="Qualification codes of check items (e.g. QUAL-CHILD) or category codes. "
        "检查资质。",
    )
    active: bool = True


class InspectorUpdate(BaseModel):
    model_config = _STRICT
    name: Text | None = Field(None, min_length=1, max_length=50)
    unit_code: UnitCode | None = None
    region_scope: list[RegionCode] | None = Field(None, max_length=500)
    qualifications: list[Qualification] | None = Field(None, max_length=100)
    active: bool | None = None


class InspectorPage(PageMeta):
    items: list[InspectorOut]


class ConflictOut(BaseModel):
    id: int
    inspector_id: str
    uscc: str
    reason: str
    declared_date: date
    created_at: datetime


class ConflictCreate(BaseModel):
    model_config = _STRICT
    uscc: Text = Field(max_length=64, description="The enterprise (统一社会信用代码).")
    reason: Text = Field(min_length=1, max_length=500, description="利害关系说明")
    declared_date: date | None = Field(None, description="Defaults to today. 申报日期。")


# --- check items -----------------------------------------------------------------------------


class CheckItemOut(BaseModel):
    code: str
    name: str
    legal_basis: str
    kind: str
    category_codes: list[str]
    ratios: dict[str, str]
    exclusion_days: int
    qualification: str | None
    team_size: int
    created_at: datetime
    updated_at: datetime


Ratio = Annotated[str, Field(pattern=r"^(0(\.[0-9]{1,6})?|1(\.0{1,6})?)$", examples=["0.05"])]


class Ratios(BaseModel):
    model_config = _STRICT
    A: Ratio
    B: Ratio
    C: Ratio
    D: Ratio


class CheckItemCreate(BaseModel):
    model_config = _STRICT
    code: ItemCode = Field(examples=["SC-2026-001"])
    name: Text = Field(min_length=1, max_length=200)
    legal_basis: Text = Field(min_length=1, max_length=2000, description="法律依据")
    kind: Kind
    category_codes: list[CategoryCode] = Field(default_factory=list, max_length=100)
    ratios: Ratios = Field(
        description="Default sampling ratio per credit class. 各信用等级抽查比例。"
    )
    exclusion_days: int = Field(180, ge=0, le=3650)
    qualification: Qualification | None = None
    team_size: int = Field(2, ge=2, le=20, description="At least 2 (行政处罚法 art. 42).")


class CheckItemUpdate(BaseModel):
    model_config = _STRICT
    name: Text | None = Field(None, min_length=1, max_length=200)
    legal_basis: Text | None = Field(None, min_length=1, max_length=2000)
    kind: Kind | None = None
    category_codes: list[CategoryCode] | None = Field(None, max_length=100)
    ratios: Ratios | None = None
    exclusion_days: int | None = Field(None, ge=0, le=3650)
    qualification: Qualification | None = None
    team_size: int | None = Field(None, ge=2, le=20)


class CheckItemPage(PageMeta):
    items: list[CheckItemOut]


# --- imports ---------------------------------------------------------------------------------


class RejectedRow(BaseModel):
    row_number: int = Field(description="Row in the file; the header is row 1. 行号。")
    field: str = Field(description="Column, or `*` for the whole row. 字段。")
    value: str | None
    reason: str


class ImportReportOut(BaseModel):
    id: int
    kind: str
    filename: str
    file_sha256: str
    file_format: str = Field(description="csv/utf-8, csv/utf-8-sig, csv/gb18030 or xlsx")
    strict: bool
    stored: bool = Field(
        description="False when strict mode found errors: nothing of the file was stored."
    )
    total_rows: int
    accepted: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int = Field(description="Rows rejected (a row may have several problems).")
    ignored_columns: list[str]
    created_by: str
    created_at: datetime
    rejected_rows: list[RejectedRow] = Field(
        description="The first 100 problems; all of them are in `rejected_csv`."
    )
    rejected_csv: str | None = Field(
        description="Where to download every rejected row as CSV (UTF-8 with BOM)."
    )
