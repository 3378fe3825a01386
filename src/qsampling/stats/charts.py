"""SVG pass-rate charts: a small renderer of our own (no JavaScript, no external fonts).

Two kinds, used by the API, the public portal and the printable report:

- :func:`pass_rate_chart` — one horizontal row per group: a dot at the rate, a whisker over
  the confidence interval, a dashed vertical target line; flagged groups (too little data)
  are drawn hollow and marked with *.
- :func:`trend_chart` — rates over ordered periods with interval whiskers and a dashed
  horizontal target line.

Text is Chinese-ready: a CJK font-family fallback list, and label widths estimated with
East-Asian character widths so long names are shortened with … instead of overflowing. Every
chart carries ``<title>`` and ``<desc>`` (``role="img"``, ``aria-labelledby``) and a tooltip
``<title>`` per mark, so screen readers and hover both give the numbers.
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from qsampling.stats.schemas import PassRatesOut, TrendSeries

FONT_FAMILY = (
    "'Noto Sans CJK SC', 'Source Han Sans SC', 'Microsoft YaHei', 'PingFang SC', "
    "'Hiragino Sans GB', 'WenQuanYi Micro Hei', sans-serif"
)
INK = "#1f2933"
MUTED = "#7b8794"
GRID = "#e4e7eb"
MARK = "#1f5fa8"
FLAGGED = "#9aa5b1"
TARGET = "#c0392b"
FONT = 12
MAX_ROWS = 120
METHOD_ZH = {
    "wilson": "Wilson",
    "wilson_cc": "Wilson（连续性校正）",
    "clopper_pearson": "Clopper–Pearson 精确",
    "jeffreys": "Jeffreys",
    "agresti_coull": "Agresti–Coull",
}


@dataclass(frozen=True)
class Bar:
    """One group of a pass-rate chart."""

    label: str
    rate: float | None
    lower: float | None
    upper: float | None
    n: int
    flagged: bool = False


def text_width(s: str, size: float = FONT) -> float:
    """Approximate rendered width: full-width (CJK) characters 1 em, others about 0.58 em."""
    w = 0.0
    for ch in s:
        w += size if unicodedata.east_asian_width(ch) in ("W", "F") else 0.58 * size
    return w


def shorten(s: str, max_width: float, size: float = FONT) -> str:
    if text_width(s, size) <= max_width:
        return s
    out = ""
    for ch in s:
        if text_width(out + ch + "…", size) > max_width:
            break
        out += ch
    return out + "…"


def pct(v: float | None, digits: int = 1) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{100 * v:.{digits}f}%"


def _t(
    x: float,
    y: float,
    s: str,
    *,
    size: float = FONT,
    anchor: str = "start",
    fill: str = INK,
    weight: str | None = None,
    cls: str | None = None,
) -> str:
    extra = f' font-weight="{weight}"' if weight else ""
    extra += f" class={quoteattr(cls)}" if cls else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size:g}" text-anchor="{anchor}" '
        f'fill="{fill}"{extra}>{escape(s)}</text>'
    )


def _domain(values: Sequence[float]) -> tuple[float, float, float]:
    """(low, high, tick step) of the rate axis: always ends at 100%, starts at a round value
    below every value shown (at least 10 points wide)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    low = min(finite, default=0.0)
    low = max(0.0, min(low - 0.02, 0.9))
    span = 1.0 - low
    step = next(s for s in (0.02, 0.05, 0.1, 0.2, 0.25) if span / s <= 8)
    low = max(0.0, math.floor(low / step + 1e-9) * step)
    return low, 1.0, step


def _chart_id(title: str, extra: str) -> str:
    # several charts inline in one report need distinct ids for aria-labelledby
    return "c" + hashlib.sha256((title + "\x00" + extra).encode()).hexdigest()[:10]


def _svg_open(cid: str, width: float, height: float, title: str, desc: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-labelledby="{cid}-t {cid}-d" font-family="{escape(FONT_FAMILY)}">',
        f'<title id="{cid}-t">{escape(title)}</title>',
        f'<desc id="{cid}-d">{escape(desc)}</desc>',
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
    ]


