"""API shapes of the statistics module (pass rates, trend, comparison, planning, warnings).

Every rate counts **batches tested** (检验批次): one tested sample batch with a final result is
one unit of the denominator. Floats that cannot be computed (no data, an infinite effective
size of a fully enumerated stratum) are ``null``, never NaN.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DENOMINATOR = "batches tested (检验批次)"

IntervalMethod = Literal["wilson", "wilson_cc", "clopper_pearson", "jeffreys", "agresti_coull"]


class FlagOut(BaseModel):
    small: bool = Field(
        description="Too little data for a rate to stand on its own: effective n < 30 or an "
        "interval wider than 0.30. Shown, not hidden. 样本量不足或区间过宽，仅供参考。"
    )
    reasons: list[str] = Field(default_factory=list, description="Why the row is flagged")


class WeightedOut(BaseModel):
    """Design-weighted (1/π) estimate of the population pass rate."""

    estimate: float | None = Field(description="Hájek estimate Σw·y/Σw, w = 1/π")
    se: float | None = Field(description="Standard error (stratified, with FPC)")
    n: int = Field(description="Batches used (those with an inclusion probability)")
    n_eff: float | None = Field(
        description="Effective sample size p̂(1−p̂)/SE², at most n; null for a census"
    )
    lower: float | None
    upper: float | None
    interval_method: str = Field(description="korn_graubard | wilson | census | none")


class TargetOut(BaseModel):
    target: float
    verdict: Literal["met", "not met", "not shown"] = Field(
        description="met: significantly above target; not met: significantly below; "
        "not shown: the data cannot tell. 达标 / 未达标 / 无法判断"
    )
    p_value: float | None = Field(description="One-sided p-value for H1: rate > target")
    p_value_below: float | None = Field(description="One-sided p-value for H1: rate < target")
    lower_bound: float | None = Field(description="One-sided lower confidence bound")
    basis: str = Field(description="Which counts the test used")


class PassRateRow(BaseModel):
    group: dict[str, str] = Field(
        description="Group keys by dimension, e.g. {'category': '03.02', 'region': '350100', "
        "'period': '2026Q3'}"
    )
    labels: dict[str, str] = Field(description="Readable names of the keys (中文)")
    tested: int = Field(description="Batches tested (denominator) / 检验批次")
    passed: int = Field(description="Batches with no nonconformity found / 未发现不合格批次")
    failed: int = Field(description="Batches failed / 不合格批次")
    rate: float | None = Field(description="passed / tested")
    lower: float | None
    upper: float | None
    method: str
    confidence: float
    flag: FlagOut
    weighted: WeightedOut | None = None
    target: TargetOut | None = None


class PassRatesOut(BaseModel):
    denominator: str = Field(DENOMINATOR, description="What one unit of the counts is")
    group_by: list[str]
    method: str
    confidence: float
    weighted: bool
    target: float | None
    filters: dict[str, str]
    rows: list[PassRateRow]
    overall: PassRateRow = Field(description="All filtered results together")
    methodology: str


class TrendPoint(BaseModel):
    period: str
    label: str
    tested: int
    passed: int
    rate: float | None
    lower: float | None
    upper: float | None


class TrendSeries(BaseModel):
    group: dict[str, str]
    labels: dict[str, str]
    points: list[TrendPoint]
    statistic: float = Field(description="Cochran–Armitage z (> 0: rising)")
    p_value: float = Field(description="Two-sided p-value")
    p_value_decreasing: float = Field(description="One-sided p-value for a falling pass rate")
    p_value_increasing: float
    direction: Literal["increasing", "decreasing", "flat"]
    significant_fall: bool = Field(description="p_value_decreasing < 1 − confidence")


class TrendOut(BaseModel):
    denominator: str = DENOMINATOR
    period: Literal["month", "quarter", "year"]
    group_by: list[str]
    method: str
    confidence: float
    periods: list[str]
    series: list[TrendSeries]
    methodology: str


class PairwiseOut(BaseModel):
    a: dict[str, str]
    b: dict[str, str]
    a_label: str
    b_label: str
    rate_a: float
    rate_b: float
    difference: float = Field(description="rate_a − rate_b")
    test: Literal["chi2", "fisher"]
    p_raw: float
    p_adjusted: float = Field(description="Benjamini–Hochberg adjusted")
    significant: bool


class CompareOut(BaseModel):
    denominator: str = DENOMINATOR
    group_by: list[str]
    groups: list[PassRateRow]
    statistic: float = Field(description="Pearson X² of homogeneity")
    df: int
    p_value: float
    expected_min: float = Field(description="Smallest expected count; < 5 → read the pairwise")
    pairwise: list[PairwiseOut]
    pairwise_omitted: bool = Field(
        description="True when there are too many groups for all pairs to be listed"
    )
    alpha: float
    methodology: str


class StratumIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stratum: str = Field(min_length=1, max_length=64, description="e.g. a credit class")
    population: int = Field(ge=0, le=10**9, description="N_h, units in the stratum")
    expected_rate: float | None = Field(
        None, gt=0, lt=1, description="Expected pass rate in the stratum (Neyman weights)"
    )


class SampleSizeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    margin: float | None = Field(
        None, ge=0.001, lt=0.5, description="Half-width e of the interval, e.g. 0.03 / 误差限"
    )
    confidence: float = Field(0.95, ge=0.5, le=0.9999)
    expected_rate: float = Field(
        0.5, gt=0, lt=1, description="Expected pass rate (0.5 is the conservative choice)"
    )
    population: int | None = Field(
        None, ge=1, le=10**9, description="Population size N when no strata are given"
    )
    strata: list[StratumIn] | None = Field(None, max_length=1000)
    allocation: Literal["proportional", "neyman"] = "proportional"
    zero_failure_p0: float | None = Field(
        None, gt=0, lt=1, description="Also: batches to test, all passing, to show rate > p0"
    )
    zero_failure_alpha: float = Field(0.05, gt=0, lt=0.5)

    @model_validator(mode="after")
    def _something_to_compute(self) -> SampleSizeIn:
        if self.margin is None and self.zero_failure_p0 is None:
            raise ValueError("give a margin, a zero_failure_p0, or both")
        if self.strata is not None:
            if not self.strata:
                raise ValueError("strata must not be empty when given")
            names = [s.stratum for s in self.strata]
            if len(set(names)) != len(names):
                raise ValueError("stratum names must be unique")
            if sum(s.population for s in self.strata) < 1:
                raise ValueError("the strata hold no units (all populations are 0)")
        return self


class StratumOut(BaseModel):
    stratum: str
    population: int
    n: int
    ratio: float | None = Field(description="n / population")


class SampleSizeOut(BaseModel):
    total: int | None = Field(description="Batches (or units) to sample for the margin")
    population: int | None
    margin: float | None
    confidence: float
    expected_rate: float
    design_rate: float | None = Field(
        description="The rate whose p(1−p) equals the stratified design variance used"
    )
    allocation: str | None
    strata: list[StratumOut]
    zero_failure_n: int | None = Field(
        description="n ≥ ln α / ln p₀: test this many, all passing, to show rate > p0"
    )
    zero_failure_p0: float | None
    zero_failure_alpha: float | None
    methodology: str


class WarningOut(BaseModel):
    dimension: str
    code: str
    label: str
    tested: int
    passed: int
    rate: float | None
    tested_prev: int
    passed_prev: int
    rate_prev: float | None
    change: float | None = Field(description="rate − rate_prev")
    p_fall: float | None = Field(description="One-sided Fisher exact p for a fall")
    p_below_target: float | None = Field(description="Exact binomial p for being below target")
    p_trend: float | None = Field(
        description="One-sided Cochran–Armitage p for a falling trend over the last periods"
    )
    evidence: float | None = Field(description="p-value used for ranking")
    q_value: float | None = Field(description="Benjamini–Hochberg adjusted across groups")
    flagged: bool
    reasons: list[str]


class WarningsOut(BaseModel):
    denominator: str = DENOMINATOR
    period: str
    previous_period: str
    trend_periods: int = Field(description="Periods in the trend test (< 3: no trend test)")
    target: float | None
    alpha: float
    screened: int = Field(description="Groups screened (BH controls the FDR across them)")
    warnings: list[WarningOut]
    methodology: str
