"""Plans, commitments and draws (DESIGN §3 draw rules, §4 QSDRAW-1).

The service loads, calls :mod:`qsampling.core.draw` / :mod:`qsampling.core.assignment`, and
stores. Set-based work (freezing the pool, the per-stratum top-k, bulk task inserts) runs in
PostgreSQL; see :mod:`qsampling.draws.pool`. Services flush, never commit: a commit or a draw
is all-or-nothing within the caller's transaction.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.audit import service as audit
from qsampling.context import Actor
from qsampling.core.assignment import StaffingError, assign_teams
from qsampling.core.draw import (
    InspectorRef,
    Selected,
    build_params,
    build_result,
    canonical_json,
    commitment_of,
    compute_quotas,
    derive_seed,
    enterprise_keys,
    exclusions_csv,
    inspectors_csv,
    parse_exclusions_csv,
    parse_inspectors_csv,
    sha256_hex,
)
from qsampling.draws.bundle import render_result
from qsampling.draws.pool import (
    LONG_STATEMENT_TIMEOUT,
    PoolScope,
    asyncpg_connection,
    exclusion_pairs,
    freeze_pool,
    sql_topk,
)
from qsampling.draws.schemas import PlanCreate
from qsampling.errors import Conflict, InvalidInput, NotFound
from qsampling.models.directory import CheckItem
from qsampling.models.draws import Commitment, Draw, Plan
from qsampling.responses import split_page

DEFAULT_ENTROPY_SOURCE = "dice rolled in front of witnesses (at least 20 digits)"
DEFAULT_MIN_ENTROPY_CHARS = 20
FOLLOW_UP_STRATUM = "follow_up"
TEAM_SEPARATOR = "\x1f"


# --------------------------------------------------------------------------- plans


async def _check_item(session: AsyncSession, code: str) -> CheckItem:
    item = await session.get(CheckItem, code)
    if item is None:
        raise InvalidInput(
            f"There is no check item {code!r} in the check-item list. 抽查事项不存在。",
            code="UnknownCheckItem",
        )
    return item


def _validate_ratios(ratios: dict[str, str]) -> None:
    for key, value in ratios.items():
        try:
            compute_quotas({key: 1}, {key: value})
        except ValueError:
            raise InvalidInput(
                f"Sampling ratio {value!r} for {key!r} must be a decimal string between 0 "
                'and 1, e.g. "0.05". 抽查比例须为 0 到 1 之间的小数。',
                code="InvalidRatio",
            ) from None


def _team_size(requested: int | None, item: CheckItem) -> int:
    size = requested if requested is not None else item.team_size
    if size < 2:
        raise InvalidInput(
            f"A team needs at least 2 inspectors (行政处罚法第四十二条: 执法人员不得少于两人); "
            f"got {size}.",
            code="TeamTooSmall",
        )
    if size > 50:
        raise InvalidInput(f"Team size {size} is above the limit of 50.", code="TeamTooLarge")
    return size


async def _check_targets(session: AsyncSession, targets: list[str]) -> list[str]:
    unique = sorted(set(targets))
    # = ANY(array): one parameter however many targets (asyncpg allows 32,767 parameters)
    found = set(
        (
            await session.scalars(
                text("SELECT uscc FROM enterprises WHERE uscc = ANY(CAST(:u AS text[]))"),
                {"u": unique},
            )
        ).all()
    )
    missing = [t for t in unique if t not in found]
    if missing:
        shown = ", ".join(missing[:20]) + (" …" if len(missing) > 20 else "")
        raise InvalidInput(
            f"{len(missing)} target(s) are not in the enterprise directory: {shown}. "
            "检查对象不在名录库中。",
            code="UnknownEnterprise",
            extra={"unknown": missing[:1000]},
        )
    return unique


async def create_plan(session: AsyncSession, *, actor: Actor, data: PlanCreate) -> Plan:
    """A draft plan. Validates against the check item: team size (≥ 2), ratios, strata."""
    item = await _check_item(session, data.check_item_code)
    team_size = _team_size(data.team_size, item)
    if len(set(data.strata_fields)) != len(data.strata_fields):
        raise InvalidInput(
            "strata_fields lists a field twice. 分层字段重复。", code="InvalidStrata"
        )
    if data.ratios is not None and data.quotas is not None:
        raise InvalidInput(
            "Give either sampling ratios or explicit quotas, not both. 比例与数量只能二选一。",
            code="RatiosOrQuotas",
        )
    if data.ratios is not None:
        _validate_ratios(data.ratios)
    targets: list[str] | None = None
    if data.targets is not None:
        if data.plan_type == "routine":
            raise InvalidInput(
                "Fixed targets are for follow-up and emergency plans; a routine plan draws "
                "from its scope. 日常计划不能指定检查对象。",
                code="TargetsNotAllowed",
            )
        targets = await _check_targets(session, data.targets)
    scope = {
        "region_prefixes": sorted(set(data.scope.region_prefixes)),
        "category_codes": sorted(
            set(
                data.scope.category_codes
                if data.scope.category_codes is not None
                else (item.category_codes or [])
            )
        ),
        "statuses": sorted(set(data.scope.statuses)),
    }
    plan = Plan(
        name=data.name.strip() or data.name,
        check_item_code=item.code,
        plan_type=data.plan_type,
        status="draft",
        scope=scope,
        strata_fields=[FOLLOW_UP_STRATUM] if targets is not None else list(data.strata_fields),
        ratios=data.ratios,
        quotas=data.quotas,
        fixed_targets=targets,
        team_size=team_size,
        max_tasks_per_inspector=data.max_tasks_per_inspector,
        cross_unit=data.cross_unit,
        exclusion_days=(
            data.exclusion_days if data.exclusion_days is not None else item.exclusion_days
        ),
        due_date=data.due_date,
        entropy_source=data.entropy_source or DEFAULT_ENTROPY_SOURCE,
        reason=data.reason,
        created_by=actor.username,
    )
    session.add(plan)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="plan.create",
        entity_type="plan",
        entity_id=plan.id,
        payload=data.model_dump(mode="json"),
    )
    return plan


async def get_plan(session: AsyncSession, *, plan_id: int) -> Plan:
    plan = await session.get(Plan, plan_id)
    if plan is None:
        raise NotFound(f"There is no plan {plan_id}. 计划不存在。", code="PlanNotFound")
    return plan


async def _lock_plan(session: AsyncSession, plan_id: int) -> Plan:
    """The plan row under ``FOR UPDATE``: commits, draws and cancels of one plan serialise."""
    plan = await session.scalar(
        select(Plan)
        .where(Plan.id == plan_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if plan is None:
        raise NotFound(f"There is no plan {plan_id}. 计划不存在。", code="PlanNotFound")
    return plan


async def list_plans(
    session: AsyncSession,
    *,
    status: str | None = None,
    check_item_code: str | None = None,
    cursor: int | None = None,
    limit: int = 50,
) -> tuple[list[Plan], int | None]:
    q = select(Plan).order_by(Plan.id.desc()).limit(limit + 1)
    if status:
        q = q.where(Plan.status == status)
    if check_item_code:
        q = q.where(Plan.check_item_code == check_item_code)
    if cursor is not None:
        q = q.where(Plan.id < cursor)
    plans = list((await session.scalars(q)).all())
    nxt = plans[limit - 1].id if len(plans) > limit else None
    return plans[:limit], nxt


async def cancel_plan(session: AsyncSession, *, plan_id: int, actor: Actor) -> Plan:
    plan = await _lock_plan(session, plan_id)
    if plan.status == "drawn":
        raise Conflict(
            f"Plan {plan_id} has been drawn; a drawn plan cannot be cancelled (its tasks are "
            "handled one by one). 已抽取的计划不能撤销。",
            code="PlanDrawn",
        )
    if plan.status == "cancelled":
        raise Conflict(f"Plan {plan_id} is already cancelled. 计划已撤销。", code="PlanCancelled")
    plan.status = "cancelled"
    plan.cancelled_at = datetime.now(UTC)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="plan.cancel",
        entity_type="plan",
        entity_id=plan.id,
        payload={"plan_id": plan.id},
    )
    return plan


async def current_commitment(session: AsyncSession, *, plan_id: int) -> Commitment | None:
    return await session.scalar(
        select(Commitment)
        .where(Commitment.plan_id == plan_id, Commitment.superseded.is_(False))
        .order_by(Commitment.id.desc())
        .limit(1)
    )


async def draw_of(session: AsyncSession, *, plan_id: int) -> Draw | None:
    return await session.scalar(select(Draw).where(Draw.plan_id == plan_id))


# --------------------------------------------------------------------------- commit


async def _sort_memory(session: AsyncSession) -> None:
    """Enough memory for the rest of this transaction that the hash joins over a pool and the
    per-stratum top-k stay in memory (the default 4 MB spills them to disk for a 1M pool).
    Not for freezing the pool: with the default, PostgreSQL sorts it in parallel workers,
    faster than in one 128 MB sort."""
    await session.execute(text("SET LOCAL work_mem = '128MB'"))


@dataclass
class CommitResult:
    plan: Plan
    commitment: Commitment
    params: dict[str, Any]
    inspectors_eligible: int
    exclusion_pairs: int
    superseded: list[str]


def plan_quotas(plan: Plan, item: CheckItem, sizes: dict[str, int]) -> dict[str, int]:
    """n_h per stratum of the pool: all targets of a follow-up plan; explicit quotas (capped
    at N_h, unnamed strata 0); or ratios — per stratum, else per credit-class component,
    from the plan, else the check item — through :func:`core.draw.compute_quotas`."""
    if plan.fixed_targets is not None:
        return dict(sizes)
    if plan.quotas is not None:
        return {s: min(int(plan.quotas.get(s, 0)), n) for s, n in sizes.items()}
    plan_ratios = plan.ratios or {}
    item_ratios = item.ratios or {}
    ratios: dict[str, Any] = {}
    missing: list[str] = []
    cc_index = (
        plan.strata_fields.index("credit_class") if "credit_class" in plan.strata_fields else None
    )
    for stratum in sizes:
        r = plan_ratios.get(stratum)
        if r is None and cc_index is not None:
            cc = stratum.split("|")[cc_index]
            r = plan_ratios.get(cc, item_ratios.get(cc))
        if r is None:
            missing.append(stratum)
        else:
            ratios[stratum] = r
    if missing:
        raise InvalidInput(
            f"No sampling ratio for stratum/strata {', '.join(missing)}; give them in the "
            "plan's ratios. 缺少分层抽查比例。",
            code="MissingRatio",
        )
    try:
        return compute_quotas(sizes, ratios)
    except ValueError as exc:
        raise InvalidInput(f"Invalid sampling ratio: {exc}.", code="InvalidRatio") from None


async def _eligible_inspectors(
    session: AsyncSession, *, qualification: str | None, region_prefixes: list[str]
) -> list[InspectorRef]:
    """Active, holding the check item's qualification (if any), and with a region scope that
    is empty or overlaps the plan's regions (a prefix either way)."""
    sql = (
        "SELECT i.inspector_id, i.unit_code FROM inspectors i WHERE i.active "
        "AND (CAST(:q AS text) IS NULL OR CAST(:q AS text) = ANY(i.qualifications))"
    )
    params: dict[str, Any] = {"q": qualification}
    if region_prefixes:
        sql += (
            " AND (cardinality(i.region_scope) = 0 OR EXISTS ("
            "SELECT 1 FROM unnest(i.region_scope) AS rs(code), "
            "unnest(CAST(:regions AS text[])) AS p(code) "
            "WHERE left(rs.code, length(p.code)) = p.code "
            "OR left(p.code, length(rs.code)) = rs.code))"
        )
        params["regions"] = region_prefixes
    rows = await session.execute(text(sql + " ORDER BY i.inspector_id"), params)
    return [InspectorRef(r[0], r[1] or "") for r in rows]


