"""Request and response bodies of the inspections API (field names English, descriptions
bilingual)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

Verdict = Literal["pass", "fail"]
Sha256 = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-fA-F]{64}$", to_lower=True),
    Field(description="SHA-256 of an evidence file uploaded via POST /api/v1/evidence"),
]
Text200 = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Opt100 = Annotated[str | None, StringConstraints(max_length=100)]
Opt200 = Annotated[str | None, StringConstraints(max_length=200)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TestItemIn(_In):
    __test__ = False  # not a pytest class

    name: Text200 = Field(description="检验项目 / test item, e.g. 甲醛含量")
    requirement: str | None = Field(None, max_length=2000, description="标准要求 / requirement")
    measured_value: Opt200 = Field(None, description="实测值 / measured value")
    unit: str | None = Field(None, max_length=32, description="单位 / unit")
    verdict: Verdict = Field(description="单项判定 / item verdict")


class SampleIn(_In):
    product_name: Text200 = Field(description="产品名称 / product")
    brand: Opt100 = Field(None, description="商标 / brand")
    model_spec: Opt200 = Field(None, description="规格型号 / model or specification")
    batch_no: Opt100 = Field(None, description="生产日期或批号 / batch")
    production_date: date | None = Field(None, description="生产日期 / production date")
    quantity: int = Field(gt=0, le=1_000_000, description="抽样数量 / quantity sampled")
    quantity_unit: str | None = Field(None, max_length=16, description="数量单位, e.g. 件")
    standard: Opt200 = Field(None, description="执行标准 / standard, e.g. GB 6675.2-2014")
    category_code: str | None = Field(
        None,
        max_length=32,
        description="产品类别代码 (product-category tree); default: the check item's category",
    )
    items: list[TestItemIn] = Field(min_length=1, max_length=200, description="检验项目")


class ResultIn(_In):
    """An inspection result (监督抽查结果)."""

    inspected_at: AwareDatetime = Field(
        description="检查时间 (ISO 8601 with offset; the end of the on-site inspection)"
    )
    conclusion: Verdict | None = Field(
        None,
        description="检验结论: fail iff any test item fails; leave empty when nothing was tested",
    )
    category_codes: list[str] = Field(
        min_length=1,
        max_length=13,
        description="结果类别 (several allowed): 1 B C 6 A E 8 F 7 9 10 11 12 — DESIGN §3",
    )
    notes: str | None = Field(None, max_length=4000, description="备注 / notes (internal)")
    evidence: list[Sha256] = Field(default_factory=list, max_length=50, description="证据文件")
    samples: list[SampleIn] = Field(default_factory=list, max_length=100, description="样品")


class ResultCorrectionIn(ResultIn):
    correction_reason: str = Field(
        min_length=1, max_length=2000, description="更正原因 / why the result is corrected"
    )


class BatchRowIn(ResultIn):
    task_id: int = Field(gt=0)
    idempotency_key: str = Field(min_length=1, max_length=128)


class ResultReceipt(BaseModel):
    result_id: int
    task_id: int
    version: int
    task_status: str = Field(description="The task's state after the write")
    submitted_at: datetime
    final: bool = Field(description="True when the result is already final (closed tasks)")


class TeamMember(BaseModel):
    inspector_id: str
    name: str
    position: int


class TaskOut(BaseModel):
    id: int
    plan_id: int
    plan_type: str
    check_item_code: str
    uscc: str
    enterprise_name: str
    region_code: str
    stratum: str
    inclusion_probability: float
    status: str = Field(
        description="assigned, in_progress, submitted, notified, objected, "
        "retested, final, closed, cancelled"
    )
    due_date: date | None
    created_at: datetime
    updated_at: datetime
    team: list[TeamMember]
    live_result_id: int | None


class TaskPage(BaseModel):
    items: list[TaskOut]
    total: int
    limit: int
    offset: int


class ItemOut(BaseModel):
    id: int
    item_no: int
    name: str
    requirement: str | None
    measured_value: str | None
    unit: str | None
    verdict: Verdict
    retest_verdict: Verdict | None = None


class SampleOut(BaseModel):
    id: int
    sample_no: int
    product_name: str
    brand: str | None
    model_spec: str | None
    batch_no: str | None
    production_date: date | None
    quantity: int
    quantity_unit: str | None
    standard: str | None
    category_code: str | None
    items: list[ItemOut]


class NotificationIn(_In):
    notified_on: date = Field(description="告知日期 / date the enterprise was notified")
    method: Literal["direct", "mail", "electronic", "public_notice"] | None = Field(
        None, description="送达方式 / how"
    )


class NotificationOut(BaseModel):
    notified_on: date
    objection_deadline: date = Field(description="Last day an objection is accepted (+15 days)")
    method: str | None
    recorded_by: str


class ObjectionIn(_In):
    received_on: date = Field(description="异议提出日期 / date the objection was lodged")
    disputed_item_ids: list[int] = Field(
        min_length=1, max_length=200, description="Ids of the disputed (failed) test items"
    )
    reason: str | None = Field(None, max_length=4000, description="异议理由 / grounds")


class ObjectionOut(BaseModel):
    received_on: date
    disputed_item_ids: list[int]
    reason: str | None
    recorded_by: str


class RetestItemIn(_In):
    test_item_id: int
    measured_value: Opt200 = None
    unit: str | None = Field(None, max_length=32)
    verdict: Verdict


class RetestIn(_In):
    retested_at: AwareDatetime = Field(description="复检时间 / when the retest ended")
    items: list[RetestItemIn] = Field(
        min_length=1, max_length=200, description="Exactly the disputed items, nothing else"
    )
    notes: str | None = Field(None, max_length=4000)
    evidence: list[Sha256] = Field(default_factory=list, max_length=50)


class RetestOut(BaseModel):
    retested_at: datetime
    conclusion: Verdict
    notes: str | None
    evidence: list[str]
    recorded_by: str


class RectificationOut(BaseModel):
    id: int
    issued_on: date
    due_date: date
    reinspection_due_date: date
    follow_up_plan_id: int | None
    status: str


class ResultVersion(BaseModel):
    id: int
    version: int
    live: bool
    submitted_by: str
    submitted_at: datetime
    correction_reason: str | None


class ResultOut(BaseModel):
    id: int
    task_id: int
    task_status: str
    version: int
    live: bool
    supersedes_id: int | None
    correction_reason: str | None
    inspected_at: datetime
    conclusion: Verdict | None
    final_conclusion: Verdict | None = Field(
        description="After the retest (if any); set when the result is final"
    )
    category_codes: list[str]
    notes: str | None
    evidence: list[str]
    submitted_by: str
    submitted_at: datetime
    source: str
    final_at: datetime | None
    samples: list[SampleOut]
    notification: NotificationOut | None
    objection: ObjectionOut | None
    retest: RetestOut | None
    rectification: RectificationOut | None
    versions: list[ResultVersion]


class TaskDetail(TaskOut):
    result: ResultOut | None


class EvidenceOut(BaseModel):
    sha256: str
    media_type: str
    size_bytes: int
    created_at: datetime


class BatchRowReport(BaseModel):
    row: int = Field(description="1-based line number (CSV: of the group's first data line)")
    status: Literal["created", "replayed", "error"]
    task_id: int | None = None
    idempotency_key: str | None = None
    result_id: int | None = None
    error: str | None = None
    detail: str | None = None
    errors: list[dict[str, Any]] | None = None


class BatchReport(BaseModel):
    received: int
    created: int
    replayed: int
    rejected: int
    rows: list[BatchRowReport]
