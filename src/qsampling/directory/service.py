"""一单两库: the enterprise directory, the inspector directory, check items, reference data.

Keyword-only functions over a session; they flush, never commit (the request or the CLI
command owns the transaction), and every change writes an audit entry in the same
transaction. Lists page with an opaque cursor over a stable order (the key), never OFFSET.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy import Select, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.audit import service as audit
from qsampling.context import Actor
from qsampling.core import uscc as uscc_lib
from qsampling.directory.reference import check_ratios, region_level, region_parent
from qsampling.errors import Conflict, InvalidInput, NotFound
from qsampling.models.directory import (
    CHANNELS,
    CHECK_ITEM_KINDS,
    ENTITY_TYPES,
    SIZES,
    STATUSES,
    Category,
    CheckItem,
    Enterprise,
    Inspector,
    Region,
    Unit,
)
from qsampling.models.directory import Conflict as ConflictRow
from qsampling.responses import split_page

MAX_LIMIT = 500
T = TypeVar("T")

# --- validation shared with the importer -----------------------------------------------------

# 18-digit resident ID numbers (with a plausible birth date) and mainland mobile numbers.
# Names and addresses are public-facing: a sole trader's record must not carry the owner's
# ID or phone number (DESIGN §3, disclosure).
PERSONAL_DATA_RE = re.compile(
    r"(?<![0-9])(?:[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
    r"[0-9]{3}[0-9Xx]|1[3-9][0-9]{9})(?![0-9])"
)
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

PERSONAL_DATA_REASON = (
    "含个人身份证号或手机号，名录不存储个人信息 / looks like a personal ID or mobile number, "
    "which the directory never stores"
)


def personal_data_reason(value: str | None) -> str | None:
    if value and PERSONAL_DATA_RE.search(value):
        return PERSONAL_DATA_REASON
    return None


def entity_type_from_uscc(code: str) -> str:
    """GB 32100-2015 positions 1–2 under department 9 (market supervision): 1 企业,
    2 个体工商户, 3 农民专业合作社; any other department or type → 其他."""
    dept_type = code[:2]
    for kind, (dept, org) in uscc_lib.MARKET_SUPERVISION_TYPES.items():
        if dept_type == dept + org:
            return {
                "enterprise": "企业",
                "sole_trader": "个体工商户",
                "cooperative": "农民专业合作社",
            }[kind]
    return "其他"


def valid_uscc(raw: str) -> str:
    """Trim, upper-case and clean up (full-width forms, separators), then verify the check
    character; 422 ``InvalidUSCC`` with the reason otherwise."""
    if "\x00" in raw or len(raw) > 64:
        raise InvalidInput(
            "Not a 统一社会信用代码 (too long or contains NUL). 统一社会信用代码无效。",
            code="InvalidUSCC",
        )
    code = uscc_lib.normalize(raw.strip().upper())
    reason = uscc_lib.invalid_reason(code)
    if reason is not None:
        raise InvalidInput(
            f"{raw.strip()!r} is not a valid 统一社会信用代码: {reason}.", code="InvalidUSCC"
        )
    return code


def _check_personal(field: str, value: str | None) -> None:
    if personal_data_reason(value):
        raise InvalidInput(
            f"{field}: {PERSONAL_DATA_REASON}.", code="PersonalData", extra={"field": field}
        )
    if value is not None and CONTROL_RE.search(value):
        raise InvalidInput(
            f"{field} must not contain control characters (tabs, line breaks). 含控制字符。",
            code="InvalidInput",
            extra={"field": field},
        )


# --- cursors ---------------------------------------------------------------------------------


def encode_cursor(key: Sequence[Any]) -> str:
    raw = json.dumps(list(key), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, *, parts: int = 1) -> list[str]:
    """The sort key from an opaque cursor; 422 ``InvalidCursor`` for anything we did not
    issue."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8"))
    except (ValueError, UnicodeError, binascii.Error):
        key = None
    if (
        not isinstance(key, list)
        or len(key) != parts
        or not all(isinstance(k, str) and _key_ok(k, 64) and k.isprintable() for k in key)
    ):
        raise InvalidInput(
            "The cursor is not one this server issued; start again without it. 游标无效。",
            code="InvalidCursor",
        )
    return key


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}.", code="InvalidLimit")
    return limit


