"""`qsampling export …`, `qsampling verify-export …`, `qsampling disclosure …`."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

disclosure_app = typer.Typer(
    help="Public disclosure (一公开): publication, overdue report.", no_args_is_help=True
)


def export(
    dataset: Annotated[str, typer.Argument(help="results | lists | draws | stats")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write into")],
    fmt: Annotated[str, typer.Option("--format", help="csv | json | xlsx")] = "csv",
    region: Annotated[str | None, typer.Option(help="Region-code prefix (2/4/6 digits)")] = None,
    category: Annotated[str | None, typer.Option(help="Product category code")] = None,
    date_from: Annotated[
        str | None, typer.Option("--from", help="Inspected on or after (YYYY-MM-DD)")
    ] = None,
    date_to: Annotated[
        str | None, typer.Option("--to", help="Inspected on or before (YYYY-MM-DD)")
    ] = None,
    result_code: Annotated[
        list[str] | None, typer.Option("--result-code", help="Result code (repeatable)")
    ] = None,
    conclusion: Annotated[str | None, typer.Option(help="pass | fail | not_tested")] = None,
    changed_since: Annotated[
        str | None, typer.Option(help="Only rows changed after this ISO time")
    ] = None,
    list_name: Annotated[
        str | None, typer.Option("--list", help="lists: abnormal | serious | joint-punishment")
    ] = None,
) -> None:
    """Export a public dataset with a signed manifest: DIR/<dataset>.<format>,
    DIR/manifest.json (filters, row count, SHA-256) and DIR/manifest.sig (Ed25519)."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from qsampling.cli import fail, run_with_session, settings
    from qsampling.cli import out as console_out
    from qsampling.disclosure.exports import (
        DATASETS,
        FORMATS,
        ExportParams,
        ExportWriteError,
        export_to_dir,
    )

    if dataset not in DATASETS:
        fail(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    if fmt not in FORMATS:
        fail(f"unknown format {fmt!r}; choose csv, json or xlsx")

    def _d(v: str | None, name: str) -> date | None:
        if v is None:
            return None
        try:
            return date.fromisoformat(v)
        except ValueError:
            fail(f"{name} must be a date YYYY-MM-DD, got {v!r}")
            raise

    since = None
    if changed_since is not None:
        try:
            since = datetime.fromisoformat(changed_since)
        except ValueError:
            fail(f"--changed-since must be an ISO time, got {changed_since!r}")
    params = ExportParams(
        region=region,
        category=category,
        date_from=_d(date_from, "--from"),
        date_to=_d(date_to, "--to"),
        result_codes=tuple(result_code or ()),
        conclusion=conclusion,
        changed_since=since,
        list_name=list_name,
    )
    seed = settings().signing_seed

    async def _fn(session: AsyncSession) -> Any:
        return await export_to_dir(
            session, dataset=dataset, fmt=fmt, params=params, out_dir=out, seed=seed
        )

    try:
        path, manifest = run_with_session(_fn, commit=False)
    except ExportWriteError as exc:
        fail(str(exc))
        raise
    console_out.print(
        f"exported {manifest.row_count} rows to {path} "
        f"(sha256 {manifest.files[0].sha256}); manifest signed: {out / 'manifest.json'}",
        highlight=False,
        soft_wrap=True,
    )


def verify_export(
    path: Annotated[Path, typer.Argument(help="Export directory or .zip bundle")],
    public_key: Annotated[
        str | None,
        typer.Option(
            help="Trusted public key: 64 hex characters, a PEM block, or a file holding one "
            "(default: this installation's signing key)"
        ),
    ] = None,
) -> None:
    """Check an export: the Ed25519 signature of manifest.json and the SHA-256 and size of
    every file it lists. Exit 0 when everything matches, 1 otherwise."""
    from qsampling.cli import fail, settings
    from qsampling.cli import out as console_out
    from qsampling.disclosure.manifest import (
        load_public_key,
        private_key,
    )
    from qsampling.disclosure.manifest import (
        verify_export as verify,
    )

    if public_key is not None:
        text = public_key
        p = Path(public_key)
        if len(public_key) != 64 and p.is_file():
            text = p.read_text(encoding="utf-8")
        try:
            key = load_public_key(text)
        except ValueError as exc:
            fail(str(exc), 2)
            raise
    else:
        key = private_key(settings().signing_seed).public_key()
    rep = verify(path, key)
    if not rep.ok:
        fail("export NOT verified: " + "; ".join(rep.problems))
    console_out.print(
        f"export verified: {rep.dataset}, {rep.row_count} rows, files "
        f"{', '.join(rep.files)}, signed by key {rep.key_id}",
        highlight=False,
        soft_wrap=True,
    )


@disclosure_app.command("publish")
def publish() -> None:
    """Publish every result that became final since the last run (what the job does)."""
    from datetime import UTC

    from sqlalchemy.ext.asyncio import AsyncSession

    from qsampling.cli import out as console_out
    from qsampling.cli import run_with_session
    from qsampling.context import cli_actor
    from qsampling.disclosure import service

    async def _fn(session: AsyncSession) -> tuple[int, int]:
        now = datetime.now(UTC)
        a = await service.register_final_results(session, now=now, actor=cli_actor())
        b = await service.publish_due(session, now=now, actor=cli_actor())
        return a, b

    a, b = run_with_session(_fn)
    console_out.print(f"published {a} final results; {b} held results reached their due date")


@disclosure_app.command("overdue")
def overdue(
    region: Annotated[str | None, typer.Option(help="Region-code prefix")] = None,
) -> None:
    """List results past (or within 5 working days of) their publication due date."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from qsampling.cli import out as console_out
    from qsampling.cli import run_with_session
    from qsampling.disclosure import service

    async def _fn(session: AsyncSession) -> dict[str, Any]:
        return await service.overdue_report(session, today=service.today_in_china(), region=region)

    rep = run_with_session(_fn, commit=False)
    console_out.print(
        f"{rep['overdue_count']} overdue, {rep['due_soon_count']} due within 5 working days"
    )
    for i in rep["items"]:
        flag = f"OVERDUE {i['days_overdue']}d" if i["overdue"] else "due soon"
        console_out.print(
            f"{flag:>14}  result {i['result_id']}  {i['uscc']}  inspected {i['inspected_on']}"
            f"  due {i['due_date']}  {i['reason']}",
            highlight=False,
        )


@disclosure_app.command("schemas")
def schemas(
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write")] = Path("api/schemas"),
) -> None:
    """Write the JSON Schema of each export dataset (api/schemas/<dataset>.json)."""
    from qsampling.cli import out as console_out
    from qsampling.disclosure.exports import DATASETS, render_schema

    out_dir.mkdir(parents=True, exist_ok=True)
    for d in DATASETS:
        (out_dir / f"{d}.json").write_text(render_schema(d), encoding="utf-8")
    console_out.print(f"wrote {len(DATASETS)} schemas to {out_dir}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main CLI."""
    app.command("export")(export)
    app.command("verify-export")(verify_export)
    app.add_typer(disclosure_app, name="disclosure")
