"""Test data for the disclosure module: a small province with a company and a sole trader
whose private data (address, phone, identity number) must never reach public output, a
drawn plan, final results (pass, fail with a retest, refused), a result that is overdue and
not final, list entries (one with a phone number in its reason), and final_results rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.models.credit import AbnormalListEntry, SeriousListEntry
from qsampling.models.directory import CheckItem, Enterprise, Inspector
from qsampling.models.draws import Commitment, Draw, Plan, Task, TaskInspector
from qsampling.models.inspections import (
    DomainEvent,
    FinalResult,
    Objection,
    Result,
    Retest,
    RetestItem,
    Sample,
    SampleItem,
)

COMPANY = "91350100MA2YT0018H"
SOLE = "92350102MA2YT00266"
LISTED = "91350200MA2YT0034C"
# private data planted where it must stay private
SOLE_ADDRESS = "福州市鼓楼区幸福小区3号楼502室"
SOLE_ID = "350102199003071234"
SOLE_PHONE = "13912345678"
COMPANY_PHONE = "13812345678"
INSPECTOR_IDS = ("INSP-T-0001", "INSP-T-0002")
INSPECTOR_NAMES = ("王检查", "李执法")
CHECK_ITEM = "SC-T-001"


@dataclass
class Province:
    company: str
    sole: str
    listed: str
    plan_id: int
    result_ids: dict[str, int]
    pending_result_id: int


async def _reference(session: AsyncSession) -> None:
    await session.execute(
        text(
            "INSERT INTO regions (code, name, level, parent_code) VALUES "
            "('350000','福建省','province',NULL),('350100','福州市','city','350000'),"
            "('350102','鼓楼区','county','350100'),('350200','厦门市','city','350000'),"
            "('350203','思明区','county','350200') ON CONFLICT DO NOTHING"
        )
    )
    await session.execute(
        text(
            "INSERT INTO categories (code, name, parent_code, level) VALUES "
            "('03','儿童用品',NULL,1),('03.01','童车','03',2),('02','电子电器',NULL,1),"
            "('02.01','电源适配器','02',2) ON CONFLICT DO NOTHING"
        )
    )
    await session.execute(
        text(
            "INSERT INTO units (code, name, region_code) VALUES "
            "('U-T-GL','鼓楼区市场监督管理局','350102') ON CONFLICT DO NOTHING"
        )
    )


async def build_province(session: AsyncSession) -> Province:
    await _reference(session)
    session.add(
        CheckItem(
            code=CHECK_ITEM,
            name="儿童用品产品质量监督抽查（测试）",
            legal_basis="《中华人民共和国产品质量法》第十五条",
            kind="重点",
            category_codes=["03"],
            ratios={"A": "0.05", "B": "0.10", "C": "0.30", "D": "0.80"},
        )
    )
    session.add_all(
        [
            Enterprise(
                uscc=COMPANY,
                name="福州好孩子童车有限公司",
                entity_type="企业",
                region_code="350102",
                address=f"福州市鼓楼区五四路1号 联系电话{COMPANY_PHONE}",
                supervising_unit="U-T-GL",
                category_codes=["03.01"],
                size="small",
                channel="production",
                credit_class="D",
                registration_date=date(2015, 3, 2),
            ),
            Enterprise(
                uscc=SOLE,
                name="鼓楼区小明童车店",
                entity_type="个体工商户",
                region_code="350102",
                address=f"{SOLE_ADDRESS} 身份证{SOLE_ID} 手机{SOLE_PHONE}",
                supervising_unit="U-T-GL",
                category_codes=["03.01"],
                size="micro",
                channel="circulation",
                credit_class="C",
            ),
            Enterprise(
                uscc=LISTED,
                name="厦门失信电器有限公司",
                entity_type="企业",
                region_code="350203",
                address="厦门市思明区湖滨南路2号",
                category_codes=["02.01"],
                size="medium",
                channel="production",
                credit_class="D",
            ),
        ]
    )
    session.add_all(
        [
            Inspector(inspector_id=i, name=n, unit_code="U-T-GL")
            for i, n in zip(INSPECTOR_IDS, INSPECTOR_NAMES, strict=True)
        ]
    )
    await session.flush()
    plan = Plan(
        name="2024年儿童用品抽查（测试）",
        check_item_code=CHECK_ITEM,
        status="drawn",
        scope={"region_prefixes": ["35"]},
        strata_fields=["credit_class"],
        team_size=2,
        exclusion_days=180,
        created_by="test",
    )
    session.add(plan)
    await session.flush()
    commitment = Commitment(
        plan_id=plan.id,
        commitment="c" * 64,
        params_json=b"{}",
        pool_sha256="a" * 64,
        inspectors_csv=b"inspector_id,unit\n",
        exclusions_csv=b"inspector_id,uscc\n",
        nonce=bytes(32),
        pool_size=3,
        strata_sizes={"C": 1, "D": 2},
        quotas={"C": 1, "D": 2},
    )
    session.add(commitment)
    await session.flush()
    draw = Draw(
        plan_id=plan.id,
        commitment_id=commitment.id,
        entropy="31415926535897932384",
        seed="5" * 64,
        selected_count=3,
        drawn_by="supervisor-test",
    )
    session.add(draw)
    await session.flush()
    tasks: dict[str, Task] = {}
    for rank, (uscc, stratum) in enumerate(((COMPANY, "D"), (SOLE, "C"), (LISTED, "D")), 1):
        t = Task(
            plan_id=plan.id,
            draw_id=draw.id,
            uscc=uscc,
            check_item_code=CHECK_ITEM,
            stratum=stratum,
            draw_key=f"{rank:064x}",
            draw_rank=rank,
            stratum_sample_size=1,
            stratum_population=2,
            inclusion_probability=0.5,
            status="final",
        )
        session.add(t)
        tasks[uscc] = t
    await session.flush()
    for t in tasks.values():
        for pos, iid in enumerate(INSPECTOR_IDS):
            session.add(TaskInspector(task_id=t.id, inspector_id=iid, position=pos))
    # a second task on the company: result submitted long ago, never notified → overdue
    t_pending = Task(
        plan_id=plan.id,
        draw_id=draw.id,
        uscc=LISTED,
        check_item_code=CHECK_ITEM,
        stratum="D",
        draw_key="f" * 64,
        draw_rank=4,
        stratum_sample_size=1,
        stratum_population=2,
        inclusion_probability=0.5,
        status="submitted",
    )
    # tasks are unique per (plan, uscc): put the pending one on its own plan
    plan2 = Plan(
        name="2024年电子电器抽查（测试）",
        check_item_code=CHECK_ITEM,
        status="drawn",
        scope={},
        strata_fields=["credit_class"],
        team_size=2,
        exclusion_days=180,
        created_by="test",
    )
    session.add(plan2)
    await session.flush()
    t_pending.plan_id = plan2.id
    session.add(t_pending)
    await session.flush()

    def result(
        task: Task,
        *,
        on: datetime,
        codes: list[str],
        conclusion: str | None,
        final: bool,
        notes: str | None = None,
    ) -> Result:
        r = Result(
            task_id=task.id,
            version=1,
            live=True,
            inspected_at=on,
            conclusion=conclusion,
            category_codes=codes,
            notes=notes,
            submitted_by="inspector-test",
            final_at=datetime(2024, 11, 20, 2, 0, tzinfo=UTC) if final else None,
            final_conclusion=conclusion if final else None,
        )
        session.add(r)
        return r

    r_pass = result(
        tasks[COMPANY],
        on=datetime(2024, 9, 27, 3, 0, tzinfo=UTC),
        codes=["1"],
        conclusion="pass",
        final=True,
        notes=f"负责人张三 身份证{SOLE_ID} 电话{SOLE_PHONE}",  # internal notes: never public
    )
    r_fail = result(
        tasks[SOLE],
        on=datetime(2024, 10, 9, 3, 0, tzinfo=UTC),
        codes=["E"],
        conclusion="fail",
        final=True,
    )
    r_refused = result(
        tasks[LISTED],
        on=datetime(2024, 10, 10, 3, 0, tzinfo=UTC),
        codes=["8"],
        conclusion=None,
        final=True,
    )
    r_pending = result(
        t_pending,
        on=datetime(2024, 8, 1, 3, 0, tzinfo=UTC),
        codes=["1"],
        conclusion="pass",
        final=False,
    )
    await session.flush()
    s1 = Sample(
        result_id=r_pass.id,
        sample_no=1,
        product_name="儿童推车",
        brand="好孩子",
        model_spec="C400",
        batch_no="20240801",
        production_date=date(2024, 8, 1),
        quantity=2,
        category_code="03.01",
    )
    s2 = Sample(
        result_id=r_fail.id,
        sample_no=1,
        product_name="儿童自行车",
        brand="小明",
        model_spec="12寸",
        batch_no=f"批号{SOLE_PHONE}",
        quantity=1,
        category_code="03.01",
    )
    session.add_all([s1, s2])
    await session.flush()
    items = [
        SampleItem(
            result_id=r_pass.id,
            sample_id=s1.id,
            item_no=1,
            name="制动性能",
            requirement="≥ 50 N",
            measured_value="62",
            unit="N",
            verdict="pass",
        ),
        SampleItem(
            result_id=r_fail.id,
            sample_id=s2.id,
            item_no=1,
            name="刹车性能",
            requirement="≥ 50 N",
            measured_value="31",
            unit="N",
            verdict="fail",
        ),
        SampleItem(
            result_id=r_fail.id,
            sample_id=s2.id,
            item_no=2,
            name="标识",
            requirement="有中文标识",
            measured_value="无",
            verdict="fail",
        ),
    ]
    session.add_all(items)
    await session.flush()
    # the enterprise objected to the label item; the retest found it compliant
    obj = Objection(
        result_id=r_fail.id,
        received_on=date(2024, 10, 20),
        disputed_item_ids=[items[2].id],
        recorded_by="supervisor-test",
    )
    session.add(obj)
    await session.flush()
    rt = Retest(
        result_id=r_fail.id,
        objection_id=obj.id,
        retested_at=datetime(2024, 11, 1, tzinfo=UTC),
        conclusion="fail",
        recorded_by="supervisor-test",
    )
    session.add(rt)
    await session.flush()
    session.add(
        RetestItem(retest_id=rt.id, test_item_id=items[2].id, measured_value="有", verdict="pass")
    )
    for r, t in ((r_pass, tasks[COMPANY]), (r_fail, tasks[SOLE]), (r_refused, tasks[LISTED])):
        session.add(
            DomainEvent(
                kind="result.refused" if r is r_refused else "result.final",
                uscc=t.uscc,
                task_id=t.id,
                result_id=r.id,
                payload={},
            )
        )
    # statistics read final_results (one row per tested batch)
    for i in range(40):
        session.add(
            FinalResult(
                result_id=10_000_000 + i,
                sample_no=1,
                task_id=tasks[COMPANY].id,
                plan_id=plan.id,
                uscc=COMPANY,
                check_item_code=CHECK_ITEM,
                category_code="03.01" if i % 2 else "02.01",
                region_code="350102" if i % 3 else "350203",
                enterprise_size="small",
                channel="production",
                inspected_on=date(2024, 7 + i % 4, 1 + i % 20),
                passed=i % 7 != 0,
                inclusion_probability=0.5,
                stratum="D",
                stratum_sample_size=20,
                stratum_population=40,
                follow_up=False,
            )
        )
    session.add_all(
        [
            AbnormalListEntry(
                uscc=SOLE,
                cause="unreachable",
                status="listed",
                listed_on=date(2024, 10, 15),
                reason=f"通过登记的住所无法联系（经营者电话{SOLE_PHONE}无人接听）",
                basis="《企业经营异常名录管理暂行办法》第四条",
                authority="鼓楼区市场监督管理局",
                decided_by="supervisor-test",
            ),
            SeriousListEntry(
                uscc=LISTED,
                status="listed",
                rule_id="refusal",
                proposed_on=date(2024, 10, 20),
                proposal_reason="拒绝检查",
                proposal_basis="《市场监督管理严重违法失信名单管理办法》",
                proposed_by="system",
                listed_on=date(2024, 11, 1),
                expires_on=date(2027, 11, 1),
                reason="不配合检查情节严重",
                basis="《市场监督管理严重违法失信名单管理办法》第二条",
                authority="厦门市市场监督管理局",
                decision_number="厦市监失〔2024〕1号",
            ),
            SeriousListEntry(
                uscc=COMPANY,
                status="proposed",
                rule_id="reinspection_fail",
                proposed_on=date(2024, 11, 5),
                proposal_reason="内部提议：不应公开",
                proposal_basis="内部",
                proposed_by="system",
            ),
        ]
    )
    await session.flush()
    return Province(
        company=COMPANY,
        sole=SOLE,
        listed=LISTED,
        plan_id=plan.id,
        result_ids={"pass": r_pass.id, "fail": r_fail.id, "refused": r_refused.id},
        pending_result_id=r_pending.id,
    )


@pytest.fixture
async def province(session: AsyncSession) -> Province:
    p = await build_province(session)
    await session.commit()
    return p


@pytest.fixture
async def published(session: AsyncSession, province: Province) -> Province:
    """The province with its final results published (as `qsampling jobs run` does)."""
    from qsampling.context import SYSTEM
    from qsampling.disclosure import service

    n = await service.register_final_results(
        session, now=datetime(2024, 11, 20, 3, 0, tzinfo=UTC), actor=SYSTEM
    )
    assert n == 3
    await session.commit()
    return province


def walk_strings(value: Any) -> list[str]:
    out: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append(str(k))
            out.extend(walk_strings(v))
    elif isinstance(value, list):
        for v in value:
            out.extend(walk_strings(v))
    elif value is not None:
        out.append(str(value))
    return out
