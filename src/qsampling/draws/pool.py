"""Set-based work on the frozen pool: freezing it, streaming ``pool.csv``, the top-k.

The algorithm itself is :mod:`qsampling.core.draw`; this module only moves bytes and rows
with PostgreSQL.

The frozen pool is stored as the committed file itself: the bytes of ``pool.csv`` in
``draw_pool_chunks``, cut at line ends into chunks of about :data:`CHUNK_BYTES`. Freezing is
one ``COPY (SELECT … ORDER BY uscc) TO STDOUT (FORMAT csv, HEADER)`` of the enterprises in
scope, which gives the bytes of :func:`qsampling.core.draw.pool_csv` (same quoting rules for
the values that occur; a NULL unit is written as nothing, like the empty string in Python);
this process hashes them, counts the strata and stores them unchanged. The bundle, the
exclusion pairs and the draw read these bytes back and nothing else, so a later change to the
directory never reaches a commitment.

Reading ``pool.csv`` in SQL relies on its shape, which the database's constraints guarantee
and :class:`PoolFile` checks while freezing: one line per candidate, the uscc and the stratum
never quoted (USCC characters; credit classes, sizes, channels, region codes), so
``split_part(line, ',', 1)`` is the uscc and ``split_part(line, ',', 2)`` the stratum; the
unit, last, may be quoted and is parsed in Python.

Step 4 keys are ``sha256(prefix || uscc)`` in SQL with a top-k per stratum, and the service
re-checks every drawn key with :func:`qsampling.core.draw.enterprise_key`; a test pins the SQL
selection to :func:`qsampling.core.draw.select`.
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from operator import itemgetter, methodcaller
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

STRATUM_SQL = {
    "credit_class": "e.credit_class",
    "region": "left(e.region_code, 4)",
    "size": "e.size",
    "channel": "e.channel",
}

POOL_HEADER_LINE = b"uscc,stratum,unit\n"
# Chunks of about a thousand lines: PostgreSQL plans string_to_table() for 1,000 rows a call,
# so with the number of chunks (:func:`pool_lines_sql`) it plans a statement over the parsed
# pool for about its real size (a pool taken for a few rows once made the exclusion join
# rescan it per candidate, for minutes).
CHUNK_BYTES = 32 * 1024
# chunks read per round trip when a pool is read back (8 MiB)
READ_BATCH = 256
# up to this many strata, the strata of a chunk without quotes are counted by searching the
# chunk for each one's ",stratum," (see PoolFile._add); above it line by line
FAST_COUNT_STRATA = 16

ENTERPRISE_PREFIX = b"QSDRAW-1\x00"
# Freezing or drawing a pool of ten million takes minutes: these statements get their own
# timeout instead of the connection's default command timeout (db.create_engine: 120 s).
LONG_STATEMENT_TIMEOUT = 3600.0


def pool_lines_sql(cid: str, chunks: int) -> str:
    """A subquery of the lines (``line``) of a stored pool.csv, header and empty tail
    excluded; ``cid`` is the placeholder of the commitment id, ``chunks`` its number of
    chunks. The chunks are listed by ``generate_series`` with ``chunks`` written in the
    statement, so the planner knows how many lines to expect whatever its statistics of
    ``draw_pool_chunks`` say (a commitment frozen in this very transaction has none)."""
    return (
        f"SELECT x.line FROM generate_series(0, {int(chunks) - 1}) AS s(seq) "
        "CROSS JOIN LATERAL (SELECT c.data FROM draw_pool_chunks c "
        f"WHERE c.commitment_id = {cid} AND c.seq = s.seq OFFSET 0) AS c "
        "CROSS JOIN LATERAL string_to_table(convert_from(c.data, 'UTF8'), E'\\n') AS x(line) "
        "WHERE x.line <> '' AND x.line <> 'uscc,stratum,unit'"
    )


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


_split_fields = methodcaller("split", b",", 2)
_second = itemgetter(1)


def _check_quoting(lines: list[bytes]) -> None:
    for line in lines:
        if b'"' in line:
            fields = line.split(b",", 2)
            if len(fields) < 3 or b'"' in fields[0] or b'"' in fields[1]:
                raise RuntimeError(f"pool.csv line {line!r}: only the unit may be quoted")


class PoolFile:
    """``pool.csv`` as it is written: hashed, its strata counted, cut into chunks at line ends.

    Checks the shape the SQL readers of a stored pool rely on (see the module docstring):
    the header, one candidate a line, only the unit ever quoted.
    """

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.size = 0
        self.chunks: list[bytes] = []
        self._counts: Counter[bytes] = Counter()
        self._strata: list[bytes] = []
        self._pending = b""
        self._header = True

    async def write(self, data: bytes) -> None:
        """COPY's output callback."""
        self.feed(bytes(data))

    def feed(self, data: bytes) -> None:
        self.digest.update(data)
        self.size += len(data)
        buf = self._pending + data if self._pending else data
        start = 0
        while len(buf) - start >= CHUNK_BYTES:
            end = buf.rfind(b"\n", start, start + CHUNK_BYTES) + 1
            if end <= start:  # one line longer than a chunk: the chunk ends with it
                end = buf.find(b"\n", start + CHUNK_BYTES) + 1
                if end == 0:
                    break
            self._add(buf[start:end])
            start = end
        self._pending = buf[start:]

    def close(self) -> None:
        if self._pending:
            if not self._pending.endswith(b"\n"):
                raise RuntimeError("pool.csv does not end with a line end")
            self._add(self._pending)
            self._pending = b""
        if self._header:
            raise RuntimeError("pool.csv has no header")

    def sizes(self) -> dict[str, int]:
        """N_h per stratum."""
        return {k.decode("utf-8"): v for k, v in sorted(self._counts.items())}

    def _add(self, chunk: bytes) -> None:
        body = chunk
        if self._header:
            end = chunk.find(b"\n") + 1
            if chunk[:end] != POOL_HEADER_LINE:
                raise RuntimeError(f"pool.csv starts with {chunk[:end]!r}, not its header")
            body = chunk[end:]
            self._header = False
        self.chunks.append(chunk)
        if b'"' not in body and 0 < len(self._strata) <= FAST_COUNT_STRATA:
            # Without quotes a line has exactly two commas, around its stratum, so
            # ",stratum," occurs once per line of that stratum and nowhere else; when the
            # known strata account for every line, the counts are exact.
            found = [body.count(b"," + s + b",") for s in self._strata]
            if sum(found) == body.count(b"\n"):
                for stratum, n in zip(self._strata, found, strict=True):
                    self._counts[stratum] += n
                return
        lines = body.split(b"\n")
        del lines[-1]  # the chunk ends with a line end
        if b'"' in body:
            _check_quoting(lines)
        self._counts.update(map(_second, map(_split_fields, lines)))
        self._strata = list(self._counts)


