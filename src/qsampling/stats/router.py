"""Statistics API: pass rates, trend, comparison, planning, early warning, charts.

Analysts, supervisors and admins. Every number counts batches tested with a final result.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from qsampling.deps import Analyst, Session
from qsampling.errors import InvalidInput
from qsampling.responses import errors_for
from qsampling.stats import charts, service
from qsampling.stats.schemas import (
    CompareOut,
    IntervalMethod,
    PassRatesOut,
    SampleSizeIn,
    SampleSizeOut,
    TrendOut,
    WarningsOut,
)

router = APIRouter(prefix="/api/v1/stats", tags=["stats 统计"])

GROUP_BY_HELP = (
    "Repeat or comma-separate: category[:level] (level 1 = industry, 2, 3 …; without a level "
    "the code as recorded), region[:province|city|county] (default county), "
    "period[:month|quarter|year] (default quarter), size, channel. "
    "分组：产品类别（可指定层级）、地区（省/市/县）、周期（月/季/年）、企业规模、渠道。"
)

GroupBy = Annotated[list[str] | None, Query(description=GROUP_BY_HELP, max_length=8)]
FromDate = Annotated[
    date | None, Query(alias="from", description="Inspection end date from (inclusive) / 起")
]
ToDate = Annotated[
    date | None, Query(alias="to", description="Inspection end date to (inclusive) / 止")
]
CategoryQ = Annotated[
    str | None,
    Query(max_length=64, description="Category subtree, e.g. 03.02 / 产品类别（含下级）"),
]
RegionQ = Annotated[
    str | None,
    Query(max_length=6, description="Region code or prefix: 35, 3501, 350100 / 行政区划"),
]
CheckItemQ = Annotated[str | None, Query(max_length=32, description="Check item code / 抽查事项")]
PlanQ = Annotated[int | None, Query(ge=1, le=2**63 - 1, description="Only this plan's results")]
FollowUpQ = Annotated[
    bool,
    Query(
        description="Also count results of follow-up plans (re-inspections of earlier "
        "failures; not a random sample) / 计入跟踪复查结果"
    ),
]
MethodQ = Annotated[IntervalMethod, Query(description="Interval method / 区间方法")]
ConfidenceQ = Annotated[float, Query(gt=0.5, lt=1.0, description="Confidence level / 置信水平")]
WeightedQ = Annotated[
    bool,
    Query(description="Add the design-weighted (1/π) population estimate / 加权总体估计"),
]
TargetQ = Annotated[
    float | None,
    Query(gt=0.0, lt=1.0, description="Programme target, e.g. 0.93 / 目标合格率"),
]


def _filters(
    from_date: FromDate = None,
    to_date: ToDate = None,
    category: CategoryQ = None,
    region: RegionQ = None,
    check_item: CheckItemQ = None,
    plan_id: PlanQ = None,
    include_follow_up: FollowUpQ = False,
) -> service.StatsFilters:
    """The filters every statistics query shares (one dependency, one set of parameters)."""
    return service.StatsFilters(
        from_date=from_date,
        to_date=to_date,
        category=category,
        region=region,
        check_item=check_item,
        plan_id=plan_id,
        include_follow_up=include_follow_up,
    )


Filters = Annotated[service.StatsFilters, Depends(_filters)]


@router.get(
    "/pass-rates",
    response_model=PassRatesOut,
    responses=errors_for(401, 403, 422),
    summary="Pass rates per group with intervals / 分组合格率及置信区间",
)
async def get_pass_rates(
    actor: Analyst,
    session: Session,
    filters: Filters,
    group_by: GroupBy = None,
    method: MethodQ = "wilson",
    confidence: ConfidenceQ = 0.95,
    weighted: WeightedQ = False,
    target: TargetQ = None,
) -> PassRatesOut:
    """Batches tested, passed and failed per group, the pass rate and its interval.

    With `weighted=true` each row also carries the design-weighted population estimate
    (1/π, π = n_h/N_h stored at the draw), its standard error and effective sample size.
    With `target` each row gets a verdict (met / not met / not shown) and a p-value. Groups
    with too little data are flagged (`flag.small`), never hidden.
    按维度统计检验批次、未发现不合格批次与比率及其置信区间；可加权估计总体比率并与目标比较。"""
    return await service.pass_rates(
        session,
        group_by=group_by or [],
        filters=filters,
        method=method,
        confidence=confidence,
        weighted=weighted,
        target=target,
    )


@router.get(
    "/charts/pass-rates.svg",
    response_class=Response,
    responses={
        200: {"content": {"image/svg+xml": {}}, "description": "An SVG chart / SVG 图"},
        **errors_for(401, 403, 422),
    },
    summary="Pass-rate chart (SVG) with intervals and target line / 合格率图",
)
async def get_pass_rates_chart(
    actor: Analyst,
    session: Session,
    filters: Filters,
    group_by: GroupBy = None,
    method: MethodQ = "wilson",
    confidence: ConfidenceQ = 0.95,
    weighted: WeightedQ = False,
    target: TargetQ = None,
) -> Response:
    """The same parameters as `/pass-rates`, drawn: a dot per group, whiskers for the
    interval, a dashed line for the target, hollow dots for flagged groups."""
    result = await service.pass_rates(
        session,
        group_by=group_by or [],
        filters=filters,
        method=method,
        confidence=confidence,
        weighted=weighted,
        target=target,
    )
    return Response(charts.chart_for_pass_rates(result), media_type="image/svg+xml")


@router.get(
    "/trend",
    response_model=TrendOut,
    responses=errors_for(401, 403, 422),
    summary="Pass rate over periods with Cochran–Armitage trend test / 趋势",
)
async def get_trend(
    actor: Analyst,
    session: Session,
    filters: Filters,
    group_by: GroupBy = None,
    period: Annotated[
        str, Query(pattern="^(month|quarter|year)$", description="month | quarter | year")
    ] = "quarter",
    method: MethodQ = "wilson",
    confidence: ConfidenceQ = 0.95,
) -> TrendOut:
    """For each group (or all results when `group_by` is empty) the pass rate in every period
    from the first to the last, and a Cochran–Armitage test for a linear trend;
    `significant_fall` marks a significantly falling rate. 各周期比率与趋势检验。"""
    return await service.trend(
        session,
        group_by=group_by or [],
        period=period,
        filters=filters,
        method=method,
        confidence=confidence,
    )


@router.get(
    "/compare",
    response_model=CompareOut,
    responses=errors_for(401, 403, 422),
    summary="Homogeneity across groups, pairwise with Benjamini–Hochberg / 组间比较",
)
async def get_compare(
    actor: Analyst,
    session: Session,
    filters: Filters,
    group_by: GroupBy = None,
    method: MethodQ = "wilson",
    confidence: ConfidenceQ = 0.95,
    alpha: Annotated[float, Query(gt=0.0, lt=0.5, description="FDR level / 显著性")] = 0.05,
) -> CompareOut:
    """Do the groups (e.g. `group_by=region:city`) share one pass rate? Pearson chi-square
    over all groups, then every pair (chi-square or Fisher exact) with Benjamini–Hochberg
    adjusted p-values; pairs are listed for up to 50 groups. 卡方齐性检验及两两比较。"""
    return await service.compare(
        session,
        group_by=group_by or [],
        filters=filters,
        method=method,
        confidence=confidence,
        alpha=alpha,
    )


@router.post(
    "/sample-size",
    response_model=SampleSizeOut,
    responses=errors_for(401, 403, 422),
    summary="Sample size and allocation across strata / 样本量与分层分配",
)
async def post_sample_size(actor: Analyst, body: SampleSizeIn) -> SampleSizeOut:
    """Batches to test for a margin at a confidence (finite-population correction), split
    across strata proportionally or by Neyman allocation (capped at N_h); and the
    zero-failure size n ≥ ln α / ln p₀. A calculation only: nothing is stored.
    按误差限和置信水平计算样本量并分层分配；零失效方案样本量。"""
    return service.sample_size(body)


@router.get(
    "/early-warnings",
    response_model=WarningsOut,
    responses=errors_for(401, 403, 422),
    summary="Categories / regions whose pass rate fell or is below target / 质量预警",
)
async def get_early_warnings(
    actor: Analyst,
    session: Session,
    period: Annotated[
        str | None,
        Query(
            max_length=10,
            description="2026Q3, 2026-07 or 2026; default: the latest quarter with results",
        ),
    ] = None,
    group_by: GroupBy = None,
    category: CategoryQ = None,
    region: RegionQ = None,
    check_item: CheckItemQ = None,
    include_follow_up: FollowUpQ = False,
    target: TargetQ = None,
    alpha: Annotated[float, Query(gt=0.0, lt=0.5, description="FDR level / 显著性")] = 0.05,
    trend_periods: Annotated[
        int,
        Query(
            ge=0,
            le=24,
            description="Periods in the falling-trend test, ending with `period` (< 3: none) "
            "/ 趋势检验期数",
        ),
    ] = service.DEFAULT_TREND_PERIODS,
    include_all: Annotated[
        bool, Query(alias="all", description="List every screened group, not only flagged")
    ] = False,
) -> WarningsOut:
    """Screens each group (default: `category:1`, `category:2` and `region:city`, each on its
    own) of the period: a fall against the previous period of the same length (one-sided
    Fisher exact test), a falling trend over the last `trend_periods` periods
    (Cochran–Armitage) and, with `target`, being below the target (exact binomial); the
    p-values combined by Bonferroni, Benjamini–Hochberg across all screened groups.
    Strongest evidence first. 较上期显著下降、近期持续下降或显著低于目标的类别/地区，
    按证据强弱排序。"""
    per: service.Period | None = None
    if period is not None:
        try:
            per = service.parse_period(period)
        except ValueError as exc:
            raise InvalidInput(f"{exc}. 统计周期无效。", code="InvalidPeriod") from exc
    return await service.early_warnings(
        session,
        period=per,
        group_by=group_by or service.DEFAULT_WARNING_GROUPS,
        filters=_filters(None, None, category, region, check_item, None, include_follow_up),
        target=target,
        alpha=alpha,
        trend_periods=trend_periods,
        include_all=include_all,
    )


@router.get(
    "/report.html",
    response_class=Response,
    responses={
        200: {"content": {"text/html": {}}, "description": "The printable report / 报告"},
        **errors_for(401, 403, 422),
    },
    summary="Quality report per industry (printable HTML) / 分行业质量状况分析报告",
)
async def get_report(
    actor: Analyst,
    session: Session,
    period: Annotated[str, Query(max_length=10, description="2026Q3, 2026-07 or 2026 / 统计期")],
    target: TargetQ = None,
    confidence: ConfidenceQ = 0.95,
) -> Response:
    """The same report as `qsampling report --period …`: per industry tables, charts,
    trend, early warnings and methodology notes in Chinese; A4 print CSS, no scripts."""
    from qsampling.stats.report import build_report

    try:
        per = service.parse_period(period)
    except ValueError as exc:
        raise InvalidInput(f"{exc}. 统计期无效。", code="InvalidPeriod") from exc
    html = await build_report(session, period=per, target=target, confidence=confidence)
    return Response(html, media_type="text/html; charset=utf-8")
