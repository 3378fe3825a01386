"""一公开: what the public sees, read from one place, and the publication of final results.

- Results: ``result_publications`` (see :mod:`qsampling.models.disclosure`) holds the public
  snapshot of each final result, written by :func:`register_final_results` (run by
  ``qsampling jobs run`` and by ``POST /api/v1/disclosure/publish``) from the inspections
  module's ``domain_events`` — never from raw submissions, never with notes, ids or contacts.
- Due dates: 20 working days after the inspection ended (DESIGN §3 Disclosure), counted by
  :func:`qsampling.core.workdays.add_working_days` (statutory holidays and make-up days; past
  the years ``chinese-calendar`` knows, Monday–Friday with ``due_exact = false``).
- Lists, draws and enterprises are read from their modules' tables with narrow queries that
  select only public columns (the credit class is never selected).

Services take keyword arguments and a session, and only flush.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.context import Actor
from qsampling.core.workdays import add_working_days
from qsampling.disclosure.privacy import public_address, redact
from qsampling.errors import InvalidInput, NotFound

CHINA = ZoneInfo("Asia/Shanghai")
PUBLICATION_WORKING_DAYS = 20
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100

CONCLUSION_ZH = {"pass": "未发现不合格", "fail": "不合格", "not_tested": "未检验"}
RESULT_CODE_ZH = {
    "1": "未发现问题",
    "B": "未按规定公示应当公示的信息",
    "C": "公示信息隐瞒真实情况弄虚作假",
    "6": "通过登记的住所（经营场所）无法联系",
    "A": "发现问题待后续处理",
    "E": "发现问题已责令改正",
    "8": "不配合检查情节严重",
    "F": "未发现开展本次抽查涉及的经营活动",
    "7": "已关闭停业或正在组织清算",
    "9": "注销",
    "10": "被吊销",
    "11": "被撤销",
    "12": "迁出",
}
LIST_NAMES = ("abnormal", "serious", "joint-punishment")
LIST_TITLES_ZH = {
    "abnormal": "经营异常名录",
    "serious": "严重违法失信名单",
    "joint-punishment": "失信联合惩戒对象名单",
}
FINAL_EVENT_KINDS = ("result.final", "result.refused", "result.unreachable", "result.closed")
CURSOR_NAME = "domain_events:publications"

_REGION = re.compile(r"^\d{2}(?:\d{2}){0,2}$")
_CATEGORY = re.compile(r"^\d{2}(?:\.\d{2}){0,4}$")
_USCC = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{18}$")


def today_in_china(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(CHINA).date()


# --- filters and cursors -----------------------------------------------------------------------


@dataclass(frozen=True)
class ResultFilters:
    """Filters of the public results (API, exports, portal)."""

    region: str | None = None
    category: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    result_codes: tuple[str, ...] = ()
    conclusion: str | None = None
    check_item: str | None = None
    uscc: str | None = None
    changed_since: datetime | None = None

    def validate(self) -> ResultFilters:
        if self.region is not None and not _REGION.match(self.region):
            raise InvalidInput(
                f"region must be a region-code prefix of 2, 4 or 6 digits, got {self.region!r}. "
                "地区代码前缀应为2、4或6位数字。",
                code="InvalidRegion",
            )
        if self.category is not None and not _CATEGORY.match(self.category):
            raise InvalidInput(
                f"category must be a category code such as 03 or 03.02, got {self.category!r}. "
                "产品类别代码无效。",
                code="InvalidCategory",
            )
        bad = [c for c in self.result_codes if c not in RESULT_CODE_ZH]
        if bad:
            raise InvalidInput(
                f"Unknown result code(s) {', '.join(bad)}; known: "
                f"{', '.join(RESULT_CODE_ZH)}. 结果代码无效。",
                code="InvalidResultCode",
            )
        if self.conclusion is not None and self.conclusion not in CONCLUSION_ZH:
            raise InvalidInput(
                "conclusion must be pass, fail or not_tested. 结论参数无效。",
                code="InvalidConclusion",
            )
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise InvalidInput(
                "from must not be after to. 起始日期不能晚于结束日期。", code="InvalidDateRange"
            )
        if self.uscc is not None and not _USCC.match(self.uscc):
            raise InvalidInput(
                "uscc must be an 18-character unified social credit code. "
                "统一社会信用代码格式错误。",
                code="InvalidUscc",
            )
        if self.changed_since is not None and self.changed_since.tzinfo is None:
            object.__setattr__(self, "changed_since", self.changed_since.replace(tzinfo=UTC))
        return self

    def as_dict(self) -> dict[str, Any]:
        """For manifests and cursors: only the filters that are set, JSON-ready."""
        out: dict[str, Any] = {}
        for k in (
            "region",
            "category",
            "date_from",
            "date_to",
            "conclusion",
            "check_item",
            "uscc",
            "changed_since",
        ):
            v = getattr(self, k)
            if v is not None:
                out[k] = v.isoformat() if isinstance(v, (date, datetime)) else v
        if self.result_codes:
            out["result_codes"] = list(self.result_codes)
        return out


@dataclass
class Where:
    """SQL conditions with named parameters (SQLAlchemy ``:name``; :meth:`positional` turns
    them into asyncpg ``$n`` for COPY)."""

    conds: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def add(self, cond: str, **params: Any) -> None:
        self.conds.append(cond)
        self.params.update(params)

    def sql(self) -> str:
        return " AND ".join(self.conds) if self.conds else "TRUE"

    def positional(self, sql: str) -> tuple[str, list[Any]]:
        order: list[str] = []

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in self.params:
                return m.group(0)
            if name not in order:
                order.append(name)
            return f"${order.index(name) + 1}"

        out = re.sub(r"(?<!:):([a-z_][a-z0-9_]*)", sub, sql)
        return out, [self.params[n] for n in order]


def like_prefix(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def result_where(f: ResultFilters, alias: str = "p") -> Where:
    w = Where()
    w.add(f"{alias}.published_at IS NOT NULL")
    if f.region:
        w.add(f"{alias}.region_code LIKE :region_like", region_like=like_prefix(f.region))
    if f.category:
        w.add(
            f"{alias}.category_codes && ARRAY(SELECT code FROM categories "
            "WHERE code = :category OR code LIKE :category_like)::varchar[]",
            category=f.category,
            category_like=like_prefix(f.category + "."),
        )
    if f.date_from:
        w.add(f"{alias}.inspected_on >= :date_from", date_from=f.date_from)
    if f.date_to:
        w.add(f"{alias}.inspected_on <= :date_to", date_to=f.date_to)
    if f.result_codes:
        w.add(
            f"{alias}.result_codes && CAST(:result_codes AS varchar[])",
            result_codes=list(f.result_codes),
        )
    if f.conclusion:
        w.add(f"{alias}.conclusion = :conclusion", conclusion=f.conclusion)
    if f.check_item:
        w.add(f"{alias}.check_item_code = :check_item", check_item=f.check_item)
    if f.uscc:
        w.add(f"{alias}.uscc = :uscc", uscc=f.uscc)
    if f.changed_since:
        w.add(f"{alias}.updated_at > :changed_since", changed_since=f.changed_since)
    return w


def encode_cursor(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str | None, order: str) -> dict[str, Any] | None:
    if not token:
        return None
    try:
        pad = "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(token + pad))
        if not isinstance(data, dict) or data.get("o") != order:
            raise ValueError
        return data
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            "The cursor is not valid for this query; start again without it. 分页游标无效。",
            code="InvalidCursor",
        ) from None


def _as_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("The cursor is malformed. 分页游标无效。", code="InvalidCursor")
    return value


# --- results -----------------------------------------------------------------------------------

RESULT_COLUMNS = (
    "p.id, p.result_id, p.task_id, p.plan_id, p.uscc, p.enterprise_name, p.entity_type, "
    "p.region_code, p.region_name, p.check_item_code, p.check_item_name, p.inspected_on, "
    "p.conclusion, p.result_codes, p.category_codes, p.samples, p.inspector_names, "
    "p.published_at, p.updated_at"
)


def result_item(row: Any) -> dict[str, Any]:
    m = dict(row._mapping)
    codes = list(m["result_codes"] or [])
    return {
        "id": m["id"],
        "uscc": m["uscc"],
        "enterprise_name": m["enterprise_name"],
        "entity_type": m["entity_type"],
        "region_code": m["region_code"],
        "region_name": m["region_name"],
        "check_item_code": m["check_item_code"],
        "check_item_name": m["check_item_name"],
        "plan_id": m["plan_id"],
        "inspected_on": m["inspected_on"],
        "conclusion": m["conclusion"],
        "conclusion_zh": CONCLUSION_ZH.get(m["conclusion"], m["conclusion"]),
        "result_codes": codes,
        "result_code_names": [RESULT_CODE_ZH.get(c, c) for c in codes],
        "category_codes": list(m["category_codes"] or []),
        "samples": m["samples"] or [],
        "inspector_names": list(m["inspector_names"] or []),
        "published_at": m["published_at"],
        "updated_at": m["updated_at"],
    }


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None
    last_modified: datetime | None


async def list_results(
    session: AsyncSession,
    *,
    filters: ResultFilters,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page:
    """Published results. Newest first (by id); with ``changed_since`` oldest change first
    (by ``updated_at``, ``id``) so that a mirror can sync incrementally."""
    f = filters.validate()
    limit = max(1, min(limit, MAX_LIMIT))
    w = result_where(f)
    sync = f.changed_since is not None
    order = "upd" if sync else "id"
    c = decode_cursor(cursor, order)
    if c is not None:
        if sync:
            try:
                last_u = datetime.fromisoformat(str(c.get("u")))
            except ValueError:
                raise InvalidInput(
                    "The cursor is malformed. 分页游标无效。", code="InvalidCursor"
                ) from None
            w.add("(p.updated_at, p.id) > (:cur_u, :cur_id)", cur_u=last_u, cur_id=_as_int(c["id"]))
        else:
            w.add("p.id < :cur_id", cur_id=_as_int(c.get("id")))
    order_sql = "p.updated_at, p.id" if sync else "p.id DESC"
    rows = (
        await session.execute(
            text(
                f"SELECT {RESULT_COLUMNS} FROM result_publications p WHERE {w.sql()} "
                f"ORDER BY {order_sql} LIMIT :lim"
            ),
            {**w.params, "lim": limit + 1},
        )
    ).all()
    items = [result_item(r) for r in rows[:limit]]
    nxt = None
    if len(rows) > limit:
        last = items[-1]
        data: dict[str, Any] = {"o": order, "id": last["id"]}
        if sync:
            data["u"] = last["updated_at"].isoformat()
        nxt = encode_cursor(data)
    lm = max((i["updated_at"] for i in items), default=None)
    return Page(items, nxt, lm)


async def get_result(session: AsyncSession, *, publication_id: int) -> dict[str, Any]:
    row = (
        await session.execute(
            text(
                f"SELECT {RESULT_COLUMNS} FROM result_publications p "
                "WHERE p.id = :id AND p.published_at IS NOT NULL"
            ),
            {"id": publication_id},
        )
    ).first()
    if row is None:
        raise NotFound(
            f"No published result {publication_id}. 该结果不存在或尚未公示。",
            code="ResultNotFound",
        )
    return result_item(row)


# --- enterprises -------------------------------------------------------------------------------


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search_enterprises(
    session: AsyncSession, *, q: str, region: str | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """By USCC (exact, or a prefix of 6+ characters) or by a part of the name."""
    q = q.strip()
    if not q:
        raise InvalidInput("Enter a name or a USCC to search. 请输入企业名称或统一社会信用代码。")
    if len(q) > 100:
        raise InvalidInput("The search text is too long (100 characters at most). 搜索词过长。")
    if region is not None and not _REGION.match(region):
        raise InvalidInput("region must be 2, 4 or 6 digits. 地区代码无效。", code="InvalidRegion")
    limit = max(1, min(limit, 100))
    params: dict[str, Any] = {"lim": limit}
    upper = q.upper()
    if re.fullmatch(r"[0-9A-HJ-NPQRTUWXY]{6,18}", upper):
        cond = "(e.uscc LIKE :uscc_prefix OR e.name LIKE :name_like)"
        params["uscc_prefix"] = _escape_like(upper) + "%"
        params["name_like"] = "%" + _escape_like(q) + "%"
    else:
        cond = "e.name LIKE :name_like"
        params["name_like"] = "%" + _escape_like(q) + "%"
    if region:
        cond += " AND e.region_code LIKE :region_like"
        params["region_like"] = like_prefix(region)
    rows = (
        await session.execute(
            text(
                "SELECT e.uscc, e.name, e.entity_type, e.region_code, "
                "coalesce(r.name, '') AS region_name, e.status "
                "FROM enterprises e LEFT JOIN regions r ON r.code = e.region_code "
                f"WHERE {cond} ORDER BY (e.uscc = :exact) DESC, length(e.name), e.uscc "
                "LIMIT :lim"
            ),
            {**params, "exact": upper},
        )
    ).all()
    return [dict(r._mapping) for r in rows]


async def get_enterprise(session: AsyncSession, *, uscc: str) -> dict[str, Any]:
    """Registry data (public fields only), published results and list entries."""
    uscc = uscc.strip().upper()
    if not _USCC.match(uscc):
        raise InvalidInput(
            "uscc must be an 18-character unified social credit code. 统一社会信用代码格式错误。",
            code="InvalidUscc",
        )
    row = (
        await session.execute(
            text(
                "SELECT e.uscc, e.name, e.entity_type, e.region_code, "
                "coalesce(r.name, '') AS region_name, e.address, e.status, "
                "e.registration_date, e.category_codes, e.size, e.channel, "
                "u.name AS supervising_unit_name, e.updated_at "
                "FROM enterprises e LEFT JOIN regions r ON r.code = e.region_code "
                "LEFT JOIN units u ON u.code = e.supervising_unit WHERE e.uscc = :u"
            ),
            {"u": uscc},
        )
    ).first()
    if row is None:
        raise NotFound(f"No enterprise with USCC {uscc}. 未找到该企业。", code="EnterpriseNotFound")
    m = dict(row._mapping)
    results = await list_results(session, filters=ResultFilters(uscc=uscc), limit=MAX_LIMIT)
    entries: list[dict[str, Any]] = []
    for name in ("abnormal", "serious"):
        page = await list_entries(session, list_name=name, uscc=uscc, limit=MAX_LIMIT)
        entries.extend(page.items)
    modified = [m["updated_at"]] + [i["updated_at"] for i in results.items + entries]
    return {
        "uscc": m["uscc"],
        "name": m["name"],
        "entity_type": m["entity_type"],
        "is_sole_trader": m["entity_type"] == "个体工商户",
        "region_code": m["region_code"],
        "region_name": m["region_name"],
        "address": public_address(m["entity_type"], m["address"]),
        "status": m["status"],
        "registration_date": m["registration_date"],
        "category_codes": list(m["category_codes"] or []),
        "size": m["size"],
        "channel": m["channel"],
        "supervising_unit_name": m["supervising_unit_name"],
        "results": results.items,
        "list_entries": entries,
        "updated_at": max(d for d in modified if d is not None),
    }


# --- lists ---------------------------------------------------------------------------------------


def _list_item(e: Any) -> dict[str, Any]:
    """A credit-module ``PublicListEntry`` in the open-data shape; free text redacted."""
    item: dict[str, Any] = {
        "id": e.entry_id,
        "list_name": e.list_name,
        "list_title": LIST_TITLES_ZH[e.list_name],
        "uscc": e.uscc,
        "enterprise_name": e.enterprise_name,
        "status": e.status,
        "status_zh": "已移出" if e.status == "removed" else "列入中",
        "cause": e.cause,
        "reason": redact(e.reason),
        "basis": redact(e.basis),
        "authority": e.authority or "",
        "decision_number": e.decision_number,
        "listed_on": e.listed_on,
        "expires_on": e.expires_on,
        "removed_on": e.removed_on,
        "removal_reason": redact(e.removal_reason) or None,
        "removal_basis": redact(e.removal_basis) or None,
        "removal_authority": e.removal_authority,
        "updated_at": e.updated_at,
    }
    if e.list_name == "joint-punishment":
        item["measures"] = [
            {"code": m.code, "name": m.name, "start_on": m.start_on, "end_on": m.end_on}
            for m in e.measures
        ]
    return item


async def list_entries(
    session: AsyncSession,
    *,
    list_name: str,
    uscc: str | None = None,
    region: str | None = None,
    status: str | None = None,
    changed_since: datetime | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page:
    """Public entries of a list, read through the credit module
    (``qsampling.credit.feeds.public_list_entries``: reason, basis, authority, dates; never
    the credit class; serious-list proposals and rejections are internal). Removed entries
    stay visible with their removal (mirrors need them); ``status=listed`` shows those in
    force. Oldest entry first; ``changed_since`` keeps only entries changed since then."""
    from qsampling.credit.feeds import public_list_entries

    if list_name not in LIST_NAMES:
        raise NotFound(
            f"No list {list_name!r}; lists: {', '.join(LIST_NAMES)}. 名单不存在。",
            code="ListNotFound",
        )
    if status is not None and status not in ("listed", "removed"):
        raise InvalidInput("status must be listed or removed. 状态参数无效。")
    if region is not None and not _REGION.match(region):
        raise InvalidInput("region must be 2, 4 or 6 digits. 地区代码无效。", code="InvalidRegion")
    if changed_since is not None and changed_since.tzinfo is None:
        changed_since = changed_since.replace(tzinfo=UTC)
    c = decode_cursor(cursor, "lid")
    page = await public_list_entries(
        session,
        list_name=list_name,
        uscc=uscc,
        region_prefix=region,
        in_force=None if status is None else status == "listed",
        changed_since=changed_since,
        cursor=_as_int(c.get("id")) if c is not None else None,
        limit=max(1, min(limit, MAX_LIMIT)),
    )
    items = [_list_item(e) for e in page.items]
    nxt = encode_cursor({"o": "lid", "id": page.next_cursor}) if page.next_cursor else None
    lm = max((i["updated_at"] for i in items if i["updated_at"] is not None), default=None)
    return Page(items, nxt, lm)


# --- draws (read through the draws module) ------------------------------------------------------


async def recent_draws(session: AsyncSession, *, limit: int = 10) -> list[dict[str, Any]]:
    """Drawn plans, newest first, with commitment, entropy and seed."""
    rows = (
        await session.execute(
            text(
                "SELECT d.plan_id, p.name AS plan_name, p.check_item_code, "
                "coalesce(ci.name, '') AS check_item_name, c.commitment, c.created_at "
                "AS committed_at, d.drawn_at, d.entropy, d.seed, c.pool_size, "
                "d.selected_count FROM draws d JOIN plans p ON p.id = d.plan_id "
                "JOIN commitments c ON c.id = d.commitment_id "
                "LEFT JOIN check_items ci ON ci.code = p.check_item_code "
                "ORDER BY d.drawn_at DESC, d.id DESC LIMIT :lim"
            ),
            {"lim": max(1, min(limit, 200))},
        )
    ).all()
    return [dict(r._mapping) for r in rows]


async def draw_detail(session: AsyncSession, *, plan_id: int) -> dict[str, Any]:
    """One drawn plan and its selected enterprises (rank, USCC, name, key). The stratum and
    the inclusion probability are left out: by default the stratum is the credit class."""
    rows = await recent_draws_for(session, plan_id=plan_id)
    if rows is None:
        raise NotFound(
            f"Plan {plan_id} has not been drawn (or does not exist). 该计划尚未抽取。",
            code="DrawNotFound",
        )
    selected = (
        await session.execute(
            text(
                "SELECT t.draw_rank, t.uscc, e.name AS enterprise_name, t.draw_key "
                "FROM tasks t JOIN draws d ON d.id = t.draw_id "
                "JOIN enterprises e ON e.uscc = t.uscc WHERE d.plan_id = :pid AND t.plan_id = :pid "
                "ORDER BY t.draw_rank LIMIT 5000"
            ),
            {"pid": plan_id},
        )
    ).all()
    return {**rows, "selected": [dict(r._mapping) for r in selected]}


async def recent_draws_for(session: AsyncSession, *, plan_id: int) -> dict[str, Any] | None:
    row = (
        await session.execute(
            text(
                "SELECT d.plan_id, p.name AS plan_name, p.check_item_code, "
                "coalesce(ci.name, '') AS check_item_name, c.commitment, c.created_at "
                "AS committed_at, d.drawn_at, d.entropy, d.seed, c.pool_size, "
                "d.selected_count, encode(c.nonce, 'hex') AS nonce "
                "FROM draws d JOIN plans p ON p.id = d.plan_id "
                "JOIN commitments c ON c.id = d.commitment_id "
                "LEFT JOIN check_items ci ON ci.code = p.check_item_code WHERE d.plan_id = :pid"
            ),
            {"pid": plan_id},
        )
    ).first()
    return dict(row._mapping) if row is not None else None


# --- statistics (through the statistics module) --------------------------------------------------


async def public_stats(
    session: AsyncSession,
    *,
    group_by: Sequence[str] = ("category:1",),
    region: str | None = None,
    category: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    check_item: str | None = None,
    method: str = "wilson",
    confidence: float = 0.95,
    weighted: bool = True,
    target: float | None = None,
) -> Any:
    """Pass rates of final results as the statistics module computes them for the public
    (``qsampling.stats.service.public_pass_rates``: weighted population estimates by
    default, intervals, target verdicts; aggregate counts only, no credit class)."""
    from qsampling.stats.service import StatsFilters, public_pass_rates

    return await public_pass_rates(
        session,
        group_by=list(group_by),
        filters=StatsFilters(
            from_date=date_from,
            to_date=date_to,
            category=category,
            region=region,
            check_item=check_item,
        ),
        method=method,
        confidence=confidence,
        weighted=weighted,
        target=target,
    )


# --- publication -------------------------------------------------------------------------------


def due_date_for(inspected_on: date) -> tuple[date, bool, str | None]:
    res = add_working_days(inspected_on, PUBLICATION_WORKING_DAYS)
    return res.due_date, res.exact, res.note


def _clean(value: Any, limit: int = 500) -> str:
    """Public free text: identity numbers and phones masked, on one line."""
    s = redact(str(value)) if value is not None else ""
    return " ".join(s.split())[:limit]


_SNAPSHOT_SQL = """
SELECT r.id AS result_id, r.task_id, t.plan_id, t.uscc, e.name AS enterprise_name,
       e.entity_type, e.region_code, coalesce(rg.name, '') AS region_name,
       t.check_item_code, coalesce(ci.name, '') AS check_item_name,
       (r.inspected_at AT TIME ZONE 'Asia/Shanghai')::date AS inspected_on,
       r.final_conclusion, r.conclusion, r.category_codes AS result_codes, r.final_at,
       ARRAY(SELECT i.name FROM task_inspectors ti JOIN inspectors i
             ON i.inspector_id = ti.inspector_id WHERE ti.task_id = r.task_id
             ORDER BY ti.position) AS inspector_names
