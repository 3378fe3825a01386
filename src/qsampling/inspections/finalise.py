"""Finalisation: when a result becomes final, and what that sets off.

A result is final when (DESIGN §3) the 15-day objection window after the notification has
closed with no objection, or the retest is recorded; a closed task's result (the enterprise
is gone) is final at once. Finalising is set-based and idempotent (guarded by
``results.final_at IS NULL`` under the task's row lock, the same lock every state change
takes), so ``qsampling jobs run`` can run every minute and a read can finalise what is due:

- ``results.final_at`` / ``final_conclusion`` (the retest's verdicts replace the disputed
  items' verdicts), the task → ``final`` (``closed`` stays ``closed``);
- ``final_results``: one row per tested sample batch, for statistics;
- ``domain_events``: ``result.final`` (everything credit and disclosure need, in the payload,
  with a failure's ``severity``: minor, general or serious, see ``_SEVERITY``),
  plus ``result.refused`` (8), ``result.unreachable`` (6), ``result.closed`` (7, 9, 10, 11, 12,
  F);
- a final FAIL of a routine or emergency task: a rectification order (due in 60 days,
  re-inspection due in 75) with ``rectification.ordered``, and a follow-up plan (targets fixed,
  inspectors drawn) through the draws module;
- a final result of a follow-up task closes its order: ``reinspection.passed`` or
  ``reinspection.failed`` (failed or refused again — the escalation event for credit).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.audit import service as audit
from qsampling.context import SYSTEM, Actor
from qsampling.core.workdays import add_working_days
from qsampling.inspections.validation import local_date

log = logging.getLogger(__name__)

RECTIFY_DAYS = 60  # DESIGN §3: rectify within 60 days
REINSPECT_DAYS = 75  # re-inspection within 75 days of the order
PUBLISH_WORKING_DAYS = 20  # public within 20 working days of the inspection's end
BATCH = 5000

_DUE = """
    SELECT r.id, r.task_id
    FROM tasks t
    JOIN results r ON r.task_id = t.id AND r.live AND r.final_at IS NULL
    LEFT JOIN result_notifications n ON n.result_id = r.id
    WHERE (t.status IN ('retested', 'closed')
           OR (t.status = 'notified' AND n.objection_deadline < CAST(:today AS date)))
      {only}
    ORDER BY t.id
    LIMIT :limit
    FOR UPDATE OF t {skip}
"""

_SET_FINAL = text("""
    WITH v AS (
        SELECT ti.result_id, bool_or(COALESCE(ri.verdict, ti.verdict) = 'fail') AS any_fail
        FROM test_items ti
        LEFT JOIN retests rt ON rt.result_id = ti.result_id
        LEFT JOIN retest_items ri ON ri.retest_id = rt.id AND ri.test_item_id = ti.id
        WHERE ti.result_id = ANY(CAST(:ids AS bigint[]))
        GROUP BY ti.result_id
    )
    UPDATE results r
    SET final_at = CAST(:now AS timestamptz),
        final_conclusion = CASE WHEN v.any_fail THEN 'fail'
                                WHEN v.any_fail IS NOT NULL THEN 'pass' END
    FROM unnest(CAST(:ids AS bigint[])) AS x(id) LEFT JOIN v ON v.result_id = x.id
    WHERE r.id = x.id AND r.final_at IS NULL
    RETURNING r.id, r.task_id, (r.inspected_at AT TIME ZONE 'Asia/Shanghai')::date,
              r.final_conclusion
""")

_TASKS_FINAL = text("""
    UPDATE tasks SET status = 'final', updated_at = CAST(:now AS timestamptz)
    WHERE id = ANY(CAST(:tids AS bigint[])) AND status IN ('notified', 'retested')
""")

_FINAL_ROWS = text("""
    INSERT INTO final_results (result_id, sample_no, task_id, plan_id, uscc, check_item_code,
        category_code, region_code, enterprise_size, channel, inspected_on, passed,
        inclusion_probability, stratum, stratum_sample_size, stratum_population, follow_up)
    SELECT s.result_id, s.sample_no, t.id, t.plan_id, t.uscc, t.check_item_code,
           COALESCE(s.category_code, ci.category_codes[1], e.category_codes[1], ''),
           e.region_code, e.size, e.channel,
           (r.inspected_at AT TIME ZONE 'Asia/Shanghai')::date,
           NOT bool_or(COALESCE(ri.verdict, ti.verdict) = 'fail'),
           t.inclusion_probability, t.stratum, t.stratum_sample_size, t.stratum_population,
           p.plan_type = 'follow_up'
    FROM samples s
    JOIN results r ON r.id = s.result_id
    JOIN tasks t ON t.id = r.task_id
    JOIN plans p ON p.id = t.plan_id
    JOIN enterprises e ON e.uscc = t.uscc
    JOIN check_items ci ON ci.code = t.check_item_code
    JOIN test_items ti ON ti.sample_id = s.id
    LEFT JOIN retests rt ON rt.result_id = r.id
    LEFT JOIN retest_items ri ON ri.retest_id = rt.id AND ri.test_item_id = ti.id
    WHERE s.result_id = ANY(CAST(:ids AS bigint[]))
    GROUP BY s.id, r.id, t.id, p.id, e.uscc, ci.code
    ON CONFLICT DO NOTHING
