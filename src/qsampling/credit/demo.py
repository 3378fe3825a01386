"""The credit part of the demo province (`qsampling demo`).

Runs after the inspections part. Its final results enter the ledger through the same
consumer the job runs (category 6 lists enterprises on the abnormal-operations list;
refusals and failed re-inspections propose serious-list entries). Then, dated back where a
lifecycle needs time, through the same services the API calls:

* administrative penalties (a few serious product-quality ones propose listings);
* serious list: proposals confirmed and rejected, an older listing with a pending credit-
  repair application, one removed by credit repair, one expired at three years;
* abnormal list: a removal application pending, one removed after verification, one near
  three years (warned by the job), one past three years (escalated by the job);

and finally every class is recomputed from the ledger. Deterministic for the seed and day.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.context import Actor
from qsampling.core.list_rules import BASIS_ABNORMAL, add_years
from qsampling.credit import ingest, lists, penalties, service
from qsampling.credit.jobs import abnormal_deadlines, serious_deadlines

DEMO_ACTOR = Actor(username="demo:supervisor", role="supervisor")
BASIS_SERIOUS_ART = "《市场监督管理严重违法失信名单管理办法》第{art}条"

PENALTY_CASES = (
    # severity, domain, legal basis, facts, amount
    ("minor", "product_quality", "《中华人民共和国产品质量法》第五十四条",
     "产品标识不符合规定，未标明产品执行标准编号", "2000.00"),
    ("general", "product_quality", "《中华人民共和国产品质量法》第四十九条",
     "生产不符合保障人体健康和人身安全的国家标准的儿童玩具，货值金额较小", "30000.00"),
    ("general", "advertising", "《中华人民共和国广告法》第五十五条",
     "发布虚假广告，宣传产品具有其不具备的功能", "50000.00"),
    ("serious", "product_quality", "《中华人民共和国产品质量法》第四十九条、第五十条",
     "在电动自行车中掺杂掺假、以不合格产品冒充合格产品，货值金额较大，情节严重", "380000.00"),
    ("serious", "product_quality", "《中华人民共和国产品质量法》第四十九条",
     "生产不符合强制性国家标准的电热水壶并拒不召回，情节严重", "260000.00"),
    ("general", "pricing", "《中华人民共和国价格法》第四十条", "不执行政府指导价收费", "10000.00"),
    ("minor", "licensing", "《工业产品生产许可证管理条例》第四十七条",
     "生产许可证有效期届满未办理延续手续继续生产", "5000.00"),
)  # fmt: skip

MANUAL_REASONS = (
    "监督抽查中拒绝、阻碍执法人员依法实施检查，经责令改正拒不改正，情节严重",
    "因同一性质产品质量违法行为两年内受到三次以上行政处罚",
    "生产销售国家明令淘汰的产品，情节严重",
)


def _t(day: date) -> datetime:
    return datetime.combine(day, time(10, 0), tzinfo=service.CHINA_TZ).astimezone(UTC)


async def _pick(session: AsyncSession, rng: random.Random, taken: set[str]) -> str | None:
    """An enterprise in operation on neither list and not used by this demo yet."""
    rows = [
        r[0]
        for r in await session.execute(
            text(
                "SELECT uscc FROM enterprises WHERE status IN ('存续','在业') "
                "AND uscc NOT IN (SELECT uscc FROM serious_list_entries) "
                "AND uscc NOT IN (SELECT uscc FROM abnormal_list_entries) ORDER BY uscc"
            )
        )
    ]
    pool = [u for u in rows if u not in taken]
    if not pool:
        return None
    chosen = rng.choice(pool)
    taken.add(chosen)
    return chosen


async def build(session: AsyncSession, *, rng: random.Random, enterprises: int) -> dict[str, int]:
    """Add this module's demo data; returns counts for the summary line."""
    has_any = await session.scalar(text("SELECT EXISTS (SELECT 1 FROM enterprises)"))
    if not has_any:
        return {}
    now = datetime.now(UTC)
    today = service.china_today(now)
    await ingest.consume(session, now=now)
    taken: set[str] = set()

    # --- penalties (two serious product-quality ones propose listings) -----------------
    n_pen = 0
    for i, (sev, domain, basis, facts, amount) in enumerate(PENALTY_CASES):
        uscc = await _pick(session, rng, taken)
        if uscc is None:
            break
        decided = today - timedelta(days=rng.randint(20, 330))
        authority = await lists.authority_for(session, uscc)
        await penalties.create_penalty(
            session,
            uscc=uscc,
            decision_number=f"闽市监处罚〔{decided.year}〕{101 + i}号",
            decision_date=decided,
            legal_basis=basis,
            severity=sev,
            amount=Decimal(amount),
            domain=domain,
            authority=authority,
            summary=facts,
            actor=DEMO_ACTOR,
            today=today,
        )
        n_pen += 1

    # --- serious list: decide the rules' proposals ---------------------------------------
    proposals = [
        int(r[0])
        for r in await session.execute(
            text("SELECT id FROM serious_list_entries WHERE status = 'proposed' ORDER BY id")
        )
    ]
    for k, pid in enumerate(proposals):
        entry = await lists.get_serious(session, pid)
        if k % 3 == 2:
            await lists.decide_serious(
                session, entry_id=pid, action="reject", decided_on=today, actor=DEMO_ACTOR,
                today=today,
                reason="经复核，当事人已主动消除危害后果，不属于情节严重情形，不予列入",
            )  # fmt: skip
        elif k % 3 == 0:
            authority = await lists.authority_for(session, entry.uscc)
            await lists.decide_serious(
                session, entry_id=pid, action="confirm",
                decided_on=max(entry.proposed_on, today - timedelta(days=rng.randint(0, 10))),
                actor=DEMO_ACTOR, today=today, basis=BASIS_SERIOUS_ART.format(art="九"),
                reason=entry.proposal_reason, authority=authority,
                decision_number=f"闽市监信〔{today.year}〕{pid}号",
            )  # fmt: skip
        # k % 3 == 1: left proposed, waiting for a supervisor

    # --- serious list: older listings in every later state ---------------------------------
    ages = {
        "repair_applied": 430,  # listed 14 months ago, repair applied last month
        "removed_repaired": 640,  # listed 21 months ago, removed by repair 7 months ago
        "removed_expired": 3 * 365 + 40,  # three years are up: the job removes it
        "listed": 200,
    }
    for state, age in ages.items():
        uscc = await _pick(session, rng, taken)
        if uscc is None:
            break
        listed_on = today - timedelta(days=age)
        authority = await lists.authority_for(session, uscc)
        reason = MANUAL_REASONS[len(state) % len(MANUAL_REASONS)]
        p = await lists.propose_manual(
            session, uscc=uscc, reason=reason, basis=BASIS_SERIOUS_ART.format(art="十"),
            proposed_on=listed_on - timedelta(days=5), actor=DEMO_ACTOR, today=today,
        )  # fmt: skip
        await lists.decide_serious(
            session, entry_id=p.id, action="confirm", decided_on=listed_on, actor=DEMO_ACTOR,
            today=today, basis=BASIS_SERIOUS_ART.format(art="十"), reason=reason,
            authority=authority, decision_number=f"闽市监信〔{listed_on.year}〕{p.id}号",
        )  # fmt: skip
        if state in ("repair_applied", "removed_repaired"):
            applied = max(
                add_years(listed_on, 1),
                today - timedelta(days=30 if state == "repair_applied" else 230),
            )
            await lists.decide_serious(
                session, entry_id=p.id, action="apply_repair", decided_on=applied,
                actor=DEMO_ACTOR, today=today,
                statement="已全额缴纳罚没款，完成整改并通过复查，作出信用承诺",
            )  # fmt: skip
        if state == "removed_repaired":
            granted = applied + timedelta(days=12)
            await lists.decide_serious(
                session, entry_id=p.id, action="grant_repair", decided_on=granted,
                actor=DEMO_ACTOR, today=today, authority=authority,
                reason="当事人已履行行政处罚决定、纠正失信行为并作出信用承诺，准予信用修复",
            )  # fmt: skip
        # removed_expired: left listed; the job below removes it on its third anniversary

    # --- abnormal list: every state ----------------------------------------------------------
    abnormal_ages = {
        "removal_applied": 120,
        "removed": 400,
        "warned": 3 * 365 - 30,  # inside the 60-day warning window
        "escalated": 3 * 365 + 20,  # three years up: proposed for the serious list
        "listed": 45,
    }
    causes = (
        "annual_report",
        "disclosure_overdue",
        "unreachable",
        "annual_report",
        "false_disclosure",
    )
    for (state, age), cause in zip(abnormal_ages.items(), causes, strict=True):
        uscc = await _pick(session, rng, taken)
        if uscc is None:
            break
        listed_on = today - timedelta(days=age)
        e = await lists.list_abnormal(
            session, uscc=uscc, cause=cause, listed_on=listed_on,
            reason=f"{lists.ABNORMAL_CAUSE_LABELS[cause]}（{listed_on.year}年）",
            basis=BASIS_ABNORMAL, authority=await lists.authority_for(session, uscc),
            decision_number=f"闽市监异〔{listed_on.year}〕{rng.randint(100, 999)}号",
            actor=DEMO_ACTOR, today=today,
        )  # fmt: skip
        assert e is not None
        if state in ("removal_applied", "removed"):
            applied = listed_on + timedelta(days=60)
            await lists.apply_abnormal_removal(
                session, entry_id=e.id, applied_on=applied, actor=DEMO_ACTOR, today=today,
                statement="已补报并公示年度报告，申请移出经营异常名录",
            )  # fmt: skip
            if state == "removed":
                await lists.decide_abnormal_removal(
                    session, entry_id=e.id, approve=True, decided_on=applied + timedelta(days=5),
                    reason="经核实，已依法补报并公示相关信息", basis=None,
                    authority=e.authority, actor=DEMO_ACTOR, today=today,
                )  # fmt: skip

    # --- the time-driven transitions, then every class from the ledger ----------------------
    await abnormal_deadlines(session, now)
    await serious_deadlines(session, now)
    await service.recompute_all(session, actor=DEMO_ACTOR, as_of=today, trigger="demo")
    classes = dict(
        (r[0], int(r[1]))
        for r in await session.execute(
            text("SELECT credit_class, count(*) FROM enterprises GROUP BY 1 ORDER BY 1")
        )
    )
    n_ev, n_abn, n_ser = (
        await session.execute(
            text(
                "SELECT (SELECT count(*) FROM credit_events), "
                "(SELECT count(*) FROM abnormal_list_entries), "
                "(SELECT count(*) FROM serious_list_entries)"
            )
        )
    ).one()
    return {
        "credit events": int(n_ev),
        "penalties": n_pen,
        "abnormal-list entries": int(n_abn),
        "serious-list entries": int(n_ser),
        **{f"class {k}": v for k, v in classes.items()},
    }
