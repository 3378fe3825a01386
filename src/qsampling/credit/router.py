"""Credit API: policies, penalties, the explainable class, the lists and the feeds.

Roles. The credit class steers supervision and is internal: admin, supervisor and analyst
may read it; inspectors may not (they inspect without knowing the risk class, so it cannot
colour their findings). Supervisors (and admins) record penalties and decide list entries;
only admins publish policies. Partner departments read the joint-punishment feed and
nothing else. Nothing here is under ``/api/v1/public``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from sqlalchemy import select

from qsampling.context import Actor
from qsampling.core.credit_rules import CLASS_LABELS, KIND_LABELS
from qsampling.core.list_rules import BASIS_ABNORMAL, abnormal_escalate_on
from qsampling.credit import feeds, lists, penalties, service
from qsampling.credit.schemas import (
    AbnormalIn,
    AbnormalOut,
    AbnormalPage,
    ClassHistoryOut,
    CreditOut,
    EventContribution,
    FeedEntryOut,
    FeedOut,
    IncentiveOut,
    IncentivePage,
    ListStateOut,
    MeasureSchema,
    PenaltyCreated,
    PenaltyIn,
    PenaltyOut,
    PenaltyPage,
    PolicyOut,
    PolicyPublish,
    RemovalApplicationIn,
    RemovalDecisionIn,
    RepairApplicationIn,
    RepairDecisionIn,
    SeriousDecisionIn,
    SeriousOut,
    SeriousPage,
    SeriousProposalIn,
)
from qsampling.deps import Session, require
from qsampling.models.credit import AbnormalListEntry, SeriousListEntry
from qsampling.models.directory import Enterprise
from qsampling.responses import errors_for, split_page

EntryId = Annotated[int, Path(ge=1, le=2**63 - 1, description="List entry id")]

router = APIRouter(tags=["credit 信用监管"])

Reader = Annotated[Actor, Depends(require("admin", "supervisor", "analyst"))]
Decider = Annotated[Actor, Depends(require("admin", "supervisor"))]
PolicyAdmin = Annotated[Actor, Depends(require("admin"))]
Partner = Annotated[Actor, Depends(require("partner", "admin"))]

Cursor = Annotated[
    int | None, Query(ge=1, le=2**63 - 1, description="next_cursor of the previous page")
]
Limit = Annotated[int, Query(ge=1, le=1000)]


# --- policies ---------------------------------------------------------------------------------


@router.get(
    "/api/v1/credit/policies",
    response_model=list[PolicyOut],
    responses=errors_for(401, 403),
    summary="Credit policy versions / 信用评价规则版本",
)
async def get_policies(session: Session, actor: Reader) -> list[PolicyOut]:
    """Every published version, oldest first; exactly one is `active`."""
    return [PolicyOut.model_validate(p) for p in await service.list_policies(session)]


@router.post(
    "/api/v1/credit/policies",
    response_model=PolicyOut,
    status_code=201,
    responses=errors_for(401, 403, 422),
    summary="Publish a new credit policy version (admin) / 发布信用评价规则新版本",
)
async def post_policy(body: PolicyPublish, session: Session, actor: PolicyAdmin) -> PolicyOut:
    """Validated as a whole: thresholds must be in order (A > B > C), the decay half-life
    positive, every event kind weighted with the right sign … every problem is listed in
    `errors` of the 422 answer (`InvalidPolicy`). The new version becomes active; scores
    keep the version that made them until the next recompute."""
    row = await service.publish_policy(
        session, body=body.policy.model_dump(), note=body.note, actor=actor
    )
    return PolicyOut.model_validate(row)


# --- the explainable class ------------------------------------------------------------------------


@router.get(
    "/api/v1/enterprises/{uscc}/credit",
    response_model=CreditOut,
    responses=errors_for(401, 403, 404),
    summary="An enterprise's credit class and why (internal) / 企业信用风险分类及依据",
)
async def get_credit(uscc: str, session: Session, actor: Reader) -> CreditOut:
    """The class in force, its score, the policy version and date that made it, and every
    ledger event with its base points, decay factor and contribution — reproduced exactly
    as when the class was computed — plus list states and the class history."""
    v = await service.credit_view(session, uscc=uscc.strip().upper())
    a = v.assessment
    by_id = {c.event_id: c for c in a.contributions}
    events: list[EventContribution] = []
    for c in a.contributions:
        row = v.events[int(c.event_id)]
        events.append(
            EventContribution(
                event_id=row.id,
                kind=row.kind,
                kind_label=KIND_LABELS.get(row.kind, row.kind),
                severity=row.severity,
                occurred_on=row.occurred_on,
                ref=row.ref,
                counted=True,
                base_points=c.base_points,
                decay_factor=c.decay_factor,
                cap_factor=c.cap_factor,
                points=c.points,
            )
        )
    for eid in a.ignored_event_ids:
        row = v.events[int(eid)]
        if eid in by_id:  # pragma: no cover - an event is either counted or ignored
            continue
        events.append(
            EventContribution(
                event_id=row.id,
                kind=row.kind,
                kind_label=KIND_LABELS.get(row.kind, row.kind),
                severity=row.severity,
                occurred_on=row.occurred_on,
                ref=row.ref,
                counted=False,
                base_points=0.0,
                decay_factor=0.0,
                cap_factor=1.0,
                points=0.0,
            )
        )
    list_rows: list[ListStateOut] = []
    for ab in (
        await session.scalars(
            select(AbnormalListEntry)
            .where(AbnormalListEntry.uscc == v.enterprise.uscc)
            .order_by(AbnormalListEntry.id)
        )
    ).all():
        list_rows.append(
            ListStateOut(
                list_name="abnormal",
                entry_id=ab.id,
                status=ab.status,
                listed_on=ab.listed_on,
                removed_on=ab.removed_on,
                reason=ab.reason,
            )
        )
    for se in (
        await session.scalars(
            select(SeriousListEntry)
            .where(SeriousListEntry.uscc == v.enterprise.uscc)
            .order_by(SeriousListEntry.id)
        )
    ).all():
        list_rows.append(
            ListStateOut(
                list_name="serious",
                entry_id=se.id,
                status=se.status,
                listed_on=se.listed_on,
                removed_on=se.removed_on,
                reason=se.reason or se.proposal_reason,
            )
        )
    stored = v.stored
    return CreditOut(
        uscc=v.enterprise.uscc,
        name=v.enterprise.name,
        credit_class=stored.credit_class if stored else a.credit_class,  # type: ignore[arg-type]
        class_label=CLASS_LABELS[stored.credit_class if stored else a.credit_class],
        score=float(stored.score) if stored else a.score,
        score_class=stored.score_class if stored else a.score_class,  # type: ignore[arg-type]
        hard_rule=a.hard_rule,
        policy_version=v.policy.version,
        as_of=a.as_of,
        computed_at=stored.computed_at if stored else None,
        stored=stored is not None,
        stale=v.stale,
        on_serious_list=v.on_serious_list,
        on_abnormal_list=v.on_abnormal_list,
        base_score=a.base_score,
        raw_score=a.raw_score,
        explanation=a.explanation,
        events=events,
        lists=list_rows,
        history=[ClassHistoryOut.model_validate(h) for h in v.history],
    )


# --- penalties ----------------------------------------------------------------------------------


@router.post(
    "/api/v1/penalties",
    response_model=PenaltyCreated,
    status_code=201,
    responses=errors_for(401, 403, 404, 409, 422),
    summary="Record an administrative penalty / 登记行政处罚决定",
)
async def post_penalty(body: PenaltyIn, session: Session, actor: Decider) -> PenaltyCreated:
    """Enters the credit ledger (points by severity), rescoring the enterprise at once; a
    serious product-quality penalty proposes a serious-list entry for a supervisor to
    decide. A decision number is recorded once (409 `DuplicateDecision`)."""
    rec = await penalties.create_penalty(
        session,
        uscc=body.uscc,
        decision_number=body.decision_number,
        decision_date=body.decision_date,
        legal_basis=body.legal_basis,
        severity=body.severity,
        amount=body.amount,
        domain=body.domain,
        authority=body.authority,
        summary=body.summary,
        actor=actor,
        today=service.china_today(),
    )
    out = PenaltyOut.model_validate(rec.penalty)
    return PenaltyCreated(
        **out.model_dump(),
        credit_event_id=rec.credit_event_id,
        serious_proposal_ids=[p.id for p in rec.proposals],
        credit_class=rec.change.credit_class,  # type: ignore[arg-type]
    )


@router.get(
    "/api/v1/penalties",
    response_model=PenaltyPage,
    responses=errors_for(401, 403, 422),
    summary="Administrative penalties / 行政处罚决定",
)
async def get_penalties(
    session: Session,
    actor: Reader,
    uscc: str | None = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> PenaltyPage:
    rows = await penalties.list_penalties(session, uscc=uscc, after_id=cursor, limit=limit + 1)
    page, nxt = split_page(rows, limit, lambda r: r.id)
    return PenaltyPage(items=[PenaltyOut.model_validate(r) for r in page], next_cursor=nxt)


# --- abnormal-operations list ---------------------------------------------------------------------


async def _entries_page(
    session: Any,
    model: type[AbnormalListEntry] | type[SeriousListEntry],
    *,
    status: str | None,
    uscc: str | None,
    cursor: int | None,
    limit: int,
) -> tuple[list[Any], int | None]:
    """One page of a list's entries with the enterprise's name, by id (keyset paging)."""
    q = (
        select(model, Enterprise.name)
        .join(Enterprise, Enterprise.uscc == model.uscc)
        .order_by(model.id)
        .limit(limit + 1)
    )
    if status:
        q = q.where(model.status == status)
    if uscc:
        q = q.where(model.uscc == uscc)
    if cursor:
        q = q.where(model.id > cursor)
    rows = (await session.execute(q)).all()
    return split_page(rows, limit, lambda r: r[0].id)


def _abnormal_out(e: AbnormalListEntry, name: str | None = None) -> AbnormalOut:
    out = AbnormalOut.model_validate(e)
    out.enterprise_name = name
    out.escalate_on = abnormal_escalate_on(e.listed_on)
    return out


@router.get(
    "/api/v1/credit/abnormal-list",
    response_model=AbnormalPage,
    responses=errors_for(401, 403, 422),
    summary="Abnormal-operations list / 经营异常名录",
)
async def get_abnormal_list(
    session: Session,
    actor: Reader,
    status: Literal["listed", "removal_applied", "escalated", "removed"] | None = None,
    uscc: str | None = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> AbnormalPage:
    """Filter `status=removal_applied` for the applications waiting for verification."""
    rows, nxt = await _entries_page(
        session, AbnormalListEntry, status=status, uscc=uscc, cursor=cursor, limit=limit
    )
    return AbnormalPage(items=[_abnormal_out(e, n) for e, n in rows], next_cursor=nxt)


@router.post(
    "/api/v1/credit/abnormal-list",
    response_model=AbnormalOut,
    status_code=201,
    responses=errors_for(401, 403, 404, 409, 422),
    summary="List an enterprise (decision record) / 列入经营异常名录",
)
async def post_abnormal(body: AbnormalIn, session: Session, actor: Decider) -> AbnormalOut:
    """Result category 6 lists automatically; this records a listing decided by hand
    (e.g. the annual report was not published). One open entry per enterprise and cause."""
    today = service.china_today()
    e = await lists.list_abnormal(
        session,
        uscc=body.uscc,
        cause=body.cause,
        listed_on=body.listed_on or today,
        reason=body.reason,
        basis=body.basis or BASIS_ABNORMAL,
        authority=body.authority,
        decision_number=body.decision_number,
        actor=actor,
        today=today,
    )
    assert e is not None
    return _abnormal_out(e)


@router.get(
    "/api/v1/credit/abnormal-list/{entry_id}",
    response_model=AbnormalOut,
    responses=errors_for(401, 403, 404, 422),
    summary="One abnormal-list entry / 经营异常名录记录",
)
async def get_abnormal_entry(entry_id: EntryId, session: Session, actor: Reader) -> AbnormalOut:
    return _abnormal_out(await lists.get_abnormal(session, entry_id))


@router.post(
    "/api/v1/credit/abnormal-list/{entry_id}/removal-application",
    response_model=AbnormalOut,
    responses=errors_for(401, 403, 404, 409, 422),
    summary="Record the enterprise's application for removal / 登记移出申请",
)
async def post_abnormal_application(
    entry_id: EntryId, body: RemovalApplicationIn, session: Session, actor: Decider
) -> AbnormalOut:
    today = service.china_today()
    e = await lists.apply_abnormal_removal(
        session,
        entry_id=entry_id,
        applied_on=body.applied_on or today,
        statement=body.statement,
        actor=actor,
        today=today,
    )
    return _abnormal_out(e)


@router.post(
    "/api/v1/credit/abnormal-list/{entry_id}/removal-decision",
    response_model=AbnormalOut,
    responses=errors_for(401, 403, 404, 409, 422),
    summary="Verify a removal application / 审核移出申请",
)
async def post_abnormal_decision(
    entry_id: EntryId, body: RemovalDecisionIn, session: Session, actor: Decider
) -> AbnormalOut:
    """`approve: true` removes the entry (with reason, basis, authority and date);
    `false` keeps it listed and records why."""
    today = service.china_today()
    e = await lists.decide_abnormal_removal(
        session,
        entry_id=entry_id,
        approve=body.approve,
        decided_on=body.decided_on or today,
        reason=body.reason,
        basis=body.basis,
        authority=body.authority,
        actor=actor,
        today=today,
    )
    return _abnormal_out(e)


# --- serious-dishonesty list ---------------------------------------------------------------------


def _serious_out(e: SeriousListEntry, name: str | None = None) -> SeriousOut:
    out = SeriousOut.model_validate(e)
    out.enterprise_name = name
    return out


@router.get(
    "/api/v1/credit/serious-list",
    response_model=SeriousPage,
    responses=errors_for(401, 403, 422),
    summary="Serious-dishonesty list and proposals / 严重违法失信名单及列入建议",
)
async def get_serious_list(
    session: Session,
    actor: Reader,
    status: Literal[
        "proposed", "listed", "rejected", "repair_applied", "removed_repaired", "removed_expired"
    ]
    | None = None,
    uscc: str | None = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> SeriousPage:
    """`status=proposed`: the proposals waiting for a decision; `repair_applied`: the
    credit-repair applications waiting for a decision."""
    rows, nxt = await _entries_page(
        session, SeriousListEntry, status=status, uscc=uscc, cursor=cursor, limit=limit
    )
    return SeriousPage(items=[_serious_out(e, n) for e, n in rows], next_cursor=nxt)


@router.post(
    "/api/v1/credit/serious-list",
    response_model=SeriousOut,
    status_code=201,
    responses=errors_for(401, 403, 404, 422),
    summary="Propose a listing by hand / 人工提出列入建议",
)
async def post_serious_proposal(
    body: SeriousProposalIn, session: Session, actor: Decider
) -> SeriousOut:
    """For serious violations the rules do not detect; decided like any other proposal."""
    today = service.china_today()
    e = await lists.propose_manual(
        session,
        uscc=body.uscc,
        reason=body.reason,
        basis=body.basis,
        proposed_on=body.proposed_on or today,
        actor=actor,
        today=today,
    )
    return _serious_out(e)


@router.get(
    "/api/v1/credit/serious-list/{entry_id}",
    response_model=SeriousOut,
    responses=errors_for(401, 403, 404, 422),
    summary="One serious-list entry / 严重违法失信名单记录",
)
async def get_serious_entry(entry_id: EntryId, session: Session, actor: Reader) -> SeriousOut:
    return _serious_out(await lists.get_serious(session, entry_id))


@router.post(
    "/api/v1/credit/serious-list/{entry_id}/decision",
    response_model=SeriousOut,
    responses=errors_for(401, 403, 404, 409, 422),
    summary="Confirm or reject a proposal / 决定是否列入",
)
async def post_serious_decision(
    entry_id: EntryId, body: SeriousDecisionIn, session: Session, actor: Decider
) -> SeriousOut:
    """`confirm` lists the enterprise for 3 years from the decision date (legal basis,
    reason and authority required); `reject` needs a reason. Joint punishment starts with
    the listing."""
    today = service.china_today()
    e = await lists.decide_serious(
        session,
        entry_id=entry_id,
        action=body.action,
        decided_on=body.decided_on or today,
        actor=actor,
        today=today,
        basis=body.basis,
        reason=body.reason,
        authority=body.authority,
        decision_number=body.decision_number,
    )
    return _serious_out(e)


@router.post(
    "/api/v1/credit/serious-list/{entry_id}/repair-application",
    response_model=SeriousOut,
    responses=errors_for(401, 403, 404, 409, 422),
    summary="Record an application for credit repair / 登记信用修复申请",
)
async def post_repair_application(
    entry_id: EntryId, body: RepairApplicationIn, session: Session, actor: Decider
) -> SeriousOut:
    """Possible from one year after listing: earlier gets 409 `RepairTooEarly` naming the
    first possible date."""
    today = service.china_today()
    e = await lists.decide_serious(
        session,
        entry_id=entry_id,
        action="apply_repair",
        decided_on=body.applied_on or today,
        actor=actor,
        today=today,
        statement=body.statement,
    )
    return _serious_out(e)


@router.post(
    "/api/v1/credit/serious-list/{entry_id}/repair-decision",
    response_model=SeriousOut,
    responses=errors_for(401, 403, 404, 409, 422),
    summary="Grant or refuse credit repair / 决定是否准予信用修复",
)
async def post_repair_decision(
    entry_id: EntryId, body: RepairDecisionIn, session: Session, actor: Decider
) -> SeriousOut:
    """`grant: true` removes the entry now (early removal, joint punishment ends today);
    `false` keeps it listed with the reason."""
    today = service.china_today()
    e = await lists.decide_serious(
        session,
        entry_id=entry_id,
        action="grant_repair" if body.grant else "refuse_repair",
        decided_on=body.decided_on or today,
        actor=actor,
        today=today,
        basis=body.basis,
        reason=body.reason,
        authority=body.authority,
    )
    return _serious_out(e)


# --- feeds ---------------------------------------------------------------------------------------

_CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "CSV, UTF-8 with BOM"}
}


def _feed_out(feed: feeds.Feed) -> FeedOut:
    return FeedOut(
        generated_at=feed.generated_at,
        changed_since=feed.changed_since,
        next_changed_since=feed.next_changed_since,
        next_cursor=feed.next_cursor,
        entries=[
            FeedEntryOut(
                **{k: v for k, v in e.__dict__.items() if k != "measures"},
                measures=[MeasureSchema(**m.__dict__) for m in e.measures],
            )
            for e in feed.entries
        ],
    )


def _csv(feed: feeds.Feed) -> Response:
    return Response(
        content=feeds.feed_csv(feed),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="joint-punishment.csv"'},
    )


ChangedSince = Annotated[
    datetime | None,
    Query(
        description="ISO 8601 time with zone (e.g. 2026-11-22T08:00:00%2B08:00 or …Z): "
        "entries changed since then, removals included / 自该时间起变更的记录"
    ),
]


@router.get(
    "/api/v1/feeds/joint-punishment",
    response_model=FeedOut,
    responses={**errors_for(401, 403, 422), **_CSV_RESPONSE},
    summary="Joint-punishment list for partner departments / 失信联合惩戒对象名单",
)
async def get_joint_punishment(
    session: Session,
    actor: Partner,
    changed_since: ChangedSince = None,
    format: Annotated[Literal["json", "csv"], Query(description="json (default) or csv")] = "json",
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 5000,
) -> FeedOut | Response:
    """Every serious-list entry in force with its joint-punishment measures (government
    procurement, bidding, financing, honours, market access …) and their dates. With
    `changed_since`: every entry listed, repaired or expired since then — mirror the list
    by polling with the previous answer's `next_changed_since`."""
    feed = await feeds.joint_punishment_feed(
        session, changed_since=changed_since, after_id=cursor, limit=limit
    )
    return _csv(feed) if format == "csv" else _feed_out(feed)