async def commit_plan(
    session: AsyncSession,
    *,
    plan_id: int,
    actor: Actor,
    entropy_source: str | None = None,
    nonce: bytes | None = None,
) -> CommitResult:
    """QSDRAW-1 step 1: freeze the pool, the eligible inspectors and the exclusion pairs,
    write the canonical files, draw the secret nonce, store, return the commitment.

    A committed-but-undrawn plan may be committed again: the new commitment supersedes the
    old one (both stay public, so a supervisor re-committing until a favourable pool shows
    up is visible). ``nonce`` is for the demo and tests only; otherwise 32 bytes from
    :mod:`secrets`.
    """
    plan = await _lock_plan(session, plan_id)
    if plan.status == "drawn":
        raise Conflict(
            f"Plan {plan_id} has already been drawn; it cannot be committed again. 计划已抽取。",
            code="PlanDrawn",
        )
    if plan.status == "cancelled":
        raise Conflict(f"Plan {plan_id} is cancelled. 计划已撤销。", code="PlanCancelled")
    item = await _check_item(session, plan.check_item_code)
    source = entropy_source or plan.entropy_source or DEFAULT_ENTROPY_SOURCE

    # the commitment row first (the stored pool references it); real values are set below
    commitment = Commitment(
        plan_id=plan.id,
        commitment=f"pending-{secrets.token_hex(16)}",
        params_json=b"",
        pool_sha256="",
        inspectors_csv=b"",
        exclusions_csv=b"",
        nonce=b"",
        pool_size=0,
        strata_sizes={},
        quotas={},
        committed_by=actor.username,
    )
    session.add(commitment)
    await session.flush()

    scope = plan.scope or {}
    targets = plan.fixed_targets
    routine = plan.plan_type == "routine"
    sizes, pool_sha = await freeze_pool(
        session,
        commitment_id=commitment.id,
        scope=PoolScope(
            targets=targets,
            region_prefixes=list(scope.get("region_prefixes") or []),
            category_codes=list(scope.get("category_codes") or []),
            statuses=list(scope.get("statuses") or ["存续"]),
            strata_fields=list(plan.strata_fields),
            check_item_code=plan.check_item_code,
            exclusion_days=plan.exclusion_days if routine else None,
        ),
    )
    if not sizes:
        raise Conflict(_empty_pool_sentence(plan), code="EmptyPool")
    await _sort_memory(session)
    quotas = plan_quotas(plan, item, sizes)
    if sum(quotas.values()) == 0:
        raise Conflict(
            "The quotas of every stratum are 0, so nothing would be drawn. 抽取数量为零。",
            code="NothingToDraw",
        )

    if targets is not None:
        regions = list(
            (
                await session.scalars(
                    text(
                        "SELECT DISTINCT region_code FROM enterprises "
                        "WHERE uscc = ANY(CAST(:u AS text[])) ORDER BY 1"
                    ),
                    {"u": list(targets)},
                )
            ).all()
        )
    else:
        regions = list(scope.get("region_prefixes") or [])
    inspectors = await _eligible_inspectors(
        session, qualification=item.qualification, region_prefixes=regions
    )
    if len(inspectors) < plan.team_size:
        raise Conflict(
            f"Only {len(inspectors)} eligible inspector(s) (active, qualified for "
            f"{item.code}{', ' + item.qualification if item.qualification else ''}, covering "
            f"the plan's regions) for teams of {plan.team_size}. 符合条件的执法人员不足。",
            code="CannotStaff",
            extra={"unstaffed": [], "inspectors_eligible": len(inspectors)},
        )
    pairs = await exclusion_pairs(
        session, commitment_id=commitment.id, inspector_ids=[i.inspector_id for i in inspectors]
    )
    ins_csv = inspectors_csv(inspectors)
    exc_csv = exclusions_csv(pairs)
    secret = nonce if nonce is not None else secrets.token_bytes(32)
    params = build_params(
        plan_id=plan.id,
        quotas=quotas,
        team_size=plan.team_size,
        max_tasks_per_inspector=plan.max_tasks_per_inspector,
        cross_unit=plan.cross_unit,
        pool_sha256=pool_sha,
        inspectors_sha256=sha256_hex(ins_csv),
        exclusions_sha256=sha256_hex(exc_csv),
        server_nonce_sha256=sha256_hex(secret),
        entropy_source=source,
    )
    commitment.commitment = commitment_of(params)
    commitment.params_json = canonical_json(params)
    commitment.pool_sha256 = pool_sha
    commitment.inspectors_csv = ins_csv
    commitment.exclusions_csv = exc_csv
    commitment.nonce = secret
    commitment.pool_size = sum(sizes.values())
    commitment.strata_sizes = sizes
    commitment.quotas = quotas
    superseded = list(
        (
            await session.scalars(
                update(Commitment)
                .where(
                    Commitment.plan_id == plan.id,
                    Commitment.id != commitment.id,
                    Commitment.superseded.is_(False),
                )
                .values(superseded=True)
                .returning(Commitment.commitment)
            )
        ).all()
    )
    plan.status = "committed"
    plan.committed_at = func.now()
    await session.flush()
    await session.refresh(plan)
    await session.refresh(commitment, ["created_at"])
    await audit.record(
        session,
        actor=actor,
        action="plan.recommit" if superseded else "plan.commit",
        entity_type="plan",
        entity_id=plan.id,
        payload={
            "commitment": commitment.commitment,
            "pool_size": commitment.pool_size,
            "quotas": quotas,
            "superseded": superseded,
        },
    )
    return CommitResult(plan, commitment, params, len(inspectors), len(set(pairs)), superseded)


