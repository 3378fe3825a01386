"""Bulk exports of the public datasets: CSV (UTF-8 with BOM), JSON, XLSX — streamed with
constant memory — and their signed manifests.

Datasets (their row shapes are JSON Schemas in ``api/schemas/<dataset>.json``):

- ``results``: one row per published result.
- ``lists``: every public entry of the abnormal, serious and joint-punishment lists.
- ``draws``: one row per enterprise selected by a draw (no stratum: it is the credit class).
- ``stats``: pass rates by product category with Wilson intervals.

How memory stays constant: results as CSV are produced by PostgreSQL itself
(``COPY (SELECT …) TO STDOUT (FORMAT csv)``), passed on chunk by chunk; every other
dataset/format reads rows through a server-side cursor in batches and writes them out batch
by batch; XLSX goes through xlsxwriter's ``constant_memory`` mode into a temporary file that
is then streamed and deleted. In CSV and XLSX, list-valued fields are joined with ``;``; in
JSON they stay arrays.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling import __version__
from qsampling.disclosure import service
from qsampling.disclosure.formats import iso_z, text_value
from qsampling.disclosure.manifest import FileEntry, Manifest, render_manifest
from qsampling.disclosure.privacy import redact
from qsampling.errors import InvalidInput

DATASETS = ("results", "lists", "draws", "stats")
FORMATS = ("csv", "json", "xlsx")
BOM = "\ufeff".encode()
BATCH = 5000
XLSX_MAX_ROWS = 1_048_575  # per sheet, below the header row
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "zip": "application/zip",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # string | integer | number | date | date-time | array | boolean
    title: str
    description: str


COLUMNS: dict[str, tuple[Column, ...]] = {
    "results": (
        Column("id", "integer", "公示编号", "Publication id; rows are in this order"),
        Column("uscc", "string", "统一社会信用代码", "Unified social credit code"),
        Column("enterprise_name", "string", "受检单位", "Business name (sole traders too)"),
        Column("entity_type", "string", "主体类型", "企业/个体工商户/农民专业合作社/其他"),
        Column("region_code", "string", "行政区划代码", "GB/T 2260 6-digit code"),
        Column("region_name", "string", "行政区划", "Region name"),
        Column("check_item_code", "string", "抽查事项代码", "Check item code"),
        Column("check_item_name", "string", "抽查事项", "Check item name"),
        Column("inspected_on", "date", "检查日期", "Date the inspection ended"),
        Column("conclusion", "string", "结论代码", "pass / fail / not_tested"),
        Column("conclusion_zh", "string", "结论", "未发现不合格 / 不合格 / 未检验"),
        Column("result_codes", "array", "检查结果代码", "National result category codes"),
        Column("category_codes", "array", "产品类别代码", "Product categories sampled"),
        Column(
            "products", "string", "样品", "Product / brand / model / batch per sample, ；-separated"
        ),
        Column("failed_items", "string", "不合格项目", "Failed test items per product"),
        Column("inspector_names", "array", "检查人员", "Inspectors' names"),
        Column("published_at", "date-time", "公示时间", "Publication time (UTC)"),
    ),
    "lists": (
        Column("list_name", "string", "名单", "abnormal / serious / joint-punishment"),
        Column("entry_id", "integer", "条目编号", "Entry id within its list"),
        Column("uscc", "string", "统一社会信用代码", "Unified social credit code"),
        Column("enterprise_name", "string", "企业名称", "Business name"),
        Column("status", "string", "状态", "listed / removed"),
        Column("reason", "string", "列入原因", "Reason"),
        Column("basis", "string", "列入依据", "Legal basis"),
        Column("authority", "string", "作出决定机关", "Deciding authority"),
        Column("decision_number", "string", "决定文书号", "Decision number"),
        Column("listed_on", "date", "列入日期", "Listed on"),
        Column("expires_on", "date", "届满日期", "Listing ends (serious list)"),
        Column("removed_on", "date", "移出日期", "Removed on"),
        Column("removal_reason", "string", "移出原因", "Removal reason"),
        Column("removal_authority", "string", "移出决定机关", "Removal authority"),
        Column("measures", "array", "惩戒措施", "Joint-punishment measures"),
        Column("updated_at", "date-time", "更新时间", "Last change (UTC)"),
    ),
    "draws": (
        Column("plan_id", "integer", "计划编号", "Plan id"),
        Column("plan_name", "string", "抽查计划", "Plan name"),
        Column("check_item_code", "string", "抽查事项代码", "Check item code"),
        Column("commitment", "string", "承诺值", "SHA-256 commitment published before the draw"),
        Column("entropy", "string", "公开随机数", "Public entropy entered at the draw"),
        Column("seed", "string", "种子", "Seed derived from commitment, nonce and entropy"),
        Column("drawn_at", "date-time", "抽取时间", "Draw time (UTC)"),
        Column("draw_rank", "integer", "序号", "Rank in key order"),
        Column("uscc", "string", "统一社会信用代码", "Selected enterprise"),
        Column("enterprise_name", "string", "企业名称", "Business name"),
        Column("draw_key", "string", "抽取键值", "SHA-256 key of the enterprise (QSDRAW-1)"),
    ),
    "stats": (
        Column("group", "string", "分组代码", "Top-level product category code"),
        Column("label", "string", "分组", "Category name"),
        Column("tested", "integer", "检验批次", "Batches tested (the denominator)"),
        Column("passed", "integer", "未发现不合格批次", "Batches without failure"),
        Column("failed", "integer", "不合格批次", "Batches failed"),
        Column("rate", "number", "批次合格率", "passed / tested (the tested batches only)"),
        Column("lower", "number", "区间下限", "Wilson 95% interval of rate, lower end"),
        Column("upper", "number", "区间上限", "Wilson 95% interval of rate, upper end"),
        Column("estimate", "number", "总体估计", "Design-weighted (1/π) population estimate"),
        Column("estimate_lower", "number", "估计下限", "Interval of the estimate, lower end"),
        Column("estimate_upper", "number", "估计上限", "Interval of the estimate, upper end"),
        Column("small_sample", "boolean", "样本量不足", "Too little data to stand alone"),
    ),
}


@dataclass
class ExportParams:
    """Filters of an export, checked per dataset."""

    region: str | None = None
    category: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    result_codes: tuple[str, ...] = ()
    conclusion: str | None = None
    changed_since: datetime | None = None
    list_name: str | None = None

    def result_filters(self) -> service.ResultFilters:
        return service.ResultFilters(
            region=self.region,
            category=self.category,
            date_from=self.date_from,
            date_to=self.date_to,
            result_codes=self.result_codes,
            conclusion=self.conclusion,
            changed_since=self.changed_since,
        ).validate()

    def for_dataset(self, dataset: str) -> dict[str, Any]:
        """Validated filters that apply to the dataset (recorded in the manifest)."""
        if dataset not in DATASETS:
            raise InvalidInput(
                f"Unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}. 数据集无效。",
                code="UnknownDataset",
            )
        f = self.result_filters().as_dict()
        if dataset == "results":
            return f
        if dataset == "lists":
            if self.list_name is not None and self.list_name not in service.LIST_NAMES:
                raise InvalidInput(
                    f"list must be one of {', '.join(service.LIST_NAMES)}. 名单无效。",
                    code="ListNotFound",
                )
            out = {k: v for k, v in f.items() if k in ("region", "changed_since")}
            if self.list_name:
                out["list_name"] = self.list_name
            return out
        if dataset == "draws":
            return {k: v for k, v in f.items() if k in ("date_from", "date_to")}
        return {k: v for k, v in f.items() if k in ("region", "category", "date_from", "date_to")}


@dataclass
class Counter:
    rows: int = 0
    bytes: int = 0
    sha256: Any = field(default_factory=hashlib.sha256)


# --- value formatting ---------------------------------------------------------------------------


def json_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return iso_z(v)
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return [json_value(x) for x in v]
    return v


# --- row sources ---------------------------------------------------------------------------------

_RESULTS_SELECT = """
SELECT p.id, p.uscc, p.enterprise_name, p.entity_type, p.region_code, p.region_name,
       p.check_item_code, p.check_item_name, p.inspected_on, p.conclusion,
       CASE p.conclusion WHEN 'pass' THEN '未发现不合格' WHEN 'fail' THEN '不合格'
            ELSE '未检验' END AS conclusion_zh,
       {codes} AS result_codes, {cats} AS category_codes, p.products_text AS products,
       p.failed_items_text AS failed_items, {names} AS inspector_names,
       {published} AS published_at
