"""The database-outage drill (issue 5, reliability): stop PostgreSQL during a stream of
result submissions and check that nothing sent is lost or counted twice.

On a private embedded PostgreSQL in a temporary directory (never the shared dev or test
server, since it is stopped and started here), with ``uvicorn qsampling.asgi:app`` running
as a subprocess:

1. ``--inspectors`` simulated inspectors submit results for their own tasks back to back,
   each request with an ``Idempotency-Key``; like the phone app, a request answered 503 or
   not answered at all is retried with the same key (after a short pause) until it gets a
   final answer;
2. after ``--before`` seconds the server is stopped (``pg_ctl stop -m fast``: sessions are
   cut mid-transaction), kept down for ``--down`` seconds, started again; the stream goes on
   for ``--after`` seconds; uvicorn is never restarted.

Checks (exit status 1 when one fails):
- no answer is a 500; while the database is away the API answers 503 ``DatabaseUnavailable``;
- submissions succeed again after the restart without restarting the API;
- every submission that got a 2xx is in the database exactly once, and the database holds
  no result that was not acknowledged (each attempted task ends with one result).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import results_api as ra  # noqa: E402  (the seeding and server helpers of the results bench)


@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    acked: dict[int, int] = field(default_factory=dict)  # task → result id
    final_errors: dict[int, str] = field(default_factory=dict)
    retries: int = 0
    outage_503: int = 0
    after_restart_ok: int = 0
    phase: str = "before"


async def inspector(
    base: str,
    token: str,
    tasks: list[int],
    bodies: dict[int, bytes],
    stop_at: list[float],
    tally: Tally,
) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=base, timeout=10, headers=headers) as c:
        for tid in tasks:
            if time.monotonic() >= stop_at[0]:
                return
            while True:  # retry with the same key until a final answer
                try:
                    r = await c.post(
                        f"/api/v1/tasks/{tid}/result",
                        content=bodies[tid],
                        headers={"Idempotency-Key": f"fault-{tid}"},
                    )
                except httpx.HTTPError as exc:
                    tally.statuses[f"no answer ({type(exc).__name__})"] += 1
                    tally.retries += 1
                    await asyncio.sleep(0.2)
                    continue
                tally.statuses[str(r.status_code)] += 1
                if r.status_code == 503:
                    assert r.json()["error"] == "DatabaseUnavailable", r.text
                    if tally.phase == "down":
                        tally.outage_503 += 1
                    tally.retries += 1
                    await asyncio.sleep(0.2)
                    continue
                if r.status_code // 100 == 2:
                    tally.acked[tid] = int(r.json()["result_id"])
                    if tally.phase == "after":
                        tally.after_restart_ok += 1
                else:
                    tally.final_errors[tid] = f"{r.status_code} {r.text[:120]}"
                break


async def drill(args: argparse.Namespace) -> dict[str, Any]:
    pg = ra.PrivateServer()
    proc = None
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

        port = ra.free_port()
        base = f"http://127.0.0.1:{port}"
        proc = ra.start_server(url, port, 1)
        await ra.wait_ready(base, proc)

        tally = Tally()
        total = args.before + args.down + args.after
        stop_at = [time.monotonic() + total + 3600]  # set properly after the restart
        stream = asyncio.gather(
            *(
                inspector(base, seeded.inspector_tokens[i], per[i], bodies, stop_at, tally)
                for i in range(args.inspectors)
            )
        )
        await asyncio.sleep(args.before)
        before_ok = len(tally.acked)
        tally.phase = "down"
        t_stop = time.monotonic()
        await asyncio.to_thread(pg.stop)
        print(f"database stopped after {before_ok} acknowledged submissions", file=sys.stderr)
        await asyncio.sleep(args.down)
        await asyncio.to_thread(pg.start)
        down_for = time.monotonic() - t_stop
        tally.phase = "after"
        print(f"database started again after {down_for:.1f} s", file=sys.stderr)
        stop_at[0] = time.monotonic() + args.after
        await stream
        server_alive = proc.poll() is None
    finally:
        if proc is not None:
            ra.stop_server(proc)

    try:
        conn = await ra.connect(url)
        try:
            rows = await conn.fetch(
                "SELECT task_id, count(*) AS n, min(id) AS id FROM results GROUP BY task_id"
            )
        finally:
            await conn.close()
    finally:
        pg.destroy()
    in_db = {r["task_id"]: (r["n"], r["id"]) for r in rows}
    acked = tally.acked
    missing = [t for t in acked if t not in in_db]
    twice = [t for t, (n, _) in in_db.items() if n > 1]
    wrong_id = [t for t, rid in acked.items() if t in in_db and in_db[t][1] != rid]
    unacked = [t for t in in_db if t not in acked]
    checks = {
        "no 500": tally.statuses.get("500", 0) == 0,
        "503 while the database was away": tally.outage_503 > 0,
        "2xx again after the restart (API not restarted)": tally.after_restart_ok > 0
        and server_alive,
        "every 2xx stored exactly once": not missing and not twice and not wrong_id,
        "nothing stored that was not acknowledged": not unacked,
        "no other final error": not tally.final_errors,
    }
    return {
        "statuses": dict(tally.statuses),
        "acknowledged": len(acked),
        "in_database": len(in_db),
        "missing": missing[:10],
        "duplicated": twice[:10],
        "unacknowledged_in_db": unacked[:10],
        "final_errors": dict(list(tally.final_errors.items())[:5]),
        "retries": tally.retries,
        "outage_503": tally.outage_503,
        "down_seconds": round(down_for, 1),
        "after_restart_ok": tally.after_restart_ok,
        "checks": checks,
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--inspectors", type=int, default=16)
    ap.add_argument("--tasks-per-inspector", type=int, default=400)
    ap.add_argument("--before", type=float, default=4, help="seconds of stream before the stop")
    ap.add_argument("--down", type=float, default=6, help="seconds the database stays down")
    ap.add_argument("--after", type=float, default=6, help="seconds of stream after the restart")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    out = asyncio.run(drill(args))
    print(f"answers: {out['statuses']}; retries {out['retries']}")
    print(
        f"database down {out['down_seconds']} s: {out['outage_503']} answers 503 meanwhile; "
        f"{out['after_restart_ok']} acknowledged after the restart"
    )
    print(
        f"acknowledged {out['acknowledged']}, in the database {out['in_database']}; missing "
        f"{out['missing']}, duplicated {out['duplicated']}, unacknowledged "
        f"{out['unacknowledged_in_db']}, other errors {out['final_errors']}"
    )
    for name, ok in out["checks"].items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    rows = [
        {
            "figure": f"DB outage drill: {k}",
            "value": "pass" if v else "FAIL",
            "target": "pass",
            "met": v,
        }
        for k, v in out["checks"].items()
    ]
    print("BENCH-JSON " + json.dumps(rows, ensure_ascii=False))
    return 0 if all(out["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
