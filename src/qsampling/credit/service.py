"""Credit: policies, the event ledger and scoring (incremental and set-based).

The rules themselves are pure (:mod:`qsampling.core.credit_rules`); this module stores and
loads their inputs and outputs. Two scoring paths give the same classes:

* :func:`rescore` — one enterprise, in Python with ``score_enterprise`` (milliseconds), run
  in the transaction that added an event or changed a list;
* :func:`recompute_all` — every enterprise, set-based in PostgreSQL: the policy's points
  (as a ``CASE`` over bind parameters) and decay table (an array computed in Python) are
  applied to the ledger in one aggregate into a temporary table, and the scores, the class
  history and ``enterprises.credit_class`` are written from it with one statement each.
  ``bench/credit.py`` measures it (1M enterprises, 5M events).

Concurrency: an incremental update holds a *shared* advisory lock, a full recompute an
*exclusive* one, so a recompute never overwrites a score computed from an event it could
not see. Services only flush; the caller commits.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.audit import service as audit
from qsampling.context import Actor
from qsampling.core.credit_rules import (
    CLASSES,
    EVENT_KINDS,
    SEVERITIES,
    SEVERITY_KINDS,
    CreditAssessment,
    CreditEvent,
    CreditPolicy,
    PolicyError,
    decay_factor,
    default_policy,
    policy_from_dict,
    policy_points_table,
    policy_to_dict,
    score_enterprise,
    validate_policy,
)
from qsampling.errors import InvalidInput, NotFound
from qsampling.models.credit import (
    CreditClassHistory,
    CreditEventRow,
    CreditRecompute,
    CreditScore,
)
from qsampling.models.credit import (
    CreditPolicy as PolicyRow,
)
from qsampling.models.directory import Enterprise

# China Standard Time has no daylight saving: a fixed offset needs no tz database.
CHINA_TZ = timezone(timedelta(hours=8), "CST")
# shared by incremental updates, exclusive for a full recompute ("QSCREDIT")
RECOMPUTE_LOCK_KEY = 0x5153_4352_4544_4954

HARD_RULE_SERIOUS = "serious_list"
HARD_RULE_ABNORMAL = "abnormal_list"


def china_today(now: datetime | None = None) -> date:
    """The calendar date in China (UTC+8) at ``now`` (default: the current time)."""
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(CHINA_TZ).date()


# --- policies ---------------------------------------------------------------------------------

# parsed policies by version, with the body they were parsed from (a rolled-back test or a
# recreated database may reuse a version number for another body)
_policy_cache: dict[int, tuple[dict[str, Any], CreditPolicy]] = {}
# the same, keyed by "version:md5(body)" as the database computes it (for rescore)
_policy_by_key: dict[str, CreditPolicy] = {}


def _policy_of(row: PolicyRow) -> CreditPolicy:
    cached = _policy_cache.get(row.version)
    if cached is not None and cached[0] == row.body:
        return cached[1]
    policy = policy_from_dict({**row.body, "version": row.version})
    _policy_cache[row.version] = (dict(row.body), policy)
    return policy


async def active_policy(session: AsyncSession) -> CreditPolicy:
    """The active policy (the migration installs version 1, the shipped default)."""
    row = await session.scalar(select(PolicyRow).where(PolicyRow.active.is_(True)))
    if row is None:  # pragma: no cover - only if someone deleted the seeded row
        return default_policy()
    return _policy_of(row)


async def policy_version(session: AsyncSession, version: int) -> CreditPolicy:
    row = await session.get(PolicyRow, version)
    if row is None:
        raise NotFound(f"No credit policy version {version}. 无此信用评价规则版本。")
    return _policy_of(row)


async def list_policies(session: AsyncSession) -> list[PolicyRow]:
    return list((await session.scalars(select(PolicyRow).order_by(PolicyRow.version))).all())


def _policy_errors(errors: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        field, _, msg = e.partition(": ")
        out.append({"loc": ["body", *field.split(".")], "msg": msg or e, "type": "policy"})
    return out


async def publish_policy(
    session: AsyncSession, *, body: dict[str, Any], note: str | None, actor: Actor
) -> PolicyRow:
    """Validate ``body`` (every policy field except ``version``), store it as the next
    version and make it active. Scores made by older versions keep their version; the next
    recompute (daily job or ``qsampling credit recompute``) applies the new one."""
    body = dict(body)
    body.pop("version", None)
    # serialise publishers so two cannot take the same version number
    await session.execute(text("LOCK TABLE credit_policies IN SHARE ROW EXCLUSIVE MODE"))
    latest = await session.scalar(select(func.max(PolicyRow.version)))
    version = int(latest or 0) + 1
    errors = validate_policy({**body, "version": version})
    if errors:
        raise InvalidInput(
            f"The credit policy is not valid: {'; '.join(errors)}. 信用评价规则无效。",
            code="InvalidPolicy",
            extra={"errors": _policy_errors(errors)},
        )
    try:
        policy = policy_from_dict({**body, "version": version})
    except PolicyError as exc:  # pragma: no cover - validate_policy found nothing
        raise InvalidInput(str(exc), code="InvalidPolicy") from exc
    stored = policy_to_dict(policy)
    stored.pop("version")
    await session.execute(
        text("UPDATE credit_policies SET active = false WHERE active"),
    )
    row = PolicyRow(
        version=version, body=stored, active=True, note=note, published_by=actor.username
    )
    session.add(row)
    await session.flush()
    await session.refresh(row)
    await audit.record(
        session,
        actor=actor,
        action="credit.policy.publish",
        entity_type="credit_policy",
        entity_id=version,
        payload={"version": version, "body": stored, "note": note},
    )
    return row


# --- the ledger -------------------------------------------------------------------------------


async def enterprise_or_404(session: AsyncSession, uscc: str) -> Enterprise:
    ent = await session.get(Enterprise, uscc)
    if ent is None:
        raise NotFound(f"No enterprise with USCC {uscc!r}. 无此企业。", code="EnterpriseNotFound")
    return ent


async def add_event(
    session: AsyncSession,
    *,
    uscc: str,
    kind: str,
    occurred_on: date,
    severity: str | None = None,
    ref: str = "",
    domain: str | None = None,
    source: str | None = None,
) -> int | None:
    """Append one credit event; returns its id, or ``None`` when ``source`` was already
    recorded (the same fact is never counted twice). Does not rescore: call :func:`rescore`.
    """
    if kind not in EVENT_KINDS:
        raise InvalidInput(f"Unknown credit event kind {kind!r}.", code="UnknownEventKind")
    if severity is not None and severity not in SEVERITIES:
        raise InvalidInput(f"Unknown severity {severity!r}.", code="UnknownSeverity")
    res = await session.execute(
        text(
            "INSERT INTO credit_events (uscc, kind, severity, occurred_on, ref, domain, source) "
            "VALUES (:u, :k, :s, :d, :r, :dom, :src) "
            "ON CONFLICT (source) DO NOTHING RETURNING id"
        ),
        {
            "u": uscc,
            "k": kind,
            "s": severity,
            "d": occurred_on,
            "r": ref[:200],
            "dom": domain,
            "src": source,
        },
    )
    new_id = res.scalar()
    return int(new_id) if new_id is not None else None


async def ledger(session: AsyncSession, uscc: str) -> list[CreditEventRow]:
    """Every credit event of an enterprise, in ledger (id) order."""
    q = select(CreditEventRow).where(CreditEventRow.uscc == uscc).order_by(CreditEventRow.id)
    return list((await session.scalars(q)).all())


def to_core(row: CreditEventRow) -> CreditEvent:
    return CreditEvent(
        event_id=row.id,
        kind=row.kind,
        severity=row.severity,
        occurred_on=row.occurred_on,
        ref=row.ref,
        domain=row.domain,
    )


# --- list states ------------------------------------------------------------------------------

# The list tables are authoritative. "In force on a date" is decided from the dates, so a
# class can be reproduced for any past day and an expiry the job has not processed yet
# still ends the listing on its day.
SERIOUS_IN_FORCE_SQL = (
    "s.listed_on IS NOT NULL AND s.listed_on <= {d} "
    "AND coalesce(s.removed_on, s.expires_on) > {d} "
    "AND s.status IN ('listed','repair_applied','removed_repaired','removed_expired')"
)
ABNORMAL_IN_FORCE_SQL = "a.listed_on <= {d} AND (a.removed_on IS NULL OR a.removed_on > {d})"


async def list_flags(session: AsyncSession, uscc: str, as_of: date) -> tuple[bool, bool]:
    """``(on_serious_list, on_abnormal_list)`` on ``as_of``."""
    row = (
        await session.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM serious_list_entries s WHERE s.uscc = :u AND "
                + SERIOUS_IN_FORCE_SQL.format(d=":d")
                + "), EXISTS (SELECT 1 FROM abnormal_list_entries a WHERE a.uscc = :u AND "
                + ABNORMAL_IN_FORCE_SQL.format(d=":d")
                + ")"
            ),
            {"u": uscc, "d": as_of},
        )
    ).one()
    return bool(row[0]), bool(row[1])


def hard_rule_code(
    score_class: str, policy: CreditPolicy, *, on_serious_list: bool, on_abnormal_list: bool
) -> tuple[str, str | None]:
    """Final class and the code of the hard rule that fixed it — the same decision as
    ``credit_rules._apply_hard_rules`` (a test pins the equality), as short codes for
    storage and for the set-based path."""
    rank = CLASSES.index(score_class)
    rule: str | None = None
    if on_abnormal_list:
        cap = CLASSES.index(policy.abnormal_list_max_class)
        if cap >= rank:
            rank, rule = cap, HARD_RULE_ABNORMAL
    if on_serious_list:
        cap = CLASSES.index(policy.serious_list_class)
        if cap >= rank:
            rank, rule = cap, HARD_RULE_SERIOUS
    return CLASSES[rank], rule


# --- incremental scoring ------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreChange:
    uscc: str
    score: float
    credit_class: str
    previous_class: str | None
    policy_version: int

    @property
    def changed(self) -> bool:
        return self.previous_class != self.credit_class


def _dec(score: float) -> Decimal:
    return Decimal(f"{score:.2f}")


# One round trip for everything an incremental update reads. The shared recompute lock is
# taken in the materialised CTE, before LockRows (at the top of the plan) locks the
# enterprise row — the order a full recompute relies on. Events come within the widest
# horizon a policy may have; score_enterprise ignores those outside the policy's own.
_RESCORE_STATE_SQL = (
    "WITH l AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared(CAST(:k AS bigint)) AS x) "
    "SELECT e.credit_class, "
    "EXISTS (SELECT 1 FROM serious_list_entries s WHERE s.uscc = e.uscc AND "
    + SERIOUS_IN_FORCE_SQL.format(d="CAST(:d AS date)")
    + ") AS on_serious, "
    "EXISTS (SELECT 1 FROM abnormal_list_entries a WHERE a.uscc = e.uscc AND "
    + ABNORMAL_IN_FORCE_SQL.format(d="CAST(:d AS date)")
    + ") AS on_abnormal, "
    "(SELECT version || ':' || md5(body::text) FROM credit_policies WHERE active) "
    "AS policy_key, "
    "(SELECT json_agg(json_build_array(ce.id, ce.kind, ce.severity, ce.occurred_on) "
    "ORDER BY ce.id) FROM credit_events ce WHERE ce.uscc = e.uscc "
    "AND ce.occurred_on BETWEEN CAST(:since AS date) AND CAST(:d AS date)) AS events "
    "FROM enterprises e CROSS JOIN l WHERE e.uscc = :u FOR NO KEY UPDATE OF e"
)
_MAX_HORIZON_DAYS = 3660  # validate_policy's upper bound on horizon_days


async def rescore(
    session: AsyncSession,
    *,
    uscc: str,
    as_of: date | None = None,
    trigger: str = "event",
    policy: CreditPolicy | None = None,
) -> ScoreChange:
    """Recompute one enterprise's score and class now; store them, the class history
    (when the class changed) and ``enterprises.credit_class``. Two round trips: one reads
    (taking the shared recompute lock, locking the enterprise row, reading its list states,
    the active policy's version and its ledger), one writes (the score upsert, plus the
    history and the directory when the class changed)."""
    as_of = as_of or china_today()
    state = (
        await session.execute(
            text(_RESCORE_STATE_SQL),
            {
                "k": RECOMPUTE_LOCK_KEY,
                "u": uscc,
                "d": as_of,
                "since": as_of - timedelta(days=_MAX_HORIZON_DAYS),
            },
        )
    ).first()
    if state is None:
        raise NotFound(f"No enterprise with USCC {uscc!r}. 无此企业。", code="EnterpriseNotFound")
    # the class in force before (the directory's own value until the first assessment)
    previous: str = state.credit_class
    serious, abnormal = bool(state.on_serious), bool(state.on_abnormal)
    if policy is None:
        policy = _policy_by_key.get(state.policy_key or "")
        if policy is None:
            policy = await active_policy(session)
            if state.policy_key:
                _policy_by_key[state.policy_key] = policy
    raw = state.events
    if isinstance(raw, str):  # a connection without the JSON codec
        raw = json.loads(raw)
    events = [
        CreditEvent(int(i), str(k), sev, date.fromisoformat(str(on)))
        for i, k, sev, on in (raw or [])
    ]
    a = score_enterprise(
        events, policy=policy, as_of=as_of, on_serious_list=serious, on_abnormal_list=abnormal
    )
    _, rule = hard_rule_code(
        a.score_class, policy, on_serious_list=serious, on_abnormal_list=abnormal
    )
    params = {
        "u": uscc,
        "s": _dec(a.score),
        "c": a.credit_class,
        "sc": a.score_class,
        "h": rule,
        "v": policy.version,
        "d": as_of,
        "prev": previous,
        "t": trigger,
    }
    upsert = (
        "INSERT INTO credit_scores (uscc, score, credit_class, score_class, hard_rule, "
        "policy_version, as_of, computed_at) VALUES (:u, :s, :c, :sc, :h, :v, :d, now()) "
        "ON CONFLICT (uscc) DO UPDATE SET score = excluded.score, "
        "credit_class = excluded.credit_class, score_class = excluded.score_class, "
        "hard_rule = excluded.hard_rule, policy_version = excluded.policy_version, "
        "as_of = excluded.as_of, computed_at = excluded.computed_at"
    )
    if previous == a.credit_class:
        await session.execute(text(upsert), params)
    else:
        await session.execute(
            text(
                "WITH s AS (" + upsert + " RETURNING 1), "
                "h AS (INSERT INTO credit_class_history (uscc, credit_class, previous_class, "
                "score, policy_version, as_of, trigger) VALUES (:u, :c, :prev, :s, :v, :d, :t)) "
                "UPDATE enterprises SET credit_class = :c WHERE uscc = :u"
            ),
            params,
        )
    return ScoreChange(uscc, a.score, a.credit_class, previous, policy.version)


# --- set-based recompute ------------------------------------------------------------------------


@dataclass(frozen=True)
class RecomputeReport:
    as_of: date
    policy_version: int
    enterprises: int
    changed: int
    seconds: float
    #: seconds per step (scoring, analyze, then each write), for operators and the bench
    steps: dict[str, float] = field(default_factory=dict)


def _points_case(policy: CreditPolicy) -> tuple[str, dict[str, float]]:
    """``CASE`` over kind (and severity) giving each event's undecayed points, with the
    numbers as bind parameters — the policy's points table (:func:`policy_points_table`).
    A ``CASE`` keeps the planner's row estimates intact, which a join on the table did not."""
    table = policy_points_table(policy)
    params: dict[str, float] = {}

    def p(kind: str, sev: str | None) -> str:
        name = f"pt_{len(params)}"
        params[name] = table[(kind, sev)]
        return f"CAST(:{name} AS float8)"

    whens = []
    for kind in EVENT_KINDS:
        if kind in SEVERITY_KINDS:
            inner = " ".join(f"WHEN '{s}' THEN {p(kind, s)}" for s in SEVERITIES)
            whens.append(f"WHEN '{kind}' THEN CASE ce.severity {inner} ELSE {p(kind, None)} END")
        else:
            whens.append(f"WHEN '{kind}' THEN {p(kind, None)}")
    return "CASE ce.kind " + " ".join(whens) + " END", params