async def asyncpg_connection(session: AsyncSession) -> Any:
    """The session's asyncpg connection (same transaction), for COPY and long statements."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def _store_chunks(apg: Any, commitment_id: int, chunks: Iterable[bytes]) -> None:
    await apg.copy_records_to_table(
        "draw_pool_chunks",
        records=((commitment_id, seq, chunk) for seq, chunk in enumerate(chunks)),
        columns=["commitment_id", "seq", "data"],
        timeout=LONG_STATEMENT_TIMEOUT,
    )


async def freeze_pool(
    session: AsyncSession, *, commitment_id: int, scope: PoolScope
) -> tuple[dict[str, int], str]:
    """Freeze the pool: write ``pool.csv`` once, store its bytes; returns (N_h, SHA-256).

    One ``COPY (SELECT … FROM enterprises … ORDER BY uscc) TO STDOUT`` writes the file; this
    process hashes the bytes, counts the strata and cuts the chunks while PostgreSQL is
    still sending (the two work on separate cores), then stores the chunks with one binary
    COPY. Nothing but the file is stored: the draw and the bundle read these same bytes.
    """
    args: list[Any] = []

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
        f"SELECT e.uscc AS uscc, {stratum} AS stratum, NULLIF(e.supervising_unit, '') AS unit "
        "FROM enterprises e WHERE " + " AND ".join(where) + ' ORDER BY e.uscc COLLATE "C"'
    )
    pool = PoolFile()
    apg = await asyncpg_connection(session)
    async with _hash_joins_only(apg):
        await apg.copy_from_query(
            sql, *args, output=pool.write, format="csv", header=True, timeout=LONG_STATEMENT_TIMEOUT
        )
    pool.close()
    await _store_chunks(apg, commitment_id, pool.chunks)
    return pool.sizes(), pool.digest.hexdigest()


async def store_pool_csv(session: AsyncSession, *, commitment_id: int, data: bytes) -> PoolFile:
    """Store given ``pool.csv`` bytes as a commitment's frozen pool (imports, tests)."""
    pool = PoolFile()
    pool.feed(data)
    pool.close()
    await _store_chunks(await asyncpg_connection(session), commitment_id, pool.chunks)
    return pool


