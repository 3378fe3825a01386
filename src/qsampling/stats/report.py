"""分行业质量状况分析报告: the printable HTML quality report for one period.

``qsampling report --period 2026Q3 --out report.html [--target 0.93]`` and
``GET /api/v1/stats/report.html``. One section per industry (top-level product category):
tables by sub-category and by city, inline SVG charts (population estimates with intervals
and the target line), the trend over the last periods with its Cochran–Armitage test, the
early warnings of the industry; an overview and methodology notes in Chinese. A4, print CSS,
no scripts, no external resources: the file can be mailed, archived or printed as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.errors import InvalidInput
from qsampling.stats import charts, service
from qsampling.stats.schemas import (
    PassRateRow,
    PassRatesOut,
    TargetOut,
    TrendSeries,
    WarningOut,
)

VERDICT_ZH = {
    "met": "达标（显著高于目标）",
    "not met": "未达标（显著低于目标）",
    "not shown": "无法判断（数据不足以得出结论）",
}
INTERVAL_ZH = {
    "wilson": "Wilson",
    "korn_graubard": "Korn–Graubard",
    "census": "全数（无抽样误差）",
    "none": "—",
}


@dataclass
class IndustrySection:
    code: str
    name: str
    overall: PassRateRow
    subcategories: PassRatesOut
    regions: PassRatesOut
    chart_subcategories: Markup
    chart_regions: Markup
    trend: TrendSeries | None
    chart_trend: Markup | None
    warnings: list[WarningOut] = field(default_factory=list)


@dataclass
class ReportData:
    period: service.Period
    target: float | None
    confidence: float
    generated_at: datetime
    industries: PassRatesOut
    chart_industries: Markup
    trend: TrendSeries | None
    chart_trend: Markup | None
    warnings: list[WarningOut]
    warnings_screened: int
    trend_periods: int
    sections: list[IndustrySection]
    trend_from: service.Period


def _pct(v: float | None, digits: int = 1) -> str:
    return charts.pct(v, digits)


def _num(v: float | None, digits: int = 1) -> str:
    if v is None or not math.isfinite(v):
        return "—"
    return f"{v:.{digits}f}"


def _p(v: float | None) -> str:
    """ "p < 0.001" or "p = 0.034"."""
    if v is None or not math.isfinite(v):
        return "p —"
    return "p < 0.001" if v < 0.001 else f"p = {v:.3f}"


def _q(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "—"
    return "< 0.001" if v < 0.001 else f"{v:.3f}"


def _int(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "—"
    return f"{v:,.0f}"


def _target_p(t: TargetOut) -> str:
    """The one-sided p-value of the direction the verdict is about."""
    if t.verdict == "not met":
        return f"低于目标单侧 {_p(t.p_value_below)}"
    return f"高于目标单侧 {_p(t.p_value)}"


def _reason_zh(reason: str) -> str:
    """The Chinese half of a warning reason ("fell … (较上期显著下降)" → 较上期显著下降)."""
    if reason.endswith(")") and "(" in reason:
        return reason[reason.rindex("(") + 1 : -1]
    return reason


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("qsampling", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = _pct
    env.filters["num"] = _num
    env.filters["ptext"] = _p
    env.filters["qval"] = _q
    env.filters["int"] = _int
    env.globals["VERDICT_ZH"] = VERDICT_ZH
    env.globals["INTERVAL_ZH"] = INTERVAL_ZH
    env.globals["reason_zh"] = _reason_zh
    env.globals["target_p"] = _target_p
    return env


async def _trends(
    session: AsyncSession, *, kind: str, filters: service.StatsFilters, group_by: list[str]
) -> list[TrendSeries]:
    try:
        return (
            await service.trend(session, period=kind, filters=filters, group_by=group_by)
        ).series
    except InvalidInput:  # fewer than two periods: no trend to show
        return []


def _within(result: PassRatesOut, industry: str, *, drop: str | None = None) -> PassRatesOut:
    """The rows of one industry (category:1 code), optionally without the category key."""
    rows = []
    for r in result.rows:
        code = r.group.get("category", "")
        if code != industry and not code.startswith(industry + "."):
            continue
        if drop:
            r = r.model_copy(
                update={
                    "group": {k: v for k, v in r.group.items() if k != drop},
                    "labels": {k: v for k, v in r.labels.items() if k != drop},
                }
            )
        rows.append(r)
    group_by = [g for g in result.group_by if not (drop and g.startswith(drop))]
    return result.model_copy(update={"rows": rows, "group_by": group_by})


async def collect(
    session: AsyncSession,
    *,
    period: service.Period,
    target: float | None = None,
    confidence: float = 0.95,
    trend_periods: int = 8,
) -> ReportData:
    """Every number of the report, through the same service functions as the API.

    A handful of grouped queries for all industries at once, split afterwards: weighted
    estimates are domain estimates of the whole draws, so a split of the grouped answer
    equals the answer filtered to the industry."""
    service.check_options(method="wilson", confidence=confidence, target=target)
    in_period = service.StatsFilters(from_date=period.start, to_date=period.last_day)
    first = period.back(trend_periods - 1)
    trend_range = service.StatsFilters(from_date=first.start, to_date=period.last_day)

    async def rates(group_by: list[str]) -> PassRatesOut:
        return await service.pass_rates(
            session,
            group_by=group_by,
            filters=in_period,
            weighted=True,
            target=target,
            confidence=confidence,
        )

    industries = await rates(["category:1"])
    subcategories = await rates(["category:2"])
    regions = await rates(["category:1", "region:city"])
    warnings = await service.early_warnings(session, period=period, target=target)
    overall = await _trends(session, kind=period.kind, filters=trend_range, group_by=[])
    by_industry = {
        s.group["category"]: s
        for s in await _trends(
            session, kind=period.kind, filters=trend_range, group_by=["category:1"]
        )
    }
    scope_zh = f"{period.label_zh}；按抽样设计加权（1/π）；分母：检验批次"

    def trend_svg(series: TrendSeries | None, title: str) -> Markup | None:
        if series is None:
            return None
        return Markup(charts.trend_chart(series, title=title, target=target, confidence=confidence))

    sections: list[IndustrySection] = []
    for row in industries.rows:
        code = row.group["category"]
        name = row.labels["category"]
        subs = _within(subcategories, code)
        regs = _within(regions, code, drop="category")
        tr = by_industry.get(code)
        own = [
            w
            for w in warnings.warnings
            if w.dimension.startswith("category")
            and (w.code == code or w.code.startswith(code + "."))
        ]
        sections.append(
            IndustrySection(
                code=code,
                name=name,
                overall=row,
                subcategories=subs,
                regions=regs,
                chart_subcategories=Markup(
                    charts.chart_for_pass_rates(
                        subs, title=f"{name}：各类产品总体估计", subtitle=scope_zh
                    )
                ),
                chart_regions=Markup(
                    charts.chart_for_pass_rates(
                        regs, title=f"{name}：各设区市总体估计", subtitle=scope_zh
                    )
                ),
                trend=tr,
                chart_trend=trend_svg(tr, f"{name}：近 {trend_periods} 期趋势"),
                warnings=own,
            )
        )
    overall_trend = overall[0] if overall else None
    return ReportData(
        period=period,
        target=target,
        confidence=confidence,
        generated_at=datetime.now(UTC),
        industries=industries,
        chart_industries=Markup(
            charts.chart_for_pass_rates(
                industries, title="各行业未发现不合格率总体估计", subtitle=scope_zh
            )
        ),
        trend=overall_trend,
        chart_trend=trend_svg(overall_trend, f"全部产品：近 {trend_periods} 期趋势"),
        warnings=warnings.warnings,
        warnings_screened=warnings.screened,
        trend_periods=warnings.trend_periods,
        sections=sections,
        trend_from=first,
    )


def render(data: ReportData) -> str:
    return _env().get_template("stats/report.html.j2").render(r=data, **_texts(data))


def _texts(data: ReportData) -> dict[str, Any]:
    conf = f"{data.confidence * 100:g}%"
    return {"conf": conf}


async def build_report(
    session: AsyncSession,
    *,
    period: service.Period,
    target: float | None = None,
    confidence: float = 0.95,
) -> str:
    """The complete HTML document."""
    return render(await collect(session, period=period, target=target, confidence=confidence))
