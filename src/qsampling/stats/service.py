"""Pass-rate statistics from final results (DESIGN.md §5).

Where the numbers come from: the inspections module writes one row per tested sample batch
into ``final_results`` when a result becomes final (objection window closed, or retest done).
Only final results are in that table, so every statistic here counts final results only and
is current the moment a result is finalised — there is no cache to refresh.

How it is computed (rule 8 of the house style): PostgreSQL aggregates (``count(*)``,
``count(*) FILTER (WHERE passed)``) grouped by the requested keys — for questions by
category, region and period alone, the whole months come from ``final_result_counts``, a
monthly summary that triggers keep equal to ``final_results`` in the same statement, and
only the days of a partly covered first or last month from the results themselves; the
handful of grouped rows then go through the pure, vectorised maths of
:mod:`qsampling.core.stats` (intervals, tests, design-weighted estimates) in one NumPy call
per statistic. The category tree is
rolled up after aggregation (category codes are grouped as recorded, then cut to the first
k dotted components), so any tree level costs the same single scan.

Services take keyword arguments and a session and never write.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import TypeAdapter
from scipy import stats as sps
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.core import stats as core
from qsampling.errors import InvalidInput
from qsampling.stats.schemas import (
    DENOMINATOR,
    CompareOut,
    PairwiseOut,
    PassRateRow,
    PassRatesOut,
    SampleSizeIn,
    SampleSizeOut,
    StratumOut,
    TrendOut,
    TrendPoint,
    TrendSeries,
    WarningOut,
    WarningsOut,
)

# --------------------------------------------------------------------------------------------
# the source table (written by the inspections module when a result becomes final)
# --------------------------------------------------------------------------------------------

TABLE = "final_results"
COL = {
    "category": "category_code",
    "region": "region_code",
    "date": "inspected_on",
    "size": "enterprise_size",
    "channel": "channel",
    "check_item": "check_item_code",
    "passed": "passed",
    "plan": "plan_id",
    "stratum": "stratum",
    "pi": "inclusion_probability",
    "follow_up": "follow_up",
}

# --------------------------------------------------------------------------------------------
# thresholds and texts
# --------------------------------------------------------------------------------------------

MIN_N_EFF = 30.0
MAX_WIDTH = 0.30
MAX_PAIRWISE_GROUPS = 50
MAX_TREND_PERIODS = 240
DIMENSIONS = ("category", "region", "period", "size", "channel")
REGION_LEVELS = {"province": 2, "city": 4, "county": 6}
PERIOD_KINDS = ("month", "quarter", "year")
SIZE_LABELS = {"large": "大型", "medium": "中型", "small": "小型", "micro": "微型"}
CHANNEL_LABELS = {"production": "生产", "circulation": "流通", "e-commerce": "电商"}
NOT_RECORDED = "未登记"

METHODOLOGY = (
    "Denominator: batches tested with a final result (检验批次). Rate = batches with no "
    "nonconformity found / batches tested. Intervals: Wilson score by default (Clopper–Pearson "
    "exact, Jeffreys, Agresti–Coull, Wilson with continuity correction on request); exact 0 "
    "and 1 ends when none or all passed. Weighted: each batch weighted by 1/π, π = n_h/N_h "
    "stored at the draw (Hájek estimator, stratified variance with finite-population "
    "correction, effective n = p̂(1−p̂)/SE² capped at n; Korn–Graubard interval when n_eff < "
    "30). Unweighted rates of over-sampled risk classes are biased low and are not the "
    "population rate. Target: one-sided exact binomial test (weighted: on effective counts), "
    "verdict met / not met / not shown at α = 1 − confidence. Rows with effective n < 30 or "
    "an interval wider than 0.30 are flagged, not hidden. "
    "分母为检验批次（有最终结论的样品批次）；比率 = 未发现不合格批次 / 检验批次；默认 Wilson "
    "区间；加权估计按 1/π 加权（Hájek 估计、分层方差含有限总体校正、有效样本量，小样本用 "
    "Korn–Graubard 区间）；有效样本量不足 30 或区间宽于 0.30 的行予以标注而不隐藏。"
)


# --------------------------------------------------------------------------------------------
# request vocabulary: group specs, filters, periods
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupSpec:
    """One grouping dimension with its level.

    ``category``: level 1, 2, … (first k dotted components) or None (code as recorded);
    ``region``: "province" | "city" | "county"; ``period``: "month" | "quarter" | "year".
    """

    dimension: str
    level: int | str | None = None

    @property
    def name(self) -> str:
        return self.dimension if self.level is None else f"{self.dimension}:{self.level}"


def parse_group_spec(value: str) -> GroupSpec:
    raw = value.strip()
    dim, _, detail = raw.partition(":")
    dim = dim.strip().lower()
    detail = detail.strip().lower()
    if dim not in DIMENSIONS:
        raise _bad_group(raw)
    if dim == "category":
        if not detail:
            return GroupSpec("category", None)
        if not detail.isdigit() or not 1 <= int(detail) <= 10:
            raise _bad_group(raw)
        return GroupSpec("category", int(detail))
    if dim == "region":
        detail = detail or "county"
        if detail not in REGION_LEVELS:
            raise _bad_group(raw)
        return GroupSpec("region", detail)
    if dim == "period":
        detail = detail or "quarter"
        if detail not in PERIOD_KINDS:
            raise _bad_group(raw)
        return GroupSpec("period", detail)
    if detail:
        raise _bad_group(raw)
    return GroupSpec(dim, None)


def _bad_group(raw: str) -> InvalidInput:
    return InvalidInput(
        f"Cannot group by {raw!r}: use category[:level 1-10], region[:province|city|county], "
        "period[:month|quarter|year], size or channel. 分组维度无效。",
        code="InvalidGroupBy",
    )


def parse_group_by(
    values: Iterable[str | GroupSpec] | None, *, max_dims: int = 4, separate: bool = False
) -> list[GroupSpec]:
    """``["category:2", "region:city"]`` or ``["category:2,region:city"]`` → specs."""
    specs: list[GroupSpec] = []
    for v in values or ():
        if isinstance(v, GroupSpec):
            specs.append(parse_group_spec(v.name))
            continue
        for part in v.split(","):
            if part.strip():
                specs.append(parse_group_spec(part))
    # groupings screened one by one (early warnings) may repeat a dimension at other levels
    dims = [s.name if separate else s.dimension for s in specs]
    if len(set(dims)) != len(dims):
        raise InvalidInput(
            "Each dimension may appear once in group_by. 每个分组维度只能出现一次。",
            code="InvalidGroupBy",
        )
    if len(specs) > max_dims:
        raise InvalidInput(
            f"Group by at most {max_dims} dimensions. 分组维度过多。", code="InvalidGroupBy"
        )
    return specs


_CATEGORY = re.compile(r"^[0-9A-Za-z]{1,8}(\.[0-9A-Za-z]{1,8}){0,9}$")
_CHECK_ITEM = re.compile(r"^[0-9A-Za-z_.\-]{1,32}$")


@dataclass(frozen=True)
class StatsFilters:
    """Which final results count: inspection date range (inclusive), a category subtree,
    a region (any prefix of the 6-digit code; "350100" means the city 3501), a check item,
    a plan. Results of follow-up plans (fixed targets, re-inspections of earlier failures —
    not a random sample) are left out unless ``include_follow_up``; the weighted estimate
    never uses them."""

    from_date: date | None = None
    to_date: date | None = None
    category: str | None = None
    region: str | None = None
    check_item: str | None = None
    plan_id: int | None = None
    include_follow_up: bool = False

    def validated(self) -> StatsFilters:
        if self.from_date and self.to_date and self.from_date > self.to_date:
            raise InvalidInput(
                "'from' must not be after 'to'. 开始日期不能晚于结束日期。", code="InvalidDateRange"
            )
        if self.category is not None and not _CATEGORY.match(self.category):
            raise InvalidInput(
                f"Category {self.category!r} is not a dotted category code like '03.02'. "
                "产品类别代码无效。",
                code="InvalidCategory",
            )
        region = self.region
        if region is not None:
            region = normalise_region_prefix(region)
        if self.check_item is not None and not _CHECK_ITEM.match(self.check_item):
            raise InvalidInput(
                "check_item must be a check-item code (letters, digits, . _ -). 抽查事项代码无效。",
                code="InvalidCheckItem",
            )
        if self.plan_id is not None and not 1 <= self.plan_id <= 2**63 - 1:
            raise InvalidInput("plan_id must be a positive integer.", code="InvalidPlan")
        return StatsFilters(
            self.from_date,
            self.to_date,
            self.category,
            region,
            self.check_item,
            self.plan_id,
            self.include_follow_up,
        )

    def describe(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.from_date:
            out["from"] = self.from_date.isoformat()
        if self.to_date:
            out["to"] = self.to_date.isoformat()
        if self.category:
            out["category"] = self.category
        if self.region:
            out["region"] = self.region
        if self.check_item:
            out["check_item"] = self.check_item
        if self.plan_id is not None:
            out["plan_id"] = str(self.plan_id)
        if self.include_follow_up:
            out["include_follow_up"] = "true"
        return out


def normalise_region_prefix(value: str) -> str:
    """ "35", "3501", "350100", "350000" → the prefix that selects that region's codes."""
    v = value.strip()
    if not v.isdigit() or len(v) not in (2, 4, 6):
        raise InvalidInput(
            f"Region {value!r} must be 2, 4 or 6 digits of a GB/T 2260 code. 行政区划代码无效。",
            code="InvalidRegion",
        )
    if len(v) == 6 and v.endswith("0000"):
        return v[:2]
    if len(v) == 6 and v.endswith("00"):
        return v[:4]
    return v


