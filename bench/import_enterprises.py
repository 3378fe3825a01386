"""Enterprise bulk import (issue 3): a million-row CSV through the real import path.

Builds a CSV of ``--rows`` synthetic Fujian enterprises (valid 统一社会信用代码 with correct
check characters, generated with NumPy; 0.1 % of the rows carry a wrong check character and
0.05 % repeat an earlier code, so the rejection path is exercised), then measures on one
fresh database:

- baseline: a raw ``COPY … FROM STDIN (FORMAT csv)`` of the same file into an unindexed table
  of text columns;
- import: ``qsampling import enterprises FILE`` in a child process, end to end (process start,
  sniffing, parsing, validation, COPY into a staging table, merge into ``enterprises`` with
  all its indexes and constraints, the report, commit); its peak memory (max RSS);
- re-import of the same file (nothing changes: 0 inserted, 0 updated);
- validation alone (read + validate in this process, no database), to show where time goes.

Targets: ≥ 100,000 rows/s end to end; peak memory < 1 GB; aim for import/COPY ≥ 0.3.

The database ``qs_bench_import`` is created (and dropped unless ``--keep``) on the server of
``QSAMPLING_BENCH_DATABASE_URL`` (an asyncpg URL), else on the embedded server.
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
import threading
import time
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from sqlalchemy.engine import make_url

from qsampling.config import Settings
from qsampling.core.uscc import ALPHABET, ORG_WEIGHTS, WEIGHTS, validate_many
from qsampling.db import upgrade

HEADER = (
    "uscc,name,entity_type,region_code,address,supervising_unit,category_codes,size,channel,"
    "status,registration_date"
)
DB = "qs_bench_import"


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
    )


async def recreate(url: str, name: str, drop_only: bool = False) -> None:
    conn = await connect(with_db(url, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def in_thread(fn: Any) -> None:
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


# --- data ------------------------------------------------------------------------------------


def _uscc(region: np.ndarray, body_int: np.ndarray, org_type: np.ndarray) -> np.ndarray:
    """Valid codes, vectorised: 9 + type + region + 8-digit body + GB 11714 + GB 32100 checks."""
    n = body_int.shape[0]
    chars = np.zeros((n, 18), dtype=np.uint8)  # values in ALPHABET order
    chars[:, 0] = 9
    chars[:, 1] = org_type
    for k in range(6):
        chars[:, 2 + k] = (region // 10 ** (5 - k)) % 10
    for k in range(8):
        chars[:, 8 + k] = (body_int // 10 ** (7 - k)) % 10
    org = sum(chars[:, 8 + k].astype(np.int64) * ORG_WEIGHTS[k] for k in range(8))
    c9 = (11 - org % 11) % 11  # 10 → X
    chars[:, 16] = np.where(c9 == 10, ALPHABET.index("X"), c9)
    total = sum(chars[:, k].astype(np.int64) * WEIGHTS[k] for k in range(17))
    chars[:, 17] = (31 - total % 31) % 31
    lut = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)
    return lut[chars].view("S18").ravel()


def build_csv(path: Path, rows: int, counties: list[str], units: dict[str, str]) -> dict[str, int]:
    rng = np.random.default_rng(20261122)
    cities = {
        "3501": "福州",
        "3502": "厦门",
        "3503": "莆田",
        "3504": "三明",
        "3505": "泉州",
        "3506": "漳州",
        "3507": "南平",
        "3508": "龙岩",
        "3509": "宁德",
    }
    brands = list("恒鑫华盛泰兴达宏源嘉瑞福安信德利通祥丰鸿晟凯宇美佳新正力海闽")
    words = ["童车", "玩具", "电器", "服饰", "鞋业", "建材", "电缆", "化工", "包装", "五金"]
    cats = [
        "03.01.01",
        "03.02.01",
        "02.01.02",
        "01.02.02",
        "05.02.01",
        "09.01.01",
        "07.01.03",
        "04.01.01",
        "08.01.01",
        "01.01.01",
    ]
    roads = ["五四路", "工业路", "湖东路", "江滨大道", "华林路", "东大路", "人民路", "建设路"]
    sizes = np.array(["large", "medium", "small", "micro"])
    channels = np.array(["production", "circulation", "e-commerce"])
    county_arr = np.array(counties)
    bad = dups = 0
    prev = np.array([], dtype="U18")
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(HEADER + "\n")
        step = 100_000
        a = 48_271 * 4_096 + 1  # odd, not a multiple of 5: i → a·i mod 10^8 is a bijection
        for start in range(0, rows, step):
            n = min(step, rows - start)
            idx = np.arange(start, start + n, dtype=np.int64)
            ci = rng.integers(0, len(counties), n)
            region = county_arr[ci].astype(np.int64)
            org_type = rng.choice([1, 2, 3], n, p=[0.7, 0.25, 0.05])
            codes = _uscc(region, (idx * a + 12_345) % 10**8, org_type).astype(str)
            wrong = rng.random(n) < 0.001  # a wrong check character
            for i in np.flatnonzero(wrong).tolist():
                c = codes[i]
                codes[i] = c[:17] + ("0" if c[17] != "0" else "1")
            bad += int(wrong.sum())
            if prev.size:
                rep = np.flatnonzero(rng.random(n) < 0.0005)[: prev.size]  # an earlier code
                codes[rep] = prev[: rep.size]
                dups += int(rep.size)
            prev = codes[~wrong][:1000]
            b1 = rng.integers(0, len(brands), n)
            b2 = rng.integers(0, len(brands), n)
            w = rng.integers(0, len(words), n)
            c1 = rng.integers(0, len(cats), n)
            c2 = rng.integers(0, len(cats), n)
            two = rng.random(n) < 0.3
            rd = rng.integers(0, len(roads), n)
            num = rng.integers(1, 400, n)
            sz = sizes[rng.choice(4, n, p=[0.03, 0.12, 0.45, 0.40])]
            ch = channels[rng.choice(3, n, p=[0.45, 0.4, 0.15])]
            days = rng.integers(0, 30 * 365, n)
            dates = (np.datetime64("1996-01-01") + days).astype(str)
            regs = county_arr[ci]
            lines = []
            for i in range(n):
                r = regs[i]
                city = cities[r[:4]]
                name = f"{city}{brands[b1[i]]}{brands[b2[i]]}{words[w[i]]}{start + i}有限公司"
                cat = cats[c1[i]] + (";" + cats[c2[i]] if two[i] and c1[i] != c2[i] else "")
                lines.append(
                    f"{codes[i]},{name},企业,{r},福建省{city}市{roads[rd[i]]}{num[i]}号,"
                    f"{units[r]},{cat},{sz[i]},{ch[i]},存续,{dates[i]}"
                )
            fh.write("\n".join(lines))
            fh.write("\n")
    return {"invalid": bad, "duplicates": dups}


# --- measurements ----------------------------------------------------------------------------


async def prepare(url: str) -> tuple[list[str], dict[str, str]]:
    """Reference data (regions, categories) and one unit per Fujian county."""
    from qsampling.context import Actor
    from qsampling.db import create_engine, make_sessionmaker, transaction
    from qsampling.directory.reference import load_reference

    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with transaction(make_sessionmaker(engine)) as s:
            await load_reference(s, actor=Actor("bench", "admin"))
    finally:
        await engine.dispose()
    conn = await connect(url)
    try:
        counties = [
            r[0]
            for r in await conn.fetch(
                "SELECT code FROM regions WHERE level = 'county' AND code LIKE '35%' ORDER BY 1"
            )
        ]
        units = {c: f"FJ-{c}-S01" for c in counties}
        await conn.executemany(
            "INSERT INTO units (code, name, region_code) VALUES ($1, $2, $3)",
            [(u, f"{c} 市场监管所", c) for c, u in units.items()],
        )
    finally:
        await conn.close()
    return counties, units


async def raw_copy(url: str, path: Path) -> float:
    conn = await connect(url)
    try:
        cols = ", ".join(f"{c} text" for c in HEADER.split(","))
        await conn.execute(f"DROP TABLE IF EXISTS raw_copy; CREATE TABLE raw_copy ({cols})")
        await conn.execute("CHECKPOINT")
        t0 = time.perf_counter()
        await conn.copy_to_table("raw_copy", source=str(path), format="csv", header=True)
        elapsed = time.perf_counter() - t0
        await conn.execute("DROP TABLE raw_copy")
        await conn.execute("CHECKPOINT")
        return elapsed
    finally:
        await conn.close()


def cli_import(url: str, path: Path) -> tuple[float, str]:
    env = dict(os.environ, QSAMPLING_DATABASE_URL=url, COLUMNS="200")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from qsampling.cli import main; main()",
            "import",
            "enterprises",
            str(path),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"import failed: {proc.stderr.strip()[-2000:]}")
    return elapsed, proc.stdout.strip()


def validate_only(path: Path) -> float:
    """Sniff, read and validate as the importer does (whole columns for a regular CSV, rows
    otherwise), without a database."""
    import gc

    from qsampling.directory.files import map_header, open_table, read_columns, sniff
    from qsampling.directory.importer import (
        ENTERPRISE_ALIASES,
        ENTERPRISE_REQUIRED,
        EnterpriseValidator,
    )

    gc.disable()  # as the importer does
    t0 = time.perf_counter()
    with path.open("rb") as fh:
        sniffed = sniff(fh)
        table = open_table(fh, sniffed)
        cols = map_header(
            table.header,
            aliases=ENTERPRISE_ALIASES,
            required=ENTERPRISE_REQUIRED,
            what="enterprises",
        )
        regions = {f"35{i:04d}" for i in range(10000)}
        units = {f"FJ-{r}-S01" for r in regions}
        v = EnterpriseValidator(
            cols,
            len(table.header),
            regions=regions,
            units=units,
            categories=set(HEADER.split(","))
            | {
                "03.01.01",
                "03.02.01",
                "02.01.02",
                "01.02.02",
                "05.02.01",
                "09.01.01",
                "07.01.03",
                "04.01.01",
                "08.01.01",
                "01.01.01",
            },
        )
        columns = read_columns(fh, sniffed, len(table.header), table.header_number)
        if columns is not None:
            v.validate_table(columns, table.header_number + 1)
        else:
            table = open_table(fh, sniffed)
            for numbers, rows in table.chunks():
                v.validate(numbers, rows)
    elapsed = time.perf_counter() - t0
    gc.enable()
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--keep", action="store_true", help="keep the database and the CSV")
    args = ap.parse_args()
    server = server_url()
    url = with_db(server, DB)
    tmp = Path(tempfile.mkdtemp(prefix="qs_bench_import_"))
    path = tmp / "enterprises.csv"
    asyncio.run(recreate(server, DB))
    rows: list[dict[str, Any]] = []
    try:
        in_thread(lambda: upgrade(url))
        counties, units = asyncio.run(prepare(url))
        t0 = time.perf_counter()
        injected = build_csv(path, args.rows, counties, units)
        size_mb = path.stat().st_size / 1e6
        print(
            f"built {path} ({args.rows:,} rows, {size_mb:.0f} MB) in "
            f"{time.perf_counter() - t0:.1f}s; injected {injected}",
            flush=True,
        )

        # sanity: the generator's codes are valid where intended
        sample = np.array(
            [
                line.split(",", 1)[0]
                for line in path.read_text(encoding="utf-8").splitlines()[1:2001]
            ]
        )
        print(f"sample validity: {validate_many(sample).mean():.4f}", flush=True)

        copy_s = asyncio.run(raw_copy(url, path))
        print(
            f"raw COPY into an unindexed table: {copy_s:.2f}s ({args.rows / copy_s:,.0f} rows/s)",
            flush=True,
        )
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        import_s, summary = cli_import(url, path)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(
            f"import: {import_s:.2f}s ({args.rows / import_s:,.0f} rows/s), peak RSS "
            f"{peak_mb:.0f} MB (before {before / 1024:.0f}); {summary}",
            flush=True,
        )
        again_s, summary2 = cli_import(url, path)
        print(
            f"re-import: {again_s:.2f}s ({args.rows / again_s:,.0f} rows/s); {summary2}", flush=True
        )
        val_s = validate_only(path)
        print(
            f"read + validate only (no database): {val_s:.2f}s ({args.rows / val_s:,.0f} rows/s)",
            flush=True,
        )

        rate = args.rows / import_s
        ratio = copy_s / import_s
        rows = [
            {
                "figure": "import end to end",
                "value": rate,
                "unit": "rows/s",
                "baseline": args.rows / copy_s,
                "ratio": ratio,
                "target": "≥ 100,000 rows/s; ratio ≥ 0.3 (aim)",
                "met": rate >= 100_000,
            },
            {
                "figure": "import peak memory",
                "value": peak_mb,
                "unit": "MB",
                "target": "< 1024 MB",
                "met": peak_mb < 1024,
            },
            {
                "figure": "re-import (unchanged)",
                "value": args.rows / again_s,
                "unit": "rows/s",
                "baseline": args.rows / copy_s,
                "ratio": copy_s / again_s,
            },
            {"figure": "read + validate only", "value": args.rows / val_s, "unit": "rows/s"},
        ]
    finally:
        if not args.keep:
            asyncio.run(recreate(server, DB, drop_only=True))
            path.unlink(missing_ok=True)
            tmp.rmdir()
    print("BENCH-JSON " + json.dumps(rows, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
