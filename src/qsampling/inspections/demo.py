"""The inspections part of the demo province (`qsampling demo`): a year of inspection history.

Runs after the directory and draws parts. For each of the last four quarters a handful of
check items get a routine plan, committed and drawn through the draws module with dice
entropy from the demo's seeded generator, then dated back to the quarter (the draws demo
only draws today). Their tasks get results through the real lab batch path (validation,
idempotency, set-based inserts), then notifications, objections and retests are recorded
and results become final through the same finalisation the job runs, dated at the end of
each quarter — so events, ``final_results``, rectification orders and follow-up plans are
exactly what production would write. The older quarters' follow-up plans are drawn and
re-inspected (some fail again: ``reinspection.failed``).

Shares (deterministic for the seed): about 6 % of samples fail, 儿童用品 (03) falls from
about 97.5 % to 85 % over the quarters, 交通用具 (08) and 工业生产资料 (07) stay below 93 %;
about 2 % unreachable (6), 1 % refusals (8), 1.5 % closed or out of scope (7, 9, F); a third
of the failures are objected to, and about a third of the retests overturn the failure. The
newest quarter is partly still open (submitted, or notified with the window running), and
the draws demo's current tasks are partly started or submitted today.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.context import Actor
from qsampling.errors import QSamplingError
from qsampling.inspections import finalise as fin
from qsampling.inspections.batch import submit_batch
from qsampling.inspections.validation import CHINA
from qsampling.models.directory import CheckItem

log = logging.getLogger(__name__)

DEMO_ACTOR = Actor(username="demo:inspections", role="admin")
DRAW_ACTOR = Actor(username="demo:supervisor", role="supervisor")

# the last four calendar quarters (the newest one under way); see :func:`_quarters`
QUARTER_COUNT = 4
CORE_ITEMS = ("SC-2026-001", "SC-2026-002", "SC-2026-004", "SC-2026-009", "SC-2026-012")
# more tasks than the default ratios give, so the demo's quarterly rates carry some weight
PRODUCT_RATIOS = {"A": "0.10", "B": "0.20", "C": "0.40", "D": "0.80"}
# 儿童用品 (the falling category) sampled more heavily, so its trend is clear
FOCUS_ITEM = "SC-2026-001"
FOCUS_RATIOS = {"A": "0.30", "B": "0.50", "C": "0.70", "D": "1.00"}
# checks of every enterprise's public information: fewer
GENERAL_RATIOS = {"A": "0.01", "B": "0.02", "C": "0.06", "D": "0.25"}

# pass rate of a sample by top-level product category, per quarter (oldest first)
PASS_RATES: dict[str, tuple[float, ...]] = {
    "03": (0.975, 0.95, 0.91, 0.85),  # 儿童用品: falling
    "08": (0.89, 0.885, 0.88, 0.89),  # 交通用具: below 93 %
    "07": (0.905, 0.91, 0.9, 0.9),  # 工业生产资料: below 93 %
    "04": (0.95, 0.955, 0.95, 0.95),
}
DEFAULT_PASS = (0.97, 0.965, 0.97, 0.975)

TESTS: dict[str, list[tuple[str, str, str | None, tuple[str, str]]]] = {
    # name, requirement, unit, (a passing value, a failing value)
    "03": [
        ("邻苯二甲酸酯（DEHP+DBP+BBP）", "≤ 0.1", "%", ("0.02", "0.38")),
        ("可迁移元素铅", "≤ 90", "mg/kg", ("12", "156")),
        ("小零件", "不得有", None, ("未发现", "有")),
        ("锐利边缘", "不得有", None, ("未发现", "有")),
    ],
    "02": [
        ("泄漏电流", "≤ 0.75", "mA", ("0.21", "1.30")),
        ("发热（绕组温升）", "≤ 75", "K", ("52", "88")),
        ("输入功率偏差", "-10 ~ +10", "%", ("+3.1", "+17.4")),
        ("标志和说明", "符合 GB 4706.1 第7章", None, ("符合", "不符合")),
    ],
    "04": [
        ("总迁移量", "≤ 10", "mg/dm²", ("2.4", "16.8")),
        ("高锰酸钾消耗量", "≤ 10", "mg/kg", ("3", "19")),
        ("重金属（以Pb计）", "≤ 1", "mg/kg", ("< 0.2", "2.6")),
    ],
    "01": [
        ("甲醛含量", "≤ 75", "mg/kg", ("21", "132")),
        ("pH值", "4.0 ~ 8.5", None, ("6.8", "9.4")),
        ("纤维含量", "与标识相符", "%", ("相符", "不符")),
        ("耐水色牢度（变色）", "≥ 3", "级", ("4", "2")),
    ],
    "08": [
        ("最高车速", "≤ 25", "km/h", ("24.1", "31.5")),
        ("整车质量", "≤ 55", "kg", ("52", "63")),
        ("头盔吸收碰撞能量", "≤ 400", "g", ("212", "520")),
    ],
}
DEFAULT_TESTS = [
    ("外观质量", "符合标准要求", None, ("符合", "不符合")),
    ("标志标识", "符合 GB/T 191", None, ("符合", "不符合")),
    ("主要性能指标", "符合产品标准", None, ("符合", "不符合")),
]
PRODUCTS: dict[str, list[str]] = {
    "01": ["针织T恤", "羽绒服", "床上用品四件套", "毛巾"],
    "02": ["电热水壶", "电吹风", "移动电源", "LED台灯"],
    "03": ["儿童推车", "塑胶玩具", "儿童服装", "儿童安全座椅"],
    "04": ["一次性塑料餐盒", "不锈钢保温杯", "食品用纸杯"],
    "05": ["陶瓷砖", "内墙涂料", "塑料管材"],
    "06": ["复合肥料", "农用地膜"],
    "07": ["安全帽", "防护手套", "工业硫酸"],
    "08": ["电动自行车", "电动自行车头盔", "汽车轮胎"],
    "09": ["聚氯乙烯绝缘电线", "电力电缆"],
    "10": ["手提式干粉灭火器", "消防应急照明灯"],
}
BRANDS = ["好孩子", "美的", "雅迪", "安踏", "九牧", "公牛", "七匹狼", "恒安", "晨光", "格力",
          "万家乐", "象屿", "鸿星尔克", "特步", "金牌"]  # fmt: skip
STANDARDS = {
    "01": "GB 18401-2010", "02": "GB 4706.1-2005", "03": "GB 6675.1-2014",
    "04": "GB 4806.7-2023", "08": "GB 17761-2018",
}  # fmt: skip


@dataclass
class Counts:
    plans: int = 0
    results: int = 0
    rejected: int = 0
    notified: int = 0
    objections: int = 0
    retests: int = 0
    finalised: int = 0
    follow_up_draws: int = 0


def _at(day: date, rng: random.Random) -> datetime:
    """A working-hours moment of ``day`` in China, as UTC."""
    local = datetime.combine(day, time(rng.randint(8, 16), rng.randint(0, 59)), tzinfo=CHINA)
    return local.astimezone(UTC)


def _quarter_name(moment: datetime) -> str:
    d = moment.astimezone(CHINA).date()
    return f"{d.year}年第{(d.month - 1) // 3 + 1}季度"


def _quarter_start(d: date) -> date:
    return date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)


def _quarters(today: date) -> list[tuple[date, date, date, date]]:
    """(draw day, first inspection, last inspection, finalisation) for the last four
    calendar quarters, oldest first; the newest is the latest one with at least three weeks
    behind it, its inspections end three days ago and it is finalised now."""
    start = _quarter_start(today - timedelta(days=20))
    starts = [start]
    for _ in range(QUARTER_COUNT - 1):
        starts.insert(0, _quarter_start(starts[0] - timedelta(days=1)))
    out = []
    for k, qs in enumerate(starts):
        end = _quarter_start(qs + timedelta(days=95)) - timedelta(days=1)
        newest = k == len(starts) - 1
        last = today - timedelta(days=3) if newest else end - timedelta(days=28)
        final = today if newest else end
        out.append((qs + timedelta(days=1), qs + timedelta(days=4), last, final))
    return out


def _dice(rng: random.Random, n: int = 24) -> str:
    return "".join(str(rng.randint(1, 6)) for _ in range(n))


async def _backdate(session: AsyncSession, plan_ids: Sequence[int], when: datetime) -> None:
    """Date plans, their commitments, draws and tasks back to ``when`` (demo history only)."""
    if not plan_ids:
        return
    p = {"ids": list(plan_ids), "t": when}
    for sql in (
        "UPDATE plans SET created_at = CAST(:t AS timestamptz), "
        "committed_at = CASE WHEN committed_at IS NULL THEN NULL "
        "ELSE CAST(:t AS timestamptz) END, "
        "drawn_at = CASE WHEN drawn_at IS NULL THEN NULL ELSE CAST(:t AS timestamptz) END "
        "WHERE id = ANY(CAST(:ids AS bigint[]))",
        "UPDATE commitments SET created_at = :t WHERE plan_id = ANY(CAST(:ids AS bigint[]))",
        "UPDATE draws SET drawn_at = :t WHERE plan_id = ANY(CAST(:ids AS bigint[]))",
        "UPDATE tasks SET created_at = :t, updated_at = :t "
        "WHERE plan_id = ANY(CAST(:ids AS bigint[]))",
    ):
        await session.execute(text(sql), p)


async def _draw(
    session: AsyncSession,
    rng: random.Random,
    *,
    item: CheckItem,
    when: datetime,
    name: str,
) -> int | None:
    """A routine plan for ``item``, committed and drawn, dated back to ``when``."""
    from qsampling.draws import service as draws
    from qsampling.draws.schemas import PlanCreate

    witnesses = "、".join(rng.sample(["王芳", "李强", "陈静", "林志明", "黄丽", "郑伟"], 2))
    try:
        async with session.begin_nested():
            plan = await draws.create_plan(
                session,
                actor=DRAW_ACTOR,
                data=PlanCreate(
                    name=name[:200],
                    check_item_code=item.code,
                    ratios=(
                        FOCUS_RATIOS
                        if item.code == FOCUS_ITEM
                        else PRODUCT_RATIOS
                        if item.category_codes
                        else GENERAL_RATIOS
                    ),
                    due_date=(when + timedelta(days=60)).date(),
                    entropy_source=f"现场掷骰 24 位，见证人：{witnesses}",
                ),
            )
            await draws.commit_plan(
                session, plan_id=plan.id, actor=DRAW_ACTOR, nonce=rng.randbytes(32)
            )
            await draws.draw_plan(
                session,
                plan_id=plan.id,
                entropy=_dice(rng),
                entropy_source=f"dice rolled in front of {witnesses} (demo)",
                actor=DRAW_ACTOR,
            )
    except QSamplingError as exc:
        log.info("demo: no plan for %s: %s", item.code, exc.detail)
        return None
    await _backdate(session, [plan.id], when)
    return int(plan.id)


def _top(code: str) -> str:
    return code.split(".")[0]


def _sample_category(item: CheckItem, enterprise_categories: Sequence[str]) -> str | None:
    prefixes = list(item.category_codes or [])
    for c in enterprise_categories:
        if any(c == p or c.startswith(p + ".") for p in prefixes):
            return c
    return prefixes[0] if prefixes else None


def _result_row(
    rng: random.Random,
    *,
    task_id: int,
    item: CheckItem,
    categories: Sequence[str],
    day: date,
    quarter: int,
    key: str,
    reinspection: bool = False,
) -> dict[str, Any]:
    at = _at(day, rng)
    base: dict[str, Any] = {"task_id": task_id, "idempotency_key": key,
                            "inspected_at": at.isoformat()}  # fmt: skip
    roll = rng.random()
    product = bool(item.category_codes)
    if not reinspection and roll < 0.02:
        return {**base, "category_codes": ["6"], "notes": "登记住所无法联系，现场张贴告知书"}
    if not reinspection and roll < 0.03:
        return {**base, "category_codes": ["8"], "notes": "当事人拒绝接受检查，拒绝提供样品"}
    if not reinspection and roll < 0.045:
        code = rng.choice(["7", "9", "F"])
        return {**base, "category_codes": [code]}
    if not product:
        r = rng.random()
        codes = ["1"] if r < 0.86 else ["B"] if r < 0.93 else ["B", "E"] if r < 0.97 else ["C"]
        return {**base, "category_codes": codes}
    cat = _sample_category(item, categories)
    top = _top(cat) if cat else "00"
    rate = PASS_RATES.get(top, DEFAULT_PASS)[quarter]
    if reinspection:
        rate = 0.75
    tests = TESTS.get(top, DEFAULT_TESTS)
    samples = []
    any_fail = False
    for _ in range(1 if rng.random() < 0.7 else 2):
        fails = rng.random() > rate
        any_fail = any_fail or fails
        chosen = rng.sample(tests, k=min(len(tests), rng.randint(2, 4)))
        bad = rng.randrange(len(chosen)) if fails else -1
        samples.append(
            {
                "product_name": rng.choice(PRODUCTS.get(top, ["产品"])),
                "brand": rng.choice(BRANDS),
                "model_spec": f"{rng.choice('ABCDKMXZ')}{rng.randint(10, 990)}",
                "batch_no": f"{day:%Y%m}{rng.randint(1, 999):03d}",
                "production_date": (day - timedelta(days=rng.randint(20, 200))).isoformat(),
                "quantity": rng.choice([2, 3, 4, 6]),
                "quantity_unit": "件",
                "standard": STANDARDS.get(top),
                "category_code": cat,
                "items": [
                    {
                        "name": name,
                        "requirement": req,
                        "measured_value": vals[1] if k == bad else vals[0],
                        "unit": unit,
                        "verdict": "fail" if k == bad else "pass",
                    }
                    for k, (name, req, unit, vals) in enumerate(chosen)
                ],
            }
        )
    codes = (["E"] if rng.random() < 0.4 else ["A"]) if any_fail else ["1"]
    return {**base, "conclusion": "fail" if any_fail else "pass", "category_codes": codes,
            "samples": samples}  # fmt: skip


async def _submit(
    session: AsyncSession, rows: list[dict[str, Any]], counts: Counts, latest: datetime
) -> None:
    """Through the lab batch path, a week at a time (each batch dated at its last result)."""
    rows = sorted(rows, key=lambda r: r["inspected_at"])
    week: list[dict[str, Any]] = []

    async def flush() -> None:
        if not week:
            return
        last = max(datetime.fromisoformat(r["inspected_at"]) for r in week)
        now = min(last + timedelta(hours=3), latest)
        content = "\n".join(json.dumps(r, ensure_ascii=False) for r in week).encode()
        rep = await submit_batch(
            session, actor=DEMO_ACTOR, content=content, content_type="application/x-ndjson",
            now=now,
        )  # fmt: skip
        counts.results += rep.created
        counts.rejected += rep.rejected
        for r in rep.rows:
            if r.status == "error":
                log.warning("demo result rejected (line %s): %s", r.row, r.detail)
        week.clear()

    current = None
    for r in rows:
        iso = datetime.fromisoformat(r["inspected_at"]).isocalendar()[:2]
        if current is not None and iso != current:
            await flush()
        current = iso
        week.append(r)
    await flush()


async def _lifecycle(
    session: AsyncSession,
    rng: random.Random,
    *,
    plan_ids: Sequence[int],
    notify_until: date,
    counts: Counts,
    objection_share: float = 0.35,
    retest_share: float = 1.0,
) -> None:
    """Notifications, objections and retests for the results of ``plan_ids``, dated after
    their inspections and no later than ``notify_until``."""
    rows = (
        await session.execute(
            text("""
                SELECT r.id, r.task_id, (r.inspected_at AT TIME ZONE 'Asia/Shanghai')::date AS d,
                       ARRAY(SELECT ti.id FROM test_items ti WHERE ti.result_id = r.id
                             AND ti.verdict = 'fail' ORDER BY ti.id) AS failed
                FROM results r JOIN tasks t ON t.id = r.task_id
                WHERE t.plan_id = ANY(CAST(:ids AS bigint[])) AND r.live
                  AND t.status = 'submitted'
                ORDER BY r.id
            """),
            {"ids": list(plan_ids)},
        )
    ).all()
    notes: list[tuple[int, int, date]] = []
    for rid, tid, d, _failed in rows:
        on = d + timedelta(days=rng.randint(1, 8))
        if on <= notify_until:
            notes.append((rid, tid, on))
    if not notes:
        return
    await session.execute(
        text("""
            INSERT INTO result_notifications (result_id, notified_on, objection_deadline,
                                              method, recorded_by)
            SELECT r, d, d + 15, m, :by
            FROM unnest(CAST(:rids AS bigint[]), CAST(:days AS date[]), CAST(:methods AS text[]))
                 AS x(r, d, m)
        """),
        {
            "rids": [n[0] for n in notes],
            "days": [n[2] for n in notes],
            "methods": [rng.choice(["direct", "direct", "mail", "electronic"]) for _ in notes],
            "by": DRAW_ACTOR.username,
        },
    )
    await session.execute(
        text("UPDATE tasks SET status = 'notified' WHERE id = ANY(CAST(:t AS bigint[]))"),
        {"t": [n[1] for n in notes]},
    )
    counts.notified += len(notes)
    failed = {rid: list(f) for rid, _t, _d, f in rows if f}
    objections: list[tuple[int, int, date, list[int]]] = []
    for rid, tid, on in notes:
        if rid in failed and rng.random() < objection_share:
            received = on + timedelta(days=rng.randint(2, 13))
            if received <= notify_until:
                objections.append((rid, tid, received, failed[rid]))
    if not objections:
        return
    ids = (
        await session.execute(
            text("""
                INSERT INTO objections (result_id, received_on, disputed_item_ids, reason,
                                        recorded_by)
                SELECT r, d, string_to_array(i, ',')::bigint[], :reason, :by
                FROM unnest(CAST(:rids AS bigint[]), CAST(:days AS date[]),
                            CAST(:items AS text[])) AS x(r, d, i)
                RETURNING id, result_id
            """),
            {
                "rids": [o[0] for o in objections],
                "days": [o[2] for o in objections],
                "items": [",".join(str(i) for i in o[3]) for o in objections],
                "reason": "企业对检验结论有异议，申请使用备用样品复检",
                "by": DRAW_ACTOR.username,
            },
        )
    ).all()
    await session.execute(
        text("UPDATE tasks SET status = 'objected' WHERE id = ANY(CAST(:t AS bigint[]))"),
        {"t": [o[1] for o in objections]},
    )
    counts.objections += len(objections)
    objection_of = {int(r): int(i) for i, r in ids}
    retests = []
    for rid, tid, received, items in objections:
        at = received + timedelta(days=rng.randint(5, 20))
        if at <= notify_until and rng.random() < retest_share:
            retests.append((rid, tid, _at(at, rng), items, rng.random() < 0.35))
    if not retests:
        return
    rt_ids = (
        await session.execute(
            text("""
                INSERT INTO retests (result_id, objection_id, retested_at, conclusion,
                                     recorded_by)
                SELECT r, o, a, c, :by
                FROM unnest(CAST(:rids AS bigint[]), CAST(:oids AS bigint[]),
                            CAST(:ats AS timestamptz[]), CAST(:cs AS text[])) AS x(r, o, a, c)
                RETURNING id, result_id
            """),
            {
                "rids": [r[0] for r in retests],
                "oids": [objection_of[r[0]] for r in retests],
                "ats": [r[2] for r in retests],
                "cs": ["pass" if r[4] else "fail" for r in retests],
                "by": DRAW_ACTOR.username,
            },
        )
    ).all()
    retest_of = {int(r): int(i) for i, r in rt_ids}
    item_rows = [
        (retest_of[rid], item, "pass" if overturned else "fail")
        for rid, _t, _a, items, overturned in retests
        for item in items
    ]
    await session.execute(
        text("""
            INSERT INTO retest_items (retest_id, test_item_id, measured_value, verdict)
            SELECT r, i, CASE WHEN v = 'pass' THEN '复检符合' ELSE '复检不符合' END, v
            FROM unnest(CAST(:r AS bigint[]), CAST(:i AS bigint[]), CAST(:v AS text[]))
                 AS x(r, i, v)
        """),
        {
            "r": [x[0] for x in item_rows],
            "i": [x[1] for x in item_rows],
            "v": [x[2] for x in item_rows],
        },  # fmt: skip
    )
    await session.execute(
        text("UPDATE tasks SET status = 'retested' WHERE id = ANY(CAST(:t AS bigint[]))"),
        {"t": [r[1] for r in retests]},
    )
    counts.retests += len(retests)


async def _tasks_of(session: AsyncSession, plan_ids: Sequence[int]) -> list[Any]:
    return list(
        (
            await session.execute(
                text("""
                    SELECT t.id, t.check_item_code, e.category_codes
                    FROM tasks t JOIN enterprises e ON e.uscc = t.uscc
                    WHERE t.plan_id = ANY(CAST(:ids AS bigint[])) AND t.status = 'assigned'
                    ORDER BY t.id
                """),
                {"ids": list(plan_ids)},
            )
        ).all()
    )


async def _follow_ups(
    session: AsyncSession,
    rng: random.Random,
    *,
    items: dict[str, CheckItem],
    issued_before: date,
    today: date,
    counts: Counts,
) -> None:
    """Draw the follow-up plans of orders issued before ``issued_before`` and re-inspect."""
    from qsampling.draws import service as draws

    plans = (
        await session.execute(
            text("""
                SELECT p.id, min(o.issued_on) AS issued, min(o.reinspection_due_date) AS due
                FROM plans p JOIN rectification_orders o ON o.follow_up_plan_id = p.id
                WHERE p.status = 'committed' AND o.issued_on < :before
                GROUP BY p.id ORDER BY p.id
            """),
            {"before": issued_before},
        )
    ).all()
    for plan_id, issued, due in plans:
        try:
            async with session.begin_nested():
                await draws.draw_plan(
                    session, plan_id=plan_id, entropy=_dice(rng),
                    entropy_source="dice (demo follow-up)", actor=DRAW_ACTOR,
                )  # fmt: skip
        except QSamplingError as exc:
            log.info("demo: follow-up plan %s not drawn: %s", plan_id, exc.detail)
            continue
        drawn = datetime.combine(issued + timedelta(days=3), time(10), tzinfo=CHINA)
        await _backdate(session, [plan_id], drawn.astimezone(UTC))
        counts.follow_up_draws += 1
        tasks = await _tasks_of(session, [plan_id])
        day = min(issued + timedelta(days=rng.randint(45, 70)), due, today - timedelta(days=1))
        rows = [
            _result_row(rng, task_id=t.id, item=items[t.check_item_code],
                        categories=t.category_codes or [], day=day, quarter=3,
                        key=f"demo-re-{t.id}", reinspection=True)
            for t in tasks
        ]  # fmt: skip
        await _submit(session, rows, counts, datetime.now(UTC))
        await _lifecycle(session, rng, plan_ids=[plan_id], notify_until=day + timedelta(days=5),
                         counts=counts, objection_share=0.0)  # fmt: skip
        at = min(datetime.combine(day + timedelta(days=25), time(18), tzinfo=CHINA),
                 datetime.now(UTC))  # fmt: skip
        counts.finalised += await fin.finalise_all_due(session, now=at.astimezone(UTC))


async def _current_work(session: AsyncSession, rng: random.Random, counts: Counts) -> None:
    """The draws demo's tasks (drawn today): some started, some submitted today."""
    now = datetime.now(UTC)
    rows = (
        await session.execute(
            text("""
                SELECT t.id, t.check_item_code, e.category_codes
                FROM tasks t JOIN plans p ON p.id = t.plan_id
                JOIN enterprises e ON e.uscc = t.uscc
                WHERE t.status = 'assigned' AND p.plan_type = 'routine'
                  AND t.created_at > :since
                ORDER BY t.id
            """),
            {"since": now - timedelta(days=2)},
        )
    ).all()
    if not rows:
        return
    items = {i.code: i for i in (await session.scalars(select(CheckItem))).all()}
    started = [r.id for r in rows if rng.random() < 0.25]
    if started:
        await session.execute(
            text("UPDATE tasks SET status = 'in_progress' WHERE id = ANY(CAST(:t AS bigint[]))"),
            {"t": started},
        )
    chosen = [r for r in rows if r.id not in set(started) and rng.random() < 0.12]
    today = now.astimezone(CHINA).date()
    results = []
    for r in chosen:
        row = _result_row(rng, task_id=r.id, item=items[r.check_item_code],
                          categories=r.category_codes or [], day=today, quarter=3,
                          key=f"demo-now-{r.id}")  # fmt: skip
        at = min(datetime.fromisoformat(row["inspected_at"]), now - timedelta(minutes=10))
        row["inspected_at"] = at.isoformat()
        for s in row.get("samples", []):
            s["production_date"] = min(date.fromisoformat(s["production_date"]), today).isoformat()
        results.append(row)
    await _submit(session, results, counts, now)


