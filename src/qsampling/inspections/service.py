"""Inspection tasks and results: who sees what, the state machine, submissions (with
idempotency), corrections, notification, objection and retest.

Services take keyword arguments and a session and only flush; the request (or the CLI
command) owns the transaction. The submission path is the hot one (hundreds per second from
phones): one statement locks the task, checks the team, looks up the idempotency key and the
referenced categories and evidence; after validation one more writes the result, its
samples and test items, the audit entry, the task's new state and the stored response.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import exists, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.audit import service as audit
from qsampling.context import Actor, current_request_id
from qsampling.errors import Conflict, Forbidden, InvalidInput, NotFound
from qsampling.inspections import evidence
from qsampling.inspections import finalise as fin
from qsampling.inspections.idempotency import (
    Stored,
    lookup,
    replay_or_raise,
    request_hash,
    reused,
)
from qsampling.inspections.pg import connection, driver
from qsampling.inspections.schemas import (
    ItemOut,
    NotificationIn,
    NotificationOut,
    ObjectionIn,
    ObjectionOut,
    RectificationOut,
    ResultIn,
    ResultOut,
    ResultReceipt,
    ResultVersion,
    RetestIn,
    RetestOut,
    SampleOut,
    TaskDetail,
    TaskOut,
    TaskPage,
    TeamMember,
)
from qsampling.inspections.states import (
    TRANSITIONS,
    illegal,
    submit_action,
    transition,
)
from qsampling.inspections.validation import CHINA, check_result, invalid, local_date
from qsampling.models.directory import Enterprise, Inspector
from qsampling.models.draws import Plan, Task, TaskInspector
from qsampling.models.inspections import (
    Notification,
    Objection,
    RectificationOrder,
    Result,
    Retest,
    RetestItem,
    Sample,
    SampleItem,
)

OBJECTION_DAYS = 15  # DESIGN §3: objection within 15 days of notification
STAFF_READERS = frozenset({"admin", "supervisor", "analyst"})


class NotOnTeam(Forbidden):
    code = "NotOnTeam"


class ObjectionWindowClosed(Conflict):
    code = "ObjectionWindowClosed"


class ResultSuperseded(Conflict):
    code = "ResultSuperseded"


@dataclass(frozen=True)
class WriteOutcome:
    status: int
    body: dict[str, Any]
    replayed: bool = False


def _task_not_found(task_id: int) -> NotFound:
    return NotFound(f"No task {task_id}. 任务不存在。", code="TaskNotFound")


def _result_not_found(result_id: int) -> NotFound:
    return NotFound(f"No result {result_id}. 检查结果不存在。", code="ResultNotFound")


def _not_on_team(task_id: int) -> NotOnTeam:
    return NotOnTeam(
        f"You are not on the inspection team of task {task_id}. 您不是该任务的检查组成员。"
    )


# --- submission -------------------------------------------------------------------------------

_LOCK_TASK = text("""
    SELECT t.status, t.created_at,
           EXISTS (SELECT 1 FROM task_inspectors ti
                   WHERE ti.task_id = t.id AND ti.inspector_id = :inspector) AS on_team
    FROM tasks t WHERE t.id = :task_id
    FOR UPDATE OF t
""")

# The submission's first statement: lock the task, check the team, reserve the new result's
# id (so the response, stored with the idempotency key, is complete before the write), look
# up the key, and resolve the product categories and evidence digests it references.
_SUBMIT_LOCK = """
    SELECT t.status, t.created_at,
           EXISTS (SELECT 1 FROM task_inspectors ti
                   WHERE ti.task_id = t.id AND ti.inspector_id = $2) AS on_team,
           nextval('results_id_seq') AS new_id,
           k.request_sha256, k.response_status, k.response_body::text AS response_body,
           ARRAY(SELECT code::text FROM categories WHERE code = ANY($5::text[])) AS cats,
           ARRAY(SELECT sha256::text FROM evidence_files WHERE sha256 = ANY($6::text[])) AS evs
    FROM tasks t
    LEFT JOIN idempotency_keys k ON k.actor = $3 AND k.key = $4
    WHERE t.id = $1
    FOR UPDATE OF t
