"""Audit the installed dependencies for known vulnerabilities (`make audit-deps`, CI).

Runs ``pip-audit`` on this virtual environment against PyPI's vulnerability data and reads
its JSON report:

- any known vulnerability: prints each (package, version, advisory, fixed versions), exit 1;
- every dependency audited, none vulnerable: exit 0;
- some dependencies could not be audited (the vulnerability service is unreachable, or a
  package is not on PyPI): prints how many and why, and exits 0 unless ``--strict`` —
  an offline build machine must not fail for that, but it must not claim a clean audit
  either.

Usage: ``python scripts/audit_deps.py [--strict] [--service pypi|osv]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--strict", action="store_true", help="fail when a dependency was skipped")
    ap.add_argument("--service", default="pypi", choices=["pypi", "osv"])
    args = ap.parse_args()
    exe = Path(sys.executable).with_name("pip-audit")
    proc = subprocess.run(
        [
            str(exe),
            "--vulnerability-service",
            args.service,
            "--skip-editable",
            "--progress-spinner",
            "off",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        print(f"pip-audit gave no report (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        return 1 if args.strict else 0
    deps = report.get("dependencies", [])
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if "skip_reason" in d]
    audited = len(deps) - len(skipped)
    for d in vulnerable:
        for v in d["vulns"]:
            fixed = ", ".join(v.get("fix_versions") or []) or "no fixed release"
            name = f"{d['name']} {d.get('version', '')}"
            print(f"VULNERABLE {name}: {v.get('id')} (fixed in {fixed})")
    print(
        f"dependency audit ({args.service}): {len(deps)} packages, {audited} audited, "
        f"{len(vulnerable)} vulnerable, {len(skipped)} not audited"
    )
    if skipped:
        reasons = sorted({d["skip_reason"].split(":")[0] for d in skipped})
        print("not audited: " + "; ".join(reasons))
        if audited == 0:
            print("WARNING: nothing was checked; the vulnerability service is not reachable")
    if vulnerable:
        return 1
    return 1 if (args.strict and skipped) else 0


if __name__ == "__main__":
    raise SystemExit(main())
