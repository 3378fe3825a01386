"""Bulk import of enterprises and inspectors (CSV in UTF-8 / UTF-8 with BOM / GB18030, XLSX).

How an enterprise file goes in (``import_enterprises``):

1. One pass over the bytes: SHA-256, format and encoding (:mod:`qsampling.directory.files`).
   A file that is empty, binary or has the wrong header is refused as a whole (422 with a
   code; the CLI exits non-zero with one line) before anything is written.
2. Chunks of rows are validated column by column, not row by row: USCCs through the
   vectorised :func:`qsampling.core.uscc.validate_many` (after trimming and upper-casing),
   regions, units, enumerations, categories and dates through set operations and a mapping
   computed once per distinct value for the whole file, names and addresses with C-level
   passes (lengths, ``str.isprintable``) and one regular-expression scan over the joined
   column (personal ID and mobile numbers are refused), duplicates inside the file with one
   dict (the first occurrence wins; later ones are rejected naming the first row). The
   cyclic garbage collector is paused meanwhile: the objects are many and acyclic.
3. Accepted rows become COPY text lines, streamed with ``COPY … FROM STDIN`` into a temporary
   staging table while the next chunk is parsed in a worker thread; one statement then
   merges the stage by ``uscc``: an ``UPDATE`` of the enterprises whose values differ (only
   the columns the file has) and an ``INSERT`` of the new codes. Unchanged rows are not
   written at all, so importing the same file again changes nothing (0 inserted, 0 updated).
   When the file brings many new enterprises (at least :data:`BULK_MIN_ROWS`, and a quarter
   of the table), the bulk-load path is taken instead: see :func:`_bulk_begin`.
   A regular CSV (up to :data:`~qsampling.directory.files.FAST_MAX_BYTES`: no blank rows,
   every row as wide as the header, quotes only where RFC 4180 puts them) takes the
   whole-column path instead (:meth:`EnterpriseValidator.validate_table`): Arrow's C++
   reader parses it into columns on all cores, the same rules run as Arrow kernels over
   whole columns (USCCs as an 18-byte matrix through
   :func:`qsampling.core.uscc.validate_bytes`, duplicates by one sort of those bytes), and
   the accepted rows go to COPY as CSV rendered by Arrow, new ones in ``uscc`` order so the
   primary key only grows at its right edge. Both paths give the same report and rows (a
   test runs every rule through both); anything irregular takes the row path.
4. Everything happens in the caller's single transaction. In strict mode the first error
   rolls the directory changes back to a savepoint and the rest of the file is only
   validated: nothing is stored, but the report lists every problem.
5. The report (counts, ignored columns) is a ``directory_imports`` row and each rejected row
   a ``directory_import_rejections`` row (row number, column, value, reason), downloadable
   as CSV. Columns of the file that the directory does not know are read past and listed.

Audit: one entry per import (action ``enterprise.import`` / ``inspector.import``, the
import's id, payload: file name, SHA-256 of the file and the counts), not one per row: the
file's digest pins exactly what was loaded, and a million-row import must not write a million
audit entries. Credit classes are never imported: the credit module owns them (new
enterprises start at B).
"""

from __future__ import annotations

import asyncio
import gc
import operator
import re
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import IO, Any

import asyncpg
import numpy as np
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.audit import service as audit
from qsampling.context import Actor
from qsampling.core import uscc as uscc_lib
from qsampling.directory.files import (
    CHUNK_ROWS,
    Columns,
    FileProblem,
    Sniffed,
    Table,
    columns_of,
    map_header,
    open_table,
    read_columns,
    sniff,
)
from qsampling.directory.service import (
    CONTROL_RE,
    PERSONAL_DATA_RE,
    PERSONAL_DATA_REASON,
    known_qualifications,
)
from qsampling.models.directory import (
    Category,
    DirectoryImport,
    DirectoryImportRejection,
    Region,
    Unit,
)

Progress = Callable[[int, int, int], None]  # (bytes read, bytes total, rows read)

PREVIEW = 100
MAX_VALUE_CHARS = 200

# --- column definitions ----------------------------------------------------------------------

ENTERPRISE_ALIASES: dict[str, tuple[str, ...]] = {
    "uscc": ("统一社会信用代码", "社会信用代码", "信用代码", "统一代码"),
    "name": ("名称", "企业名称", "主体名称", "单位名称", "市场主体名称"),
    "entity_type": ("主体类型", "市场主体类型", "类型"),
    "region_code": ("行政区划代码", "区划代码", "行政区划"),
    "address": ("住所", "地址", "经营场所", "住所（经营场所）", "住所(经营场所)"),
    "supervising_unit": ("监管单位", "管辖单位", "监管单位代码", "监管所"),
    "category_codes": ("产品类别", "产品类别代码", "类别代码"),
    "size": ("企业规模", "规模"),
    "channel": ("渠道", "经营渠道", "生产经营类型"),
    "status": ("登记状态", "经营状态", "状态"),
    "registration_date": ("成立日期", "登记日期", "注册日期"),
}
ENTERPRISE_REQUIRED = ("uscc", "name", "region_code", "size", "channel")

INSPECTOR_ALIASES: dict[str, tuple[str, ...]] = {
    "inspector_id": ("人员编号", "执法人员编号", "执法证号", "编号"),
    "name": ("姓名", "执法人员姓名"),
    "unit_code": ("单位代码", "所属单位", "所属单位代码", "单位"),
    "region_scope": ("执法区域", "区域范围", "辖区"),
    "qualifications": ("检查资质", "资质"),
    "active": ("在岗", "是否在岗", "启用", "状态"),
}
INSPECTOR_REQUIRED = ("inspector_id", "name", "unit_code")


