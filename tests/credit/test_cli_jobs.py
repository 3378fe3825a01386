"""`qsampling credit …` commands and the job registration."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

from qsampling.cli import app


def test_credit_jobs_are_registered_in_order() -> None:
    from qsampling.jobs import all_jobs

    names = [n for n, _ in all_jobs()]
    ours = [n for n in names if n.startswith("credit_")]
    assert ours == [
        "credit_results_consumed",
        "credit_abnormal_transitions",
        "credit_serious_transitions",
        "credit_recomputed",
    ]


async def test_recompute_command(own_database: str, monkeypatch) -> None:
    monkeypatch.setenv("QSAMPLING_DATABASE_URL", own_database)
    runner = CliRunner()
    r = await asyncio.to_thread(
        runner.invoke, app, ["credit", "recompute", "--as-of", "2026-06-30"]
    )
    assert r.exit_code == 0, r.output
    assert "credit recomputed" in r.output and "as of 2026-06-30 with policy v1" in r.output
    r = await asyncio.to_thread(runner.invoke, app, ["credit", "recompute", "--as-of", "June"])
    assert r.exit_code == 2
    assert "YYYY-MM-DD" in r.output
    r = await asyncio.to_thread(runner.invoke, app, ["credit", "explain", "91350100MA00000000"])
    assert r.exit_code != 0 and "No enterprise" in r.output