def _empty_pool_sentence(plan: Plan) -> str:
    if plan.fixed_targets is not None:
        return "None of the plan's targets could be put in the pool. 候选名单为空。"
    scope = plan.scope or {}
    regions = ", ".join(scope.get("region_prefixes") or []) or "all"
    cats = ", ".join(scope.get("category_codes") or []) or "all"
    statuses = ", ".join(scope.get("statuses") or ["存续"])
    window = (
        f", leaving out enterprises inspected for {plan.check_item_code} in the last "
        f"{plan.exclusion_days} days"
        if plan.plan_type == "routine" and plan.exclusion_days
        else ""
    )
    return (
        f"No enterprise matches the plan's scope (regions {regions}; categories {cats}; "
        f"statuses {statuses}{window}). 没有符合范围的检查对象。"
    )


# --------------------------------------------------------------------------- draw


def _min_entropy(configured: int | None) -> int:
    if configured is not None:
        return configured
    try:
        from qsampling.config import get_settings

        return get_settings().min_entropy_chars
    except Exception:  # noqa: BLE001 - a broken environment must not weaken the rule
        return DEFAULT_MIN_ENTROPY_CHARS


# One SHA-256 per (drawn enterprise, eligible inspector): 500,000 x 2,000 for a 10M pool.
TEAM_WORKERS = min(2, os.cpu_count() or 1)


