"""The directory part of the demo province (`qsampling demo`): a synthetic 福建.

Deterministic for a given seed (everything comes from the caller's ``random.Random``):

* the shipped reference data (regions, product categories, the check-item list);
* one 市场监管所 per county (``FJ-350102-S01``), a second one in the busy counties and a
  稽查支队 per city (``FJ-350100-J01``);
* ``enterprises`` enterprises with valid 统一社会信用代码: ~70 % 企业 / 25 % 个体工商户 /
  5 % 农民专业合作社; sizes skewed to small and micro; production, circulation and
  e-commerce; 1–3 product categories each; credit classes ~A 15 % / B 60 % / C 20 % /
  D 5 %; mostly 存续 with some 注销, 吊销, 迁出;
* max(200, enterprises / 25) inspectors in those units, each qualified for some check items,
  a few with declared conflicts of interest;
* demo accounts ``admin``, ``supervisor``, ``analyst`` and ``inspector`` with the password
  :data:`DEMO_PASSWORD` (local demo only); ``inspector`` is linked to the inspector
  ``FJ-350102-001``, who holds every qualification and may work anywhere, so the draws
  that follow put him on teams.
"""

from __future__ import annotations

import random
import sys
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.audit import service as audit
from qsampling.context import Actor
from qsampling.core import uscc as uscc_lib
from qsampling.directory.reference import load_reference, shipped_categories, shipped_regions
from qsampling.models.auth import User
from qsampling.models.directory import CheckItem

DEMO_ACTOR = Actor(username="demo:directory", role="admin")
DEMO_PASSWORD = "qsampling-demo"
DEMO_USERS = (
    ("admin", "admin", "演示管理员"),
    ("supervisor", "supervisor", "演示监管人员"),
    ("analyst", "analyst", "演示分析人员"),
    ("inspector", "inspector", "演示执法人员"),
)
DEMO_INSPECTOR = "FJ-350102-001"
PROVINCE = "35"

# counties with more enterprises (the coastal economy: 福州, 厦门, 泉州 …)
WEIGHTED_CITIES = {"3501": 5, "3502": 4, "3505": 6, "3506": 2, "3503": 2}

BRANDS = "恒鑫华盛泰兴达宏源嘉瑞福安信德利通祥丰鸿晟凯宇美佳新正力海闽榕鹭星辉"
ROADS = (
    "五四路 八一七路 工业路 湖东路 江滨大道 华林路 东大路 福新路 金山大道 长乐路 "
    "湖滨北路 嘉禾路 泉秀街 刺桐路 胜利街 人民路 解放路 建设路 兴业路 创业路"
).split()
KEYWORDS = {
    "01": ["服饰", "鞋业", "家纺", "日化", "家具", "眼镜", "箱包", "燃气具"],
    "02": ["电器", "照明", "电子", "数码", "家电"],
    "03": ["童车", "玩具", "童装", "婴童用品", "文具"],
    "04": ["塑料制品", "纸制品", "包装", "厨具", "陶瓷"],
    "05": ["建材", "涂料", "防水材料", "陶瓷", "管业", "门窗"],
    "06": ["农资", "肥业", "农膜", "农机"],
    "07": ["化工", "劳保用品", "机械", "五金", "焊材"],
    "08": ["电动车", "车业", "汽配", "油品", "自行车"],
    "09": ["电线电缆", "电工", "开关", "电池"],
    "10": ["消防器材", "安防", "消防设备"],
}
SUFFIXES = ["有限公司", "有限公司", "有限公司", "有限责任公司", "股份有限公司"]
TRADER_SUFFIXES = ["店", "经营部", "商行", "门市部", "批发部"]
SURNAMES = "陈林黄张李王吴刘蔡杨郑许谢洪郭邱曾廖赖徐周叶苏庄吕江何罗高潘"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志文斌辉婷玲晨宇航"
CONFLICT_REASONS = [
    "近亲属在该企业任职",
    "曾在该企业工作，离职未满三年",
    "本人或配偶持有该企业股份",
    "与该企业负责人存在其他利害关系",
]


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _short(name: str) -> str:
    for suffix in ("市", "区", "县"):
        if name.endswith(suffix) and len(name) > 2:
            return name[: -len(suffix)]
    return name