async def build(session: AsyncSession, *, rng: random.Random, enterprises: int) -> dict[str, int]:
    """Add this module's demo data; returns counts for the summary line."""
    items = {i.code: i for i in (await session.scalars(select(CheckItem))).all()}
    if not items:
        return {}
    counts = Counts()
    now = datetime.now(UTC)
    today = now.astimezone(CHINA).date()
    others = sorted(c for c in items if c not in CORE_ITEMS)
    quarters = _quarters(today)
    for q, (draw_day, first_day, last_day, final_day) in enumerate(quarters):
        newest = q == len(quarters) - 1
        chosen = [c for c in CORE_ITEMS if c in items]
        chosen += [others[(2 * q + k) % len(others)] for k in range(2)] if others else []
        drawn_at = _at(draw_day, rng)
        plan_ids = []
        for code in chosen:
            pid = await _draw(
                session, rng, item=items[code], when=drawn_at,
                name=f"{_quarter_name(drawn_at)}{items[code].name}双随机抽查",
            )  # fmt: skip
            if pid is not None:
                plan_ids.append(pid)
        counts.plans += len(plan_ids)
        tasks = await _tasks_of(session, plan_ids)
        span = max(0, (last_day - first_day).days)
        rows = []
        for t in tasks:
            if newest and rng.random() < 0.08:
                continue  # the newest quarter: some inspections still to do
            day = first_day + timedelta(days=rng.randint(0, span))
            if newest and span > 30 and rng.random() < 0.75:
                # most of the newest quarter's inspections early enough to be final by now
                day = first_day + timedelta(days=rng.randint(0, span - 20))
            rows.append(
                _result_row(rng, task_id=t.id, item=items[t.check_item_code],
                            categories=t.category_codes or [], day=day, quarter=q,
                            key=f"demo-{t.id}")
            )  # fmt: skip
        await _submit(session, rows, counts, now)
        await _lifecycle(
            session, rng, plan_ids=plan_ids,
            notify_until=today - timedelta(days=1) if newest else final_day,
            counts=counts, retest_share=0.7 if newest else 1.0,
        )  # fmt: skip
        at = now if newest else datetime.combine(final_day, time(18), tzinfo=CHINA)
        counts.finalised += await fin.finalise_all_due(session, now=at.astimezone(UTC))
        # follow-up plans of this quarter's orders were created just now: date them back
        await session.execute(
            text("""
                UPDATE plans p SET created_at = o.t, committed_at = o.t
                FROM (SELECT follow_up_plan_id AS id,
                             (min(issued_on) + time '18:00') AT TIME ZONE 'Asia/Shanghai' AS t
                      FROM rectification_orders WHERE follow_up_plan_id IS NOT NULL
                      GROUP BY follow_up_plan_id) o
                WHERE p.id = o.id AND p.status = 'committed' AND p.created_at > o.t
            """)
        )
    # re-inspections of the orders issued in the first three quarters
    await _follow_ups(session, rng, items=items, issued_before=quarters[-1][0],
                      today=today, counts=counts)  # fmt: skip
    await _current_work(session, rng, counts)
    orders = await session.scalar(text("SELECT count(*) FROM rectification_orders")) or 0
    final_rows = await session.scalar(text("SELECT count(*) FROM final_results")) or 0
    if counts.rejected:
        log.warning("demo: %s generated results were rejected", counts.rejected)
    return {
        "inspection results": counts.results,
        "final tested batches": int(final_rows),
        "objections": counts.objections,
        "retests": counts.retests,
        "rectification orders": int(orders),
        "follow-up draws": counts.follow_up_draws,
    }