FROM results r JOIN tasks t ON t.id = r.task_id
JOIN enterprises e ON e.uscc = t.uscc
LEFT JOIN regions rg ON rg.code = e.region_code
LEFT JOIN check_items ci ON ci.code = t.check_item_code
WHERE r.id = ANY(:ids) AND r.final_at IS NOT NULL
"""

_SAMPLES_SQL = """
SELECT s.result_id, s.sample_no, s.product_name, s.brand, s.model_spec, s.batch_no,
       s.production_date, s.category_code, ti.name AS item_name, ti.requirement,
       coalesce(ri.measured_value, ti.measured_value) AS measured_value,
       coalesce(ri.unit, ti.unit) AS unit, coalesce(ri.verdict, ti.verdict) AS verdict
FROM samples s
LEFT JOIN test_items ti ON ti.sample_id = s.id
LEFT JOIN retests rt ON rt.result_id = s.result_id
LEFT JOIN retest_items ri ON ri.retest_id = rt.id AND ri.test_item_id = ti.id
WHERE s.result_id = ANY(:ids)
ORDER BY s.result_id, s.sample_no, ti.item_no
"""


def _samples_of(rows: Sequence[Any]) -> dict[int, list[dict[str, Any]]]:
    by_result: dict[int, dict[int, dict[str, Any]]] = {}
    for r in rows:
        samples = by_result.setdefault(r.result_id, {})
        s = samples.get(r.sample_no)
        if s is None:
            s = samples[r.sample_no] = {
                "sample_no": r.sample_no,
                "product": _clean(r.product_name, 200),
                "brand": _clean(r.brand, 100) or None,
                "model_spec": _clean(r.model_spec, 200) or None,
                "batch": _clean(r.batch_no, 100) or None,
                "production_date": r.production_date.isoformat() if r.production_date else None,
                "category_code": r.category_code,
                "verdict": "pass",
                "verdict_zh": CONCLUSION_ZH["pass"],
                "failed_items": [],
            }
        if r.item_name is not None and r.verdict == "fail":
            s["verdict"] = "fail"
            s["verdict_zh"] = CONCLUSION_ZH["fail"]
            s["failed_items"].append(
                {
                    "item": _clean(r.item_name, 200),
                    "requirement": _clean(r.requirement, 300) or None,
                    "measured": _clean(r.measured_value, 200) or None,
                    "unit": _clean(r.unit, 32) or None,
                }
            )
    return {rid: list(s.values()) for rid, s in by_result.items()}


def _conclusion(final_conclusion: str | None, conclusion: str | None) -> str:
    """pass / fail as finalised (retest included); not_tested when there was nothing to
    conclude (refused, unreachable, closed: see the result codes)."""
    c = final_conclusion or conclusion
    return c if c in ("pass", "fail") else "not_tested"


async def snapshot_results(
    session: AsyncSession,
    *,
    result_ids: Sequence[int],
    now: datetime,
    publish: bool = True,
    backdate: bool = False,
) -> int:
    """Write (or refresh) the public snapshot of these final results, with due dates;
    ``publish`` stamps ``published_at`` on rows not yet published. Returns rows written."""
    if not result_ids:
        return 0
    ids = sorted(set(int(i) for i in result_ids))
    heads = (await session.execute(text(_SNAPSHOT_SQL), {"ids": ids})).all()
    if not heads:
        return 0
    samples = _samples_of((await session.execute(text(_SAMPLES_SQL), {"ids": ids})).all())
    params = []
    for h in heads:
        ss = samples.get(h.result_id, [])
        due, exact, note = due_date_for(h.inspected_on)
        products = "；".join(
            " / ".join(v for v in (s["product"], s["brand"], s["model_spec"], s["batch"]) if v)
            for s in ss
        )
        failed = "；".join(
            f"{s['product']}：" + "、".join(fi["item"] for fi in s["failed_items"])
            for s in ss
            if s["failed_items"]
        )
        params.append(
            {
                "result_id": h.result_id,
                "task_id": h.task_id,
                "plan_id": h.plan_id,
                "uscc": h.uscc,
                "enterprise_name": _clean(h.enterprise_name, 200),
                "entity_type": h.entity_type,
                "region_code": h.region_code,
                "region_name": h.region_name,
                "check_item_code": h.check_item_code,
                "check_item_name": h.check_item_name,
                "inspected_on": h.inspected_on,
                "conclusion": _conclusion(h.final_conclusion, h.conclusion),
                "result_codes": list(h.result_codes or []),
                "category_codes": sorted({s["category_code"] for s in ss if s["category_code"]}),
                "samples": json.dumps(ss, ensure_ascii=False),
                "products_text": products,
                "failed_items_text": failed,
                "inspector_names": [_clean(n, 50) for n in h.inspector_names or []],
                "final_at": h.final_at,
                "due_date": due,
                "due_exact": exact,
                "due_note": note,
                "published_at": (h.final_at if backdate else now) if publish else None,
            }
        )
    await session.execute(
        text(
            """
            INSERT INTO result_publications (result_id, task_id, plan_id, uscc, enterprise_name,
              entity_type, region_code, region_name, check_item_code, check_item_name,
              inspected_on, conclusion, result_codes, category_codes, samples, products_text,
              failed_items_text, inspector_names, final_at, due_date, due_exact, due_note,
              published_at)
            VALUES (:result_id, :task_id, :plan_id, :uscc, :enterprise_name, :entity_type,
              :region_code, :region_name, :check_item_code, :check_item_name, :inspected_on,
              :conclusion, :result_codes, :category_codes, CAST(:samples AS jsonb),
              :products_text, :failed_items_text, :inspector_names, :final_at, :due_date,
              :due_exact, :due_note, :published_at)
            ON CONFLICT (result_id) DO UPDATE SET
              enterprise_name = EXCLUDED.enterprise_name, region_name = EXCLUDED.region_name,
              conclusion = EXCLUDED.conclusion, result_codes = EXCLUDED.result_codes,
              category_codes = EXCLUDED.category_codes, samples = EXCLUDED.samples,
              products_text = EXCLUDED.products_text,
              failed_items_text = EXCLUDED.failed_items_text,
              inspector_names = EXCLUDED.inspector_names, final_at = EXCLUDED.final_at,
              published_at = coalesce(result_publications.published_at,
                                      EXCLUDED.published_at),
              updated_at = now()
            """
        ),
        params,
    )
    await refresh_csv_lines(session, result_ids=[p["result_id"] for p in params])
    return len(params)


async def refresh_csv_lines(session: AsyncSession, *, result_ids: Sequence[int]) -> None:
    """Store each row as it appears in results.csv (see ``exports.COLUMNS["results"]``)."""
    from qsampling.disclosure.formats import csv_line

    if not result_ids:
        return
    rows = (
        await session.execute(
            text(
                "SELECT id, uscc, enterprise_name, entity_type, region_code, region_name, "
                "check_item_code, check_item_name, inspected_on, conclusion, result_codes, "
                "category_codes, products_text, failed_items_text, inspector_names, published_at "
                "FROM result_publications WHERE result_id = ANY(:ids)"
            ),
            {"ids": list(result_ids)},
        )
    ).all()
    ids, lines = [], []
    for r in rows:
        ids.append(r.id)
        lines.append(
            csv_line(
                [
                    r.id,
                    r.uscc,
                    r.enterprise_name,
                    r.entity_type,
                    r.region_code,
                    r.region_name,
                    r.check_item_code,
                    r.check_item_name,
                    r.inspected_on,
                    r.conclusion,
                    CONCLUSION_ZH.get(r.conclusion, r.conclusion),
                    list(r.result_codes),
                    list(r.category_codes),
                    r.products_text,
                    r.failed_items_text,
                    list(r.inspector_names),
                    r.published_at,
                ]
            )
        )
    await session.execute(
        text(
            "UPDATE result_publications p SET csv_line = x.line "
            "FROM unnest(CAST(:ids AS bigint[]), CAST(:lines AS text[])) AS x(id, line) "
            "WHERE p.id = x.id"
        ),
        {"ids": ids, "lines": lines},
    )


async def register_final_results(
    session: AsyncSession,
    *,
    now: datetime,
    actor: Actor,
    batch: int = 5000,
    backdate: bool = False,
) -> int:
    """Consume new final-result events (idempotent: a cursor row remembers the last event
    id, and a result already published is left as it is) and publish those results.
    ``backdate`` (demo, backfill) stamps each with the time it became final."""
    await session.execute(
        text(
            "INSERT INTO disclosure_cursors (name, last_id) VALUES (:n, 0) "
            "ON CONFLICT (name) DO NOTHING"
        ),
        {"n": CURSOR_NAME},
    )
    last = int(
        await session.scalar(
            text("SELECT last_id FROM disclosure_cursors WHERE name = :n FOR UPDATE"),
            {"n": CURSOR_NAME},
        )
        or 0
    )
    total = 0
    while True:
        rows = (
            await session.execute(
                text(
                    "SELECT id, result_id FROM domain_events WHERE id > :last "
                    "AND kind = ANY(:kinds) ORDER BY id LIMIT :n"
                ),
                {"last": last, "kinds": list(FINAL_EVENT_KINDS), "n": batch},
            )
        ).all()
        if not rows:
            break
        last = rows[-1].id
        ids = [r.result_id for r in rows if r.result_id is not None]
        fresh = (
            (
                await session.execute(
                    text(
                        "SELECT x FROM unnest(CAST(:ids AS bigint[])) x WHERE NOT EXISTS "
                        "(SELECT 1 FROM result_publications p WHERE p.result_id = x "
                        "AND p.published_at IS NOT NULL)"
                    ),
                    {"ids": ids},
                )
            )
            .scalars()
            .all()
        )
        written = await snapshot_results(
            session, result_ids=list(fresh), now=now, backdate=backdate
        )
        if written:
            from qsampling.audit.service import record_many

            await record_many(
                session,
                actor=actor,
                action="disclosure.result_published",
                entity_type="result",
                items=[(str(i), {"result_id": i, "published_at": now.isoformat()}) for i in fresh],
            )
        total += written
        if len(rows) < batch:
            break
    await session.execute(
        text("UPDATE disclosure_cursors SET last_id = :l, updated_at = now() WHERE name = :n"),
        {"l": last, "n": CURSOR_NAME},
    )
    await session.flush()
    return total


async def publish_due(session: AsyncSession, *, now: datetime, actor: Actor) -> int:
    """Safety net: anything registered but unpublished is published by its due date."""
    ids = (
        (
            await session.execute(
                text(
                    "UPDATE result_publications SET published_at = :now, updated_at = now() "
                    "WHERE published_at IS NULL AND due_date <= :today RETURNING result_id"
                ),
                {"now": now, "today": today_in_china(now)},
            )
        )
        .scalars()
        .all()
    )
    if ids:
        from qsampling.audit.service import record_many

        await refresh_csv_lines(session, result_ids=list(ids))
        await record_many(
            session,
            actor=actor,
            action="disclosure.result_published_due",
            entity_type="result",
            items=[(str(i), {"result_id": i, "published_at": now.isoformat()}) for i in ids],
        )
    return len(ids)


def overdue_cutoff(today: date) -> date:
    """The latest inspection end date whose publication due date is already past: every
    inspection that ended on or before it should be public by now."""
    d = today - timedelta(days=1)
    while add_working_days(d, PUBLICATION_WORKING_DAYS).due_date >= today:
        d -= timedelta(days=1)
    return d


async def overdue_report(
    session: AsyncSession, *, today: date, region: str | None = None, limit: int = 500
) -> dict[str, Any]:
    """Results not public although their due date has passed (or is today), per result:
    registered-but-unpublished publications, and results still not final whose inspection
    ended more than 20 working days ago (objection or retest pending: the deadline is at
    risk, or missed)."""
    if region is not None and not _REGION.match(region):
        raise InvalidInput("region must be 2, 4 or 6 digits. 地区代码无效。", code="InvalidRegion")
    limit = max(1, min(limit, 5000))
    # due within the next 5 working days: ended on or before the cutoff of today + 5 wd
    soon_day = add_working_days(today, 5).due_date
    soon_cutoff = overdue_cutoff(soon_day + timedelta(days=1))
    reg = like_prefix(region) if region else "%"
    rows = (
        await session.execute(
            text(
                """
                SELECT r.id AS result_id, r.task_id, t.uscc, e.name AS enterprise_name,
                       e.region_code, t.check_item_code,
                       (r.inspected_at AT TIME ZONE 'Asia/Shanghai')::date AS inspected_on,
                       t.status AS task_status, r.final_at,
                       p.id AS publication_id, p.due_date AS registered_due_date
                FROM results r JOIN tasks t ON t.id = r.task_id
                JOIN enterprises e ON e.uscc = t.uscc
                LEFT JOIN result_publications p ON p.result_id = r.id
                WHERE r.live AND (p.id IS NULL OR p.published_at IS NULL)
                  AND (r.inspected_at AT TIME ZONE 'Asia/Shanghai')::date <= :soon
                  AND e.region_code LIKE :reg
                ORDER BY r.inspected_at, r.id LIMIT :lim
                """
            ),
            {"soon": soon_cutoff, "reg": reg, "lim": limit},
        )
    ).all()
    items = []
    for r in rows:
        due, exact, note = due_date_for(r.inspected_on)
        items.append(
            {
                "result_id": r.result_id,
                "task_id": r.task_id,
                "uscc": r.uscc,
                "enterprise_name": r.enterprise_name,
                "region_code": r.region_code,
                "check_item_code": r.check_item_code,
                "inspected_on": r.inspected_on,
                "due_date": due,
                "due_exact": exact,
                "due_note": note,
                "overdue": due < today,
                "days_overdue": (today - due).days if due < today else 0,
                "final": r.final_at is not None,
                "task_status": r.task_status,
                "reason": (
                    "final but not yet published (run the publish step)"
                    if r.final_at is not None
                    else "not final yet (notification, objection or retest pending)"
                ),
            }
        )
    return {
        "today": today,
        "working_days": PUBLICATION_WORKING_DAYS,
        "overdue_count": sum(1 for i in items if i["overdue"]),
        "due_soon_count": sum(1 for i in items if not i["overdue"]),
        "items": items,
    }
