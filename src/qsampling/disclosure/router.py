"""一公开 HTTP: the open-data API (no token, rate-limited), exports, the signing key, and
the supervisors' publication endpoints. The portal's HTML pages are in ``portal.py``."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from qsampling.context import Actor
from qsampling.deps import Session, SettingsDep, require
from qsampling.disclosure import exports, service
from qsampling.disclosure.manifest import public_key_info
from qsampling.disclosure.portal import router as portal_router
from qsampling.disclosure.ratelimit import check as rate_check
from qsampling.disclosure.schemas import (
    EnterpriseDetail,
    EnterpriseSummary,
    ListPage,
    OverdueReport,
    PublicResult,
    PublishReport,
    ResultPage,
    SigningKey,
)
from qsampling.responses import errors_for
from qsampling.stats.schemas import PassRatesOut


async def public_rate_limit(request: Request) -> None:
    """Count the request against its address (429 + Retry-After over the limit)."""
    rate_check(
        request.scope,  # type: ignore[arg-type]
        request.app.state,
        request.app.state.settings.public_rate_limit_per_minute,
    )


public = APIRouter(
    prefix="/api/v1/public",
    tags=["public 公开数据"],
    dependencies=[Depends(public_rate_limit)],
)
staff = APIRouter(prefix="/api/v1/disclosure", tags=["disclosure 信息公示"])

router = APIRouter()

CACHE_CONTROL = "public, max-age=60"


# --- conditional JSON ----------------------------------------------------------------------------


def _http_date(dt: datetime) -> str:
    return format_datetime(dt.astimezone(UTC).replace(microsecond=0), usegmt=True)


def conditional(request: Request, model: BaseModel, last_modified: datetime | None) -> Response:
    """200 with ``ETag`` (SHA-256 of the body) and ``Last-Modified``, or 304 when the
    client's ``If-None-Match`` / ``If-Modified-Since`` still holds."""
    body = model.model_dump_json().encode("utf-8")
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
    if last_modified is not None:
        headers["Last-Modified"] = _http_date(last_modified)
    inm = request.headers.get("if-none-match")
    if inm is not None:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        if etag in tags or "*" in tags:
            return Response(status_code=304, headers=headers)
    elif last_modified is not None and (ims := request.headers.get("if-modified-since")):
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            since = None
        if since is not None and since.tzinfo is not None:
            if last_modified.replace(microsecond=0) <= since:
                return Response(status_code=304, headers=headers)
    return Response(content=body, media_type="application/json", headers=headers)


CONDITIONAL_DOC = (
    "\n\nResponses carry `ETag` and `Last-Modified`; send `If-None-Match` or "
    "`If-Modified-Since` to get `304 Not Modified` when nothing changed. 支持条件请求。"
)

# --- common query parameters ---------------------------------------------------------------------

Region = Annotated[
    str | None,
    Query(
        description="Region-code prefix: 2 (province), 4 (city) or 6 digits / 行政区划代码前缀",
        examples=["3501"],
    ),
]
CategoryQ = Annotated[
    str | None,
    Query(
        description="Product category code; includes its subcategories / 产品类别", examples=["03"]
    ),
]
DateFrom = Annotated[
    date | None, Query(alias="from", description="Inspected on or after / 检查日期起")
]
DateTo = Annotated[
    date | None, Query(alias="to", description="Inspected on or before / 检查日期止")
]
ResultCodes = Annotated[
    list[str] | None,
    Query(
        alias="result_code",
        description="Result category code(s), repeatable (any of) / 检查结果代码",
    ),
]
ChangedSince = Annotated[
    datetime | None,
    Query(
        description="Only rows changed after this time (ISO 8601); the page is then ordered "
        "by change time, oldest first, for incremental mirrors / 增量同步",
    ),
]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page / 游标")]
Limit = Annotated[
    int, Query(ge=1, le=service.MAX_LIMIT, description="Page size (max 1000) / 每页条数")
]


# --- results -------------------------------------------------------------------------------------


