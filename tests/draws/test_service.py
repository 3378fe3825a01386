"""The draws service against the database: golden vectors through PostgreSQL, SQL == core,
exclusion window, rotation, conflicts, eligibility, strata, follow-up plans."""

from __future__ import annotations

import hashlib
import io
import json
import random
import zipfile
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.context import Actor
from qsampling.core.draw import (
    Candidate,
    canonical_json,
    enterprise_key,
    exclusions_csv,
    inspectors_csv,
    parse_exclusions_csv,
    parse_pool_csv,
    pool_csv,
    verify_bundle,
)
from qsampling.core.draw import (
    select as core_select,
)
from qsampling.draws import service
from qsampling.draws.bundle import bundle_bytes
from qsampling.draws.pool import pool_csv_bytes, pool_csv_sha256, sql_topk, store_pool_csv
from qsampling.draws.schemas import PlanCreate
from qsampling.errors import Conflict, InvalidInput
from qsampling.models.directory import Enterprise, Inspector, Region, Unit
from qsampling.models.draws import Commitment, Plan, Task, TaskInspector
from tests.core import test_draw as golden
from tests.draws.conftest import ITEM, add_conflict, build_province

ACTOR = Actor(username="sup", role="supervisor")
ENTROPY = "27182818284590452353602874"


async def _plan(session: AsyncSession, **kw) -> Plan:
    return await service.create_plan(
        session, actor=ACTOR, data=PlanCreate(name="p", check_item_code=ITEM, **kw)
    )


async def _committed_and_drawn(session: AsyncSession, **kw) -> tuple[Plan, service.CommitResult]:
    plan = await _plan(session, **kw)
    res = await service.commit_plan(session, plan_id=plan.id, actor=ACTOR)
    await service.draw_plan(
        session, plan_id=plan.id, entropy=ENTROPY, entropy_source=None, actor=ACTOR
    )
    return plan, res


async def _tasks(session: AsyncSession, plan_id: int) -> list[Task]:
    return list(
        await session.scalars(select(Task).where(Task.plan_id == plan_id).order_by(Task.draw_rank))
    )


# --------------------------------------------------------------------------- golden vectors


async def _golden_commitment(session: AsyncSession) -> Plan:
    """The golden draw of tests/core/test_draw.py stored as plan 42 with its commitment."""
    for code in ("110000", "110108", "310000", "310115", "440000", "440305"):
        session.add(Region(code=code, name=code, level="county", parent_code=None))
    await session.flush()
    for u in ("SJ00", "SJ01", "SJ02", "SJ03"):
        session.add(Unit(code=u, name=u, region_code=None))
    await session.flush()
    for c in golden.POOL:
        session.add(
            Enterprise(
                uscc=c.uscc,
                name=c.uscc,
                entity_type="企业",
                region_code=c.uscc[2:8],
                supervising_unit=c.unit or None,
                size="small",
                channel="production",
                credit_class=c.stratum,
            )
        )
    for ins in golden.INSPECTORS:
        session.add(
            Inspector(inspector_id=ins.inspector_id, name="x", unit_code=ins.unit or "SJ00")
        )
    await session.flush()
    await build_province(session, enterprises=0, inspectors=0)  # the check item
    plan = Plan(
        id=42,
        name="golden",
        check_item_code=ITEM,
        plan_type="routine",
        status="committed",
        scope={},
        strata_fields=["credit_class"],
        team_size=2,
        max_tasks_per_inspector=2,
        cross_unit=True,
        exclusion_days=180,
        created_by="t",
    )
    session.add(plan)
    await session.flush()
    c = Commitment(
        plan_id=42,
        commitment=golden.COMMITMENT,
        params_json=canonical_json(golden.golden_params()),
        pool_sha256=golden.POOL_SHA,
        inspectors_csv=inspectors_csv(golden.INSPECTORS),
        exclusions_csv=exclusions_csv(golden.EXCLUSIONS),
        nonce=golden.NONCE,
        pool_size=12,
        strata_sizes={"A": 5, "B": 4, "C": 3},
        quotas=golden.QUOTAS,
    )
    session.add(c)
    await session.flush()
    await store_pool_csv(session, commitment_id=c.id, data=pool_csv(golden.POOL))
    return plan


