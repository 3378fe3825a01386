"""`qsampling` commands of the draws module: ``verify-draw BUNDLE.zip``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer


def verify_draw(
    bundle: Annotated[Path, typer.Argument(help="The bundle zip from /api/v1/public/draws/…")],
) -> None:
    """Re-run a published draw from its bundle (QSDRAW-1): print MATCH and exit 0, or print
    the first difference and exit 1 (2 when the file cannot be read)."""
    from qsampling.cli import fail, out
    from qsampling.core.draw import verify_bundle

    try:
        data = bundle.read_bytes()
    except OSError as exc:
        fail(f"cannot read {bundle}: {exc.strerror or exc}", 2)
        return
    # a draw from a pool of millions ranks inspectors for hundreds of thousands of
    # enterprises: use two processes, as the draw itself does
    report = verify_bundle(data, workers=min(2, os.cpu_count() or 1))
    if report.ok:
        out.print("MATCH")
        return
    first = report.differences[0] if report.differences else "verification failed"
    if first.startswith("unreadable bundle"):
        fail(first, 2)
    fail(f"DIFFERENT: {first}", 1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main CLI."""
    app.command("verify-draw")(verify_draw)
