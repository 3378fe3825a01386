"""Bench: export N published results as CSV through the real export path.

Target (issue 8): 5,000,000 rows at >= 200,000 rows/s with peak memory < 300 MB, and the
ratio against ``COPY (the same SELECT) TO STDOUT`` of the same rows in the same run
(aim >= 0.4).

    .venv/bin/python bench/export.py [--rows 5000000] [--keep]

What it does:
1. creates a scratch database of its own (``qs_bench_export``) on the server the settings
   point at (the embedded one by default) with the ``result_publications`` table exactly as
   the models define it, and fills it with N realistic published results (set-based SQL);
2. baseline: ``COPY (SELECT … ) TO STDOUT (FORMAT csv, HEADER)`` of the same rows that the
   export selects, written to a file by asyncpg (no hashing, no BOM, no manifest);
3. the real path: ``qsampling export results --format csv --out DIR`` in a child process
   (BOM, streaming through a bounded queue, SHA-256, fsync, signed manifest), its peak RSS
   read from ``getrusage(RUSAGE_CHILDREN)``;
4. checks the manifest (``verify-export``) and prints the figures and the ratio.
The scratch database is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from qsampling.config import Settings  # noqa: E402
from qsampling.db import resolve_database_url  # noqa: E402

DB = "qs_bench_export"


def _conn_args(url: str, database: str) -> dict[str, object]:
    u = make_url(url)
    return {
        "user": u.username or "postgres",
        "password": u.password or None,
        "host": u.query.get("host") or u.host,
        "port": u.port,
        "database": database,
    }


async def prepare(url: str, rows: int) -> None:
    admin = await asyncpg.connect(**_conn_args(url, "postgres"))  # type: ignore[arg-type]
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DB}"')
        await admin.execute(f'CREATE DATABASE "{DB}"')
    finally:
        await admin.close()
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateIndex, CreateTable

    import qsampling.models  # noqa: F401
    from qsampling.db import Base

    conn = await asyncpg.connect(**_conn_args(url, DB))  # type: ignore[arg-type]
    try:
        dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
        for name in ("categories", "result_publications"):
            table = Base.metadata.tables[name]
            await conn.execute(str(CreateTable(table).compile(dialect=dialect)))
            for ix in table.indexes:
                await conn.execute(str(CreateIndex(ix).compile(dialect=dialect)))
        t0 = time.perf_counter()
        step = 500_000
        for start in range(0, rows, step):
            n = min(step, rows - start)
            await conn.execute(
                """
                INSERT INTO result_publications (id, result_id, task_id, plan_id, uscc,
                  enterprise_name, entity_type, region_code, region_name, check_item_code,
                  check_item_name, inspected_on, conclusion, result_codes, category_codes,
                  samples, products_text, failed_items_text, inspector_names, final_at,
                  due_date, due_exact, published_at, csv_line)
                SELECT g, g, g, 1 + g % 500, uscc, name, etype, region, '鼓楼区', item,
                  '儿童用品产品质量监督抽查', inspected, concl, codes, cats, '[]'::jsonb,
                  products, failed, ARRAY['王检查', '李执法']::varchar[], pub,
                  inspected + 28, true, pub,
                  concat_ws(',', g, uscc, name, etype, region, '鼓楼区', item,
                    '儿童用品产品质量监督抽查', inspected,
                    concl, CASE concl WHEN 'pass' THEN '未发现不合格' WHEN 'fail' THEN '不合格'
                                      ELSE '未检验' END,
                    array_to_string(codes, ';'), array_to_string(cats, ';'), products,
                    failed, '王检查;李执法',
                    to_char(pub AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
                FROM (
                  SELECT g,
                    '9135' || lpad((g % 10000)::text, 4, '0') || 'MA' || lpad(g::text, 8, '0')
                      AS uscc,
                    '福建省某某' || (g % 9973) || '号童车制造有限公司' AS name,
                    CASE WHEN g % 5 = 0 THEN '个体工商户' ELSE '企业' END AS etype,
                    '3501' || lpad((g % 13)::text, 2, '0') AS region,
                    'SC-2026-00' || (g % 9) AS item,
                    DATE '2025-01-01' + (g % 365)::int AS inspected,
                    CASE WHEN g % 17 = 0 THEN 'fail' WHEN g % 101 = 0 THEN 'not_tested'
                         ELSE 'pass' END AS concl,
                    CASE WHEN g % 17 = 0 THEN ARRAY['E']::varchar[]
                         ELSE ARRAY['1']::varchar[] END AS codes,
                    ARRAY['03.0' || (1 + g % 5)]::varchar[] AS cats,
                    '儿童推车 / 好孩子 / C' || (g % 400) || ' / 2025'
                      || lpad((g % 12 + 1)::text, 2, '0') || '01' AS products,
                    CASE WHEN g % 17 = 0 THEN '儿童推车：制动性能、标识' ELSE '' END AS failed,
                    date_trunc('second', now()) - (g % 1000) * interval '1 minute' AS pub
                  FROM generate_series($1::bigint, $2::bigint) g
                ) s
                """,
                start + 1,
                start + n,
            )
            print(f"  generated {start + n:,} rows", file=sys.stderr)
        await conn.execute("ANALYZE result_publications")
        await check_lines(conn)
        print(f"data: {rows:,} rows in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    finally:
        await conn.close()


async def _count(url: str) -> int:
    try:
        conn = await asyncpg.connect(**_conn_args(url, DB))  # type: ignore[arg-type]
    except (asyncpg.InvalidCatalogNameError, OSError):
        return -1
    try:
        return int(await conn.fetchval("SELECT count(*) FROM result_publications"))
    finally:
        await conn.close()


async def check_lines(conn: asyncpg.Connection) -> None:
    """The generated csv_line equals what the publication step would store."""
    from qsampling.disclosure.formats import csv_line
    from qsampling.disclosure.service import CONCLUSION_ZH

    rows = await conn.fetch(
        "SELECT id, uscc, enterprise_name, entity_type, region_code, region_name, "
        "check_item_code, check_item_name, inspected_on, conclusion, result_codes, "
        "category_codes, products_text, failed_items_text, inspector_names, published_at, "
        "csv_line FROM result_publications TABLESAMPLE SYSTEM (1) LIMIT 2000"
    )
    for r in rows:
        expect = csv_line(
            [
                r["id"],
                r["uscc"],
                r["enterprise_name"],
                r["entity_type"],
                r["region_code"],
                r["region_name"],
                r["check_item_code"],
                r["check_item_name"],
                r["inspected_on"],
                r["conclusion"],
                CONCLUSION_ZH[r["conclusion"]],
                list(r["result_codes"]),
                list(r["category_codes"]),
                r["products_text"],
                r["failed_items_text"],
                list(r["inspector_names"]),
                r["published_at"],
            ]
        )
        if expect != r["csv_line"]:
            raise SystemExit(f"generated line differs:\n{r['csv_line']}\n{expect}")


COLUMNWISE_SQL = """
SELECT p.id, p.uscc, p.enterprise_name, p.entity_type, p.region_code, p.region_name,
       p.check_item_code, p.check_item_name, p.inspected_on, p.conclusion,
       CASE p.conclusion WHEN 'pass' THEN '未发现不合格' WHEN 'fail' THEN '不合格'
            ELSE '未检验' END, array_to_string(p.result_codes, ';'),
       array_to_string(p.category_codes, ';'), p.products_text, p.failed_items_text,
       array_to_string(p.inspector_names, ';'),
       to_char(p.published_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
FROM result_publications p WHERE p.published_at IS NOT NULL ORDER BY p.id
"""


async def baseline(url: str, out: Path, *, columnwise: bool = False) -> float:
    """COPY of the same rows straight to a file: the stored lines (the same bytes as the
    export, without BOM and header), or with ``columnwise`` PostgreSQL formatting every
    column of the row itself."""
    from qsampling.disclosure.exports import results_sql
    from qsampling.disclosure.service import ResultFilters

    sql, args = results_sql(ResultFilters(), for_copy=True)
    conn = await asyncpg.connect(**_conn_args(url, DB))  # type: ignore[arg-type]
    try:
        t0 = time.perf_counter()
        with open(out, "wb") as fh:

            async def write(chunk: bytes) -> None:
                fh.write(chunk)

            if columnwise:
                await conn.copy_from_query(COLUMNWISE_SQL, output=write, format="csv", header=True)
            else:
                await conn.copy_from_query(
                    sql, *args, output=write, format="csv", delimiter="\x1f", quote="\x1e"
                )
        return time.perf_counter() - t0
    finally:
        await conn.close()


CHILD_CPU = 0.0
CHILD = """
import asyncio, sys, time
from pathlib import Path
from qsampling.config import load_settings
from qsampling.db import create_engine, make_sessionmaker
from qsampling.disclosure.exports import ExportParams, export_to_dir

async def main():
    s = load_settings()
    eng = create_engine(s.database_url, pool_size=1, max_overflow=0)
    async with make_sessionmaker(eng)() as session:
        t0 = time.perf_counter()
        path, m = await export_to_dir(session, dataset="results", fmt="csv",
                                      params=ExportParams(), out_dir=Path(sys.argv[1]),
                                      seed=s.signing_seed)
        print(time.perf_counter() - t0, m.row_count)
    await eng.dispose()

asyncio.run(main())
"""


def real_export(url: str, out_dir: Path) -> tuple[float, float, int, int]:
    """``export_to_dir`` (what ``qsampling export`` runs) in a child process: the time of
    the export itself, the wall time of the whole process, its peak RSS and row count."""
    db_url = make_url(url).set(database=DB).render_as_string(hide_password=False)
    env = {**os.environ, "QSAMPLING_DATABASE_URL": db_url, "QSAMPLING_ENV": "development"}
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", CHILD, str(out_dir)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"export failed: {res.stdout} {res.stderr}")
    elapsed, rows = res.stdout.split()
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kb = ru.ru_maxrss
    global CHILD_CPU
    CHILD_CPU = ru.ru_utime + ru.ru_stime
    ver = subprocess.run(
        [str(ROOT / ".venv/bin/qsampling"), "verify-export", str(out_dir)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if ver.returncode != 0:
        raise SystemExit(f"verify-export failed: {ver.stdout} {ver.stderr}")
    return float(elapsed), wall, peak_kb, int(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    ap.add_argument(
        "--reuse", action="store_true", help="reuse a kept scratch database of --rows rows"
    )
    args = ap.parse_args()
    url = resolve_database_url(Settings())
    if args.reuse and asyncio.run(_count(url)) == args.rows:
        print(f"reusing {args.rows:,} rows in {DB}", file=sys.stderr)
    else:
        print(f"preparing {args.rows:,} published results in {DB} …", file=sys.stderr)
        asyncio.run(prepare(url, args.rows))
    try:
        with tempfile.TemporaryDirectory(prefix="qs-bench-export-") as tmp:
            tmpd = Path(tmp)
            t_copy = asyncio.run(baseline(url, tmpd / "copy.csv"))
            copy_bytes = (tmpd / "copy.csv").stat().st_size
            (tmpd / "copy.csv").unlink()
            t_cols = asyncio.run(baseline(url, tmpd / "cols.csv", columnwise=True))
            cols_bytes = (tmpd / "cols.csv").stat().st_size
            (tmpd / "cols.csv").unlink()
            t_real, wall, peak_kb, exported = real_export(url, tmpd / "out")
            real_bytes = (tmpd / "out" / "results.csv").stat().st_size
    finally:
        if not args.keep:

            async def _drop() -> None:
                admin = await asyncpg.connect(**_conn_args(url, "postgres"))  # type: ignore[arg-type]
                try:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{DB}"')
                finally:
                    await admin.close()

            asyncio.run(_drop())
    n = args.rows
    copy_rate = n / t_copy
    real_rate = n / t_real
    assert exported == n, (exported, n)
    print(f"rows                       {n:,}")
    print(f"load average (1 min)       {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(
        f"COPY TO STDOUT baseline   {t_copy:7.2f} s  {copy_rate:12,.0f} rows/s  "
        f"{copy_bytes / 1e6:8.1f} MB  (the stored lines)"
    )
    print(
        f"COPY, PostgreSQL formats  {t_cols:7.2f} s  {n / t_cols:12,.0f} rows/s  "
        f"{cols_bytes / 1e6:8.1f} MB  (every column formatted per row; reference)"
    )
    print(
        f"export path                {t_real:7.2f} s  {real_rate:12,.0f} rows/s  "
        f"{real_bytes / 1e6:8.1f} MB  (export_to_dir: BOM, SHA-256, fsync, signed manifest)"
    )
    print(f"  whole child process       {wall:7.2f} s  (interpreter start and imports included)")
    print(f"  child CPU time            {CHILD_CPU:7.2f} s  (user + system, the Python side)")
    print(f"peak RSS of the export     {peak_kb / 1024:7.1f} MB   (target < 300 MB)")
    print(f"ratio export / COPY        {real_rate / copy_rate:7.2f}     (aim >= 0.4)")
    print(f"target 200,000 rows/s     {'met' if real_rate >= 200_000 else 'NOT met'}")
    bench_rows = [
        {
            "figure": "export results as CSV",
            "value": real_rate,
            "unit": "rows/s",
            "baseline": copy_rate,
            "ratio": real_rate / copy_rate,
            "target": "≥ 200,000 rows/s; ratio ≥ 0.4 (aim)",
            "met": real_rate >= 200_000,
        },
        {
            "figure": "export peak memory",
            "value": peak_kb / 1024,
            "unit": "MB",
            "target": "< 300 MB",
            "met": peak_kb / 1024 < 300,
        },
    ]
    print("BENCH-JSON " + json.dumps(bench_rows, ensure_ascii=False))


if __name__ == "__main__":
    main()