# The statements over a pool run with hash joins only. PostgreSQL has no statistics on the
# lines of a stored file, so it guesses how many pool usccs match a candidate (a few
# hundred), and from that guess has chosen nested loops and sorts of the whole pool, which
# took a minute on a million candidates; and freezing, it checked the exclusion window by
# scanning the tasks once per enterprise. Hash joins keep every plan linear in the sizes.
_HASH_JOINS_ONLY = ("enable_nestloop", "enable_mergejoin", "enable_memoize")


@asynccontextmanager
async def _hash_joins_only(apg: Any) -> AsyncIterator[None]:
    if not apg.is_in_transaction():  # the settings below last until the transaction ends
        async with apg.transaction(), _hash_joins_only(apg):
            yield
        return
    before = await apg.fetchrow(
        "SELECT " + ", ".join(f"current_setting('{name}')" for name in _HASH_JOINS_ONLY)
    )
    await apg.execute(
        "SELECT " + ", ".join(f"set_config('{name}', 'off', true)" for name in _HASH_JOINS_ONLY)
    )
    yield
    await apg.execute(
        "SELECT "
        + ", ".join(
            f"set_config('{name}', ${i}, true)" for i, name in enumerate(_HASH_JOINS_ONLY, 1)
        ),
        *before,
    )


async def _fetch_with_hash_joins(apg: Any, sql: str, *args: Any) -> list[Any]:
    async with _hash_joins_only(apg):
        rows: list[Any] = await apg.fetch(sql, *args, timeout=LONG_STATEMENT_TIMEOUT)
    return rows


async def pool_chunks(session: AsyncSession, *, commitment_id: int) -> int:
    """How many chunks the commitment's stored pool.csv has (0: none stored)."""
    apg = await asyncpg_connection(session)
    n = await apg.fetchval(
        "SELECT count(*) FROM draw_pool_chunks WHERE commitment_id = $1", int(commitment_id)
    )
    return int(n)


def _exclusions_sql(chunks: int) -> str:
    pool = (
        "SELECT split_part(p.line, ',', 1) AS uscc FROM (" + pool_lines_sql("$1", chunks) + ") AS p"
    )
    return (
        "WITH candidate AS ("
        "  SELECT c.uscc, c.inspector_id, CAST(NULL AS bigint) AS task_id,"
        "    CAST(NULL AS timestamptz) AS at"
        "  FROM inspector_conflicts c WHERE c.inspector_id = ANY($2::text[])"
        "  UNION ALL"
        "  SELECT t.uscc, NULL, t.id, t.created_at FROM tasks t WHERE t.status <> 'cancelled'"
        "), hit AS MATERIALIZED ("
        f"  SELECT candidate.* FROM ({pool}) AS pool"
        "  JOIN candidate ON candidate.uscc = pool.uscc"
        ") "
        "SELECT inspector_id, uscc FROM hit WHERE task_id IS NULL "
        "UNION ALL "
        "SELECT ti.inspector_id, last.uscc FROM ("
        "  SELECT DISTINCT ON (uscc) uscc, task_id FROM hit WHERE task_id IS NOT NULL"
        "  ORDER BY uscc, at DESC, task_id DESC"
        ") AS last JOIN task_inspectors ti ON ti.task_id = last.task_id "
        "WHERE ti.inspector_id = ANY($2::text[])"
    )


async def exclusion_pairs(
    session: AsyncSession, *, commitment_id: int, inspector_ids: list[str]
) -> list[tuple[str, str]]:
    """Declared conflicts (行政处罚法 art. 43) with pool enterprises, and rotation: the
    inspectors of each pool enterprise's most recent task (any check item), for the
    eligible ``inspector_ids``. The pool is the stored pool.csv, parsed once and joined
    with the candidate pairs (its usccs are unique, so the join selects without
    duplicating). A pair may come twice (a conflict that is also rotation);
    :func:`qsampling.core.draw.exclusions_csv` keeps it once."""
    chunks = await pool_chunks(session, commitment_id=commitment_id)
    apg = await asyncpg_connection(session)
    rows = await _fetch_with_hash_joins(
        apg, _exclusions_sql(chunks), int(commitment_id), list(inspector_ids)
    )
    return [(r[0], r[1]) for r in rows]


