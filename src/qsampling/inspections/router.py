"""Inspection tasks, results, evidence and the lab batch path (`/api/v1`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Header, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from qsampling.context import Actor
from qsampling.deps import Session, SettingsDep, require
from qsampling.errors import QSamplingError
from qsampling.inspections import batch as batch_service
from qsampling.inspections import evidence as evidence_service
from qsampling.inspections import service
from qsampling.inspections.schemas import (
    BatchReport,
    EvidenceOut,
    NotificationIn,
    ObjectionIn,
    ResultCorrectionIn,
    ResultIn,
    ResultOut,
    ResultReceipt,
    RetestIn,
    TaskDetail,
    TaskOut,
    TaskPage,
)
from qsampling.responses import errors_for

log = logging.getLogger("qsampling")


def _database_away(exc: BaseException) -> bool:
    """The app's test for "database unavailable", applied along the exception chain: a
    refused connection arrives wrapped (``DBAPIError`` → adapter ``Error`` → asyncpg
    ``CannotConnectNowError``) and only the innermost names the cause."""
    from qsampling.app import _is_db_unavailable

    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen or len(seen) > 20:
            continue
        seen.add(id(e))
        if _is_db_unavailable(e):
            return True
        orig = getattr(e, "orig", None)
        todo += [e.__cause__, e.__context__, orig if isinstance(orig, BaseException) else None]
    return False


class DatabaseAwareRoute(APIRoute):
    """Inspectors retry on 503, so a database outage must never surface as a 500 here —
    including errors raised while the dependencies (session, sign-in) talk to the database."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def _handler(request: Request) -> Response:
            try:
                return await handler(request)
            except QSamplingError:
                raise
            except Exception as exc:
                if not _database_away(exc):
                    raise
                log.warning("database unavailable: %s", exc)
                return JSONResponse(
                    {
                        "error": "DatabaseUnavailable",
                        "detail": "The database is not reachable right now; retry shortly. "
                        "数据库暂不可用，请稍后重试。",
                    },
                    status_code=503,
                    headers={"Retry-After": "2"},
                )

        return _handler


router = APIRouter(
    prefix="/api/v1", tags=["inspections 检查任务与结果"], route_class=DatabaseAwareRoute
)

Reader = Annotated[Actor, Depends(require("admin", "supervisor", "inspector", "analyst"))]
InspectorOnly = Annotated[Actor, Depends(require("inspector"))]
Supervisor = Annotated[Actor, Depends(require("admin", "supervisor"))]
Uploader = Annotated[Actor, Depends(require("admin", "supervisor", "inspector"))]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="Makes retries safe: the same key and body replay the first response "
        "(header `Idempotent-Replayed: true`); the same key with another body → 409. "
        "幂等键：重试不会重复提交。",
    ),
]
TaskState = Literal[
    "assigned",
    "in_progress",
    "submitted",
    "notified",
    "objected",
    "retested",
    "final",
    "closed",
    "cancelled",
]
TaskId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Task id")]
ResultId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Result id (one version)")]


def _now() -> datetime:
    return datetime.now(UTC)


def _write_response(outcome: service.WriteOutcome) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return JSONResponse(outcome.body, status_code=outcome.status, headers=headers)


# --- tasks ------------------------------------------------------------------------------------