def pass_rate_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    target: float | None = None,
    confidence: float = 0.95,
    method: str = "wilson",
    subtitle: str = "",
    width: int = 760,
    what: str = "未发现不合格率",
) -> str:
    """Horizontal dot-and-whisker chart of pass rates with the target line."""
    shown = list(bars[:MAX_ROWS])
    cid = _chart_id(title, subtitle + str(len(bars)))
    conf = f"{confidence * 100:g}%"
    method_zh = METHOD_ZH.get(method, method)
    any_flagged = any(b.flagged for b in shown)
    labels = [b.label + (" *" if b.flagged else "") for b in shown]
    label_w = min(max((text_width(s) for s in labels), default=60.0), 240.0) + 8
    value_w = 150.0
    left = 12 + label_w
    right = width - value_w
    top = 44.0 if not subtitle else 62.0
    row_h = 22.0
    plot_h = max(row_h, row_h * len(shown))
    extra_lines = int(any_flagged) + int(len(bars) > MAX_ROWS)
    # plot, axis labels (to +32), first footnote at +50, 16 per further line, margin
    height = top + 16 + plot_h + 50 + 16 * extra_lines + 10

    domain_vals: list[float] = []
    for b in shown:
        domain_vals.extend(v for v in (b.lower, b.rate) if v is not None)
    if target is not None:
        domain_vals.append(target)
    low, high, step = _domain(domain_vals)

    def sx(v: float) -> float:
        return left + (min(max(v, low), high) - low) / (high - low) * (right - left)

    desc = (
        f"{len(bars)} 个分组的{what}（点）及 {conf} {method_zh} 置信区间（横线）"
        + (f"，虚线为目标 {pct(target)}" if target is not None else "")
        + "。分母为检验批次。"
    )
    parts = _svg_open(cid, width, height, title, desc)
    parts.append(_t(12, 22, title, size=15, weight="bold"))
    if subtitle:
        parts.append(_t(12, 42, subtitle, size=12, fill=MUTED))
    y0 = top + 16
    y1 = y0 + plot_h
    # grid and axis
    ticks = int(round((high - low) / step))
    parts.append('<g class="grid">')
    for k in range(ticks + 1):
        v = low + k * step
        x = sx(v)
        parts.append(
            f'<line x1="{x:.1f}" y1="{y0:.1f}" x2="{x:.1f}" y2="{y1:.1f}" stroke="{GRID}"/>'
        )
        parts.append(_t(x, y1 + 16, f"{100 * v:.0f}%", size=11, anchor="middle", fill=MUTED))
    parts.append("</g>")
    parts.append(
        _t(
            (left + right) / 2,
            y1 + 32,
            "未发现不合格率（检验批次）",
            size=11,
            anchor="middle",
            fill=MUTED,
        )
    )
    parts.append(_t(right + 8, top + 8, f"比率 [{conf} 区间] 批次", size=11, fill=MUTED))
    if not shown:
        parts.append(_t((left + right) / 2, y0 + 15, "无数据", anchor="middle", fill=MUTED))
    for i, (b, label) in enumerate(zip(shown, labels, strict=True)):
        cy = y0 + row_h * i + row_h / 2
        colour = FLAGGED if b.flagged else MARK
        tip = (
            f"{b.label}：{pct(b.rate)}（{conf} 区间 {pct(b.lower)}–{pct(b.upper)}），"
            f"检验 {b.n} 批次" + ("；数据不足，仅供参考" if b.flagged else "")
        )
        cls = "row flagged" if b.flagged else "row"
        parts.append(f"<g class={quoteattr(cls)}><title>{escape(tip)}</title>")
        if i % 2 == 1:
            parts.append(
                f'<rect x="{left:.1f}" y="{cy - row_h / 2:.1f}" width="{right - left:.1f}" '
                f'height="{row_h:.1f}" fill="#f5f7fa"/>'
            )
        parts.append(_t(left - 8, cy + 4, shorten(label, label_w - 8), anchor="end", cls="label"))
        if b.lower is not None and b.upper is not None:
            xl, xh = sx(b.lower), sx(b.upper)
            parts.append(
                f'<line class="whisker" x1="{xl:.1f}" y1="{cy:.1f}" x2="{xh:.1f}" '
                f'y2="{cy:.1f}" stroke="{colour}" stroke-width="2"/>'
            )
            for xe in (xl, xh):
                parts.append(
                    f'<line x1="{xe:.1f}" y1="{cy - 5:.1f}" x2="{xe:.1f}" y2="{cy + 5:.1f}" '
                    f'stroke="{colour}" stroke-width="1.5"/>'
                )
        if b.rate is not None:
            fill = "#ffffff" if b.flagged else colour
            parts.append(
                f'<circle class="rate" cx="{sx(b.rate):.1f}" cy="{cy:.1f}" r="4.5" '
                f'fill="{fill}" stroke="{colour}" stroke-width="1.5"/>'
            )
        value = f"{pct(b.rate)} [{pct(b.lower, 1)}, {pct(b.upper, 1)}] {b.n}"
        parts.append(_t(right + 8, cy + 4, value, size=11, fill=MUTED if b.flagged else INK))
        parts.append("</g>")
    if target is not None:
        xt = sx(target)
        parts.append(
            f'<line class="target" x1="{xt:.1f}" y1="{y0 - 6:.1f}" x2="{xt:.1f}" '
            f'y2="{y1:.1f}" stroke="{TARGET}" stroke-width="1.5" stroke-dasharray="6 4"/>'
        )
        parts.append(
            _t(
                xt,
                y0 - 9,
                f"目标 {pct(target)}",
                size=11,
                anchor="middle",
                fill=TARGET,
                cls="target-label",
            )
        )
    fy = y1 + 50
    parts.append(
        _t(
            12,
            fy,
            f"点：{what}；横线：{conf} {method_zh} 区间；分母：检验批次。",
            size=11,
            fill=MUTED,
        )
    )
    if any_flagged:
        fy += 16
        parts.append(
            _t(
                12,
                fy,
                "* 空心点：有效样本量不足 30 或区间宽于 30 个百分点，仅供参考。",
                size=11,
                fill=MUTED,
            )
        )
    if len(bars) > MAX_ROWS:
        fy += 16
        parts.append(
            _t(12, fy, f"仅显示前 {MAX_ROWS} 个分组（共 {len(bars)} 个）。", size=11, fill=MUTED)
        )
    parts.append("</svg>")
    return "\n".join(parts)


