"""Request and response bodies of the credit API (field names in English)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

USCC = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$", strip_whitespace=True),
    Field(description="统一社会信用代码 (18 characters) / unified social credit code"),
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=4000)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=200)]
DecisionNumber = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=2, max_length=64)
]
Severity = Literal["minor", "general", "serious"]
CreditClass = Literal["A", "B", "C", "D"]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- policies ---------------------------------------------------------------------------------


class PolicyBody(BaseModel):
    """A credit policy (every field required; ``version`` is assigned on publication)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "base_score": 80.0,
                "weights": {
                    "result_pass": 5.0,
                    "result_fail": {"minor": -4.0, "general": -8.0, "serious": -15.0},
                    "refusal": -20.0,
                    "unreachable": -10.0,
                    "false_disclosure": -15.0,
                    "reinspection_fail": -15.0,
                    "penalty": {"minor": -3.0, "general": -8.0, "serious": -20.0},
                    "abnormal_listed": -10.0,
                    "abnormal_removed": 0.0,
                    "serious_listed": -25.0,
                    "serious_removed": 0.0,
                },
                "positive_cap": 15.0,
                "half_life_days": 365.0,
                "horizon_days": 1095,
                "class_a_min": 90.0,
                "class_b_min": 75.0,
                "class_c_min": 60.0,
                "serious_list_class": "D",
                "abnormal_list_max_class": "C",
            }
        },
    )

    base_score: float = Field(description="Score of an enterprise with no history / 基准分")
    weights: dict[str, float | dict[str, float]] = Field(
        description="Points per event kind; failed samples and penalties graded "
        "minor/general/serious / 各类事件的分值"
    )
    positive_cap: float = Field(description="Cap on the sum of positive points / 加分上限")
    half_life_days: float = Field(description="Decay half-life in days / 衰减半衰期（天）")
    horizon_days: int = Field(description="Events older than this are ignored / 评价期（天）")
    class_a_min: float = Field(description="A from this score / A类最低分")
    class_b_min: float = Field(description="B from this score / B类最低分")
    class_c_min: float = Field(description="C from this score, below: D / C类最低分")
    serious_list_class: CreditClass = Field(description="Class on the serious list / 硬性规则")
    abnormal_list_max_class: CreditClass = Field(
        description="Best class while on the abnormal list / 硬性规则"
    )