FROM result_publications p WHERE {where} ORDER BY p.id
"""


def results_sql(f: service.ResultFilters, *, for_copy: bool) -> tuple[str, list[Any]]:
    """The results export query; ``for_copy``: only the stored CSV line of each row."""
    w = service.result_where(f)
    if for_copy:
        sql = f"SELECT p.csv_line FROM result_publications p WHERE {w.sql()} ORDER BY p.id"
    else:
        sql = _RESULTS_SELECT.format(
            codes="p.result_codes",
            cats="p.category_codes",
            names="p.inspector_names",
            published="p.published_at",
            where=w.sql(),
        )
    return w.positional(sql)


async def asyncpg_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under the session, inside the session's transaction."""
    await session.execute(text("SELECT 1"))  # make sure the transaction has begun
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def _cursor_rows(
    session: AsyncSession, sql: str, args: Sequence[Any]
) -> AsyncIterator[list[tuple[Any, ...]]]:
    apg = await asyncpg_connection(session)
    cur = await apg.cursor(sql, *args)
    while True:
        batch = await cur.fetch(BATCH)
        if not batch:
            return
        yield [tuple(r) for r in batch]


async def _list_rows(
    session: AsyncSession, params: ExportParams
) -> AsyncIterator[list[tuple[Any, ...]]]:
    names = [params.list_name] if params.list_name else list(service.LIST_NAMES)
    for name in names:
        cursor: str | None = None
        while True:
            page = await service.list_entries(
                session,
                list_name=name,
                region=params.region,
                changed_since=params.changed_since,
                cursor=cursor,
                limit=service.MAX_LIMIT,
            )
            yield [
                (
                    e["list_name"],
                    e["id"],
                    e["uscc"],
                    e["enterprise_name"],
                    e["status"],
                    e["reason"],
                    e["basis"],
                    e["authority"],
                    e["decision_number"],
                    e["listed_on"],
                    e["expires_on"],
                    e["removed_on"],
                    e["removal_reason"],
                    e["removal_authority"],
                    [m["name"] for m in e.get("measures") or []],
                    e["updated_at"],
                )
                for e in page.items
            ]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor


def draws_sql(params: ExportParams) -> tuple[str, list[Any]]:
    w = service.Where()
    if params.date_from:
        w.add(
            "(d.drawn_at AT TIME ZONE 'Asia/Shanghai')::date >= :date_from",
            date_from=params.date_from,
        )
    if params.date_to:
        w.add("(d.drawn_at AT TIME ZONE 'Asia/Shanghai')::date <= :date_to", date_to=params.date_to)
    sql = (
        "SELECT d.plan_id, p.name, p.check_item_code, c.commitment, d.entropy, d.seed, "
        "d.drawn_at, t.draw_rank, t.uscc, e.name, t.draw_key FROM tasks t "
        "JOIN draws d ON d.id = t.draw_id AND d.plan_id = t.plan_id "
        "JOIN plans p ON p.id = d.plan_id "
        "JOIN commitments c ON c.id = d.commitment_id JOIN enterprises e ON e.uscc = t.uscc "
        f"WHERE {w.sql()} ORDER BY d.plan_id, t.draw_rank"
    )
    return w.positional(sql)


async def _stats_rows(
    session: AsyncSession, params: ExportParams
) -> AsyncIterator[list[tuple[Any, ...]]]:
    res = await service.public_stats(
        session,
        group_by=["category:1"],
        region=params.region,
        category=params.category,
        date_from=params.date_from,
        date_to=params.date_to,
    )
    out = []
    for r in res.rows:
        w = r.weighted
        out.append(
            (
                ";".join(r.group.values()),
                " · ".join(r.labels.values()),
                r.tested,
                r.passed,
                r.failed,
                r.rate,
                r.lower,
                r.upper,
                w.estimate if w else None,
                w.lower if w else None,
                w.upper if w else None,
                r.flag.small,
            )
        )
    yield out