def bars_from_pass_rates(result: PassRatesOut) -> list[Bar]:
    """Chart rows of a pass-rates answer (the weighted estimate when one was asked for)."""
    out: list[Bar] = []
    for r in result.rows:
        label = " · ".join(r.labels.values()) or "全部"
        if result.weighted and r.weighted is not None:
            out.append(
                Bar(
                    label,
                    r.weighted.estimate,
                    r.weighted.lower,
                    r.weighted.upper,
                    r.tested,
                    r.flag.small,
                )
            )
        else:
            out.append(Bar(label, r.rate, r.lower, r.upper, r.tested, r.flag.small))
    return out


FILTER_ZH = {
    "from": "起",
    "to": "止",
    "category": "类别",
    "region": "地区",
    "check_item": "抽查事项",
    "plan_id": "计划",
    "include_follow_up": "含跟踪复查",
}


DIMENSION_ZH = {
    "category": "产品类别",
    "category:1": "行业",
    "region": "县（市、区）",
    "region:county": "县（市、区）",
    "region:city": "设区市",
    "region:province": "省",
    "period": "季度",
    "period:quarter": "季度",
    "period:month": "月",
    "period:year": "年",
    "size": "企业规模",
    "channel": "渠道",
}


def dimension_zh(name: str) -> str:
    if name in DIMENSION_ZH:
        return DIMENSION_ZH[name]
    if name.startswith("category:"):
        return f"产品类别（第{name.split(':', 1)[1]}级）"
    return name


def chart_for_pass_rates(
    result: PassRatesOut, *, title: str | None = None, subtitle: str | None = None
) -> str:
    what = "加权总体估计" if result.weighted else "未发现不合格率（样本）"
    dims = "×".join(dimension_zh(g) for g in result.group_by) or "全部"
    if subtitle is None:
        subtitle = "；".join(f"{FILTER_ZH.get(k, k)} {v}" for k, v in result.filters.items())
    return pass_rate_chart(
        bars_from_pass_rates(result),
        title=title or f"{what}（按{dims}）",
        subtitle=subtitle,
        target=result.target,
        confidence=result.confidence,
        method="wilson" if result.weighted else result.method,
        what=what,
    )