""")

_OUTCOME = """
    CASE WHEN r.category_codes && ARRAY['7','9','10','11','12']::varchar[] THEN 'closed'
         WHEN 'F' = ANY(r.category_codes) THEN 'no_activity'
         WHEN '8' = ANY(r.category_codes) THEN 'refused'
         WHEN '6' = ANY(r.category_codes) THEN 'unreachable'
         WHEN r.final_conclusion = 'fail' THEN 'fail'
         WHEN r.category_codes && ARRAY['B','C','A','E']::varchar[] THEN 'problem_found'
         WHEN r.final_conclusion = 'pass' THEN 'pass'
         ELSE 'no_problem_found' END
"""

# the final verdict of a test item: the retest's, when the item was retested
_ITEM_FINAL = "COALESCE(y.verdict, x.verdict)"

# The severity of a final failure, for credit's graded ``result_fail`` points (one of
# ``core.credit_rules.SEVERITIES``), from what the result itself records:
# - "serious": the non-conformity is widespread — at least SERIOUS_FAILED_ITEMS test items
#   failed, or failed items in SERIOUS_FAILED_SAMPLES or more sample batches;
# - "minor": a single failed item that the inspectors had corrected on the spot (category E
#   发现问题已责令改正);
# - "general" otherwise. Results that are not a product failure carry none.
SERIOUS_FAILED_ITEMS = 3
SERIOUS_FAILED_SAMPLES = 2
_SEVERITY = f"""
    CASE WHEN {_OUTCOME} = 'fail' THEN (
        SELECT CASE
            WHEN count(*) >= {SERIOUS_FAILED_ITEMS}
                 OR count(DISTINCT x.sample_id) >= {SERIOUS_FAILED_SAMPLES} THEN 'serious'
            WHEN count(*) <= 1 AND 'E' = ANY(r.category_codes) THEN 'minor'
            ELSE 'general' END
        FROM test_items x
        LEFT JOIN retest_items y ON y.retest_id = rt.id AND y.test_item_id = x.id
        WHERE x.result_id = r.id AND {_ITEM_FINAL} = 'fail')
    END