async def _page(
    session: AsyncSession, q: Select[Any], key_col: Any, *, limit: int, cursor: str | None
) -> tuple[list[Any], str | None]:
    check_limit(limit)
    if cursor:
        (after,) = decode_cursor(cursor)
        q = q.where(key_col > after)
    rows = list((await session.scalars(q.order_by(key_col).limit(limit + 1))).all())
    return split_page(rows, limit, lambda r: encode_cursor([getattr(r, key_col.key)]))


def like_fragment(fragment: str) -> str:
    """``%fragment%`` with the LIKE wildcards of the user's text escaped (backslash is
    PostgreSQL's default LIKE escape)."""
    escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def region_prefix(region: str) -> str:
    """``35`` / ``3501`` / ``350102``; a 6-digit province or city code (``350000``,
    ``350100``) means its whole area."""
    if not re.fullmatch(r"[0-9]{2}|[0-9]{4}|[0-9]{6}", region):
        raise InvalidInput(
            "region must be 2, 4 or 6 digits of a GB/T 2260 code (35, 3501, 350102). "
            "行政区划代码前缀无效。",
            code="InvalidRegion",
        )
    if len(region) == 6:
        if region.endswith("0000"):
            return region[:2]
        if region.endswith("00"):
            return region[:4]
    return region


# --- reference lookups -----------------------------------------------------------------------


async def known_regions(session: AsyncSession, codes: Sequence[str]) -> set[str]:
    if not codes:
        return set()
    rows = await session.scalars(select(Region.code).where(Region.code.in_(set(codes))))
    return set(rows)


async def require_regions(session: AsyncSession, codes: Sequence[str]) -> None:
    missing = sorted(set(codes) - await known_regions(session, codes))
    if missing:
        raise InvalidInput(
            f"Unknown region code(s): {', '.join(missing)} (load them with "
            "`qsampling import reference` or `qsampling import regions FILE`). "
            "行政区划代码不存在。",
            code="UnknownRegion",
        )


async def require_categories(session: AsyncSession, codes: Sequence[str]) -> None:
    if not codes:
        return
    found = set(await session.scalars(select(Category.code).where(Category.code.in_(set(codes)))))
    missing = sorted(set(codes) - found)
    if missing:
        raise InvalidInput(
            f"Unknown product category code(s): {', '.join(missing)}. 产品类别不存在。",
            code="UnknownCategory",
        )


async def require_unit(session: AsyncSession, code: str | None) -> None:
    if code is None:
        return
    if await session.get(Unit, code) is None:
        raise InvalidInput(
            f"Unknown unit {code!r}: create it first (POST /api/v1/units). 单位不存在。",
            code="UnknownUnit",
        )


async def known_qualifications(session: AsyncSession) -> set[str]:
    """Qualification codes the check items require, plus every category code."""
    quals = await session.scalars(
        select(CheckItem.qualification).where(CheckItem.qualification.is_not(None)).distinct()
    )
    cats = await session.scalars(select(Category.code))
    return {q for q in quals if q} | set(cats)


async def require_qualifications(session: AsyncSession, codes: Sequence[str]) -> None:
    if not codes:
        return
    missing = sorted(set(codes) - await known_qualifications(session))
    if missing:
        raise InvalidInput(
            f"Unknown qualification(s): {', '.join(missing)}: use the qualification code of a "
            "check item (e.g. QUAL-CHILD) or a category code. 检查资质不存在。",
            code="UnknownQualification",
        )


async def category_subtree(session: AsyncSession, code: str) -> list[str]:
    """``code`` and every category below it (dotted codes: a subtree is a prefix)."""
    like = code.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ".%"
    rows = await session.scalars(
        select(Category.code).where(or_(Category.code == code, Category.code.like(like)))
    )
    codes = list(rows)
    if not codes:
        raise InvalidInput(
            f"Unknown product category {code!r}. 产品类别不存在。", code="UnknownCategory"
        )
    return codes


def _key_ok(value: str, max_len: int = 32) -> bool:
    """A path key worth looking up: short and free of NUL (which PostgreSQL text cannot
    hold); anything else simply does not exist."""
    return len(value) <= max_len and "\x00" not in value