def _sql_params(policy: CreditPolicy, as_of: date) -> dict[str, Any]:
    return {
        # the decay factors computed in Python with the very expression score_enterprise
        # uses, so both paths multiply by the same doubles (and PostgreSQL's power() never
        # meets an underflow)
        "decay": [decay_factor(a, policy.half_life_days) for a in range(policy.horizon_days + 1)],
        "as_of": as_of,
        "since": as_of - timedelta(days=policy.horizon_days),
        "base": float(policy.base_score),
        "cap": float(policy.positive_cap),
        "a_min": float(policy.class_a_min),
        "b_min": float(policy.class_b_min),
        "c_min": float(policy.class_c_min),
        "ab_cap": CLASSES.index(policy.abnormal_list_max_class),
        "se_cap": CLASSES.index(policy.serious_list_class),
        "v": policy.version,
    }


# ``credit_new`` mirrors score_enterprise step by step: points × decay (by integer age),
# positives and negatives summed apart, the positive cap, base + positives + negatives (in
# that order), clip to [0, 100], round half-to-even on ×100 (float8 round() is rint, like
# NumPy's), class by thresholds, then the hard rules as in hard_rule_code(). The old class
# is the one in force (enterprises.credit_class). It is a plain SELECT into a temporary
# table so PostgreSQL may aggregate the ledger in parallel (a statement that writes to
# tables never gets a parallel plan); the writes follow from it.
_SCORED_SQL = """
CREATE TEMP TABLE credit_new ON COMMIT DROP AS
WITH agg AS (
    SELECT ce.uscc,
           sum(ev.p) FILTER (WHERE ev.p > 0) AS pos,
           sum(ev.p) FILTER (WHERE ev.p < 0) AS neg
    FROM credit_events ce
    CROSS JOIN LATERAL (
        SELECT ({points}) * (CAST(:decay AS float8[]))[(CAST(:as_of AS date) - ce.occurred_on) + 1]
            AS p
    ) ev
    WHERE ce.occurred_on >= CAST(:since AS date) AND ce.occurred_on <= CAST(:as_of AS date)
    GROUP BY ce.uscc
),
serious AS (
    SELECT DISTINCT s.uscc FROM serious_list_entries s WHERE {serious}
),
abnormal AS (
    SELECT DISTINCT a.uscc FROM abnormal_list_entries a WHERE {abnormal}
),
scored AS (
    SELECT e.uscc, e.credit_class AS old_class,
           round(least(greatest(
               (CAST(:base AS float8) + least(coalesce(agg.pos, 0), CAST(:cap AS float8)))
               + coalesce(agg.neg, 0), 0), 100) * 100) / 100 AS score,
           (serious.uscc IS NOT NULL) AS on_serious,
           (abnormal.uscc IS NOT NULL) AS on_abnormal
    FROM enterprises e
    LEFT JOIN agg ON agg.uscc = e.uscc
    LEFT JOIN serious ON serious.uscc = e.uscc
    LEFT JOIN abnormal ON abnormal.uscc = e.uscc
),
ranked AS (
    SELECT *, CASE WHEN score >= CAST(:a_min AS float8) THEN 0
                   WHEN score >= CAST(:b_min AS float8) THEN 1
                   WHEN score >= CAST(:c_min AS float8) THEN 2 ELSE 3 END AS r0
    FROM scored
),
capped AS (
    SELECT *,
        CASE WHEN on_abnormal AND CAST(:ab_cap AS int) >= r0 THEN CAST(:ab_cap AS int)
             ELSE r0 END AS r1,
        CASE WHEN on_abnormal AND CAST(:ab_cap AS int) >= r0 THEN 'abnormal_list' END AS rule1
    FROM ranked
),
final AS (
    SELECT uscc, old_class, CAST(score AS numeric(5,2)) AS score,
           (ARRAY['A','B','C','D'])[r0 + 1] AS score_class,
           (ARRAY['A','B','C','D'])[(CASE WHEN on_serious AND CAST(:se_cap AS int) >= r1
                                          THEN CAST(:se_cap AS int) ELSE r1 END) + 1]
               AS new_class,
           CASE WHEN on_serious AND CAST(:se_cap AS int) >= r1 THEN 'serious_list'
                ELSE rule1 END AS hard_rule
    FROM capped
)
SELECT *, old_class IS DISTINCT FROM new_class AS changed FROM final
"""

