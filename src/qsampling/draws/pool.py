"""Set-based work on the frozen pool: freezing it, streaming ``pool.csv``, the SQL top-k.

The algorithm itself is :mod:`qsampling.core.draw`; this module only moves rows with
PostgreSQL. Two places reproduce core behaviour in SQL, each pinned by a test against core:

- ``pool.csv`` is written by ``COPY … (FORMAT csv, HEADER)`` in byte order of the uscc, which
  gives the bytes of :func:`qsampling.core.draw.pool_csv` (same quoting rules for the
  values that occur; a NULL unit is written as nothing, like the empty string in Python);
- step 4 keys are ``sha256(prefix || uscc)`` in SQL with a top-k per stratum
  (``ORDER BY key LIMIT n_h``, a bounded heap sort as cheap as ``ORDER BY random() LIMIT``),
  and the service re-checks every drawn key with :func:`qsampling.core.draw.enterprise_key`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

STRATUM_SQL = {
    "credit_class": "e.credit_class",
    "region": "left(e.region_code, 4)",
    "size": "e.size",
    "channel": "e.channel",
}

# asyncpg wraps it as COPY (…) TO STDOUT WITH (FORMAT csv, HEADER)
POOL_SELECT_SQL = (
    "SELECT uscc, stratum, NULLIF(unit, '') AS unit FROM draw_pool "
    'WHERE commitment_id = $1 ORDER BY uscc COLLATE "C"'
)

ENTERPRISE_PREFIX = b"QSDRAW-1\x00"
# Freezing or drawing a pool of ten million takes minutes: these statements get their own
# timeout instead of the connection's default command timeout (db.create_engine: 120 s).
LONG_STATEMENT_TIMEOUT = 3600.0


@dataclass(frozen=True)
class PoolScope:
    """What enters the pool: either fixed targets, or the scope filters."""

    targets: Sequence[str] | None
    region_prefixes: Sequence[str]
    category_codes: Sequence[str]
    statuses: Sequence[str]
    strata_fields: Sequence[str]
    check_item_code: str
    exclusion_days: int | None  # None: no exclusion window (follow-up, emergency)


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def stratum_expression(fields: Sequence[str]) -> str:
    parts = [STRATUM_SQL[f] for f in fields]
    return parts[0] if len(parts) == 1 else "concat_ws('|', " + ", ".join(parts) + ")"


async def freeze_pool(
    session: AsyncSession, *, commitment_id: int, scope: PoolScope
) -> tuple[dict[str, int], str]:
    """Freeze the pool and write ``pool.csv`` in one pass: returns (N_h per stratum, SHA-256).

    ``COPY (INSERT INTO draw_pool … SELECT … FROM enterprises … ORDER BY uscc RETURNING …)``
    inserts the rows in uscc byte order and streams them back as ``pool.csv``; this process
    hashes the bytes and counts the strata while PostgreSQL is still inserting (the two
    work on separate cores). The executor returns RETURNING rows in the order it inserts
    them, the order of the sorted SELECT; the bundle regenerates the file from the frozen
    rows with ``ORDER BY uscc``, and the tests check both give the same bytes.
    """
    args: list[Any] = [commitment_id]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where: list[str] = []
    if scope.targets is not None:
        stratum = "'follow_up'"
        where.append(f"e.uscc = ANY(CAST({arg(list(scope.targets))} AS text[]))")
    else:
        stratum = stratum_expression(scope.strata_fields)
        where.append(f"e.status = ANY(CAST({arg(list(scope.statuses))} AS text[]))")
        if scope.region_prefixes:
            patterns = [_like_escape(p) + "%" for p in scope.region_prefixes]
            where.append(f"e.region_code LIKE ANY(CAST({arg(patterns)} AS text[]))")
        if scope.category_codes:
            cats = arg(list(scope.category_codes))
            subtrees = arg([_like_escape(c) + ".%" for c in scope.category_codes])
            where.append(
                "EXISTS (SELECT 1 FROM unnest(e.category_codes) AS c(code) "
                f"WHERE c.code = ANY(CAST({cats} AS text[])) "
                f"OR c.code LIKE ANY(CAST({subtrees} AS text[])))"
            )
        if scope.exclusion_days is not None and scope.exclusion_days > 0:
            # DESIGN §3: not sampled again for the same check item within the window
            where.append(
                "NOT EXISTS (SELECT 1 FROM tasks t WHERE t.uscc = e.uscc "
                f"AND t.check_item_code = CAST({arg(scope.check_item_code)} AS text) "
                "AND t.status <> 'cancelled' AND t.created_at >= "
                f"now() - make_interval(days => CAST({arg(scope.exclusion_days)} AS int)))"
            )
    sql = (
        "INSERT INTO draw_pool (commitment_id, uscc, stratum, unit) "
        f"SELECT CAST($1 AS bigint), e.uscc, {stratum}, coalesce(e.supervising_unit, '') "
        "FROM enterprises e WHERE " + " AND ".join(where) + ' ORDER BY e.uscc COLLATE "C" '
        "RETURNING uscc, stratum, NULLIF(unit, '') AS unit"
    )
    digest = hashlib.sha256()
    counts: Counter[bytes] = Counter()
    rest = b""
    header = True

    async def sink(chunk: bytes) -> None:
        nonlocal rest, header
        digest.update(chunk)
        lines = (rest + bytes(chunk)).split(b"\n")
        rest = lines.pop()
        if header and lines:
            lines = lines[1:]
            header = False
        # the stratum is the second field; stratum values never hold a comma or a quote
        counts.update(line.split(b",", 2)[1] for line in lines)

    apg = await asyncpg_connection(session)
    await apg.copy_from_query(
        sql, *args, output=sink, format="csv", header=True, timeout=LONG_STATEMENT_TIMEOUT
    )
    if rest:  # pragma: no cover - COPY ends every row with a newline
        raise RuntimeError("pool.csv did not end with a newline")
    return {k.decode("utf-8"): v for k, v in sorted(counts.items())}, digest.hexdigest()


async def strata_sizes(session: AsyncSession, *, commitment_id: int) -> dict[str, int]:
    rows = await session.execute(
        text(
            "SELECT stratum, count(*) FROM draw_pool WHERE commitment_id = :cid "
            "GROUP BY stratum ORDER BY stratum"
        ),
        {"cid": commitment_id},
    )
    return {r[0]: int(r[1]) for r in rows}


async def asyncpg_connection(session: AsyncSession) -> Any:
    """The session's asyncpg connection (same transaction), for COPY and long statements."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def stream_pool_csv(
    session: AsyncSession, *, commitment_id: int, sink: Callable[[bytes], Awaitable[None]]
) -> None:
    """Write ``pool.csv`` of a commitment to ``sink`` chunk by chunk (COPY, same transaction)."""
    apg = await asyncpg_connection(session)
    await apg.copy_from_query(
        POOL_SELECT_SQL,
        int(commitment_id),
        output=sink,
        format="csv",
        header=True,
        timeout=LONG_STATEMENT_TIMEOUT,
    )