def _dedupe(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _changes(obj: Any, values: dict[str, Any]) -> dict[str, Any]:
    changed = {}
    for k, v in values.items():
        if getattr(obj, k) != v:
            setattr(obj, k, v)
            changed[k] = v
    return changed


# --- regions ---------------------------------------------------------------------------------


async def list_regions(
    session: AsyncSession,
    *,
    prefix: str | None = None,
    level: str | None = None,
    parent_code: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[Region], str | None]:
    q = select(Region)
    if prefix:
        q = q.where(Region.code.like(region_prefix(prefix) + "%"))
    if level:
        q = q.where(Region.level == level)
    if parent_code:
        q = q.where(Region.parent_code == parent_code)
    return await _page(session, q, Region.code, limit=limit, cursor=cursor)


async def get_region(session: AsyncSession, *, code: str) -> Region:
    row = await session.get(Region, code) if re.fullmatch(r"[0-9]{6}", code) else None
    if row is None:
        raise NotFound(f"No region {code!r}. 行政区划不存在。", code="RegionNotFound")
    return row


async def create_region(session: AsyncSession, *, actor: Actor, code: str, name: str) -> Region:
    if await session.get(Region, code) is not None:
        raise Conflict(f"Region {code} already exists. 行政区划已存在。", code="RegionExists")
    level = region_level(code)
    parent = region_parent(code, await known_regions(session, [code[:4] + "00"]))
    if parent is not None and await session.get(Region, parent) is None:
        raise InvalidInput(
            f"Region {code}'s parent {parent} does not exist; create it first. 上级区划不存在。",
            code="UnknownRegion",
        )
    row = Region(code=code, name=name, level=level, parent_code=parent)
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="region.create",
        entity_type="region",
        entity_id=code,
        payload={"name": name, "level": level, "parent_code": parent},
    )
    return row


async def update_region(session: AsyncSession, *, actor: Actor, code: str, name: str) -> Region:
    row = await get_region(session, code=code)
    changed = _changes(row, {"name": name})
    if changed:
        await session.flush()
        await audit.record(
            session,
            actor=actor,
            action="region.update",
            entity_type="region",
            entity_id=code,
            payload=changed,
        )
    return row


# --- categories ------------------------------------------------------------------------------


async def list_categories(
    session: AsyncSession,
    *,
    parent_code: str | None = None,
    prefix: str | None = None,
    level: int | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[Category], str | None]:
    q = select(Category)
    if parent_code is not None:
        q = q.where(Category.parent_code == parent_code)
    if prefix:
        q = q.where(Category.code.in_(await category_subtree(session, prefix)))
    if level is not None:
        q = q.where(Category.level == level)
    return await _page(session, q, Category.code, limit=limit, cursor=cursor)


async def get_category(session: AsyncSession, *, code: str) -> Category:
    row = await session.get(Category, code) if _key_ok(code) else None
    if row is None:
        raise NotFound(f"No product category {code!r}. 产品类别不存在。", code="CategoryNotFound")
    return row


async def create_category(session: AsyncSession, *, actor: Actor, code: str, name: str) -> Category:
    if await session.get(Category, code) is not None:
        raise Conflict(f"Category {code} already exists. 产品类别已存在。", code="CategoryExists")
    parts = code.split(".")
    parent = ".".join(parts[:-1]) or None
    if parent is not None and await session.get(Category, parent) is None:
        raise InvalidInput(
            f"Category {code}'s parent {parent} does not exist; create it first. 上级类别不存在。",
            code="UnknownCategory",
        )
    row = Category(code=code, name=name, parent_code=parent, level=len(parts))
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="category.create",
        entity_type="category",
        entity_id=code,
        payload={"name": name, "parent_code": parent},
    )
    return row


async def update_category(session: AsyncSession, *, actor: Actor, code: str, name: str) -> Category:
    row = await get_category(session, code=code)
    changed = _changes(row, {"name": name})
    if changed:
        await session.flush()
        await audit.record(
            session,
            actor=actor,
            action="category.update",
            entity_type="category",
            entity_id=code,
            payload=changed,
        )
    return row


# --- units -----------------------------------------------------------------------------------


async def list_units(
    session: AsyncSession,
    *,
    region: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[Unit], str | None]:
    q = select(Unit)
    if region:
        q = q.where(Unit.region_code.like(region_prefix(region) + "%"))
    return await _page(session, q, Unit.code, limit=limit, cursor=cursor)