"""

_EVENTS_FINAL = text(f"""
    INSERT INTO domain_events (kind, occurred_at, uscc, task_id, result_id, payload)
    SELECT 'result.final', CAST(:now AS timestamptz), t.uscc, t.id, r.id,
      jsonb_build_object(
        'result_id', r.id, 'task_id', t.id, 'plan_id', t.plan_id, 'plan_type', p.plan_type,
        'draw_id', t.draw_id, 'check_item_code', t.check_item_code,
        'check_item_name', ci.name, 'uscc', t.uscc, 'enterprise_name', e.name,
        'entity_type', e.entity_type, 'region_code', e.region_code,
        'enterprise_size', e.size, 'channel', e.channel,
        'inspected_at', r.inspected_at,
        'inspected_on', (r.inspected_at AT TIME ZONE 'Asia/Shanghai')::date,
        'conclusion', r.final_conclusion, 'submitted_conclusion', r.conclusion,
        'outcome', {_OUTCOME},
        'category_codes', to_jsonb(r.category_codes),
        'version', r.version, 'task_status', t.status,
        'notified_on', n.notified_on, 'objected', o.id IS NOT NULL,
        'retested', rt.id IS NOT NULL, 'final_at', CAST(:now AS timestamptz),
        'publish_due_date', d.due, 'publish_due_exact', d.exact
      ) || jsonb_build_object(
        'severity', {_SEVERITY},
        'stratum', t.stratum, 'inclusion_probability', t.inclusion_probability,
        'stratum_sample_size', t.stratum_sample_size,
        'stratum_population', t.stratum_population,
        'inspector_names', COALESCE((
            SELECT jsonb_agg(i.name ORDER BY ti.position)
            FROM task_inspectors ti JOIN inspectors i ON i.inspector_id = ti.inspector_id
            WHERE ti.task_id = t.id), '[]'::jsonb),
        'samples', COALESCE((
            SELECT jsonb_agg(jsonb_build_object(
                'sample_no', s.sample_no, 'product_name', s.product_name,
                'brand', s.brand, 'model_spec', s.model_spec, 'batch_no', s.batch_no,
                'production_date', s.production_date, 'quantity', s.quantity,
                'quantity_unit', s.quantity_unit, 'standard', s.standard,
                'category_code',
                    COALESCE(s.category_code, ci.category_codes[1], e.category_codes[1]),
                'items_tested', (SELECT count(*) FROM test_items x WHERE x.sample_id = s.id),
                'passed', NOT EXISTS (
                    SELECT 1 FROM test_items x
                    LEFT JOIN retest_items y ON y.retest_id = rt.id AND y.test_item_id = x.id
                    WHERE x.sample_id = s.id AND {_ITEM_FINAL} = 'fail'),
                'failed_items', COALESCE((
                    SELECT jsonb_agg(jsonb_build_object(
                        'name', x.name, 'requirement', x.requirement,
                        'measured_value', COALESCE(y.measured_value, x.measured_value),
                        'unit', COALESCE(y.unit, x.unit),
                        'retested', y.test_item_id IS NOT NULL) ORDER BY x.item_no)
                    FROM test_items x
                    LEFT JOIN retest_items y ON y.retest_id = rt.id AND y.test_item_id = x.id
                    WHERE x.sample_id = s.id AND {_ITEM_FINAL} = 'fail'), '[]'::jsonb)
              ) ORDER BY s.sample_no)
            FROM samples s WHERE s.result_id = r.id), '[]'::jsonb)
      )
    FROM unnest(CAST(:ids AS bigint[]), CAST(:due AS date[]), CAST(:exact AS boolean[]))
         AS d(id, due, exact)
    JOIN results r ON r.id = d.id
    JOIN tasks t ON t.id = r.task_id
    JOIN plans p ON p.id = t.plan_id
    JOIN enterprises e ON e.uscc = t.uscc
    JOIN check_items ci ON ci.code = t.check_item_code
    LEFT JOIN result_notifications n ON n.result_id = r.id
    LEFT JOIN objections o ON o.result_id = r.id
    LEFT JOIN retests rt ON rt.result_id = r.id
    ON CONFLICT DO NOTHING
""")

_EVENTS_SIDE = text("""
    INSERT INTO domain_events (kind, occurred_at, uscc, task_id, result_id, payload)
    SELECT k.kind, CAST(:now AS timestamptz), t.uscc, t.id, r.id,
      jsonb_build_object(
        'result_id', r.id, 'task_id', t.id, 'plan_id', t.plan_id, 'uscc', t.uscc,
        'check_item_code', t.check_item_code,
        'inspected_on', (r.inspected_at AT TIME ZONE 'Asia/Shanghai')::date,
        'category_codes', to_jsonb(r.category_codes))
    FROM results r
    JOIN tasks t ON t.id = r.task_id
    CROSS JOIN LATERAL (VALUES
        ('result.refused', '8' = ANY(r.category_codes)),
        ('result.unreachable', '6' = ANY(r.category_codes)),
        ('result.closed',
         r.category_codes && ARRAY['7','9','10','11','12','F']::varchar[])) AS k(kind, applies)
    WHERE r.id = ANY(CAST(:ids AS bigint[])) AND k.applies
    ON CONFLICT DO NOTHING
""")

_ORDERS = text("""
    WITH o AS (
        INSERT INTO rectification_orders (result_id, task_id, uscc, check_item_code, issued_on,
                                          due_date, reinspection_due_date, status)
        SELECT r.id, t.id, t.uscc, t.check_item_code, CAST(:today AS date),
               CAST(:today AS date) + CAST(:rectify AS integer),
               CAST(:today AS date) + CAST(:reinspect AS integer), 'open'
        FROM results r
        JOIN tasks t ON t.id = r.task_id
        JOIN plans p ON p.id = t.plan_id
        WHERE r.id = ANY(CAST(:ids AS bigint[])) AND r.final_conclusion = 'fail'
          AND p.plan_type <> 'follow_up'
        ON CONFLICT (result_id) DO NOTHING
        RETURNING id, result_id, task_id, uscc, check_item_code, issued_on, due_date,
                  reinspection_due_date
    )
    INSERT INTO domain_events (kind, occurred_at, uscc, task_id, result_id, payload)
    SELECT 'rectification.ordered', CAST(:now AS timestamptz), o.uscc, o.task_id, o.result_id,
           jsonb_build_object('order_id', o.id, 'result_id', o.result_id, 'task_id', o.task_id,
                              'uscc', o.uscc, 'check_item_code', o.check_item_code,
                              'issued_on', o.issued_on, 'due_date', o.due_date,
                              'reinspection_due_date', o.reinspection_due_date)
    FROM o
    ON CONFLICT DO NOTHING
    RETURNING id