_WRITE_SQL = (
    (
        "update_scores",
        """
    UPDATE credit_scores cs
    SET score = n.score, credit_class = n.new_class, score_class = n.score_class,
        hard_rule = n.hard_rule, policy_version = :v, as_of = CAST(:as_of AS date),
        computed_at = now()
    FROM credit_new n WHERE cs.uscc = n.uscc
    """,
    ),
    (
        "insert_scores",
        """
    INSERT INTO credit_scores (uscc, score, credit_class, score_class, hard_rule,
                               policy_version, as_of, computed_at)
    SELECT uscc, score, new_class, score_class, hard_rule, :v, CAST(:as_of AS date), now()
    FROM credit_new n
    WHERE NOT EXISTS (SELECT 1 FROM credit_scores cs WHERE cs.uscc = n.uscc)
    """,
    ),
    (
        "history",
        """
    INSERT INTO credit_class_history (uscc, credit_class, previous_class, score,
                                      policy_version, as_of, trigger)
    SELECT uscc, new_class, old_class, score, :v, CAST(:as_of AS date), :trigger
    FROM credit_new WHERE changed
    """,
    ),
    (
        "directory",
        """
    UPDATE enterprises e SET credit_class = n.new_class
    FROM credit_new n WHERE e.uscc = n.uscc AND n.changed
    """,
    ),
)