async def test_golden_vectors_through_postgresql(session: AsyncSession) -> None:
    plan = await _golden_commitment(session)
    c = await service.current_commitment(session, plan_id=plan.id)
    assert c is not None
    assert await pool_csv_bytes(session, commitment_id=c.id) == golden.GOLDEN_POOL_CSV
    assert (await pool_csv_sha256(session, commitment_id=c.id))[0] == golden.POOL_SHA
    draw = await service.draw_plan(
        session, plan_id=42, entropy=golden.ENTROPY, entropy_source="dice", actor=ACTOR
    )
    assert draw.seed == golden.SEED
    tasks = await _tasks(session, 42)
    assert [(t.uscc, t.stratum, t.draw_key) for t in tasks] == [
        (s.uscc, s.stratum, s.key) for s in golden.GOLDEN_SELECTED
    ]
    assert [t.inclusion_probability for t in tasks] == [
        s.inclusion_probability for s in golden.GOLDEN_SELECTED
    ]
    assert [(t.stratum_sample_size, t.stratum_population) for t in tasks] == [
        (s.quota, s.stratum_size) for s in golden.GOLDEN_SELECTED
    ]
    assert {t.uscc: t.drawn_team for t in tasks} == golden.GOLDEN_TEAMS
    members = (
        await session.execute(
            select(Task.uscc, TaskInspector.inspector_id, TaskInspector.position)
            .join(TaskInspector, TaskInspector.task_id == Task.id)
            .where(Task.plan_id == 42)
            .order_by(Task.draw_rank, TaskInspector.position)
        )
    ).all()
    teams: dict[str, list[str]] = {}
    for uscc, inspector_id, _ in members:
        teams.setdefault(uscc, []).append(inspector_id)
    assert teams == golden.GOLDEN_TEAMS
    assert all(t.status == "assigned" for t in tasks)

    data = await bundle_bytes(session, draw=draw, commitment=c)
    assert verify_bundle(data).ok
    result = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("result.json"))
    assert result == json.loads(golden.golden_files()["result.json"])


async def test_the_sql_keys_are_the_core_keys(session: AsyncSession) -> None:
    plan = await _golden_commitment(session)
    c = await service.current_commitment(session, plan_id=plan.id)
    assert c is not None
    seed = bytes.fromhex(golden.SEED)
    rows = await sql_topk(session, commitment_id=c.id, seed=seed, quotas={"A": 5, "B": 4, "C": 3})
    assert len(rows) == 12
    for r in rows:
        assert r.key == enterprise_key(seed, r.uscc)
    for uscc, key in golden.FIRST_KEYS.items():
        assert next(r for r in rows if r.uscc == uscc).key.hex() == key


# --------------------------------------------------------------------------- SQL == core


async def test_pool_csv_from_copy_equals_core_pool_csv(session: AsyncSession) -> None:
    """The frozen file is COPY's output from the directory; it equals core.pool_csv of the
    same rows for units that need quoting or look like markers, and reads back unchanged."""
    prov = await build_province(session, enterprises=40, inspectors=4)
    units = ["a,b", 'q"uote', "中文单位", " spaced ", "x|y", "\\.", "NULL", "'", '"', ","]
    for code in units:
        session.add(Unit(code=code, name=code, region_code=None))
    await session.flush()
    usccs = prov.usccs()
    for i, uscc in enumerate(usccs):
        unit = None if i % 7 == 0 else units[i % len(units)]
        await session.execute(
            update(Enterprise).where(Enterprise.uscc == uscc).values(supervising_unit=unit)
        )
    plan = await _plan(session, scope={"category_codes": [], "statuses": ["存续", "注销"]})
    res = await service.commit_plan(session, plan_id=plan.id, actor=ACTOR)
    rows = (
        await session.execute(
            select(Enterprise.uscc, Enterprise.credit_class, Enterprise.supervising_unit)
        )
    ).all()
    expected = pool_csv(Candidate(u, c, unit or "") for u, c, unit in rows)
    assert b'"a,b"' in expected and b'"q""uote"' in expected
    assert await pool_csv_bytes(session, commitment_id=res.commitment.id) == expected
    assert res.commitment.pool_sha256 == hashlib.sha256(expected).hexdigest()