async def draw_plan(
    session: AsyncSession,
    *,
    plan_id: int,
    entropy: str,
    entropy_source: str | None,
    actor: Actor,
    min_entropy_chars: int | None = None,
) -> Draw:
    """QSDRAW-1 steps 3–5 in one transaction: seed, keys, selection, teams, tasks.

    A plan is drawn once: the plan row is locked, its status checked, and the unique
    ``draws.plan_id`` is the backstop (409 ``AlreadyDrawn``). When a team cannot be staffed,
    nothing is stored, the plan stays committed and 409 ``CannotStaff`` names the
    enterprises (``unstaffed``).
    """
    minimum = _min_entropy(min_entropy_chars)
    if len(entropy) < minimum:
        raise InvalidInput(
            f"The public entropy must be at least {minimum} characters (e.g. {minimum} dice "
            f"digits rolled in front of witnesses); got {len(entropy)}. 公开熵长度不足。",
            code="EntropyTooShort",
        )
    if "\x00" in entropy:
        raise InvalidInput("The entropy must not contain NUL.", code="InvalidInput")
    plan = await _lock_plan(session, plan_id)
    if plan.status == "drawn":
        raise Conflict(f"Plan {plan_id} has already been drawn. 计划已抽取。", code="AlreadyDrawn")
    if plan.status == "draft":
        raise Conflict(
            f"Plan {plan_id} has no commitment yet: commit it first (POST "
            f"/api/v1/plans/{plan_id}/commit) and publish the commitment. 请先提交承诺。",
            code="NotCommitted",
        )
    if plan.status == "cancelled":
        raise Conflict(f"Plan {plan_id} is cancelled. 计划已撤销。", code="PlanCancelled")
    commitment = await current_commitment(session, plan_id=plan_id)
    if commitment is None:  # pragma: no cover - committed plans always have one
        raise Conflict(f"Plan {plan_id} has no commitment.", code="NotCommitted")

    await _sort_memory(session)
    seed = derive_seed(commitment.commitment, bytes(commitment.nonce), entropy)
    quotas = {k: int(v) for k, v in commitment.quotas.items()}
    sizes = {k: int(v) for k, v in commitment.strata_sizes.items()}
    rows = await sql_topk(
        session, commitment_id=commitment.id, seed=seed, quotas=quotas, sizes=sizes
    )
    # the SQL keys are re-derived by the core (the single source of QSDRAW-1)
    for row, key in zip(rows, enterprise_keys(seed, (r.uscc for r in rows)), strict=True):
        if row.key != key:  # pragma: no cover - would be a bug in the SQL
            raise RuntimeError(f"SQL key of {row.uscc} differs from core.enterprise_key")
    selected = sorted(
        (
            Selected(
                r.uscc,
                r.stratum,
                r.key.hex(),
                quotas[r.stratum] / sizes[r.stratum],
                sizes[r.stratum],
                quotas[r.stratum],
            )
            for r in rows
        ),
        key=lambda s: (s.key, s.uscc),
    )
    units = {r.uscc: r.unit for r in rows}
    inspectors = parse_inspectors_csv(bytes(commitment.inspectors_csv))
    exclusions = parse_exclusions_csv(bytes(commitment.exclusions_csv))

    def _assign() -> dict[str, list[str]]:
        return assign_teams(
            seed=seed,
            selected=selected,
            inspectors=inspectors,
            exclusions=exclusions,
            enterprise_units=units,
            team_size=plan.team_size,
            max_tasks_per_inspector=plan.max_tasks_per_inspector,
            cross_unit=plan.cross_unit,
            # the hashing of large draws runs in worker processes (results are identical)
            workers=TEAM_WORKERS,
        )

    try:
        # CPU-bound for large draws: off the event loop
        teams = await asyncio.to_thread(_assign) if len(selected) > 2000 else _assign()
    except StaffingError as exc:
        shown = ", ".join(exc.unstaffed[:20]) + (" …" if len(exc.unstaffed) > 20 else "")
        raise Conflict(
            f"{len(exc.unstaffed)} drawn enterprise(s) could not get {plan.team_size} eligible "
            f"inspectors (conflicts, rotation, cross-unit rule, workload cap): {shown}. Nothing "
            "was stored; the plan stays committed — fix the inspector directory or the plan "
            "and commit again. 部分检查对象无法配齐执法人员，本次抽取未保存。",
            code="CannotStaff",
            extra={"unstaffed": exc.unstaffed},
        ) from None

    result = build_result(
        commitment=commitment.commitment,
        nonce=bytes(commitment.nonce),
        entropy=entropy,
        seed=seed,
        selected=selected,
        teams=teams,
    )
    result_sha = sha256_hex(render_result(result))
    draw = Draw(
        plan_id=plan.id,
        commitment_id=commitment.id,
        entropy=entropy,
        entropy_note=entropy_source,
        seed=seed.hex(),
        selected_count=len(selected),
        drawn_by=actor.username,
        result_sha256=result_sha,
    )
    session.add(draw)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(
            f"Plan {plan_id} has already been drawn. 计划已抽取。", code="AlreadyDrawn"
        ) from None
    await session.refresh(draw, ["drawn_at"])
    await _insert_tasks(session, plan=plan, draw=draw, selected=selected, teams=teams)
    plan.status = "drawn"
    plan.drawn_at = draw.drawn_at
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="plan.draw",
        entity_type="plan",
        entity_id=plan.id,
        # result_sha256 covers every task and team of the draw, so one entry records them
        payload={
            "draw_id": draw.id,
            "commitment": commitment.commitment,
            "entropy": entropy,
            "entropy_note": entropy_source,
            "seed": draw.seed,
            "selected_count": len(selected),
            "result_sha256": result_sha,
        },
    )
    return draw


