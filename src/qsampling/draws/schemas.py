"""Request and response bodies of the draws module (plans, commitments, draws, public draws)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _clean_text(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and a lone surrogate cannot be encoded as UTF-8:
    # both would otherwise fail deep in the driver instead of answering 422.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


Text = Annotated[str, AfterValidator(_clean_text)]

PlanType = Literal["routine", "follow_up", "emergency"]
PlanStatus = Literal["draft", "committed", "drawn", "cancelled"]
StratumField = Literal["credit_class", "region", "size", "channel"]
RegistrationStatus = Literal["存续", "在业", "注销", "吊销", "撤销", "迁出", "停业", "清算"]


def _default_statuses() -> list[RegistrationStatus]:
    return ["存续"]


def _default_strata() -> list[StratumField]:
    return ["credit_class"]


class PlanScope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    region_prefixes: list[Annotated[str, Field(pattern=r"^[0-9]{2}([0-9]{2}([0-9]{2})?)?$")]] = (
        Field(
            default_factory=list,
            max_length=500,
            description="GB/T 2260 prefixes of 2, 4 or 6 digits (province, city, county); "
            "empty = everywhere. 行政区划代码前缀。",
        )
    )
    category_codes: list[Annotated[Text, Field(min_length=1, max_length=32)]] | None = Field(
        None,
        max_length=500,
        description="Product categories, each with its subtree (`03.02` also matches "
        "`03.02.01`); omitted → the check item's categories; empty list → all. 产品类别。",
    )
    statuses: list[RegistrationStatus] = Field(
        default_factory=_default_statuses,
        min_length=1,
        description="Registration statuses included (default 存续 only). 登记状态。",
    )


class PlanCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=200, description="Plan name / 计划名称")
    check_item_code: Text = Field(min_length=1, max_length=32, description="抽查事项代码")
    plan_type: PlanType = Field(
        "routine",
        description="routine / follow_up / emergency; follow-up and emergency plans ignore "
        "the exclusion window. 日常/跟踪/应急。",
    )
    scope: PlanScope = Field(default_factory=PlanScope)
    targets: list[Annotated[str, Field(pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$")]] | None = Field(
        None,
        min_length=1,
        max_length=100_000,
        description="Follow-up and emergency plans only: the exact enterprises (USCC); all "
        "are drawn and only the inspectors are random. 指定检查对象。",
    )
    strata_fields: list[StratumField] = Field(
        default_factory=_default_strata,
        min_length=1,
        max_length=4,
        description="Stratification key, joined with `|` (region = first 4 digits of the "
        "region code, the city). 分层字段。",
    )
    ratios: dict[Annotated[Text, Field(max_length=64)], Text] | None = Field(
        None,
        max_length=1000,
        description="Sampling ratio per stratum or per credit class as a decimal string in "
        '[0, 1], e.g. {"A": "0.03", "D": "0.6"}; defaults from the check item. 抽查比例。',
    )
    quotas: dict[Annotated[Text, Field(max_length=64)], Annotated[int, Field(ge=0)]] | None = Field(
        None,
        max_length=1000,
        description="Explicit number to draw per stratum (instead of ratios); strata not "
        "named get 0; capped at the stratum's size. 指定抽取数量。",
    )
    team_size: int | None = Field(
        None,
        description="Inspectors per task, at least 2 (行政处罚法第四十二条); default "
        "from the check item.",
    )
    max_tasks_per_inspector: int | None = Field(
        None, ge=1, le=1_000_000, description="Workload cap per inspector in this plan."
    )
    cross_unit: bool = Field(
        False, description="所所交叉: no inspector from the enterprise's supervising unit."
    )
    exclusion_days: int | None = Field(
        None,
        ge=0,
        le=3650,
        description="Not sampled again for the same check item within this many days "
        "(default from the check item, 180). 排除期。",
    )
    due_date: date | None = Field(None, description="Tasks due by / 完成期限")
    entropy_source: Text | None = Field(
        None,
        min_length=1,
        max_length=500,
        description="How the public entropy will be produced, committed before the draw "
        "(e.g. dice in front of named witnesses, or a beacon round). 公开熵来源。",
    )
    reason: Text | None = Field(None, max_length=2000, description="Why (follow-up) / 事由")


class PlanOut(BaseModel):
    id: int
    name: str
    check_item_code: str
    plan_type: str
    status: str
    scope: dict[str, Any]
    targets: list[str] | None
    strata_fields: list[str]
    ratios: dict[str, str] | None
    quotas: dict[str, int] | None
    team_size: int
    max_tasks_per_inspector: int | None
    cross_unit: bool
    exclusion_days: int
    due_date: date | None
    entropy_source: str
    reason: str | None
    created_by: str
    created_at: datetime
    committed_at: datetime | None
    drawn_at: datetime | None
    cancelled_at: datetime | None
    commitment: str | None = Field(None, description="The current commitment (hex), if any")
    selected_count: int | None = Field(None, description="Enterprises drawn, once drawn")


class PlanPage(BaseModel):
    items: list[PlanOut]
    next_cursor: int | None = Field(None, description="Pass as `cursor` for the next page")


class StratumOut(BaseModel):
    stratum: str
    population: int = Field(description="N_h: candidates in the stratum")
    quota: int = Field(description="n_h: how many will be drawn")


class CommitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entropy_source: Text | None = Field(
        None,
        min_length=1,
        max_length=500,
        description="Overrides the plan's declared entropy source for this commitment.",
    )


class CommitOut(BaseModel):
    plan_id: int
    commitment_id: int
    commitment: str = Field(description="SHA-256 of the canonical params.json (QSDRAW-1)")
    params: dict[str, Any]
    committed_at: datetime
    pool_size: int
    strata: list[StratumOut]
    quota_total: int
    inspectors_eligible: int
    exclusion_pairs: int
    superseded: list[str] = Field(
        default_factory=list, description="Earlier commitments of this plan now superseded"
    )


class DrawRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entropy: Text = Field(
        min_length=1,
        max_length=1000,
        description="Public entropy entered after the commitment was published (dice digits "
        "rolled before witnesses, or a named beacon value); used exactly as given. 公开熵。",
    )
    entropy_source: Text | None = Field(
        None,
        max_length=500,
        description="How it was produced on the day, e.g. `dice, witnesses 张三, 李四`.",
    )


class SelectedOut(BaseModel):
    rank: int = Field(description="Position in key order, from 1")
    uscc: str
    stratum: str
    key: str
    inclusion_probability: float = Field(description="n_h / N_h")
    inspectors: list[str]


class DrawOut(BaseModel):
    plan_id: int
    draw_id: int
    commitment: str
    nonce: str = Field(description="The server nonce, revealed now (hex)")
    entropy: str
    entropy_note: str | None
    seed: str
    drawn_at: datetime
    selected_count: int
    result_sha256: str | None
    bundle_url: str
    selected: list[SelectedOut] = Field(description="The first 1,000 in key order")
    selected_truncated: bool


class PublicDrawOut(BaseModel):
    """One commitment and, once drawn, its draw. No nonce before the draw."""

    plan_id: int
    plan_name: str
    plan_type: str
    plan_status: str
    check_item_code: str
    check_item_name: str | None
    commitment_id: int
    commitment: str
    params: dict[str, Any]
    committed_at: datetime
    superseded: bool = Field(description="A later commitment replaced this one before a draw")
    pool_size: int
    quota_total: int
    drawn_at: datetime | None = None
    entropy: str | None = None
    entropy_note: str | None = None
    nonce: str | None = None
    seed: str | None = None
    selected_count: int | None = None
    result_sha256: str | None = None
    files_url: str = Field(description="pool.csv, inspectors.csv, exclusions.csv, params.json")
    bundle_url: str | None = Field(None, description="The full bundle, once drawn")


class PublicDrawPage(BaseModel):
    items: list[PublicDrawOut]
    next_cursor: int | None = None


class PublicSelected(BaseModel):
    rank: int
    uscc: str
    stratum: str
    key: str
    inspectors: list[str]


class PublicDrawDetail(PublicDrawOut):
    history: list[PublicDrawOut] = Field(
        default_factory=list, description="Earlier (superseded) commitments of the plan"
    )
    selected: list[PublicSelected] = Field(
        default_factory=list, description="Drawn enterprises in key order (first 5,000)"
    )
    selected_truncated: bool = False