_strata = st.sampled_from(["A", "B", "C", "D|3501"])


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    pool=st.lists(
        st.tuples(st.integers(0, 10**6), _strata), min_size=1, max_size=60, unique_by=lambda t: t[0]
    ),
    seed=st.binary(min_size=32, max_size=32),
    order=st.randoms(use_true_random=False),
    share=st.floats(0, 1),
    bound=st.sampled_from(["none", "true", "too large"]),
)
async def test_sql_selection_equals_core_select(
    session: AsyncSession, pool, seed, order: random.Random, share: float, bound: str
) -> None:
    plan = await _golden_commitment(session) if await session.get(Plan, 42) is None else None
    c = await service.current_commitment(session, plan_id=42)
    assert c is not None and (plan is None or plan.id == 42)
    await session.execute(
        text("DELETE FROM draw_pool_chunks WHERE commitment_id = :c"), {"c": c.id}
    )
    cands = [Candidate(f"91350102MA{n:08d}", s, "") for n, s in pool]
    # the lines of the stored file in any order: the selection must not depend on it
    lines = pool_csv(cands).splitlines(keepends=True)
    body = lines[1:]
    order.shuffle(body)
    await store_pool_csv(session, commitment_id=c.id, data=b"".join(lines[:1] + body))
    sizes: dict[str, int] = {}
    for cand in cands:
        sizes[cand.stratum] = sizes.get(cand.stratum, 0) + 1
    quotas = {s: round(n * share) for s, n in sizes.items()}
    # with the strata sizes only keys under a ceiling are sorted; sizes far too large make
    # the ceilings too low, and the selection must still come out whole
    given_sizes = {
        "none": None,
        "true": sizes,
        "too large": {s: 1000 * n for s, n in sizes.items()},
    }[bound]
    got = await sql_topk(session, commitment_id=c.id, seed=seed, quotas=quotas, sizes=given_sizes)
    want = core_select(seed, cands, quotas)
    assert sorted((r.key.hex(), r.uscc, r.stratum) for r in got) == [
        (s.key, s.uscc, s.stratum) for s in want
    ]
    for s in set(sizes):
        assert sum(1 for r in got if r.stratum == s) == quotas[s]


# --------------------------------------------------------------------------- draw rules


async def test_teams_respect_conflicts_cap_cross_unit(session: AsyncSession) -> None:
    prov = await build_province(session, enterprises=90, inspectors=9)
    victim = prov.usccs(credit_class="D", status="存续")[0]
    for ins in ("INS000", "INS001", "INS002", "INS003"):
        await add_conflict(session, ins, victim)
    plan, res = await _committed_and_drawn(session, cross_unit=True, max_tasks_per_inspector=12)
    pairs = set(parse_exclusions_csv(bytes(res.commitment.exclusions_csv)))
    assert {("INS000", victim), ("INS003", victim)} <= pairs
    tasks = await _tasks(session, plan.id)
    units = {e.uscc: e.supervising_unit for e in prov.enterprises}
    inspector_unit = {i.inspector_id: i.unit_code for i in prov.inspectors}
    load: dict[str, int] = {}
    for t in tasks:
        assert t.drawn_team is not None and len(set(t.drawn_team)) == 2
        for i in t.drawn_team:
            assert (i, t.uscc) not in pairs
            assert inspector_unit[i] != units[t.uscc]
            load[i] = load.get(i, 0) + 1
    assert max(load.values()) <= 12
    assert victim in {t.uscc for t in tasks}  # class D is drawn in full (ratio 1)