@public.get(
    "/results",
    response_model=ResultPage,
    responses=errors_for(422, 429),
    summary="Published inspection results / 抽查结果公示",
)
async def public_results(
    request: Request,
    session: Session,
    region: Region = None,
    category: CategoryQ = None,
    date_from: DateFrom = None,
    date_to: DateTo = None,
    result_code: ResultCodes = None,
    conclusion: Annotated[
        Literal["pass", "fail", "not_tested"] | None,
        Query(description="pass (未发现不合格) / fail (不合格) / not_tested (未检验)"),
    ] = None,
    check_item: Annotated[str | None, Query(max_length=32)] = None,
    uscc: Annotated[str | None, Query(max_length=18)] = None,
    changed_since: ChangedSince = None,
    cursor: Cursor = None,
    limit: Limit = service.DEFAULT_LIMIT,
) -> Response:
    """Final results, public from the day they became final (and never later than 20
    working days after the inspection ended). Newest first; with `changed_since`, oldest
    change first. Only final results are public; the credit class never is."""
    page = await service.list_results(
        session,
        filters=service.ResultFilters(
            region=region,
            category=category,
            date_from=date_from,
            date_to=date_to,
            result_codes=tuple(result_code or ()),
            conclusion=conclusion,
            check_item=check_item,
            uscc=uscc.upper() if uscc else None,
            changed_since=changed_since,
        ),
        cursor=cursor,
        limit=limit,
    )
    model = ResultPage.model_validate(
        {"items": page.items, "next_cursor": page.next_cursor, "limit": limit}
    )
    return conditional(request, model, page.last_modified)


public_results.__doc__ = (public_results.__doc__ or "") + CONDITIONAL_DOC


@public.get(
    "/results/{publication_id}",
    response_model=PublicResult,
    responses=errors_for(404, 422, 429),
    summary="One published result / 单条抽查结果",
)
async def public_result(
    request: Request,
    session: Session,
    publication_id: Annotated[int, Path(ge=1, le=2**62)],
) -> Response:
    item = await service.get_result(session, publication_id=publication_id)
    model = PublicResult.model_validate(item)
    return conditional(request, model, item["updated_at"])


# --- lists ---------------------------------------------------------------------------------------


@public.get(
    "/lists/{list_name}",
    response_model=ListPage,
    responses=errors_for(404, 422, 429),
    summary="Abnormal / serious / joint-punishment list / 经营异常名录、严重违法失信名单、联合惩戒",
)
async def public_list(
    request: Request,
    session: Session,
    list_name: Annotated[
        str, Path(description="abnormal | serious | joint-punishment", max_length=32)
    ],
    region: Region = None,
    status: Annotated[
        Literal["listed", "removed"] | None,
        Query(description="listed (in force) or removed; both when omitted"),
    ] = None,
    uscc: Annotated[str | None, Query(max_length=18)] = None,
    changed_since: ChangedSince = None,
    cursor: Cursor = None,
    limit: Limit = service.DEFAULT_LIMIT,
) -> Response:
    """Entries with reason, legal basis, deciding authority and dates. Removed entries
    stay with their removal date so that mirrors see removals. Never the credit class."""
    page = await service.list_entries(
        session,
        list_name=list_name,
        region=region,
        status=status,
        uscc=uscc.upper() if uscc else None,
        changed_since=changed_since,
        cursor=cursor,
        limit=limit,
    )
    model = ListPage.model_validate(
        {
            "list_name": list_name,
            "list_title": service.LIST_TITLES_ZH[list_name],
            "items": page.items,
            "next_cursor": page.next_cursor,
            "limit": limit,
        }
    )
    return conditional(request, model, page.last_modified)


# --- statistics ----------------------------------------------------------------------------------


@public.get(
    "/stats",
    response_model=PassRatesOut,
    responses=errors_for(422, 429),
    summary="Pass rates with intervals / 抽检合格率及置信区间",
)
async def public_stats(
    request: Request,
    session: Session,
    group_by: Annotated[
        list[str] | None,
        Query(
            max_length=4,
            description="category[:level] · region[:province|city|county] · "
            "period[:month|quarter|year] · size · channel; repeatable or comma-separated "
            "(default category:1) / 分组维度",
        ),
    ] = None,
    region: Region = None,
    category: CategoryQ = None,
    date_from: DateFrom = None,
    date_to: DateTo = None,
    check_item: Annotated[str | None, Query(max_length=32)] = None,
    method: Annotated[
        Literal["wilson", "wilson_cc", "clopper_pearson", "jeffreys", "agresti_coull"],
        Query(description="Interval method (default Wilson) / 区间方法"),
    ] = "wilson",
    confidence: Annotated[float, Query(gt=0.5, lt=1)] = 0.95,
    weighted: Annotated[
        bool, Query(description="Add the design-weighted population estimate (default)")
    ] = True,
    target: Annotated[
        float | None, Query(gt=0, lt=1, description="Programme target, e.g. 0.93 / 目标值")
    ] = None,
) -> Response:
    """Batches tested, passed and failed per group with the pass rate and its interval,
    the design-weighted estimate for the population (sampling over-represents high-risk
    enterprises, so the raw rate of the tested batches is not the market's rate), and the
    verdict against a target. Only final results; aggregate counts only.
    按维度公开抽检批次、未发现不合格批次、比率及置信区间、加权总体估计与目标比较。"""
    res = await service.public_stats(
        session,
        group_by=group_by or ["category:1"],
        region=region,
        category=category,
        date_from=date_from,
        date_to=date_to,
        check_item=check_item,
        method=method,
        confidence=confidence,
        weighted=weighted,
        target=target,
    )
    return conditional(request, res, None)


