"""Statistics benchmark (issue 6): pass rates over 10,000,000 final results.

Builds ``final_results`` rows in the real (migrated) table with one ``INSERT … SELECT
generate_series`` (158 leaf categories × 84 Fujian counties, four credit-class strata with
their inclusion probabilities, two years of inspection dates; deterministic via
``setseed``), then measures in the same run, on the same rows, each the median of
``--repeat`` runs after one warm-up, baseline and service alternating (the ratio is the
median of the per-pair ratios, so load from other processes hits both alike):

- baseline: the bare ``SELECT category_code, region_code, count(*) FROM final_results WHERE
  NOT follow_up GROUP BY 1, 2`` (asyncpg, no ORM);
- service: ``qsampling.stats.service.pass_rates(group_by=["category", "region"])`` through a
  real ``AsyncSession`` — the aggregate, names, Wilson intervals for every group (NumPy),
  flags and the response rows;
- the same for the roll-up ``category:1 × region:city`` and its bare ``GROUP BY``, and for a
  date range that starts and ends in the middle of a month;
- each of them also forced onto the full scan of ``final_results`` (as if the monthly
  summary ``final_result_counts`` did not exist), with the same numbers checked;
- the weighted estimate (``weighted=true``) by ``category:1`` — informative, no target.

Targets: category × region with Wilson intervals < 2 s and ≤ 1.5× the bare GROUP BY.

The database ``qs_bench_stats_<N>`` is created (and dropped unless ``--keep``) on the server
of ``QSAMPLING_BENCH_DATABASE_URL`` (an asyncpg URL), else on the embedded server.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any
from unittest.mock import patch

import asyncpg
from sqlalchemy.engine import make_url

from qsampling.config import Settings
from qsampling.db import create_engine, make_sessionmaker, upgrade
from qsampling.stats import service
from qsampling.stats.service import StatsFilters

DATA = Path(__file__).resolve().parents[1] / "src" / "qsampling" / "data"


def server_url() -> str:
    explicit = os.environ.get("QSAMPLING_BENCH_DATABASE_URL")
    if explicit:
        return Settings(database_url=explicit).database_url or explicit
    from qsampling.db import _libpq_to_asyncpg, embedded_server_uri

    return _libpq_to_asyncpg(embedded_server_uri(Settings().data_dir), "postgres")


def with_db(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def connect(url: str) -> asyncpg.Connection:
    u = make_url(url)
    return await asyncpg.connect(
        user=u.username or "postgres",
        password=u.password or None,
        host=u.query.get("host") or u.host,
        port=u.port,
        database=u.database or "postgres",
        command_timeout=3600,
    )


async def recreate(url: str, name: str, drop_only: bool = False) -> None:
    conn = await connect(with_db(url, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def in_thread(fn: Callable[[], Any]) -> None:
    # alembic's env runs its own event loop
    err: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as e:  # noqa: BLE001
            err.append(e)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if err:
        raise err[0]


def reference() -> tuple[list[str], list[str]]:
    with (DATA / "categories.csv").open(encoding="utf-8") as fh:
        leaves = [r["code"] for r in csv.DictReader(fh) if r["level"] == "3"]
    with (DATA / "regions.csv").open(encoding="utf-8") as fh:
        counties = [
            r["code"]
            for r in csv.DictReader(fh)
            if r["level"] == "county" and r["code"].startswith("35")
        ]
    return leaves, counties


# Pass probability: 0.97 by default, lower for higher-risk strata; industry 03 (儿童用品) and
# sub-category 03.02 (玩具) worse and falling over the two years.
GENERATE = """
INSERT INTO final_results (result_id, sample_no, task_id, plan_id, uscc, check_item_code,
    category_code, region_code, enterprise_size, channel, inspected_on, passed,
    inclusion_probability, stratum, stratum_sample_size, stratum_population, follow_up)