async def stream_pool_csv(
    session: AsyncSession, *, commitment_id: int, sink: Callable[[bytes], Awaitable[None]]
) -> None:
    """Write ``pool.csv`` of a commitment to ``sink`` chunk by chunk, as stored. A commitment
    without a stored pool reads as the header alone."""
    apg = await asyncpg_connection(session)
    last = -1
    while True:
        rows = await apg.fetch(
            "SELECT seq, data FROM draw_pool_chunks WHERE commitment_id = $1 AND seq > $2 "
            "ORDER BY seq LIMIT $3",
            int(commitment_id),
            last,
            READ_BATCH,
            timeout=LONG_STATEMENT_TIMEOUT,
        )
        if last < 0 and not rows:
            await sink(POOL_HEADER_LINE)
        for row in rows:
            await sink(row[1])
        if len(rows) < READ_BATCH:
            return
        last = rows[-1][0]


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


def _unit_of(line: str) -> str:
    """The unit field of a pool.csv line (the only field that may be quoted)."""
    rest = line.split(",", 2)[2]
    if '"' not in rest:
        return rest
    return next(csv.reader([rest], strict=True))[0]


def key_ceiling(n: int, size: int | None) -> bytes | None:
    """An upper bound for the stratum's keys worth sorting: about n + 6√n + 16 of ``size``
    uniform keys fall below it (None: keep every key).

    A bound is only a shortcut: when fewer than n keys fall below it, the stratum is
    selected again without one, so the result never depends on it.
    """
    if size is None:
        return None
    expected = n + 6 * math.isqrt(n) + 16
    if expected >= size:
        return None
    return (((expected << 256) + size - 1) // size).to_bytes(32, "big")


def _topk_sql(chunks: int) -> str:
    return (
        "SELECT z.uscc, z.stratum, z.line, z.k FROM ("
        "  SELECT y.uscc, y.stratum, y.line, y.k, q.n, row_number() OVER ("
        '    PARTITION BY y.stratum ORDER BY y.k, y.uscc COLLATE "C") AS rn FROM ('
        "    SELECT split_part(p.line, ',', 1) AS uscc, split_part(p.line, ',', 2) AS stratum,"
        "      p.line, sha256($1::bytea || convert_to(split_part(p.line, ',', 1), 'UTF8')) AS k"
        "    FROM (" + pool_lines_sql("$2", chunks) + ") AS p"
        "  ) AS y JOIN unnest($3::text[], $4::int[], $5::bytea[]) AS q(stratum, n, ceiling) "
        "  ON q.stratum = y.stratum WHERE q.ceiling IS NULL OR y.k < q.ceiling"
        ") AS z WHERE z.rn <= z.n ORDER BY z.stratum, z.rn"
    )


async def sql_topk(
    session: AsyncSession,
    *,
    commitment_id: int,
    seed: bytes,
    quotas: dict[str, int],
    sizes: dict[str, int] | None = None,
) -> list[KeyedRow]:
    """QSDRAW-1 step 4 in PostgreSQL over the stored pool.csv: per stratum the n_h smallest
    ``sha256(b"QSDRAW-1\\x00" + seed + b"\\x01" + uscc)``, in one pass over the file.

    Every key is computed; with the strata sizes ``sizes`` (N_h) only the keys under each
    stratum's :func:`key_ceiling` are sorted, about n_h of them instead of N_h.
    """
    prefix = ENTERPRISE_PREFIX + bytes(seed) + b"\x01"
    wanted = {s: n for s, n in sorted(quotas.items()) if n > 0}
    ceilings = {s: key_ceiling(n, sizes.get(s) if sizes else None) for s, n in wanted.items()}
    apg = await asyncpg_connection(session)
    sql = _topk_sql(await pool_chunks(session, commitment_id=commitment_id))

    async def select(strata: list[str], bounded: bool) -> dict[str, list[Any]]:
        rows = await _fetch_with_hash_joins(
            apg,
            sql,
            prefix,
            int(commitment_id),
            strata,
            [wanted[s] for s in strata],
            [ceilings[s] if bounded else None for s in strata],
        )
        got: dict[str, list[Any]] = {s: [] for s in strata}
        for r in rows:
            got[r[1]].append(r)
        return got

    got = await select(list(wanted), True)
    short = [s for s, n in wanted.items() if len(got[s]) < n and ceilings[s] is not None]
    if short:
        got.update(await select(short, False))
    return [KeyedRow(r[0], r[1], _unit_of(r[2]), bytes(r[3])) for s in wanted for r in got[s]]
