"""A small directory for draw tests, inserted through the ORM models (not the directory API)."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from qsampling.core.uscc import generate
from qsampling.models.directory import CheckItem, Conflict, Enterprise, Inspector, Region, Unit

REGIONS = [
    ("350000", "福建省", "province", None),
    ("350100", "福州市", "city", "350000"),
    ("350102", "鼓楼区", "county", "350100"),
    ("350103", "台江区", "county", "350100"),
    ("350200", "厦门市", "city", "350000"),
    ("350203", "思明区", "county", "350200"),
]
UNITS = [
    ("U-GL", "鼓楼所", "350102"),
    ("U-TJ", "台江所", "350103"),
    ("U-SM", "思明所", "350203"),
]
COUNTIES = ["350102", "350103", "350203"]
UNIT_OF_COUNTY = {"350102": "U-GL", "350103": "U-TJ", "350203": "U-SM"}
CLASSES = "ABCD"
ITEM = "CI-TOY"


@dataclass
class Province:
    enterprises: list[Enterprise] = field(default_factory=list)
    inspectors: list[Inspector] = field(default_factory=list)
    item: CheckItem | None = None

    def usccs(self, **where: Any) -> list[str]:
        return sorted(
            e.uscc for e in self.enterprises if all(getattr(e, k) == v for k, v in where.items())
        )


async def build_province(
    session: AsyncSession,
    *,
    seed: int = 7,
    enterprises: int = 60,
    inspectors: int = 8,
    qualification: str | None = None,
    classes: str = CLASSES,
) -> Province:
    rng = random.Random(seed)
    for code, name, level, parent in REGIONS:
        session.add(Region(code=code, name=name, level=level, parent_code=parent))
    await session.flush()
    for code, name, region in UNITS:
        session.add(Unit(code=code, name=name, region_code=region))
    await session.flush()
    prov = Province()
    item = CheckItem(
        code=ITEM,
        name="儿童玩具产品质量监督抽查",
        legal_basis="《产品质量法》第十五条",
        kind="重点",
        category_codes=["03.02"],
        ratios={"A": "0.1", "B": "0.2", "C": "0.5", "D": "1"},
        exclusion_days=180,
        qualification=qualification,
        team_size=2,
    )
    session.add(item)
    prov.item = item
    seen: set[str] = set()
    for i in range(enterprises):
        county = COUNTIES[i % len(COUNTIES)]
        uscc = generate(rng, region_code=county)
        while uscc in seen:
            uscc = generate(rng, region_code=county)
        seen.add(uscc)
        e = Enterprise(
            uscc=uscc,
            name=f"测试企业{i:04d}有限公司",
            entity_type="企业",
            region_code=county,
            supervising_unit=UNIT_OF_COUNTY[county],
            category_codes=["03.02.01" if i % 5 else "04.01"],
            size=["large", "medium", "small", "micro"][i % 4],
            channel="production",
            status="存续" if i % 10 != 9 else "注销",
            credit_class=classes[i % len(classes)],
        )
        session.add(e)
        prov.enterprises.append(e)
    for j in range(inspectors):
        ins = Inspector(
            inspector_id=f"INS{j:03d}",
            name=f"检查员{j}",
            unit_code=UNITS[j % len(UNITS)][0],
            region_scope=[],
            qualifications=[qualification] if qualification else [],
            active=True,
        )
        session.add(ins)
        prov.inspectors.append(ins)
    await session.flush()
    return prov


async def add_conflict(session: AsyncSession, inspector_id: str, uscc: str) -> None:
    session.add(
        Conflict(
            inspector_id=inspector_id, uscc=uscc, reason="亲属关系", declared_date=date(2026, 1, 1)
        )
    )
    await session.flush()


@pytest.fixture
def province(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> Callable[..., Awaitable[Province]]:
    """``await province(enterprises=60, inspectors=8)`` → a committed small province."""

    async def _make(**kw: Any) -> Province:
        async with sessionmaker() as s:
            prov = await build_province(s, **kw)
            await s.commit()
        return prov

    return _make


@pytest.fixture
async def supervisor(login: Callable[..., Awaitable[dict[str, str]]]) -> dict[str, str]:
    return await login("supervisor")
