from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import select

from qsampling.context import Actor
from qsampling.deps import Session, require
from qsampling.models.audit import AuditEntry
from qsampling.responses import errors_for

router = APIRouter(prefix="/api/v1/audit", tags=["audit 审计"])


class AuditOut(BaseModel):
    id: int
    created_at: datetime
    actor: str
    role: str
    action: str
    entity_type: str
    entity_id: str
    request_id: str | None
    payload_sha256: str
    seq: int | None
    prev_hash: str | None
    entry_hash: str | None


@router.get(
    "",
    response_model=list[AuditOut],
    responses=errors_for(401, 403, 422),
    summary="Read the audit log (admin) / 审计日志",
)
async def list_audit(
    session: Session,
    actor: Annotated[Actor, Depends(require("admin"))],
    entity_type: str | None = None,
    entity_id: str | None = None,
    before_id: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditOut]:
    """Newest first; page with `before_id` = the last id you received."""
    q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if entity_type:
        q = q.where(AuditEntry.entity_type == entity_type)
    if entity_id:
        q = q.where(AuditEntry.entity_id == entity_id)
    if before_id:
        q = q.where(AuditEntry.id < before_id)
    rows = (await session.scalars(q)).all()
    return [AuditOut.model_validate(r, from_attributes=True) for r in rows]