# --- enterprises ---------------------------------------------------------------------------------


@public.get(
    "/enterprises",
    response_model=list[EnterpriseSummary],
    responses=errors_for(422, 429),
    summary="Search enterprises by name or USCC / 企业查询",
)
async def public_enterprise_search(
    request: Request,
    session: Session,
    q: Annotated[str, Query(min_length=1, max_length=100, description="Name part or USCC")],
    region: Region = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    rows = await service.search_enterprises(session, q=q, region=region, limit=limit)
    from pydantic import TypeAdapter

    body = TypeAdapter(list[EnterpriseSummary]).dump_json(
        [EnterpriseSummary.model_validate(r) for r in rows]
    )
    return Response(
        content=body, media_type="application/json", headers={"Cache-Control": CACHE_CONTROL}
    )


@public.get(
    "/enterprises/{uscc}",
    response_model=EnterpriseDetail,
    responses=errors_for(404, 422, 429),
    summary="An enterprise: registry data, published results, list entries / 企业公示信息",
)
async def public_enterprise(
    request: Request,
    session: Session,
    uscc: Annotated[str, Path(min_length=1, max_length=32)],
) -> Response:
    """Registry data without private fields (a sole trader's address is never shown), its
    published results and its list entries. The credit class is internal and not here."""
    data = await service.get_enterprise(session, uscc=uscc)
    model = EnterpriseDetail.model_validate(data)
    return conditional(request, model, data["updated_at"])


# --- signing key and exports ---------------------------------------------------------------------


@public.get(
    "/signing-key",
    response_model=SigningKey,
    responses=errors_for(429),
    summary="Public key that signs export manifests / 导出清单签名公钥",
)
async def signing_key(request: Request, settings: SettingsDep) -> Response:
    info = public_key_info(settings.signing_seed)
    model = SigningKey.model_validate(
        {
            **info,
            "how_to_verify": "Download /api/v1/public/export/<dataset>.<format>.zip, then run "
            "`qsampling verify-export bundle.zip --public-key <public_key_hex>`; or verify the "
            "Ed25519 signature in manifest.sig (hex) over the bytes of manifest.json and "
            "compare the SHA-256 of each file. 下载导出包后用公钥验证签名与文件哈希。",
        }
    )
    return conditional(request, model, None)


Dataset = Annotated[
    Literal["results", "lists", "draws", "stats"],
    Path(description="results | lists | draws | stats"),
]
Fmt = Annotated[Literal["csv", "json", "xlsx"], Path(description="csv | json | xlsx")]


def _export_params(
    region: str | None,
    category: str | None,
    date_from: date | None,
    date_to: date | None,
    result_code: list[str] | None,
    conclusion: str | None,
    changed_since: datetime | None,
    list_name: str | None,
) -> exports.ExportParams:
    return exports.ExportParams(
        region=region,
        category=category,
        date_from=date_from,
        date_to=date_to,
        result_codes=tuple(result_code or ()),
        conclusion=conclusion,
        changed_since=changed_since,
        list_name=list_name,
    )


async def _streamed(request: Request, make: Any) -> AsyncIterator[bytes]:
    """The export runs in a session of its own: the request's session is committed and
    closed before a streamed body is sent."""
    async with request.app.state.sessionmaker() as session:
        async for chunk in make(session):
            yield chunk


EXPORT_DOC = (
    "Streamed with constant memory. CSV is UTF-8 with BOM (Excel opens it directly); "
    "list-valued fields are joined with `;` in CSV/XLSX. Row shapes: `api/schemas/<dataset>.json`."
)


@public.get(
    "/export/{dataset}.{fmt}.zip",
    responses={
        200: {"content": {"application/zip": {}}, "description": "Zip bundle"},
        **errors_for(422, 429),
    },
    response_class=StreamingResponse,
    summary="Signed export bundle: data + manifest.json + manifest.sig / 带签名清单的导出包",
)
async def export_bundle(
    request: Request,
    settings: SettingsDep,
    dataset: Dataset,
    fmt: Fmt,
    region: Region = None,
    category: CategoryQ = None,
    date_from: DateFrom = None,
    date_to: DateTo = None,
    result_code: ResultCodes = None,
    conclusion: Annotated[Literal["pass", "fail", "not_tested"] | None, Query()] = None,
    changed_since: ChangedSince = None,
    list_name: Annotated[
        Literal["abnormal", "serious", "joint-punishment"] | None,
        Query(alias="list", description="lists dataset: one list only"),
    ] = None,
) -> StreamingResponse:
    """The verifiable form of an export: a zip holding `<dataset>.<fmt>`, `manifest.json`
    (dataset, filters, row count, generated time, SHA-256 and size of the data file) and
    `manifest.sig` (Ed25519 over manifest.json; key at `/api/v1/public/signing-key`).
    Check it with `qsampling verify-export bundle.zip`."""
    params = _export_params(
        region, category, date_from, date_to, result_code, conclusion, changed_since, list_name
    )
    params.for_dataset(dataset)
    seed = settings.signing_seed
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return StreamingResponse(
        _streamed(
            request,
            lambda s: exports.stream_bundle(s, dataset=dataset, fmt=fmt, params=params, seed=seed),
        ),
        media_type=exports.MEDIA_TYPES["zip"],
        headers={
            "Content-Disposition": f'attachment; filename="{dataset}-{stamp}.{fmt}.zip"',
            "Cache-Control": "no-store",
        },
    )


@public.get(
    "/export/{dataset}.{fmt}",
    responses={
        200: {
            "content": {
                "text/csv": {},
                "application/json": {},
                exports.MEDIA_TYPES["xlsx"]: {},
            },
            "description": "The data file",
        },
        **errors_for(422, 429),
    },
    response_class=StreamingResponse,
    summary="Export a dataset as CSV, JSON or XLSX / 数据导出",
)
async def export_file(
    request: Request,
    dataset: Dataset,
    fmt: Fmt,
    region: Region = None,
    category: CategoryQ = None,
    date_from: DateFrom = None,
    date_to: DateTo = None,
    result_code: ResultCodes = None,
    conclusion: Annotated[Literal["pass", "fail", "not_tested"] | None, Query()] = None,
    changed_since: ChangedSince = None,
    list_name: Annotated[
        Literal["abnormal", "serious", "joint-punishment"] | None,
        Query(alias="list", description="lists dataset: one list only"),
    ] = None,
) -> StreamingResponse:
    params = _export_params(
        region, category, date_from, date_to, result_code, conclusion, changed_since, list_name
    )
    params.for_dataset(dataset)
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return StreamingResponse(
        _streamed(
            request,
            lambda s: exports.stream_export(
                s, dataset=dataset, fmt=fmt, params=params, counter=exports.Counter()
            ),
        ),
        media_type=exports.MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{dataset}-{stamp}.{fmt}"',
            "Cache-Control": "no-store",
        },
    )