_PERIOD = re.compile(r"^(\d{4})(?:(?:-?Q([1-4]))|(?:-(\d{1,2})))?$", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class Period:
    """A reporting period: a month, quarter or year; ``end`` is exclusive."""

    start: date
    kind: str = field(compare=False)

    @property
    def end(self) -> date:
        return shift_period(self.start, self.kind, 1)

    @property
    def label(self) -> str:
        return period_label(self.start, self.kind)

    @property
    def label_zh(self) -> str:
        return period_label_zh(self.start, self.kind)

    @property
    def last_day(self) -> date:
        return date.fromordinal(self.end.toordinal() - 1)

    def previous(self) -> Period:
        return Period(shift_period(self.start, self.kind, -1), self.kind)

    def back(self, steps: int) -> Period:
        return Period(shift_period(self.start, self.kind, -steps), self.kind)


def parse_period(value: str, *, any_year: bool = False) -> Period:
    """A period from "2026Q3" (or "2026-Q3"), "2026-07" or "2026"; ValueError otherwise.

    Requests are limited to the years 1900–2999; ``any_year`` reads back the labels this
    module made from whatever dates the data hold."""
    m = _PERIOD.match(value.strip())
    if not m:
        raise ValueError(
            f"invalid period {value!r}: use a quarter like 2026Q3, a month like 2026-07 "
            "or a year like 2026"
        )
    year = int(m.group(1))
    if not (any_year and year >= 1) and not 1900 <= year <= 2999:
        raise ValueError(f"invalid period {value!r}: year out of range")
    if m.group(2):
        return Period(date(year, 3 * int(m.group(2)) - 2, 1), "quarter")
    if m.group(3):
        month = int(m.group(3))
        if not 1 <= month <= 12:
            raise ValueError(f"invalid period {value!r}: month must be 01-12")
        return Period(date(year, month, 1), "month")
    return Period(date(year, 1, 1), "year")


def period_of(day: date, kind: str) -> Period:
    if kind == "year":
        return Period(date(day.year, 1, 1), kind)
    if kind == "quarter":
        return Period(date(day.year, 3 * ((day.month - 1) // 3) + 1, 1), kind)
    return Period(date(day.year, day.month, 1), kind)


def shift_period(start: date, kind: str, steps: int) -> date:
    months = {"month": 1, "quarter": 3, "year": 12}[kind] * steps
    idx = start.year * 12 + start.month - 1 + months
    return date(idx // 12, idx % 12 + 1, 1)


def period_label(start: date, kind: str) -> str:
    if kind == "year":
        return f"{start.year:04d}"
    if kind == "quarter":
        return f"{start.year:04d}Q{(start.month - 1) // 3 + 1}"
    return f"{start.year:04d}-{start.month:02d}"


def period_label_zh(start: date, kind: str) -> str:
    if kind == "year":
        return f"{start.year}年"
    if kind == "quarter":
        q = "一二三四"[(start.month - 1) // 3]
        return f"{start.year}年第{q}季度"
    return f"{start.year}年{start.month}月"


# --------------------------------------------------------------------------------------------
# reference names (categories, regions) for labels
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _bundled_names() -> tuple[dict[str, str], dict[str, str]]:
    """Names from the reference data shipped with the package (fallback for empty tables)."""
    cats: dict[str, str] = {}
    regs: dict[str, str] = {}
    base = resources.files("qsampling.data")
    for name, target in (("categories.csv", cats), ("regions.csv", regs)):
        try:
            with base.joinpath(name).open(encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    target[row["code"]] = row["name"]
        except (FileNotFoundError, KeyError):  # pragma: no cover - packaging problem
            continue
    return cats, regs


@dataclass
class Names:
    categories: dict[str, str]
    regions: dict[str, str]

    def category(self, code: str) -> str:
        if not code:
            return NOT_RECORDED
        return self.categories.get(code, code)

    def region(self, code: str) -> str:
        if not code:
            return NOT_RECORDED
        return self.regions.get(code, code)


async def load_names(session: AsyncSession) -> Names:
    cats, regs = _bundled_names()
    categories = dict(cats)
    regions = dict(regs)
    for table, target in (("categories", categories), ("regions", regions)):
        rows = await session.execute(text(f"SELECT code, name FROM {table}"))  # noqa: S608
        for code, name in rows:
            target[code] = name
    return Names(categories, regions)


def key_label(spec: GroupSpec, code: str, names: Names) -> str:
    if spec.dimension == "category":
        return names.category(code)
    if spec.dimension == "region":
        return names.region(code)
    if spec.dimension == "period":
        if not code:
            return NOT_RECORDED
        return period_label_zh(parse_period(code, any_year=True).start, str(spec.level))
    if spec.dimension == "size":
        return SIZE_LABELS.get(code, code or NOT_RECORDED)
    return CHANNEL_LABELS.get(code, code or NOT_RECORDED)


# --------------------------------------------------------------------------------------------
# SQL building blocks
# --------------------------------------------------------------------------------------------


def _sql_key(spec: GroupSpec, date_column: str = COL["date"]) -> str:
    """The SELECT / GROUP BY expression of a dimension (category is rolled up later).
    ``date_column``: the column periods are cut from (the summary's ``month``)."""
    if spec.dimension == "category":
        return COL["category"]
    if spec.dimension == "region":
        digits = REGION_LEVELS[str(spec.level)]
        # region codes are 6 digits: the county level is the code itself
        return COL["region"] if digits == 6 else f"left({COL['region']}, {digits})"
    if spec.dimension == "period":
        # an explicit timestamp cast: date_trunc on a bare date would go through timestamptz
        # and the session time zone
        return f"date_trunc('{spec.level}', {date_column}::timestamp)::date"
    return COL[spec.dimension]


def _key_value(spec: GroupSpec, raw: Any) -> str:
    """The group key of a raw SQL value."""
    if raw is None:
        return ""
    if spec.dimension == "category":
        code = str(raw)
        if isinstance(spec.level, int):
            return ".".join(code.split(".")[: spec.level])
        return code
    if spec.dimension == "region":
        return str(raw).ljust(6, "0")
    if spec.dimension == "period":
        return period_label(raw, str(spec.level))
    return str(raw)


def _where_parts(filters: StatsFilters, params: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(design clauses, domain clauses). Plan, check item and follow-up select whole
    draws (design); dates, category and region select a domain within the draws."""
    design: list[str] = []
    domain: list[str] = []
    if filters.from_date:
        domain.append(f"{COL['date']} >= :from_date")
        params["from_date"] = filters.from_date
    if filters.to_date:
        domain.append(f"{COL['date']} <= :to_date")
        params["to_date"] = filters.to_date
    if filters.category:
        # a subtree: the code itself or anything below it (not "030" under "03")
        domain.append(f"({COL['category']} = :cat OR {COL['category']} LIKE :cat_like)")
        params["cat"] = filters.category
        params["cat_like"] = filters.category + ".%"
    if filters.region:
        domain.append(f"{COL['region']} LIKE :region_like")
        params["region_like"] = filters.region + "%"
    if filters.check_item:
        design.append(f"{COL['check_item']} = :check_item")
        params["check_item"] = filters.check_item
    if filters.plan_id is not None:
        design.append(f"{COL['plan']} = :plan_id")
        params["plan_id"] = filters.plan_id
    if not filters.include_follow_up:
        design.append(f"NOT {COL['follow_up']}")
    return design, domain


def _and(clauses: Sequence[str]) -> str:
    return " AND ".join(clauses) if clauses else "TRUE"


def _where(filters: StatsFilters, params: dict[str, Any]) -> str:
    design, domain = _where_parts(filters, params)
    return _and([*design, *domain])


Key = tuple[str, ...]


@dataclass
class Counts:
    """Grouped counts after roll-up: keys sorted, arrays aligned with them."""

    keys: list[Key]
    tested: npt.NDArray[np.int64]
    passed: npt.NDArray[np.int64]


async def grouped_counts(
    session: AsyncSession,
    *,
    specs: Sequence[GroupSpec],
    filters: StatsFilters,
    summary: bool = True,
) -> Counts:
    """Tested and passed batches per group: one aggregate query, then the roll-up.

    Grouped by category, region and period only, and filtered by nothing but dates,
    category, region and the follow-up flag (the common questions and the public page),
    the counts of whole months come from the summary ``final_result_counts`` and only
    the days of a partly covered first or last month from ``final_results``; the numbers
    are the same either way. ``summary=False`` always scans ``final_results``."""
    params: dict[str, Any] = {}
    exprs = [_sql_key(s) for s in specs]
    select_keys = "".join(f"{e} AS k{i}, " for i, e in enumerate(exprs))
    group = f" GROUP BY {', '.join(str(i + 1) for i in range(len(exprs)))}" if exprs else ""
    raw = (
        f"SELECT {select_keys}count(*) AS n, count(*) FILTER (WHERE {COL['passed']}) AS x "  # noqa: S608
        f"FROM {TABLE} WHERE {{where}}{group}"
    )
    months = _summary_months(specs, filters) if summary else None
    if months is None:
        sql = raw.format(where=_where(filters, params))
    else:
        sql = _summary_sql(specs, filters, months, raw, params)
    rows = (await session.execute(text(sql), params)).all()
    return _roll_up(specs, rows)


SUMMARY = "final_result_counts"
_SUMMARY_DIMENSIONS = frozenset({"category", "region", "period"})


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _summary_months(
    specs: Sequence[GroupSpec], filters: StatsFilters
) -> tuple[date | None, date | None] | None:
    """The whole months [lo, hi) the summary can answer for (None: unbounded), or None
    when the question needs columns the summary does not keep."""
    if any(s.dimension not in _SUMMARY_DIMENSIONS for s in specs):
        return None
    if filters.check_item or filters.plan_id is not None:
        return None
    lo = hi = None
    if filters.from_date:
        lo = filters.from_date if filters.from_date.day == 1 else _next_month(filters.from_date)
    if filters.to_date:
        hi = _month_start(filters.to_date)
        if _next_month(filters.to_date) == filters.to_date + timedelta(days=1):
            hi = _next_month(filters.to_date)
    return lo, hi


def _summary_sql(
    specs: Sequence[GroupSpec],
    filters: StatsFilters,
    months: tuple[date | None, date | None],
    raw: str,
    params: dict[str, Any],
) -> str:
    """The summary's whole months plus the raw rows of the partly covered ones, added up
    per group."""
    lo, hi = months
    design, domain = _where_parts(
        StatsFilters(
            category=filters.category,
            region=filters.region,
            include_follow_up=filters.include_follow_up,
        ),
        params,
    )
    parts: list[str] = []
    if lo is None or hi is None or lo < hi:
        clauses = [*design, *domain]
        if lo is not None:
            clauses.append("month >= :sum_lo")
            params["sum_lo"] = lo
        if hi is not None:
            clauses.append("month < :sum_hi")
            params["sum_hi"] = hi
        exprs = [_sql_key(s, date_column="month") for s in specs]
        keys = "".join(f"{e} AS k{i}, " for i, e in enumerate(exprs))
        parts.append(
            f"SELECT {keys}tested AS n, passed AS x FROM {SUMMARY} "  # noqa: S608
            f"WHERE {_and(clauses)}"
        )
        # the days outside the whole months, if the range has any
        # (as closed ranges, so that the planner can use the index on the date)
        edges: list[str] = []
        if lo is not None and filters.from_date and filters.from_date < lo:
            edges.append(f"({COL['date']} >= :from_date AND {COL['date']} < :sum_lo)")
        if hi is not None and filters.to_date and filters.to_date >= hi:
            edges.append(f"({COL['date']} >= :sum_hi AND {COL['date']} <= :to_date)")
        if edges:
            edge = "(" + " OR ".join(edges) + ")"
            parts.append(raw.format(where=_and([_where(filters, params), edge])))
    else:
        parts.append(raw.format(where=_where(filters, params)))
    cols = "".join(f"k{i}, " for i in range(len(specs)))
    group = f" GROUP BY {', '.join(f'k{i}' for i in range(len(specs)))}" if specs else ""
    union = " UNION ALL ".join(f"({p})" for p in parts)
    return f"SELECT {cols}sum(n)::bigint AS n, sum(x)::bigint AS x FROM ({union}) AS u{group}"


def _convert_column(spec: GroupSpec, values: Sequence[Any]) -> list[str]:
    """Group keys of one column, converting each distinct raw value once."""
    conv = {v: _key_value(spec, v) for v in set(values)}
    return [conv[v] for v in values]


def _roll_up(specs: Sequence[GroupSpec], rows: Sequence[Any]) -> Counts:
    """SQL rows (keys…, n, x) → sorted keys and counts; merges rows that roll up to one key
    (category codes cut to a tree level). Per-group Python work is kept to list operations:
    this runs once per group, not per result."""
    m = len(specs)
    rows = [r for r in rows if r[m]]  # no GROUP BY and no rows: one row with count 0
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return Counts([], empty, empty.copy())
    cols = list(zip(*rows, strict=True))
    n_all = np.asarray(cols[m], dtype=np.int64)
    x_all = np.asarray(cols[m + 1], dtype=np.int64)
    key_cols = [_convert_column(s, cols[i]) for i, s in enumerate(specs)]
    keys_all: list[Key] = list(zip(*key_cols, strict=True)) if m else [()] * len(rows)
    if any(s.dimension == "category" and isinstance(s.level, int) for s in specs):
        index: dict[Key, int] = {}
        idx = np.fromiter(
            (index.setdefault(k, len(index)) for k in keys_all), dtype=np.int64, count=len(rows)
        )
        keys = list(index)
        tested = np.bincount(idx, weights=n_all, minlength=len(keys)).astype(np.int64)
        passed = np.bincount(idx, weights=x_all, minlength=len(keys)).astype(np.int64)
    else:
        keys, tested, passed = keys_all, n_all, x_all
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return Counts([keys[i] for i in order], tested[order], passed[order])


@dataclass
class Weighted:
    """Design-weighted estimates aligned with a list of keys (nan where no π is known)."""

    estimate: npt.NDArray[np.float64]
    se: npt.NDArray[np.float64]
    n: npt.NDArray[np.int64]
    n_eff: npt.NDArray[np.float64]
    lower: npt.NDArray[np.float64]
    upper: npt.NDArray[np.float64]
    interval_method: list[str]


async def weighted_estimates(
    session: AsyncSession,
    *,
    specs: Sequence[GroupSpec],
    filters: StatsFilters,
    keys: Sequence[Key],
    confidence: float,
) -> tuple[Weighted, Weighted]:
    """Weighted estimate per group and for all groups together.

    Rows sharing every attribute the estimator uses (group, plan, stratum, π, outcome) are
    exchangeable, so PostgreSQL returns them counted and the core estimator sums with those
    multiplicities: exactly the per-batch result, at the cost of the distinct rows. Design strata
    are (plan, stratum): each plan is its own stratified draw. Batches without an inclusion
    probability in (0, 1] and those of follow-up plans (fixed targets, not drawn) are left out
    of the weighted estimate; ``n`` says how many were used.

    Filters on dates, category and region select *domains* of those draws: the estimator
    still sees every result of each draw that reaches the domain (rows outside carry no
    group), as the core requires for domain estimation, so a filtered estimate and the same
    group of an unfiltered one agree (R's ``survey::subset`` behaves the same way). Plan,
    check item and the follow-up switch select whole draws.
    """
    params: dict[str, Any] = {}
    design, domain = _where_parts(filters, params)
    design = [
        *[c for c in design if c != f"NOT {COL['follow_up']}"],
        f"NOT {COL['follow_up']}",
        f"{COL['pi']} > 0",
        f"{COL['pi']} <= 1",
    ]
    m = len(specs)
    if domain:
        # domain estimation (Särndal et al. 1992 §10.3): every result of the draws that
        # reach the domain stays in, rows outside it with no group (z = 0), so that n_h and
        # the stratum means are those of the whole stratified sample
        in_domain = _and(domain)
        keys_sql = "".join(f"CASE WHEN {in_domain} THEN {_sql_key(s)} END, " for s in specs)
        source = (
            f"FROM {TABLE} WHERE {_and(design)} AND {COL['plan']} IN "
            f"(SELECT DISTINCT {COL['plan']} FROM {TABLE} WHERE {_and([*design, *domain])})"
        )
        flag = f"({in_domain}) AS in_domain, "
    else:
        keys_sql = "".join(f"{_sql_key(s)}, " for s in specs)
        source = f"FROM {TABLE} WHERE {_and(design)}"
        flag = "TRUE AS in_domain, "
    design_cols = f"{COL['plan']}, {COL['stratum']}, {COL['pi']}, {COL['passed']}"
    sql = (
        f"SELECT {keys_sql}{flag}{design_cols}, count(*) {source} "  # noqa: S608
        f"GROUP BY {', '.join(str(i + 1) for i in range(m + 5))}"
    )
    rows = (await session.execute(text(sql), params)).all()
    index = {k: i for i, k in enumerate(keys)}
    outside = len(keys)  # the group of rows outside the domain (dropped afterwards)
    if rows:
        cols = list(zip(*rows, strict=True))
        key_cols = [_convert_column(s, cols[i]) for i, s in enumerate(specs)]
        keys_all: list[Key] = list(zip(*key_cols, strict=True)) if m else [()] * len(rows)
        # an in-domain key without unweighted counts cannot occur (same filters); should it,
        # the row still counts for the design, outside every reported group
        gi = np.fromiter(
            (
                index.get(k, outside) if inside else outside
                for k, inside in zip(keys_all, cols[m], strict=True)
            ),
            dtype=np.int64,
            count=len(rows),
        )
        strata: dict[tuple[Any, Any], int] = {}
        hi = np.fromiter(
            (
                strata.setdefault(ps, len(strata))
                for ps in zip(cols[m + 1], cols[m + 2], strict=True)
            ),
            dtype=np.int64,
            count=len(rows),
        )
        pi_r = np.asarray(cols[m + 3], dtype=float)
        y_r = np.asarray(cols[m + 4], dtype=bool).astype(float)
        c_r = np.asarray(cols[m + 5], dtype=np.int64)
    else:
        gi = hi = c_r = np.zeros(0, dtype=np.int64)
        pi_r = y_r = np.zeros(0, dtype=float)
    # each counted row stands for c_r identical batches: the core sums with multiplicities
    in_dom = (gi != outside).astype(np.int64)
    per_group = _expand(
        core.weighted_estimate_grouped(gi, y_r, pi_r, hi, None, confidence, counts=c_r),
        len(keys) + 1,
    )
    per_group = _take(per_group, len(keys))
    # all in-domain rows together: group 1, the rest group 0
    overall = _take(
        _expand(
            core.weighted_estimate_grouped(in_dom, y_r, pi_r, hi, None, confidence, counts=c_r),
            2,
        ),
        1,
        offset=1,
    )
    return per_group, overall


def _take(w: Weighted, size: int, *, offset: int = 0) -> Weighted:
    sl = slice(offset, offset + size)
    return Weighted(
        estimate=w.estimate[sl],
        se=w.se[sl],
        n=w.n[sl],
        n_eff=w.n_eff[sl],
        lower=w.lower[sl],
        upper=w.upper[sl],
        interval_method=w.interval_method[sl],
    )


def _expand(res: core.WeightedEstimateGroups, size: int) -> Weighted:
    """Place the estimates of the groups that had data at their key positions."""
    out = Weighted(
        estimate=np.full(size, np.nan),
        se=np.full(size, np.nan),
        n=np.zeros(size, dtype=np.int64),
        n_eff=np.full(size, np.nan),
        lower=np.full(size, np.nan),
        upper=np.full(size, np.nan),
        interval_method=["none"] * size,
    )
    pos = np.asarray(res.groups, dtype=np.int64)
    if pos.shape[0] == 0:
        return out
    out.estimate[pos] = res.estimate
    out.se[pos] = res.se
    out.n[pos] = res.n
    out.n_eff[pos] = res.n_eff
    out.lower[pos] = res.lower
    out.upper[pos] = res.upper
    for i, p in enumerate(pos.tolist()):
        out.interval_method[p] = str(res.interval_method[i])
    return out


# --------------------------------------------------------------------------------------------
# target test on effective counts (weighted estimates)
# --------------------------------------------------------------------------------------------


def effective_target_test(
    estimate: npt.ArrayLike, n_eff: npt.ArrayLike, target: float, *, alpha: float
) -> core.TargetTestResult:
    """Target test for a design-weighted estimate, on Korn–Graubard effective counts.

    With x* = p̂·n* and n* = n_eff (Korn & Graubard 1998), the exact binomial tail
    P(X ≥ x | n, t) = I_t(x, n − x + 1) (the regularised incomplete beta function, i.e.
    ``scipy.stats.beta.cdf(t, x, n − x + 1)``) extends continuously to non-integer counts:
    p_value = I_t(x*, n* − x* + 1) (1 when x* = 0), p_value_below = 1 − I_t(x* + 1, n* − x*)
    (1 when x* = n*). The bounds are the one-sided Clopper–Pearson bounds on (x*, n*) from
    :func:`qsampling.core.stats.binomial_interval`. A census (n_eff = ∞) has no sampling
    error: the estimate is compared with the target directly. With integer counts this is
    exactly :func:`qsampling.core.stats.target_test`.
    """
    p = np.atleast_1d(np.asarray(estimate, dtype=float))
    ne = np.atleast_1d(np.asarray(n_eff, dtype=float))
    census = np.isinf(ne)
    missing = np.isnan(p) | np.isnan(ne) | (ne <= 0)
    ok = ~census & ~missing
    n_s = np.where(ok, ne, 1.0)
    x_s = np.clip(np.where(ok, p, 0.5) * n_s, 0.0, n_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_above = np.where(
            x_s <= 0, 1.0, sps.beta.cdf(target, np.maximum(x_s, 1e-300), n_s - x_s + 1.0)
        )
        p_below = np.where(
            x_s >= n_s, 1.0, sps.beta.sf(target, x_s + 1.0, np.maximum(n_s - x_s, 1e-300))
        )
    lower, _ = core.binomial_interval(
        x_s, n_s, method="clopper_pearson", confidence=1 - alpha, sided="lower"
    )
    _, upper = core.binomial_interval(
        x_s, n_s, method="clopper_pearson", confidence=1 - alpha, sided="upper"
    )
    p_above = np.where(census, np.where(p > target, 0.0, 1.0), p_above)
    p_below = np.where(census, np.where(p < target, 0.0, 1.0), p_below)
    lower = np.where(census, p, lower)
    upper = np.where(census, p, upper)
    p_above = np.where(missing & ~census, np.nan, p_above)
    p_below = np.where(missing & ~census, np.nan, p_below)
    lower = np.where(missing & ~census, np.nan, lower)
    upper = np.where(missing & ~census, np.nan, upper)
    verdict = np.where(p_above < alpha, "met", np.where(p_below < alpha, "not met", "not shown"))
    return core.TargetTestResult(
        verdict=verdict,
        p_value=p_above.astype(float),
        p_value_below=p_below.astype(float),
        lower_bound=np.asarray(lower, dtype=float),
        upper_bound=np.asarray(upper, dtype=float),
    )


# --------------------------------------------------------------------------------------------
# pass rates
# --------------------------------------------------------------------------------------------


def _f(v: Any) -> float | None:
    """JSON-safe float: nan and ±inf become None."""
    if v is None:
        return None
    x = float(v)
    return x if math.isfinite(x) else None


def check_options(*, method: str, confidence: float, target: float | None) -> None:
    if method not in core.METHODS:
        raise InvalidInput(
            f"Unknown interval method {method!r}; choose one of {', '.join(core.METHODS)}. "
            "区间方法无效。",
            code="InvalidMethod",
        )
    if not (isinstance(confidence, (int, float)) and 0.5 < confidence < 1.0):
        raise InvalidInput(
            "confidence must lie between 0.5 and 1 (e.g. 0.95). 置信水平无效。",
            code="InvalidConfidence",
        )
    if target is not None and not (
        isinstance(target, (int, float)) and math.isfinite(target) and 0.0 < target < 1.0
    ):
        raise InvalidInput(
            "target must be a pass rate strictly between 0 and 1 (e.g. 0.93 for 93%). "
            "目标值应在 0 与 1 之间。",
            code="InvalidTarget",
        )


_ROWS = TypeAdapter(list[PassRateRow])


def _labels_by_spec(
    specs: Sequence[GroupSpec], keys: Sequence[Key], names: Names
) -> list[list[str]]:
    """Labels per dimension, looked up once per distinct code."""
    out = []
    for j, spec in enumerate(specs):
        col = [k[j] for k in keys]
        cache = {c: key_label(spec, c, names) for c in set(col)}
        out.append([cache[c] for c in col])
    return out


def _none_list(values: npt.ArrayLike) -> list[float | None]:
    """Floats as a list, nan and ±inf → None (vectorised; JSON has no NaN)."""
    arr = np.atleast_1d(np.asarray(values, dtype=float))
    obj = arr.astype(object)
    obj[~np.isfinite(arr)] = None
    return obj.tolist()  # type: ignore[no-any-return]


def build_rows(
    *,
    specs: Sequence[GroupSpec],
    counts: Counts,
    names: Names,
    method: str,
    confidence: float,
    target: float | None,
    weighted: Weighted | None,
) -> list[PassRateRow]:
    """Vectorised: one core call per statistic over all groups, then plain lists.

    Rows are assembled as dicts and validated in one call of pydantic's (compiled)
    validator: per-row model construction would cost more than the aggregate itself with
    tens of thousands of groups (bench/stats.py)."""
    x = counts.passed
    n = counts.tested
    lower, upper = core.binomial_interval(x, n, method=method, confidence=confidence)
    lower = np.atleast_1d(lower)
    upper = np.atleast_1d(upper)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(n > 0, x / np.maximum(n, 1), np.nan)
    alpha = 1.0 - confidence
    if weighted is not None:
        flag_n, flag_lo, flag_hi = weighted.n_eff, weighted.lower, weighted.upper
    else:
        flag_n, flag_lo, flag_hi = n.astype(float), lower, upper
    small = np.atleast_1d(
        core.flag_small(flag_n, flag_lo, flag_hi, min_n=MIN_N_EFF, max_width=MAX_WIDTH)
    )
    with np.errstate(invalid="ignore"):
        few = ~(np.asarray(flag_n, dtype=float) >= MIN_N_EFF)
        wide = ~((np.asarray(flag_hi) - np.asarray(flag_lo)) <= MAX_WIDTH)
    reason_few = f"effective n < {MIN_N_EFF:g} (有效样本量不足)"
    reason_wide = f"interval wider than {MAX_WIDTH:.2f} (区间过宽)"

    tt: core.TargetTestResult | None = None
    basis = ""
    if target is not None and len(counts.keys):
        if weighted is not None:
            tt = effective_target_test(weighted.estimate, weighted.n_eff, target, alpha=alpha)
            basis = "weighted estimate, Korn–Graubard effective counts (加权有效样本)"
        else:
            tt = core.target_test(x, n, target, alpha=alpha)
            basis = "exact binomial on batches tested (检验批次精确二项检验)"

    labels = _labels_by_spec(specs, counts.keys, names)
    dims = [s.dimension for s in specs]
    n_l = n.tolist()
    x_l = x.tolist()
    rate_l = _none_list(rate)
    lo_l = _none_list(lower)
    hi_l = _none_list(upper)
    small_l = small.tolist()
    few_l = few.tolist()
    wide_l = wide.tolist()
    if weighted is not None:
        w_cols = (
            _none_list(weighted.estimate),
            _none_list(weighted.se),
            weighted.n.tolist(),
            _none_list(weighted.n_eff),
            _none_list(weighted.lower),
            _none_list(weighted.upper),
            weighted.interval_method,
        )
    if tt is not None:
        t_cols = (
            np.atleast_1d(tt.verdict).tolist(),
            _none_list(tt.p_value),
            _none_list(tt.p_value_below),
            _none_list(tt.lower_bound),
        )
    rows: list[dict[str, Any]] = []
    for i, key in enumerate(counts.keys):
        reasons: list[str] = []
        if small_l[i]:
            if few_l[i]:
                reasons.append(reason_few)
            if wide_l[i]:
                reasons.append(reason_wide)
        row: dict[str, Any] = {
            "group": dict(zip(dims, key, strict=True)),
            "labels": {d: labels[j][i] for j, d in enumerate(dims)},
            "tested": n_l[i],
            "passed": x_l[i],
            "failed": n_l[i] - x_l[i],
            "rate": rate_l[i],
            "lower": lo_l[i],
            "upper": hi_l[i],
            "method": method,
            "confidence": confidence,
            "flag": {"small": small_l[i], "reasons": reasons},
        }
        if weighted is not None:
            row["weighted"] = {
                "estimate": w_cols[0][i],
                "se": w_cols[1][i],
                "n": w_cols[2][i],
                "n_eff": w_cols[3][i],
                "lower": w_cols[4][i],
                "upper": w_cols[5][i],
                "interval_method": w_cols[6][i],
            }
        if tt is not None:
            row["target"] = {
                "target": target,
                "verdict": t_cols[0][i],
                "p_value": t_cols[1][i],
                "p_value_below": t_cols[2][i],
                "lower_bound": t_cols[3][i],
                "basis": basis,
            }
        rows.append(row)
    return _ROWS.validate_python(rows)


async def pass_rates(
    session: AsyncSession,
    *,
    group_by: Sequence[str | GroupSpec] = (),
    filters: StatsFilters | None = None,
    method: str = "wilson",
    confidence: float = 0.95,
    weighted: bool = False,
    target: float | None = None,
) -> PassRatesOut:
    """Pass rates of final results per group, with intervals, flags and target verdicts."""
    check_options(method=method, confidence=confidence, target=target)
    specs = parse_group_by(group_by)
    flt = (filters or StatsFilters()).validated()
    counts = await grouped_counts(session, specs=specs, filters=flt)
    total = Counts(
        keys=[()],
        tested=np.array([int(counts.tested.sum())], dtype=np.int64),
        passed=np.array([int(counts.passed.sum())], dtype=np.int64),
    )
    names = await load_names(session)
    w_groups: Weighted | None = None
    w_total: Weighted | None = None
    if weighted:
        w_groups, w_total = await weighted_estimates(
            session, specs=specs, filters=flt, keys=counts.keys, confidence=confidence
        )
    rows = build_rows(
        specs=specs,
        counts=counts,
        names=names,
        method=method,
        confidence=confidence,
        target=target,
        weighted=w_groups,
    )
    overall = build_rows(
        specs=[],
        counts=total,
        names=names,
        method=method,
        confidence=confidence,
        target=target,
        weighted=w_total,
    )[0]
    return PassRatesOut(
        denominator=DENOMINATOR,
        group_by=[s.name for s in specs],
        method=method,
        confidence=confidence,
        weighted=weighted,
        target=target,
        filters=flt.describe(),
        rows=rows,
        overall=overall,
        methodology=METHODOLOGY,
    )


async def public_pass_rates(
    session: AsyncSession,
    *,
    group_by: Sequence[str | GroupSpec] = (),
    filters: StatsFilters | None = None,
    method: str = "wilson",
    confidence: float = 0.95,
    weighted: bool = True,
    target: float | None = None,
) -> PassRatesOut:
    """Pass rates for the public statistics page (disclosure module).

    The same rows as :func:`pass_rates`. Safe to publish: only aggregate counts of final
    results by category, region, period, enterprise size and channel; no enterprise, no
    person, no credit class (the credit-class strata of the draw enter the weighted estimate
    only as design information and never appear in the output). Weighted by default: the
    public should see the population estimate, not the rate of an over-sampled risk mix.
    """
    return await pass_rates(
        session,
        group_by=group_by,
        filters=filters,
        method=method,
        confidence=confidence,
        weighted=weighted,
        target=target,
    )


# --------------------------------------------------------------------------------------------
# trend over ordered periods
# --------------------------------------------------------------------------------------------


TREND_METHODOLOGY = (
    "Cochran–Armitage test for a linear trend in the pass rate over the ordered periods "
    "(scores 0, 1, …, k−1 including periods without data, which contribute nothing); "
    "p_value_decreasing is the one-sided p-value for a falling rate. Per-period intervals as "
    "in pass-rates. Cochran–Armitage 趋势检验：p_value_decreasing 为合格率下降的单侧 p 值。"
)


async def trend(
    session: AsyncSession,
    *,
    group_by: Sequence[str | GroupSpec] = (),
    period: str = "quarter",
    filters: StatsFilters | None = None,
    method: str = "wilson",
    confidence: float = 0.95,
) -> TrendOut:
    """Per group, the pass rate in each period and a Cochran–Armitage trend test."""
    check_options(method=method, confidence=confidence, target=None)
    if period not in PERIOD_KINDS:
        raise InvalidInput(
            "period must be month, quarter or year. 统计周期无效。", code="InvalidPeriod"
        )
    specs = parse_group_by(group_by, max_dims=3)
    if any(s.dimension == "period" for s in specs):
        raise InvalidInput(
            "The trend runs over periods already: leave 'period' out of group_by and use the "
            "period parameter. 趋势分析无需按周期分组。",
            code="InvalidGroupBy",
        )
    flt = (filters or StatsFilters()).validated()
    p_spec = GroupSpec("period", period)
    counts = await grouped_counts(session, specs=[*specs, p_spec], filters=flt)
    periods = _period_axis(counts, period, flt)
    names = await load_names(session)
    p_index = {p.label: i for i, p in enumerate(periods)}
    group_keys = sorted({k[:-1] for k in counts.keys})
    g_index = {k: i for i, k in enumerate(group_keys)}
    x = np.zeros((len(group_keys), len(periods)), dtype=np.int64)
    n = np.zeros_like(x)
    for key, t, p in zip(counts.keys, counts.tested, counts.passed, strict=True):
        if key[-1] not in p_index:
            continue
        gi, pi = g_index[key[:-1]], p_index[key[-1]]
        n[gi, pi] = t
        x[gi, pi] = p
    series: list[TrendSeries] = []
    if group_keys:
        tr = core.cochran_armitage(x, n)
        lo, hi = core.binomial_interval(x, n, method=method, confidence=confidence)
        stat = np.atleast_1d(tr.statistic)
        p2 = np.atleast_1d(tr.p_value)
        pdec = np.atleast_1d(tr.p_value_decreasing)
        pinc = np.atleast_1d(tr.p_value_increasing)
        direc = np.atleast_1d(tr.direction)
        for gi, key in enumerate(group_keys):
            points = []
            for pi_, per in enumerate(periods):
                nn = int(n[gi, pi_])
                points.append(
                    TrendPoint(
                        period=per.label,
                        label=per.label_zh,
                        tested=nn,
                        passed=int(x[gi, pi_]),
                        rate=_f(x[gi, pi_] / nn) if nn else None,
                        lower=_f(lo[gi, pi_]),
                        upper=_f(hi[gi, pi_]),
                    )
                )
            series.append(
                TrendSeries(
                    group={s.dimension: key[j] for j, s in enumerate(specs)},
                    labels={s.dimension: key_label(s, key[j], names) for j, s in enumerate(specs)},
                    points=points,
                    statistic=float(stat[gi]),
                    p_value=float(p2[gi]),
                    p_value_decreasing=float(pdec[gi]),
                    p_value_increasing=float(pinc[gi]),
                    direction=str(direc[gi]),  # type: ignore[arg-type]
                    significant_fall=bool(pdec[gi] < 1.0 - confidence),
                )
            )
    return TrendOut(
        period=period,  # type: ignore[arg-type]
        group_by=[s.name for s in specs],
        method=method,
        confidence=confidence,
        periods=[p.label for p in periods],
        series=series,
        methodology=TREND_METHODOLOGY,
    )


def _period_axis(counts: Counts, kind: str, flt: StatsFilters) -> list[Period]:
    """Every period from the first to the last (with data, or the filter's range)."""
    present = [parse_period(k[-1], any_year=True) for k in counts.keys if k[-1]]
    starts = [p.start for p in present]
    first = period_of(flt.from_date, kind).start if flt.from_date else min(starts, default=None)
    last = period_of(flt.to_date, kind).start if flt.to_date else max(starts, default=None)
    if first is None or last is None:
        raise InvalidInput(
            "No final results in the selection: a trend needs at least two periods. "
            "所选范围内没有最终结果。",
            code="NotEnoughPeriods",
        )
    out = [Period(first, kind)]
    while out[-1].start < last:
        out.append(Period(shift_period(out[-1].start, kind, 1), kind))
        if len(out) > MAX_TREND_PERIODS:
            raise InvalidInput(
                f"At most {MAX_TREND_PERIODS} periods: narrow the date range or use a longer "
                "period. 周期过多。",
                code="TooManyPeriods",
            )
    if len(out) < 2:
        raise InvalidInput(
            "A trend needs at least two periods in the selection. 趋势分析至少需要两个周期。",
            code="NotEnoughPeriods",
        )
    return out


# --------------------------------------------------------------------------------------------
# homogeneity across groups
# --------------------------------------------------------------------------------------------


COMPARE_METHODOLOGY = (
    "Pearson chi-square test of homogeneity on the 2×k table (no Yates correction); every "
    "pair by chi-square, or Fisher's exact test when an expected count is below 5; pairwise "
    "p-values adjusted by Benjamini–Hochberg (false discovery rate α). "
    "卡方齐性检验；两两比较（期望频数 < 5 时用 Fisher 精确检验），Benjamini–Hochberg 校正。"
)


async def compare(
    session: AsyncSession,
    *,
    group_by: Sequence[str | GroupSpec],
    filters: StatsFilters | None = None,
    method: str = "wilson",
    confidence: float = 0.95,
    alpha: float = 0.05,
) -> CompareOut:
    """Do the groups share one pass rate? Overall chi-square and BH-controlled pairs."""
    if not 0.0 < alpha < 0.5:
        raise InvalidInput(
            "alpha must lie between 0 and 0.5. 显著性水平无效。", code="InvalidAlpha"
        )
    specs = parse_group_by(group_by)
    if not specs:
        raise InvalidInput(
            "Say what to compare: group_by=region:city, category:2, … 请指定比较的分组。",
            code="InvalidGroupBy",
        )
    res = await pass_rates(
        session, group_by=specs, filters=filters, method=method, confidence=confidence
    )
    rows = res.rows
    if len(rows) < 2:
        raise InvalidInput(
            "Comparing needs at least two groups with batches tested. 至少需要两个有数据的分组。",
            code="NotEnoughGroups",
        )
    x = np.array([r.passed for r in rows], dtype=np.int64)
    n = np.array([r.tested for r in rows], dtype=np.int64)
    omitted = len(rows) > MAX_PAIRWISE_GROUPS
    if omitted:
        # core.chi_square_homogeneity always tests every pair (k(k−1)/2 exact tests); with
        # this many groups only the overall Pearson test is run, the same way it does
        xk, fk = x, n - x
        if xk.sum() == 0 or fk.sum() == 0:
            statistic, df, p_value, expected_min = 0.0, len(rows) - 1, 1.0, 0.0
        else:
            ct = sps.chi2_contingency(np.vstack([xk, fk]), correction=False)
            statistic, df = float(ct.statistic), int(ct.dof)
            p_value, expected_min = float(ct.pvalue), float(np.min(ct.expected_freq))
        pairs: list[PairwiseOut] = []
    else:
        hom = core.chi_square_homogeneity(x, n, alpha=alpha)
        statistic, df, p_value, expected_min = hom.statistic, hom.df, hom.p_value, hom.expected_min
        pairs = []
        for pc, test in zip(hom.pairwise, hom.pairwise_tests, strict=True):
            a, b = rows[pc.i], rows[pc.j]
            ra = a.passed / a.tested
            rb = b.passed / b.tested
            pairs.append(
                PairwiseOut(
                    a=a.group,
                    b=b.group,
                    a_label=" · ".join(a.labels.values()),
                    b_label=" · ".join(b.labels.values()),
                    rate_a=ra,
                    rate_b=rb,
                    difference=ra - rb,
                    test=test,  # type: ignore[arg-type]
                    p_raw=pc.p_raw,
                    p_adjusted=pc.p_adjusted,
                    significant=pc.significant,
                )
            )
        pairs.sort(key=lambda p: (p.p_adjusted, p.p_raw))
    return CompareOut(
        group_by=res.group_by,
        groups=rows,
        statistic=statistic,
        df=df,
        p_value=p_value,
        expected_min=expected_min,
        pairwise=pairs,
        pairwise_omitted=omitted,
        alpha=alpha,
        methodology=COMPARE_METHODOLOGY,
    )


# --------------------------------------------------------------------------------------------
# planning
# --------------------------------------------------------------------------------------------


SAMPLE_SIZE_METHODOLOGY = (
    "n₀ = z²·S²/e² with S² = p(1−p) (one population), Σ W_h p_h(1−p_h) (stratified, "
    "proportional) or (Σ W_h √(p_h(1−p_h)))² (Neyman), W_h = N_h/N; with the finite-population "
    "correction n = n₀/(1 + (n₀−1)/N) (Cochran 1977 §4.4, §5.5); allocation across strata "
    "proportional to N_h or to N_h·S_h (Neyman), capped at N_h, rounded by largest remainder. "
    "Zero-failure plan: n ≥ ln α / ln p₀. 样本量按 Cochran 公式计算，含有限总体校正；"
    "零失效方案 n ≥ ln α / ln p₀。"
)


def sample_size(body: SampleSizeIn) -> SampleSizeOut:
    """Total and per-stratum sample sizes; the zero-failure size for a p₀."""
    strata_out: list[StratumOut] = []
    total: int | None = None
    design_rate: float | None = None
    population = body.population
    try:
        if body.margin is not None:
            if body.strata:
                sizes = np.array([s.population for s in body.strata], dtype=float)
                p_h = np.array(
                    [
                        s.expected_rate if s.expected_rate is not None else body.expected_rate
                        for s in body.strata
                    ]
                )
                big_n = float(sizes.sum())
                w_h = sizes / big_n
                s_h = np.sqrt(p_h * (1.0 - p_h))
                if body.allocation == "neyman":
                    var = float((w_h * s_h).sum()) ** 2
                else:
                    var = float((w_h * s_h * s_h).sum())
                # the rate whose p(1 − p) equals the design variance, so that the core's
                # Cochran formula applies unchanged
                design_rate = 0.5 + math.sqrt(max(0.25 - var, 0.0))
                design_rate = min(design_rate, 1.0 - 1e-12)
                population = int(big_n)
                total = core.sample_size_proportion(
                    body.margin, body.confidence, design_rate, population
                )
                alloc = core.allocate(total, sizes, method=body.allocation, p=p_h)
                for s, n_h in zip(body.strata, alloc.tolist(), strict=True):
                    strata_out.append(
                        StratumOut(
                            stratum=s.stratum,
                            population=s.population,
                            n=int(n_h),
                            ratio=(n_h / s.population) if s.population else None,
                        )
                    )
            else:
                design_rate = body.expected_rate
                total = core.sample_size_proportion(
                    body.margin, body.confidence, body.expected_rate, body.population
                )
        zf = (
            core.zero_failure_sample_size(body.zero_failure_p0, body.zero_failure_alpha)
            if body.zero_failure_p0 is not None
            else None
        )
    except ValueError as exc:
        raise InvalidInput(f"{exc}. 参数无效。", code="InvalidSampleSize") from exc
    return SampleSizeOut(
        total=total,
        population=population,
        margin=body.margin,
        confidence=body.confidence,
        expected_rate=body.expected_rate,
        design_rate=design_rate,
        allocation=body.allocation if body.strata else None,
        strata=strata_out,
        zero_failure_n=zf,
        zero_failure_p0=body.zero_failure_p0,
        zero_failure_alpha=body.zero_failure_alpha if body.zero_failure_p0 is not None else None,
        methodology=SAMPLE_SIZE_METHODOLOGY,
    )


# --------------------------------------------------------------------------------------------
# early warning
# --------------------------------------------------------------------------------------------


WARNING_METHODOLOGY = (
    "For each group of the period: a one-sided Fisher exact test of a fall against the "
    "previous period, with a target the exact binomial test of being below it, and the "
    "one-sided Cochran–Armitage test of a falling trend over the last trend_periods periods; "
    "the available p-values are combined by Bonferroni (k·min p), Benjamini–Hochberg across "
    "all screened groups; flagged when q ≤ α; strongest evidence first. "
    "预警：较上期显著下降（Fisher 精确检验）、显著低于目标（精确二项检验）或近期持续下降"
    "（Cochran–Armitage 趋势检验），以 Bonferroni 法合并，经 Benjamini–Hochberg 校正后 q ≤ α "
    "的分组，按证据强弱排序。"
)

DEFAULT_WARNING_GROUPS = ("category:1", "category:2", "region:city")
DEFAULT_TREND_PERIODS = 4


async def latest_period(session: AsyncSession, kind: str = "quarter") -> Period | None:
    last = await session.scalar(text(f"SELECT max({COL['date']}) FROM {TABLE}"))  # noqa: S608
    return period_of(last, kind) if last else None


def _combine_evidence(
    p_fall: npt.NDArray[np.float64],
    p_below: npt.NDArray[np.float64],
    p_trend: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Bonferroni union of the available tests: min(1, k·min p), k = how many exist.

    A valid p-value for "fell, or is below target, or is falling" (each p-value is valid
    under its own null; the Bonferroni bound needs no independence). This extends the
    two-test combination of :func:`qsampling.core.stats.early_warning` by the trend test.
    """
    stacked = np.vstack([p_fall, p_below, p_trend])
    k = (~np.isnan(stacked)).sum(axis=0).astype(float)
    best = np.min(np.where(np.isnan(stacked), 1.0, stacked), axis=0)
    return np.where(k > 0, np.minimum(1.0, k * best), np.nan)


async def early_warnings(
    session: AsyncSession,
    *,
    period: Period | None = None,
    group_by: Sequence[str | GroupSpec] = DEFAULT_WARNING_GROUPS,
    filters: StatsFilters | None = None,
    target: float | None = None,
    alpha: float = 0.05,
    trend_periods: int = DEFAULT_TREND_PERIODS,
    include_all: bool = False,
) -> WarningsOut:
    """Groups whose pass rate fell significantly — against the previous period, or as a
    falling trend over the last ``trend_periods`` periods — or lies significantly below the
    target; strongest evidence first.

    Each grouping in ``group_by`` (default: industries, product categories at level 2,
    cities) is screened on its own and all groups go into one Benjamini–Hochberg step.
    ``trend_periods`` below 3 leaves the trend test out (two periods are the fall test)."""
    if not 0.0 < alpha < 0.5:
        raise InvalidInput(
            "alpha must lie between 0 and 0.5. 显著性水平无效。", code="InvalidAlpha"
        )
    if not 0 <= trend_periods <= 24:
        raise InvalidInput(
            "trend_periods must be between 0 (no trend test) and 24. 趋势期数无效。",
            code="InvalidTrendPeriods",
        )
    check_options(method="wilson", confidence=0.95, target=target)
    specs = parse_group_by(group_by, separate=True, max_dims=6)
    if not specs:
        specs = parse_group_by(DEFAULT_WARNING_GROUPS, separate=True)
    if any(s.dimension == "period" for s in specs):
        raise InvalidInput(
            "Early warnings compare periods already: leave 'period' out of group_by. "
            "预警已按周期比较，请勿按周期分组。",
            code="InvalidGroupBy",
        )
    flt = (filters or StatsFilters()).validated()
    if period is None:
        period = await latest_period(session)
    if period is None:
        return WarningsOut(
            period="",
            previous_period="",
            trend_periods=trend_periods,
            target=target,
            alpha=alpha,
            screened=0,
            warnings=[],
            methodology=WARNING_METHODOLOGY,
        )
    window = max(trend_periods, 2)
    first = period.back(window - 1)
    # the period (and the window before it) replaces any date filter
    flt = StatsFilters(
        first.start,
        period.last_day,
        flt.category,
        flt.region,
        flt.check_item,
        flt.plan_id,
        flt.include_follow_up,
    )
    labels_axis = [period.back(window - 1 - i).label for i in range(window)]
    axis = {label: i for i, label in enumerate(labels_axis)}
    p_spec = GroupSpec("period", period.kind)
    names = await load_names(session)
    dims: list[str] = []
    codes: list[str] = []
    labels: list[str] = []
    x_rows: list[list[int]] = []
    n_rows: list[list[int]] = []
    for spec in specs:
        counts = await grouped_counts(session, specs=[spec, p_spec], filters=flt)
        series: dict[str, tuple[list[int], list[int]]] = {}
        for key, t, p in zip(counts.keys, counts.tested.tolist(), counts.passed.tolist(),
                             strict=True):  # fmt: skip
            j = axis.get(key[1])
            if j is None:
                continue
            xs, ns = series.setdefault(key[0], ([0] * window, [0] * window))
            xs[j] += p
            ns[j] += t
        for code, (xs, ns) in series.items():
            if ns[-1] == 0:
                continue  # nothing in the period: nothing to warn about
            dims.append(spec.name)
            codes.append(code)
            labels.append(key_label(spec, code, names))
            x_rows.append(xs)
            n_rows.append(ns)
    warnings: list[WarningOut] = []
    if codes:
        x = np.array(x_rows, dtype=np.int64)
        n = np.array(n_rows, dtype=np.int64)
        ew = core.early_warning(x[:, -1], n[:, -1], x[:, -2], n[:, -2], target=target, alpha=alpha)
        if trend_periods >= 3:
            trend_res = core.cochran_armitage(x, n)
            with_data = (n > 0).sum(axis=1) >= 2
            p_trend = np.where(
                with_data, np.atleast_1d(trend_res.p_value_decreasing), np.nan
            ).astype(float)
        else:
            p_trend = np.full(len(codes), np.nan)
        evidence = _combine_evidence(ew.p_fall, ew.p_below_target, p_trend)
        flagged, q = core.benjamini_hochberg(evidence, alpha=alpha)
        order = np.argsort(np.where(np.isnan(evidence), np.inf, evidence), kind="stable")
        for i in order.tolist():
            if not (bool(flagged[i]) or include_all):
                continue
            reasons: list[str] = []
            if ew.p_fall[i] <= alpha:
                reasons.append("fell against the previous period (较上期显著下降)")
            if p_trend[i] <= alpha:
                reasons.append(f"falling over the last {window} periods (近{window}期持续下降)")
            if ew.p_below_target[i] <= alpha:
                reasons.append("below target (显著低于目标)")
            warnings.append(
                WarningOut(
                    dimension=dims[i],
                    code=codes[i],
                    label=labels[i],
                    tested=int(n[i, -1]),
                    passed=int(x[i, -1]),
                    rate=_f(ew.rate_cur[i]),
                    tested_prev=int(n[i, -2]),
                    passed_prev=int(x[i, -2]),
                    rate_prev=_f(ew.rate_prev[i]),
                    change=_f(ew.change[i]),
                    p_fall=_f(ew.p_fall[i]),
                    p_below_target=_f(ew.p_below_target[i]),
                    p_trend=_f(p_trend[i]),
                    evidence=_f(evidence[i]),
                    q_value=_f(q[i]),
                    flagged=bool(flagged[i]),
                    reasons=reasons,
                )
            )
    return WarningsOut(
        period=period.label,
        previous_period=period.previous().label,
        trend_periods=trend_periods,
        target=target,
        alpha=alpha,
        screened=len(codes),
        warnings=warnings,
        methodology=WARNING_METHODOLOGY,
    )
