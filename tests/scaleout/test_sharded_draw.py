"""A two-node sharded directory on one server: postgres_fdw foreign partitions, the draw's
per-stratum top-k computed on each shard and merged at the coordinator."""

from __future__ import annotations

import random
import uuid

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from qsampling.core.draw import Candidate, select
from qsampling.core.uscc import generate
from qsampling.sharding import count_sql, sharded_select, topk_sql
from tests.conftest import drop_database, recreate_database

SHARD_DDL = "CREATE TABLE directory (uscc text PRIMARY KEY, stratum text NOT NULL, unit text)"


async def _connect(url: str, db: str) -> asyncpg.Connection:
    u = make_url(url)
    return await asyncpg.connect(
        user=u.username or "postgres",
        password=u.password or None,
        host=u.query.get("host") or u.host,
        port=u.port,
        database=db,
    )


@pytest.fixture
async def cluster(server_url: str):
    tag = uuid.uuid4().hex[:8]
    names = [f"qs_shard{i}_{tag}" for i in (0, 1)] + [f"qs_coord_{tag}"]
    for n in names:
        await recreate_database(server_url, n)
    u = make_url(server_url)
    host = u.query.get("host") or u.host or "127.0.0.1"
    port = u.port or 5432
    try:
        for shard in names[:2]:
            c = await _connect(server_url, shard)
            await c.execute(SHARD_DDL)
            await c.close()
        coord = await _connect(server_url, names[2])
        await coord.execute("CREATE EXTENSION IF NOT EXISTS postgres_fdw")
        await coord.execute(
            "CREATE TABLE directory (uscc text NOT NULL, stratum text NOT NULL, unit text) "
            "PARTITION BY HASH (uscc)"
        )
        for i, shard in enumerate(names[:2]):
            await coord.execute(
                f"CREATE SERVER s{i} FOREIGN DATA WRAPPER postgres_fdw "
                f"OPTIONS (host '{host}', port '{port}', dbname '{shard}')"
            )
            await coord.execute(
                f"CREATE USER MAPPING FOR CURRENT_USER SERVER s{i} OPTIONS (user 'postgres')"
            )
            await coord.execute(
                f"CREATE FOREIGN TABLE directory_p{i} PARTITION OF directory "
                f"FOR VALUES WITH (MODULUS 2, REMAINDER {i}) SERVER s{i} "
                "OPTIONS (table_name 'directory')"
            )
        yield coord, names
        await coord.close()
    finally:
        for n in reversed(names):
            await drop_database(server_url, n)


def _pool(n: int) -> list[Candidate]:
    rng = random.Random(7)
    seen: set[str] = set()
    out = []
    while len(out) < n:
        code = generate(rng, region_code=rng.choice(["350102", "350203", "370102"]))
        if code in seen:
            continue
        seen.add(code)
        out.append(Candidate(code, rng.choices("ABCD", weights=[15, 60, 20, 5])[0], ""))
    return out


async def test_sharded_draw_equals_single_node_draw(cluster, server_url: str) -> None:
    coord, names = cluster
    pool = _pool(3000)
    # rows go through the coordinator's hash-partitioned table into the two shards
    await coord.executemany(
        "INSERT INTO directory (uscc, stratum, unit) VALUES ($1, $2, $3)",
        [(c.uscc, c.stratum, c.unit) for c in pool],
    )
    counts = [
        await (await _connect(server_url, n)).fetchval("SELECT count(*) FROM directory")
        for n in names[:2]
    ]
    assert sum(counts) == 3000 and min(counts) > 1000  # both shards hold a real share

    sizes: dict[str, int] = {}
    for c in pool:
        sizes[c.stratum] = sizes.get(c.stratum, 0) + 1
    quotas = {s: max(1, n // 10) for s, n in sizes.items()}
    seed = bytes(range(32))
    merged = await sharded_select(
        [coord, coord], tables=["directory_p0", "directory_p1"], seed=seed, quotas=quotas
    )
    assert merged == select(seed, pool, quotas)
    assert len(merged) == sum(quotas.values())


async def test_topk_and_counts_run_on_the_shards(cluster) -> None:
    coord, _ = cluster
    plan = "\n".join(
        r[0]
        for r in await coord.fetch(
            "EXPLAIN VERBOSE "
            + topk_sql("directory_p0")
            .replace("$1", "'\\x00'::bytea")
            .replace("$2", "'A'")
            .replace("$3", "5")
        )
    )
    remote = [ln for ln in plan.splitlines() if "Remote SQL" in ln]
    assert remote, plan
    assert "sha256" in remote[0] and "LIMIT" in remote[0], plan
    plan = "\n".join(
        r[0] for r in await coord.fetch("EXPLAIN VERBOSE " + count_sql("directory_p1"))
    )
    assert any("GROUP BY" in ln for ln in plan.splitlines() if "Remote SQL" in ln), plan