def row_batches(
    session: AsyncSession, dataset: str, params: ExportParams
) -> AsyncIterator[list[tuple[Any, ...]]]:
    if dataset == "results":
        sql, args = results_sql(params.result_filters(), for_copy=False)
        return _cursor_rows(session, sql, args)
    if dataset == "lists":
        return _list_rows(session, params)
    if dataset == "draws":
        sql, args = draws_sql(params)
        return _cursor_rows(session, sql, args)
    return _stats_rows(session, params)


# --- writers -------------------------------------------------------------------------------------


async def _copy_csv(
    session: AsyncSession, params: ExportParams, counter: Counter
) -> AsyncIterator[bytes]:
    """Results as CSV straight from PostgreSQL's COPY, relayed through a bounded queue."""
    sql, args = results_sql(params.result_filters(), for_copy=True)
    apg = await asyncpg_connection(session)
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=16)

    async def sink(chunk: bytes) -> None:
        await queue.put(bytes(chunk))

    async def produce() -> None:
        try:
            # one text column, written verbatim: delimiter and quote are control characters
            # that a stored line never contains (formats.one_line), so nothing is re-quoted
            await apg.copy_from_query(
                sql,
                *args,
                output=sink,
                format="csv",
                delimiter="\x1f",
                quote="\x1e",
                timeout=3600,
            )
        finally:
            await queue.put(None)

    task = asyncio.create_task(produce())
    try:
        header = ",".join(c.name for c in COLUMNS["results"]) + "\n"
        yield BOM + header.encode("utf-8")
        while True:
            chunk = await queue.get()
            if chunk is None:
                break
            counter.rows += chunk.count(b"\n")  # one line per row (formats.one_line)
            yield chunk
        await task  # re-raise a failed COPY
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _csv(
    batches: AsyncIterator[list[tuple[Any, ...]]], columns: Sequence[Column], counter: Counter
) -> AsyncIterator[bytes]:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([c.name for c in columns])
    yield BOM + buf.getvalue().encode("utf-8")
    async for batch in batches:
        buf.seek(0)
        buf.truncate()
        w.writerows([text_value(v) for v in row] for row in batch)
        counter.rows += len(batch)
        yield buf.getvalue().encode("utf-8")


async def _json(
    batches: AsyncIterator[list[tuple[Any, ...]]], columns: Sequence[Column], counter: Counter
) -> AsyncIterator[bytes]:
    names = [c.name for c in columns]
    yield b"["
    sep = "\n"
    async for batch in batches:
        parts = []
        for row in batch:
            obj = {n: json_value(v) for n, v in zip(names, row, strict=True)}
            parts.append(sep + json.dumps(obj, ensure_ascii=False, separators=(",", ":")))
            sep = ",\n"
        counter.rows += len(batch)
        yield "".join(parts).encode("utf-8")
    yield b"\n]\n"


