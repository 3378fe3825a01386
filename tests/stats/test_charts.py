"""The SVG renderer on its own: valid XML, readable Chinese labels, whiskers, target line."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from qsampling.stats.charts import Bar, pass_rate_chart, shorten, text_width, trend_chart
from qsampling.stats.schemas import TrendPoint, TrendSeries

SVG = "{http://www.w3.org/2000/svg}"


def _texts(root: ET.Element) -> str:
    return "\n".join(t.text or "" for t in root.iter(f"{SVG}text"))


def test_pass_rate_chart_is_valid_svg_with_labels_and_target() -> None:
    bars = [
        Bar("福州市", 0.95, 0.91, 0.97, 300),
        Bar('厦门市 <&> "quoted"', 0.88, 0.83, 0.92, 200),
        Bar("三明市", 1.0, 0.72, 1.0, 10, flagged=True),
        Bar("无结果", None, None, None, 0, flagged=True),
    ]
    svg = pass_rate_chart(bars, title="各设区市未发现不合格率", target=0.93, subtitle="2026Q3")
    root = ET.fromstring(svg)
    assert root.get("role") == "img"
    assert root.find(f"{SVG}title").text == "各设区市未发现不合格率"  # type: ignore[union-attr]
    desc = root.find(f"{SVG}desc").text or ""  # type: ignore[union-attr]
    assert "95%" in desc and "目标 93.0%" in desc and "检验批次" in desc
    texts = _texts(root)
    for label in ("福州市", '厦门市 <&> "quoted"', "三明市 *", "目标 93.0%", "空心点"):
        assert label in texts
    target = [e for e in root.iter(f"{SVG}line") if e.get("class") == "target"]
    assert len(target) == 1 and target[0].get("stroke-dasharray") == "6 4"
    # whiskers for the three rows with an interval, a dot for each row with a rate
    assert len([e for e in root.iter(f"{SVG}line") if e.get("class") == "whisker"]) == 3
    dots = [e for e in root.iter(f"{SVG}circle") if e.get("class") == "rate"]
    assert len(dots) == 3
    assert dots[2].get("fill") == "#ffffff"  # flagged: hollow
    # the target line sits between 90% and 95% of the axis: right of the 88% dot
    xs = {float(d.get("cx", 0)) for d in dots}
    assert min(xs) < float(target[0].get("x1", 0)) < max(xs)
    # each row's tooltip gives the numbers
    tips = [t.text or "" for g in root.iter(f"{SVG}g") for t in g.findall(f"{SVG}title")]
    assert any("福州市：95.0%" in t and "300 批次" in t for t in tips)


def test_long_labels_are_shortened_not_overflowing() -> None:
    name = "燃气用不锈钢波纹软管及其他非常长的产品类别名称" * 3
    assert text_width("中文") == 24 and text_width("ab") < 24
    short = shorten(name, 120)
    assert short.endswith("…") and text_width(short) <= 120
    root = ET.fromstring(pass_rate_chart([Bar(name, 0.9, 0.8, 0.95, 40)], title="t"))
    assert any(t.endswith("…") for t in _texts(root).splitlines())


def test_empty_chart_and_many_rows() -> None:
    root = ET.fromstring(pass_rate_chart([], title="空"))
    assert "无数据" in _texts(root)
    many = [Bar(f"组{i}", 0.9, 0.85, 0.95, 100) for i in range(150)]
    root = ET.fromstring(pass_rate_chart(many, title="多"))
    assert "仅显示前 120 个分组（共 150 个）" in _texts(root)


def test_trend_chart() -> None:
    points = [
        TrendPoint(
            period=p,
            label=p,
            tested=n,
            passed=x,
            rate=x / n if n else None,
            lower=(x / n - 0.03) if n else None,
            upper=(x / n + 0.02) if n else None,
        )
        for p, n, x in [("2026Q1", 100, 98), ("2026Q2", 0, 0), ("2026Q3", 100, 80)]
    ]
    series = TrendSeries(
        group={},
        labels={},
        points=points,
        statistic=-3.9,
        p_value=0.0001,
        p_value_decreasing=0.00005,
        p_value_increasing=0.99995,
        direction="decreasing",
        significant_fall=True,
    )
    root = ET.fromstring(trend_chart(series, title="玩具：趋势", target=0.93))
    texts = _texts(root)
    assert "2026Q1" in texts and "2026Q2" in texts and "下降" in texts
    assert [e for e in root.iter(f"{SVG}line") if e.get("class") == "target"]
    assert len([e for e in root.iter(f"{SVG}circle") if e.get("class") == "rate"]) == 2