async def pool_csv_sha256(session: AsyncSession, *, commitment_id: int) -> tuple[str, int]:
    """SHA-256 (hex) and length of ``pool.csv``, hashed on the fly."""
    h = hashlib.sha256()
    size = 0

    async def sink(chunk: bytes) -> None:
        nonlocal size
        h.update(chunk)
        size += len(chunk)

    await stream_pool_csv(session, commitment_id=commitment_id, sink=sink)
    return h.hexdigest(), size


async def pool_csv_bytes(session: AsyncSession, *, commitment_id: int) -> bytes:
    parts: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        parts.append(bytes(chunk))

    await stream_pool_csv(session, commitment_id=commitment_id, sink=sink)
    return b"".join(parts)


@dataclass(frozen=True)
class KeyedRow:
    uscc: str
    stratum: str
    unit: str
    key: bytes


async def sql_topk(
    session: AsyncSession, *, commitment_id: int, seed: bytes, quotas: dict[str, int]
) -> list[KeyedRow]:
    """QSDRAW-1 step 4 in PostgreSQL: per stratum the n_h smallest
    ``sha256(b"QSDRAW-1\\x00" + seed + b"\\x01" + uscc)``, as a bounded top-k sort."""
    prefix = ENTERPRISE_PREFIX + bytes(seed) + b"\x01"
    out: list[KeyedRow] = []
    apg = await asyncpg_connection(session)
    for stratum, n in sorted(quotas.items()):
        if n <= 0:
            continue
        rows = await apg.fetch(
            "SELECT uscc, unit, sha256($1::bytea || convert_to(uscc, 'UTF8')) AS k "
            "FROM draw_pool WHERE commitment_id = $2 AND stratum = $3 "
            'ORDER BY k, uscc COLLATE "C" LIMIT $4',
            prefix,
            commitment_id,
            stratum,
            n,
            timeout=LONG_STATEMENT_TIMEOUT,
        )
        out.extend(KeyedRow(r[0], stratum, r[1], bytes(r[2])) for r in rows)
    return out
