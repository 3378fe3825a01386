"""`qsampling` commands of the stats module: the quality report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main CLI."""

    @app.command("report")
    def report(
        period: Annotated[
            str, typer.Option(help="Quarter 2026Q3, month 2026-07 or year 2026 / 统计期")
        ],
        out_file: Annotated[Path, typer.Option("--out", help="Where to write the HTML")] = Path(
            "report.html"
        ),
        target: Annotated[
            float | None, typer.Option(help="Programme target pass rate, e.g. 0.93")
        ] = None,
        confidence: Annotated[float, typer.Option(help="Confidence level")] = 0.95,
    ) -> None:
        """Write the printable quality report (分行业质量状况分析报告) for a period."""
        from sqlalchemy.ext.asyncio import AsyncSession

        from qsampling.cli import fail, out, run_with_session
        from qsampling.stats.report import build_report
        from qsampling.stats.service import parse_period

        try:
            per = parse_period(period)
        except ValueError as exc:
            fail(str(exc))
            raise  # unreachable: fail() exits
        if target is not None and not 0.0 < target < 1.0:
            fail(f"invalid target {target}: give a pass rate between 0 and 1, e.g. 0.93")
        if not 0.5 < confidence < 1.0:
            fail(f"invalid confidence {confidence}: give a level between 0.5 and 1, e.g. 0.95")
        parent = out_file.expanduser().resolve().parent
        if not parent.is_dir():
            fail(f"cannot write {out_file}: directory {parent} does not exist")

        async def _fn(session: AsyncSession) -> str:
            return await build_report(session, period=per, target=target, confidence=confidence)

        html = run_with_session(_fn, commit=False)
        try:
            out_file.write_text(html, encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {out_file}: {exc.strerror or exc}")
        out.print(f"wrote {out_file} ({per.label}, {len(html) // 1024} KiB)")