def recompute_sql(policy: CreditPolicy, as_of: date) -> tuple[str, dict[str, Any]]:
    points, point_params = _points_case(policy)
    sql = _SCORED_SQL.format(
        points=points,
        serious=SERIOUS_IN_FORCE_SQL.format(d="CAST(:as_of AS date)"),
        abnormal=ABNORMAL_IN_FORCE_SQL.format(d="CAST(:as_of AS date)"),
    )
    return sql, {**_sql_params(policy, as_of), **point_params}


# Planner settings for the recompute's transaction, measured with bench/credit.py (1M
# enterprises, 5M events): every join is over all enterprises, where a nested loop chosen
# from a stale estimate (an empty credit_scores, say) is quadratic; for the scoring
# statement alone, the ledger aggregate has one group per enterprise, so streaming the
# ledger in uscc order from the covering index (index-only scan, merge joins) beats both
# hashing a million groups and sorting the heap — 13–15 s against 20–21 s and 27–31 s.
_PLANNER_SETTINGS = (("work_mem", "'128MB'"), ("enable_nestloop", "off"))
_SCORING_SETTINGS = (("enable_hashagg", "off"), ("enable_seqscan", "off"))


async def _recompute(
    session: AsyncSession, *, as_of: date, trigger: str
) -> tuple[date, CreditPolicy, int, int, dict[str, float]]:
    policy = await active_policy(session)
    sql, params = recompute_sql(policy, as_of)
    steps: dict[str, float] = {}
    await session.execute(text("DROP TABLE IF EXISTS credit_new"))
    for name, value in _SCORING_SETTINGS:
        await session.execute(text(f"SET LOCAL {name} = {value}"))
    t = time.perf_counter()
    await session.execute(text(sql), params)
    steps["score"] = time.perf_counter() - t
    for name, _ in _SCORING_SETTINGS:
        await session.execute(text(f"SET LOCAL {name} TO DEFAULT"))
    # statistics for the writes' joins (a temporary table is never auto-analysed)
    t = time.perf_counter()
    await session.execute(text("ANALYZE credit_new"))
    steps["analyze"] = time.perf_counter() - t
    total = int(await session.scalar(text("SELECT count(*) FROM credit_new")) or 0)
    counts: dict[str, int] = {}
    for name, stmt in _WRITE_SQL:
        if name == "insert_scores" and counts["update_scores"] == total:
            counts[name] = 0  # every enterprise had a score already
            continue
        t = time.perf_counter()
        res = await session.execute(
            text(stmt), {"v": policy.version, "as_of": as_of, "trigger": trigger}
        )
        counts[name] = int(getattr(res, "rowcount", 0) or 0)
        steps[name] = time.perf_counter() - t
    await session.execute(text("DROP TABLE credit_new"))
    n, changed = counts["update_scores"] + counts["insert_scores"], counts["history"]
    return as_of, policy, n, changed, steps