def trend_chart(
    series: TrendSeries,
    *,
    title: str,
    target: float | None = None,
    confidence: float = 0.95,
    width: int = 760,
    height: int = 300,
    what: str = "未发现不合格率（样本，未加权）",
) -> str:
    """Rates over ordered periods with whiskers, the target line and the trend test result.

    The points are the sample rates of the periods (the Cochran–Armitage test is on those
    counts), so the footnote says so; ``what`` names them."""
    pts = list(series.points)
    # leading periods without results carry no information (they do not change the
    # Cochran–Armitage statistic either): start the axis at the first period with data
    while len(pts) > 2 and pts[0].tested == 0:
        pts.pop(0)
    cid = _chart_id(title, ",".join(p.period for p in pts))
    conf = f"{confidence * 100:g}%"
    left, right, top, bottom = 56.0, width - 20.0, 56.0, height - 48.0
    vals = [v for p in pts for v in (p.lower, p.rate) if v is not None]
    if target is not None:
        vals.append(target)
    low, high, step = _domain(vals)

    def sy(v: float) -> float:
        return bottom - (min(max(v, low), high) - low) / (high - low) * (bottom - top)

    k = len(pts)

    def sx(i: int) -> float:
        return left + (i + 0.5) * (right - left) / max(k, 1)

    direction = {"decreasing": "下降", "increasing": "上升", "flat": "无变化"}[series.direction]
    p_dec = series.p_value_decreasing
    p_text = "p < 0.001" if p_dec < 0.001 else f"p = {p_dec:.3f}"
    test = f"Cochran–Armitage 趋势检验：{direction}，z = {series.statistic:.2f}，下降单侧 {p_text}"
    desc = f"{k} 个周期的{what}及 {conf} 区间。{test}。" + (
        f"虚线为目标 {pct(target)}。" if target is not None else ""
    )
    parts = _svg_open(cid, width, height, title, desc)
    parts.append(_t(12, 22, title, size=15, weight="bold"))
    parts.append(_t(12, 40, test, size=12, fill=TARGET if series.significant_fall else MUTED))
    ticks = int(round((high - low) / step))
    parts.append('<g class="grid">')
    for j in range(ticks + 1):
        v = low + j * step
        y = sy(v)
        parts.append(
            f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{right:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
        )
        parts.append(_t(left - 6, y + 4, f"{100 * v:.0f}%", size=11, anchor="end", fill=MUTED))
    parts.append("</g>")
    path: list[str] = []
    for i, p in enumerate(pts):
        x = sx(i)
        parts.append(_t(x, bottom + 18, p.period, size=11, anchor="middle", fill=MUTED))
        if p.rate is None:
            continue
        tip = (
            f"{p.label}：{pct(p.rate)}（{conf} 区间 {pct(p.lower)}–{pct(p.upper)}），"
            f"检验 {p.tested} 批次"
        )
        parts.append(f'<g class="point"><title>{escape(tip)}</title>')
        if p.lower is not None and p.upper is not None:
            parts.append(
                f'<line class="whisker" x1="{x:.1f}" y1="{sy(p.lower):.1f}" x2="{x:.1f}" '
                f'y2="{sy(p.upper):.1f}" stroke="{MARK}" stroke-width="2"/>'
            )
        parts.append(
            f'<circle class="rate" cx="{x:.1f}" cy="{sy(p.rate):.1f}" r="4" fill="{MARK}"/>'
        )
        parts.append("</g>")
        path.append(f"{'M' if not path else 'L'}{x:.1f},{sy(p.rate):.1f}")
    if path:
        parts.insert(
            len(parts),
            f'<path d="{" ".join(path)}" fill="none" stroke="{MARK}" stroke-opacity="0.5" '
            'stroke-width="1.5"/>',
        )
    if target is not None:
        yt = sy(target)
        parts.append(
            f'<line class="target" x1="{left:.1f}" y1="{yt:.1f}" x2="{right:.1f}" y2="{yt:.1f}" '
            f'stroke="{TARGET}" stroke-width="1.5" stroke-dasharray="6 4"/>'
        )
        parts.append(
            _t(left + 4, yt - 5, f"目标 {pct(target)}", size=11, fill=TARGET, cls="target-label")
        )
    parts.append(
        _t(
            12,
            height - 10,
            f"点：{what}；竖线：{conf} 区间；分母：检验批次。",
            size=11,
            fill=MUTED,
        )
    )
    parts.append("</svg>")
    return "\n".join(parts)