"""

_KEY_CTE = """
    k AS (
        INSERT INTO idempotency_keys (actor, key, request_sha256, response_status,
                                      response_body)
        VALUES ($11, $31, $32, 201, CAST($33::text AS jsonb))
        ON CONFLICT DO NOTHING
        RETURNING 1
    ),"""

# One statement writes the result, its samples and items, the audit entry (the same row
# ``audit.service.record`` writes) and the task's new state — and, with a key, the stored
# response; without the key row (a concurrent request took it) nothing is written.
_SUBMIT_INSERT = """
    WITH {key_cte}
    r AS (
        INSERT INTO results (id, task_id, version, live, supersedes_id, correction_reason,
                             inspected_at, conclusion, category_codes, notes, evidence_sha256,
                             submitted_by, submitted_at, source)
        SELECT $1, $2, $3, true, $4, $5, $6, $7, $8::varchar[], $9, $10::varchar[],
               $11, $12, 'api'
        {gate}
        RETURNING id
    ),
    s AS (
        INSERT INTO samples (result_id, sample_no, product_name, brand, model_spec, batch_no,
                             production_date, quantity, quantity_unit, standard, category_code)
        SELECT r.id, u.*
        FROM r, unnest($13::smallint[], $14::varchar[], $15::varchar[], $16::varchar[],
                       $17::varchar[], $18::date[], $19::integer[], $20::varchar[],
                       $21::varchar[], $22::varchar[])
                AS u(no, product, brand, model, batch, pdate, qty, qunit, std, cat)
        RETURNING id, sample_no
    ),
    i AS (
        INSERT INTO test_items (result_id, sample_id, item_no, name, requirement,
                                measured_value, unit, verdict)
        SELECT r.id, s.id, u.item_no, u.name, u.req, u.val, u.unit, u.verdict
        FROM r, unnest($23::smallint[], $24::smallint[], $25::varchar[], $26::text[],
                       $27::varchar[], $28::varchar[], $29::varchar[])
                AS u(sample_no, item_no, name, req, val, unit, verdict)
        JOIN s ON s.sample_no = u.sample_no
        RETURNING 1
    ),
    a AS (
        INSERT INTO audit_log (actor, role, action, entity_type, entity_id, request_id,
                               payload_sha256)
        SELECT $11, $34, $35, 'result', r.id::text, $36, $37 FROM r
    )
    UPDATE tasks SET status = $30, updated_at = $12
    WHERE id = $2 AND EXISTS (SELECT 1 FROM r)
    RETURNING (SELECT id FROM r)
"""
_INSERT_WITH_KEY = _SUBMIT_INSERT.format(key_cte=_KEY_CTE, gate="WHERE EXISTS (SELECT 1 FROM k)")
# without a key $31–$33 do not occur: renumber the audit parameters after them
_INSERT_NO_KEY = (
    _SUBMIT_INSERT.format(key_cte="", gate="")
    .replace("$34", "$31")
    .replace("$35", "$32")
    .replace("$36", "$33")
    .replace("$37", "$34")
)


def result_params(body: ResultIn) -> dict[str, Any]:
    """Column arrays of a result's samples and items (positions are 1-based)."""
    s_no, s_product, s_brand, s_model, s_batch = [], [], [], [], []
    s_pdate, s_qty, s_qunit, s_std, s_cat = [], [], [], [], []
    i_sample, i_no, i_name, i_req, i_val, i_unit, i_verdict = [], [], [], [], [], [], []
    for n, s in enumerate(body.samples, start=1):
        s_no.append(n)
        s_product.append(s.product_name)
        s_brand.append(s.brand)
        s_model.append(s.model_spec)
        s_batch.append(s.batch_no)
        s_pdate.append(s.production_date)
        s_qty.append(s.quantity)
        s_qunit.append(s.quantity_unit)
        s_std.append(s.standard)
        s_cat.append(s.category_code)
        for m, it in enumerate(s.items, start=1):
            i_sample.append(n)
            i_no.append(m)
            i_name.append(it.name)
            i_req.append(it.requirement)
            i_val.append(it.measured_value)
            i_unit.append(it.unit)
            i_verdict.append(it.verdict)
    return {
        "inspected_at": body.inspected_at,
        "conclusion": body.conclusion,
        "codes": list(body.category_codes),
        "notes": body.notes,
        "evidence": list(body.evidence),
        "s_no": s_no,
        "s_product": s_product,
        "s_brand": s_brand,
        "s_model": s_model,
        "s_batch": s_batch,
        "s_pdate": s_pdate,
        "s_qty": s_qty,
        "s_qunit": s_qunit,
        "s_std": s_std,
        "s_cat": s_cat,
        "i_sample": i_sample,
        "i_no": i_no,
        "i_name": i_name,
        "i_req": i_req,
        "i_val": i_val,
        "i_unit": i_unit,
        "i_verdict": i_verdict,
    }


def reference_errors(
    body: ResultIn, known_cats: set[str], known_ev: set[str], prefix: tuple[Any, ...]
) -> list[dict[str, Any]]:
    """Unknown product categories and evidence digests, as field errors."""
    errors: list[dict[str, Any]] = []
    for i, s in enumerate(body.samples):
        if s.category_code and s.category_code not in known_cats:
            errors.append(
                {
                    "loc": [*prefix, "samples", i, "category_code"],
                    "msg": f"unknown product category {s.category_code!r}",
                    "type": "unknown_category",
                }
            )
    for i, digest in enumerate(body.evidence):
        if digest not in known_ev:
            errors.append(
                {
                    "loc": [*prefix, "evidence", i],
                    "msg": "no evidence file with this SHA-256; upload it first via "
                    "POST /api/v1/evidence",
                    "type": "unknown_evidence",
                }
            )
    return errors


def _numbered(sql: str, names: Sequence[str]) -> str:
    """``:name`` placeholders → asyncpg's ``$n`` (longest names first, so none is a prefix)."""
    for name in sorted(names, key=len, reverse=True):
        sql = sql.replace(f":{name}", f"${names.index(name) + 1}")
    return sql