async def _insert_tasks(
    session: AsyncSession,
    *,
    plan: Plan,
    draw: Draw,
    selected: list[Selected],
    teams: dict[str, list[str]],
) -> None:
    for s in selected:
        for inspector_id in teams[s.uscc]:
            if TEAM_SEPARATOR in inspector_id:  # pragma: no cover - ids are directory codes
                raise ValueError(f"inspector id {inspector_id!r} contains a separator")
    apg = await asyncpg_connection(session)
    await apg.execute(
        "INSERT INTO tasks (plan_id, draw_id, uscc, check_item_code, stratum, draw_key, "
        "draw_rank, stratum_sample_size, stratum_population, inclusion_probability, status, "
        "due_date, drawn_team) "
        "SELECT $1, $2, x.uscc, $3, x.stratum, x.k, x.rank, x.n, x.big_n, x.p, "
        "'assigned', $4::date, string_to_array(x.team, $5) "
        "FROM unnest($6::text[], $7::text[], $8::text[], $9::int[], $10::int[], $11::int[], "
        "$12::float8[], $13::text[]) AS x(uscc, stratum, k, rank, n, big_n, p, team)",
        plan.id,
        draw.id,
        plan.check_item_code,
        plan.due_date,
        TEAM_SEPARATOR,
        [s.uscc for s in selected],
        [s.stratum for s in selected],
        [s.key for s in selected],
        list(range(1, len(selected) + 1)),
        [s.quota for s in selected],
        [s.stratum_size for s in selected],
        [s.inclusion_probability for s in selected],
        [TEAM_SEPARATOR.join(teams[s.uscc]) for s in selected],
        timeout=LONG_STATEMENT_TIMEOUT,
    )
    await apg.execute(
        "INSERT INTO task_inspectors (task_id, inspector_id, position) "
        "SELECT t.id, m.inspector_id, m.ord FROM tasks t "
        "CROSS JOIN LATERAL unnest(t.drawn_team) WITH ORDINALITY AS m(inspector_id, ord) "
        "WHERE t.draw_id = $1",
        draw.id,
        timeout=LONG_STATEMENT_TIMEOUT,
    )


