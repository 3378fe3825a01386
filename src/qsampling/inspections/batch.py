"""The laboratory batch path: many results in one request, per-row errors, valid rows stored
in one transaction with set-based inserts, the idempotency rule applied per row.

Formats
- ``application/x-ndjson``: one JSON object per line — a result body (as for
  ``POST /api/v1/tasks/{id}/result``) plus ``task_id`` and ``idempotency_key``.
- ``text/csv`` (UTF-8, BOM allowed): one line per *test item*; lines with the same
  ``idempotency_key`` form one result (result-level columns repeat and must agree; lines with
  the same ``sample_no`` form one sample). Columns, in any order (see ``CSV_COLUMNS``)::

    task_id,idempotency_key,inspected_at,conclusion,category_codes,notes,evidence,
    sample_no,product_name,brand,model_spec,batch_no,production_date,quantity,quantity_unit,
    standard,category_code,item_name,requirement,measured_value,unit,verdict

  ``category_codes`` and ``evidence`` are separated by ``;``. A result without samples
  (refusal, unreachable, closed) is one line with empty sample and item columns.
"""

from __future__ import annotations

import csv
import gc
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.audit import service as audit
from qsampling.context import Actor
from qsampling.errors import InvalidInput, QSamplingError
from qsampling.inspections import finalise as fin
from qsampling.inspections.idempotency import Stored, lookup_many, request_hash
from qsampling.inspections.pg import driver
from qsampling.inspections.schemas import BatchReport, BatchRowIn, BatchRowReport
from qsampling.inspections.service import reference_errors
from qsampling.inspections.states import OPEN_STATES, STATE_NAMES_ZH, submit_action
from qsampling.inspections.validation import check_result, local_date

MAX_ROWS = 50_000
NDJSON_TYPES = frozenset(
    {
        "application/x-ndjson",
        "application/jsonl",
        "application/json-seq",
        "application/jsonlines",
        "application/x-jsonlines",
    }
)
CSV_TYPES = frozenset({"text/csv", "application/csv"})
RESULT_COLUMNS = (
    "task_id",
    "idempotency_key",
    "inspected_at",
    "conclusion",
    "category_codes",
    "notes",
    "evidence",
)
SAMPLE_COLUMNS = (
    "sample_no",
    "product_name",
    "brand",
    "model_spec",
    "batch_no",
    "production_date",
    "quantity",
    "quantity_unit",
    "standard",
    "category_code",
)
ITEM_COLUMNS = ("item_name", "requirement", "measured_value", "unit", "verdict")
CSV_COLUMNS = RESULT_COLUMNS + SAMPLE_COLUMNS + ITEM_COLUMNS
REQUIRED_CSV = ("task_id", "idempotency_key", "inspected_at", "category_codes")

_ROW = TypeAdapter(BatchRowIn)
_DATETIME = TypeAdapter(datetime)


class UnsupportedBatchType(QSamplingError):
    status = 415
    code = "UnsupportedMediaType"


class _Task(NamedTuple):
    id: int
    status: str
    created_at: datetime
    on_team: bool


@dataclass
class _Row:
    line: int
    body: BatchRowIn | None = None
    report: BatchRowReport | None = None
    req_hash: str = ""
    action: str = ""
    new_status: str = ""
    errors: list[dict[str, Any]] = field(default_factory=list)