async def _xlsx(
    batches: AsyncIterator[list[tuple[Any, ...]]],
    columns: Sequence[Column],
    counter: Counter,
    dataset: str,
) -> AsyncIterator[bytes]:
    import xlsxwriter

    fd, path = tempfile.mkstemp(prefix="qsampling-export-", suffix=".xlsx")
    os.close(fd)
    try:
        wb = xlsxwriter.Workbook(
            path,
            {
                "constant_memory": True,
                "strings_to_numbers": False,
                "strings_to_formulas": False,
                "strings_to_urls": False,
            },
        )
        bold = wb.add_format({"bold": True})
        sheet_no = 0
        row_no = 0
        ws = None

        def new_sheet() -> Any:
            nonlocal sheet_no, row_no
            sheet_no += 1
            s = wb.add_worksheet(dataset if sheet_no == 1 else f"{dataset}_{sheet_no}")
            for i, c in enumerate(columns):
                s.write_string(0, i, c.name, bold)
            row_no = 0
            return s

        ws = new_sheet()
        async for batch in batches:
            for row in batch:
                if row_no >= XLSX_MAX_ROWS:
                    ws = new_sheet()
                row_no += 1
                for i, v in enumerate(row):
                    if v is None:
                        continue
                    if isinstance(v, bool) or not isinstance(v, (int, float)):
                        ws.write_string(row_no, i, text_value(v))
                    else:
                        ws.write_number(row_no, i, v)
            counter.rows += len(batch)
        about = wb.add_worksheet("说明")
        about.write_row(0, 0, ["字段 field", "名称", "说明 description", "类型 type"], bold)
        for i, c in enumerate(columns, start=1):
            about.write_row(i, 0, [c.name, c.title, c.description, c.type])
        wb.close()
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                yield chunk
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def stream_export(
    session: AsyncSession, *, dataset: str, fmt: str, params: ExportParams, counter: Counter
) -> AsyncIterator[bytes]:
    """The export file's bytes, chunk by chunk (counting rows, bytes and SHA-256)."""
    params.for_dataset(dataset)
    if fmt not in FORMATS:
        raise InvalidInput(
            f"Unknown format {fmt!r}; choose csv, json or xlsx. 格式无效。", code="UnknownFormat"
        )
    columns = COLUMNS[dataset]
    if dataset == "results" and fmt == "csv":
        inner = _copy_csv(session, params, counter)
    else:
        batches = row_batches(session, dataset, params)
        if fmt == "csv":
            inner = _csv(batches, columns, counter)
        elif fmt == "json":
            inner = _json(batches, columns, counter)
        else:
            inner = _xlsx(batches, columns, counter, dataset)
    return _counted(inner, counter)


async def _counted(inner: AsyncIterator[bytes], counter: Counter) -> AsyncIterator[bytes]:
    async for chunk in inner:
        if chunk:
            counter.bytes += len(chunk)
            counter.sha256.update(chunk)
            yield chunk


def file_name(dataset: str, fmt: str) -> str:
    return f"{dataset}.{fmt}"


def manifest_for(
    *, dataset: str, fmt: str, params: ExportParams, counter: Counter, generated_at: datetime
) -> Manifest:
    return Manifest(
        dataset=dataset,
        format=fmt,
        filters=params.for_dataset(dataset),
        row_count=counter.rows,
        files=[
            FileEntry(
                name=file_name(dataset, fmt),
                sha256=counter.sha256.hexdigest(),
                bytes=counter.bytes,
                rows=counter.rows,
            )
        ],
        generated_at=generated_at,
        generator=f"qsampling {__version__}",
        schema=f"api/schemas/{dataset}.json",
    )


# --- zip bundle (HTTP) ---------------------------------------------------------------------------