@router.get(
    "/api/v1/feeds/joint-punishment.csv",
    response_class=Response,
    responses={**errors_for(401, 403, 422), **_CSV_RESPONSE},
    summary="Joint-punishment list as CSV / 失信联合惩戒对象名单（CSV）",
)
async def get_joint_punishment_csv(
    session: Session,
    actor: Partner,
    changed_since: ChangedSince = None,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 5000,
) -> Response:
    feed = await feeds.joint_punishment_feed(
        session, changed_since=changed_since, after_id=cursor, limit=limit
    )
    return _csv(feed)


# --- incentives ----------------------------------------------------------------------------------


@router.get(
    "/api/v1/credit/incentives",
    response_model=IncentivePage,
    responses=errors_for(401, 403, 422),
    summary="Incentive list: class A with a clean record / 守信激励名单",
)
async def get_incentives(
    session: Session,
    actor: Reader,
    region_prefix: Annotated[str | None, Query(pattern=r"^[0-9]{2,6}$")] = None,
    cursor: Annotated[str | None, Query(max_length=18, description="last uscc received")] = None,
    limit: Limit = 100,
    as_of: Annotated[
        date | None,
        Query(
            ge=date(1990, 1, 1),
            le=date(2199, 12, 31),
            description="default today (1990-01-01 … 2199-12-31) / 统计日期，默认今天",
        ),
    ] = None,
) -> IncentivePage:
    """Class A enterprises in operation with no negative ledger event (failure, refusal,
    penalty, list entry …) in the last 730 days. Internal: it reveals the class."""
    today = as_of or service.china_today()
    rows = await feeds.incentive_list(
        session, today=today, region_prefix=region_prefix, after_uscc=cursor, limit=limit + 1
    )
    page, nxt = split_page(rows, limit, lambda r: r.uscc)
    return IncentivePage(
        as_of=today,
        clean_days=730,
        items=[IncentiveOut(**r.__dict__) for r in page],
        next_cursor=nxt,
    )