# The common case in one statement and one round trip: a first submission (no correction, no
# closure) whose body already passed the checks that need no database. Every check that does
# need it gates the write: the task is open and was drawn on or before the inspection day, the
# caller is on its team, the key is new, every category and evidence digest exists. When any
# gate fails nothing is written and the two-statement path below runs and names the problem.
# A single statement is atomic by itself, so it needs no BEGIN/COMMIT round trips of its own.
_FAST_NAMES = (
    "task_id", "inspector", "actor", "key", "req", "receipt", "drawn_before", "cats", "evs",
    "inspected_at", "conclusion", "codes", "notes", "evidence", "now",
    "s_no", "s_product", "s_brand", "s_model", "s_batch", "s_pdate", "s_qty", "s_qunit",
    "s_std", "s_cat", "i_sample", "i_no", "i_name", "i_req", "i_val", "i_unit", "i_verdict",
    "role", "request_id", "audit_sha",
)  # fmt: skip
_FAST_SUBMIT = _numbered(
    """
    WITH t AS (
        SELECT t.id FROM tasks t
        WHERE t.id = :task_id AND t.status IN ('assigned', 'in_progress')
          AND t.created_at < :drawn_before
          AND EXISTS (SELECT 1 FROM task_inspectors ti
                      WHERE ti.task_id = t.id AND ti.inspector_id = :inspector)
          AND NOT EXISTS (SELECT 1 FROM idempotency_keys ik
                          WHERE ik.actor = :actor AND ik.key = :key)
          AND (SELECT count(*) FROM categories c WHERE c.code = ANY(:cats::text[]))
              = cardinality(:cats::text[])
          AND (SELECT count(*) FROM evidence_files e WHERE e.sha256 = ANY(:evs::text[]))
              = cardinality(:evs::text[])
        FOR UPDATE OF t
    ),
    n AS (SELECT nextval('results_id_seq') AS id FROM t),
    k AS (
        INSERT INTO idempotency_keys (actor, key, request_sha256, response_status,
                                      response_body)
        SELECT :actor, :key, :req, 201,
               jsonb_set(CAST(:receipt::text AS jsonb), '{result_id}', to_jsonb(n.id))
        FROM n WHERE :key <> ''
        ON CONFLICT DO NOTHING
        RETURNING 1
    ),
    r AS (
        INSERT INTO results (id, task_id, version, live, inspected_at, conclusion,
                             category_codes, notes, evidence_sha256, submitted_by,
                             submitted_at, source)
        SELECT n.id, :task_id, 1, true, :inspected_at, :conclusion, :codes::varchar[], :notes,
               :evidence::varchar[], :actor, :now, 'api'
        FROM n WHERE :key = '' OR EXISTS (SELECT 1 FROM k)
        RETURNING id
    ),
    s AS (
        INSERT INTO samples (result_id, sample_no, product_name, brand, model_spec, batch_no,
                             production_date, quantity, quantity_unit, standard, category_code)
        SELECT r.id, u.*
        FROM r, unnest(:s_no::smallint[], :s_product::varchar[], :s_brand::varchar[],
                       :s_model::varchar[], :s_batch::varchar[], :s_pdate::date[],
                       :s_qty::integer[], :s_qunit::varchar[], :s_std::varchar[],
                       :s_cat::varchar[])
                AS u(no, product, brand, model, batch, pdate, qty, qunit, std, cat)
        RETURNING id, sample_no
    ),
    i AS (
        INSERT INTO test_items (result_id, sample_id, item_no, name, requirement,
                                measured_value, unit, verdict)
        SELECT r.id, s.id, u.item_no, u.name, u.req, u.val, u.unit, u.verdict
        FROM r, unnest(:i_sample::smallint[], :i_no::smallint[], :i_name::varchar[],
                       :i_req::text[], :i_val::varchar[], :i_unit::varchar[],
                       :i_verdict::varchar[])
                AS u(sample_no, item_no, name, req, val, unit, verdict)
        JOIN s ON s.sample_no = u.sample_no
        RETURNING 1
    ),
    a AS (
        INSERT INTO audit_log (actor, role, action, entity_type, entity_id, request_id,
                               payload_sha256)
        SELECT :actor, :role, 'result.submit', 'result', r.id::text, :request_id, :audit_sha
        FROM r
    )
    UPDATE tasks SET status = 'submitted', updated_at = :now
    WHERE id = :task_id AND EXISTS (SELECT 1 FROM r)
    RETURNING (SELECT id FROM r)
    """,
    _FAST_NAMES,
)