export_file.__doc__ = EXPORT_DOC + " For a signed manifest use the `.zip` form of the same path."


# --- supervisors ---------------------------------------------------------------------------------


@staff.get(
    "/overdue",
    response_model=OverdueReport,
    responses=errors_for(401, 403, 422),
    summary="Results past (or near) their publication due date / 逾期未公示报告",
)
async def overdue(
    session: Session,
    actor: Annotated[Actor, Depends(require("admin", "supervisor"))],
    region: Region = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    on: Annotated[
        date | None, Query(description="Report as of this day (default: today in China)")
    ] = None,
) -> OverdueReport:
    """Every live result not yet public whose due date (20 working days after the
    inspection ended, statutory holidays counted) has passed or falls within the next 5
    working days: final-but-unpublished ones, and those still waiting for notification,
    objection or retest."""
    data = await service.overdue_report(
        session, today=on or service.today_in_china(), region=region, limit=limit
    )
    return OverdueReport.model_validate(data)


@staff.post(
    "/publish",
    response_model=PublishReport,
    responses=errors_for(401, 403),
    summary="Publish final results now / 立即公示已生效结果",
)
async def publish_now(
    session: Session,
    actor: Annotated[Actor, Depends(require("admin", "supervisor"))],
) -> PublishReport:
    """Runs the publication step that `qsampling jobs run` also runs: every result that
    became final since the last run is published (idempotent)."""
    now = datetime.now(UTC)
    n = await service.register_final_results(session, now=now, actor=actor)
    d = await service.publish_due(session, now=now, actor=actor)
    return PublishReport(published=n, published_due=d)


router.include_router(public)
router.include_router(staff)
router.include_router(portal_router)