async def get_unit(session: AsyncSession, *, code: str) -> Unit:
    row = await session.get(Unit, code) if _key_ok(code) else None
    if row is None:
        raise NotFound(f"No unit {code!r}. 单位不存在。", code="UnitNotFound")
    return row


async def create_unit(
    session: AsyncSession, *, actor: Actor, code: str, name: str, region_code: str | None
) -> Unit:
    if await session.get(Unit, code) is not None:
        raise Conflict(f"Unit {code} already exists. 单位已存在。", code="UnitExists")
    if region_code:
        await require_regions(session, [region_code])
    row = Unit(code=code, name=name, region_code=region_code)
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="unit.create",
        entity_type="unit",
        entity_id=code,
        payload={"name": name, "region_code": region_code},
    )
    return row


async def update_unit(
    session: AsyncSession, *, actor: Actor, code: str, values: dict[str, Any]
) -> Unit:
    row = await get_unit(session, code=code)
    if "name" in values and values["name"] is None:
        raise InvalidInput("name cannot be empty. 名称不能为空。", code="InvalidInput")
    if values.get("region_code"):
        await require_regions(session, [values["region_code"]])
    changed = _changes(row, values)
    if changed:
        await session.flush()
        await audit.record(
            session,
            actor=actor,
            action="unit.update",
            entity_type="unit",
            entity_id=code,
            payload=changed,
        )
    return row


# --- enterprises -----------------------------------------------------------------------------


async def enterprise_query(
    session: AsyncSession,
    *,
    region: str | None = None,
    category: str | None = None,
    status: Sequence[str] = (),
    credit_class: Sequence[str] = (),
    name: str | None = None,
    entity_type: str | None = None,
    size: str | None = None,
    channel: str | None = None,
    supervising_unit: str | None = None,
) -> Select[Any]:
    """The filtered query (without order and paging). Filters combine with AND.
    ``region``: a GB/T 2260 prefix (``text_pattern_ops`` index); ``category``: the subtree's
    codes overlap ``category_codes`` (GIN index); ``name``: a fragment matched with
    ILIKE '%…%' — three characters or more use the trigram index, shorter ones still work by
    scanning."""
    q = select(Enterprise)
    if region:
        q = q.where(Enterprise.region_code.like(region_prefix(region) + "%"))
    if category:
        codes = await category_subtree(session, category)
        q = q.where(Enterprise.category_codes.overlap(codes))
    if status:
        q = q.where(Enterprise.status.in_(list(status)))
    if credit_class:
        q = q.where(Enterprise.credit_class.in_(list(credit_class)))
    if name:
        q = q.where(Enterprise.name.ilike(like_fragment(name)))
    if entity_type:
        q = q.where(Enterprise.entity_type == entity_type)
    if size:
        q = q.where(Enterprise.size == size)
    if channel:
        q = q.where(Enterprise.channel == channel)
    if supervising_unit:
        q = q.where(Enterprise.supervising_unit == supervising_unit)
    return q


async def list_enterprises(
    session: AsyncSession, *, limit: int = 100, cursor: str | None = None, **filters: Any
) -> tuple[list[Enterprise], str | None]:
    """A page of enterprises in ``uscc`` order (see :func:`enterprise_query` for filters)."""
    check_limit(limit)
    q = await enterprise_query(session, **filters)
    return await _page(session, q, Enterprise.uscc, limit=limit, cursor=cursor)


async def get_enterprise(session: AsyncSession, *, uscc: str) -> Enterprise:
    code = valid_uscc(uscc)
    row = await session.get(Enterprise, code)
    if row is None:
        raise NotFound(
            f"No enterprise {code} in the directory. 名录中无此主体。", code="EnterpriseNotFound"
        )
    return row


async def _check_enterprise_values(session: AsyncSession, values: dict[str, Any]) -> None:
    for f in ("name", "address"):
        if f in values:
            _check_personal(f, values[f])
    if values.get("region_code"):
        await require_regions(session, [values["region_code"]])
    if values.get("supervising_unit"):
        await require_unit(session, values["supervising_unit"])
    if values.get("category_codes"):
        values["category_codes"] = _dedupe(values["category_codes"])
        await require_categories(session, values["category_codes"])
    for f, allowed in (
        ("entity_type", ENTITY_TYPES),
        ("size", SIZES),
        ("channel", CHANNELS),
        ("status", STATUSES),
    ):
        if f in values and values[f] not in allowed:
            raise InvalidInput(f"{f} must be one of {', '.join(allowed)}.", code="InvalidInput")
    reg = values.get("registration_date")
    if reg is not None and reg > datetime.now(UTC).date():
        raise InvalidInput(
            "registration_date cannot be in the future. 成立日期不能晚于今天。", code="InvalidDate"
        )