async def _fast_submit(
    session: AsyncSession,
    *,
    actor: Actor,
    task_id: int,
    body: ResultIn,
    now: datetime,
    idempotency_key: str | None,
    req_hash: str,
) -> WriteOutcome | None:
    """The one-statement submission, or None when a gate failed (nothing written)."""
    day = local_date(body.inspected_at)
    drawn_before = datetime.combine(day + timedelta(days=1), time(0), tzinfo=CHINA)
    receipt = ResultReceipt(
        result_id=0,
        task_id=task_id,
        version=1,
        task_status="submitted",
        submitted_at=now,
        final=False,
    )
    receipt_json = receipt.model_dump(mode="json")
    p = result_params(body)
    audit_sha = audit.payload_digest(
        {"task_id": task_id, "version": 1, "request_sha256": req_hash, "reason": None}
    )
    values: dict[str, Any] = {
        **p,
        "task_id": task_id,
        "inspector": actor.inspector_id or "",
        "actor": actor.username,
        "key": idempotency_key or "",
        "req": req_hash,
        "receipt": json.dumps(receipt_json),
        "drawn_before": drawn_before,
        "cats": sorted({s.category_code for s in body.samples if s.category_code}),
        "evs": sorted(set(body.evidence)),
        "now": now,
        "role": actor.role,
        "request_id": current_request_id(),
        "audit_sha": audit_sha,
    }
    db = await connection(session)
    new_id = await db.fetchval(_FAST_SUBMIT, *(values[n] for n in _FAST_NAMES))
    if new_id is None:
        return None
    return WriteOutcome(201, {**receipt_json, "result_id": int(new_id)})


def _stored(row: Any) -> Stored | None:
    if row["request_sha256"] is None:
        return None
    return Stored(
        row["request_sha256"], int(row["response_status"]), json.loads(row["response_body"])
    )


async def submit_result(
    session: AsyncSession,
    *,
    actor: Actor,
    task_id: int,
    body: ResultIn,
    now: datetime,
    idempotency_key: str | None = None,
    correction_reason: str | None = None,
) -> WriteOutcome:
    """Record a team's result (or, with ``correction_reason``, a corrected version of it)."""
    operation = "correct" if correction_reason is not None else "submit"
    req_hash = request_hash(operation, task_id, body)
    if (
        correction_reason is None
        and submit_action(body.category_codes) == "submit"
        and not check_result(body, now=now)
    ):
        fast = await _fast_submit(
            session,
            actor=actor,
            task_id=task_id,
            body=body,
            now=now,
            idempotency_key=idempotency_key,
            req_hash=req_hash,
        )
        if fast is not None:
            return fast
    db = await driver(session)
    cats = sorted({s.category_code for s in body.samples if s.category_code})
    row = await db.fetchrow(
        _SUBMIT_LOCK,
        task_id,
        actor.inspector_id or "",
        actor.username,
        idempotency_key or "",
        cats,
        list(body.evidence),
    )
    if row is None:
        raise _task_not_found(task_id)
    if idempotency_key:
        stored = _stored(row)
        if stored is not None:
            replay_or_raise(stored, key=idempotency_key, request_sha256=req_hash)
            return WriteOutcome(stored.status, stored.body, replayed=True)
    if not row["on_team"]:
        raise _not_on_team(task_id)
    status = row["status"]
    action = "correct" if correction_reason is not None else submit_action(body.category_codes)
    if status not in TRANSITIONS[action]:
        if idempotency_key:
            # a duplicate that waited for the task lock finds the first one committed
            stored = await lookup(session, actor=actor.username, key=idempotency_key)
            if stored is not None:
                replay_or_raise(stored, key=idempotency_key, request_sha256=req_hash)
                return WriteOutcome(stored.status, stored.body, replayed=True)
        raise illegal(status, action)

    errors = check_result(body, now=now, drawn_on=local_date(row["created_at"]))
    errors += reference_errors(body, set(row["cats"]), set(row["evs"]), ("body",))
    if errors:
        raise invalid(errors)

    closes = submit_action(body.category_codes) == "close"
    new_status = "closed" if closes else transition(status, action)
    version, supersedes = 1, None
    if correction_reason is not None:
        old = await db.fetchrow(
            "UPDATE results SET live = false WHERE task_id = $1 AND live RETURNING id, version",
            task_id,
        )
        supersedes, version = int(old["id"]), int(old["version"]) + 1

    new_id = int(row["new_id"])
    receipt = ResultReceipt(
        result_id=new_id,
        task_id=task_id,
        version=version,
        task_status=new_status,
        submitted_at=now,
        final=closes,
    )
    receipt_json = receipt.model_dump(mode="json")
    p = result_params(body)
    audit_payload = {
        "task_id": task_id,
        "version": version,
        "request_sha256": req_hash,
        "reason": correction_reason,
    }
    args: list[Any] = [
        new_id, task_id, version, supersedes, correction_reason, p["inspected_at"],
        p["conclusion"], p["codes"], p["notes"], p["evidence"], actor.username, now,
        p["s_no"], p["s_product"], p["s_brand"], p["s_model"], p["s_batch"], p["s_pdate"],
        p["s_qty"], p["s_qunit"], p["s_std"], p["s_cat"],
        p["i_sample"], p["i_no"], p["i_name"], p["i_req"], p["i_val"], p["i_unit"],
        p["i_verdict"], new_status,
    ]  # fmt: skip
    audit_args = [
        actor.role,
        "result.correct" if correction_reason is not None else "result.submit",
        current_request_id(),
        audit.payload_digest(audit_payload),
    ]
    if idempotency_key:
        key_args = [idempotency_key, req_hash, json.dumps(receipt_json)]
        result_id = await db.fetchval(_INSERT_WITH_KEY, *args, *key_args, *audit_args)
    else:
        result_id = await db.fetchval(_INSERT_NO_KEY, *args, *audit_args)
    if result_id is None:
        # the key was taken by a concurrent request that committed first
        stored = await lookup(session, actor=actor.username, key=idempotency_key or "")
        await session.rollback()
        if stored is not None and stored.request_sha256 == req_hash:
            return WriteOutcome(stored.status, stored.body, replayed=True)
        raise reused(idempotency_key or "")
    if closes:
        await fin.finalise(session, now=now, task_ids=[task_id], wait=True)
    return WriteOutcome(201, receipt_json)


