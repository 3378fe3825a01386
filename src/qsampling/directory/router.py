"""HTTP API of the directory (一单两库): enterprises, inspectors, check items, reference data.

Reads: any signed-in staff role. Writes: supervisor or admin. Lists page with an opaque
`cursor` (`{"items": [...], "next_cursor": ...}`); `limit` is at most 500.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Path, Query, UploadFile
from fastapi.responses import JSONResponse, Response

from qsampling.deps import AnyStaff, Session, Writer
from qsampling.directory import importer, service
from qsampling.directory.schemas import (
    CategoryCreate,
    CategoryOut,
    CategoryPage,
    CategoryUpdate,
    Channel,
    CheckItemCreate,
    CheckItemOut,
    CheckItemPage,
    CheckItemUpdate,
    ConflictCreate,
    ConflictOut,
    CreditClass,
    EnterpriseCreate,
    EnterpriseOut,
    EnterprisePage,
    EnterpriseUpdate,
    EntityType,
    ImportReportOut,
    InspectorCreate,
    InspectorOut,
    InspectorPage,
    InspectorUpdate,
    Kind,
    RegionCreate,
    RegionLevel,
    RegionOut,
    RegionPage,
    RegionUpdate,
    RejectedRow,
    Size,
    Status,
    Text,
    UnitCreate,
    UnitOut,
    UnitPage,
    UnitUpdate,
)
from qsampling.responses import error_body, errors_for

router = APIRouter(prefix="/api/v1")

Limit = Annotated[
    int,
    Query(ge=1, le=service.MAX_LIMIT, description=f"Page size, 1–{service.MAX_LIMIT}. 每页条数。"),
]
Cursor = Annotated[
    Text | None,
    Query(max_length=512, description="`next_cursor` of the previous page. 翻页游标。"),
]
RegionFilter = Annotated[
    Text | None,
    Query(
        max_length=6,
        description="GB/T 2260 prefix: 35 (province), 3501 (city) or a 6-digit code; "
        "350000 / 350100 mean the whole province / city. 行政区划代码前缀。",
    ),
]
CategoryFilter = Annotated[
    Text | None,
    Query(max_length=32, description="Product category with its subtree. 产品类别（含下级）。"),
]
ImportId = Annotated[int, Path(ge=1, le=2**63 - 1)]

READ = errors_for(401, 403, 422)
READ_ONE = errors_for(401, 403, 404, 422)
WRITE = errors_for(401, 403, 409, 422)
WRITE_ONE = errors_for(401, 403, 404, 409, 422)


def _dump(model: Any) -> dict[str, Any]:
    return dict(model.model_dump(exclude_unset=True))


# --- regions ---------------------------------------------------------------------------------


@router.get(
    "/regions",
    response_model=RegionPage,
    responses=READ,
    tags=["reference 参考数据"],
    summary="List region codes (GB/T 2260) / 行政区划代码",
)
async def list_regions(
    actor: AnyStaff,
    session: Session,
    prefix: RegionFilter = None,
    level: RegionLevel | None = None,
    parent_code: Annotated[str | None, Query(pattern=r"^[0-9]{6}$")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> RegionPage:
    rows, nxt = await service.list_regions(
        session, prefix=prefix, level=level, parent_code=parent_code, limit=limit, cursor=cursor
    )
    return RegionPage(
        items=[RegionOut.model_validate(r, from_attributes=True) for r in rows], next_cursor=nxt
    )


@router.get(
    "/regions/{code}",
    response_model=RegionOut,
    responses=READ_ONE,
    tags=["reference 参考数据"],
    summary="One region / 行政区划",
)
async def get_region(actor: AnyStaff, session: Session, code: str) -> RegionOut:
    return RegionOut.model_validate(
        await service.get_region(session, code=code), from_attributes=True
    )


@router.post(
    "/regions",
    response_model=RegionOut,
    status_code=201,
    responses=WRITE,
    tags=["reference 参考数据"],
    summary="Add a region code / 新增行政区划",
)
async def create_region(actor: Writer, session: Session, body: RegionCreate) -> RegionOut:
    """Level and parent follow from the code (XX0000 province, XXYY00 city, else county);
    the parent must exist."""
    row = await service.create_region(session, actor=actor, code=body.code, name=body.name)
    return RegionOut.model_validate(row, from_attributes=True)


@router.patch(
    "/regions/{code}",
    response_model=RegionOut,
    responses=WRITE_ONE,
    tags=["reference 参考数据"],
    summary="Rename a region / 修改行政区划名称",
)
async def update_region(
    actor: Writer, session: Session, code: str, body: RegionUpdate
) -> RegionOut:
    row = await service.update_region(session, actor=actor, code=code, name=body.name)
    return RegionOut.model_validate(row, from_attributes=True)


# --- categories ------------------------------------------------------------------------------


@router.get(
    "/categories",
    response_model=CategoryPage,
    responses=READ,
    tags=["reference 参考数据"],
    summary="List product categories / 产品类别",
)
async def list_categories(
    actor: AnyStaff,
    session: Session,
    parent_code: Annotated[
        Text | None, Query(max_length=32, description="Direct children of this category.")
    ] = None,
    prefix: CategoryFilter = None,
    level: Annotated[int | None, Query(ge=1, le=10)] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> CategoryPage:
    """A flat list in code order (a parent before its children); `prefix` gives a subtree."""
    rows, nxt = await service.list_categories(
        session, parent_code=parent_code, prefix=prefix, level=level, limit=limit, cursor=cursor
    )
    return CategoryPage(
        items=[CategoryOut.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=nxt,
    )


@router.get(
    "/categories/{code}",
    response_model=CategoryOut,
    responses=READ_ONE,
    tags=["reference 参考数据"],
    summary="One product category / 产品类别",
)
async def get_category(actor: AnyStaff, session: Session, code: str) -> CategoryOut:
    return CategoryOut.model_validate(
        await service.get_category(session, code=code), from_attributes=True
    )


@router.post(
    "/categories",
    response_model=CategoryOut,
    status_code=201,
    responses=WRITE,
    tags=["reference 参考数据"],
    summary="Add a product category / 新增产品类别",
)
async def create_category(actor: Writer, session: Session, body: CategoryCreate) -> CategoryOut:
    row = await service.create_category(session, actor=actor, code=body.code, name=body.name)
    return CategoryOut.model_validate(row, from_attributes=True)


@router.patch(
    "/categories/{code}",
    response_model=CategoryOut,
    responses=WRITE_ONE,
    tags=["reference 参考数据"],
    summary="Rename a product category / 修改产品类别名称",
)
async def update_category(
    actor: Writer, session: Session, code: str, body: CategoryUpdate
) -> CategoryOut:
    row = await service.update_category(session, actor=actor, code=code, name=body.name)
    return CategoryOut.model_validate(row, from_attributes=True)


# --- units -----------------------------------------------------------------------------------


@router.get(
    "/units",
    response_model=UnitPage,
    responses=READ,
    tags=["directory 名录库"],
    summary="List supervising / enforcement units / 监管执法单位",
)
async def list_units(
    actor: AnyStaff,
    session: Session,
    region: RegionFilter = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> UnitPage:
    rows, nxt = await service.list_units(session, region=region, limit=limit, cursor=cursor)
    return UnitPage(
        items=[UnitOut.model_validate(r, from_attributes=True) for r in rows], next_cursor=nxt
    )


@router.get(
    "/units/{code}",
    response_model=UnitOut,
    responses=READ_ONE,
    tags=["directory 名录库"],
    summary="One unit / 单位",
)
async def get_unit(actor: AnyStaff, session: Session, code: str) -> UnitOut:
    return UnitOut.model_validate(await service.get_unit(session, code=code), from_attributes=True)


@router.post(
    "/units",
    response_model=UnitOut,
    status_code=201,
    responses=WRITE,
    tags=["directory 名录库"],
    summary="Add a unit / 新增单位",
)
async def create_unit(actor: Writer, session: Session, body: UnitCreate) -> UnitOut:
    row = await service.create_unit(
        session, actor=actor, code=body.code, name=body.name, region_code=body.region_code
    )
    return UnitOut.model_validate(row, from_attributes=True)


@router.patch(
    "/units/{code}",
    response_model=UnitOut,
    responses=WRITE_ONE,
    tags=["directory 名录库"],
    summary="Change a unit / 修改单位",
)
async def update_unit(actor: Writer, session: Session, code: str, body: UnitUpdate) -> UnitOut:
    row = await service.update_unit(session, actor=actor, code=code, values=_dump(body))
    return UnitOut.model_validate(row, from_attributes=True)


# --- enterprises -----------------------------------------------------------------------------


@router.get(
    "/enterprises",
    response_model=EnterprisePage,
    responses=READ,
    tags=["directory 名录库"],
    summary="List / search the enterprise directory / 检查对象名录库查询",
)
async def list_enterprises(
    actor: AnyStaff,
    session: Session,
    region: RegionFilter = None,
    category: CategoryFilter = None,
    status: Annotated[list[Status], Query(description="登记状态 (repeatable)")] = [],  # noqa: B006
    credit_class: Annotated[list[CreditClass], Query(description="信用风险分类 (repeatable)")] = [],  # noqa: B006
    name: Annotated[
        Text | None,
        Query(
            min_length=1,
            max_length=100,
            description="Fragment of the name (Chinese works; 3+ characters use the trigram "
            "index). 名称关键字。",
        ),
    ] = None,
    entity_type: EntityType | None = None,
    size: Size | None = None,
    channel: Channel | None = None,
    supervising_unit: Annotated[Text | None, Query(max_length=32)] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> EnterprisePage:
    """Filters combine with AND; results in `uscc` order."""
    rows, nxt = await service.list_enterprises(
        session,
        region=region,
        category=category,
        status=status,
        credit_class=credit_class,
        name=name,
        entity_type=entity_type,
        size=size,
        channel=channel,
        supervising_unit=supervising_unit,
        limit=limit,
        cursor=cursor,
    )
    return EnterprisePage(
        items=[EnterpriseOut.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=nxt,
    )


@router.post(
    "/enterprises",
    response_model=EnterpriseOut,
    status_code=201,
    responses=WRITE,
    tags=["directory 名录库"],
    summary="Add an enterprise / 新增检查对象",
)
async def create_enterprise(
    actor: Writer, session: Session, body: EnterpriseCreate
) -> EnterpriseOut:
    """The code is trimmed, upper-cased and checked (GB 32100-2015); a new enterprise starts
    at credit class B. Names and addresses must not carry personal ID or mobile numbers."""
    row = await service.create_enterprise(session, actor=actor, values=body.model_dump())
    return EnterpriseOut.model_validate(row, from_attributes=True)


@router.post(
    "/enterprises/import",
    response_model=ImportReportOut,
    responses={
        **errors_for(401, 403, 413),
        422: {
            "description": "A file that cannot be read (`EmptyFile`, `NotATextFile`, "
            "`BadHeader`, `BadEncoding`, `BadCsv`), or strict mode found errors "
            "(`ImportRejected`, with the report under `report`) / 文件无法导入",
        },
    },
    tags=["directory 名录库"],
    summary="Bulk import enterprises from CSV or XLSX / 批量导入检查对象",
)
async def import_enterprises(
    actor: Writer,
    session: Session,
    file: Annotated[UploadFile, File(description="CSV (UTF-8, UTF-8 BOM or GB18030) or .xlsx")],
    strict: Annotated[
        bool, Query(description="Reject the whole file on any error. 严格模式：有错则整批不导入。")
    ] = False,
) -> ImportReportOut | JSONResponse:
    """Header: `uscc, name, region_code, size, channel` required; `entity_type, address,
    supervising_unit, category_codes` (separated by `;`), `status, registration_date`
    optional (Chinese headers such as 统一社会信用代码 / 名称 work too). Valid rows are upserted
    by `uscc` in one transaction; re-importing the same file changes nothing. Each rejected
    row is reported with its row number (the header is row 1), column and reason."""
    return await _import(session, actor, file, strict, kind="enterprises")


async def _import(
    session: Any, actor: Any, file: UploadFile, strict: bool, *, kind: str
) -> ImportReportOut | JSONResponse:
    fn = importer.import_enterprises if kind == "enterprises" else importer.import_inspectors
    report = await fn(
        session, f=file.file, filename=file.filename or "upload", actor=actor, strict=strict
    )
    out = await _report_out(session, report, kind=kind)
    if not report.stored:
        # returned, not raised: the report (and its rejected rows) must still be committed
        body = error_body(_rejected_error(report.rejected))
        body["report"] = out.model_dump(mode="json")
        return JSONResponse(body, status_code=422)
    return out


def _rejected_error(n: int) -> Any:
    from qsampling.errors import InvalidInput

    return InvalidInput(
        f"Strict mode: {n} row(s) have errors, so nothing was imported; the report lists "
        "them. 严格模式：存在错误行，整批未导入。",
        code="ImportRejected",
    )


async def _report_out(session: Any, report: Any, *, kind: str) -> ImportReportOut:
    rows = await importer.rejected_rows(session, import_id=report.id)
    data = {c: getattr(report, c) for c in ImportReportOut.model_fields if hasattr(report, c)}
    data["rejected_rows"] = [RejectedRow.model_validate(r, from_attributes=True) for r in rows]
    data["rejected_csv"] = (
        f"/api/v1/{kind}/imports/{report.id}/rejected.csv" if report.rejected else None
    )
    return ImportReportOut.model_validate(data)


@router.get(
    "/enterprises/imports/{import_id}",
    response_model=ImportReportOut,
    responses=READ_ONE,
    tags=["directory 名录库"],
    summary="An enterprise import's report / 导入结果",
)
async def get_enterprise_import(
    actor: Writer, session: Session, import_id: ImportId
) -> ImportReportOut:
    report = await importer.get_report(session, import_id=import_id, kind="enterprises")
    return await _report_out(session, report, kind="enterprises")


@router.get(
    "/enterprises/imports/{import_id}/rejected.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **READ_ONE},
    tags=["directory 名录库"],
    summary="Rejected rows of an enterprise import as CSV / 导入失败行下载",
)
async def enterprise_import_rejected_csv(
    actor: Writer, session: Session, import_id: ImportId
) -> Response:
    """UTF-8 with BOM (Excel opens it): `row_number, field, value, reason`."""
    return await _rejected_csv(session, import_id, kind="enterprises")


async def _rejected_csv(session: Any, import_id: int, *, kind: str) -> Response:
    await importer.get_report(session, import_id=import_id, kind=kind)
    rows = await importer.rejected_rows(session, import_id=import_id, limit=None)
    body = "\ufeff" + "".join(importer.rejected_csv_lines(rows))
    return Response(
        body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{kind}-import-{import_id}-rejected.csv"'
        },
    )


@router.get(
    "/enterprises/{uscc}",
    response_model=EnterpriseOut,
    responses=READ_ONE,
    tags=["directory 名录库"],
    summary="One enterprise / 检查对象详情",
)
async def get_enterprise(actor: AnyStaff, session: Session, uscc: str) -> EnterpriseOut:
    """The code in the path is normalised (trimmed, upper-cased) and checked: 422
    `InvalidUSCC` with the reason when it cannot be a 统一社会信用代码."""
    return EnterpriseOut.model_validate(
        await service.get_enterprise(session, uscc=uscc), from_attributes=True
    )


@router.patch(
    "/enterprises/{uscc}",
    response_model=EnterpriseOut,
    responses=WRITE_ONE,
    tags=["directory 名录库"],
    summary="Change an enterprise / 修改检查对象",
)
async def update_enterprise(
    actor: Writer, session: Session, uscc: str, body: EnterpriseUpdate
) -> EnterpriseOut:
    row = await service.update_enterprise(session, actor=actor, uscc=uscc, values=_dump(body))
    return EnterpriseOut.model_validate(row, from_attributes=True)


# --- inspectors ------------------------------------------------------------------------------


@router.get(
    "/inspectors",
    response_model=InspectorPage,
    responses=READ,
    tags=["directory 名录库"],
    summary="List the inspector directory / 执法检查人员名录库查询",
)
async def list_inspectors(
    actor: AnyStaff,
    session: Session,
    unit_code: Annotated[Text | None, Query(max_length=32)] = None,
    region: RegionFilter = None,
    qualification: Annotated[Text | None, Query(max_length=32)] = None,
    active: bool | None = None,
    name: Annotated[Text | None, Query(min_length=1, max_length=50)] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> InspectorPage:
    """`region`: inspectors whose region scope is empty or overlaps the region."""
    rows, nxt = await service.list_inspectors(
        session,
        unit_code=unit_code,
        region=region,
        qualification=qualification,
        active=active,
        name=name,
        limit=limit,
        cursor=cursor,
    )
    return InspectorPage(
        items=[InspectorOut.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=nxt,
    )


@router.post(
    "/inspectors",
    response_model=InspectorOut,
    status_code=201,
    responses=WRITE,
    tags=["directory 名录库"],
    summary="Add an inspector / 新增执法检查人员",
)
async def create_inspector(actor: Writer, session: Session, body: InspectorCreate) -> InspectorOut:
    row = await service.create_inspector(session, actor=actor, values=body.model_dump())
    return InspectorOut.model_validate(row, from_attributes=True)


@router.post(
    "/inspectors/import",
    response_model=ImportReportOut,
    responses={
        **errors_for(401, 403, 413),
        422: {"description": "File cannot be read, or strict mode found errors / 文件无法导入"},
    },
    tags=["directory 名录库"],
    summary="Bulk import inspectors from CSV or XLSX / 批量导入执法检查人员",
)
async def import_inspectors(
    actor: Writer,
    session: Session,
    file: Annotated[UploadFile, File(description="CSV (UTF-8, UTF-8 BOM or GB18030) or .xlsx")],
    strict: Annotated[bool, Query(description="Reject the whole file on any error.")] = False,
) -> ImportReportOut | JSONResponse:
    """Header: `inspector_id, name, unit_code` required; `region_scope, qualifications`
    (separated by `;`) and `active` optional. Upserted by `inspector_id`."""
    return await _import(session, actor, file, strict, kind="inspectors")


@router.get(
    "/inspectors/imports/{import_id}",
    response_model=ImportReportOut,
    responses=READ_ONE,
    tags=["directory 名录库"],
    summary="An inspector import's report / 导入结果",
)
async def get_inspector_import(
    actor: Writer, session: Session, import_id: ImportId
) -> ImportReportOut:
    report = await importer.get_report(session, import_id=import_id, kind="inspectors")
    return await _report_out(session, report, kind="inspectors")


@router.get(
    "/inspectors/imports/{import_id}/rejected.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **READ_ONE},
    tags=["directory 名录库"],
    summary="Rejected rows of an inspector import as CSV / 导入失败行下载",
)
async def inspector_import_rejected_csv(
    actor: Writer, session: Session, import_id: ImportId
) -> Response:
    return await _rejected_csv(session, import_id, kind="inspectors")


@router.get(
    "/inspectors/{inspector_id}",
    response_model=InspectorOut,
    responses=READ_ONE,
    tags=["directory 名录库"],
    summary="One inspector / 执法检查人员",
)
async def get_inspector(actor: AnyStaff, session: Session, inspector_id: str) -> InspectorOut:
    return InspectorOut.model_validate(
        await service.get_inspector(session, inspector_id=inspector_id), from_attributes=True
    )


@router.patch(
    "/inspectors/{inspector_id}",
    response_model=InspectorOut,
    responses=WRITE_ONE,
    tags=["directory 名录库"],
    summary="Change an inspector (unit, scope, qualifications, active) / 修改执法检查人员",
)
async def update_inspector(
    actor: Writer, session: Session, inspector_id: str, body: InspectorUpdate
) -> InspectorOut:
    row = await service.update_inspector(
        session, actor=actor, inspector_id=inspector_id, values=_dump(body)
    )
    return InspectorOut.model_validate(row, from_attributes=True)


@router.get(
    "/inspectors/{inspector_id}/conflicts",
    response_model=list[ConflictOut],
    responses=READ_ONE,
    tags=["directory 名录库"],
    summary="An inspector's declared conflicts of interest / 利害关系申报",
)
async def list_conflicts(actor: AnyStaff, session: Session, inspector_id: str) -> list[ConflictOut]:
    rows = await service.list_conflicts(session, inspector_id=inspector_id)
    return [ConflictOut.model_validate(r, from_attributes=True) for r in rows]


@router.post(
    "/inspectors/{inspector_id}/conflicts",
    response_model=ConflictOut,
    status_code=201,
    responses=WRITE_ONE,
    tags=["directory 名录库"],
    summary="Declare a conflict of interest / 申报利害关系（回避）",
)
async def declare_conflict(
    actor: Writer, session: Session, inspector_id: str, body: ConflictCreate
) -> ConflictOut:
    """The inspector is never drawn for this enterprise (行政处罚法 art. 43)."""
    row = await service.declare_conflict(
        session,
        actor=actor,
        inspector_id=inspector_id,
        uscc=body.uscc,
        reason=body.reason,
        declared_date=body.declared_date,
    )
    return ConflictOut.model_validate(row, from_attributes=True)


@router.delete(
    "/inspectors/{inspector_id}/conflicts/{conflict_id}",
    status_code=204,
    responses=errors_for(401, 403, 404, 422),
    tags=["directory 名录库"],
    summary="Withdraw a declared conflict / 撤回利害关系申报",
)
async def withdraw_conflict(
    actor: Writer,
    session: Session,
    inspector_id: str,
    conflict_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
) -> Response:
    await service.withdraw_conflict(
        session, actor=actor, inspector_id=inspector_id, conflict_id=conflict_id
    )
    return Response(status_code=204)


# --- check items -----------------------------------------------------------------------------


@router.get(
    "/check-items",
    response_model=CheckItemPage,
    responses=READ,
    tags=["directory 名录库"],
    summary="List check items (随机抽查事项清单) / 抽查事项清单",
)
async def list_check_items(
    actor: AnyStaff,
    session: Session,
    kind: Kind | None = None,
    category: CategoryFilter = None,
    qualification: Annotated[Text | None, Query(max_length=32)] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> CheckItemPage:
    """`category`: items covering the category, an ancestor of it or part of its subtree."""
    rows, nxt = await service.list_check_items(
        session,
        kind=kind,
        category=category,
        qualification=qualification,
        limit=limit,
        cursor=cursor,
    )
    return CheckItemPage(
        items=[CheckItemOut.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=nxt,
    )


@router.get(
    "/check-items/{code}",
    response_model=CheckItemOut,
    responses=READ_ONE,
    tags=["directory 名录库"],
    summary="One check item / 抽查事项",
)
async def get_check_item(actor: AnyStaff, session: Session, code: str) -> CheckItemOut:
    return CheckItemOut.model_validate(
        await service.get_check_item(session, code=code), from_attributes=True
    )


@router.post(
    "/check-items",
    response_model=CheckItemOut,
    status_code=201,
    responses=WRITE,
    tags=["directory 名录库"],
    summary="Add a check item / 新增抽查事项",
)
async def create_check_item(actor: Writer, session: Session, body: CheckItemCreate) -> CheckItemOut:
    values = body.model_dump()
    code = values.pop("code")
    row = await service.create_check_item(session, actor=actor, code=code, **values)
    return CheckItemOut.model_validate(row, from_attributes=True)


@router.patch(
    "/check-items/{code}",
    response_model=CheckItemOut,
    responses=WRITE_ONE,
    tags=["directory 名录库"],
    summary="Change a check item / 修改抽查事项",
)
async def update_check_item(
    actor: Writer, session: Session, code: str, body: CheckItemUpdate
) -> CheckItemOut:
    await service.update_check_item(session, actor=actor, code=code, **_dump(body))
    return CheckItemOut.model_validate(
        await service.get_check_item(session, code=code), from_attributes=True
    )


__all__ = ["router"]
