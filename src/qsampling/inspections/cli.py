"""`qsampling results …`: laboratory files from the command line, finalisation on demand."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

results_app = typer.Typer(help="Inspection results: lab files, finalisation.", no_args_is_help=True)


@results_app.command("import")
def import_results(
    file: Annotated[Path, typer.Argument(help="NDJSON (.ndjson/.jsonl) or CSV (.csv) file")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="ndjson | csv (default: from the extension)")
    ] = None,
) -> None:
    """Store a laboratory results file like `POST /api/v1/results:batch`, as the CLI operator
    (any task). Valid rows are stored together; rejected rows are listed and make the exit
    status 1. Re-running the same file changes nothing (each row's idempotency_key)."""
    from datetime import UTC, datetime

    from qsampling.cli import fail, out, run_with_session
    from qsampling.context import cli_actor
    from qsampling.inspections.batch import submit_batch
    from qsampling.inspections.schemas import BatchReport

    if not file.is_file():
        fail(f"no such file: {file}")
    kind = (fmt or ("csv" if file.suffix.lower() == ".csv" else "ndjson")).lower()
    if kind not in ("csv", "ndjson"):
        fail(f"unknown format {kind!r}: use ndjson or csv")
    content = file.read_bytes()
    ctype = "text/csv" if kind == "csv" else "application/x-ndjson"

    async def _fn(session: Any) -> BatchReport:
        return await submit_batch(
            session, actor=cli_actor(), content=content, content_type=ctype, now=datetime.now(UTC)
        )

    rep = run_with_session(_fn)
    out.print(
        f"{rep.received} results read: {rep.created} stored, {rep.replayed} already stored, "
        f"{rep.rejected} rejected"
    )
    bad = [r for r in rep.rows if r.status == "error"]
    for r in bad[:20]:
        out.print(f"  line {r.row}: {r.error}: {r.detail}", highlight=False, soft_wrap=True)
    if bad:
        fail(f"{len(bad)} rows rejected (the other rows were stored)")


@results_app.command("finalise")
def finalise_now() -> None:
    """Make final every result whose objection window has closed or that was retested (what
    `qsampling jobs run` does every minute), and create pending follow-up plans."""
    from datetime import UTC, datetime

    from qsampling.cli import out, run_with_session
    from qsampling.inspections import finalise as fin

    async def _fn(session: Any) -> tuple[int, int]:
        now = datetime.now(UTC)
        return await fin.finalise_all_due(session, now=now), await fin.ensure_follow_up_plans(
            session, now=now
        )

    done, plans = run_with_session(_fn)
    out.print(f"{done} results finalised, {plans} follow-up plans created")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main CLI."""
    app.add_typer(results_app, name="results")
