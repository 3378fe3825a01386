"""`make bench`: run every benchmark at a scale and collect one Markdown table.

Each benchmark prints its figures; a line starting with ``BENCH-JSON `` carries them as a
JSON list of rows ``{"figure", "value", "unit", "baseline", "ratio", "target", "met"}``.
The table goes to stdout and to ``bench/results/latest.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (script, arguments at small scale, arguments at full scale)
BENCHES: list[tuple[str, list[str], list[str]]] = [
    ("import_enterprises.py", ["--rows", "100000"], ["--rows", "1000000"]),
    ("draw.py", ["--sizes", "200000"], ["--sizes", "1000000,10000000"]),
    ("results_api.py", ["--seconds", "10"], ["--seconds", "60"]),
    ("stats.py", ["--rows", "1000000"], ["--rows", "10000000"]),
    (
        "credit.py",
        ["--enterprises", "100000", "--events", "500000"],
        ["--enterprises", "1000000", "--events", "5000000"],
    ),
    ("export.py", ["--rows", "500000"], ["--rows", "5000000"]),
    ("soak.py", ["--seconds", "60"], ["--seconds", "300"]),
    ("faults.py", [], []),
]


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return "" if v is None else str(v)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", choices=["small", "full"], default="small")
    ap.add_argument(
        "--only",
        help="comma-separated script names to run; their rows replace theirs in the last table",
    )
    args = ap.parse_args()
    only = set(args.only.split(",")) if args.only else None
    rows: list[dict[str, object]] = []
    failures: list[str] = []
    for script, small, full in BENCHES:
        if only and script not in only:
            continue
        path = HERE / script
        if not path.exists():
            failures.append(f"{script}: missing")
            continue
        cmd = [sys.executable, str(path), *(small if args.scale == "small" else full)]
        print(f"→ {' '.join(cmd)}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        sys.stderr.write(proc.stdout[-4000:])
        found = False
        for line in proc.stdout.splitlines():
            if line.startswith("BENCH-JSON "):
                for r in json.loads(line[len("BENCH-JSON ") :]):
                    r.setdefault("bench", script)
                    rows.append(r)
                found = True
        if proc.returncode != 0 or not found:
            failures.append(
                f"{script}: exit {proc.returncode} after "
                f"{time.perf_counter() - t0:.0f}s; {proc.stderr.strip()[-300:]}"
            )
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime())
    load = os.getloadavg()[0]
    for r in rows:
        r.setdefault("measured", f"{stamp}, load {load:.1f}")
    store = HERE / "results" / "latest.json"
    if only and store.exists():
        # a partial run replaces the rows of the benchmarks it ran and keeps the others
        kept = [r for r in json.loads(store.read_text(encoding="utf-8")) if r["bench"] not in only]
        order = [b for b, _, _ in BENCHES]
        rows = sorted(
            kept + rows, key=lambda r: order.index(r["bench"]) if r["bench"] in order else 99
        )
    store.parent.mkdir(exist_ok=True)
    store.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    lines = [
        f"# Benchmarks ({args.scale} scale)",
        "",
        "Each row says when it was measured and the machine's load average (1 min) then.",
        "",
        "| bench | figure | value | baseline | ratio | target | met? | measured |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        value = f"{_fmt(r.get('value'))} {r.get('unit', '')}".strip()
        met = {True: "yes", False: "**no**"}.get(r.get("met"), "")  # type: ignore[call-overload]
        lines.append(
            f"| {r['bench']} | {r['figure']} | {value} | {_fmt(r.get('baseline'))} | "
            f"{_fmt(r.get('ratio'))} | {r.get('target', '')} | {met} | {r.get('measured', '')} |"
        )
    if failures:
        lines += ["", "Failures:", *[f"- {f}" for f in failures]]
    text = "\n".join(lines) + "\n"
    print(text)
    out = HERE / "results" / "latest.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
