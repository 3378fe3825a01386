"""Shared data for the directory tests: the shipped reference data, two units, helpers to
build valid 统一社会信用代码 and import files in every encoding."""

from __future__ import annotations

import io
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.context import Actor
from qsampling.core import uscc as uscc_lib
from qsampling.directory.reference import load_reference

ACTOR = Actor(username="test:directory", role="admin")
UNIT = "FJ-350102-S01"
UNIT2 = "FJ-350203-S01"

HEADER = [
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
]


def code(seed: int, region: str = "350102", kind: str = "enterprise") -> str:
    dept, org = uscc_lib.MARKET_SUPERVISION_TYPES[kind]
    return uscc_lib.generate(
        random.Random(seed), region_code=region, registration_dept=dept, org_type=org
    )


def wrong_check(c: str) -> str:
    """The same code with a wrong check character."""
    last = uscc_lib.ALPHABET[(uscc_lib.ALPHABET.index(c[17]) + 1) % 31]
    return c[:17] + last


def row(seed: int, **over: Any) -> dict[str, str]:
    base = {
        "uscc": code(seed),
        "name": f"福州测试{seed}童车有限公司",
        "entity_type": "企业",
        "region_code": "350102",
        "address": f"福建省福州市鼓楼区五四路{seed}号",
        "supervising_unit": UNIT,
        "category_codes": "03.01.01;03.02",
        "size": "small",
        "channel": "production",
        "status": "存续",
        "registration_date": "2015-06-01",
    }
    base.update({k: str(v) for k, v in over.items()})
    return base


def csv_text(rows: list[dict[str, str]], header: list[str] | None = None) -> str:
    import csv

    header = header or HEADER
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    for r in rows:
        w.writerow([r.get(h, "") for h in header])
    return buf.getvalue()


def encode(textual: str, encoding: str) -> bytes:
    if encoding == "utf-8-sig":
        return b"\xef\xbb\xbf" + textual.encode("utf-8")
    return textual.encode(encoding)


def xlsx_bytes(rows: list[list[Any]]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@pytest.fixture
async def reference(session: AsyncSession) -> AsyncSession:
    """Shipped regions, categories and check items, plus two units; flushed (visible to the
    app's requests on the same test connection)."""
    await load_reference(session, actor=ACTOR)
    await session.execute(
        text(
            "INSERT INTO units (code, name, region_code) VALUES "
            "(:u1, '鼓楼区市场监管所', '350102'), (:u2, '思明区市场监管所', '350203') "
            "ON CONFLICT DO NOTHING"
        ),
        {"u1": UNIT, "u2": UNIT2},
    )
    await session.commit()
    return session


@pytest.fixture
def writer(login: Callable[..., Awaitable[dict[str, str]]]) -> Callable[[], Awaitable[Any]]:
    async def _w() -> dict[str, str]:
        return await login("supervisor")

    return _w
