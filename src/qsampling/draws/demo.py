"""The draws part of the demo province (`qsampling demo`): committed and drawn plans.

Runs after the directory demo and uses whatever check items, enterprises and inspectors it
made. For each of up to four check items a routine plan is committed and drawn with dice
entropy from the demo's seeded generator; the last one is left committed but not drawn, so
the public list shows a commitment waiting for its draw. Every drawn plan has a bundle at
``/api/v1/public/draws/{id}/bundle`` that ``python scripts/verify_draw.py`` confirms.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.context import Actor
from qsampling.draws import service
from qsampling.draws.schemas import PlanCreate, PlanScope
from qsampling.errors import QSamplingError
from qsampling.models.directory import CheckItem

DEMO_ACTOR = Actor(username="demo:supervisor", role="supervisor")
WITNESSES = ["王芳", "李强", "陈静", "林志明", "黄丽", "郑伟"]


def _dice(rng: random.Random, n: int = 24) -> str:
    return "".join(str(rng.randint(1, 6)) for _ in range(n))


async def build(session: AsyncSession, *, rng: random.Random, enterprises: int) -> dict[str, int]:
    """Add this module's demo data; returns counts for the summary line."""
    items = list((await session.scalars(select(CheckItem).order_by(CheckItem.code))).all())
    if not items:
        return {"plans": 0, "draws": 0}
    chosen = items if len(items) <= 4 else sorted(rng.sample(items, 4), key=lambda i: i.code)
    cities = [
        r[0]
        for r in await session.execute(
            text("SELECT DISTINCT left(region_code, 4) FROM enterprises ORDER BY 1")
        )
    ]
    today = date.today()
    plans = draws = tasks = 0
    for n, item in enumerate(chosen):
        last = n == len(chosen) - 1 and len(chosen) > 1
        witnesses = "、".join(rng.sample(WITNESSES, 2))
        region = [rng.choice(cities)] if cities and n % 2 == 1 else []
        scopes: list[list[str] | None] = [None, []]  # the item's categories, else all
        for categories in scopes:
            try:
                async with session.begin_nested():
                    plan = await service.create_plan(
                        session,
                        actor=DEMO_ACTOR,
                        data=PlanCreate(
                            name=f"{today.year}年{item.name}双随机抽查（第{n + 1}批）"[:200],
                            check_item_code=item.code,
                            scope=PlanScope(region_prefixes=region, category_codes=categories),
                            due_date=today + timedelta(days=60),
                            cross_unit=n % 2 == 0,
                            entropy_source=f"现场掷骰 24 位，见证人：{witnesses}",
                        ),
                    )
                    await service.commit_plan(
                        session, plan_id=plan.id, actor=DEMO_ACTOR, nonce=rng.randbytes(32)
                    )
                    plans += 1
                    if not last:
                        draw = await service.draw_plan(
                            session,
                            plan_id=plan.id,
                            entropy=_dice(rng),
                            entropy_source=f"dice rolled in front of {witnesses} (demo)",
                            actor=DEMO_ACTOR,
                        )
                        draws += 1
                        tasks += draw.selected_count
                break
            except QSamplingError:
                continue  # empty pool or not staffable with this scope: try wider, or skip
    return {"plans": plans, "draws": draws, "tasks": tasks}
