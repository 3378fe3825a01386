"""The database-outage drill as a (slow) test: `bench/faults_results.py` at a small size.

Stops a private embedded PostgreSQL (never the shared one) during a stream of submissions:
503 while it is away, never 500, recovery without restarting the API, and every
acknowledged submission stored exactly once. Run with ``pytest -m slow``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "faults_results.py"


@pytest.mark.slow
def test_database_outage_drill() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--inspectors",
            "6",
            "--tasks-per-inspector",
            "200",
            "--before",
            "2",
            "--down",
            "4",
            "--after",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = proc.stdout
    assert proc.returncode == 0, report + proc.stderr[-3000:]
    for check in ("no 500", "503 while the database was away", "every 2xx stored exactly once"):
        assert f"PASS  {check}" in report, report