async def start_task(
    session: AsyncSession, *, actor: Actor, task_id: int, now: datetime
) -> TaskOut:
    row = (
        await session.execute(
            _LOCK_TASK, {"task_id": task_id, "inspector": actor.inspector_id or ""}
        )
    ).first()
    if row is None:
        raise _task_not_found(task_id)
    if not row.on_team:
        raise _not_on_team(task_id)
    new = transition(row.status, "start")
    await session.execute(
        text("UPDATE tasks SET status = :s, updated_at = :now WHERE id = :t"),
        {"s": new, "t": task_id, "now": now},
    )
    await audit.record(
        session,
        actor=actor,
        action="task.start",
        entity_type="task",
        entity_id=task_id,
        payload={"from": row.status, "to": new},
    )
    page = await _task_rows(session, ids=[task_id])
    return page[0]


# --- reading tasks ----------------------------------------------------------------------------


def _live_result_col() -> Any:
    return (
        select(Result.id)
        .where(Result.task_id == Task.id, Result.live.is_(True))
        .scalar_subquery()
        .label("live_result_id")
    )


def _task_query() -> Any:
    return (
        select(
            Task.id,
            Task.plan_id,
            Plan.plan_type,
            Task.check_item_code,
            Task.uscc,
            Enterprise.name.label("enterprise_name"),
            Enterprise.region_code,
            Task.stratum,
            Task.inclusion_probability,
            Task.status,
            Task.due_date,
            Task.created_at,
            Task.updated_at,
            _live_result_col(),
        )
        .join(Plan, Plan.id == Task.plan_id)
        .join(Enterprise, Enterprise.uscc == Task.uscc)
    )


async def _teams(session: AsyncSession, ids: Sequence[int]) -> dict[int, list[TeamMember]]:
    if not ids:
        return {}
    rows = await session.execute(
        select(
            TaskInspector.task_id,
            TaskInspector.inspector_id,
            Inspector.name,
            TaskInspector.position,
        )
        .join(Inspector, Inspector.inspector_id == TaskInspector.inspector_id)
        .where(TaskInspector.task_id.in_(list(ids)))
        .order_by(TaskInspector.task_id, TaskInspector.position)
    )
    out: dict[int, list[TeamMember]] = {}
    for tid, iid, name, pos in rows:
        out.setdefault(tid, []).append(TeamMember(inspector_id=iid, name=name, position=pos))
    return out


def _task_out(row: Any, team: list[TeamMember]) -> TaskOut:
    return TaskOut(
        id=row.id,
        plan_id=row.plan_id,
        plan_type=row.plan_type,
        check_item_code=row.check_item_code,
        uscc=row.uscc,
        enterprise_name=row.enterprise_name,
        region_code=row.region_code,
        stratum=row.stratum,
        inclusion_probability=row.inclusion_probability,
        status=row.status,
        due_date=row.due_date,
        created_at=row.created_at,
        updated_at=row.updated_at,
        team=team,
        live_result_id=row.live_result_id,
    )


async def _task_rows(session: AsyncSession, *, ids: Sequence[int]) -> list[TaskOut]:
    rows = (
        await session.execute(_task_query().where(Task.id.in_(list(ids))).order_by(Task.id))
    ).all()
    teams = await _teams(session, [r.id for r in rows])
    return [_task_out(r, teams.get(r.id, [])) for r in rows]


def _visible_to(actor: Actor) -> Any:
    """The WHERE clause limiting tasks to what ``actor`` may read."""
    if actor.role in STAFF_READERS:
        return None
    return exists().where(
        TaskInspector.task_id == Task.id, TaskInspector.inspector_id == (actor.inspector_id or "")
    )