@router.get(
    "/tasks",
    response_model=TaskPage,
    responses=errors_for(401, 403, 422),
    summary="List inspection tasks / 检查任务列表",
)
async def list_tasks(
    session: Session,
    actor: Reader,
    plan_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    status: Annotated[TaskState | None, Query(description="One task state / 任务状态")] = None,
    uscc: Annotated[str | None, Query(min_length=18, max_length=18)] = None,
    inspector_id: Annotated[str | None, Query(max_length=32)] = None,
    due_before: Annotated[date | None, Query(description="Tasks due before this date")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> TaskPage:
    """Inspectors see only the tasks whose team they are on; supervisors, admins and analysts
    (read-only) see all, filtered by plan, state, enterprise, inspector or due date.
    检查人员只能看到本人所在检查组的任务。"""
    return await service.list_tasks(
        session,
        actor=actor,
        now=_now(),
        plan_id=plan_id,
        status=status,
        uscc=uscc,
        inspector_id=inspector_id,
        due_before=due_before,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/tasks/{task_id}",
    response_model=TaskDetail,
    responses=errors_for(401, 403, 404, 422),
    summary="One task with its live result / 任务详情",
)
async def get_task(task_id: TaskId, session: Session, actor: Reader) -> TaskDetail:
    """The task, its team and its live result. A result whose objection window has closed is
    shown (and stored) as final on read, even before the next `qsampling jobs run`."""
    return await service.get_task(session, actor=actor, task_id=task_id, now=_now())


@router.post(
    "/tasks/{task_id}/start",
    response_model=TaskOut,
    responses=errors_for(401, 403, 404, 409, 422),
    summary="Start the inspection (assigned → in_progress) / 开始检查",
)
async def start_task(task_id: TaskId, session: Session, actor: InspectorOnly) -> TaskOut:
    return await service.start_task(session, actor=actor, task_id=task_id, now=_now())


@router.post(
    "/tasks/{task_id}/result",
    status_code=201,
    response_model=ResultReceipt,
    responses=errors_for(401, 403, 404, 409, 422, 503),
    summary="Submit the inspection result (team members) / 提交检查结果",
)
async def submit_result(
    task_id: TaskId,
    body: ResultIn,
    session: Session,
    actor: InspectorOnly,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Only the task's team may submit (others get 403 `NotOnTeam`). From `assigned` or
    `in_progress`; codes 7, 9, 10, 11, 12 or F close the task and make the result final at
    once. Send an `Idempotency-Key` so that a retry after a lost response is answered with
    the first response instead of a duplicate. 仅检查组成员可提交；携带幂等键可安全重试。"""
    outcome = await service.submit_result(
        session,
        actor=actor,
        task_id=task_id,
        body=body,
        now=_now(),
        idempotency_key=idempotency_key,
    )
    return _write_response(outcome)


@router.put(
    "/tasks/{task_id}/result",
    status_code=201,
    response_model=ResultReceipt,
    responses=errors_for(401, 403, 404, 409, 422, 503),
    summary="Correct the result before notification (new version) / 更正检查结果",
)
async def correct_result(
    task_id: TaskId,
    body: ResultCorrectionIn,
    session: Session,
    actor: InspectorOnly,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Before the enterprise is notified, the team may correct the result: a new version with
    the reason; the old one is kept (see `versions`). After notification → 409."""
    plain = ResultIn.model_validate(body.model_dump(exclude={"correction_reason"}))
    outcome = await service.submit_result(
        session,
        actor=actor,
        task_id=task_id,
        body=plain,
        now=_now(),
        idempotency_key=idempotency_key,
        correction_reason=body.correction_reason,
    )
    return _write_response(outcome)


# --- results ----------------------------------------------------------------------------------


@router.get(
    "/results/{result_id}",
    response_model=ResultOut,
    responses=errors_for(401, 403, 404, 422),
    summary="One result version with samples, items, notification, objection, retest / 结果详情",
)
async def get_result(result_id: ResultId, session: Session, actor: Reader) -> ResultOut:
    return await service.get_result(session, actor=actor, result_id=result_id, now=_now())


@router.post(
    "/results/{result_id}/notification",
    response_model=ResultOut,
    responses=errors_for(401, 403, 404, 409, 422),
    summary="Record that the enterprise was notified / 记录结果告知",
)
async def notify(
    result_id: ResultId, body: NotificationIn, session: Session, actor: Supervisor
) -> ResultOut:
    """submitted → notified. The enterprise may object within 15 days of `notified_on`; when
    the window closes without objection the result becomes final. 告知后15日内可提出异议。"""
    return await service.record_notification(
        session, actor=actor, result_id=result_id, body=body, now=_now()
    )


@router.post(
    "/results/{result_id}/objection",
    response_model=ResultOut,
    responses=errors_for(401, 403, 404, 409, 422),
    summary="Record the enterprise's objection (within 15 days) / 记录异议",
)
async def object_to(
    result_id: ResultId, body: ObjectionIn, session: Session, actor: Supervisor
) -> ResultOut:
    """notified → objected, naming the disputed (failed) test items. Lodged after the 15th day
    → 409 `ObjectionWindowClosed`. 超过15日的异议不予受理。"""
    return await service.record_objection(
        session, actor=actor, result_id=result_id, body=body, now=_now()
    )


@router.post(
    "/results/{result_id}/retest",
    response_model=ResultOut,
    responses=errors_for(401, 403, 404, 409, 422),
    summary="Record the retest of the disputed items (final) / 记录复检结果",
)
async def retest(
    result_id: ResultId, body: RetestIn, session: Session, actor: Supervisor
) -> ResultOut:
    """objected → retested → final. The retest covers exactly the disputed items; its verdicts
    replace theirs and the result is final. 复检仅针对异议项目，复检结论为最终结论。"""
    return await service.record_retest(
        session, actor=actor, result_id=result_id, body=body, now=_now()
    )


_BATCH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "NDJSON: one result per line with `task_id` and `idempotency_key`. "
        "CSV: one line per test item, grouped by `idempotency_key`; columns "
        + ",".join(batch_service.CSV_COLUMNS),
        "content": {
            "application/x-ndjson": {
                "schema": {"type": "string", "description": "One JSON object per line"}
            },
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}


@router.post(
    "/results:batch",
    response_model=BatchReport,
    responses=errors_for(401, 403, 413, 415, 422, 503),
    summary="Lab batch: many results at once (NDJSON or CSV) / 实验室批量提交",
    openapi_extra=_BATCH_BODY,
)
async def submit_batch(
    request: Request,
    session: Session,
    actor: Annotated[Actor, Depends(require("admin", "supervisor", "inspector"))],
) -> Any:
    """For laboratory systems. Each row is checked like a single submission and reported
    (`created`, `replayed` or `error` with the field); the valid rows are stored together in
    one transaction. Each row's `idempotency_key` makes re-sending a batch safe. Inspectors may
    submit only for their own tasks; a supervisor-role account (the bureau's lab service
    account) for any task. 每行单独校验；有效行在同一事务中保存。"""
    content = await request.body()
    report = await batch_service.submit_batch(
        session,
        actor=actor,
        content=content,
        content_type=request.headers.get("content-type", ""),
        now=_now(),
    )
    # serialised here: FastAPI would validate the tens of thousands of rows once more
    return JSONResponse(report.model_dump(mode="json"))


# --- evidence ---------------------------------------------------------------------------------


@router.post(
    "/evidence",
    status_code=201,
    response_model=EvidenceOut,
    responses={
        **errors_for(401, 403, 413, 415, 422),
        200: {"model": EvidenceOut, "description": "Already stored (same content) / 已存在"},
    },
    summary="Upload an evidence photo or PDF / 上传证据文件",
)
async def upload_evidence(
    session: Session,
    actor: Uploader,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="JPEG, PNG, WebP or PDF")],
) -> Any:
    """Stored in the database, addressed by its SHA-256 (returned; results reference it).
    The type is checked from the content; the size limit is `QSAMPLING_EVIDENCE_MAX_BYTES`.
    仅接受 JPEG/PNG/WebP/PDF，按内容检查类型。"""
    data = await file.read(settings.evidence_max_bytes + 1)
    meta, created = await evidence_service.store(
        session,
        actor=actor,
        data=data,
        declared_type=file.content_type,
        filename=file.filename,
        max_bytes=settings.evidence_max_bytes,
    )
    return JSONResponse(meta.model_dump(mode="json"), status_code=201 if created else 200)


@router.get(
    "/evidence/{sha256}",
    responses={
        **errors_for(401, 403, 404, 422),
        200: {
            "content": {
                t: {} for t in ("image/jpeg", "image/png", "image/webp", "application/pdf")
            },
            "description": "The file / 证据文件",
        },
    },
    response_class=Response,
    summary="Download an evidence file / 下载证据文件",
)
async def get_evidence(
    sha256: Annotated[str, Path(pattern=r"^[0-9a-fA-F]{1,64}$")],
    session: Session,
    actor: Reader,
) -> Response:
    content, media_type = await evidence_service.get_content(session, sha256=sha256)
    return Response(
        content,
        media_type=media_type,
        headers={"Cache-Control": "private, max-age=86400", "ETag": f'"{sha256.lower()}"'},
    )
