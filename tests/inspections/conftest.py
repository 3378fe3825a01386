"""Drawn tasks for the inspections tests, created directly through the ORM.

A small world: one county, one unit, a check item for a test product category, three
inspectors (TI-1 and TI-2 form every team by default, TI-3 is on none) and enterprises
with valid USCCs. Tasks are dated 60 days back so results may be dated in the past.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.auth.service import token_digest
from qsampling.core.uscc import generate
from qsampling.models import (
    ApiToken,
    Category,
    CheckItem,
    Commitment,
    Draw,
    Enterprise,
    Inspector,
    Plan,
    Region,
    Task,
    TaskInspector,
    Unit,
    User,
)

Headers = dict[str, str]

REGION = "359901"
UNIT = "T-UNIT-1"
CHECK_ITEM = "T-CI-INSP"
CATEGORY = "T9.01"
INSPECTORS = ("TI-1", "TI-2", "TI-3")


async def seed_reference(session: AsyncSession) -> None:
    """Reference rows shared by every test (idempotent)."""
    for stmt in (
        insert(Region)
        .values(
            [
                {"code": "359900", "name": "测试市", "level": "city", "parent_code": None},
                {"code": REGION, "name": "测试区", "level": "county", "parent_code": "359900"},
            ]
        )
        .on_conflict_do_nothing(),
        insert(Category)
        .values(
            [
                {"code": "T9", "name": "测试产品", "parent_code": None, "level": 1},
                {"code": CATEGORY, "name": "测试童车", "parent_code": "T9", "level": 2},
            ]
        )
        .on_conflict_do_nothing(),
        insert(Unit)
        .values(code=UNIT, name="测试市场监管所", region_code=REGION)
        .on_conflict_do_nothing(),
        insert(CheckItem)
        .values(
            code=CHECK_ITEM,
            name="测试产品质量监督抽查",
            legal_basis="《中华人民共和国产品质量法》第十五条",
            kind="重点",
            category_codes=[CATEGORY],
            ratios={"A": "0.03", "B": "0.05", "C": "0.20", "D": "0.60"},
            exclusion_days=180,
            qualification=None,
            team_size=2,
        )
        .on_conflict_do_nothing(),
        insert(Inspector)
        .values(
            [
                {"inspector_id": i, "name": n, "unit_code": UNIT}
                for i, n in zip(INSPECTORS, ("张检一", "李检二", "王检三"), strict=True)
            ]
        )
        .on_conflict_do_nothing(),
    ):
        await session.execute(stmt)


@dataclass
class World:
    session: AsyncSession
    rng: random.Random
    plan_id: int
    draw_id: int
    follow_up_plan_id: int | None = None
    counter: int = 0

    async def enterprise(self) -> str:
        uscc = generate(self.rng, region_code=REGION)
        self.session.add(
            Enterprise(
                uscc=uscc,
                name=f"测试企业{self.rng.randrange(10**6)}有限公司",
                entity_type="企业",
                region_code=REGION,
                supervising_unit=UNIT,
                category_codes=[CATEGORY],
                size="small",
                channel="production",
                credit_class="B",
            )
        )
        await self.session.flush()
        return uscc

    async def task(
        self,
        *,
        team: tuple[str, ...] = ("TI-1", "TI-2"),
        plan_id: int | None = None,
        uscc: str | None = None,
        status: str = "assigned",
        drawn_days_ago: int = 60,
    ) -> int:
        uscc = uscc or await self.enterprise()
        self.counter += 1
        created = datetime.now(UTC) - timedelta(days=drawn_days_ago)
        t = Task(
            plan_id=plan_id or self.plan_id,
            draw_id=self.draw_id,
            uscc=uscc,
            check_item_code=CHECK_ITEM,
            stratum="B",
            draw_key=hashlib.sha256(uscc.encode()).hexdigest(),
            draw_rank=self.counter,
            stratum_sample_size=5,
            stratum_population=100,
            inclusion_probability=0.05,
            status=status,
            created_at=created,
            updated_at=created,
        )
        self.session.add(t)
        await self.session.flush()
        for pos, iid in enumerate(team, start=1):
            self.session.add(TaskInspector(task_id=t.id, inspector_id=iid, position=pos))
        await self.session.flush()
        await self.session.commit()
        return t.id


async def _plan(session: AsyncSession, *, plan_type: str) -> tuple[int, int]:
    plan = Plan(
        name=f"测试计划 {plan_type}",
        check_item_code=CHECK_ITEM,
        plan_type=plan_type,
        status="drawn",
        scope={},
        strata_fields=["credit_class"],
        team_size=2,
        exclusion_days=180,
        created_by="test",
    )
    session.add(plan)
    await session.flush()
    commitment = Commitment(
        plan_id=plan.id,
        commitment=hashlib.sha256(f"c{plan.id}{random.random()}".encode()).hexdigest(),
        params_json=b"{}",
        pool_sha256="0" * 64,
        inspectors_csv=b"inspector_id,unit\n",
        exclusions_csv=b"inspector_id,uscc\n",
        nonce=b"\x00" * 32,
        pool_size=100,
        strata_sizes={"B": 100},
        quotas={"B": 5},
    )
    session.add(commitment)
    await session.flush()
    draw = Draw(
        plan_id=plan.id,
        commitment_id=commitment.id,
        entropy="1234567890123456789012",
        seed="0" * 64,
        selected_count=5,
        drawn_by="test",
    )
    session.add(draw)
    await session.flush()
    return plan.id, draw.id


async def make_world(session: AsyncSession) -> World:
    await seed_reference(session)
    plan_id, draw_id = await _plan(session, plan_type="routine")
    await session.commit()
    return World(session=session, rng=random.Random(42), plan_id=plan_id, draw_id=draw_id)


@pytest.fixture
async def world(session: AsyncSession) -> World:
    return await make_world(session)


@pytest.fixture
async def follow_up_world(world: World) -> World:
    plan_id, _ = await _plan(world.session, plan_type="follow_up")
    world.follow_up_plan_id = plan_id
    await world.session.commit()
    return world


async def make_token(session: AsyncSession, role: str, inspector_id: str | None = None) -> Headers:
    """A user and a bearer token written directly (no argon2 round: a login costs about a
    second on a busy machine)."""
    user = User(
        username=f"{role}-{uuid.uuid4().hex[:8]}",
        role=role,
        password_hash="!unusable",
        inspector_id=inspector_id,
    )
    session.add(user)
    await session.flush()
    tok = secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            token_sha256=token_digest(tok),
            user_id=user.id,
            expires_at=datetime.now(UTC) + timedelta(hours=1),
        )
    )
    await session.commit()
    return {"Authorization": f"Bearer {tok}"}


@pytest.fixture
def login(session: AsyncSession) -> Callable[..., Awaitable[Headers]]:
    """Overrides the suite's ``login`` with :func:`make_token`."""

    async def _login(role: str, *, inspector_id: str | None = None) -> Headers:
        return await make_token(session, role, inspector_id)

    return _login


