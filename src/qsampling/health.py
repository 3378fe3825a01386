from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from qsampling.db import current_revision, head_revision

router = APIRouter(tags=["health 健康检查"])


class Health(BaseModel):
    status: str
    detail: str | None = None


@router.get("/healthz", response_model=Health, summary="Process is up / 进程存活")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: {"model": Health, "description": "Not ready / 未就绪"}},
    summary="Database reachable and schema at head / 数据库可用且迁移到最新",
)
async def readyz(request: Request) -> Health | JSONResponse:
    sm = request.app.state.sessionmaker
    try:
        async with sm() as s:
            await s.execute(text("SELECT 1"))
            conn = await s.connection()
            current = await current_revision(conn)
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return JSONResponse(
            {"status": "unavailable", "detail": f"database: {type(exc).__name__}"}, status_code=503
        )
    head = head_revision()
    if current != head:
        return JSONResponse(
            {
                "status": "unavailable",
                "detail": f"schema at {current}, expected {head}: run `qsampling db upgrade`",
            },
            status_code=503,
        )
    return Health(status="ok")