async def create_enterprise(
    session: AsyncSession, *, actor: Actor, values: dict[str, Any]
) -> Enterprise:
    values = dict(values)
    code = valid_uscc(values.pop("uscc"))
    if values.get("entity_type") is None:
        values["entity_type"] = entity_type_from_uscc(code)
    values.setdefault("status", "存续")
    values["category_codes"] = values.get("category_codes") or []
    values.pop("credit_class", None)  # maintained by the credit module
    await _check_enterprise_values(session, values)
    if await session.get(Enterprise, code) is not None:
        raise Conflict(
            f"Enterprise {code} is already in the directory; PATCH it instead. 该主体已在名录中。",
            code="EnterpriseExists",
        )
    row = Enterprise(uscc=code, **values)
    session.add(row)
    await session.flush()
    await session.refresh(row)
    await audit.record(
        session,
        actor=actor,
        action="enterprise.create",
        entity_type="enterprise",
        entity_id=code,
        payload=_jsonable(values),
    )
    return row


async def update_enterprise(
    session: AsyncSession, *, actor: Actor, uscc: str, values: dict[str, Any]
) -> Enterprise:
    row = await get_enterprise(session, uscc=uscc)
    values = dict(values)
    for required in ("name", "entity_type", "region_code", "size", "channel", "status"):
        if required in values and values[required] is None:
            raise InvalidInput(f"{required} cannot be null. 该字段不能为空。", code="InvalidInput")
    if "category_codes" in values and values["category_codes"] is None:
        values["category_codes"] = []
    await _check_enterprise_values(session, values)
    changed = _changes(row, values)
    if changed:
        await session.flush()
        await session.refresh(row)
        await audit.record(
            session,
            actor=actor,
            action="enterprise.update",
            entity_type="enterprise",
            entity_id=row.uscc,
            payload=_jsonable(changed),
        )
    return row


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in values.items()}


# --- inspectors ------------------------------------------------------------------------------


async def list_inspectors(
    session: AsyncSession,
    *,
    unit_code: str | None = None,
    region: str | None = None,
    qualification: str | None = None,
    active: bool | None = None,
    name: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[Inspector], str | None]:
    q = select(Inspector)
    if unit_code:
        q = q.where(Inspector.unit_code == unit_code)
    if region:
        # as the draws read it: an empty scope is no restriction; otherwise a scope code and
        # the region prefix overlap when either is a prefix of the other
        p = region_prefix(region)
        q = q.where(
            text(
                "(cardinality(inspectors.region_scope) = 0 OR EXISTS (SELECT 1 FROM "
                "unnest(inspectors.region_scope) AS rs(code) "
                "WHERE left(rs.code, length(:rp)) = :rp OR left(:rp, length(rs.code)) = rs.code))"
            ).bindparams(rp=p)
        )
    if qualification:
        q = q.where(Inspector.qualifications.any_() == qualification)
    if active is not None:
        q = q.where(Inspector.active.is_(active))
    if name:
        q = q.where(Inspector.name.ilike(like_fragment(name)))
    return await _page(session, q, Inspector.inspector_id, limit=limit, cursor=cursor)


async def get_inspector(session: AsyncSession, *, inspector_id: str) -> Inspector:
    row = await session.get(Inspector, inspector_id) if _key_ok(inspector_id) else None
    if row is None:
        raise NotFound(f"No inspector {inspector_id!r}. 执法人员不存在。", code="InspectorNotFound")
    return row


async def _check_inspector_values(session: AsyncSession, values: dict[str, Any]) -> None:
    if "name" in values:
        _check_personal("name", values["name"])
    if values.get("unit_code"):
        await require_unit(session, values["unit_code"])
    if values.get("region_scope"):
        values["region_scope"] = _dedupe(values["region_scope"])
        await require_regions(session, values["region_scope"])
    if values.get("qualifications"):
        values["qualifications"] = _dedupe(values["qualifications"])
        await require_qualifications(session, values["qualifications"])


