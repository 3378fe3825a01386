"""Public (open-data) shapes. Field names in English; descriptions in English and 中文.

Nothing here can carry a credit class, a personal identity number, a phone number, an
inspector id or a natural person's address: the shapes have no such fields.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FailedItem(_Out):
    item: str = Field(description="Test item that failed / 不合格检验项目")
    requirement: str | None = Field(None, description="Standard requirement / 标准要求")
    measured: str | None = Field(None, description="Measured value / 实测值")
    unit: str | None = Field(None, description="Unit / 单位")


class PublicSample(_Out):
    sample_no: int = Field(description="Sample number within the result / 样品序号")
    product: str = Field(description="Product name / 产品名称")
    brand: str | None = Field(None, description="Brand / 商标")
    model_spec: str | None = Field(None, description="Model or specification / 规格型号")
    batch: str | None = Field(None, description="Batch number / 生产日期或批号")
    production_date: str | None = Field(None, description="Production date / 生产日期")
    category_code: str | None = Field(None, description="Product category code / 产品类别代码")
    verdict: Literal["pass", "fail"] = Field(
        description="pass = no failure found (未发现不合格); fail = 不合格"
    )
    verdict_zh: str = Field(description="未发现不合格 / 不合格")
    failed_items: list[FailedItem] = Field(description="Failed test items / 不合格项目")


class PublicResult(_Out):
    id: int = Field(description="Publication id (stable; the cursor order) / 公示编号")
    uscc: str = Field(description="Unified social credit code / 统一社会信用代码")
    enterprise_name: str = Field(
        description="Business name (sole traders by business name) / 受检单位名称"
    )
    entity_type: str = Field(description="企业 / 个体工商户 / 农民专业合作社 / 其他")
    region_code: str = Field(description="GB/T 2260 region code / 行政区划代码")
    region_name: str = Field(description="Region name / 行政区划名称")
    check_item_code: str = Field(description="Check item / 抽查事项代码")
    check_item_name: str = Field(description="Check item name / 抽查事项名称")
    plan_id: int | None = Field(None, description="Plan whose draw selected it / 抽查计划编号")
    inspected_on: date = Field(description="Date the inspection ended / 检查日期")
    conclusion: Literal["pass", "fail", "not_tested"] = Field(
        description="pass: no failure found; fail: failed; not_tested: no sample tested "
        "(refused, unreachable, closed …; see result_codes) / 结论"
    )
    conclusion_zh: str = Field(description="未发现不合格 / 不合格 / 未检验")
    result_codes: list[str] = Field(description="National result category codes / 检查结果代码")
    result_code_names: list[str] = Field(description="Their names / 检查结果")
    category_codes: list[str] = Field(description="Product categories sampled / 产品类别")
    samples: list[PublicSample] = Field(description="Samples and verdicts / 样品及检验结论")
    inspector_names: list[str] = Field(description="Inspectors' names / 检查人员")
    published_at: datetime = Field(description="Published at / 公示时间")
    updated_at: datetime = Field(description="Last change (for changed_since) / 更新时间")


class ResultPage(_Out):
    items: list[PublicResult]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page / 下一页游标"
    )
    limit: int


class EnterpriseSummary(_Out):
    uscc: str
    name: str
    entity_type: str
    region_code: str
    region_name: str
    status: str = Field(description="Registration status / 登记状态")


class ListEntryMeasure(_Out):
    code: str
    name: str = Field(description="Joint-punishment measure / 联合惩戒措施")
    start_on: date
    end_on: date | None


class PublicListEntry(_Out):
    id: int
    list_name: Literal["abnormal", "serious", "joint-punishment"]
    list_title: str = Field(description="经营异常名录 / 严重违法失信名单 / 失信联合惩戒对象名单")
    uscc: str
    enterprise_name: str
    status: Literal["listed", "removed"] = Field(description="listed 列入中 / removed 已移出")
    status_zh: str
    cause: str | None = Field(None, description="Cause or rule / 列入事由类别")
    reason: str = Field(description="Reason / 列入原因")
    basis: str = Field(description="Legal basis / 列入依据")
    authority: str = Field(description="Deciding authority / 作出决定机关")
    decision_number: str | None = Field(None, description="Decision number / 决定文书号")
    listed_on: date | None = Field(None, description="Listed on / 列入日期")
    expires_on: date | None = Field(None, description="Listing ends / 届满日期")
    removed_on: date | None = Field(None, description="Removed on / 移出日期")
    removal_reason: str | None = None
    removal_basis: str | None = None
    removal_authority: str | None = None
    measures: list[ListEntryMeasure] | None = Field(
        None, description="Joint-punishment measures (joint-punishment list) / 惩戒措施"
    )
    updated_at: datetime | None = Field(None, description="Last change / 更新时间")


class ListPage(_Out):
    list_name: str
    list_title: str
    items: list[PublicListEntry]
    next_cursor: str | None
    limit: int


class EnterpriseDetail(_Out):
    uscc: str
    name: str
    entity_type: str
    is_sole_trader: bool = Field(
        description="个体工商户: shown by business name; no address is published"
    )
    region_code: str
    region_name: str
    address: str | None = Field(
        description="Registered address; null for sole traders (a natural person's home) / 住所"
    )
    status: str
    registration_date: date | None
    category_codes: list[str]
    size: str
    channel: str
    supervising_unit_name: str | None
    results: list[PublicResult]
    list_entries: list[PublicListEntry]
    updated_at: datetime


class SigningKey(_Out):
    algorithm: Literal["Ed25519"]
    key_id: str = Field(description="First 16 hex characters of SHA-256 of the raw key")
    public_key_hex: str
    public_key_pem: str
    how_to_verify: str


class OverdueItem(_Out):
    result_id: int
    task_id: int
    uscc: str
    enterprise_name: str
    region_code: str
    check_item_code: str
    inspected_on: date
    due_date: date
    due_exact: bool
    due_note: str | None
    overdue: bool
    days_overdue: int
    final: bool
    task_status: str
    reason: str


class OverdueReport(_Out):
    today: date
    working_days: int
    overdue_count: int
    due_soon_count: int
    items: list[OverdueItem]


class PublishReport(_Out):
    published: int = Field(description="Final results published now / 本次公示结果数")
    published_due: int = Field(description="Held results published at their due date")