# --------------------------------------------------------------------------- follow-up


async def create_follow_up_plan(
    session: AsyncSession,
    *,
    actor: Actor,
    check_item_code: str,
    targets: list[str],
    due_date: date,
    reason: str,
    team_size: int | None = None,
) -> Plan:
    """A follow-up plan (复查/跟踪检查) for fixed enterprises, committed at once.

    The pool is exactly ``targets`` (one stratum ``follow_up``, all drawn); only the
    inspector teams are random. The exclusion window does not apply. A supervisor then draws
    it with public entropy like any other plan (:func:`draw_plan`).
    """
    if not targets:
        raise InvalidInput("A follow-up plan needs at least one target.", code="NoTargets")
    item = await _check_item(session, check_item_code)
    try:
        data = PlanCreate(
            name=f"跟踪检查 follow-up: {item.name}"[:200],
            check_item_code=check_item_code,
            plan_type="follow_up",
            targets=targets,
            team_size=team_size,
            due_date=due_date,
            reason=reason[:2000],
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        raise InvalidInput(
            f"Invalid follow-up plan ({where}): {err.get('msg', 'invalid')}.",
            code="InvalidInput",
        ) from None
    plan = await create_plan(session, actor=actor, data=data)
    await commit_plan(session, plan_id=plan.id, actor=actor)
    return plan


# --------------------------------------------------------------------------- public


@dataclass
class CommitmentHead:
    """The listed part of a commitment: not its frozen inspector and exclusion files, which
    reach megabytes for a large pool and belong to the bundle."""

    id: int
    commitment: str
    params_json: bytes
    created_at: datetime
    superseded: bool
    pool_size: int
    quotas: dict[str, int]
    nonce: bytes


@dataclass
class PublicRow:
    plan: Plan
    check_item_name: str | None
    commitment: CommitmentHead
    draw: Draw | None


_HEAD_COLUMNS = (
    Commitment.id,
    Commitment.commitment,
    Commitment.params_json,
    Commitment.created_at,
    Commitment.superseded,
    Commitment.pool_size,
    Commitment.quotas,
    Commitment.nonce,
)


async def public_rows(
    session: AsyncSession,
    *,
    cursor: int | None = None,
    limit: int = 50,
    plan_id: int | None = None,
) -> tuple[list[PublicRow], int | None]:
    """Every commitment (superseded ones too) with its plan and, if drawn, its draw; newest
    first, paged by commitment id."""
    q = (
        select(*_HEAD_COLUMNS, Plan, CheckItem.name, Draw)
        .join(Plan, Plan.id == Commitment.plan_id)
        .outerjoin(CheckItem, CheckItem.code == Plan.check_item_code)
        .outerjoin(Draw, Draw.commitment_id == Commitment.id)
        .order_by(Commitment.id.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        q = q.where(Commitment.id < cursor)
    if plan_id is not None:
        q = q.where(Commitment.plan_id == plan_id)
    rows = (await session.execute(q)).all()
    k = len(_HEAD_COLUMNS)
    page, nxt = split_page(rows, limit, lambda r: r[0])  # column 0: the commitment id
    out: list[PublicRow] = []
    for r in page:
        row: Any = tuple(r)
        out.append(PublicRow(row[k], row[k + 1], CommitmentHead(*row[:k]), row[k + 2]))
    return out, nxt


async def commitment_by_hash(session: AsyncSession, *, commitment: str) -> Commitment:
    c = await session.scalar(select(Commitment).where(Commitment.commitment == commitment))
    if c is None:
        raise NotFound(
            f"There is no commitment {commitment}. 承诺值不存在。", code="CommitmentNotFound"
        )
    return c


async def drawn(session: AsyncSession, *, plan_id: int) -> tuple[Draw, Commitment]:
    draw = await draw_of(session, plan_id=plan_id)
    if draw is None:
        raise NotFound(
            f"Plan {plan_id} has not been drawn (or does not exist). 该计划尚未抽取。",
            code="DrawNotFound",
        )
    commitment = await session.get(Commitment, draw.commitment_id)
    assert commitment is not None
    return draw, commitment


async def selected_rows(
    session: AsyncSession, *, draw_id: int, limit: int
) -> list[tuple[int, str, str, str, float, list[str]]]:
    rows = await session.execute(
        text(
            "SELECT t.draw_rank, t.uscc, t.stratum, t.draw_key, t.inclusion_probability, "
            "coalesce(t.drawn_team, ARRAY(SELECT ti.inspector_id FROM task_inspectors ti "
            "WHERE ti.task_id = t.id ORDER BY ti.position)) "
            "FROM tasks t WHERE t.draw_id = :did ORDER BY t.draw_rank LIMIT :n"
        ),
        {"did": draw_id, "n": limit},
    )
    return [(r[0], r[1], r[2], r[3], r[4], list(r[5])) for r in rows]