def _person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))


async def _users(session: AsyncSession) -> int:
    from qsampling.auth.service import create_user

    made = 0
    for username, role, display in DEMO_USERS:
        if await session.scalar(select(User.id).where(User.username == username)):
            continue
        await create_user(
            session,
            username=username,
            role=role,
            password=DEMO_PASSWORD,
            actor=DEMO_ACTOR,
            display_name=display,
            inspector_id=DEMO_INSPECTOR if role == "inspector" else None,
        )
        made += 1
    return made


async def build(session: AsyncSession, *, rng: random.Random, enterprises: int) -> dict[str, int]:
    """Add this module's demo data; returns counts for the summary line."""
    await load_reference(session, actor=DEMO_ACTOR)
    regions = [r for r in shipped_regions() if str(r["code"]).startswith(PROVINCE)]
    names = {str(r["code"]): str(r["name"]) for r in regions}
    counties = sorted(str(r["code"]) for r in regions if r["level"] == "county")
    counties = [c for c in counties if c != "350527"]  # 金门县: not administered
    cities = sorted(str(r["code"]) for r in regions if r["level"] == "city")
    county_weight = {c: WEIGHTED_CITIES.get(c[:4], 1) * (2 if c[4] == "0" else 1) for c in counties}

    # units: a 市场监管所 per county, a second in busy counties, a 稽查支队 per city
    units: list[tuple[str, str, str]] = []
    county_units: dict[str, list[str]] = {}
    for c in counties:
        n_units = 2 if county_weight[c] >= 4 else 1
        for k in range(1, n_units + 1):
            code = f"FJ-{c}-S{k:02d}"
            label = "城关" if k == 1 else rng.choice(["东街", "西湖", "开发区", "新城", "江南"])
            units.append((code, f"{names[c]}市场监督管理局{label}市场监管所", c))
            county_units.setdefault(c, []).append(code)
    for city in cities:
        units.append((f"FJ-{city}-J01", f"{names[city]}市场监督管理局稽查支队", city))
    await session.execute(
        text(
            "INSERT INTO units (code, name, region_code) SELECT * FROM unnest("
            "CAST(:c AS varchar[]), CAST(:n AS varchar[]), CAST(:r AS varchar[])) "
            "ON CONFLICT (code) DO NOTHING"
        ),
        {"c": [u[0] for u in units], "n": [u[1] for u in units], "r": [u[2] for u in units]},
    )

    n_ent = await _enterprises(
        session, rng, enterprises, counties, county_weight, names, county_units
    )
    items = list((await session.scalars(select(CheckItem).order_by(CheckItem.code))).all())
    quals = sorted({i.qualification for i in items if i.qualification})
    n_ins, n_conf = await _inspectors(session, rng, enterprises, counties, county_units, quals)
    users = await _users(session)
    await audit.record(
        session,
        actor=DEMO_ACTOR,
        action="directory.demo",
        entity_type="directory",
        entity_id="demo",
        payload={"enterprises": n_ent, "inspectors": n_ins, "conflicts": n_conf},
    )
    if users:
        print(
            "demo accounts: admin, supervisor, analyst, inspector — password "
            f"{DEMO_PASSWORD!r} (local demo only; inspector is linked to {DEMO_INSPECTOR})",
            file=sys.stderr,
        )
    return {
        "units": len(units),
        "enterprises": n_ent,
        "inspectors": n_ins,
        "conflicts": n_conf,
        "check items": len(items),
        "demo users": users,
    }