""")

_REINSPECTIONS = text("""
    WITH f AS (
        SELECT r.id AS result_id, t.id AS task_id, t.uscc, t.plan_id, t.check_item_code,
               (r.final_conclusion = 'fail' OR '8' = ANY(r.category_codes)) AS failed
        FROM results r
        JOIN tasks t ON t.id = r.task_id
        JOIN plans p ON p.id = t.plan_id
        WHERE r.id = ANY(CAST(:ids AS bigint[])) AND p.plan_type = 'follow_up'
          AND (r.final_conclusion IS NOT NULL OR '8' = ANY(r.category_codes))
    ), o AS (
        UPDATE rectification_orders ro
        SET status = CASE WHEN f.failed THEN 'reinspection_failed'
                          ELSE 'reinspection_passed' END,
            reinspection_result_id = f.result_id,
            updated_at = CAST(:now AS timestamptz)
        FROM f
        WHERE ro.follow_up_plan_id = f.plan_id AND ro.uscc = f.uscc AND ro.status = 'open'
        RETURNING ro.id, ro.result_id AS original_result_id, f.result_id
    )
    INSERT INTO domain_events (kind, occurred_at, uscc, task_id, result_id, payload)
    SELECT CASE WHEN f.failed THEN 'reinspection.failed' ELSE 'reinspection.passed' END,
           CAST(:now AS timestamptz), f.uscc, f.task_id, f.result_id,
           jsonb_build_object('result_id', f.result_id, 'task_id', f.task_id,
                              'plan_id', f.plan_id, 'uscc', f.uscc,
                              'check_item_code', f.check_item_code,
                              'order_id', o.id, 'original_result_id', o.original_result_id,
                              'escalate', f.failed)
    FROM f LEFT JOIN o ON o.result_id = f.result_id
    ON CONFLICT DO NOTHING