class PolicyPublish(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy: PolicyBody
    note: str | None = Field(None, max_length=2000, description="Why this version / 修订说明")


class PolicyOut(_Out):
    version: int
    active: bool
    body: dict[str, Any]
    note: str | None
    published_by: str
    published_at: datetime


# --- penalties --------------------------------------------------------------------------------


class PenaltyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uscc: USCC
    decision_number: DecisionNumber = Field(
        description="处罚决定书文号, e.g. 闽榕市监处罚〔2026〕12号"
    )
    decision_date: date = Field(description="处罚决定日期 (not in the future)")
    legal_basis: Text = Field(description="法律依据")
    severity: Severity = Field(description="情节: minor 轻微 / general 一般 / serious 严重")
    amount: Decimal | None = Field(
        None, ge=0, max_digits=14, decimal_places=2, description="罚没款金额（元）"
    )
    domain: Literal[
        "product_quality", "food_safety", "pricing", "advertising", "licensing", "other"
    ] = Field("product_quality", description="违法行为领域 (product_quality may propose a listing)")
    authority: ShortText = Field(description="作出决定的机关")
    summary: Text = Field(description="违法事实摘要")


class PenaltyOut(_Out):
    id: int
    uscc: str
    decision_number: str
    decision_date: date
    legal_basis: str
    severity: str
    amount: Decimal | None
    domain: str
    authority: str
    summary: str
    created_by: str
    created_at: datetime


class PenaltyCreated(PenaltyOut):
    credit_event_id: int
    serious_proposal_ids: list[int] = Field(
        description="Serious-list proposals this penalty triggered / 触发的严重违法失信名单建议"
    )
    credit_class: CreditClass = Field(description="The enterprise's class now (internal)")


# --- the credit view ---------------------------------------------------------------------------


class EventContribution(BaseModel):
    event_id: int
    kind: str
    kind_label: str
    severity: str | None
    occurred_on: date
    ref: str
    counted: bool = Field(description="False when outside the horizon or after the date")
    base_points: float
    decay_factor: float = Field(description="0.5 ^ (age_days / half_life_days)")
    cap_factor: float = Field(description="< 1 when positive points were capped")
    points: float = Field(description="What the event adds to the score")


class ClassHistoryOut(_Out):
    credit_class: str
    previous_class: str | None
    score: float
    policy_version: int
    as_of: date
    trigger: str
    changed_at: datetime


class ListStateOut(BaseModel):
    list_name: Literal["abnormal", "serious"]
    entry_id: int
    status: str
    listed_on: date | None
    removed_on: date | None
    reason: str | None


class CreditOut(BaseModel):
    """Internal: why an enterprise has its class (never public)."""

    uscc: str
    name: str
    credit_class: CreditClass = Field(description="Class in force (used by draws) / 信用风险分类")
    class_label: str
    score: float
    score_class: CreditClass = Field(description="Class by score alone")
    hard_rule: str | None = Field(description="A list rule that fixed the class")
    policy_version: int
    as_of: date = Field(description="The date the class was computed for")
    computed_at: datetime | None
    stored: bool = Field(description="False: never scored yet, assessed now with the active policy")
    stale: bool = Field(
        description="True when the ledger or lists changed since; the next recompute updates it"
    )
    on_serious_list: bool
    on_abnormal_list: bool
    base_score: float
    raw_score: float
    explanation: str = Field(description="A sentence in Chinese: score, rule, main factors")
    events: list[EventContribution]
    lists: list[ListStateOut]
    history: list[ClassHistoryOut]


# --- lists ------------------------------------------------------------------------------------


class AbnormalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uscc: USCC
    cause: Literal["unreachable", "annual_report", "disclosure_overdue", "false_disclosure"] = (
        Field(description="列入事由 (《企业经营异常名录管理暂行办法》第四条)")
    )
    listed_on: date | None = Field(None, description="列入日期 (default today)")
    reason: Text = Field(description="列入理由")
    basis: Text | None = Field(None, description="法律依据 (default the regulation)")
    authority: ShortText = Field(description="作出决定的机关")
    decision_number: DecisionNumber | None = Field(None, description="决定书文号")


class RemovalApplicationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    applied_on: date | None = Field(None, description="申请日期 (default today)")
    statement: Text = Field(description="企业的申请理由（已履行义务/已更正的情况）")


class RemovalDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool = Field(description="true: remove; false: refuse (stays listed)")
    decided_on: date | None = Field(None, description="决定日期 (default today)")
    reason: Text = Field(description="移出理由 / 不予移出理由")
    basis: Text | None = Field(None, description="法律依据")
    authority: ShortText = Field(description="作出决定的机关")


class AbnormalOut(_Out):
    id: int
    uscc: str
    enterprise_name: str | None = None
    cause: str
    status: str
    listed_on: date
    reason: str
    basis: str
    authority: str
    decision_number: str | None
    decided_by: str
    source_ref: str | None
    warned_on: date | None
    escalate_on: date | None = Field(None, description="3 years after listing / 满三年日期")
    removal_applied_on: date | None
    removal_application: str | None
    removal_refused_note: str | None
    removal_refused_on: date | None
    removed_on: date | None
    removal_reason: str | None
    removal_basis: str | None
    removal_authority: str | None
    removal_decided_by: str | None
    escalated_on: date | None
    created_at: datetime
    updated_at: datetime


class SeriousProposalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uscc: USCC
    proposed_on: date | None = Field(None, description="default today")
    reason: Text = Field(description="建议列入理由")
    basis: Text = Field(description="法律依据")


class SeriousDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["confirm", "reject"]
    decided_on: date | None = Field(None, description="决定日期 (default today)")
    reason: Text = Field(description="列入理由 / 不予列入理由")
    basis: Text | None = Field(None, description="法律依据 (required to confirm)")
    authority: ShortText | None = Field(None, description="作出决定的机关 (required to confirm)")
    decision_number: DecisionNumber | None = Field(None, description="决定书文号")


class RepairApplicationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    applied_on: date | None = Field(None, description="申请日期 (default today)")
    statement: Text = Field(description="企业履行义务、纠正失信行为的情况")


class RepairDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grant: bool = Field(description="true: remove early (信用修复); false: refuse")
    decided_on: date | None = Field(None, description="决定日期 (default today)")
    reason: Text = Field(description="准予/不予信用修复的理由")
    basis: Text | None = Field(
        None, description="法律依据 (default 《市场监督管理信用修复管理办法》)"
    )
    authority: ShortText = Field(description="作出决定的机关")


class SeriousOut(_Out):
    id: int
    uscc: str
    enterprise_name: str | None = None
    status: str
    rule_id: str
    trigger_event_ids: list[int]
    proposed_on: date
    proposal_reason: str
    proposal_basis: str
    proposed_by: str
    listed_on: date | None
    expires_on: date | None
    repair_eligible_on: date | None
    repair_notified_on: date | None
    reason: str | None
    basis: str | None
    authority: str | None
    decision_number: str | None
    decided_by: str | None
    decided_on: date | None
    decision_note: str | None
    repair_applied_on: date | None
    repair_application: str | None
    repair_decided_by: str | None
    repair_decided_on: date | None
    removed_on: date | None
    removal_reason: str | None
    removal_basis: str | None
    removal_authority: str | None
    abnormal_entry_id: int | None
    created_at: datetime
    updated_at: datetime


_CURSOR = "Pass as `cursor` for the next page; null: no more / 下一页游标"


class AbnormalPage(BaseModel):
    items: list[AbnormalOut]
    next_cursor: int | None = Field(description=_CURSOR)


class SeriousPage(BaseModel):
    items: list[SeriousOut]
    next_cursor: int | None = Field(description=_CURSOR)


class PenaltyPage(BaseModel):
    items: list[PenaltyOut]
    next_cursor: int | None = Field(description=_CURSOR)


# --- feeds ------------------------------------------------------------------------------------


class MeasureSchema(BaseModel):
    code: str = Field(description="e.g. government_procurement, bidding, financing, honours")
    name: str
    start_on: date
    end_on: date


class FeedEntryOut(BaseModel):
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
    measures: list[MeasureSchema]
    updated_at: datetime


class FeedOut(BaseModel):
    generated_at: datetime
    changed_since: datetime | None
    next_changed_since: datetime = Field(
        description="Use as `changed_since` next time (overlaps a little; entries are keyed "
        "by entry_id, so a repeat is harmless)"
    )
    entries: list[FeedEntryOut]
    next_cursor: int | None


class IncentiveOut(BaseModel):
    uscc: str
    name: str
    region_code: str
    score: float
    as_of: date


class IncentivePage(BaseModel):
    as_of: date
    clean_days: int
    items: list[IncentiveOut]
    next_cursor: str | None