async def _enterprises(
    session: AsyncSession,
    rng: random.Random,
    n: int,
    counties: list[str],
    county_weight: dict[str, int],
    names: dict[str, str],
    county_units: dict[str, list[str]],
) -> int:
    cats = [c for c in shipped_categories() if c["level"] == 3]
    by_top: dict[str, list[str]] = {}
    for c in cats:
        by_top.setdefault(str(c["code"])[:2], []).append(str(c["code"]))
    tops = sorted(by_top)
    weights = [county_weight[c] for c in counties]
    seen: set[str] = set()
    rows: dict[str, list[Any]] = {
        k: []
        for k in (
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
            "credit_class",
        )
    }
    latest = date(2025, 12, 31)
    for _ in range(n):
        county = rng.choices(counties, weights=weights)[0]
        kind = _pick(rng, {"enterprise": 70, "sole_trader": 25, "cooperative": 5})
        dept, org = uscc_lib.MARKET_SUPERVISION_TYPES[kind]
        code = uscc_lib.generate(rng, region_code=county, registration_dept=dept, org_type=org)
        while code in seen:
            code = uscc_lib.generate(rng, region_code=county, registration_dept=dept, org_type=org)
        seen.add(code)
        top = rng.choice(tops) if kind != "cooperative" else "06"
        n_cats = rng.choices((1, 2, 3), weights=(55, 30, 15))[0]
        family = by_top[top] + (by_top[rng.choice(tops)] if n_cats == 3 else [])
        categories = sorted(set(rng.sample(family, min(n_cats, len(family)))))
        place = _short(names[county])
        brand = "".join(rng.sample(BRANDS, 2))
        word = rng.choice(KEYWORDS[top])
        if kind == "enterprise":
            name = f"{_short(names[county[:4] + '00'])}{brand}{word}{rng.choice(SUFFIXES)}"
            size = _pick(rng, {"large": 3, "medium": 12, "small": 45, "micro": 40})
            channel = _pick(rng, {"production": 45, "circulation": 40, "e-commerce": 15})
            entity_type = "企业"
        elif kind == "sole_trader":
            name = f"{place}{brand}{word}{rng.choice(TRADER_SUFFIXES)}"
            size = "micro"
            channel = _pick(rng, {"production": 5, "circulation": 75, "e-commerce": 20})
            entity_type = "个体工商户"
        else:
            name = f"{place}{brand}{rng.choice(['农资', '果蔬', '茶叶', '种植'])}农民专业合作社"
            size = _pick(rng, {"small": 30, "micro": 70})
            channel = _pick(rng, {"production": 70, "circulation": 30})
            entity_type = "农民专业合作社"
        rows["uscc"].append(code)
        rows["name"].append(name)
        rows["entity_type"].append(entity_type)
        rows["region_code"].append(county)
        rows["address"].append(
            f"福建省{names[county[:4] + '00']}{names[county]}{rng.choice(ROADS)}"
            f"{rng.randint(1, 399)}号"
        )
        rows["supervising_unit"].append(rng.choice(county_units[county]))
        rows["category_codes"].append(",".join(categories))
        rows["size"].append(size)
        rows["channel"].append(channel)
        rows["status"].append(
            _pick(rng, {"存续": 88, "在业": 4, "注销": 4, "吊销": 3, "迁出": 0.5, "停业": 0.5})
        )
        rows["registration_date"].append(latest - timedelta(days=rng.randint(0, 30 * 365)))
        rows["credit_class"].append(_pick(rng, {"A": 15, "B": 60, "C": 20, "D": 5}))
    if not n:
        return 0
    result = await session.execute(
        text(
            "INSERT INTO enterprises (uscc, name, entity_type, region_code, address, "
            "supervising_unit, category_codes, size, channel, status, registration_date, "
            "credit_class) SELECT u, nm, et, rc, ad, su, "
            "CAST(string_to_array(cc, ',') AS varchar(32)[]), sz, ch, st, rd, cl FROM unnest("
            "CAST(:uscc AS text[]), CAST(:name AS text[]), CAST(:entity_type AS text[]), "
            "CAST(:region_code AS text[]), CAST(:address AS text[]), "
            "CAST(:supervising_unit AS text[]), CAST(:category_codes AS text[]), "
            "CAST(:size AS text[]), CAST(:channel AS text[]), CAST(:status AS text[]), "
            "CAST(:registration_date AS date[]), CAST(:credit_class AS text[])) "
            "AS t(u, nm, et, rc, ad, su, cc, sz, ch, st, rd, cl) "
            "ON CONFLICT (uscc) DO NOTHING"
        ),
        rows,
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def _inspectors(
    session: AsyncSession,
    rng: random.Random,
    n_enterprises: int,
    counties: list[str],
    county_units: dict[str, list[str]],
    quals: list[str],
) -> tuple[int, int]:
    n = max(200, n_enterprises // 25)
    common = [q for q in quals if q in ("QUAL-GEN", "QUAL-REG")]
    special = [q for q in quals if q not in common]
    ids: list[str] = []
    rows: dict[str, list[Any]] = {"i": [], "n": [], "u": [], "s": [], "q": []}
    per_county: dict[str, int] = {}
    order = [c for c in counties if c == DEMO_INSPECTOR[3:9]] + [
        c for c in counties if c != DEMO_INSPECTOR[3:9]
    ]
    for k in range(n):
        county = order[k % len(order)] if k < len(order) * 2 else rng.choice(counties)
        per_county[county] = per_county.get(county, 0) + 1
        iid = f"FJ-{county}-{per_county[county]:03d}"
        unit = rng.choice(county_units[county])
        if iid == DEMO_INSPECTOR:
            unit = county_units[county][0]
            scope: list[str] = []
            q = list(quals)
        else:
            # most work in their county; one in five also covers the neighbouring counties
            scope = [county]
            if rng.random() < 0.2:
                near = [c for c in counties if c[:4] == county[:4] and c != county]
                scope += rng.sample(near, min(len(near), 2))
            q = common + rng.sample(special, min(len(special), rng.randint(2, 5)))
        ids.append(iid)
        rows["i"].append(iid)
        rows["n"].append(_person(rng))
        rows["u"].append(unit)
        rows["s"].append(",".join(scope))
        rows["q"].append(",".join(sorted(set(q))))
    result = await session.execute(
        text(
            "INSERT INTO inspectors (inspector_id, name, unit_code, region_scope, qualifications) "
            "SELECT i, n, u, CAST(string_to_array(s, ',') AS varchar(6)[]), "
            "CAST(string_to_array(q, ',') AS varchar(32)[]) FROM unnest("
            "CAST(:i AS text[]), CAST(:n AS text[]), CAST(:u AS text[]), CAST(:s AS text[]), "
            "CAST(:q AS text[])) AS t(i, n, u, s, q) ON CONFLICT (inspector_id) DO NOTHING"
        ),
        rows,
    )
    made = int(getattr(result, "rowcount", 0) or 0)

    # a few declared conflicts of interest with enterprises of the inspector's county
    conflicts: dict[str, list[Any]] = {"i": [], "u": [], "r": [], "d": []}
    candidates = rng.sample(ids, max(5, len(ids) // 20))
    for iid in candidates:
        county = iid[3:9]
        usccs = list(
            await session.scalars(
                text(
                    "SELECT uscc FROM enterprises WHERE region_code = :c ORDER BY uscc LIMIT 50"
                ).bindparams(c=county)
            )
        )
        for u in rng.sample(usccs, min(len(usccs), rng.randint(1, 2))):
            conflicts["i"].append(iid)
            conflicts["u"].append(u)
            conflicts["r"].append(rng.choice(CONFLICT_REASONS))
            conflicts["d"].append(date(2025, 1, 1) + timedelta(days=rng.randint(0, 300)))
    n_conf = 0
    if conflicts["i"]:
        res = await session.execute(
            text(
                "INSERT INTO inspector_conflicts (inspector_id, uscc, reason, declared_date) "
                "SELECT * FROM unnest(CAST(:i AS text[]), CAST(:u AS text[]), "
                "CAST(:r AS text[]), CAST(:d AS date[])) ON CONFLICT DO NOTHING"
            ),
            conflicts,
        )
        n_conf = int(getattr(res, "rowcount", 0) or 0)
    return made, n_conf
