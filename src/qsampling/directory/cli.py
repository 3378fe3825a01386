"""`qsampling import …`: bulk loads into the directory and its reference data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

import_app = typer.Typer(
    help="Bulk loads: enterprises, inspectors, regions, reference data.", no_args_is_help=True
)

SHOWN_REJECTIONS = 20


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main CLI (`import` is a Python keyword, hence a
    sub-application registered under that name)."""
    app.add_typer(import_app, name="import")


def _open(path: Path) -> Any:
    from qsampling.cli import fail

    try:
        return path.open("rb")
    except OSError as exc:
        fail(f"cannot open {path}: {exc.strerror or exc}")


def _or_fail(fn: Any, *args: Any) -> Any:
    """Run ``fn``; a QSamplingError becomes one line on stderr and exit code 1."""
    from qsampling.cli import fail
    from qsampling.errors import QSamplingError

    try:
        return fn(*args)
    except QSamplingError as exc:
        fail(exc.detail)


def _run_import(kind: str, path: Path, strict: bool, rejected_csv: Path | None) -> None:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )

    from qsampling.cli import console, fail, out, run_with_session
    from qsampling.context import cli_actor
    from qsampling.directory import importer

    fh = _open(path)
    rows_read = [0]
    with (
        fh,
        Progress(
            TextColumn(f"importing {kind}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("{task.fields[rows]:,} rows"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar,
    ):
        size = path.stat().st_size
        task = bar.add_task(kind, total=size or None, rows=0)

        def progress(done: int, total: int, rows: int) -> None:
            rows_read[0] = rows
            bar.update(task, completed=done or (size if rows else 0), rows=rows)

        async def _fn(session: AsyncSession) -> tuple[Any, list[Any]]:
            fn = (
                importer.import_enterprises if kind == "enterprises" else importer.import_inspectors
            )
            report = await fn(
                session,
                f=fh,
                filename=path.name,
                actor=cli_actor(),
                strict=strict,
                progress=progress,
            )
            limit = None if rejected_csv else SHOWN_REJECTIONS
            rows = await importer.rejected_rows(session, import_id=report.id, limit=limit)
            return report, rows

        report, rejections = run_with_session(_fn)
    if rejected_csv is not None and rejections:
        rejected_csv.write_text(
            "\ufeff" + "".join(importer.rejected_csv_lines(rejections)), encoding="utf-8"
        )
    for r in rejections[:SHOWN_REJECTIONS]:
        console.print(
            f"  row {r.row_number} {r.field}: {r.reason}" + (f" ({r.value})" if r.value else ""),
            highlight=False,
            markup=False,
        )
    if report.rejected > SHOWN_REJECTIONS or (rejections and rejected_csv is None):
        where = (
            f"all of them are in {rejected_csv}"
            if rejected_csv
            else f"--rejected-csv FILE writes all; or GET /api/v1/{kind}/imports/{report.id}"
            "/rejected.csv"
        )
        console.print(f"  … {where}", highlight=False)
    if report.ignored_columns:
        console.print(
            "ignored columns (not part of the directory): " + ", ".join(report.ignored_columns),
            highlight=False,
            markup=False,
        )
    if not report.stored:
        fail(
            f"strict mode: {report.rejected} of {report.total_rows} rows have errors; nothing "
            f"was imported (import {report.id})"
        )
    out.print(
        f"imported {kind} from {path.name} ({report.file_format}, import {report.id}): "
        f"{report.total_rows:,} rows, {report.accepted:,} accepted ({report.inserted:,} new, "
        f"{report.updated:,} updated, {report.unchanged:,} unchanged), "
        f"{report.rejected:,} rejected",
        highlight=False,
    )


File = Annotated[
    Path, typer.Argument(help="CSV (UTF-8, UTF-8 with BOM or GB18030) or .xlsx", show_default=False)
]
Strict = Annotated[
    bool, typer.Option("--strict", help="Reject the whole file if any row has an error.")
]
RejectedCsv = Annotated[
    Path | None,
    typer.Option("--rejected-csv", help="Write every rejected row to this CSV (UTF-8 BOM)."),
]


@import_app.command("enterprises")
def import_enterprises(
    path: File, strict: Strict = False, rejected_csv: RejectedCsv = None
) -> None:
    """Upsert enterprises by uscc (检查对象名录库). Required columns: uscc, name, region_code,
    size, channel; optional: entity_type, address, supervising_unit, category_codes,
    status, registration_date (Chinese headers work too)."""
    _run_import("enterprises", path, strict, rejected_csv)


@import_app.command("inspectors")
def import_inspectors(path: File, strict: Strict = False, rejected_csv: RejectedCsv = None) -> None:
    """Upsert inspectors by inspector_id (执法检查人员名录库). Required columns: inspector_id,
    name, unit_code; optional: region_scope, qualifications, active."""
    _run_import("inspectors", path, strict, rejected_csv)


@import_app.command("regions")
def import_regions(path: File) -> None:
    """Load a GB/T 2260 region table (columns code,name and optionally level,parent_code);
    existing codes are renamed, none deleted."""
    from qsampling.cli import out, run_with_session
    from qsampling.context import cli_actor
    from qsampling.directory.reference import load_regions, parse_regions_file

    with _open(path) as fh:
        rows = _or_fail(parse_regions_file, fh)

    async def _fn(session: AsyncSession) -> Any:
        return await load_regions(session, rows, actor=cli_actor())

    c = run_with_session(_fn)
    out.print(
        f"regions: {len(rows):,} read, {c.inserted:,} new, {c.updated:,} updated, "
        f"{c.unchanged:,} unchanged"
    )


@import_app.command("check-items")
def import_check_items(
    path: Annotated[
        Path | None, typer.Argument(help="JSON list (default: the shipped starter list)")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Also update check items that exist")
    ] = False,
) -> None:
    """Load check items (随机抽查事项清单) from a JSON file in the shipped format."""
    from qsampling.cli import out, run_with_session
    from qsampling.context import cli_actor
    from qsampling.directory.reference import (
        load_check_items,
        parse_check_items_file,
        shipped_check_items,
    )

    if path is None:
        items: Any = shipped_check_items()
    else:
        with _open(path) as fh:
            items = _or_fail(parse_check_items_file, fh)

    async def _fn(session: AsyncSession) -> Any:
        return await load_check_items(session, items, actor=cli_actor(), overwrite=overwrite)

    c = run_with_session(_fn)
    out.print(f"check items: {c.inserted} new, {c.updated} updated, {c.unchanged} kept as they are")


@import_app.command("reference")
def import_reference() -> None:
    """Load the shipped reference data: every province plus all cities and counties of
    Fujian and Shandong, the product-category tree and the starter check-item list
    (idempotent; check items already present are kept as the bureau edited them)."""
    from qsampling.cli import out, run_with_session
    from qsampling.context import cli_actor
    from qsampling.directory.reference import load_reference

    async def _fn(session: AsyncSession) -> dict[str, int]:
        return await load_reference(session, actor=cli_actor())

    c = run_with_session(_fn)
    out.print("reference data loaded: " + ", ".join(f"{v} new {k}" for k, v in c.items()))