async def _pool_usccs(session: AsyncSession, commitment_id: int) -> set[str]:
    data = await pool_csv_bytes(session, commitment_id=commitment_id)
    return {c.uscc for c in parse_pool_csv(data)}


async def test_exclusion_window_and_rotation(session: AsyncSession) -> None:
    prov = await build_province(session, enterprises=60, inspectors=8)
    first, _ = await _committed_and_drawn(session)
    drawn = {t.uscc: t.drawn_team for t in await _tasks(session, first.id)}
    # a second routine plan for the same item leaves out what was just inspected
    second = await _plan(session)
    res = await service.commit_plan(session, plan_id=second.id, actor=ACTOR)
    pool = await _pool_usccs(session, res.commitment.id)
    assert pool and not (pool & set(drawn))
    # follow-up and emergency plans ignore the window; rotation bans last time's inspectors
    for plan_type in ("emergency", "follow_up"):
        p = await _plan(session, plan_type=plan_type)
        r = await service.commit_plan(session, plan_id=p.id, actor=ACTOR)
        pool = await _pool_usccs(session, r.commitment.id)
        assert set(drawn) <= pool
        pairs = set(parse_exclusions_csv(bytes(r.commitment.exclusions_csv)))
        for uscc, team in drawn.items():
            assert team is not None
            for i in team:
                assert (i, uscc) in pairs
    # once the window has passed the enterprise is back in a routine pool
    await session.execute(
        update(Task)
        .where(Task.plan_id == first.id)
        .values(created_at=Task.created_at - timedelta(days=181))
    )
    third = await _plan(session)
    r = await service.commit_plan(session, plan_id=third.id, actor=ACTOR)
    assert r.commitment.pool_size == len(
        [e for e in prov.enterprises if e.status == "存续" and e.category_codes[0] != "04.01"]
    )
    # a plan with exclusion_days=0 has no window at all
    zero = await _plan(session, exclusion_days=0)
    r0 = await service.commit_plan(session, plan_id=zero.id, actor=ACTOR)
    assert r0.commitment.pool_size == r.commitment.pool_size


async def test_eligible_inspectors(session: AsyncSession) -> None:
    prov = await build_province(session, enterprises=30, inspectors=6, qualification="Q-TOY")
    await session.execute(
        update(Inspector).where(Inspector.inspector_id == "INS000").values(active=False)
    )
    await session.execute(
        update(Inspector).where(Inspector.inspector_id == "INS001").values(qualifications=[])
    )
    await session.execute(
        update(Inspector).where(Inspector.inspector_id == "INS002").values(region_scope=["3502"])
    )
    await session.execute(
        update(Inspector).where(Inspector.inspector_id == "INS003").values(region_scope=["350102"])
    )
    plan = await _plan(session, scope={"region_prefixes": ["3501"]})
    res = await service.commit_plan(session, plan_id=plan.id, actor=ACTOR)
    listed = bytes(res.commitment.inspectors_csv).decode().splitlines()
    assert listed == ["inspector_id,unit", "INS003,U-GL", "INS004,U-TJ", "INS005,U-SM"]
    assert res.commitment.pool_size == len(
        [
            e
            for e in prov.enterprises
            if e.region_code.startswith("3501")
            and e.status == "存续"
            and e.category_codes[0] != "04.01"
        ]
    )


