"""Reference data: region codes (GB/T 2260), the product-category tree, the check-item list.

The shipped tables live in the package ``qsampling.data``: every province, and every city and
county of Fujian and Shandong (``regions.csv``); a starter product catalogue modelled on the
national supervision-sampling product list (``categories.csv``, dotted codes so that a subtree
is a prefix); a starter 随机抽查事项清单 (``check_items.json``). ``qsampling import reference``
loads them; ``qsampling import regions FILE`` loads the full GB/T 2260 table from a file.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import IO, Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.audit import service as audit
from qsampling.context import Actor
from qsampling.directory.files import FileProblem, map_header, open_table, sniff
from qsampling.errors import InvalidInput
from qsampling.models.directory import CREDIT_CLASSES

REGION_RE = re.compile(r"^[0-9]{6}$")
CATEGORY_RE = re.compile(r"^[0-9A-Za-z]{1,8}(\.[0-9A-Za-z]{1,8}){0,4}$")
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")


def _data(name: str) -> str:
    return resources.files("qsampling.data").joinpath(name).read_text(encoding="utf-8")


@cache
def shipped_regions() -> tuple[dict[str, str | None], ...]:
    rows = csv.DictReader(io.StringIO(_data("regions.csv"), newline=""))
    return tuple(
        {
            "code": r["code"],
            "name": r["name"],
            "level": r["level"],
            "parent_code": r["parent_code"] or None,
        }
        for r in rows
    )


@cache
def shipped_categories() -> tuple[dict[str, Any], ...]:
    rows = csv.DictReader(io.StringIO(_data("categories.csv"), newline=""))
    return tuple(
        {
            "code": r["code"],
            "name": r["name"],
            "parent_code": r["parent_code"] or None,
            "level": int(r["level"]),
        }
        for r in rows
    )


@cache
def shipped_check_items() -> tuple[dict[str, Any], ...]:
    return tuple(json.loads(_data("check_items.json")))


# --- regions ---------------------------------------------------------------------------------


def region_level(code: str) -> str:
    """GB/T 2260: XX0000 is a province, XXYY00 a city (prefecture), anything else a county."""
    if code.endswith("0000"):
        return "province"
    if code.endswith("00"):
        return "city"
    return "county"


def region_parent(code: str, known: set[str]) -> str | None:
    """The parent by the code's structure: a city's province; a county's city, or its
    province when the county is directly under it (省直辖县级行政区, 直辖市的区 under 1101 …)."""
    level = region_level(code)
    if level == "province":
        return None
    province = code[:2] + "0000"
    if level == "city":
        return province
    city = code[:4] + "00"
    return city if city in known else province


@dataclass
class LoadCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def as_dict(self, prefix: str) -> dict[str, int]:
        return {
            f"{prefix} inserted": self.inserted,
            f"{prefix} updated": self.updated,
            f"{prefix} unchanged": self.unchanged,
        }


_UPSERT_COUNTS = """
WITH src AS ({source}),
upd AS (
  UPDATE {table} t SET {sets} FROM src
  WHERE t.{key} = src.{key} AND ({cols_t}) IS DISTINCT FROM ({cols_s})
  RETURNING 1
),
ins AS (
  INSERT INTO {table} ({key}, {cols})
  SELECT src.{key}, {cols_s} FROM src
  WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.{key} = src.{key})
  ON CONFLICT ({key}) DO NOTHING
  RETURNING 1
)
SELECT (SELECT count(*) FROM ins) AS inserted, (SELECT count(*) FROM upd) AS updated
"""


def upsert_sql(table: str, key: str, cols: list[str], source: str, *, touch: bool = False) -> str:
    """One statement that inserts new keys and updates changed rows only (so that loading
    the same data twice writes nothing), returning both counts."""
    sets = ", ".join(f"{c} = src.{c}" for c in cols)
    if touch:
        sets += ", updated_at = now()"
    return _UPSERT_COUNTS.format(
        source=source,
        table=table,
        key=key,
        sets=sets,
        cols=", ".join(cols),
        cols_t=", ".join(f"t.{c}" for c in cols),
        cols_s=", ".join(f"src.{c}" for c in cols),
    )


async def load_regions(
    session: AsyncSession, rows: list[dict[str, Any]] | tuple[dict[str, Any], ...], *, actor: Actor
) -> LoadCounts:
    """Upsert regions by code (names and parents follow the file; nothing is deleted)."""
    if not rows:
        return LoadCounts()
    sql = upsert_sql(
        "regions",
        "code",
        ["name", "level", "parent_code"],
        "SELECT * FROM unnest(CAST(:codes AS varchar[]), CAST(:names AS varchar[]), "
        "CAST(:levels AS varchar[]), CAST(:parents AS varchar[])) AS s(code, name, level, "
        "parent_code)",
    )
    r = (
        await session.execute(
            text(sql),
            {
                "codes": [x["code"] for x in rows],
                "names": [x["name"] for x in rows],
                "levels": [x["level"] for x in rows],
                "parents": [x["parent_code"] for x in rows],
            },
        )
    ).one()
    counts = LoadCounts(r.inserted, r.updated, len(rows) - r.inserted - r.updated)
    await audit.record(
        session,
        actor=actor,
        action="region.import",
        entity_type="region",
        entity_id="*",
        payload={"rows": len(rows), "inserted": counts.inserted, "updated": counts.updated},
    )
    return counts


def parse_regions_file(f: IO[bytes]) -> list[dict[str, Any]]:
    """Read a region table: columns ``code,name`` (区划代码, 名称) and optionally ``level`` and
    ``parent_code``; level and parent are derived from the code when absent. Any bad row makes
    the whole file an error (a region table is small and must be right)."""
    sniffed = sniff(f)
    table = open_table(f, sniffed)
    try:
        cols = map_header(
            table.header,
            aliases={
                "code": ("行政区划代码", "区划代码", "代码"),
                "name": ("名称", "区划名称", "单位名称"),
                "level": ("级别", "层级"),
                "parent_code": ("上级代码", "上级区划代码"),
            },
            required=("code", "name"),
            what="regions",
        )
        out: list[dict[str, Any]] = []
        problems: list[str] = []
        width = len(table.header)
        for numbers, rows in table.chunks():
            for number, row in zip(numbers, rows, strict=True):
                row = row + [""] * (width - len(row))
                code = row[cols.index["code"]].strip()
                name = row[cols.index["name"]].strip()
                if not REGION_RE.match(code):
                    problems.append(f"row {number}: code {code!r} is not 6 digits")
                    continue
                if not name or len(name) > 100:
                    problems.append(f"row {number}: name must be 1–100 characters")
                    continue
                level = row[cols.index["level"]].strip() if "level" in cols.index else ""
                parent = (
                    row[cols.index["parent_code"]].strip() if "parent_code" in cols.index else ""
                )
                if level and level not in ("province", "city", "county"):
                    problems.append(f"row {number}: level must be province, city or county")
                    continue
                out.append({"code": code, "name": name, "level": level, "parent_code": parent})
    finally:
        table.close()
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise FileProblem(
            "The region table has errors: " + "; ".join(problems[:5]) + more + ". 区划表有误。",
            code="InvalidRows",
        )
    if not out:
        raise FileProblem("The file has a header but no rows. 文件没有数据行。", code="EmptyFile")
    seen: set[str] = set()
    for r in out:
        if r["code"] in seen:
            raise FileProblem(
                f"Region code {r['code']} appears twice. 区划代码重复。", code="InvalidRows"
            )
        seen.add(r["code"])
    for r in out:
        r["level"] = r["level"] or region_level(r["code"])
        r["parent_code"] = r["parent_code"] or region_parent(r["code"], seen)
    return out


# --- categories ------------------------------------------------------------------------------


async def load_categories(
    session: AsyncSession, rows: list[dict[str, Any]] | tuple[dict[str, Any], ...], *, actor: Actor
) -> LoadCounts:
    if not rows:
        return LoadCounts()
    sql = upsert_sql(
        "categories",
        "code",
        ["name", "parent_code", "level"],
        "SELECT * FROM unnest(CAST(:codes AS varchar[]), CAST(:names AS varchar[]), "
        "CAST(:parents AS varchar[]), CAST(:levels AS int[])) AS s(code, name, parent_code, "
        "level)",
    )
    r = (
        await session.execute(
            text(sql),
            {
                "codes": [x["code"] for x in rows],
                "names": [x["name"] for x in rows],
                "parents": [x["parent_code"] for x in rows],
                "levels": [x["level"] for x in rows],
            },
        )
    ).one()
    counts = LoadCounts(r.inserted, r.updated, len(rows) - r.inserted - r.updated)
    await audit.record(
        session,
        actor=actor,
        action="category.import",
        entity_type="category",
        entity_id="*",
        payload={"rows": len(rows), "inserted": counts.inserted, "updated": counts.updated},
    )
    return counts


# --- check items -----------------------------------------------------------------------------


def check_ratios(ratios: Any) -> dict[str, str]:
    """Ratios per credit class: exactly A, B, C, D, each a decimal in [0, 1] (kept as the
    decimal string so that no float rounding creeps into the sample sizes)."""
    if not isinstance(ratios, dict) or set(ratios) != set(CREDIT_CLASSES):
        raise InvalidInput(
            "ratios must give exactly the classes A, B, C and D, e.g. "
            '{"A": "0.03", "B": "0.05", "C": "0.20", "D": "0.60"}. 抽查比例须含 A/B/C/D。',
            code="InvalidRatios",
        )
    out: dict[str, str] = {}
    for k in CREDIT_CLASSES:
        v = ratios[k]
        try:
            d = Decimal(str(v))
        except (InvalidOperation, ValueError):
            d = Decimal("NaN")
        if isinstance(v, bool) or not d.is_finite() or not Decimal(0) <= d <= Decimal(1):
            raise InvalidInput(
                f"ratios[{k}] must be a decimal between 0 and 1 (got {v!r}). "
                "抽查比例须在 0 到 1 之间。",
                code="InvalidRatios",
            )
        out[k] = str(v) if isinstance(v, str) else format(d.normalize(), "f")
    return out


async def load_check_items(
    session: AsyncSession,
    items: list[dict[str, Any]] | tuple[dict[str, Any], ...],
    *,
    actor: Actor,
    overwrite: bool = False,
) -> LoadCounts:
    """Add check items; existing codes are kept as the bureau edited them unless
    ``overwrite``. Categories must exist (load the categories first)."""
    from qsampling.directory.service import (
        create_check_item,
        get_check_item_or_none,
        update_check_item,
    )

    counts = LoadCounts()
    for raw in items:
        data = dict(raw)
        code = data.pop("code")
        existing = await get_check_item_or_none(session, code=code)
        if existing is None:
            await create_check_item(session, actor=actor, code=code, **data)
            counts.inserted += 1
        elif overwrite:
            changed = await update_check_item(session, actor=actor, code=code, **data)
            if changed:
                counts.updated += 1
            else:
                counts.unchanged += 1
        else:
            counts.unchanged += 1
    return counts


def parse_check_items_file(f: IO[bytes]) -> list[dict[str, Any]]:
    """A JSON list in the shipped format (see ``qsampling/data/check_items.json``)."""
    raw = f.read()
    try:
        items = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FileProblem(
            f"The check-item file is not JSON: {exc}. 抽查事项文件应为 JSON。", code="BadJson"
        ) from None
    if not isinstance(items, list) or not all(isinstance(i, dict) and "code" in i for i in items):
        raise FileProblem(
            "The check-item file must be a JSON list of objects with a code. "
            "抽查事项文件格式错误。",
            code="BadJson",
        )
    return items


async def load_reference(session: AsyncSession, *, actor: Actor) -> dict[str, int]:
    """Load the shipped regions, categories and check items (idempotent)."""
    r = await load_regions(session, shipped_regions(), actor=actor)
    c = await load_categories(session, shipped_categories(), actor=actor)
    i = await load_check_items(session, shipped_check_items(), actor=actor)
    return {"regions": r.inserted, "categories": c.inserted, "check items": i.inserted}