async def list_tasks(
    session: AsyncSession,
    *,
    actor: Actor,
    now: datetime,
    plan_id: int | None = None,
    status: str | None = None,
    uscc: str | None = None,
    inspector_id: str | None = None,
    due_before: date | None = None,
    limit: int = 50,
    offset: int = 0,
) -> TaskPage:
    q = _task_query()
    conds: list[Any] = []
    vis = _visible_to(actor)
    if vis is not None:
        conds.append(vis)
    if plan_id is not None:
        conds.append(Task.plan_id == plan_id)
    if status is not None:
        conds.append(Task.status == status)
    if uscc is not None:
        conds.append(Task.uscc == uscc)
    if inspector_id is not None:
        conds.append(
            exists().where(
                TaskInspector.task_id == Task.id, TaskInspector.inspector_id == inspector_id
            )
        )
    if due_before is not None:
        conds.append(Task.due_date < due_before)
    for c in conds:
        q = q.where(c)
    total = await session.scalar(
        select(func.count()).select_from(Task).where(*conds)
        if conds
        else select(func.count()).select_from(Task)
    )
    page_q = q.order_by(Task.id).limit(limit).offset(offset)
    rows = (await session.execute(page_q)).all()
    # checked on read: results whose window has closed are finalised before being shown
    if await fin.finalise_due_among(session, now=now, task_ids=[r.id for r in rows]):
        rows = (await session.execute(page_q)).all()
    teams = await _teams(session, [r.id for r in rows])
    return TaskPage(
        items=[_task_out(r, teams.get(r.id, [])) for r in rows],
        total=int(total or 0),
        limit=limit,
        offset=offset,
    )


async def _check_visible(session: AsyncSession, *, actor: Actor, task_id: int) -> None:
    q = select(Task.id).where(Task.id == task_id)
    vis = _visible_to(actor)
    if vis is not None:
        q = q.where(vis)
    if await session.scalar(q) is None:
        raise _task_not_found(task_id)


async def get_task(
    session: AsyncSession, *, actor: Actor, task_id: int, now: datetime
) -> TaskDetail:
    await _check_visible(session, actor=actor, task_id=task_id)
    await fin.finalise_due_among(session, now=now, task_ids=[task_id])
    task = (await _task_rows(session, ids=[task_id]))[0]
    result = None
    if task.live_result_id is not None:
        result = await _result_out(session, result_id=task.live_result_id)
    return TaskDetail(**task.model_dump(), result=result)


# --- reading results --------------------------------------------------------------------------


async def _result_task(session: AsyncSession, result_id: int) -> tuple[int, bool]:
    row = (
        await session.execute(select(Result.task_id, Result.live).where(Result.id == result_id))
    ).first()
    if row is None:
        raise _result_not_found(result_id)
    return int(row[0]), bool(row[1])


async def get_result(
    session: AsyncSession, *, actor: Actor, result_id: int, now: datetime
) -> ResultOut:
    task_id, _ = await _result_task(session, result_id)
    try:
        await _check_visible(session, actor=actor, task_id=task_id)
    except NotFound:
        raise _result_not_found(result_id) from None
    await fin.finalise_due_among(session, now=now, task_ids=[task_id])
    return await _result_out(session, result_id=result_id)


async def _result_out(session: AsyncSession, *, result_id: int) -> ResultOut:
    r = await session.scalar(select(Result).where(Result.id == result_id))
    if r is None:
        raise _result_not_found(result_id)
    task_status = await session.scalar(select(Task.status).where(Task.id == r.task_id))
    samples = (
        await session.scalars(
            select(Sample).where(Sample.result_id == result_id).order_by(Sample.sample_no)
        )
    ).all()
    items = (
        await session.scalars(
            select(SampleItem)
            .where(SampleItem.result_id == result_id)
            .order_by(SampleItem.sample_id, SampleItem.item_no)
        )
    ).all()
    notification = await session.scalar(
        select(Notification).where(Notification.result_id == result_id)
    )
    objection = await session.scalar(select(Objection).where(Objection.result_id == result_id))
    retest = await session.scalar(select(Retest).where(Retest.result_id == result_id))
    retest_verdicts: dict[int, str] = {}
    if retest is not None:
        for ri in (
            await session.scalars(select(RetestItem).where(RetestItem.retest_id == retest.id))
        ).all():
            retest_verdicts[ri.test_item_id] = ri.verdict
    order = await session.scalar(
        select(RectificationOrder).where(RectificationOrder.result_id == result_id)
    )
    versions = (
        await session.scalars(
            select(Result).where(Result.task_id == r.task_id).order_by(Result.version)
        )
    ).all()
    by_sample: dict[int, list[ItemOut]] = {}
    for it in items:
        by_sample.setdefault(it.sample_id, []).append(
            ItemOut(
                id=it.id,
                item_no=it.item_no,
                name=it.name,
                requirement=it.requirement,
                measured_value=it.measured_value,
                unit=it.unit,
                verdict=it.verdict,  # type: ignore[arg-type]
                retest_verdict=retest_verdicts.get(it.id),  # type: ignore[arg-type]
            )
        )
    return ResultOut(
        id=r.id,
        task_id=r.task_id,
        task_status=task_status or "",
        version=r.version,
        live=r.live,
        supersedes_id=r.supersedes_id,
        correction_reason=r.correction_reason,
        inspected_at=r.inspected_at,
        conclusion=r.conclusion,  # type: ignore[arg-type]
        final_conclusion=r.final_conclusion,  # type: ignore[arg-type]
        category_codes=list(r.category_codes),
        notes=r.notes,
        evidence=list(r.evidence_sha256),
        submitted_by=r.submitted_by,
        submitted_at=r.submitted_at,
        source=r.source,
        final_at=r.final_at,
        samples=[
            SampleOut(
                id=s.id,
                sample_no=s.sample_no,
                product_name=s.product_name,
                brand=s.brand,
                model_spec=s.model_spec,
                batch_no=s.batch_no,
                production_date=s.production_date,
                quantity=s.quantity,
                quantity_unit=s.quantity_unit,
                standard=s.standard,
                category_code=s.category_code,
                items=by_sample.get(s.id, []),
            )
            for s in samples
        ],
        notification=NotificationOut(
            notified_on=notification.notified_on,
            objection_deadline=notification.objection_deadline,
            method=notification.method,
            recorded_by=notification.recorded_by,
        )
        if notification
        else None,
        objection=ObjectionOut(
            received_on=objection.received_on,
            disputed_item_ids=list(objection.disputed_item_ids),
            reason=objection.reason,
            recorded_by=objection.recorded_by,
        )
        if objection
        else None,
        retest=RetestOut(
            retested_at=retest.retested_at,
            conclusion=retest.conclusion,  # type: ignore[arg-type]
            notes=retest.notes,
            evidence=list(retest.evidence_sha256),
            recorded_by=retest.recorded_by,
        )
        if retest
        else None,
        rectification=RectificationOut(
            id=order.id,
            issued_on=order.issued_on,
            due_date=order.due_date,
            reinspection_due_date=order.reinspection_due_date,
            follow_up_plan_id=order.follow_up_plan_id,
            status=order.status,
        )
        if order
        else None,
        versions=[
            ResultVersion(
                id=v.id,
                version=v.version,
                live=v.live,
                submitted_by=v.submitted_by,
                submitted_at=v.submitted_at,
                correction_reason=v.correction_reason,
            )
            for v in versions
        ],
    )


