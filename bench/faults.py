"""Fault drills (issue 9): the service under a stream of writes while things break.

On a private embedded PostgreSQL in a temporary directory (never the shared dev or test
server: it is stopped here), with ``uvicorn qsampling.asgi:app --workers 2`` on 127.0.0.1
as a subprocess and a deliberately small connection pool (``--pool-size`` +
``--pool-overflow`` per worker):

- a steady stream: inspectors submit results for their own tasks, each request with an
  ``Idempotency-Key``; a 503 or no answer is retried with the same key (like the phone app);
  a supervisor creates, commits and draws plans back to back;
1. **pool exhaustion**: ``--burst`` concurrent requests (task lists, statistics, audit) on
   top of the stream — each must succeed or answer 503 ``DatabaseUnavailable``, never 500;
2. **worker killed**: SIGKILL of one uvicorn worker mid-stream; the master must start a new
   one and the stream must go on;
3. **database restart**: ``pg_ctl stop -m fast`` (sessions cut mid-transaction), down for
   ``--down`` seconds, started again; the API is never restarted;
4. **disk full**: ``qsampling export results --out DIR`` with DIR on a full filesystem (a
   tiny tmpfs filled to the last byte; ``/dev/full`` behind the partial file when mounting
   is not allowed): one-line error, non-zero exit, no file left behind.

Afterwards: every acknowledged (2xx) submission is stored exactly once and nothing
unacknowledged is stored; no half-drawn plan (a drawn plan has its draw, tasks and two
inspectors per task; any other plan has none); ``qsampling audit verify`` passes;
``/readyz`` answers 200 without a restart. Prints ``PASS``/``FAIL`` per check and a
``BENCH-JSON`` line; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import results_api as ra  # noqa: E402  (seeding and server helpers of the results bench)

QS = [str(Path(sys.executable).with_name("qsampling"))]


@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    acked: dict[int, int] = field(default_factory=dict)  # task → result id
    final_errors: dict[str, str] = field(default_factory=dict)
    phase: str = "warm-up"
    ok_in_phase: Counter[str] = field(default_factory=Counter)
    plans: Counter[str] = field(default_factory=Counter)

    def answer(self, what: str, r: httpx.Response | None, exc: Exception | None = None) -> None:
        key = f"{what} {r.status_code}" if r is not None else f"{what} no answer"
        self.statuses[key] += 1
        if r is not None and r.status_code // 100 == 2:
            self.ok_in_phase[self.phase] += 1


# --- load ---------------------------------------------------------------------------------------


async def inspector(
    base: str, token: str, tasks: list[int], bodies: dict[int, bytes], stop: asyncio.Event, t: Tally
) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=base, timeout=20, headers=headers) as c:
        for tid in tasks:
            if stop.is_set():
                return
            while True:
                try:
                    r = await c.post(
                        f"/api/v1/tasks/{tid}/result",
                        content=bodies[tid],
                        headers={"Idempotency-Key": f"drill-{tid}"},
                    )
                except httpx.HTTPError:
                    t.answer("submit", None)
                    if stop.is_set():  # the server is gone for good: give up, unacknowledged
                        return
                    await asyncio.sleep(0.2)
                    continue
                t.answer("submit", r)
                if r.status_code == 503:
                    await asyncio.sleep(0.2)
                    continue
                if r.status_code // 100 == 2:
                    t.acked[tid] = int(r.json()["result_id"])
                else:
                    t.final_errors[f"task {tid}"] = f"{r.status_code} {r.text[:160]}"
                break


async def _until_answered(
    c: httpx.AsyncClient,
    t: Tally,
    what: str,
    method: str,
    url: str,
    body: Any,
    stop: asyncio.Event,
) -> httpx.Response:
    while True:
        try:
            r = await c.request(method, url, json=body)
        except httpx.HTTPError:
            t.answer(what, None)
            if stop.is_set():
                raise
            await asyncio.sleep(0.3)
            continue
        t.answer(what, r)
        if r.status_code == 503:
            await asyncio.sleep(0.3)
            continue
        return r


async def supervisor(base: str, token: str, stop: asyncio.Event, t: Tally) -> None:
    """Create → commit → draw, again and again; a retried draw may find the plan drawn."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, timeout=30, headers=headers) as c:
        n = 0
        while not stop.is_set():
            n += 1
            plan = {
                "name": f"故障演练计划 {n}",
                "check_item_code": ra.CHECK_ITEM,
                "exclusion_days": 0,
                "quotas": {"3501": 3, "3502": 2},
                "strata_fields": ["region"],
                "entropy_source": "dice rolled before witnesses 张三, 李四",
            }
            r = await _until_answered(c, t, "plan create", "POST", "/api/v1/plans", plan, stop)
            if r.status_code != 201:
                t.final_errors[f"plan create {n}"] = f"{r.status_code} {r.text[:200]}"
                await asyncio.sleep(1)
                continue
            pid = r.json()["id"]
            r = await _until_answered(
                c, t, "plan commit", "POST", f"/api/v1/plans/{pid}/commit", {}, stop
            )
            if r.status_code // 100 != 2 and r.status_code != 409:
                t.final_errors[f"plan commit {pid}"] = f"{r.status_code} {r.text[:200]}"
                continue
            entropy = {"entropy": f"{random.randrange(10**30):030d}", "entropy_source": "dice"}
            r = await _until_answered(
                c, t, "plan draw", "POST", f"/api/v1/plans/{pid}/draw", entropy, stop
            )
            if r.status_code // 100 == 2:
                t.plans["drawn"] += 1
            elif r.status_code == 409:
                t.plans["409 on draw (retried after a lost answer)"] += 1
            else:
                t.final_errors[f"plan draw {pid}"] = f"{r.status_code} {r.text[:200]}"
            await asyncio.sleep(0.2)