class _Sink(io.RawIOBase):
    """A write-only, non-seekable byte sink that zipfile writes into and we drain."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self._parts.append(data)
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def drain(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


async def stream_bundle(
    session: AsyncSession,
    *,
    dataset: str,
    fmt: str,
    params: ExportParams,
    seed: bytes,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AsyncIterator[bytes]:
    """A zip with the data file, ``manifest.json`` and ``manifest.sig``, streamed: the data
    is hashed as it is zipped and the manifest written after it."""
    counter = Counter()
    generated_at = now()
    sink = _Sink()
    compression = zipfile.ZIP_STORED if fmt == "xlsx" else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(sink, "w", compression=compression) as zf:
        info = zipfile.ZipInfo(file_name(dataset, fmt), date_time=generated_at.timetuple()[:6])
        info.compress_type = compression
        with zf.open(info, "w", force_zip64=True) as entry:
            async for chunk in stream_export(
                session, dataset=dataset, fmt=fmt, params=params, counter=counter
            ):
                entry.write(chunk)
                out = sink.drain()
                if out:
                    yield out
        body, sig = render_manifest(
            manifest_for(
                dataset=dataset,
                fmt=fmt,
                params=params,
                counter=counter,
                generated_at=generated_at,
            ),
            seed,
        )
        for name, data in (("manifest.json", body), ("manifest.sig", sig)):
            mi = zipfile.ZipInfo(name, date_time=generated_at.timetuple()[:6])
            mi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(mi, data)
    yield sink.drain()


# --- to a directory (CLI) ------------------------------------------------------------------------


class ExportWriteError(Exception):
    """Writing the export failed (disk full, permissions); the partial file was removed."""


async def export_to_dir(
    session: AsyncSession,
    *,
    dataset: str,
    fmt: str,
    params: ExportParams,
    out_dir: Path,
    seed: bytes,
    on_progress: Callable[[int], Awaitable[None]] | None = None,
) -> tuple[Path, Manifest]:
    """Write ``<dataset>.<fmt>``, ``manifest.json`` and ``manifest.sig`` into ``out_dir``.

    The data goes to ``.<name>.partial`` first and is renamed when complete; on any error
    the partial file is removed and :class:`ExportWriteError` names the cause."""
    params.for_dataset(dataset)
    name = file_name(dataset, fmt)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportWriteError(f"cannot create {out_dir}: {exc.strerror or exc}") from exc
    partial = out_dir / f".{name}.partial"
    final = out_dir / name
    counter = Counter()
    generated_at = datetime.now(UTC)
    try:
        with open(partial, "wb") as fh:
            async for chunk in stream_export(
                session, dataset=dataset, fmt=fmt, params=params, counter=counter
            ):
                fh.write(chunk)
                if on_progress is not None:
                    await on_progress(counter.rows)
            fh.flush()
            os.fsync(fh.fileno())
        manifest = manifest_for(
            dataset=dataset, fmt=fmt, params=params, counter=counter, generated_at=generated_at
        )
        body, sig = render_manifest(manifest, seed)
        os.replace(partial, final)
        _write_small(out_dir / "manifest.json", body)
        _write_small(out_dir / "manifest.sig", sig)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise ExportWriteError(
            f"cannot write {final}: {exc.strerror or exc} (partial file removed)"
        ) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    return final, manifest


def _write_small(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def json_schema(dataset: str) -> dict[str, Any]:
    """The JSON Schema of one row of a dataset (``api/schemas/<dataset>.json``)."""
    types: dict[str, dict[str, Any]] = {
        "string": {"type": ["string", "null"]},
        "integer": {"type": ["integer", "null"]},
        "number": {"type": ["number", "null"]},
        "date": {"type": ["string", "null"], "format": "date"},
        "date-time": {"type": ["string", "null"], "format": "date-time"},
        "array": {"type": "array", "items": {"type": "string"}},
        "boolean": {"type": ["boolean", "null"]},
    }
    props = {}
    for c in COLUMNS[dataset]:
        p = dict(types[c.type])
        p["title"] = c.title
        p["description"] = c.description + (
            " (CSV/XLSX: joined with ';')" if c.type == "array" else ""
        )
        props[c.name] = p
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://qsampling.example/api/schemas/{dataset}.json",
        "title": f"qsampling open data: {dataset} (one row)",
        "description": "One row of the export; CSV files are UTF-8 with BOM, header = field "
        "names, in this order. 每行一条记录；CSV 为带 BOM 的 UTF-8 编码。",
        "type": "object",
        "additionalProperties": False,
        "required": [c.name for c in COLUMNS[dataset]],
        "properties": props,
    }


def render_schema(dataset: str) -> str:
    return json.dumps(json_schema(dataset), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


__all__ = [
    "COLUMNS",
    "DATASETS",
    "FORMATS",
    "Counter",
    "ExportParams",
    "ExportWriteError",
    "export_to_dir",
    "json_schema",
    "redact",
    "stream_bundle",
    "stream_export",
]
