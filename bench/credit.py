"""Benchmark: `qsampling credit recompute` (set-based) and the incremental update.

Builds its own database (default 1,000,000 enterprises and 5,000,000 ledger events over four
years, 1 % on the abnormal list, 0.2 % on the serious list), then measures in the same run:

* the full recompute through ``qsampling.credit.service.recompute_all`` — first run (every
  score inserted; every enterprise whose class differs from the directory's default B gets
  a history row and its ``enterprises.credit_class`` rewritten) and steady state (the next
  day, as the daily job: every score rewritten, the few class changes written);
* the raw-PostgreSQL baseline: a bare ``UPDATE credit_scores SET as_of = as_of`` of the same
  rows, and the ratio recompute / bare update;
* one enterprise's incremental update (``service.rescore``, its own transaction each),
  median and 95th percentile over a sample.

Target (issue 7): recompute < 30 s on 2 cores for 1M/5M; incremental < 20 ms.

    .venv/bin/python bench/credit.py                      # full scale
    .venv/bin/python bench/credit.py --enterprises 100000 --events 500000
    QSAMPLING_BENCH_DATABASE_URL=postgresql+asyncpg://… .venv/bin/python bench/credit.py

The database (``qsampling_bench_credit`` on the configured/embedded server unless
``--database-url`` names another) is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import asyncpg  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from qsampling.config import Settings  # noqa: E402
from qsampling.context import Actor  # noqa: E402
from qsampling.db import make_sessionmaker, resolve_database_url, upgrade  # noqa: E402

AS_OF = date(2026, 6, 30)


def create_engine(url: str, *, pool_size: int = 1, max_overflow: int = 0) -> Any:
    """Like qsampling.db.create_engine, without its 120 s client-side statement limit."""
    from sqlalchemy.ext.asyncio import create_async_engine

    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        connect_args={"server_settings": {"timezone": "UTC"}, "command_timeout": 3600},
    )


ACTOR = Actor(username="bench", role="admin")


def _server_url(explicit: str | None) -> str:
    url = explicit or os.environ.get("QSAMPLING_BENCH_DATABASE_URL")
    if url:
        return Settings(database_url=url).database_url or url
    return resolve_database_url(Settings())


def _with_db(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def _admin(url: str) -> asyncpg.Connection:
    u = make_url(url)
    return await asyncpg.connect(
        user=u.username or "postgres",
        password=u.password or None,
        host=u.query.get("host") or u.host,
        port=u.port,
        database="postgres",
    )


async def _recreate(url: str, name: str, *, drop_only: bool = False) -> None:
    conn = await _admin(url)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if not drop_only:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def _migrate(url: str) -> None:
    err: list[BaseException] = []

    def run() -> None:
        try:
            upgrade(url)
        except BaseException as e:  # noqa: BLE001
            err.append(e)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if err:
        raise err[0]


async def _load(url: str, n_ent: int, n_ev: int) -> None:
    """Synthetic data, set-based. FK checks are skipped while loading (replica role)."""
    eng = create_engine(url, pool_size=1, max_overflow=0)
    async with eng.begin() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(text("SELECT setseed(0.42)"))
        await conn.execute(
            text(
                "INSERT INTO regions (code, name, level, parent_code) VALUES "
                "('350000','福建省','province',NULL),('350100','福州市','city','350000'),"
                "('350102','鼓楼区','county','350100') ON CONFLICT DO NOTHING"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO units (code, name, region_code) VALUES "
                "('B-GL','福州市鼓楼区市场监督管理局','350102') ON CONFLICT DO NOTHING"
            )
        )
        t = time.perf_counter()
        await conn.execute(
            text(
                "INSERT INTO enterprises (uscc, name, entity_type, region_code, supervising_unit, "
                "size, channel, status, credit_class) "
                "SELECT '9135010200' || lpad(i::text, 8, '0'), '基准企业' || i, '企业', '350102', "
                "'B-GL', 'small', 'production', '存续', 'B' FROM generate_series(1, :n) i"
            ),
            {"n": n_ent},
        )
        # kinds roughly as a bureau sees them: mostly passes and failures
        await conn.execute(
            text(
                "INSERT INTO credit_events (uscc, kind, severity, occurred_on, ref) "
                "SELECT '9135010200' || lpad((1 + floor(random() * :n))::int::text, 8, '0'), "
                "k.kind, "
                "CASE WHEN k.kind IN ('result_fail','penalty') "
                "     THEN (ARRAY['minor','general','serious'])[1 + floor(random() * 3)::int] END, "
                "CAST(:as_of AS date) - floor(random() * 1460)::int, 'bench' "
                "FROM generate_series(1, :m) g "
                "CROSS JOIN LATERAL (SELECT CASE "
                "  WHEN r < 0.55 THEN 'result_pass' WHEN r < 0.80 THEN 'result_fail' "
                "  WHEN r < 0.88 THEN 'penalty' WHEN r < 0.92 THEN 'unreachable' "
                "  WHEN r < 0.95 THEN 'refusal' WHEN r < 0.97 THEN 'false_disclosure' "
                "  WHEN r < 0.98 THEN 'reinspection_fail' WHEN r < 0.99 THEN 'abnormal_listed' "
                "  WHEN r < 0.995 THEN 'abnormal_removed' ELSE 'serious_listed' END AS kind "
                "  FROM (SELECT random() + g * 0 AS r) x) k"
            ),
            {"n": n_ent, "m": n_ev, "as_of": AS_OF},
        )
        await conn.execute(
            text(
                "INSERT INTO abnormal_list_entries (uscc, cause, status, listed_on, reason, basis, "
                "authority, decided_by) "
                "SELECT '9135010200' || lpad(i::text, 8, '0'), 'unreachable', 'listed', "
                "CAST(:as_of AS date) - (i % 900), '住所无法联系', '《办法》', '局', 'bench' "
                "FROM generate_series(1, :n, 100) i"
            ),
            {"n": n_ent, "as_of": AS_OF},
        )
        await conn.execute(
            text(
                "INSERT INTO serious_list_entries (uscc, status, rule_id, proposed_on, "
                "proposal_reason, proposal_basis, proposed_by, listed_on, expires_on) "
                "SELECT '9135010200' || lpad(i::text, 8, '0'), 'listed', 'MANUAL', d, 'r', 'b', "
                "'bench', d, d + 1095 FROM generate_series(7, :n, 500) i, "
                "LATERAL (SELECT CAST(:as_of AS date) - (i % 700) AS d) x"
            ),
            {"n": n_ent, "as_of": AS_OF},
        )
        print(
            f"loaded {n_ent:,} enterprises and {n_ev:,} events in {time.perf_counter() - t:.1f} s"
        )
    async with eng.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        t = time.perf_counter()
        await conn.execute(text("VACUUM ANALYZE"))
        print(f"vacuum analyze {time.perf_counter() - t:.1f} s")
    await eng.dispose()


async def _measure(url: str, samples: int) -> dict[str, float]:
    from qsampling.credit import service

    eng = create_engine(url, pool_size=2, max_overflow=0)
    sm = make_sessionmaker(eng)
    res: dict[str, float] = {}

    async def recompute(as_of: date) -> float:
        t = time.perf_counter()
        async with sm() as s:
            rep = await service.recompute_all(s, actor=ACTOR, as_of=as_of)
            await s.commit()
        dt = time.perf_counter() - t
        print(
            f"  recompute as of {as_of}: {rep.enterprises:,} enterprises, "
            f"{rep.changed:,} class changes, {dt:.2f} s "
            f"({', '.join(f'{k} {v:.2f}' for k, v in rep.steps.items())})"
        )
        return dt

    print("full recompute (service.recompute_all):")
    res["recompute_first"] = await recompute(AS_OF)
    async with eng.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE credit_scores"))
    res["recompute_steady"] = await recompute(AS_OF + timedelta(days=1))
    async with eng.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE credit_scores"))

    t = time.perf_counter()
    async with eng.begin() as conn:
        r = await conn.execute(text("UPDATE credit_scores SET as_of = as_of"))
        n = r.rowcount
    res["bare_update"] = time.perf_counter() - t
    print(f"bare UPDATE of the same {n:,} rows: {res['bare_update']:.2f} s")

    async with eng.connect() as conn:
        usccs = [
            row[0]
            for row in await conn.execute(
                text("SELECT uscc FROM enterprises TABLESAMPLE SYSTEM (1) LIMIT :k"),
                {"k": samples},
            )
        ]
    random.Random(1).shuffle(usccs)
    times = []
    for u in usccs:
        t = time.perf_counter()
        async with sm() as s:
            await service.rescore(s, uscc=u, as_of=AS_OF + timedelta(days=1))
            await s.commit()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    res["incr_median_ms"] = statistics.median(times)
    res["incr_p95_ms"] = times[int(0.95 * (len(times) - 1))]
    print(
        f"incremental update of one enterprise ({len(times)} samples, own transaction each): "
        f"median {res['incr_median_ms']:.1f} ms, p95 {res['incr_p95_ms']:.1f} ms"
    )
    await eng.dispose()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--enterprises", type=int, default=1_000_000)
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--samples", type=int, default=200, help="incremental updates timed")
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--name", default="qsampling_bench_credit")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    ap.add_argument(
        "--reuse", action="store_true", help="measure on a database kept by --keep (no load)"
    )
    args = ap.parse_args()

    server = _server_url(args.database_url)
    url = _with_db(server, args.name)
    print(f"cores: {os.cpu_count()}  database: {args.name}")
    if not args.reuse:
        asyncio.run(_recreate(server, args.name))
    try:
        if not args.reuse:
            t = time.perf_counter()
            _migrate(url)
            print(f"migrated in {time.perf_counter() - t:.1f} s")
            asyncio.run(_load(url, args.enterprises, args.events))
        res = asyncio.run(_measure(url, args.samples))
    finally:
        if not args.keep:
            asyncio.run(_recreate(server, args.name, drop_only=True))
    steady = res["recompute_steady"]
    print()
    first = res["recompute_first"]
    print(
        f"RESULT recompute {args.enterprises:,} enterprises / {args.events:,} events: "
        f"steady {steady:.2f} s ({'met' if steady < 30 else 'NOT met'}: < 30 s), "
        f"first {first:.2f} s ({'met' if first < 30 else 'NOT met'}); "
        f"bare UPDATE {res['bare_update']:.2f} s; ratio steady/bare "
        f"{steady / res['bare_update']:.2f}, first/bare {first / res['bare_update']:.2f}"
    )
    scale = f"{args.enterprises:,} enterprises / {args.events:,} events"
    rows = [
        {
            "figure": f"credit recompute, steady ({scale})",
            "value": round(steady, 2),
            "unit": "s",
            "baseline": round(res["bare_update"], 2),
            "ratio": round(steady / res["bare_update"], 2),
            "target": "< 30 s",
            "met": steady < 30,
        },
        {
            "figure": f"credit recompute, first ({scale})",
            "value": round(res["recompute_first"], 2),
            "unit": "s",
            "baseline": round(res["bare_update"], 2),
            "ratio": round(res["recompute_first"] / res["bare_update"], 2),
            "target": "< 30 s",
            "met": res["recompute_first"] < 30,
        },
        {
            "figure": "credit incremental update, p95",
            "value": round(res["incr_p95_ms"], 1),
            "unit": "ms",
            "baseline": None,
            "ratio": None,
            "target": "< 20 ms",
            "met": res["incr_p95_ms"] < 20,
        },
        {
            "figure": "credit incremental update, median",
            "value": round(res["incr_median_ms"], 1),
            "unit": "ms",
            "baseline": None,
            "ratio": None,
            "target": "< 20 ms",
            "met": res["incr_median_ms"] < 20,
        },
    ]
    print("BENCH-JSON " + json.dumps(rows, ensure_ascii=False))
    print(
        f"RESULT incremental update: median {res['incr_median_ms']:.1f} ms, "
        f"p95 {res['incr_p95_ms']:.1f} ms "
        f"(target < 20 ms: {'met' if res['incr_p95_ms'] < 20 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