async def recompute_all(
    session: AsyncSession,
    *,
    actor: Actor,
    as_of: date | None = None,
    trigger: str = "recompute",
) -> RecomputeReport:
    """Score every enterprise on ``as_of`` with the active policy, set-based in PostgreSQL.

    Rewrites every ``credit_scores`` row (so each records the date and version that made
    it), adds a class-history row and updates ``enterprises.credit_class`` where the class
    changed. One transaction (the caller's)."""
    t0 = time.perf_counter()
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": RECOMPUTE_LOCK_KEY})
    for name, value in _PLANNER_SETTINGS:
        await session.execute(text(f"SET LOCAL {name} = {value}"))
    as_of, policy, n, changed, steps = await _recompute(
        session, as_of=as_of or china_today(), trigger=trigger
    )
    # the caller's transaction may go on (the demo's does): give the planner back (on an
    # error the settings go with the rolled-back transaction)
    for name, _ in _PLANNER_SETTINGS:
        await session.execute(text(f"SET LOCAL {name} TO DEFAULT"))
    seconds = time.perf_counter() - t0
    session.add(
        CreditRecompute(
            as_of=as_of,
            policy_version=policy.version,
            enterprises=n,
            changed=changed,
            seconds=seconds,
            started_by=actor.username,
        )
    )
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="credit.recompute",
        entity_type="credit_recompute",
        entity_id=as_of.isoformat(),
        payload={
            "as_of": as_of.isoformat(),
            "policy_version": policy.version,
            "enterprises": n,
            "changed": changed,
        },
    )
    return RecomputeReport(as_of, policy.version, n, changed, seconds, steps)


