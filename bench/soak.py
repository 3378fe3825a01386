"""Mixed-load soak (issue 9): a busy day compressed into ``--seconds`` (default 300).

On a private embedded PostgreSQL in a temporary directory (or ``--database-url``, whose
database ``qsampling_soak`` is recreated), migrated and seeded with the results bench's
generator (regions, a check item, enterprises, a drawn plan with tasks, inspectors and
their tokens — COPY, seconds instead of the demo's minute), with ``uvicorn
qsampling.asgi:app`` (``--workers``, 127.0.0.1, a free port) as a subprocess, these run at
the same time until the time is up:

- ``--inspectors`` inspectors submitting results for their own tasks (Idempotency-Key);
- ``--public`` visitors reading the portal and the open-data API;
- ``--analysts`` analysts querying statistics;
- one supervisor creating, committing and drawing plans.

Before the clock starts, ``--final-results`` (default 200,000) final results over two years
are generated with bench/stats.py's generator, so that statistics and the public pass
rates read real rows.

Everyone pauses between requests (``--think``, mean 0.5 s; analysts twice that), as people
do: the soak measures a busy day, not saturation (``--think 0`` gives that, where latency is
queueing). Reports throughput and p50/p95/p99 per kind of request and per read path, and every
non-2xx answer. Targets:
no 5xx, p99 under 300 ms for reads. The public rate limit is raised for the run (all
visitors share 127.0.0.1). Prints a ``BENCH-JSON`` line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import results_api as ra  # noqa: E402

import stats as st  # noqa: E402

READ_KINDS = ("public portal", "public API", "statistics")


class Book:
    def __init__(self) -> None:
        self.lat: dict[str, list[float]] = defaultdict(list)
        self.status: dict[str, Counter[str]] = defaultdict(Counter)
        self.by_path: dict[str, list[float]] = defaultdict(list)

    async def call(self, c: httpx.AsyncClient, kind: str, method: str, url: str, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            r = await c.request(method, url, **kw)
        except httpx.HTTPError as exc:
            self.status[kind][f"no answer ({type(exc).__name__})"] += 1
            return None
        ms = (time.perf_counter() - t0) * 1000
        self.lat[kind].append(ms)
        if kind in READ_KINDS:
            self.by_path[url.split("?")[0]].append(ms)
        self.status[kind][str(r.status_code)] += 1
        return r


def pct(v: list[float], p: float) -> float:
    if not v:
        return float("nan")
    s = sorted(v)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


async def inspector(
    base: str,
    token: str,
    tasks: list[int],
    bodies: dict[int, bytes],
    end: float,
    book: Book,
    pause: float = 0.0,
) -> None:
    h = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=base, timeout=30, headers=h) as c:
        for tid in tasks:
            if time.monotonic() >= end:
                return
            await book.call(
                c,
                "submit result",
                "POST",
                f"/api/v1/tasks/{tid}/result",
                content=bodies[tid],
                headers={"Idempotency-Key": f"soak-{tid}"},
            )
            await book.call(c, "inspector task list", "GET", "/api/v1/tasks?limit=50")
            await asyncio.sleep(pause)


async def visitor(
    base: str, end: float, book: Book, rng: random.Random, pause: float = 0.025
) -> None:
    # every URL is one a real visitor sends: the enterprise search needs its `q`
    pages = [
        ("public portal", "/"),
        ("public API", f"/api/v1/public/enterprises?q=基准企业{rng.randrange(1000)}&limit=20"),
        ("public API", "/api/v1/public/results?limit=50"),
        ("public API", "/api/v1/public/draws"),
        ("public API", "/api/v1/public/stats"),
        ("public API", "/api/v1/public/lists/abnormal"),
    ]
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        while time.monotonic() < end:
            kind, url = rng.choice(pages)
            await book.call(c, kind, "GET", url)
            await asyncio.sleep(rng.uniform(0, 2 * pause))


async def analyst(
    base: str, token: str, end: float, book: Book, rng: random.Random, pause: float = 0.05
) -> None:
    today = time.gmtime()
    quarter = f"{today.tm_year}Q{(today.tm_mon - 1) // 3 + 1}"
    queries = [
        "/api/v1/stats/pass-rates",
        "/api/v1/stats/pass-rates?group_by=region:city&group_by=size",
        "/api/v1/stats/trend?period=month",
        # a named period: without one the latest period with final results is used, and a
        # fresh database may have none yet (that is a 422, not a slow read)
        f"/api/v1/stats/early-warnings?period={quarter}",
    ]
    async with httpx.AsyncClient(
        base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as c:
        while time.monotonic() < end:
            await book.call(c, "statistics", "GET", rng.choice(queries))
            await asyncio.sleep(rng.uniform(0, 2 * pause))


async def supervisor(base: str, token: str, end: float, book: Book, every: float = 20.0) -> int:
    drawn = 0
    async with httpx.AsyncClient(
        base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"}
    ) as c:
        n = 0
        while time.monotonic() < end:
            n += 1
            plan = {
                "name": f"浸泡测试计划 {n}",
                "check_item_code": ra.CHECK_ITEM,
                "exclusion_days": 0,
                "quotas": {"3501": 3, "3502": 2},
                "strata_fields": ["region"],
                "entropy_source": "dice rolled before witnesses 张三, 李四",
            }
            r = await book.call(c, "plan create", "POST", "/api/v1/plans", json=plan)
            if r is None or r.status_code != 201:
                await asyncio.sleep(1)
                continue
            pid = r.json()["id"]
            r = await book.call(c, "plan commit", "POST", f"/api/v1/plans/{pid}/commit", json={})
            if r is None or r.status_code // 100 != 2:
                continue
            body = {"entropy": f"{random.randrange(10**30):030d}", "entropy_source": "dice"}
            r = await book.call(c, "plan draw", "POST", f"/api/v1/plans/{pid}/draw", json=body)
            if r is not None and r.status_code // 100 == 2:
                drawn += 1
            await asyncio.sleep(every)
    return drawn


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    pg = None
    if args.database_url:
        server = args.database_url
    else:
        pg = ra.PrivateServer()
        server = pg.url
    url = ra.with_db(server, "qsampling_soak")
    proc = None
    try:
        await ra.recreate(server, "qsampling_soak")
        ra.in_thread(lambda: ra.upgrade(url))
        rng = random.Random(args.seed)
        n_tasks = args.inspectors * args.tasks_per_inspector
        seeded = await ra.seed(url, inspectors=args.inspectors, pools={"api": n_tasks}, rng=rng)
        # two years of final results (bench/stats.py's generator) for the analysts' and the
        # public's statistics to read
        await st.load(url, args.final_results)
        bodies = {t: json.dumps(ra.result_body(rng, t)).encode() for t in seeded.pools["api"]}
        per: dict[int, list[int]] = {i: [] for i in range(args.inspectors)}
        for tid in seeded.pools["api"]:
            per[seeded.owner[tid]].append(tid)
        os.environ["QSAMPLING_PUBLIC_RATE_LIMIT_PER_MINUTE"] = str(10**7)
        port = ra.free_port()
        base = f"http://127.0.0.1:{port}"
        proc = ra.start_server(url, port, args.workers)
        await ra.wait_ready(base, proc)
        book = Book()
        t0 = time.monotonic()
        end = t0 + args.seconds
        jobs: list[Any] = [
            inspector(base, seeded.inspector_tokens[i], per[i], bodies, end, book, args.think)
            for i in range(args.inspectors)
        ]
        jobs += [visitor(base, end, book, random.Random(i), args.think) for i in range(args.public)]
        jobs += [
            analyst(base, seeded.lab_token, end, book, random.Random(100 + i), 2 * args.think)
            for i in range(args.analysts)
        ]
        results = await asyncio.gather(
            supervisor(base, seeded.lab_token, end, book, args.plan_every), *jobs
        )
        elapsed = time.monotonic() - t0
        alive = proc.poll() is None
    finally:
        if proc is not None:
            ra.stop_server(proc)
        if pg is not None:
            pg.destroy()
        elif args.database_url:
            await ra.recreate(server, "qsampling_soak", drop_only=True)
    kinds = {}
    for kind in sorted(set(book.lat) | set(book.status)):
        lat = book.lat[kind]
        kinds[kind] = {
            "n": sum(book.status[kind].values()),
            "per_s": round(len(lat) / elapsed, 1),
            "p50": round(pct(lat, 50), 1),
            "p95": round(pct(lat, 95), 1),
            "p99": round(pct(lat, 99), 1),
            "statuses": dict(book.status[kind]),
        }
    paths = {
        p: {"n": len(v), "p50": round(pct(v, 50), 1), "p99": round(pct(v, 99), 1)}
        for p, v in sorted(book.by_path.items())
    }
    total = sum(k["n"] for k in kinds.values())
    five = sum(v for k in kinds.values() for s, v in k["statuses"].items() if s.startswith("5"))
    lost = sum(
        v for k in kinds.values() for s, v in k["statuses"].items() if s.startswith("no answer")
    )
    return {
        "seconds": round(elapsed, 1),
        "requests": total,
        "per_s": round(total / elapsed, 1),
        "five_xx": five,
        "no_answer": lost,
        "plans_drawn": results[0],
        "server_alive": alive,
        "kinds": kinds,
        "paths": paths,
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--inspectors", type=int, default=8)
    ap.add_argument("--tasks-per-inspector", type=int, default=3000)
    ap.add_argument("--public", type=int, default=8)
    ap.add_argument("--analysts", type=int, default=2)
    ap.add_argument(
        "--final-results", type=int, default=200_000, help="final results statistics read"
    )
    ap.add_argument(
        "--think",
        type=float,
        default=0.5,
        help="mean pause (s) between one person's requests: inspectors and visitors this, "
        "analysts twice this; 0 = back to back (saturation, where latency is only queueing)",
    )
    ap.add_argument(
        "--plan-every",
        type=float,
        default=20.0,
        help="seconds between the supervisor's plans (create, commit, draw); a bureau draws "
        "a few plans a day, the default many times that",
    )
    ap.add_argument("--database-url", help="a server to use instead of a private one")
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    out = asyncio.run(soak(args))
    print(
        f"{out['requests']} requests in {out['seconds']} s ({out['per_s']}/s); 5xx "
        f"{out['five_xx']}; no answer {out['no_answer']}; plans drawn {out['plans_drawn']}"
    )
    print(f"{'kind':<22}{'n':>8}{'/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}  statuses")
    for kind, k in out["kinds"].items():
        print(
            f"{kind:<22}{k['n']:>8}{k['per_s']:>8}{k['p50']:>9}{k['p95']:>9}{k['p99']:>9}  "
            f"{k['statuses']}"
        )
    print(f"{'path':<44}{'n':>8}{'p50 ms':>9}{'p99 ms':>9}")
    for path, k in out["paths"].items():
        print(f"{path:<44}{k['n']:>8}{k['p50']:>9}{k['p99']:>9}")
    reads = [k for name, k in out["kinds"].items() if name in READ_KINDS]
    worst_read = max((k["p99"] for k in reads), default=float("nan"))
    rows: list[dict[str, Any]] = [
        {
            "figure": "soak: requests per second (mixed)",
            "value": out["per_s"],
            "unit": "req/s",
            "baseline": None,
            "ratio": None,
            "target": "",
            "met": None,
        },
        {
            "figure": "soak: 5xx answers",
            "value": out["five_xx"],
            "unit": "",
            "baseline": None,
            "ratio": None,
            "target": "0",
            "met": out["five_xx"] == 0,
        },
        {
            "figure": "soak: worst read p99",
            "value": worst_read,
            "unit": "ms",
            "baseline": None,
            "ratio": None,
            "target": "< 300 ms",
            "met": worst_read < 300,
        },
    ]
    for name, k in out["kinds"].items():
        rows.append(
            {
                "figure": f"soak: {name} p99",
                "value": k["p99"],
                "unit": "ms",
                "baseline": None,
                "ratio": None,
                "target": "< 300 ms" if name in READ_KINDS else "",
                "met": (k["p99"] < 300) if name in READ_KINDS else None,
            }
        )
    print("BENCH-JSON " + json.dumps(rows, ensure_ascii=False))
    return 0 if out["five_xx"] == 0 and out["server_alive"] else 1


if __name__ == "__main__":
    sys.exit(main())