@pytest.fixture
def as_inspector(login: Callable[..., Awaitable[Headers]]) -> Callable[[str], Awaitable[Headers]]:
    cache: dict[str, Headers] = {}

    async def _get(inspector_id: str) -> Headers:
        if inspector_id not in cache:
            cache[inspector_id] = await login("inspector", inspector_id=inspector_id)
        return cache[inspector_id]

    return _get


def result_body(
    *,
    days_ago: float = 1,
    fail: bool = False,
    codes: list[str] | None = None,
    samples: int = 1,
    items: int = 2,
    **extra: Any,
) -> dict[str, Any]:
    """A valid result body: ``fail`` makes the last item of the first sample fail."""
    at = datetime.now(UTC) - timedelta(days=days_ago)
    body: dict[str, Any] = {
        "inspected_at": at.isoformat(),
        "conclusion": "fail" if fail else "pass",
        "category_codes": codes or (["A"] if fail else ["1"]),
        "samples": [
            {
                "product_name": f"儿童推车 {s + 1}",
                "brand": "好孩子",
                "model_spec": "C400",
                "batch_no": f"B2026{s:03d}",
                "production_date": (at - timedelta(days=30)).date().isoformat(),
                "quantity": 2,
                "quantity_unit": "辆",
                "standard": "GB 14748-2006",
                "category_code": CATEGORY,
                "items": [
                    {
                        "name": f"项目{i + 1}",
                        "requirement": "≤ 0.1",
                        "measured_value": "0.3" if (fail and s == 0 and i == items - 1) else "0.05",
                        "unit": "mg/kg",
                        "verdict": "fail" if (fail and s == 0 and i == items - 1) else "pass",
                    }
                    for i in range(items)
                ],
            }
            for s in range(samples)
        ],
    }
    body.update(extra)
    return body