async def recompute_due(session: AsyncSession, *, today: date) -> bool:
    """Whether no full recompute has run for ``today`` with the active policy yet."""
    policy = await active_policy(session)
    done = await session.scalar(
        select(func.count())
        .select_from(CreditRecompute)
        .where(CreditRecompute.as_of == today, CreditRecompute.policy_version == policy.version)
    )
    return not done


# --- the explainable view -----------------------------------------------------------------------


@dataclass(frozen=True)
class CreditView:
    enterprise: Enterprise
    stored: CreditScore | None
    assessment: CreditAssessment
    policy: CreditPolicy
    events: dict[int, CreditEventRow]
    history: list[CreditClassHistory]
    on_serious_list: bool
    on_abnormal_list: bool

    @property
    def stale(self) -> bool:
        """The ledger or the lists changed since the stored class was computed."""
        if self.stored is None:
            return True
        return (
            self.stored.credit_class != self.assessment.credit_class
            or float(self.stored.score) != self.assessment.score
        )


async def credit_view(session: AsyncSession, *, uscc: str) -> CreditView:
    """The stored class of an enterprise and why: the assessment is reproduced with the
    stored policy version on the stored date, so it explains exactly the class in force.
    Never scored yet → assessed today with the active policy (nothing is stored)."""
    ent = await enterprise_or_404(session, uscc)
    stored = await session.get(CreditScore, uscc)
    if stored is not None:
        policy = await policy_version(session, stored.policy_version)
        as_of = stored.as_of
    else:
        policy = await active_policy(session)
        as_of = china_today()
    rows = await ledger(session, uscc)
    serious, abnormal = await list_flags(session, uscc, as_of)
    a = score_enterprise(
        [to_core(r) for r in rows],
        policy=policy,
        as_of=as_of,
        on_serious_list=serious,
        on_abnormal_list=abnormal,
    )
    history = list(
        (
            await session.scalars(
                select(CreditClassHistory)
                .where(CreditClassHistory.uscc == uscc)
                .order_by(CreditClassHistory.id.desc())
                .limit(200)
            )
        ).all()
    )
    return CreditView(
        enterprise=ent,
        stored=stored,
        assessment=a,
        policy=policy,
        events={r.id: r for r in rows},
        history=history,
        on_serious_list=serious,
        on_abnormal_list=abnormal,
    )