SELECT g, 1, g, 1 + g % 24,
       '9135' || lpad((g % 10000000000000)::text, 14, '0'),
       'CI-' || (g % 7),
       c.code, ($2::text[])[1 + (g / 3) % $4],
       (ARRAY['large','medium','small','micro'])[1 + g % 4],
       (ARRAY['production','circulation','e-commerce'])[1 + (g / 5) % 3],
       d.day,
       random() < 0.985 - s.penalty
           - CASE WHEN c.code LIKE '03.02%' THEN 0.04 + 0.10 * (d.day - date '2025-01-01') / 730.0
                  WHEN c.code LIKE '03%' THEN 0.03 ELSE 0 END,
       s.pi, s.h, s.n_h, s.big_n, false
FROM generate_series(1::bigint, $3::bigint) AS g
CROSS JOIN LATERAL (SELECT ($1::text[])[1 + (g * 7919) % $5] AS code) c
CROSS JOIN LATERAL (SELECT date '2025-01-01' + (g % 730)::int AS day) d
CROSS JOIN LATERAL (
    SELECT CASE WHEN g % 20 < 8 THEN 'A' WHEN g % 20 < 16 THEN 'B'
                WHEN g % 20 < 19 THEN 'C' ELSE 'D' END AS h
) k
CROSS JOIN LATERAL (
    SELECT k.h,
           CASE k.h WHEN 'A' THEN 0.03 WHEN 'B' THEN 0.05 WHEN 'C' THEN 0.2 ELSE 0.6 END AS pi,
           CASE k.h WHEN 'A' THEN 0.0 WHEN 'B' THEN 0.015 WHEN 'C' THEN 0.05 ELSE 0.15 END
               AS penalty,
           1000 AS n_h,
           CASE k.h WHEN 'A' THEN 33333 WHEN 'B' THEN 20000 WHEN 'C' THEN 5000 ELSE 1667 END
               AS big_n
) s
"""


async def load(url: str, rows: int) -> float:
    leaves, counties = reference()
    conn = await connect(url)
    t0 = time.perf_counter()
    try:
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'final_results' "
            "AND indexname NOT LIKE 'pk_%'"
        )
        for ix in indexes:
            await conn.execute(f'DROP INDEX "{ix["indexname"]}"')
        await conn.execute("SELECT setseed(0.2026)")
        await conn.execute(GENERATE, leaves, counties, rows, len(counties), len(leaves))
        for ix in indexes:
            await conn.execute(ix["indexdef"])
        await conn.execute("VACUUM (ANALYZE) final_results")
    finally:
        await conn.close()
    return time.perf_counter() - t0


async def timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, Any]:
    result = await fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = await fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


async def paired(
    base: Callable[[], Awaitable[Any]], fn: Callable[[], Awaitable[Any]], repeat: int
) -> tuple[float, float, float, Any, Any]:
    """Baseline and candidate run alternately (so that load from elsewhere hits both alike):
    median times and the median of the per-pair ratios."""
    b_res = await base()
    f_res = await fn()
    tb: list[float] = []
    tf: list[float] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        b_res = await base()
        t1 = time.perf_counter()
        f_res = await fn()
        t2 = time.perf_counter()
        tb.append(t1 - t0)
        tf.append(t2 - t1)
    ratio = statistics.median(f / b for f, b in zip(tf, tb, strict=True))
    return statistics.median(tb), statistics.median(tf), ratio, b_res, f_res


async def measure(url: str, repeat: int) -> list[dict[str, Any]]:
    conn = await connect(url)
    engine = create_engine(url, pool_size=1, max_overflow=0)
    sm = make_sessionmaker(engine)
    out: list[dict[str, Any]] = []
    try:
        total = await conn.fetchval("SELECT count(*) FROM final_results")
        async with sm() as session:
            edge = StatsFilters(from_date=date(2025, 3, 15), to_date=date(2026, 9, 14))
            cases = [
                (
                    "category × region (county), Wilson",
                    ["category", "region"],
                    StatsFilters(),
                    "SELECT category_code, region_code, count(*) FROM final_results "
                    "WHERE NOT follow_up GROUP BY 1, 2",
                    True,
                ),
                (
                    "category:1 × region:city, Wilson",
                    ["category:1", "region:city"],
                    StatsFilters(),
                    "SELECT category_code, left(region_code, 4), count(*) FROM final_results "
                    "WHERE NOT follow_up GROUP BY 1, 2",
                    False,
                ),
                (
                    "category × region, 2025-03-15…2026-09-14 (partial months at both ends)",
                    ["category", "region"],
                    edge,
                    "SELECT category_code, region_code, count(*) FROM final_results "
                    "WHERE NOT follow_up AND inspected_on BETWEEN '2025-03-15' AND '2026-09-14' "
                    "GROUP BY 1, 2",
                    False,
                ),
            ]
            for label, group_by, flt, bare_sql, is_target in cases:

                async def bare(sql: str = bare_sql) -> Any:
                    return await conn.fetch(sql)

                async def served(g: list[str] = group_by, f: StatsFilters = flt) -> Any:
                    return await service.pass_rates(session, group_by=g, filters=f)

                t_bare, t_service, ratio, bare_rows, res = await paired(bare, served, repeat)
                # the same request forced onto the full scan of final_results (no summary)
                with patch.object(service, "_summary_months", lambda *_a, **_k: None):
                    t_bare2, t_scan, ratio_scan, _, res_scan = await paired(bare, served, repeat)
                assert [(r.group, r.tested, r.passed) for r in res_scan.rows] == [
                    (r.group, r.tested, r.passed) for r in res.rows
                ], "summary and full scan disagree"
                print(
                    f"{label}: {len(res.rows):,} groups over {total:,} rows — "
                    f"service {t_service:.3f} s, bare GROUP BY {t_bare:.3f} s "
                    f"({len(bare_rows):,} rows), ratio {ratio:.2f}; the same without the "
                    f"monthly summary (full scan) {t_scan:.3f} s, ratio {ratio_scan:.2f}",
                    flush=True,
                )
                out.append(
                    {
                        "figure": f"pass rates {label} ({total:,} rows)",
                        "value": round(t_service, 3),
                        "unit": "s",
                        "baseline": round(t_bare, 3),
                        "ratio": round(ratio, 2),
                        "target": "< 2 s and ≤ 1.5× bare GROUP BY" if is_target else "",
                        "met": (t_service < 2.0 and ratio <= 1.5) if is_target else None,
                    }
                )
                out.append(
                    {
                        "figure": f"… {label}, full scan without the summary",
                        "value": round(t_scan, 3),
                        "unit": "s",
                        "baseline": round(t_bare2, 3),
                        "ratio": round(ratio_scan, 2),
                        "target": "",
                        "met": None,
                    }
                )

            async def weighted() -> Any:
                return await service.pass_rates(session, group_by=["category:1"], weighted=True)

            t_w, res_w = await timed(weighted, max(1, repeat // 2))
            est = res_w.overall.weighted
            print(
                f"weighted by category:1: {t_w:.3f} s; overall unweighted "
                f"{res_w.overall.rate:.4f}, weighted {est.estimate:.4f} "
                f"[{est.lower:.4f}, {est.upper:.4f}], n_eff {est.n_eff:,.0f}",
                flush=True,
            )
            out.append(
                {
                    "figure": f"weighted pass rates by industry ({total:,} rows)",
                    "value": round(t_w, 3),
                    "unit": "s",
                    "baseline": None,
                    "ratio": None,
                    "target": "",
                    "met": None,
                }
            )
    finally:
        await conn.close()
        await engine.dispose()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    ap.add_argument("--reuse", action="store_true", help="reuse a kept database (no reload)")
    args = ap.parse_args()
    server = server_url()
    name = f"qs_bench_stats_{args.rows}"
    url = with_db(server, name)
    try:
        if not args.reuse:
            asyncio.run(recreate(server, name))
        in_thread(lambda: upgrade(url))  # a kept database gets newer migrations too
        if not args.reuse:
            secs = asyncio.run(load(url, args.rows))
            print(f"loaded {args.rows:,} final results in {secs:.1f} s", flush=True)
        rows = asyncio.run(measure(url, args.repeat))
    finally:
        if not args.keep:
            asyncio.run(recreate(server, name, drop_only=True))
    print("BENCH-JSON " + json.dumps(rows, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
