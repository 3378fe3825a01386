"""The printable quality report (分行业质量状况分析报告) and the `qsampling report` command."""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from qsampling.stats.report import build_report
from qsampling.stats.service import parse_period
from tests.stats.factories import Batch, add

Q2 = date(2026, 5, 10)
Q3 = date(2026, 8, 15)

DATA = [
    Batch("01.01.01", "350102", Q2, passed=95, failed=5),
    Batch("01.01.01", "350102", Q3, passed=96, failed=4),
    Batch("01.02.01", "350203", Q3, passed=20),
    Batch("03.02.01", "350203", Q2, passed=98, failed=2, pi=0.5, stratum="D"),
    Batch("03.02.01", "350203", Q3, passed=80, failed=20, pi=0.5, stratum="D"),
    Batch("03.01.01", "350102", Q3, passed=3, failed=1, pi=0.05, stratum="A"),
]

VOID = {"meta", "br", "hr", "img", "input", "link", "col", "wbr", "source", "area", "base"}


class _Checker(HTMLParser):
    """Every non-void element closed in order; ids unique."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.ids: list[str] = []
        self.problems: list[str] = []
        self.in_svg = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for k, v in attrs:
            if k == "id" and v:
                self.ids.append(v)
        if tag in VOID and not self.in_svg:
            return
        if tag == "svg":
            self.in_svg += 1
        self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for k, v in attrs:
            if k == "id" and v:
                self.ids.append(v)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag == "svg":
            self.in_svg -= 1


def check_html(html: str) -> _Checker:
    c = _Checker()
    c.feed(html)
    c.close()
    assert c.problems == []
    assert c.stack == []
    assert len(c.ids) == len(set(c.ids)), "duplicate ids"
    return c


async def test_report_has_the_expected_sections(session: AsyncSession) -> None:
    await add(session, *DATA)
    html = await build_report(session, period=parse_period("2026Q3"), target=0.93)
    assert html.startswith("<!DOCTYPE html>")
    check = check_html(html)
    sections = ("summary", "warnings", "industries", "methodology", "industry-01", "industry-03")
    for section in sections:
        assert section in check.ids
    assert "2026年第三季度产品质量监督抽查" in html and "分行业质量状况分析报告" in html
    for heading in ("一、总体情况", "二、质量预警", "三、分行业质量状况", "四、方法说明"):
        assert heading in html
    assert "（1）日用及纺织品" in html and "（2）儿童用品" in html
    # numbers: 224 batches in Q3 of which 25 failed
    assert "本期共检验 <strong>224</strong> 批次" in html
    assert "发现不合格 <strong>25</strong> 批次" in html
    # the toys' fall is an early warning, in the overview and in the industry section
    assert html.count("玩具") >= 2 and "较上期显著下降" in html
    # methodology notes name the methods and the denominator, and the wording rule holds
    for term in (
        "Wilson",
        "1/π",
        "Korn–Graubard",
        "Benjamini–Hochberg",
        "Cochran–Armitage",
        "检验批次",
        "未发现不合格",
        "@page",
        "size: A4",
    ):
        assert term in html
    assert re.search(r"(?<!不)合格", html) is None
    assert "<script" not in html
    # inline SVG charts parse as XML and carry the target line
    svgs = re.findall(r"<svg .*?</svg>", html, flags=re.S)
    assert len(svgs) >= 5
    for svg in svgs:
        root = ET.fromstring(svg)
        assert root.find("{http://www.w3.org/2000/svg}title") is not None
    assert all('class="target"' in s for s in svgs)


async def test_report_for_a_period_without_results(session: AsyncSession) -> None:
    html = await build_report(session, period=parse_period("2030"))
    check_html(html)
    assert "本统计期内没有最终结果" in html
    assert "本期未发现需要预警的类别或地区" in html


def test_cli_rejects_a_bad_period_with_one_line(tmp_path: Path) -> None:
    from qsampling.cli import app

    out = tmp_path / "r.html"
    res = CliRunner().invoke(app, ["report", "--period", "2026Q5", "--out", str(out)])
    assert res.exit_code != 0
    assert "invalid period" in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not out.exists()
    res = CliRunner().invoke(
        app, ["report", "--period", "2026Q3", "--out", str(out), "--target", "93"]
    )
    assert res.exit_code != 0 and "invalid target" in res.output


@pytest.fixture
def filled_database(own_database: str) -> str:
    """A committed database of our own with a few final results in it."""
    from qsampling.db import create_engine, make_sessionmaker

    async def _fill() -> None:
        engine = create_engine(own_database, pool_size=1, max_overflow=0)
        try:
            async with make_sessionmaker(engine)() as s:
                await add(s, *DATA)
                await s.commit()
        finally:
            await engine.dispose()

    asyncio.run(_fill())
    return own_database


def test_cli_writes_the_report(
    filled_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qsampling.cli import app

    monkeypatch.setenv("QSAMPLING_DATABASE_URL", filled_database)
    out = tmp_path / "report.html"
    res = CliRunner().invoke(
        app, ["report", "--period", "2026Q3", "--out", str(out), "--target", "0.93"]
    )
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output
    html = out.read_text(encoding="utf-8")
    check_html(html)
    assert "分行业质量状况分析报告" in html and "儿童用品" in html
