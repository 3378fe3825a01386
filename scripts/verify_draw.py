#!/usr/bin/env python3
"""Check a published QSDRAW-1 draw bundle independently (qsampling DESIGN §4).

Usage:  python scripts/verify_draw.py BUNDLE.zip
Prints MATCH (exit 0) when the published files are the ones committed to, the seed follows
from the commitment, the nonce and the public entropy, and re-running the draw gives exactly
the published enterprises and inspector teams. Otherwise prints the first difference (exit 1);
exit 2 when the file cannot be read. Standard library only; shares no code with qsampling.

用法：python scripts/verify_draw.py 公示包.zip
公示文件与事先承诺一致、随机种子可由承诺值、服务器随机数和公开熵值推出、重新抽取的企业和
检查人员与公示名单完全相同时，输出 MATCH（退出码 0）；否则输出第一处不一致（退出码 1）；
文件无法读取时退出码为 2。
"""

import csv
import hashlib
import io
import json
import sys
import zipfile

MEMBERS = ("pool.csv", "inspectors.csv", "exclusions.csv", "params.json", "result.json")


class Difference(Exception):
    """The bundle disagrees with the recomputation."""


def check(what, published, recomputed):
    if published != recomputed:
        raise Difference(f"{what}: bundle has {published!r}, recomputed {recomputed!r}")


def sha256(data):
    return hashlib.sha256(data).digest()


def csv_rows(data, header):
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    if not rows or rows[0] != header:
        raise ValueError(f"header is not {','.join(header)}")
    return rows[1:]


def verify(files):
    params = json.loads(files["params.json"])
    result = json.loads(files["result.json"])
    check("params.algorithm", params["algorithm"], "QSDRAW-1")

    # Step 1: the published files are the committed ones, and so is the nonce.
    for name in ("pool", "inspectors", "exclusions"):
        digest = sha256(files[f"{name}.csv"]).hex()
        check(f"params.{name}_sha256 (SHA-256 of {name}.csv)", params[f"{name}_sha256"], digest)
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    commitment = sha256(canonical.encode("utf-8")).hex()
    check("result.commitment", result["commitment"], commitment)
    nonce = bytes.fromhex(result["nonce"])
    check("params.server_nonce_sha256", params["server_nonce_sha256"], sha256(nonce).hex())

    # Step 3: the seed.
    seed = sha256(
        b"QSSEED-1\x00" + bytes.fromhex(commitment) + nonce + result["entropy"].encode("utf-8")
    )
    check("result.seed", result["seed"], seed.hex())

    # Step 4: per stratum, the quota's worth of smallest keys; all drawn, in key order.
    pool = csv_rows(files["pool.csv"], ["uscc", "stratum", "unit"])
    unit_of = {uscc: unit for uscc, _stratum, unit in pool}
    check("number of distinct usccs in pool.csv", len(unit_of), len(pool))
    by_stratum: dict[str, list[tuple[bytes, str]]] = {}
    for uscc, stratum, _unit in pool:
        key = sha256(b"QSDRAW-1\x00" + seed + b"\x01" + uscc.encode("ascii"))
        by_stratum.setdefault(stratum, []).append((key, uscc))
    quotas = params["quotas"]
    check("strata in params.quotas", sorted(quotas), sorted(by_stratum))
    drawn = []
    for stratum, keyed in by_stratum.items():
        if quotas[stratum] > len(keyed):
            raise Difference(f"quota {quotas[stratum]} exceeds stratum {stratum!r} size")
        drawn += [(key, uscc, stratum) for key, uscc in sorted(keyed)[: quotas[stratum]]]
    drawn.sort()

    # Step 5: teams, walking the drawn enterprises in key order.
    inspectors = csv_rows(files["inspectors.csv"], ["inspector_id", "unit"])
    banned = {(i, u) for i, u in csv_rows(files["exclusions.csv"], ["inspector_id", "uscc"])}
    cap, size = params["max_tasks_per_inspector"], params["team_size"]
    if size < 2:  # Administrative Penalty Law (行政处罚法) art. 42: at least two officers
        raise Difference(f"params.team_size is {size}, below 2")
    tasks = {inspector: 0 for inspector, _unit in inspectors}
    published = result["selected"]
    check("number of drawn enterprises", len(published), len(drawn))
    for n, ((key, uscc, stratum), entry) in enumerate(zip(drawn, published, strict=True), 1):
        local = unit_of[uscc] if params["cross_unit"] else ""
        eligible = [
            inspector
            for inspector, unit in inspectors
            if (inspector, uscc) not in banned
            and not (local and unit == local)  # an empty unit never counts as the same unit
            and (cap is None or tasks[inspector] < cap)
        ]
        prefix = b"QSDRAW-1\x00" + seed + b"\x02" + uscc.encode("ascii") + b"\x00"
        eligible.sort(key=lambda inspector: sha256(prefix + inspector.encode("utf-8")))
        if len(eligible) < size:
            raise Difference(f"drawn #{n} {uscc}: only {len(eligible)} eligible inspectors")
        team = eligible[:size]
        for inspector in team:
            tasks[inspector] += 1
        want = {"uscc": uscc, "stratum": stratum, "key": key.hex(), "inspectors": team}
        check(f"drawn #{n}", entry, want)


def main(argv):
    if len(argv) != 2:
        print(__doc__)
        return 2
    try:
        with zipfile.ZipFile(argv[1]) as bundle:
            if sum(info.file_size for info in bundle.infolist()) > 2 * 1024**3:
                raise ValueError("uncompresses to more than 2 GiB")
            files = {name: bundle.read(name) for name in MEMBERS}
    except Exception as exc:  # missing file, not a zip, missing member: unreadable
        print(f"unreadable bundle {argv[1]}: {exc}")
        return 2
    try:
        verify(files)
    except Exception as exc:  # a Difference, or malformed content: also a difference
        print(exc if isinstance(exc, Difference) else f"malformed bundle: {exc!r}")
        return 1
    print("MATCH")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