def _choices(pairs: dict[str, tuple[str, ...]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for canonical, names in pairs.items():
        for n in (canonical, *names):
            out[n] = canonical
            out[n.lower()] = canonical
    return out


ENTITY_TYPES = _choices(
    {
        "企业": ("enterprise", "公司", "企业法人"),
        "个体工商户": ("sole_trader", "个体", "个体户"),
        "农民专业合作社": ("cooperative", "合作社", "专业合作社"),
        "其他": ("other",),
    }
)
SIZES = _choices(
    {
        "large": ("大型", "大"),
        "medium": ("中型", "中"),
        "small": ("小型", "小"),
        "micro": ("微型", "微"),
    }
)
CHANNELS = _choices(
    {
        "production": ("生产", "生产企业", "生产者"),
        "circulation": ("流通", "销售", "经销", "销售者"),
        "e-commerce": ("ecommerce", "e_commerce", "电商", "电子商务", "网络销售", "网店"),
    }
)
STATUSES = _choices(
    {
        "存续": ("存续（在营、开业、在册）", "在营", "开业", "在册"),
        "在业": (),
        "注销": (),
        "吊销": ("吊销，未注销", "吊销,未注销"),
        "撤销": (),
        "迁出": (),
        "停业": (),
        "清算": (),
    }
)
TRUE_FALSE = {
    **{v: True for v in ("true", "1", "yes", "y", "是", "在岗", "启用", "有效", "t")},
    **{v: False for v in ("false", "0", "no", "n", "否", "离岗", "停用", "无效", "f")},
}

_SPLIT = re.compile(r"[;；,，、|\s]+")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%Y年%m月%d日")
_SEP = "\x00"  # joins a column into one string for whole-column scans (NUL never in a cell)


def mask(value: str) -> str:
    """Stars over anything that looks like an ID or mobile number (kept in the report)."""
    return PERSONAL_DATA_RE.sub(
        lambda m: m.group()[:3] + "*" * (len(m.group()) - 5) + m.group()[-2:], value
    )


# --- whole-column helpers --------------------------------------------------------------------


def strip_column(col: Sequence[str]) -> list[str]:
    """Trimmed cells (``str.strip`` returns the same object when there is nothing to trim)."""
    return list(map(str.strip, col))


_NULL_IF_EMPTY = {"": "\\N"}


def null_if_empty(col: Sequence[str]) -> list[str]:
    """COPY's NULL for empty cells, at C speed (``dict.get(v, v)``)."""
    return list(map(_NULL_IF_EMPTY.get, col, col))


def map_cached(col: Sequence[str], cache: dict[str, Any], fn: Callable[[str], Any]) -> list[Any]:
    """``fn`` over a column, computed once per distinct value for the whole file."""
    missing = set(col).difference(cache)
    for v in missing:
        cache[v] = fn(v)
    return list(map(cache.__getitem__, col))


def matching_rows(col: Sequence[str], pattern: re.Pattern[str]) -> list[int]:
    """Indices of cells where ``pattern`` matches, from one scan over the joined column.
    (A cell holding NUL itself, which the file reader never produces, is always matched.)"""
    if not col:
        return []
    joined = _SEP.join(col)
    if joined.count(_SEP) != len(col) - 1:
        return [i for i, c in enumerate(col) if _SEP in c or pattern.search(c)]
    positions = [m.start() for m in pattern.finditer(joined)]
    if not positions:
        return []
    lens = np.fromiter(map(len, col), dtype=np.int64, count=len(col))
    starts = np.concatenate(([0], np.cumsum(lens + 1)[:-1]))
    rows = np.searchsorted(starts, np.asarray(positions), side="right") - 1
    return sorted(set(rows.tolist()))


_ELEVEN_DIGITS = re.compile(r"[0-9]{11}")


def personal_rows(col: Sequence[str]) -> list[int]:
    """Cells with a personal ID or mobile number: a cheap scan for eleven digits in a row
    first, the exact pattern only on those cells."""
    return [i for i in matching_rows(col, _ELEVEN_DIGITS) if PERSONAL_DATA_RE.search(col[i])]


def control_rows(col: Sequence[str]) -> list[int]:
    """Cells with control characters (tabs, line breaks …); one C-level pass usually."""
    if all(map(str.isprintable, col)):
        return []
    return [i for i, c in enumerate(col) if CONTROL_RE.search(c)]


def parse_date(value: str) -> date | str:
    """A date, or the reason it is not one."""
    for fmt in _DATE_FORMATS:
        try:
            if fmt == "%Y-%m-%d":
                if len(value) != 10:
                    continue
                d = date.fromisoformat(value)  # the common case, much faster than strptime
            else:
                d = datetime.strptime(value, fmt).date()
        except ValueError:
            continue
        if d > datetime.now(UTC).date():
            return "日期晚于今天 / date is in the future"
        if d.year < 1900:
            return "日期早于1900年 / date before 1900"
        return d
    return "日期格式应为 YYYY-MM-DD / date must look like 2020-05-31"


def _take(col: Sequence[Any], idx: list[int]) -> list[Any]:
    if not idx:
        return []
    if len(idx) == 1:
        return [col[idx[0]]]
    return list(operator.itemgetter(*idx)(col))


# --- chunk validation ------------------------------------------------------------------------


@dataclass
class Rejections:
    """Per chunk: (row number, field, value, reason); at most one entry per row and field."""

    numbers: list[int]
    items: list[tuple[int, str, str | None, str]] = field(default_factory=list)
    bad: np.ndarray = field(init=False)
    _keys: set[tuple[int, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.bad = np.zeros(len(self.numbers), dtype=bool)

    def add(self, i: int, fld: str, value: str | None, reason: str) -> None:
        self.bad[i] = True
        if (i, fld) in self._keys:  # the first problem of a cell is the one reported
            return
        self._keys.add((i, fld))
        if value is not None:
            value = mask(value)[:MAX_VALUE_CHARS]
        self.items.append((self.numbers[i], fld, value, reason))

    @property
    def rows(self) -> int:
        return int(self.bad.sum())


@dataclass
class Chunk:
    numbers: list[int]
    lines: list[str]  # COPY text of the accepted rows
    codes: list[str]  # their USCCs
    rejections: Rejections

    @property
    def size(self) -> int:
        return len(self.numbers)


def _invalid_rows(values: Sequence[Any]) -> list[int]:
    """Indices of ``_Invalid`` results (a C-level scan first: usually there are none)."""
    if not any(map(_Invalid.__instancecheck__, values)):
        return []
    return [i for i, v in enumerate(values) if isinstance(v, _Invalid)]


_RAW = object()  # report the cell as the file has it


class _Invalid:
    __slots__ = ("reason", "value")

    def __init__(self, reason: str, value: Any = _RAW) -> None:
        self.reason = reason
        self.value = value


class _EntityTypes(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "其他"


_ENTITY_BY_PREFIX = _EntityTypes(
    {
        dept + org: {
            "enterprise": "企业",
            "sole_trader": "个体工商户",
            "cooperative": "农民专业合作社",
        }[k]
        for k, (dept, org) in uscc_lib.MARKET_SUPERVISION_TYPES.items()
    }
)
_FIRST_TWO = operator.itemgetter(slice(0, 2))


def _derived_entity_types(codes: list[str]) -> list[str]:
    """:func:`~qsampling.directory.service.entity_type_from_uscc` over a column, at C speed."""
    return list(map(_ENTITY_BY_PREFIX.__getitem__, map(_FIRST_TWO, codes)))


NULL = "\\N"  # NULL in PostgreSQL's COPY text format

CANONICAL = {
    "entity_type": {"企业", "个体工商户", "农民专业合作社", "其他"},
    "size": {"large", "medium", "small", "micro"},
    "channel": {"production", "circulation", "e-commerce"},
    "status": {"存续", "在业", "注销", "吊销", "撤销", "迁出", "停业", "清算"},
}


def copy_escape(col: Sequence[str]) -> Sequence[str]:
    """Cells as COPY text fields: backslashes doubled (tabs and line breaks never get here:
    they are rejected as control characters)."""
    joined = _SEP.join(col)
    if "\\" not in joined:
        return col
    return joined.replace("\\", "\\\\").split(_SEP)


class EnterpriseValidator:
    """Validates chunks of an enterprise file; keeps the USCCs seen so far for duplicates.

    Each chunk comes back as COPY text lines of its accepted rows, in :data:`STAGE_COLUMNS`
    order, normalised (canonical codes and values, ISO dates, ``{a,b}`` category arrays)."""

    def __init__(
        self,
        cols: Columns,
        width: int,
        *,
        regions: set[str],
        units: set[str],
        categories: set[str],
    ) -> None:
        self.cols = cols
        self.width = width
        self.regions = regions
        self.units = units
        self.categories = categories
        self.seen: dict[str, int] = {}
        # distinct value → result, for the whole file (dates, categories, enumerations)
        self._caches: dict[str, dict[str, Any]] = {}

    def present(self, name: str) -> bool:
        return name in self.cols.index

    def _enum(
        self,
        rej: Rejections,
        data: dict[str, Sequence[str]],
        name: str,
        choices: dict[str, str],
        *,
        default: str | None,
    ) -> Sequence[str]:
        """Canonical values ("" where invalid or, with ``default=""``, where empty)."""
        n = len(rej.numbers)
        col = data.get(name)
        if col is None:
            return [default or ""] * n
        if set(col) <= CANONICAL[name]:
            return col  # the usual case: nothing to trim, nothing to map
        allowed = " / ".join(sorted(CANONICAL[name]))

        def m(raw: str) -> Any:
            v = raw.strip()
            if not v:
                return default if default is not None else _Invalid("必填 / required")
            hit = choices.get(v) or choices.get(v.lower())
            if hit is None:
                return _Invalid(f"应为 {allowed} 之一 / must be one of {allowed}")
            return hit

        out = map_cached(col, self._caches.setdefault(name, {}), m)
        for i in _invalid_rows(out):
            rej.add(i, name, col[i], out[i].reason)
            out[i] = ""
        return out

    def _known(
        self,
        rej: Rejections,
        col: Sequence[str],
        known: set[str],
        name: str,
        reason: Callable[[str], str],
        *,
        optional: bool,
    ) -> Sequence[str]:
        """Trimmed values; cells not in ``known`` are rejected. One set difference per chunk:
        trimming and the per-row loop only happen when something is off."""
        unknown = set(col).difference(known)
        if optional:
            unknown.discard("")
        if not unknown:
            return col
        values = strip_column(col)
        unknown = set(values).difference(known)
        if optional:
            unknown.discard("")
        if unknown:
            for i, v in enumerate(values):
                if v in unknown:
                    rej.add(i, name, v or None, reason(v))
        return values

    def validate(self, numbers: list[int], rows: list[list[str]]) -> Chunk:
        data, too_long = columns_of(rows, self.cols, self.width)
        n = len(rows)
        rej = Rejections(numbers)
        for i in too_long:
            rej.add(
                i,
                "*",
                None,
                f"比表头多出单元格 / more cells than the header has ({len(rows[i])} > "
                f"{self.width})",
            )

        # uscc: trimmed and upper-cased first, then the vectorised check
        raw = strip_column(data["uscc"])
        codes = list(map(str.upper, raw))
        ok = uscc_lib.validate_many(codes)
        joined = "".join(codes)
        if not (len(joined) == 18 * n and joined.isascii() and joined.isalnum()):
            # a few cells carry separators or full-width characters: keep the clean form
            codes = [
                uscc_lib.normalize(c) if ok[i] and not (len(c) == 18 and c.isalnum()) else c
                for i, c in enumerate(codes)
            ]
        for i in np.flatnonzero(~ok).tolist():
            reason = "必填 / required" if not codes[i] else uscc_lib.invalid_reason(codes[i])
            rej.add(i, "uscc", raw[i] or None, reason or "invalid")
        # duplicates: the first row with a code owns it (invalid codes are already rejected)
        firsts = np.fromiter(map(self.seen.setdefault, codes, numbers), dtype=np.int64, count=n)
        for i in np.flatnonzero((firsts != np.asarray(numbers)) & ok).tolist():
            first = int(firsts[i])
            rej.add(i, "uscc", raw[i], f"与第{first}行重复 / duplicates row {first}")

        # name: required, at most 200 characters, no personal numbers, no control characters
        names = strip_column(data["name"])
        if not names or min(map(len, names)) == 0 or max(map(len, names)) > 200:
            for i, nm in enumerate(names):
                if not nm:
                    rej.add(i, "name", None, "必填 / required")
                elif len(nm) > 200:
                    rej.add(i, "name", nm, "超过200字 / longer than 200 characters")
        for i in personal_rows(names):
            rej.add(i, "name", names[i], PERSONAL_DATA_REASON)
        for i in control_rows(names):
            rej.add(i, "name", names[i], "含控制字符 / contains control characters")

        # entity type: derived from the code when the column is absent or the cell empty
        entity_types = self._enum(rej, data, "entity_type", ENTITY_TYPES, default="")
        if not all(entity_types):
            derived = _derived_entity_types(codes)
            entity_types = [e or derived[i] for i, e in enumerate(entity_types)]

        # region (required, known)
        def region_reason(v: str) -> str:
            if not v:
                return "必填 / required"
            if not re.fullmatch(r"[0-9]{6}", v):
                return "应为6位数字 / must be 6 digits (GB/T 2260)"
            return "未知的行政区划代码 / unknown region code"

        regs = self._known(
            rej, data["region_code"], self.regions, "region_code", region_reason, optional=False
        )

        # address (optional)
        if self.present("address"):
            addrs = strip_column(data["address"])
            if addrs and max(map(len, addrs)) > 300:
                for i, a in enumerate(addrs):
                    if len(a) > 300:
                        rej.add(i, "address", a, "超过300字 / longer than 300 characters")
            for i in personal_rows(addrs):
                rej.add(i, "address", addrs[i], PERSONAL_DATA_REASON)
            for i in control_rows(addrs):
                rej.add(i, "address", addrs[i], "含控制字符 / contains control characters")
            addresses: Sequence[str] = null_if_empty(copy_escape(addrs))
        else:
            addresses = [NULL] * n

        # supervising unit (optional, known)
        if self.present("supervising_unit"):
            us = self._known(
                rej,
                data["supervising_unit"],
                self.units,
                "supervising_unit",
                lambda v: "未知的监管单位 / unknown unit",
                optional=True,
            )
            unit_codes: Sequence[str] = null_if_empty(us)
        else:
            unit_codes = [NULL] * n

        # categories (optional, each known): an array literal for COPY
        if self.present("category_codes"):
            cats_raw = data["category_codes"]
            known_cats = self.categories

            def parse_cats(v: str) -> Any:
                parts = [p for p in _SPLIT.split(v.strip()) if p]
                unknown = [p for p in parts if p not in known_cats]
                if unknown:
                    return _Invalid(f"未知的产品类别 / unknown category: {', '.join(unknown[:5])}")
                return "{" + ",".join(dict.fromkeys(parts)) + "}"

            cats: list[Any] = map_cached(cats_raw, self._caches.setdefault("cats", {}), parse_cats)
            for i in _invalid_rows(cats):
                rej.add(i, "category_codes", cats_raw[i], cats[i].reason)
                cats[i] = "{}"
        else:
            cats = ["{}"] * n

        sizes = self._enum(rej, data, "size", SIZES, default=None)
        channels = self._enum(rej, data, "channel", CHANNELS, default=None)
        statuses = self._enum(rej, data, "status", STATUSES, default="存续")

        if self.present("registration_date"):
            dates_raw = data["registration_date"]
            dates: list[Any] = map_cached(
                dates_raw, self._caches.setdefault("dates", {}), _date_text
            )
            for i in _invalid_rows(dates):
                rej.add(i, "registration_date", dates_raw[i], dates[i].reason)
                dates[i] = NULL
        else:
            dates = [NULL] * n

        columns = [
            codes,
            copy_escape(names),
            entity_types,
            regs,
            addresses,
            unit_codes,
            cats,
            sizes,
            channels,
            statuses,
            dates,
        ]
        lines = list(map("\t".join, zip(*columns, strict=True)))
        if rej.items:
            keep = np.flatnonzero(~rej.bad).tolist()
            lines = _take(lines, keep)
            codes = _take(codes, keep)
        return Chunk(numbers, lines, codes, rej)

    # --- whole columns (Arrow), for large regular CSV files ----------------------------------

    def validate_table(self, t: Any, first_number: int) -> tuple[Any, np.ndarray, Rejections]:
        """The same rules as :meth:`validate` over a whole file at once, column by column with
        Arrow compute kernels: Python only sees the distinct values of the short columns and
        the few cells a cheap scan flags. Returns the rows as an Arrow table in
        :data:`STAGE_COLUMNS` order (normalised, NULLs as nulls), the indices of the accepted
        ones and the rejections. (The import runs the two halves itself, :meth:`validate_codes`
        once and :meth:`validate_rest` a batch at a time, so that the database loads one batch
        while the next is checked.)"""
        codes, rej = self.validate_codes(t, first_number)
        out, rest = self.validate_rest(t, codes, rej.numbers)
        rej.items += rest.items
        rej.bad |= rest.bad
        return out, np.flatnonzero(~rej.bad), rej

    def validate_codes(self, t: Any, first_number: int) -> tuple[Any, Rejections]:
        """The USCC column of a whole file: trimmed, upper-cased, checked (an 18-byte matrix
        through :func:`qsampling.core.uscc.validate_bytes`) and duplicates found by one sort.
        Returns the normalised codes (an Arrow string array) and the rejections of the
        ``uscc`` cells; the other columns are :meth:`validate_rest`'s."""
        import pyarrow as pa

        n = t.num_rows
        numbers = list(range(first_number, first_number + n))
        rej = Rejections(numbers)
        raw_col = t.column(self.cols.index["uscc"]).combine_chunks()
        chars = _fixed_width_ascii(raw_col, 18)
        raw_values: Callable[[int], str]
        if chars is not None:
            lower = (chars >= 97) & (chars <= 122)
            chars = np.where(lower, chars - 32, chars).astype(np.uint8)
            ok, plain = uscc_lib.validate_bytes(chars)
            ok &= plain
            codes = pa.StringArray.from_buffers(
                n,
                pa.py_buffer(np.arange(0, 18 * (n + 1), 18, dtype=np.int32)),
                pa.py_buffer(chars.tobytes()),
            )

            def raw_values(i: int) -> str:
                return str(raw_col[i].as_py())

            for i in np.flatnonzero(~ok).tolist():
                code = str(codes[i].as_py())
                rej.add(i, "uscc", raw_values(i), uscc_lib.invalid_reason(code) or "invalid")
        else:  # separators, spaces, full-width characters: the row path's rules, per cell
            raw = strip_column(raw_col.to_pylist())
            code_list = list(map(str.upper, raw))
            ok = uscc_lib.validate_many(code_list)
            code_list = [
                uscc_lib.normalize(c) if ok[i] and not (len(c) == 18 and c.isalnum()) else c
                for i, c in enumerate(code_list)
            ]
            for i in np.flatnonzero(~ok).tolist():
                c = code_list[i]
                reason = "必填 / required" if not c else uscc_lib.invalid_reason(c)
                rej.add(i, "uscc", raw[i] or None, reason or "invalid")
            codes = pa.array(code_list, pa.string())

            def raw_values(i: int) -> str:
                return raw[i]

        # duplicates: the first row with a code owns it (invalid codes are already rejected)
        firsts = _first_occurrences(codes)
        for i in np.flatnonzero((firsts != np.arange(n)) & ok).tolist():
            first = numbers[int(firsts[i])]
            rej.add(i, "uscc", raw_values(i), f"与第{first}行重复 / duplicates row {first}")
        return codes, rej

    def validate_rest(self, t: Any, codes: Any, numbers: list[int]) -> tuple[Any, Rejections]:
        """Every column but the USCC's, over ``t``: any rows of the file in any order, whose
        file row numbers are ``numbers`` and whose codes (from :meth:`validate_codes`) are
        ``codes``. Values met before are looked up, not checked again, so the batches of one
        file cost what the whole file at once does. Returns the rows as an Arrow table in
        :data:`STAGE_COLUMNS` order and the rejections of the other cells."""
        import pyarrow as pa
        import pyarrow.compute as pc

        n = t.num_rows
        rej = Rejections(numbers)

        def column(name: str) -> Any:
            return t.column(self.cols.index[name])

        # name: required, at most 200 characters, no personal numbers, no control characters
        names = _arrow_strip(column("name"))
        lens = pc.utf8_length(names).to_numpy()
        for i in np.flatnonzero((lens == 0) | (lens > 200)).tolist():
            if lens[i] == 0:
                rej.add(i, "name", None, "必填 / required")
            else:
                rej.add(i, "name", names[i].as_py(), "超过200字 / longer than 200 characters")
        _arrow_text_checks(rej, names, "name")

        # entity type: derived from the code when the column is absent or the cell empty
        if self.present("entity_type"):
            entity_types = self._arrow_map(
                rej, column("entity_type"), "entity_type", self._enum_fn("entity_type", "")
            )
        else:
            entity_types = pa.array([""] * n, pa.string())
        empty_type = pc.equal(entity_types, "")
        if pc.any(empty_type).as_py():
            prefixes = pc.utf8_slice_codeunits(codes, 0, 2)
            derived = self._arrow_map(
                rej, prefixes, "", lambda v: _ENTITY_BY_PREFIX[v], cache="prefix"
            )
            entity_types = pc.if_else(empty_type, derived, entity_types)

        # region (required, known), supervising unit (optional, known)
        regions = self.regions

        def region(v: str) -> Any:
            s = v.strip()
            if s in regions:
                return s
            if not s:
                return _Invalid("必填 / required", None)
            if not re.fullmatch(r"[0-9]{6}", s):
                return _Invalid("应为6位数字 / must be 6 digits (GB/T 2260)", s)
            return _Invalid("未知的行政区划代码 / unknown region code", s)

        regs = self._arrow_map(rej, column("region_code"), "region_code", region)

        if self.present("address"):
            addrs = _arrow_strip(column("address"))
            alens = pc.utf8_length(addrs).to_numpy()
            for i in np.flatnonzero(alens > 300).tolist():
                rej.add(i, "address", addrs[i].as_py(), "超过300字 / longer than 300 characters")
            _arrow_text_checks(rej, addrs, "address")
            addresses = pc.if_else(pc.equal(addrs, ""), pa.scalar(None, pa.string()), addrs)
        else:
            addresses = pa.nulls(n, pa.string())

        if self.present("supervising_unit"):
            units = self.units

            def unit(v: str) -> Any:
                s = v.strip()
                if not s:
                    return None
                if s in units:
                    return s
                return _Invalid("未知的监管单位 / unknown unit", s)

            unit_codes = self._arrow_map(rej, column("supervising_unit"), "supervising_unit", unit)
        else:
            unit_codes = pa.nulls(n, pa.string())

        if self.present("category_codes"):
            cats = self._arrow_map(
                rej, column("category_codes"), "category_codes", self._parse_cats, cache="cats"
            )
            cats = pc.if_else(pc.is_null(cats), pa.scalar("{}"), cats)
        else:
            cats = pa.array(["{}"] * n, pa.string())

        sizes = self._arrow_map(rej, column("size"), "size", self._enum_fn("size", None))
        channels = self._arrow_map(
            rej, column("channel"), "channel", self._enum_fn("channel", None)
        )
        if self.present("status"):
            statuses = self._arrow_map(
                rej, column("status"), "status", self._enum_fn("status", "存续")
            )
        else:
            statuses = pa.array(["存续"] * n, pa.string())

        if self.present("registration_date"):

            def as_date(v: str) -> Any:
                d = _date_text(v)
                return None if d == NULL else d

            dates = self._arrow_map(
                rej, column("registration_date"), "registration_date", as_date, cache="adates"
            )
        else:
            dates = pa.nulls(n, pa.string())

        out = pa.table(
            [
                codes,
                names,
                entity_types,
                regs,
                addresses,
                unit_codes,
                cats,
                sizes,
                channels,
                statuses,
                dates,
            ],
            names=list(STAGE_COLUMNS),
        )
        return out, rej

    def _enum_fn(self, name: str, default: str | None) -> Callable[[str], Any]:
        choices = {"entity_type": ENTITY_TYPES, "size": SIZES, "channel": CHANNELS}.get(
            name, STATUSES
        )
        allowed = " / ".join(sorted(CANONICAL[name]))

        def m(raw: str) -> Any:
            v = raw.strip()
            if not v:
                return default if default is not None else _Invalid("必填 / required")
            hit = choices.get(v) or choices.get(v.lower())
            if hit is None:
                return _Invalid(f"应为 {allowed} 之一 / must be one of {allowed}")
            return hit

        return m

    def _parse_cats(self, v: str) -> Any:
        parts = [p for p in _SPLIT.split(v.strip()) if p]
        unknown = [p for p in parts if p not in self.categories]
        if unknown:
            return _Invalid(f"未知的产品类别 / unknown category: {', '.join(unknown[:5])}")
        return "{" + ",".join(dict.fromkeys(parts)) + "}"

    def _arrow_map(
        self,
        rej: Rejections,
        col: Any,
        name: str,
        fn: Callable[[str], Any],
        *,
        cache: str | None = None,
    ) -> Any:
        """``fn`` once per distinct value of ``col``; an :class:`_Invalid` result rejects the
        rows holding that value (the cell is reported as the file has it, unless the result
        names another value) and leaves a null."""
        import pyarrow as pa
        import pyarrow.compute as pc

        uniques = pc.unique(col)
        distinct = uniques.to_pylist()
        memo = self._caches.setdefault("arrow:" + (cache or name), {})
        results = [memo[v] if v in memo else memo.setdefault(v, fn(v)) for v in distinct]
        if results == distinct:
            return col  # the usual case: every value is already valid and canonical
        invalid = np.fromiter((isinstance(r, _Invalid) for r in results), dtype=bool)
        indices = pc.index_in(col, value_set=uniques)
        idx = indices.to_numpy()
        if invalid.any():
            for i in np.flatnonzero(invalid[idx]).tolist():
                r = results[idx[i]]
                value = distinct[idx[i]] if r.value is _RAW else r.value
                rej.add(i, name, value, r.reason)
        values = [None if isinstance(r, _Invalid) else r for r in results]
        return pa.array(values, pa.string()).take(indices)


# every character ``str.isspace`` knows (a test keeps this in step with Python)
WHITESPACE_CHARS = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000"
)
_WHITESPACE_ARRAY: Any = None  # an Arrow array of WHITESPACE_CHARS, made on first use


def _arrow_strip(col: Any) -> Any:
    """``str.strip`` over an Arrow string column (a regular-expression scan first: usually
    there is nothing to trim)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    global _WHITESPACE_ARRAY
    if _WHITESPACE_ARRAY is None:
        _WHITESPACE_ARRAY = pa.array(list(WHITESPACE_CHARS), pa.string())
    ends = pc.or_(
        pc.is_in(pc.utf8_slice_codeunits(col, 0, 1), value_set=_WHITESPACE_ARRAY),
        pc.is_in(pc.utf8_slice_codeunits(col, -1, None), value_set=_WHITESPACE_ARRAY),
    )
    if not pc.any(ends).as_py():
        return col
    return pa.array(strip_column(col.to_pylist()), pa.string())


def _arrow_text_checks(rej: Rejections, col: Any, name: str) -> None:
    """Personal ID or mobile numbers and control characters in a free-text column: Arrow's
    regular-expression kernels find the candidate cells, Python's patterns decide."""
    import pyarrow.compute as pc

    hits = pc.match_substring_regex(col, "[0-9]{11}")
    if pc.any(hits).as_py():
        for i in np.flatnonzero(hits.to_numpy(zero_copy_only=False)).tolist():
            v = str(col[i].as_py())
            if PERSONAL_DATA_RE.search(v):
                rej.add(i, name, v, PERSONAL_DATA_REASON)
    # control characters are single bytes below 0x20 (or 0x7f) in UTF-8: scan the bytes first
    chunks = col.chunks if hasattr(col, "chunks") else [col]
    if any(_has_control_bytes(c) for c in chunks):
        hits = pc.match_substring_regex(col, "[\\x00-\\x1f\\x7f]")
        for i in np.flatnonzero(hits.to_numpy(zero_copy_only=False)).tolist():
            rej.add(i, name, str(col[i].as_py()), "含控制字符 / contains control characters")


def _has_control_bytes(arr: Any) -> bool:
    n = len(arr)
    if n == 0:
        return False
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + n + 1]
    if offsets[-1] == offsets[0]:
        return False
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    return bool(((data < 0x20) | (data == 0x7F)).any())


def _uscc_keys(chars: np.ndarray) -> list[np.ndarray]:
    """Sort keys (most significant first) of 18-byte codes: bytes 1–8, 9–16, 17–18."""
    return [
        np.ascontiguousarray(chars[:, :8]).view(">u8").ravel(),
        np.ascontiguousarray(chars[:, 8:16]).view(">u8").ravel(),
        np.ascontiguousarray(chars[:, 16:]).view(">u2").ravel(),
    ]


def _first_occurrences(codes: Any) -> np.ndarray:
    """For each row, the row where its code first appears (its own row when it is first)."""
    import pyarrow.compute as pc

    n = len(codes)
    chars = _fixed_width_ascii(codes, 18)
    if chars is None:  # codes of other lengths: a dictionary over the distinct codes
        idx = pc.dictionary_encode(codes).indices.to_numpy()
        _, first_of = np.unique(idx, return_index=True)
        return np.asarray(first_of[idx])
    keys = _uscc_keys(chars)
    order = np.lexsort(keys[::-1])  # stable: equal codes stay in row order
    starts = np.ones(n, dtype=bool)
    if n > 1:
        same = np.ones(n - 1, dtype=bool)
        for k in keys:
            ks = k[order]
            same &= ks[1:] == ks[:-1]
        starts[1:] = ~same
    group_first = order[np.maximum.accumulate(np.where(starts, np.arange(n), 0))]
    firsts = np.empty(n, dtype=np.int64)
    firsts[order] = group_first
    return firsts


def uscc_order(codes: Any) -> np.ndarray | None:
    """The permutation that sorts an Arrow column of 18-character codes, or ``None``."""
    chars = _fixed_width_ascii(codes.combine_chunks() if hasattr(codes, "chunks") else codes, 18)
    if chars is None:
        return None
    return np.lexsort(_uscc_keys(chars)[::-1])


def _fixed_width_ascii(col: Any, width: int) -> np.ndarray | None:
    """The cells of an Arrow string column as an (n, width) byte matrix when every cell is
    exactly ``width`` ASCII letters and digits; otherwise ``None``."""
    n = len(col)
    if col.null_count or n == 0:
        return None
    offsets = np.frombuffer(col.buffers()[1], dtype=np.int32)[col.offset : col.offset + n + 1]
    if offsets[-1] - offsets[0] != width * n or not (np.diff(offsets) == width).all():
        return None
    data = np.frombuffer(col.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    if not _ALNUM[data].all():
        return None
    return data.reshape(n, width)


_ALNUM = np.zeros(256, dtype=bool)
for _c in b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz":
    _ALNUM[_c] = True


def _date_text(value: str) -> Any:
    """An ISO date for COPY, NULL for an empty cell, or the reason it is no date."""
    v = value.strip()
    if not v:
        return NULL
    d = parse_date(v)
    return _Invalid(d) if isinstance(d, str) else d.isoformat()


# --- the import ------------------------------------------------------------------------------


STAGE_COLUMNS = (
    "uscc",
    "name",
    "entity_type",
    "region_code",
    "address",
    "supervising_unit",
    "category_codes",
    "size",
    "channel",
    "status",
    "registration_date",
)
_STAGE_DDL = (
    "uscc varchar(18), name varchar(200), entity_type varchar(16), region_code varchar(6), "
    "address varchar(300), supervising_unit varchar(32), category_codes varchar(32)[], "
    "size varchar(8), channel varchar(16), status varchar(8), registration_date date"
)


def merge_sql(stage: str, present: set[str], *, insert: bool = True) -> str:
    """UPDATE the enterprises whose values differ (only the columns the file has) and, with
    ``insert``, INSERT the new codes; both counts back. Unchanged rows are not written."""
    cols = [c for c in STAGE_COLUMNS[1:] if c in present]
    sets = ", ".join(f"{c} = s.{c}" for c in cols)
    left = ", ".join(f"e.{c}" for c in cols)
    right = ", ".join(f"s.{c}" for c in cols)
    all_cols = ", ".join(STAGE_COLUMNS)
    ins = (
        f"""INSERT INTO enterprises ({all_cols})
  SELECT {", ".join(f"s.{c}" for c in STAGE_COLUMNS)} FROM "{stage}" s
  WHERE NOT EXISTS (SELECT 1 FROM enterprises e WHERE e.uscc = s.uscc)
  ON CONFLICT (uscc) DO NOTHING
  RETURNING 1"""
        if insert
        else "SELECT 1 WHERE false"
    )
    return f"""
WITH upd AS (
  UPDATE enterprises e SET {sets}, updated_at = now()
  FROM "{stage}" s
  WHERE e.uscc = s.uscc AND ROW({left}) IS DISTINCT FROM ROW({right})
  RETURNING 1
), ins AS (
  {ins}
)
SELECT (SELECT count(*) FROM ins) AS inserted, (SELECT count(*) FROM upd) AS updated
"""


async def _driver(session: AsyncSession) -> Any:
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    return raw.driver_connection


@dataclass
class _Totals:
    rows: int = 0
    rejected: int = 0
    inserted: int = 0
    updated: int = 0


async def _new_report(
    session: AsyncSession,
    *,
    kind: str,
    filename: str,
    sniffed: Sniffed,
    strict: bool,
    ignored: list[str],
    actor: Actor,
) -> DirectoryImport:
    # a client-supplied name: printable characters only (PostgreSQL text cannot hold NUL)
    filename = "".join(c for c in (filename or "") if c.isprintable())[:255] or "upload"
    report = DirectoryImport(
        kind=kind,
        filename=filename.encode("utf-8", "replace").decode("utf-8"),
        file_sha256=sniffed.sha256,
        file_format=sniffed.label,
        strict=strict,
        stored=False,
        total_rows=0,
        accepted=0,
        inserted=0,
        updated=0,
        unchanged=0,
        rejected=0,
        ignored_columns=[c[:100] for c in ignored],
        created_by=actor.username,
    )
    session.add(report)
    await session.flush()
    return report


async def _write_rejections(driver: Any, import_id: int, rej: Rejections) -> None:
    if rej.items:
        await driver.copy_records_to_table(
            "directory_import_rejections",
            records=[(import_id, *item) for item in rej.items],
            columns=["import_id", "row_number", "field", "value", "reason"],
        )


async def _copy_lines(driver: Any, table: str, lines: list[str]) -> int:
    """COPY text lines into ``table`` (STAGE_COLUMNS order); returns the row count."""
    data = memoryview(("\n".join(lines) + "\n").encode("utf-8"))

    async def pieces() -> AsyncIterator[memoryview]:
        for start in range(0, len(data), 1 << 20):
            yield data[start : start + (1 << 20)]

    status = await driver.copy_to_table(table, source=pieces(), columns=list(STAGE_COLUMNS))
    return int(status.split()[-1])


async def _open(f: IO[bytes]) -> tuple[Sniffed, Table]:
    def _go() -> tuple[Sniffed, Table]:
        sniffed = sniff(f)
        return sniffed, open_table(f, sniffed)

    return await asyncio.to_thread(_go)


async def _finish(
    session: AsyncSession,
    report: DirectoryImport,
    totals: _Totals,
    *,
    stored: bool,
    actor: Actor,
    action: str,
) -> DirectoryImport:
    report.total_rows = totals.rows
    report.rejected = totals.rejected
    report.accepted = totals.rows - totals.rejected
    report.stored = stored
    report.inserted = totals.inserted if stored else 0
    report.updated = totals.updated if stored else 0
    report.unchanged = (report.accepted - totals.inserted - totals.updated) if stored else 0
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action=action,
        entity_type="directory_import",
        entity_id=report.id,
        payload={
            "filename": report.filename,
            "file_sha256": report.file_sha256,
            "strict": report.strict,
            "stored": stored,
            "rows": report.total_rows,
            "accepted": report.accepted,
            "inserted": report.inserted,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "rejected": report.rejected,
        },
    )
    return report


BULK_MIN_ROWS = 50_000  # below this, maintaining the indexes row by row is cheaper


def _expected_rows(table: Table, first_chunk_rows: int) -> int:
    """Rows in the whole file, extrapolated from the bytes the first chunk took."""
    done = table.position()
    if done <= 0 or table.size <= done:
        return first_chunk_rows
    return int(first_chunk_rows * table.size / done)


async def _existing(driver: Any, codes: list[str]) -> set[str]:
    rows = await driver.fetch("SELECT uscc FROM enterprises WHERE uscc = ANY($1::varchar[])", codes)
    return {r[0] for r in rows}


async def _bulk_begin(driver: Any, expected_new: int, min_rows: int) -> list[str] | None:
    """For many new enterprises, take the bulk-load path of the PostgreSQL manual
    ("Populating a Database"): drop the secondary indexes and the foreign keys of
    ``enterprises`` now, COPY the new rows straight into the table, and rebuild the indexes
    and re-check the keys once at the end, all in this transaction. Building a GIN index over
    a million names at once is several times faster than maintaining it row by row, and a
    foreign key is re-checked with one join instead of a trigger call per row (regions and
    units were already checked while validating).

    The price: ``ACCESS EXCLUSIVE`` on ``enterprises`` until commit, so readers wait for the
    import. Taken only for at least :data:`BULK_MIN_ROWS` new rows that are also at least a
    quarter of the table, and only if the lock comes within a few seconds (otherwise the
    ordinary path runs). Returns the DDL that restores what was dropped."""
    present = await driver.fetchval(
        "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'enterprises'::regclass"
    )
    if expected_new < max(min_rows, int(present or 0) // 4):
        return None
    try:
        async with driver.transaction():  # a savepoint: a refused lock changes nothing
            await driver.execute("SET LOCAL lock_timeout = '5s'")
            await driver.execute("LOCK TABLE enterprises IN ACCESS EXCLUSIVE MODE")
            await driver.execute("SET LOCAL lock_timeout = 0")
    except asyncpg.exceptions.LockNotAvailableError:
        return None
    rows = await driver.fetch(
        """
        SELECT 'DROP INDEX ' || quote_ident(n.nspname) || '.' || quote_ident(i.relname) AS drop,
               pg_get_indexdef(x.indexrelid) AS restore
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_namespace n ON n.oid = i.relnamespace
        WHERE x.indrelid = 'enterprises'::regclass AND NOT x.indisunique
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
        UNION ALL
        SELECT 'ALTER TABLE enterprises DROP CONSTRAINT ' || quote_ident(conname),
               'ALTER TABLE enterprises ADD CONSTRAINT ' || quote_ident(conname) || ' '
               || pg_get_constraintdef(oid)
        FROM pg_constraint WHERE conrelid = 'enterprises'::regclass AND contype = 'f'
        """
    )
    drops = [r["drop"] for r in rows]
    restore = [r["restore"] for r in rows]
    if not await driver.fetchval("SELECT EXISTS (SELECT 1 FROM enterprises)"):
        first, last = await _primary_key_swap(driver)
        drops, restore = first + drops, last + restore
    for ddl in drops:
        await driver.execute(ddl)
    # generous memory for the index builds at the end (server side, this transaction only)
    await driver.execute("SET LOCAL maintenance_work_mem = '256MB'")
    return restore


async def _primary_key_swap(driver: Any) -> tuple[list[str], list[str]]:
    """Into an empty directory (a first load), the primary key too is built once at the end
    instead of taking a million insertions one by one (about a second of the database's
    time per million rows). The foreign keys that reference it go with it and are re-checked
    at the end: with no enterprise yet, no row can reference one, so that check finds the
    referencing tables' rows (if any) with a NULL code or none at all. Needs ``ACCESS
    EXCLUSIVE`` on those tables until commit (nothing in them concerns an enterprise yet);
    if a lock does not come within a few seconds, the key stays. Returns the DDL that drops
    (to run first) and the DDL that restores (to run first at the end)."""
    refs = await driver.fetch(
        """
        SELECT c.conrelid::regclass::text AS tbl,
               'ALTER TABLE ' || c.conrelid::regclass::text || ' DROP CONSTRAINT '
               || quote_ident(c.conname) AS drop,
               'ALTER TABLE ' || c.conrelid::regclass::text || ' ADD CONSTRAINT '
               || quote_ident(c.conname) || ' ' || pg_get_constraintdef(c.oid) AS restore
        FROM pg_constraint c
        WHERE c.confrelid = 'enterprises'::regclass AND c.contype = 'f'
        ORDER BY c.conname
        """
    )
    pk = await driver.fetchrow(
        """
        SELECT 'ALTER TABLE enterprises DROP CONSTRAINT ' || quote_ident(conname) AS drop,
               'ALTER TABLE enterprises ADD CONSTRAINT ' || quote_ident(conname) || ' '
               || pg_get_constraintdef(oid) AS restore
        FROM pg_constraint WHERE conrelid = 'enterprises'::regclass AND contype = 'p'
        """
    )
    if pk is None:
        return [], []
    tables = sorted({r["tbl"] for r in refs})
    if tables:
        try:
            async with driver.transaction():
                await driver.execute("SET LOCAL lock_timeout = '5s'")
                await driver.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")
                await driver.execute("SET LOCAL lock_timeout = 0")
        except (
            asyncpg.exceptions.LockNotAvailableError,
            asyncpg.exceptions.DeadlockDetectedError,
        ):
            return [], []
    return (
        [r["drop"] for r in refs] + [pk["drop"]],
        [pk["restore"]] + [r["restore"] for r in refs],
    )


BATCH_ROWS = 65_536  # rows checked and loaded at a time on the whole-column path


@dataclass
class _Batch:
    target: str | None  # the table its accepted rows go to; None: checked for the report only
    rows: np.ndarray  # their indices in the file's table


async def _load_columns(
    driver: Any,
    validator: EnterpriseValidator,
    columns: Any,
    first_number: int,
    *,
    totals: _Totals,
    report_id: int,
    stage: str,
    savepoint: Any,
    bulk_min_rows: int,
    progress: Progress | None,
    size: int,
) -> tuple[bool, int, list[str] | None]:
    """The whole-column path: check the USCC column of the whole file first (validity,
    duplicates), which is all it takes to choose the targets and the order of the rows;
    then check the other columns a batch at a time, each batch in a worker thread while the
    database takes the previous one with ``COPY`` (CSV rendered by Arrow): into the stage,
    or, on the bulk-load path, the new codes straight into ``enterprises`` in ``uscc`` order.
    Returns (failed, rows staged, DDL to restore)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = columns.num_rows
    codes, rej = await asyncio.to_thread(validator.validate_codes, columns, first_number)
    totals.rows = n
    bad = rej.bad.copy()  # rows rejected so far
    failed = False
    if rej.items and savepoint is not None:
        failed = True
        await savepoint.rollback()
    await _write_rejections(driver, report_id, rej)
    accepted = np.flatnonzero(~rej.bad)
    batches: list[_Batch] = []
    restore = None
    if not failed and accepted.size:
        sample = codes.take(accepted[:CHUNK_ROWS]).to_pylist()
        old_sample = await _existing(driver, sample)
        expected_new = int(accepted.size * (1 - len(old_sample) / len(sample)))
        restore = await _bulk_begin(driver, expected_new, bulk_min_rows)
        if restore is None:
            batches += _batches(stage, accepted)
        else:  # bulk: new codes go straight into the table, known ones to the stage
            new = accepted
            if await driver.fetchval("SELECT EXISTS (SELECT 1 FROM enterprises)"):
                known: list[str] = []
                for start in range(0, accepted.size, CHUNK_ROWS):
                    part = codes.take(accepted[start : start + CHUNK_ROWS]).to_pylist()
                    known += await _existing(driver, part)
                is_old = pc.is_in(codes.take(accepted), value_set=pa.array(known, pa.string()))
                is_old = is_old.to_numpy(zero_copy_only=False)
                batches += _batches(stage, accepted[is_old])
                new = accepted[~is_old]
            # in uscc order the primary key's B-tree only ever grows at its right edge
            order = await asyncio.to_thread(uscc_order, codes.take(new))
            batches += _batches("enterprises", new if order is None else new[order])
        batches += _batches(None, np.flatnonzero(rej.bad))
    else:
        batches += _batches(None, np.arange(n))
    if progress is not None:
        progress(size // 2, size, n)

    numbers = np.arange(first_number, first_number + n)
    staged = done = 0

    def check(batch: _Batch, load: bool) -> tuple[bytes | None, Rejections]:
        out, brej = validator.validate_rest(
            columns.take(batch.rows), codes.take(batch.rows), numbers[batch.rows].tolist()
        )
        if not load or batch.target is None:
            return None, brej
        if brej.items:
            out = out.take(np.flatnonzero(~brej.bad))
        return _render_csv(out), brej

    ahead = asyncio.ensure_future(asyncio.to_thread(check, batches[0], not failed))
    try:
        for k, batch in enumerate(batches):
            data, brej = await ahead
            if k + 1 < len(batches):
                ahead = asyncio.ensure_future(asyncio.to_thread(check, batches[k + 1], not failed))
            bad[batch.rows] |= brej.bad
            if brej.items and savepoint is not None and not failed:
                failed = True
                await savepoint.rollback()  # also brings back anything dropped
            await _write_rejections(driver, report_id, brej)
            if data and not failed:
                assert batch.target is not None
                copied = await _copy_csv(driver, batch.target, data)
                if batch.target == "enterprises":
                    totals.inserted += copied
                else:
                    staged += copied
            done += batch.rows.size
            if progress is not None:
                progress(size // 2 + size * done // (2 * n), size, n)
    finally:
        if not ahead.done():  # an error above: let the worker thread finish its batch
            await asyncio.wait([ahead])
    totals.rejected = int(bad.sum())
    return failed, staged, restore


def _batches(target: str | None, rows: np.ndarray) -> list[_Batch]:
    return [_Batch(target, rows[i : i + BATCH_ROWS]) for i in range(0, rows.size, BATCH_ROWS)]


def _render_csv(rows: Any) -> bytes | None:
    """An Arrow table as CSV for ``COPY … (FORMAT csv)``; None when it has no rows."""
    import io

    import pyarrow.csv as pacsv

    if rows.num_rows == 0:
        return None
    buf = io.BytesIO()
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    pacsv.write_csv(rows, buf, write_options=options)
    return buf.getvalue()


async def _copy_csv(driver: Any, table: str, data: bytes) -> int:
    """COPY CSV rows (STAGE_COLUMNS) into ``table``; returns the row count."""
    view = memoryview(data)

    async def pieces() -> AsyncIterator[memoryview]:
        for start in range(0, len(view), 1 << 20):
            yield view[start : start + (1 << 20)]

    status = await driver.copy_to_table(
        table, source=pieces(), columns=list(STAGE_COLUMNS), format="csv"
    )
    return int(status.split()[-1])


async def import_enterprises(
    session: AsyncSession,
    *,
    f: IO[bytes],
    filename: str,
    actor: Actor,
    strict: bool = False,
    progress: Progress | None = None,
    chunk_rows: int = CHUNK_ROWS,
    bulk_min_rows: int | None = None,
    fast: bool = True,
) -> DirectoryImport:
    """Validate ``f`` and upsert its valid rows by ``uscc`` in the caller's transaction.

    Raises :class:`~qsampling.directory.files.FileProblem` (422) for a file that cannot be
    read as a whole; otherwise returns the stored report (see the module docstring).
    ``bulk_min_rows`` overrides :data:`BULK_MIN_ROWS` (tests); ``fast=False`` reads a regular
    CSV row by row as an irregular one is (tests compare both readers)."""
    sniffed, table = await _open(f)
    columns = None
    if fast:
        columns = await asyncio.to_thread(
            read_columns, f, sniffed, len(table.header), table.header_number
        )
        if columns is None and sniffed.format == "csv":  # the file was read past the header
            table.close()
            table = await asyncio.to_thread(open_table, f, sniffed)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of short-lived acyclic objects: the cycle collector only costs
    try:
        cols = map_header(
            table.header,
            aliases=ENTERPRISE_ALIASES,
            required=ENTERPRISE_REQUIRED,
            what="enterprises",
        )
        validator = EnterpriseValidator(
            cols,
            len(table.header),
            regions=set(await session.scalars(select(Region.code))),
            units=set(await session.scalars(select(Unit.code))),
            categories=set(await session.scalars(select(Category.code))),
        )
        report = await _new_report(
            session,
            kind="enterprises",
            filename=filename,
            sniffed=sniffed,
            strict=strict,
            ignored=cols.ignored,
            actor=actor,
        )
        driver = await _driver(session)
        savepoint = None
        if strict:
            savepoint = await session.begin_nested()
            await session.connection()  # SQLAlchemy emits the SAVEPOINT only on first use
        stage = f"_import_stage_{uuid.uuid4().hex[:12]}"
        await driver.execute(f'CREATE TEMP TABLE "{stage}" ({_STAGE_DDL}) ON COMMIT DROP')
        totals = _Totals()
        failed = False
        staged = 0
        restore: list[str] | None = None
        was_empty = False
        if columns is not None:
            table.close()
            failed, staged, restore = await _load_columns(
                driver,
                validator,
                columns,
                table.header_number + 1,
                totals=totals,
                report_id=report.id,
                stage=stage,
                savepoint=savepoint,
                bulk_min_rows=BULK_MIN_ROWS if bulk_min_rows is None else bulk_min_rows,
                progress=progress,
                size=sniffed.size,
            )
            del columns
        else:
            chunks = table.chunks(chunk_rows)

            def next_chunk() -> Chunk | None:
                got = next(chunks, None)
                return None if got is None else validator.validate(*got)

            pending = asyncio.create_task(asyncio.to_thread(next_chunk))
            try:
                while True:
                    chunk = await pending
                    if chunk is None:
                        break
                    pending = asyncio.create_task(asyncio.to_thread(next_chunk))
                    if totals.rows == 0 and chunk.codes:
                        old = await _existing(driver, chunk.codes)
                        new_share = 1 - len(old) / len(chunk.codes)
                        expected_new = int(_expected_rows(table, chunk.size) * new_share)
                        restore = await _bulk_begin(
                            driver,
                            expected_new,
                            BULK_MIN_ROWS if bulk_min_rows is None else bulk_min_rows,
                        )
                        # under the exclusive lock an empty table only gets our rows
                        was_empty = restore is not None and not await driver.fetchval(
                            "SELECT EXISTS (SELECT 1 FROM enterprises)"
                        )
                    totals.rows += chunk.size
                    totals.rejected += chunk.rejections.rows
                    if strict and chunk.rejections.items and not failed:
                        failed = True
                        assert savepoint is not None
                        await savepoint.rollback()  # also brings back anything dropped
                    await _write_rejections(driver, report.id, chunk.rejections)
                    if failed or not chunk.lines:
                        pass
                    elif restore is not None:
                        # bulk: new codes go straight into the table, known ones to the stage
                        old = set() if was_empty else await _existing(driver, chunk.codes)
                        if old:
                            is_old = list(map(old.__contains__, chunk.codes))
                            pairs = list(zip(chunk.lines, is_old, strict=True))
                            staged += await _copy_lines(driver, stage, [ln for ln, o in pairs if o])
                            new_lines = [ln for ln, o in pairs if not o]
                        else:
                            new_lines = chunk.lines
                        if new_lines:
                            new_lines.sort()  # by uscc (each line starts with it): B-tree locality
                            totals.inserted += await _copy_lines(driver, "enterprises", new_lines)
                    else:
                        staged += await _copy_lines(driver, stage, chunk.lines)
                    if progress is not None:
                        progress(table.position(), table.size, totals.rows)
            finally:
                if not pending.done():  # an error above: let the reader thread finish its chunk
                    await asyncio.wait([pending])
        if not failed:
            if staged:
                await driver.execute(f'ANALYZE "{stage}"')
                merge = merge_sql(stage, set(cols.index), insert=restore is None)
                r = await driver.fetchrow(merge)
                totals.inserted += r["inserted"]
                totals.updated += r["updated"]
            await driver.execute(f'DROP TABLE "{stage}"')
            for ddl in restore or ():
                await driver.execute(ddl)
            if savepoint is not None:
                await savepoint.commit()
    finally:
        table.close()
        if gc_was_enabled:
            gc.enable()
    if totals.rows == 0:
        raise FileProblem("The file has a header but no rows. 文件没有数据行。", code="EmptyFile")
    await session.refresh(report)
    return await _finish(
        session, report, totals, stored=not failed, actor=actor, action="enterprise.import"
    )


# --- inspectors ------------------------------------------------------------------------------


_INSPECTOR_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")


async def import_inspectors(
    session: AsyncSession,
    *,
    f: IO[bytes],
    filename: str,
    actor: Actor,
    strict: bool = False,
    progress: Progress | None = None,
) -> DirectoryImport:
    """Upsert inspectors by ``inspector_id`` (a few thousand rows: validated row by row).

    Columns: inspector_id, name, unit_code (required), region_scope and qualifications
    (lists separated by ``;``), active (true/false, 是/否; default true). The file never
    carries ID-card or phone numbers: such columns are ignored."""
    sniffed, table = await _open(f)
    try:
        cols = map_header(
            table.header,
            aliases=INSPECTOR_ALIASES,
            required=INSPECTOR_REQUIRED,
            what="inspectors",
        )
        regions = set(await session.scalars(select(Region.code)))
        units = set(await session.scalars(select(Unit.code)))
        quals = await known_qualifications(session)
        report = await _new_report(
            session,
            kind="inspectors",
            filename=filename,
            sniffed=sniffed,
            strict=strict,
            ignored=cols.ignored,
            actor=actor,
        )
        width = len(table.header)
        seen: dict[str, int] = {}
        rows_out: list[tuple[str, str, str, str, str, bool]] = []
        totals = _Totals()
        all_rej: list[Rejections] = []
        for numbers, rows in table.chunks():
            data, too_long = columns_of(rows, cols, width)
            rej = Rejections(numbers)
            for i in too_long:
                rej.add(i, "*", None, "比表头多出单元格 / more cells than the header has")
            for i, number in enumerate(numbers):
                iid = data["inspector_id"][i].strip()
                name = data["name"][i].strip()
                unit = data["unit_code"][i].strip()
                scope = [
                    p
                    for p in _SPLIT.split(data.get("region_scope", [""] * len(numbers))[i].strip())
                    if p
                ]
                ql = [
                    p
                    for p in _SPLIT.split(
                        data.get("qualifications", [""] * len(numbers))[i].strip()
                    )
                    if p
                ]
                active_raw = data.get("active", [""] * len(numbers))[i].strip()
                if not iid:
                    rej.add(i, "inspector_id", None, "必填 / required")
                elif not _INSPECTOR_ID.match(iid):
                    rej.add(
                        i, "inspector_id", iid, "应为1–32位字母数字 / 1–32 letters, digits, . _ -"
                    )
                else:
                    first = seen.setdefault(iid, number)
                    if first != number:
                        rej.add(
                            i, "inspector_id", iid, f"与第{first}行重复 / duplicates row {first}"
                        )
                if not name:
                    rej.add(i, "name", None, "必填 / required")
                elif len(name) > 50:
                    rej.add(i, "name", name, "超过50字 / longer than 50 characters")
                elif PERSONAL_DATA_RE.search(name):
                    rej.add(i, "name", name, PERSONAL_DATA_REASON)
                elif CONTROL_RE.search(name):
                    rej.add(i, "name", name, "含控制字符 / contains control characters")
                if not unit:
                    rej.add(i, "unit_code", None, "必填 / required")
                elif unit not in units:
                    rej.add(i, "unit_code", unit, "未知的单位 / unknown unit")
                bad_scope = [s for s in scope if s not in regions]
                if bad_scope:
                    rej.add(
                        i,
                        "region_scope",
                        ";".join(scope),
                        f"未知的行政区划代码 / unknown region: {', '.join(bad_scope[:5])}",
                    )
                bad_q = [q for q in ql if q not in quals]
                if bad_q:
                    rej.add(
                        i,
                        "qualifications",
                        ";".join(ql),
                        f"未知的资质 / unknown qualification: {', '.join(bad_q[:5])}",
                    )
                active = True if not active_raw else TRUE_FALSE.get(active_raw.lower())
                if active is None:
                    rej.add(
                        i, "active", active_raw, "应为 是/否 或 true/false / must be true or false"
                    )
                if not rej.bad[i]:
                    rows_out.append(
                        (
                            iid,
                            name,
                            unit,
                            ",".join(dict.fromkeys(scope)),
                            ",".join(dict.fromkeys(ql)),
                            bool(active),
                        )
                    )
            totals.rows += len(numbers)
            totals.rejected += rej.rows
            all_rej.append(rej)
            if progress is not None:
                progress(table.position(), table.size, totals.rows)
    finally:
        table.close()
    if totals.rows == 0:
        raise FileProblem("The file has a header but no rows. 文件没有数据行。", code="EmptyFile")
    driver = await _driver(session)
    for rej in all_rej:
        await _write_rejections(driver, report.id, rej)
    failed = strict and totals.rejected > 0
    if rows_out and not failed:
        present = set(cols.index)
        upd = [
            c
            for c in ("name", "unit_code", "region_scope", "qualifications", "active")
            if c in present
        ]
        exprs = {
            "name": "s.name",
            "unit_code": "s.unit_code",
            "region_scope": "CAST(string_to_array(s.region_scope, ',') AS varchar(6)[])",
            "qualifications": "CAST(string_to_array(s.qualifications, ',') AS varchar(32)[])",
            "active": "s.active",
        }
        sql = f"""
WITH s AS (
  SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:names AS text[]), CAST(:units AS text[]),
                       CAST(:scopes AS text[]), CAST(:quals AS text[]), CAST(:actives AS bool[]))
         AS t(inspector_id, name, unit_code, region_scope, qualifications, active)
), upd AS (
  UPDATE inspectors i SET {", ".join(f"{c} = {exprs[c]}" for c in upd)}, updated_at = now()
  FROM s WHERE i.inspector_id = s.inspector_id
  AND ROW({", ".join(f"i.{c}" for c in upd)})
      IS DISTINCT FROM ROW({", ".join(exprs[c] for c in upd)})
  RETURNING 1
), ins AS (
  INSERT INTO inspectors (inspector_id, {", ".join(exprs)})
  SELECT s.inspector_id, {", ".join(exprs.values())} FROM s
  WHERE NOT EXISTS (SELECT 1 FROM inspectors i WHERE i.inspector_id = s.inspector_id)
  ON CONFLICT (inspector_id) DO NOTHING
  RETURNING 1
)
SELECT (SELECT count(*) FROM ins) AS inserted, (SELECT count(*) FROM upd) AS updated
"""
        r = (
            await session.execute(
                text(sql),
                {
                    "ids": [x[0] for x in rows_out],
                    "names": [x[1] for x in rows_out],
                    "units": [x[2] for x in rows_out],
                    "scopes": [x[3] for x in rows_out],
                    "quals": [x[4] for x in rows_out],
                    "actives": [x[5] for x in rows_out],
                },
            )
        ).one()
        totals.inserted, totals.updated = r.inserted, r.updated
    return await _finish(
        session, report, totals, stored=not failed, actor=actor, action="inspector.import"
    )


# --- reading reports back --------------------------------------------------------------------


async def get_report(session: AsyncSession, *, import_id: int, kind: str) -> DirectoryImport:
    from qsampling.errors import NotFound

    report = await session.get(DirectoryImport, import_id)
    if report is None or report.kind != kind:
        raise NotFound(f"No {kind} import {import_id}. 导入记录不存在。", code="ImportNotFound")
    return report


async def rejected_rows(
    session: AsyncSession, *, import_id: int, limit: int | None = PREVIEW
) -> list[DirectoryImportRejection]:
    q = (
        select(DirectoryImportRejection)
        .where(DirectoryImportRejection.import_id == import_id)
        .order_by(DirectoryImportRejection.row_number, DirectoryImportRejection.field)
    )
    if limit is not None:
        q = q.limit(limit)
    return list(await session.scalars(q))


def rejected_csv_lines(rows: Sequence[DirectoryImportRejection]) -> list[str]:
    """CSV (with the header) of rejected rows; the caller prepends the UTF-8 BOM."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["row_number", "field", "value", "reason"])
    for r in rows:
        w.writerow([r.row_number, r.field, r.value or "", r.reason])
    return [buf.getvalue()]