""")


def _publish_due(days: Sequence[date]) -> tuple[list[date], list[bool]]:
    cache: dict[date, tuple[date, bool]] = {}
    due, exact = [], []
    for d in days:
        if d not in cache:
            res = add_working_days(d, PUBLISH_WORKING_DAYS)
            cache[d] = (res.due_date, res.exact)
        due.append(cache[d][0])
        exact.append(cache[d][1])
    return due, exact


async def finalise(
    session: AsyncSession,
    *,
    now: datetime,
    task_ids: Sequence[int] | None = None,
    wait: bool = False,
    limit: int = BATCH,
    actor: Actor = SYSTEM,
) -> int:
    """Finalise up to ``limit`` due results (of ``task_ids`` when given); returns how many.

    ``wait=False`` (the job) skips tasks another transaction holds; ``wait=True`` (a request
    acting on a task) waits for the lock.
    """
    today = local_date(now)
    sql = _DUE.format(
        only="AND t.id = ANY(CAST(:tids AS bigint[]))" if task_ids is not None else "",
        skip="" if wait else "SKIP LOCKED",
    )
    params: dict[str, Any] = {"today": today, "limit": limit}
    if task_ids is not None:
        if not task_ids:
            return 0
        params["tids"] = list(task_ids)
    due = (await session.execute(text(sql), params)).all()
    if not due:
        return 0
    ids = [int(r[0]) for r in due]
    done = (await session.execute(_SET_FINAL, {"ids": ids, "now": now})).all()
    if not done:
        return 0
    ids = [int(r[0]) for r in done]
    tids = [int(r[1]) for r in done]
    await session.execute(_TASKS_FINAL, {"tids": tids, "now": now})
    await session.execute(_FINAL_ROWS, {"ids": ids})
    due_dates, exact = _publish_due([r[2] for r in done])
    await session.execute(_EVENTS_FINAL, {"ids": ids, "due": due_dates, "exact": exact, "now": now})
    await session.execute(_EVENTS_SIDE, {"ids": ids, "now": now})
    new_orders = (
        await session.execute(
            _ORDERS,
            {
                "ids": ids,
                "now": now,
                "today": today,
                "rectify": RECTIFY_DAYS,
                "reinspect": REINSPECT_DAYS,
            },
        )
    ).all()
    await session.execute(_REINSPECTIONS, {"ids": ids, "now": now})
    await audit.record_many(
        session,
        actor=actor,
        action="result.final",
        entity_type="result",
        items=[(str(r[0]), {"task_id": int(r[1]), "conclusion": r[3]}) for r in done],
    )
    if new_orders:
        await ensure_follow_up_plans(session, now=now, actor=actor)
    return len(done)


async def finalise_due_among(
    session: AsyncSession, *, now: datetime, task_ids: Sequence[int]
) -> int:
    """The on-read check: finalise whatever of these tasks is due (usually nothing)."""
    if not task_ids:
        return 0
    return await finalise(session, now=now, task_ids=task_ids, wait=True)


async def finalise_all_due(session: AsyncSession, *, now: datetime) -> int:
    """The job: every due result, in batches, skipping tasks held by a request."""
    total = 0
    while True:
        n = await finalise(session, now=now, limit=BATCH)
        total += n
        if n < BATCH:
            return total


_follow_up_missing_logged = False
_failed_groups: set[tuple[int, ...]] = set()


def _follow_up_factory() -> Any:
    """``draws.service.create_follow_up_plan`` if the draws module provides it."""
    global _follow_up_missing_logged
    try:
        from qsampling.draws import service as draws_service  # type: ignore[attr-defined]

        return draws_service.create_follow_up_plan
    except (ImportError, AttributeError):
        if not _follow_up_missing_logged:
            log.warning(
                "qsampling.draws.service.create_follow_up_plan is not available: "
                "rectification orders wait for their follow-up plan"
            )
            _follow_up_missing_logged = True
        return None


async def ensure_follow_up_plans(
    session: AsyncSession, *, now: datetime, actor: Actor = SYSTEM
) -> int:
    """Create the follow-up plan (re-inspection) for open orders that have none yet: one plan
    per check item and re-inspection due date, targets fixed. Idempotent; retried by the job
    when the draws module refused or was unavailable."""
    create = _follow_up_factory()
    if create is None:
        return 0
    rows = (
        await session.execute(
            text("""
                SELECT id, uscc, check_item_code, reinspection_due_date
                FROM rectification_orders
                WHERE follow_up_plan_id IS NULL AND status = 'open'
                ORDER BY id
                LIMIT 10000
                FOR UPDATE SKIP LOCKED
            """)
        )
    ).all()
    groups: dict[tuple[str, date], list[Any]] = {}
    for r in rows:
        groups.setdefault((r.check_item_code, r.reinspection_due_date), []).append(r)
    created = 0
    for (check_item, due), orders in sorted(groups.items()):
        targets = sorted({o.uscc for o in orders})
        order_ids = [o.id for o in orders]
        try:
            async with session.begin_nested():
                plan = await create(
                    session,
                    actor=actor,
                    check_item_code=check_item,
                    targets=targets,
                    due_date=due,
                    reason=(
                        f"复查：整改通知 {', '.join(str(i) for i in order_ids)} "
                        f"(re-inspection of rectification orders {order_ids})"
                    ),
                )
                await session.execute(
                    text(
                        "UPDATE rectification_orders SET follow_up_plan_id = :p, "
                        "updated_at = :now WHERE id = ANY(CAST(:ids AS bigint[]))"
                    ),
                    {"p": plan.id, "ids": order_ids, "now": now},
                )
        except Exception as exc:  # noqa: BLE001 - keep finalising; the job retries the plan
            # once per process at warning level: the job retries every minute
            level = logging.DEBUG if tuple(order_ids) in _failed_groups else logging.WARNING
            _failed_groups.add(tuple(order_ids))
            log.log(level, "follow-up plan for orders %s not created: %s", order_ids, exc)
            continue
        created += 1
    return created


async def purge_idempotency_keys(session: AsyncSession, *, now: datetime, days: int = 90) -> int:
    res = await session.execute(
        text("DELETE FROM idempotency_keys WHERE created_at < :t"),
        {"t": now - timedelta(days=days)},
    )
    return int(getattr(res, "rowcount", 0) or 0)


def due_for_read(status: str, deadline: date | None, today: date) -> bool:
    """Whether a task in ``status`` is due to be finalised (used to decide on-read work)."""
    if status == "retested":
        return True
    return status == "notified" and deadline is not None and deadline < today