def _error(
    line: int,
    code: str,
    detail: str,
    *,
    task_id: int | None = None,
    key: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> BatchRowReport:
    return BatchRowReport(
        row=line,
        status="error",
        task_id=task_id,
        idempotency_key=key,
        error=code,
        detail=detail,
        errors=errors,
    )


def _pyd_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {
            "loc": [str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": e.get("type", ""),
        }
        for e in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def _invalid(
    line: int, errs: list[dict[str, Any]], *, task_id: int | None = None, key: str | None = None
) -> BatchRowReport:
    first = errs[0]
    where = ".".join(str(p) for p in first["loc"]) or "row"
    return _error(
        line,
        "InvalidInput",
        f"Invalid input at {where}: {first['msg']}. 输入无效。",
        task_id=task_id,
        key=key,
        errors=[{**e, "loc": [str(p) for p in e["loc"]]} for e in errs],
    )


class _GcPause:
    """Python's cyclic garbage collector off while a batch is being handled.

    A batch builds a hundred thousand small objects (models, rows, records) that stay alive
    until it is answered; every allocation burst triggers collections that walk them again
    and again, which cost more than the parsing itself (about 35 of 50 µs a row). With the
    collector off they are freed by reference counting when the batch is done, never walked.
    Other requests of the same worker run meanwhile without cycle collection, for as long
    as a batch lasts (under a second for 5,000 rows); the collector is back on when the last
    overlapping batch ends.
    """

    def __init__(self) -> None:
        self.depth = 0
        self.restore = False

    @contextmanager
    def __call__(self) -> Iterator[None]:
        if self.depth == 0:
            self.restore = gc.isenabled()
            gc.disable()
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
            if self.depth == 0 and self.restore:
                gc.enable()


gc_paused = _GcPause()


# --- parsing ----------------------------------------------------------------------------------


def parse_ndjson(content: bytes) -> Iterator[_Row]:
    for n, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        row = _Row(line=n)
        try:
            row.body = _ROW.validate_json(line)
        except ValidationError as exc:
            row.report = _invalid(n, _pyd_errors(exc))
        yield row


def _blank(v: str | None) -> bool:
    return v is None or v.strip() == ""


def parse_csv(content: bytes) -> Iterator[_Row]:
    try:
        decoded = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(
            "The CSV is not UTF-8. CSV 文件须为 UTF-8 编码。", code="InvalidEncoding"
        ) from None
    reader = csv.DictReader(io.StringIO(decoded, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_CSV if c not in header]
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if missing or unknown:
        raise InvalidInput(
            f"CSV header: missing {missing or 'nothing'}, unknown {unknown or 'nothing'}; "
            f"columns are {','.join(CSV_COLUMNS)}. CSV 表头有误。",
            code="InvalidCsvHeader",
        )
    reader.fieldnames = header
    groups: dict[str, list[tuple[int, dict[str, str]]]] = {}
    order: list[str] = []
    for n, rec in enumerate(reader, start=2):
        clean = {k: (v or "").strip() for k, v in rec.items() if k is not None}
        key = clean.get("idempotency_key", "")
        gid = key or f"\x00line{n}"  # a line without a key is its own (invalid) group
        if gid not in groups:
            groups[gid] = []
            order.append(gid)
        groups[gid].append((n, clean))
    for gid in order:
        lines = groups[gid]
        first_line = lines[0][0]
        row = _Row(line=first_line)
        try:
            row.body = _ROW.validate_python(_csv_group(lines))
        except ValidationError as exc:
            row.report = _invalid(first_line, _pyd_errors(exc))
        except _CsvGroupError as exc:
            row.report = _invalid(
                exc.line, [{"loc": [exc.column], "msg": exc.msg, "type": "csv_inconsistent"}]
            )
        yield row


class _CsvGroupError(Exception):
    def __init__(self, line: int, column: str, msg: str) -> None:
        super().__init__(msg)
        self.line, self.column, self.msg = line, column, msg


def _opt(v: str) -> str | None:
    return None if v == "" else v


def _csv_group(lines: list[tuple[int, dict[str, str]]]) -> dict[str, Any]:
    first = lines[0][1]
    for n, rec in lines[1:]:
        for col in RESULT_COLUMNS:
            if rec.get(col, "") != first.get(col, ""):
                raise _CsvGroupError(
                    n, col, f"differs from line {lines[0][0]} of the same idempotency_key"
                )
    body: dict[str, Any] = {
        "task_id": first.get("task_id"),
        "idempotency_key": first.get("idempotency_key"),
        "inspected_at": first.get("inspected_at"),
        "conclusion": _opt(first.get("conclusion", "")),
        "category_codes": [
            c.strip() for c in first.get("category_codes", "").split(";") if c.strip()
        ],
        "notes": _opt(first.get("notes", "")),
        "evidence": [e.strip() for e in first.get("evidence", "").split(";") if e.strip()],
    }
    samples: dict[str, dict[str, Any]] = {}
    for n, rec in lines:
        sno = rec.get("sample_no", "")
        if _blank(sno) and _blank(rec.get("product_name")) and _blank(rec.get("item_name")):
            continue
        if sno not in samples:
            samples[sno] = {
                "product_name": rec.get("product_name", ""),
                "brand": _opt(rec.get("brand", "")),
                "model_spec": _opt(rec.get("model_spec", "")),
                "batch_no": _opt(rec.get("batch_no", "")),
                "production_date": _opt(rec.get("production_date", "")),
                "quantity": rec.get("quantity", ""),
                "quantity_unit": _opt(rec.get("quantity_unit", "")),
                "standard": _opt(rec.get("standard", "")),
                "category_code": _opt(rec.get("category_code", "")),
                "items": [],
                "_line": n,
            }
        else:
            s = samples[sno]
            for col in ("product_name", "batch_no", "quantity"):
                if (rec.get(col, "") or "") != (first_sample_value(s, col)):
                    raise _CsvGroupError(n, col, f"differs from line {s['_line']} of sample {sno}")
        samples[sno]["items"].append(
            {
                "name": rec.get("item_name", ""),
                "requirement": _opt(rec.get("requirement", "")),
                "measured_value": _opt(rec.get("measured_value", "")),
                "unit": _opt(rec.get("unit", "")),
                "verdict": rec.get("verdict", ""),
            }
        )
    body["samples"] = [{k: v for k, v in s.items() if k != "_line"} for s in samples.values()]
    return body


def first_sample_value(sample: dict[str, Any], col: str) -> str:
    v = sample.get(col)
    return "" if v is None else str(v)


def parse(content: bytes, content_type: str) -> list[_Row]:
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in NDJSON_TYPES:
        rows = list(parse_ndjson(content))
    elif ctype in CSV_TYPES:
        rows = list(parse_csv(content))
    else:
        raise UnsupportedBatchType(
            f"Send application/x-ndjson or text/csv, not {ctype or 'nothing'}. "
            "请以 NDJSON 或 CSV 格式提交。"
        )
    if not rows:
        raise InvalidInput("The batch has no rows. 批量数据为空。", code="EmptyBatch")
    if len(rows) > MAX_ROWS:
        raise InvalidInput(
            f"A batch holds at most {MAX_ROWS} results; split it. 单批最多 {MAX_ROWS} 条。",
            code="BatchTooLarge",
        )
    return rows


# --- storing ----------------------------------------------------------------------------------

_LOCK = """
    SELECT t.id, t.status, t.created_at, {team} AS on_team
    FROM tasks t WHERE t.id = ANY($1::bigint[])
    ORDER BY t.id
    FOR UPDATE OF t
"""
_TEAM = "EXISTS (SELECT 1 FROM task_inspectors ti WHERE ti.task_id = t.id AND ti.inspector_id = $2)"
_LOCK_TEAM = _LOCK.format(team=_TEAM)
_LOCK_ANY = _LOCK.format(team="true")

_REFS = text("""
    SELECT ARRAY(SELECT code::text FROM categories WHERE code = ANY(CAST(:cats AS text[]))),
           ARRAY(SELECT sha256::text FROM evidence_files WHERE sha256 = ANY(CAST(:ev AS text[])))
""")

_CLAIM = """
    INSERT INTO idempotency_keys (actor, key, request_sha256, response_status, response_body)
    SELECT $1, k, h, 201, CAST(b AS jsonb)
    FROM unnest($2::text[], $3::text[], $4::text[]) AS u(k, h, b)
    ON CONFLICT DO NOTHING
    RETURNING key
"""

RESULT_COPY_COLUMNS = [
    "id",
    "task_id",
    "version",
    "live",
    "inspected_at",
    "conclusion",
    "category_codes",
    "notes",
    "evidence_sha256",
    "submitted_by",
    "submitted_at",
    "source",
]
SAMPLE_COPY_COLUMNS = [
    "id",
    "result_id",
    "sample_no",
    "product_name",
    "brand",
    "model_spec",
    "batch_no",
    "production_date",
    "quantity",
    "quantity_unit",
    "standard",
    "category_code",
]
ITEM_COPY_COLUMNS = [
    "result_id",
    "sample_id",
    "item_no",
    "name",
    "requirement",
    "measured_value",
    "unit",
    "verdict",
]

_IDS = "SELECT array(SELECT nextval('{seq}') FROM generate_series(1, $1))"

# one statement per new status: the primary-key index finds the batch's tasks (a join with
# an unnest of ids would hash the whole tasks table for every batch)
_TASKS = "UPDATE tasks SET status = $1, updated_at = $2 WHERE id = ANY($3::bigint[])"


def _replayed(line: int, key: str, stored: Stored) -> BatchRowReport:
    return BatchRowReport(
        row=line,
        status="replayed",
        task_id=stored.body.get("task_id"),
        idempotency_key=key,
        result_id=stored.body.get("result_id"),
    )


def _reused(line: int, key: str, task_id: int) -> BatchRowReport:
    return _error(
        line,
        "IdempotencyKeyReused",
        f"The idempotency_key {key!r} was already used for a different result. "
        "该幂等键已用于另一个请求。",
        task_id=task_id,
        key=key,
    )


def _check(
    fresh: list[_Row],
    *,
    tasks: dict[int, _Task],
    state: dict[int, str],
    known_cats: set[str],
    known_ev: set[str],
    now: datetime,
) -> tuple[list[_Row], list[_Row]]:
    """Each fresh row against its task (found, on the team, open) and the result rules; the
    rows to store, and those whose task is no longer open (decided after a second look at
    the keys). ``state`` follows the tasks as rows are accepted."""
    late: list[_Row] = []
    accepted: list[_Row] = []
    for r in fresh:
        body = r.body
        assert body is not None
        t = tasks.get(body.task_id)
        if t is None:
            r.report = _error(
                r.line,
                "TaskNotFound",
                f"No task {body.task_id}. 任务不存在。",
                task_id=body.task_id,
                key=body.idempotency_key,
            )
            continue
        if not t.on_team:
            r.report = _error(
                r.line,
                "NotOnTeam",
                f"You are not on the inspection team of task {body.task_id}. "
                "您不是该任务的检查组成员。",
                task_id=body.task_id,
                key=body.idempotency_key,
            )
            continue
        r.action = submit_action(body.category_codes)
        current = state[body.task_id]
        if current not in OPEN_STATES:
            late.append(r)
            continue
        r.errors = check_result(body, now=now, drawn_on=local_date(t.created_at), prefix=())
        r.errors += reference_errors(body, known_cats, known_ev, ())
        if r.errors:
            continue
        r.new_status = "closed" if r.action == "close" else "submitted"
        state[body.task_id] = r.new_status
        accepted.append(r)
    return late, accepted


async def submit_batch(
    session: AsyncSession, *, actor: Actor, content: bytes, content_type: str, now: datetime
) -> BatchReport:
    """Check every row, store the valid ones (in the session's transaction), report each."""
    with gc_paused():
        return await _submit_batch(
            session, actor=actor, content=content, content_type=content_type, now=now
        )


async def _submit_batch(
    session: AsyncSession, *, actor: Actor, content: bytes, content_type: str, now: datetime
) -> BatchReport:
    rows = parse(content, content_type)
    todo = [r for r in rows if r.report is None]
    for r in todo:
        assert r.body is not None
        r.req_hash = request_hash("submit", r.body.task_id, r.body)

    # 1. keys seen before (earlier batches or the single-result API) and repeats in this batch
    stored = await lookup_many(
        session, actor=actor.username, keys=sorted({r.body.idempotency_key for r in todo if r.body})
    )
    first_of_key: dict[str, _Row] = {}
    fresh: list[_Row] = []
    for r in todo:
        assert r.body is not None
        key = r.body.idempotency_key
        if key in stored:
            st = stored[key]
            r.report = (
                _replayed(r.line, key, st)
                if st.request_sha256 == r.req_hash
                else _reused(r.line, key, r.body.task_id)
            )
        elif key in first_of_key:
            if first_of_key[key].req_hash != r.req_hash:
                r.report = _reused(r.line, key, r.body.task_id)
            # identical repeat: reported once the first one is stored
        else:
            first_of_key[key] = r
            fresh.append(r)

    # 2. lock the tasks (in id order: batches never deadlock each other) and check the team
    task_ids = sorted({r.body.task_id for r in fresh if r.body})
    tasks: dict[int, _Task] = {}
    if task_ids:
        db = await driver(session)
        if actor.role in ("admin", "supervisor"):
            locked = await db.fetch(_LOCK_ANY, task_ids)
        else:
            locked = await db.fetch(_LOCK_TEAM, task_ids, actor.inspector_id or "")
        for trow in locked:
            tasks[trow["id"]] = _Task(*trow)
    state: dict[int, str] = {tid: tr.status for tid, tr in tasks.items()}
    # the product categories and evidence the rows reference, in one query
    cats = {s.category_code for r in fresh if r.body for s in r.body.samples if s.category_code}
    evs = {d for r in fresh if r.body for d in r.body.evidence}
    known_cats: set[str] = set()
    known_ev: set[str] = set()
    if cats or evs:
        ref = (await session.execute(_REFS, {"cats": sorted(cats), "ev": sorted(evs)})).one()
        known_cats, known_ev = set(ref[0] or ()), set(ref[1] or ())
    late, accepted = _check(
        fresh, tasks=tasks, state=state, known_cats=known_cats, known_ev=known_ev, now=now
    )

    # a duplicate that waited on the task lock: the first may have committed meanwhile
    if late:
        again = await lookup_many(
            session, actor=actor.username, keys=[r.body.idempotency_key for r in late if r.body]
        )
        for r in late:
            assert r.body is not None
            key = r.body.idempotency_key
            if key in again:
                st = again[key]
                r.report = (
                    _replayed(r.line, key, st)
                    if st.request_sha256 == r.req_hash
                    else _reused(r.line, key, r.body.task_id)
                )
            else:
                current = state[r.body.task_id]
                zh = STATE_NAMES_ZH.get(current, current)
                r.report = _error(
                    r.line,
                    "IllegalTransition",
                    f"Cannot submit a result for a task that is {current!r}. "
                    f"当前状态为“{zh}”，不能提交结果。",
                    task_id=r.body.task_id,
                    key=key,
                )

    for r in fresh:
        if r.errors and r.report is None:
            assert r.body is not None
            r.report = _invalid(
                r.line, r.errors, task_id=r.body.task_id, key=r.body.idempotency_key
            )
    accepted = [r for r in accepted if r.report is None]

    if accepted:
        await _store(session, actor=actor, rows=accepted, now=now)

    # identical repeats inside the batch point at what their first occurrence got
    for r in todo:
        if r.report is None and r.body is not None:
            first = first_of_key[r.body.idempotency_key]
            if first.report is not None and first.report.status == "created":
                r.report = BatchRowReport(
                    row=r.line,
                    status="replayed",
                    task_id=r.body.task_id,
                    idempotency_key=r.body.idempotency_key,
                    result_id=first.report.result_id,
                )
            elif first.report is not None:
                r.report = first.report.model_copy(update={"row": r.line})
    reports = [r.report for r in rows if r.report is not None]
    return BatchReport(
        received=len(rows),
        created=sum(1 for x in reports if x.status == "created"),
        replayed=sum(1 for x in reports if x.status == "replayed"),
        rejected=sum(1 for x in reports if x.status == "error"),
        rows=reports,
    )


ANALYZE_MIN_ROWS = 1_000


async def _stale_statistics(db: Any, adding: dict[str, int]) -> set[str]:
    """The tables this batch grows by more than half of what the planner believes they hold.

    Each sample and test item is checked against its result (and sample) by a foreign key,
    with a plan PostgreSQL makes once per connection from the table statistics: while those
    say "nearly empty" (a new installation, before autovacuum's first visit) the plan is a
    sequential scan, and a batch of thousands of rows turns quadratic — seconds per batch.
    ANALYZE inside the transaction (it counts the transaction's own new rows) replaces the
    plan with an index lookup; on an established database it never runs.
    """
    big = [t for t, n in adding.items() if n >= ANALYZE_MIN_ROWS]
    if not big:
        return set()
    rows = await db.fetch(
        "SELECT relname::text AS name, reltuples FROM pg_class "
        "WHERE relname = ANY($1::text[]) AND relkind = 'r' "
        "AND relnamespace = current_schema()::regnamespace",
        big,
    )
    return {r["name"] for r in rows if r["reltuples"] < 2 * adding[r["name"]]}


async def _store(session: AsyncSession, *, actor: Actor, rows: list[_Row], now: datetime) -> None:
    n = len(rows)
    n_samples = sum(len(r.body.samples) for r in rows if r.body)
    db = await driver(session)
    ids: list[int] = await db.fetchval(_IDS.format(seq="results_id_seq"), n)
    sample_ids: list[int] = (
        await db.fetchval(_IDS.format(seq="samples_id_seq"), n_samples) if n_samples else []
    )
    # the same JSON the single-result API answers (ResultReceipt), built without a model
    # per row
    submitted_at = _DATETIME.dump_python(now, mode="json")
    receipts: list[dict[str, Any]] = []
    for rid, r in zip(ids, rows, strict=True):
        assert r.body is not None
        receipts.append(
            {
                "result_id": rid,
                "task_id": r.body.task_id,
                "version": 1,
                "task_status": r.new_status,
                "submitted_at": submitted_at,
                "final": r.action == "close",
            }
        )
    bodies = [json.dumps(x) for x in receipts]
    claimed = {
        k
        for (k,) in await db.fetch(
            _CLAIM,
            actor.username,
            [r.body.idempotency_key for r in rows if r.body],
            [r.req_hash for r in rows],
            bodies,
        )
    }
    if len(claimed) < n:
        # keys taken by a concurrent request between our lookup and now: those rows are not
        # written; report them from the stored record
        lost = [r for r in rows if r.body and r.body.idempotency_key not in claimed]
        again = await lookup_many(
            session, actor=actor.username, keys=[r.body.idempotency_key for r in lost if r.body]
        )
        for r in lost:
            assert r.body is not None
            key = r.body.idempotency_key
            got = again.get(key)
            r.report = (
                _replayed(r.line, key, got)
                if got is not None and got.request_sha256 == r.req_hash
                else _reused(r.line, key, r.body.task_id)
            )
        keep = [i for i, r in enumerate(rows) if r.report is None]
        rows = [rows[i] for i in keep]
        ids = [ids[i] for i in keep]
        receipts = [receipts[i] for i in keep]
        if not rows:
            return

    # the rows go in with COPY (binary) on the session's own connection and transaction
    res_rows: list[tuple[Any, ...]] = []
    smp_rows: list[tuple[Any, ...]] = []
    itm_rows: list[tuple[Any, ...]] = []
    sid_iter = iter(sample_ids)
    for rid, r in zip(ids, rows, strict=True):
        b = r.body
        assert b is not None
        res_rows.append(
            (rid, b.task_id, 1, True, b.inspected_at, b.conclusion, list(b.category_codes),
             b.notes, list(b.evidence), actor.username, now, "batch")
        )  # fmt: skip
        for sno, sm in enumerate(b.samples, start=1):
            sid = next(sid_iter)
            smp_rows.append(
                (sid, rid, sno, sm.product_name, sm.brand, sm.model_spec, sm.batch_no,
                 sm.production_date, sm.quantity, sm.quantity_unit, sm.standard,
                 sm.category_code)
            )  # fmt: skip
            for ino, it in enumerate(sm.items, start=1):
                itm_rows.append(
                    (rid, sid, ino, it.name, it.requirement, it.measured_value, it.unit,
                     it.verdict)
                )  # fmt: skip
    stale = await _stale_statistics(db, {"results": len(res_rows), "samples": len(smp_rows)})
    await db.copy_records_to_table("results", records=res_rows, columns=RESULT_COPY_COLUMNS)
    if "results" in stale:
        await db.execute("ANALYZE results")
    if smp_rows:
        await db.copy_records_to_table("samples", records=smp_rows, columns=SAMPLE_COPY_COLUMNS)
        if "samples" in stale:
            await db.execute("ANALYZE samples")
        await db.copy_records_to_table("test_items", records=itm_rows, columns=ITEM_COPY_COLUMNS)
    by_status: dict[str, list[int]] = {}
    for r in rows:
        assert r.body is not None
        by_status.setdefault(r.new_status, []).append(r.body.task_id)
    for status, task_ids in sorted(by_status.items()):
        await db.execute(_TASKS, status, now, task_ids)
    audit_items: list[tuple[str, Any]] = [
        (
            str(rid),
            {
                "task_id": r.body.task_id,
                "version": 1,
                "request_sha256": r.req_hash,
                "source": "batch",
            },
        )
        for rid, r in zip(ids, rows, strict=True)
        if r.body
    ]
    for rid, r in zip(ids, rows, strict=True):
        assert r.body is not None
        r.report = BatchRowReport.model_construct(
            row=r.line,
            status="created",
            task_id=r.body.task_id,
            idempotency_key=r.body.idempotency_key,
            result_id=rid,
            error=None,
            detail=None,
            errors=None,
        )
    await audit.record_many(
        session, actor=actor, action="result.submit", entity_type="result", items=audit_items
    )
    closed = [r.body.task_id for r in rows if r.body and r.action == "close"]
    if closed:
        await fin.finalise(session, now=now, task_ids=closed, wait=True)
