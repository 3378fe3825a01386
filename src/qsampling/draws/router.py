"""HTTP routes: plans (supervisors), commit and draw (QSDRAW-1), public draws and bundles."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from qsampling.deps import AnyStaff, Session, SettingsDep, Writer
from qsampling.draws import service
from qsampling.draws.bundle import bundle_bytes, commitment_files
from qsampling.draws.schemas import (
    CommitOut,
    CommitRequest,
    DrawOut,
    DrawRequest,
    PlanCreate,
    PlanOut,
    PlanPage,
    PlanStatus,
    PublicDrawDetail,
    PublicDrawOut,
    PublicDrawPage,
    PublicSelected,
    SelectedOut,
    StratumOut,
)
from qsampling.models.draws import Plan
from qsampling.responses import errors_for

router = APIRouter(tags=["draws 抽查计划与抽取"])

PlanId = Annotated[int, Path(ge=1, le=2**62, description="Plan id / 计划编号")]
Cursor = Annotated[int | None, Query(ge=1, le=2**62, description="From `next_cursor`")]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
ZIP: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/zip": {}}, "description": "A zip file"}
}


async def _plan_out(session: Any, plan: Plan) -> PlanOut:
    c = await service.current_commitment(session, plan_id=plan.id)
    d = await service.draw_of(session, plan_id=plan.id) if plan.status == "drawn" else None
    return PlanOut(
        id=plan.id,
        name=plan.name,
        check_item_code=plan.check_item_code,
        plan_type=plan.plan_type,
        status=plan.status,
        scope=plan.scope,
        targets=plan.fixed_targets,
        strata_fields=plan.strata_fields,
        ratios=plan.ratios,
        quotas=plan.quotas,
        team_size=plan.team_size,
        max_tasks_per_inspector=plan.max_tasks_per_inspector,
        cross_unit=plan.cross_unit,
        exclusion_days=plan.exclusion_days,
        due_date=plan.due_date,
        entropy_source=plan.entropy_source,
        reason=plan.reason,
        created_by=plan.created_by,
        created_at=plan.created_at,
        committed_at=plan.committed_at,
        drawn_at=plan.drawn_at,
        cancelled_at=plan.cancelled_at,
        commitment=c.commitment if c else None,
        selected_count=d.selected_count if d else None,
    )


@router.post(
    "/api/v1/plans",
    response_model=PlanOut,
    status_code=201,
    responses=errors_for(401, 403, 422),
    summary="Create a draw plan / 创建抽查计划",
)
async def create_plan(body: PlanCreate, session: Session, actor: Writer) -> PlanOut:
    """A draft plan: check item, scope (regions, categories, statuses — default 存续),
    stratification (default credit class), ratios or quotas, team size (≥ 2, 行政处罚法
    第四十二条), workload cap, cross-unit rule, exclusion window (default from the check item),
    plan type, due date. Nothing is frozen until the commit."""
    plan = await service.create_plan(session, actor=actor, data=body)
    await session.refresh(plan)
    return await _plan_out(session, plan)


@router.get(
    "/api/v1/plans",
    response_model=PlanPage,
    responses=errors_for(401, 403, 422),
    summary="List plans / 计划列表",
)
async def list_plans(
    session: Session,
    actor: AnyStaff,
    status: Annotated[PlanStatus | None, Query(description="Filter by status")] = None,
    check_item_code: Annotated[str | None, Query(max_length=32)] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> PlanPage:
    plans, nxt = await service.list_plans(
        session, status=status, check_item_code=check_item_code, cursor=cursor, limit=limit
    )
    return PlanPage(items=[await _plan_out(session, p) for p in plans], next_cursor=nxt)


@router.get(
    "/api/v1/plans/{plan_id}",
    response_model=PlanOut,
    responses=errors_for(401, 403, 404, 422),
    summary="One plan / 计划详情",
)
async def get_plan(plan_id: PlanId, session: Session, actor: AnyStaff) -> PlanOut:
    return await _plan_out(session, await service.get_plan(session, plan_id=plan_id))


@router.post(
    "/api/v1/plans/{plan_id}/cancel",
    response_model=PlanOut,
    responses=errors_for(401, 403, 404, 409, 422),
    summary="Cancel a plan before its draw / 撤销计划",
)
async def cancel_plan(plan_id: PlanId, session: Session, actor: Writer) -> PlanOut:
    """Only before the draw (409 `PlanDrawn` after). Published commitments stay public."""
    plan = await service.cancel_plan(session, plan_id=plan_id, actor=actor)
    return await _plan_out(session, plan)


@router.post(
    "/api/v1/plans/{plan_id}/commit",
    response_model=CommitOut,
    responses=errors_for(401, 403, 404, 409, 422),
    summary="Commit: freeze the pool and publish the commitment / 冻结名单并公布承诺值",
)
async def commit_plan(
    plan_id: PlanId, session: Session, actor: Writer, body: CommitRequest | None = None
) -> CommitOut:
    """QSDRAW-1 step 1. Freezes the candidate pool, the eligible inspectors and the exclusion
    pairs (declared conflicts; rotation), writes the canonical files, generates the secret
    server nonce and returns the commitment with the pool size and quota of every stratum.

    409 `EmptyPool` when nothing matches the scope, 409 `CannotStaff` when there are fewer
    eligible inspectors than the team size, 409 `PlanDrawn`/`PlanCancelled`. Committing an
    undrawn plan again supersedes its earlier commitment (both stay public)."""
    res = await service.commit_plan(
        session,
        plan_id=plan_id,
        actor=actor,
        entropy_source=body.entropy_source if body else None,
    )
    c = res.commitment
    return CommitOut(
        plan_id=res.plan.id,
        commitment_id=c.id,
        commitment=c.commitment,
        params=res.params,
        committed_at=c.created_at,
        pool_size=c.pool_size,
        strata=[
            StratumOut(stratum=s, population=n, quota=c.quotas[s])
            for s, n in sorted(c.strata_sizes.items())
        ],
        quota_total=sum(c.quotas.values()),
        inspectors_eligible=res.inspectors_eligible,
        exclusion_pairs=res.exclusion_pairs,
        superseded=res.superseded,
    )


@router.post(
    "/api/v1/plans/{plan_id}/draw",
    response_model=DrawOut,
    responses=errors_for(401, 403, 404, 409, 422),
    summary="Draw with public entropy / 输入公开熵值进行抽取",
)
async def draw_plan(
    plan_id: PlanId,
    body: DrawRequest,
    request: Request,
    session: Session,
    actor: Writer,
    settings: SettingsDep,
) -> DrawOut:
    """QSDRAW-1 steps 3–5: seed from commitment, nonce and entropy; the smallest keys per
    stratum; inspector teams; one task per drawn enterprise with its team, key and inclusion
    probability n_h/N_h — all in one transaction. A plan is drawn once (409 `AlreadyDrawn`).
    When a team cannot be staffed nothing is stored and 409 `CannotStaff` lists the
    enterprises in `unstaffed`. 422 `EntropyTooShort` below the configured minimum."""
    draw = await service.draw_plan(
        session,
        plan_id=plan_id,
        entropy=body.entropy,
        entropy_source=body.entropy_source,
        actor=actor,
        min_entropy_chars=settings.min_entropy_chars,
    )
    _, commitment = await service.drawn(session, plan_id=plan_id)
    rows = await service.selected_rows(session, draw_id=draw.id, limit=1000)
    return DrawOut(
        plan_id=plan_id,
        draw_id=draw.id,
        commitment=commitment.commitment,
        nonce=bytes(commitment.nonce).hex(),
        entropy=draw.entropy,
        entropy_note=draw.entropy_note,
        seed=draw.seed,
        drawn_at=draw.drawn_at,
        selected_count=draw.selected_count,
        result_sha256=draw.result_sha256,
        bundle_url=f"/api/v1/public/draws/{plan_id}/bundle",
        selected=[
            SelectedOut(
                rank=r[0],
                uscc=r[1],
                stratum=r[2],
                key=r[3],
                inclusion_probability=r[4],
                inspectors=r[5],
            )
            for r in rows
        ],
        selected_truncated=draw.selected_count > len(rows),
    )


# --------------------------------------------------------------------------- public


def _public(row: service.PublicRow) -> PublicDrawOut:
    c, d, p = row.commitment, row.draw, row.plan
    return PublicDrawOut(
        plan_id=p.id,
        plan_name=p.name,
        plan_type=p.plan_type,
        plan_status=p.status,
        check_item_code=p.check_item_code,
        check_item_name=row.check_item_name,
        commitment_id=c.id,
        commitment=c.commitment,
        params=json.loads(bytes(c.params_json)),
        committed_at=c.created_at,
        superseded=c.superseded,
        pool_size=c.pool_size,
        quota_total=sum(int(v) for v in c.quotas.values()),
        drawn_at=d.drawn_at if d else None,
        entropy=d.entropy if d else None,
        entropy_note=d.entropy_note if d else None,
        # the nonce stays secret until the draw (QSDRAW-1 step 3)
        nonce=bytes(c.nonce).hex() if d else None,
        seed=d.seed if d else None,
        selected_count=d.selected_count if d else None,
        result_sha256=d.result_sha256 if d else None,
        files_url=f"/api/v1/public/commitments/{c.commitment}/files",
        bundle_url=f"/api/v1/public/draws/{p.id}/bundle" if d else None,
    )


@router.get(
    "/api/v1/public/draws",
    response_model=PublicDrawPage,
    responses=errors_for(422),
    summary="Public: every commitment and draw / 公开：抽查承诺与抽取结果",
)
async def public_draws(
    session: Session, cursor: Cursor = None, limit: Limit = 50
) -> PublicDrawPage:
    """Newest first. Every commitment is listed — superseded and cancelled ones too — with
    its commit time; once drawn, the entropy, the revealed nonce, the seed and the counts."""
    rows, nxt = await service.public_rows(session, cursor=cursor, limit=limit)
    return PublicDrawPage(items=[_public(r) for r in rows], next_cursor=nxt)


@router.get(
    "/api/v1/public/draws/{plan_id}",
    response_model=PublicDrawDetail,
    responses=errors_for(404, 422),
    summary="Public: one plan's commitments and draw / 公开：单个计划的抽取",
)
async def public_draw(plan_id: PlanId, session: Session) -> PublicDrawDetail:
    rows, _ = await service.public_rows(session, plan_id=plan_id, limit=1000)
    if not rows:
        from qsampling.errors import NotFound

        raise NotFound(
            f"Plan {plan_id} has no published commitment. 该计划尚无公开承诺。",
            code="DrawNotFound",
        )
    current = next((r for r in rows if not r.commitment.superseded), rows[0])
    detail = PublicDrawDetail(
        **_public(current).model_dump(),
        history=[_public(r) for r in rows if r is not current],
    )
    if current.draw is not None:
        limit = 5000
        sel = await service.selected_rows(session, draw_id=current.draw.id, limit=limit)
        detail.selected = [
            PublicSelected(rank=r[0], uscc=r[1], stratum=r[2], key=r[3], inspectors=r[5])
            for r in sel
        ]
        detail.selected_truncated = current.draw.selected_count > len(sel)
    return detail


@router.get(
    "/api/v1/public/draws/{plan_id}/bundle",
    response_class=Response,
    responses={**ZIP, **errors_for(404, 422)},
    summary="Public: the verification bundle of a draw / 公开：抽取验证包",
)
async def public_bundle(plan_id: PlanId, session: Session) -> Response:
    """A zip with `pool.csv`, `inspectors.csv`, `exclusions.csv`, `params.json` and
    `result.json` exactly as QSDRAW-1 specifies (inspector ids and units only). Check it with
    `python scripts/verify_draw.py bundle.zip` or `qsampling verify-draw bundle.zip`."""
    draw, commitment = await service.drawn(session, plan_id=plan_id)
    data = await bundle_bytes(session, draw=draw, commitment=commitment)
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="qsdraw-plan-{plan_id}.zip"'},
    )


@router.get(
    "/api/v1/public/commitments/{commitment}/files",
    response_class=Response,
    responses={**ZIP, **errors_for(404, 422)},
    summary="Public: the files committed to, before the draw / 公开：承诺时冻结的文件",
)
async def public_commitment_files(
    commitment: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="Commitment hex")],
    session: Session,
) -> Response:
    """`pool.csv`, `inspectors.csv`, `exclusions.csv` and `params.json` of a commitment, so
    anyone can check the frozen pool before the seed exists (the nonce stays secret)."""
    c = await service.commitment_by_hash(session, commitment=commitment)
    data = await commitment_files(session, commitment=c)
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="qsdraw-commit-{c.id}.zip"'},
    )