async def burst(base: str, token: str, n: int, t: Tally) -> Counter[str]:
    """Far more concurrent requests than the pools hold."""
    seen: Counter[str] = Counter()
    paths = [
        "/api/v1/tasks?limit=500",
        "/api/v1/stats/pass-rates",
        # (a trend over a database with no final results is a 422 NotEnoughPeriods: a clear
        # answer, but not what this drill measures)
        "/api/v1/stats/pass-rates?group_by=region:city&group_by=size",
        "/api/v1/plans?limit=100",
    ]
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(
        base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"}, limits=limits
    ) as c:

        async def one(i: int) -> None:
            try:
                r = await c.get(paths[i % len(paths)])
            except httpx.HTTPError as exc:
                seen[f"no answer ({type(exc).__name__})"] += 1
                return
            seen[str(r.status_code)] += 1
            if r.status_code == 503:
                assert r.json()["error"] == "DatabaseUnavailable", r.text

        await asyncio.gather(*(one(i) for i in range(n)))
    for k, v in seen.items():
        t.statuses[f"burst {k}"] += v
    return seen


# --- processes ----------------------------------------------------------------------------------


def workers_of(master: int) -> list[int]:
    """uvicorn worker processes: children of the master started by multiprocessing."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmd = (d / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == master and b"resource_tracker" not in cmd:
            out.append(int(d.name))
    return sorted(out)


def disk_full_export(url: str) -> dict[str, Any]:
    """`qsampling export` onto a full filesystem: one line, non-zero exit, nothing left."""
    base = Path(tempfile.mkdtemp(prefix="qs_full_"))
    mnt = base / "full"
    mnt.mkdir()
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
            capture_output=True,
        ).returncode
        == 0
    )
    out_dir = mnt / "export"
    how = "tmpfs filled to the last byte" if mounted else "/dev/full behind the partial file"
    try:
        out_dir.mkdir()
        if mounted:
            with contextlib.suppress(OSError), open(mnt / "filler", "wb") as fh:
                while True:
                    fh.write(b"\0" * 4096)
                    fh.flush()
        else:
            os.symlink("/dev/full", out_dir / ".results.csv.partial")
        env = {**os.environ, "QSAMPLING_DATABASE_URL": url, "QSAMPLING_ENV": "development"}
        p = subprocess.run(
            [*QS, "export", "results", "--out", str(out_dir)],
            capture_output=True,
            text=True,
            env=env,
            cwd=ra.REPO,
            timeout=120,
        )
        left = sorted(x.name for x in out_dir.iterdir())
        lines = [x for x in (p.stderr + p.stdout).strip().splitlines() if x.strip()]
        return {
            "how": how,
            "exit": p.returncode,
            "message": lines,
            "left_behind": left,
            "ok": p.returncode != 0
            and len(lines) == 1
            and not left
            and "Traceback" not in p.stderr,
        }
    finally:
        if mounted:
            subprocess.run(["umount", str(mnt)], capture_output=True)
        subprocess.run(["rm", "-rf", str(base)], capture_output=True)


def audit_verify(url: str) -> tuple[bool, str]:
    env = {**os.environ, "QSAMPLING_DATABASE_URL": url, "QSAMPLING_ENV": "development"}
    p = subprocess.run(
        [*QS, "audit", "verify"], capture_output=True, text=True, env=env, cwd=ra.REPO, timeout=300
    )
    return p.returncode == 0, (p.stdout + p.stderr).strip()[-300:]


async def consistency(url: str, acked: dict[int, int]) -> dict[str, Any]:
    conn = await ra.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT task_id, count(*) AS n, min(id) AS id FROM results GROUP BY task_id"
        )
        half = await conn.fetch(
            """
            SELECT p.id, p.status,
                   (SELECT count(*) FROM draws d WHERE d.plan_id = p.id) AS draws,
                   (SELECT count(*) FROM tasks t WHERE t.plan_id = p.id) AS tasks,
                   (SELECT count(*) FROM tasks t WHERE t.plan_id = p.id AND
                      (SELECT count(*) FROM task_inspectors ti WHERE ti.task_id = t.id) < 2)
                     AS short_teams
            FROM plans p
            """
        )
    finally:
        await conn.close()
    in_db = {r["task_id"]: (r["n"], r["id"]) for r in rows}
    bad_plans = []
    drawn = 0
    for p in half:
        if p["status"] == "drawn":
            drawn += 1
            if p["draws"] != 1 or p["tasks"] == 0 or p["short_teams"]:
                bad_plans.append(dict(p))
        elif p["draws"] or p["tasks"]:
            bad_plans.append(dict(p))
    return {
        "missing": [t for t in acked if t not in in_db],
        "twice": [t for t, (n, _) in in_db.items() if n > 1],
        "wrong_id": [t for t, rid in acked.items() if t in in_db and in_db[t][1] != rid],
        "unacked": [t for t in in_db if t not in acked],
        "plans": len(half),
        "drawn_plans": drawn,
        "half_drawn": bad_plans[:5],
        "in_db": len(in_db),
    }


# --- the drill ----------------------------------------------------------------------------------


async def drill(args: argparse.Namespace) -> dict[str, Any]:
    pg = ra.PrivateServer()
    proc = None
    report: dict[str, Any] = {}
    checks: dict[str, bool] = {}
    try:
        url = ra.with_db(pg.url, "qsampling")
        await ra.recreate(pg.url, "qsampling")
        ra.in_thread(lambda: ra.upgrade(url))
        rng = random.Random(args.seed)
        n_tasks = args.inspectors * args.tasks_per_inspector
        seeded = await ra.seed(url, inspectors=args.inspectors, pools={"api": n_tasks}, rng=rng)
        bodies = {t: json.dumps(ra.result_body(rng, t)).encode() for t in seeded.pools["api"]}
        per: dict[int, list[int]] = {i: [] for i in range(args.inspectors)}
        for tid in seeded.pools["api"]:
            per[seeded.owner[tid]].append(tid)

        os.environ["QSAMPLING_POOL_SIZE"] = str(args.pool_size)
        os.environ["QSAMPLING_POOL_MAX_OVERFLOW"] = str(args.pool_overflow)
        os.environ["QSAMPLING_AUDIT_SEAL_INTERVAL_SECONDS"] = "1"
        port = ra.free_port()
        base = f"http://127.0.0.1:{port}"
        proc = ra.start_server(url, port, 2)
        await ra.wait_ready(base, proc)
        master = proc.pid

        t = Tally()
        stop = asyncio.Event()
        stream = [
            asyncio.create_task(
                inspector(base, seeded.inspector_tokens[i], per[i], bodies, stop, t)
            )
            for i in range(args.inspectors)
        ]
        stream.append(asyncio.create_task(supervisor(base, seeded.lab_token, stop, t)))
        await asyncio.sleep(args.warmup)

        # 1. pool exhaustion
        t.phase = "burst"
        seen = await burst(base, seeded.lab_token, args.burst, t)
        report["burst"] = dict(seen)
        checks["pool exhausted: every burst answer 2xx or 503, none 500"] = set(seen) <= {
            "200",
            "503",
        }
        async with httpx.AsyncClient(base_url=base, timeout=10) as c:
            checks["pool exhausted: /readyz 200 right after the burst"] = (
                await c.get("/readyz")
            ).status_code == 200

        # 2. a worker killed mid-request
        t.phase = "worker killed"
        before = workers_of(master)
        victim = before[0] if before else None
        replaced = False
        if victim is not None:
            os.kill(victim, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                now = workers_of(master)
                if victim not in now and len(now) >= len(before):
                    replaced = True
                    break
                await asyncio.sleep(0.2)
        report["workers"] = {"before": before, "killed": victim, "after": workers_of(master)}
        ok_at_kill = t.ok_in_phase["worker killed"]
        await asyncio.sleep(args.between)
        checks["worker killed: the master started a new one"] = replaced
        checks["worker killed: submissions go on"] = t.ok_in_phase["worker killed"] > ok_at_kill

        # 3. the database stopped and started again
        t.phase = "database down"
        t_stop = time.monotonic()
        await asyncio.to_thread(pg.stop)
        await asyncio.sleep(args.down)
        await asyncio.to_thread(pg.start)
        report["down_seconds"] = round(time.monotonic() - t_stop, 1)
        t.phase = "after restart"
        await asyncio.sleep(args.after)
        stop.set()
        await asyncio.gather(*stream, return_exceptions=True)
        checks["database restart: 2xx again afterwards, API not restarted"] = (
            t.ok_in_phase["after restart"] > 0 and proc.poll() is None
        )
        async with httpx.AsyncClient(base_url=base, timeout=10) as c:
            ready = (await c.get("/readyz")).status_code
        checks["service healthy afterwards (/readyz 200, no restart)"] = (
            ready == 200 and proc.poll() is None
        )
        await asyncio.sleep(1.5)  # let the sealer chain the last entries
    finally:
        if proc is not None:
            ra.stop_server(proc)

    try:
        # 4. disk full
        df = await asyncio.to_thread(disk_full_export, url)
        report["disk_full"] = df
        checks["disk full: export fails with one line, no partial file"] = bool(df["ok"])
        ok, msg = await asyncio.to_thread(audit_verify, url)
        report["audit_verify"] = msg
        checks["audit chain verifies"] = ok
        cons = await consistency(url, t.acked)
    finally:
        pg.destroy()
    report["consistency"] = cons
    report["statuses"] = dict(sorted(t.statuses.items()))
    report["final_errors"] = dict(list(t.final_errors.items())[:8])
    report["plans"] = dict(t.plans)
    report["acknowledged"] = len(t.acked)
    checks["no 500 anywhere"] = not any(k.endswith(" 500") for k in t.statuses)
    checks["every 2xx submission stored exactly once"] = not (
        cons["missing"] or cons["twice"] or cons["wrong_id"]
    )
    checks["nothing stored that was not acknowledged"] = not cons["unacked"]
    checks["no half-drawn plan"] = not cons["half_drawn"] and cons["drawn_plans"] > 0
    checks["no other final error"] = not t.final_errors
    report["checks"] = checks
    return report


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--inspectors", type=int, default=12)
    ap.add_argument("--tasks-per-inspector", type=int, default=400)
    ap.add_argument("--pool-size", type=int, default=3, help="per worker")
    ap.add_argument("--pool-overflow", type=int, default=2, help="per worker")
    ap.add_argument("--burst", type=int, default=300, help="concurrent requests in the burst")
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--between", type=float, default=4, help="seconds after the worker kill")
    ap.add_argument("--down", type=float, default=5, help="seconds the database stays down")
    ap.add_argument("--after", type=float, default=5, help="seconds of stream after the restart")
    ap.add_argument("--seed", type=int, default=9)
    args = ap.parse_args()
    out = asyncio.run(drill(args))
    print(f"answers: {out['statuses']}")
    print(f"burst: {out['burst']}; workers: {out['workers']}; db down {out['down_seconds']} s")
    print(f"plans: {out['plans']}; acknowledged submissions: {out['acknowledged']}")
    print(f"consistency: {out['consistency']}")
    print(f"disk full: {out['disk_full']}")
    print(f"audit verify: {out['audit_verify']}")
    if out["final_errors"]:
        print(f"other final errors: {out['final_errors']}")
    for name, ok in out["checks"].items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    rows = [
        {
            "figure": f"fault drill: {k}",
            "value": "pass" if v else "FAIL",
            "unit": "",
            "baseline": None,
            "ratio": None,
            "target": "pass",
            "met": v,
        }
        for k, v in out["checks"].items()
    ]
    print("BENCH-JSON " + json.dumps(rows, ensure_ascii=False))
    return 0 if all(out["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