# --- notification, objection, retest ---------------------------------------------------------


_LOCK_RESULT = text("""
    SELECT r.task_id, r.live, r.inspected_at, t.status
    FROM results r JOIN tasks t ON t.id = r.task_id
    WHERE r.id = :rid
    FOR UPDATE OF t
""")


async def _lock_live_result(session: AsyncSession, result_id: int) -> Any:
    row = (await session.execute(_LOCK_RESULT, {"rid": result_id})).first()
    if row is None:
        raise _result_not_found(result_id)
    if not row.live:
        raise ResultSuperseded(
            f"Result {result_id} was superseded by a corrected version; act on the live "
            "version. 该结果已被更正版本取代。",
            extra={"task_id": row.task_id},
        )
    return row


def _field_error(loc: list[Any], msg: str, typ: str) -> InvalidInput:
    return invalid([{"loc": loc, "msg": msg, "type": typ}])


async def record_notification(
    session: AsyncSession, *, actor: Actor, result_id: int, body: NotificationIn, now: datetime
) -> ResultOut:
    row = await _lock_live_result(session, result_id)
    new = transition(row.status, "notify")
    today = local_date(now)
    inspected_on = local_date(row.inspected_at)
    if body.notified_on > today:
        raise _field_error(["body", "notified_on"], "the date is in the future", "future_date")
    if body.notified_on < inspected_on:
        raise _field_error(
            ["body", "notified_on"],
            f"notification ({body.notified_on}) before the inspection ({inspected_on})",
            "before_inspection",
        )
    deadline = body.notified_on + timedelta(days=OBJECTION_DAYS)
    session.add(
        Notification(
            result_id=result_id,
            notified_on=body.notified_on,
            objection_deadline=deadline,
            method=body.method,
            recorded_by=actor.username,
        )
    )
    await session.execute(
        text("UPDATE tasks SET status = :s, updated_at = :now WHERE id = :t"),
        {"s": new, "now": now, "t": row.task_id},
    )
    await audit.record(
        session,
        actor=actor,
        action="result.notify",
        entity_type="result",
        entity_id=result_id,
        payload={"notified_on": body.notified_on.isoformat(), "deadline": deadline.isoformat()},
    )
    await session.flush()
    # a notification recorded after its window already closed makes the result final now
    await fin.finalise_due_among(session, now=now, task_ids=[row.task_id])
    return await _result_out(session, result_id=result_id)