async def test_composite_strata_and_quotas(session: AsyncSession) -> None:
    await build_province(session, enterprises=80, inspectors=6)
    plan = await _plan(
        session,
        strata_fields=["credit_class", "region"],
        ratios={"A": "0", "D|3502": "0.5"},
        scope={"category_codes": []},
    )
    res = await service.commit_plan(session, plan_id=plan.id, actor=ACTOR)
    sizes, quotas = res.commitment.strata_sizes, res.commitment.quotas
    assert set(sizes) <= {f"{c}|{r}" for c in "ABCD" for r in ("3501", "3502")}
    for s, n in sizes.items():
        cls, region = s.split("|")
        ratio = {"A": 0, "B": 0.2, "C": 0.5, "D": 1}[cls] if s != "D|3502" else 0.5
        assert quotas[s] == min(n, -(-round(ratio * 10) * n // 10)), s
    q = await _plan(session, quotas={"A": 2, "B": 1000})
    r = await service.commit_plan(session, plan_id=q.id, actor=ACTOR)
    assert r.commitment.quotas == {"A": 2, "B": r.commitment.strata_sizes["B"], "C": 0, "D": 0}
    missing = await _plan(session, strata_fields=["size"])
    with pytest.raises(InvalidInput) as exc:
        await service.commit_plan(session, plan_id=missing.id, actor=ACTOR)
    assert exc.value.code == "MissingRatio"


async def test_follow_up_plan_interface(session: AsyncSession) -> None:
    prov = await build_province(session, enterprises=40, inspectors=6)
    first, _ = await _committed_and_drawn(session)
    targets = [t.uscc for t in await _tasks(session, first.id)][:3]
    plan = await service.create_follow_up_plan(
        session,
        actor=ACTOR,
        check_item_code=ITEM,
        targets=targets + targets[:1],
        due_date=date(2027, 3, 1),
        reason="不合格后复查",
    )
    assert plan.plan_type == "follow_up" and plan.status == "committed"
    assert plan.fixed_targets == sorted(targets)
    draw = await service.draw_plan(
        session, plan_id=plan.id, entropy=ENTROPY, entropy_source="witnesses", actor=ACTOR
    )
    tasks = await _tasks(session, plan.id)
    assert draw.selected_count == 3 and {t.uscc for t in tasks} == set(targets)
    assert all(t.stratum == "follow_up" and t.inclusion_probability == 1.0 for t in tasks)
    assert all(t.due_date == date(2027, 3, 1) for t in tasks)
    with pytest.raises(InvalidInput):
        await service.create_follow_up_plan(
            session,
            actor=ACTOR,
            check_item_code=ITEM,
            targets=["91350102MA00000000"],
            due_date=date(2027, 3, 1),
            reason="x",
        )
    with pytest.raises(Conflict) as exc:
        await service.draw_plan(
            session, plan_id=plan.id, entropy=ENTROPY, entropy_source=None, actor=ACTOR
        )
    assert exc.value.code == "AlreadyDrawn"
    assert prov.item is not None


async def test_entropy_minimum_is_configurable(session: AsyncSession) -> None:
    await build_province(session, enterprises=20, inspectors=4)
    plan = await _plan(session)
    await service.commit_plan(session, plan_id=plan.id, actor=ACTOR)
    with pytest.raises(InvalidInput) as exc:
        await service.draw_plan(
            session,
            plan_id=plan.id,
            entropy="x" * 29,
            entropy_source=None,
            actor=ACTOR,
            min_entropy_chars=30,
        )
    assert exc.value.code == "EntropyTooShort"
    draw = await service.draw_plan(
        session,
        plan_id=plan.id,
        entropy="骰子" * 3,
        entropy_source=None,
        actor=ACTOR,
        min_entropy_chars=6,
    )
    assert draw.entropy == "骰子骰子骰子"


async def test_follow_up_with_more_targets_than_query_parameters(session: AsyncSession) -> None:
    await build_province(session, enterprises=0, inspectors=3)
    await session.execute(
        text(
            "INSERT INTO enterprises (uscc, name, entity_type, region_code, size, channel) "
            "SELECT '9135' || lpad(g::text, 14, '0'), 'E' || g, '企业', '350102', 'small', "
            "'production' FROM generate_series(1, 33000) g"
        )
    )
    targets = [f"9135{g:014d}" for g in range(1, 33001)]
    plan = await service.create_follow_up_plan(
        session,
        actor=ACTOR,
        check_item_code=ITEM,
        targets=targets,
        due_date=date(2027, 1, 1),
        reason="批量复查",
    )
    c = await service.current_commitment(session, plan_id=plan.id)
    assert c is not None and c.pool_size == 33000 and c.quotas == {"follow_up": 33000}


async def test_follow_up_refuses_bad_input_with_typed_errors(session: AsyncSession) -> None:
    await build_province(session, enterprises=5, inspectors=3)
    for targets in ([], ["not-a-uscc"]):
        with pytest.raises(InvalidInput):
            await service.create_follow_up_plan(
                session,
                actor=ACTOR,
                check_item_code=ITEM,
                targets=targets,
                due_date=date(2027, 1, 1),
                reason="x" * 5000,
            )
    with pytest.raises(InvalidInput) as exc:
        await service.create_follow_up_plan(
            session,
            actor=ACTOR,
            check_item_code="NOPE",
            targets=["91350102MA00000000"],
            due_date=date(2027, 1, 1),
            reason="x",
        )
    assert exc.value.code == "UnknownCheckItem"


async def test_committed_pool_hash_is_the_hash_of_core_pool_csv(session: AsyncSession) -> None:
    prov = await build_province(session, enterprises=40, inspectors=4)
    session.add(Unit(code='U,"Q', name="带逗号的单位", region_code=None))
    await session.flush()
    odd = prov.usccs()[::3]
    await session.execute(
        update(Enterprise).where(Enterprise.uscc.in_(odd)).values(supervising_unit='U,"Q')
    )
    await session.execute(
        update(Enterprise).where(Enterprise.uscc == prov.usccs()[1]).values(supervising_unit=None)
    )
    plan = await _plan(session, scope={"category_codes": [], "statuses": ["存续", "注销"]})
    res = await service.commit_plan(session, plan_id=plan.id, actor=ACTOR)
    rows = (
        await session.execute(
            select(Enterprise.uscc, Enterprise.credit_class, Enterprise.supervising_unit)
        )
    ).all()
    expected = pool_csv(Candidate(u, c, unit or "") for u, c, unit in rows)
    assert b'"U,""Q"' in expected
    assert res.params["pool_sha256"] == hashlib.sha256(expected).hexdigest()
    assert await pool_csv_bytes(session, commitment_id=res.commitment.id) == expected
    assert res.commitment.strata_sizes == {
        c: sum(1 for r in rows if r[1] == c) for c in sorted({r[1] for r in rows})
    }


async def test_sql_selection_of_a_large_stratum_equals_core_select(session: AsyncSession) -> None:
    """Large strata with small quotas: only keys under each stratum's ceiling are sorted."""
    plan = await _golden_commitment(session)
    c = await service.current_commitment(session, plan_id=plan.id)
    assert c is not None
    await session.execute(
        text("DELETE FROM draw_pool_chunks WHERE commitment_id = :c"), {"c": c.id}
    )
    cands = [Candidate(f"91350102MA{n:08d}", "ABC"[n % 3], f"U{n % 5}") for n in range(0, 30000, 7)]
    await store_pool_csv(session, commitment_id=c.id, data=pool_csv(cands))
    sizes = {s: sum(1 for x in cands if x.stratum == s) for s in "ABC"}
    quotas = {"A": 3, "B": 40, "C": 0}
    for seed in (bytes(32), bytes(range(32)), hashlib.sha256(b"x").digest()):
        got = await sql_topk(session, commitment_id=c.id, seed=seed, quotas=quotas, sizes=sizes)
        want = core_select(seed, cands, quotas)
        assert [(r.key.hex(), r.uscc, r.stratum) for r in sorted(got, key=lambda r: r.key)] == [
            (s.key, s.uscc, s.stratum) for s in want
        ]
        units = {x.uscc: x.unit for x in cands}
        assert all(r.unit == units[r.uscc] for r in got)