async def create_inspector(
    session: AsyncSession, *, actor: Actor, values: dict[str, Any]
) -> Inspector:
    values = dict(values)
    inspector_id = values.pop("inspector_id")
    values["region_scope"] = values.get("region_scope") or []
    values["qualifications"] = values.get("qualifications") or []
    await _check_inspector_values(session, values)
    if await session.get(Inspector, inspector_id) is not None:
        raise Conflict(
            f"Inspector {inspector_id} already exists. 执法人员已存在。", code="InspectorExists"
        )
    row = Inspector(inspector_id=inspector_id, **values)
    session.add(row)
    await session.flush()
    await session.refresh(row)
    await audit.record(
        session,
        actor=actor,
        action="inspector.create",
        entity_type="inspector",
        entity_id=inspector_id,
        payload=values,
    )
    return row


async def update_inspector(
    session: AsyncSession, *, actor: Actor, inspector_id: str, values: dict[str, Any]
) -> Inspector:
    row = await get_inspector(session, inspector_id=inspector_id)
    values = dict(values)
    for required in ("name", "unit_code", "active"):
        if required in values and values[required] is None:
            raise InvalidInput(f"{required} cannot be null. 该字段不能为空。", code="InvalidInput")
    for f in ("region_scope", "qualifications"):
        if f in values and values[f] is None:
            values[f] = []
    await _check_inspector_values(session, values)
    changed = _changes(row, values)
    if changed:
        await session.flush()
        await session.refresh(row)
        await audit.record(
            session,
            actor=actor,
            action="inspector.update",
            entity_type="inspector",
            entity_id=inspector_id,
            payload=changed,
        )
    return row


async def list_conflicts(session: AsyncSession, *, inspector_id: str) -> list[ConflictRow]:
    await get_inspector(session, inspector_id=inspector_id)
    rows = await session.scalars(
        select(ConflictRow)
        .where(ConflictRow.inspector_id == inspector_id)
        .order_by(ConflictRow.uscc)
    )
    return list(rows)


async def declare_conflict(
    session: AsyncSession,
    *,
    actor: Actor,
    inspector_id: str,
    uscc: str,
    reason: str,
    declared_date: date | None = None,
) -> ConflictRow:
    """Declare a conflict of interest (行政处罚法 art. 43): the inspector is never drawn for
    the enterprise. The enterprise need not be in the directory yet."""
    await get_inspector(session, inspector_id=inspector_id)
    code = valid_uscc(uscc)
    if not reason.strip():
        raise InvalidInput("reason cannot be empty. 请填写利害关系说明。", code="InvalidInput")
    today = datetime.now(UTC).date()
    when = declared_date or today
    if when > today:
        raise InvalidInput(
            "declared_date cannot be in the future. 申报日期不能晚于今天。", code="InvalidDate"
        )
    exists = await session.scalar(
        select(ConflictRow.id).where(
            ConflictRow.inspector_id == inspector_id, ConflictRow.uscc == code
        )
    )
    if exists is not None:
        raise Conflict(
            f"Inspector {inspector_id} has already declared a conflict with {code}. 已申报。",
            code="ConflictExists",
        )
    row = ConflictRow(
        inspector_id=inspector_id, uscc=code, reason=reason.strip(), declared_date=when
    )
    session.add(row)
    await session.flush()
    await session.refresh(row)
    await audit.record(
        session,
        actor=actor,
        action="conflict.create",
        entity_type="inspector_conflict",
        entity_id=row.id,
        payload={"inspector_id": inspector_id, "uscc": code, "declared_date": when.isoformat()},
    )
    return row


async def withdraw_conflict(
    session: AsyncSession, *, actor: Actor, inspector_id: str, conflict_id: int
) -> None:
    row = await session.get(ConflictRow, conflict_id)
    if row is None or row.inspector_id != inspector_id:
        raise NotFound(
            f"Inspector {inspector_id!r} has no declared conflict {conflict_id}. 无此申报。",
            code="ConflictNotFound",
        )
    await session.delete(row)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="conflict.delete",
        entity_type="inspector_conflict",
        entity_id=conflict_id,
        payload={"inspector_id": inspector_id, "uscc": row.uscc},
    )


# --- check items -----------------------------------------------------------------------------