async def record_objection(
    session: AsyncSession, *, actor: Actor, result_id: int, body: ObjectionIn, now: datetime
) -> ResultOut:
    row = await _lock_live_result(session, result_id)
    transition(row.status, "object")
    notification = await session.scalar(
        select(Notification).where(Notification.result_id == result_id)
    )
    assert notification is not None  # a notified task has one
    today = local_date(now)
    deadline = notification.objection_deadline
    if body.received_on > today:
        raise _field_error(["body", "received_on"], "the date is in the future", "future_date")
    if body.received_on < notification.notified_on:
        raise _field_error(
            ["body", "received_on"],
            f"the objection ({body.received_on}) predates the notification "
            f"({notification.notified_on})",
            "before_notification",
        )
    if body.received_on > deadline:
        raise ObjectionWindowClosed(
            f"The objection window closed on {deadline} ({OBJECTION_DAYS} days after the "
            f"notification on {notification.notified_on}). 异议期已过。",
            extra={"objection_deadline": deadline.isoformat()},
        )
    items = {
        r[0]: r[1]
        for r in await session.execute(
            select(SampleItem.id, SampleItem.verdict).where(SampleItem.result_id == result_id)
        )
    }
    errors = []
    seen: set[int] = set()
    for i, item_id in enumerate(body.disputed_item_ids):
        loc = ["body", "disputed_item_ids", i]
        if item_id in seen:
            errors.append({"loc": loc, "msg": "listed twice", "type": "duplicate"})
        elif item_id not in items:
            errors.append(
                {
                    "loc": loc,
                    "msg": f"test item {item_id} is not part of this result",
                    "type": "unknown_item",
                }
            )
        elif items[item_id] != "fail":
            errors.append(
                {
                    "loc": loc,
                    "msg": f"test item {item_id} passed; only failed items can be disputed",
                    "type": "not_failed",
                }
            )
        seen.add(item_id)
    if errors:
        raise invalid(errors)
    session.add(
        Objection(
            result_id=result_id,
            received_on=body.received_on,
            disputed_item_ids=list(body.disputed_item_ids),
            reason=body.reason,
            recorded_by=actor.username,
        )
    )
    await session.execute(
        text("UPDATE tasks SET status = 'objected', updated_at = :now WHERE id = :t"),
        {"now": now, "t": row.task_id},
    )
    await audit.record(
        session,
        actor=actor,
        action="result.objection",
        entity_type="result",
        entity_id=result_id,
        payload={"received_on": body.received_on.isoformat(), "items": body.disputed_item_ids},
    )
    await session.flush()
    return await _result_out(session, result_id=result_id)


async def record_retest(
    session: AsyncSession, *, actor: Actor, result_id: int, body: RetestIn, now: datetime
) -> ResultOut:
    row = await _lock_live_result(session, result_id)
    transition(row.status, "retest")
    objection = await session.scalar(select(Objection).where(Objection.result_id == result_id))
    assert objection is not None  # an objected task has one
    disputed = set(objection.disputed_item_ids)
    errors: list[dict[str, Any]] = []
    seen: set[int] = set()
    for i, it in enumerate(body.items):
        loc = ["body", "items", i, "test_item_id"]
        if it.test_item_id in seen:
            errors.append({"loc": loc, "msg": "listed twice", "type": "duplicate"})
        elif it.test_item_id not in disputed:
            errors.append(
                {
                    "loc": loc,
                    "msg": f"test item {it.test_item_id} was not disputed; a retest "
                    "covers only the disputed items",
                    "type": "not_disputed",
                }
            )
        seen.add(it.test_item_id)
    missing = sorted(disputed - seen)
    if missing:
        errors.append(
            {
                "loc": ["body", "items"],
                "msg": f"the disputed items {missing} have no retest verdict",
                "type": "missing_items",
            }
        )
    if body.retested_at > now + timedelta(minutes=5):
        errors.append(
            {
                "loc": ["body", "retested_at"],
                "msg": "the retest time is in the future",
                "type": "future_date",
            }
        )
    elif local_date(body.retested_at) < objection.received_on:
        errors.append(
            {
                "loc": ["body", "retested_at"],
                "msg": "the retest predates the objection",
                "type": "before_objection",
            }
        )
    if body.evidence:
        ok = await evidence.known(session, body.evidence)
        for i, d in enumerate(body.evidence):
            if d not in ok:
                errors.append(
                    {
                        "loc": ["body", "evidence", i],
                        "msg": "no evidence file with this SHA-256",
                        "type": "unknown_evidence",
                    }
                )
    if errors:
        raise invalid(errors)
    conclusion = "fail" if any(it.verdict == "fail" for it in body.items) else "pass"
    retest = Retest(
        result_id=result_id,
        objection_id=objection.id,
        retested_at=body.retested_at,
        conclusion=conclusion,
        notes=body.notes,
        evidence_sha256=list(body.evidence),
        recorded_by=actor.username,
    )
    session.add(retest)
    await session.flush()
    session.add_all(
        RetestItem(
            retest_id=retest.id,
            test_item_id=it.test_item_id,
            measured_value=it.measured_value,
            unit=it.unit,
            verdict=it.verdict,
        )
        for it in body.items
    )
    await session.execute(
        text("UPDATE tasks SET status = 'retested', updated_at = :now WHERE id = :t"),
        {"now": now, "t": row.task_id},
    )
    await audit.record(
        session,
        actor=actor,
        action="result.retest",
        entity_type="result",
        entity_id=result_id,
        payload={"conclusion": conclusion, "items": sorted(seen)},
    )
    await session.flush()
    # the retest's conclusion is final: finalise now rather than at the next job run
    await fin.finalise(session, now=now, task_ids=[row.task_id], wait=True)
    return await _result_out(session, result_id=result_id)