async def list_check_items(
    session: AsyncSession,
    *,
    kind: str | None = None,
    category: str | None = None,
    qualification: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[CheckItem], str | None]:
    q = select(CheckItem)
    if kind:
        q = q.where(CheckItem.kind == kind)
    if category:
        # items covering the category, one of its ancestors, or something in its subtree
        codes = await category_subtree(session, category)
        parts = category.split(".")
        ancestors = [".".join(parts[:i]) for i in range(1, len(parts))]
        q = q.where(CheckItem.category_codes.overlap(codes + ancestors))
    if qualification:
        q = q.where(CheckItem.qualification == qualification)
    return await _page(session, q, CheckItem.code, limit=limit, cursor=cursor)


async def get_check_item_or_none(session: AsyncSession, *, code: str) -> CheckItem | None:
    return await session.get(CheckItem, code) if _key_ok(code) else None


async def get_check_item(session: AsyncSession, *, code: str) -> CheckItem:
    row = await get_check_item_or_none(session, code=code)
    if row is None:
        raise NotFound(f"No check item {code!r}. 抽查事项不存在。", code="CheckItemNotFound")
    return row


async def _check_item_values(session: AsyncSession, values: dict[str, Any]) -> None:
    if "ratios" in values and values["ratios"] is not None:
        values["ratios"] = check_ratios(values["ratios"])
    if values.get("category_codes"):
        values["category_codes"] = _dedupe(values["category_codes"])
        await require_categories(session, values["category_codes"])
    if "kind" in values and values["kind"] not in CHECK_ITEM_KINDS:
        raise InvalidInput("kind must be 重点 or 一般.", code="InvalidInput")
    if "team_size" in values and (
        not isinstance(values["team_size"], int) or values["team_size"] < 2
    ):
        raise InvalidInput(
            "team_size must be at least 2 (行政处罚法 art. 42). 执法人员不得少于两人。",
            code="InvalidInput",
        )
    if "exclusion_days" in values and (
        not isinstance(values["exclusion_days"], int) or values["exclusion_days"] < 0
    ):
        raise InvalidInput("exclusion_days must be 0 or more.", code="InvalidInput")


async def create_check_item(
    session: AsyncSession, *, actor: Actor, code: str, **values: Any
) -> CheckItem:
    values.setdefault("category_codes", [])
    values.setdefault("exclusion_days", 180)
    values.setdefault("team_size", 2)
    values.setdefault("qualification", None)
    if values.get("category_codes") is None:
        values["category_codes"] = []
    await _check_item_values(session, values)
    if await get_check_item_or_none(session, code=code) is not None:
        raise Conflict(
            f"Check item {code} already exists. 抽查事项已存在。", code="CheckItemExists"
        )
    row = CheckItem(code=code, **values)
    session.add(row)
    await session.flush()
    await session.refresh(row)
    await audit.record(
        session,
        actor=actor,
        action="check_item.create",
        entity_type="check_item",
        entity_id=code,
        payload=values,
    )
    return row


async def update_check_item(
    session: AsyncSession, *, actor: Actor, code: str, **values: Any
) -> dict[str, Any]:
    """Returns what changed (empty when nothing did)."""
    row = await get_check_item(session, code=code)
    for required in ("name", "legal_basis", "kind", "ratios", "exclusion_days", "team_size"):
        if required in values and values[required] is None:
            raise InvalidInput(f"{required} cannot be null. 该字段不能为空。", code="InvalidInput")
    if "category_codes" in values and values["category_codes"] is None:
        values["category_codes"] = []
    await _check_item_values(session, values)
    changed = _changes(row, values)
    if changed:
        await session.flush()
        await session.refresh(row)
        await audit.record(
            session,
            actor=actor,
            action="check_item.update",
            entity_type="check_item",
            entity_id=code,
            payload=changed,
        )
    return changed


# --- counts (demo, db is-empty) --------------------------------------------------------------


@dataclass
class DirectoryCounts:
    enterprises: int
    inspectors: int
    check_items: int


async def counts(session: AsyncSession) -> DirectoryCounts:
    row = (
        await session.execute(
            select(
                select(func.count()).select_from(Enterprise).scalar_subquery(),
                select(func.count()).select_from(Inspector).scalar_subquery(),
                select(func.count()).select_from(CheckItem).scalar_subquery(),
            )
        )
    ).one()
    return DirectoryCounts(int(row[0]), int(row[1]), int(row[2]))
