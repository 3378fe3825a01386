"""The verifiable draw, algorithm QSDRAW-1 (DESIGN §4), as pure functions.

双随机 (random targets, random inspectors) must be checkable by the public: nobody may pick or
spare an enterprise. QSDRAW-1 commits to the candidate pool, the inspector data and the
parameters *before* the seed exists, then derives the seed from a secret server nonce and
public entropy, and selects with SHA-256 keys that anyone can recompute.

The steps of DESIGN §4 map to this module as follows:

1. Commit: :func:`pool_csv`, :func:`inspectors_csv`, :func:`exclusions_csv`,
   :func:`build_params`, :func:`commitment_of` (SHA-256 of :func:`canonical_json`).
2. Public entropy: supplied by the caller (dice, beacon); used verbatim.
3. Seed: :func:`derive_seed`.
4. Enterprises: :func:`enterprise_key`, :func:`enterprise_keys`, :func:`select` (built from the
   mergeable :func:`topk_partial` / :func:`merge_partials`), with quotas from
   :func:`compute_quotas` (DESIGN §3: n_h = ceil(ratio_h x N_h), capped at N_h).
5. Inspector teams: :func:`inspector_rank_key` here, the walk in
   :func:`qsampling.core.assignment.assign_teams` (行政处罚法 art. 42: at least two officers;
   art. 43: conflicts of interest excluded).
6. Publish: :func:`build_result`, :func:`make_bundle`, :func:`read_bundle`,
   :func:`verify_bundle`.

This module does no I/O and uses no random generator: randomness is data (the seed goes in,
the keys come out). ``scripts/verify_draw.py`` is an independent re-implementation used as
the public check; it deliberately shares no code with this module.
"""

from __future__ import annotations

import csv
import hashlib
import heapq
import io
import json
import math
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from hashlib import _Hash as HashObject

ALGORITHM = "QSDRAW-1"

# Domain-separation prefixes of DESIGN §4 steps 3-5.
_SEED_TAG = b"QSSEED-1\x00"
_DRAW_TAG = b"QSDRAW-1\x00"
_ENTERPRISE_TAG = b"\x01"
_INSPECTOR_TAG = b"\x02"

POOL_HEADER = ("uscc", "stratum", "unit")
INSPECTORS_HEADER = ("inspector_id", "unit")
EXCLUSIONS_HEADER = ("inspector_id", "uscc")

BUNDLE_MEMBERS = ("pool.csv", "inspectors.csv", "exclusions.csv", "params.json", "result.json")
# Zip-bomb guard for read_bundle: a pool of ten million enterprises is ~400 MB of CSV.
MAX_BUNDLE_UNCOMPRESSED = 2 * 1024**3

_PARAMS_KEYS = frozenset(
    {
        "algorithm",
        "plan_id",
        "quotas",
        "team_size",
        "max_tasks_per_inspector",
        "cross_unit",
        "pool_sha256",
        "inspectors_sha256",
        "exclusions_sha256",
        "server_nonce_sha256",
        "entropy_source",
    }
)
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One row of ``pool.csv``: an enterprise that may be drawn."""

    uscc: str
    stratum: str
    unit: str


@dataclass(frozen=True, slots=True)
class InspectorRef:
    """One row of ``inspectors.csv``: an eligible inspector and the unit they belong to."""

    inspector_id: str
    unit: str


@dataclass(frozen=True, slots=True)
class Selected:
    """A drawn enterprise (DESIGN §4 step 4).

    ``key`` is the 64-character lower-case hex SHA-256 key; ``inclusion_probability`` is
    n_h/N_h, the weight statistics use (DESIGN §5: weight each result by 1/π).
    """

    uscc: str
    stratum: str
    key: str
    inclusion_probability: float
    stratum_size: int
    quota: int


@dataclass
class VerifyReport:
    """Outcome of :func:`verify_bundle`; ``differences`` lists the first difference first."""

    ok: bool
    differences: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- helpers


def sha256_hex(b: bytes) -> str:
    """SHA-256 of ``b`` as 64 lower-case hex characters."""
    return hashlib.sha256(b).hexdigest()


def _is_hex64(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX


def _check_seed(seed: bytes) -> None:
    if not isinstance(seed, bytes | bytearray) or len(seed) != 32:
        raise ValueError("seed must be 32 raw bytes (DESIGN §4 step 3)")


def _check_count(name: str, value: object, what: str) -> int:
    if not isinstance(name, str):
        raise ValueError(f"stratum names must be strings, got {name!r}")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} for stratum {name!r} must be a non-negative integer")
    return value


def _check_field(value: str, column: str) -> None:
    # One row per line keeps the files readable with `sort`, `grep` and a spreadsheet.
    if not isinstance(value, str):
        raise ValueError(f"{column} must be a string, got {type(value).__name__}")
    if "\r" in value or "\n" in value:
        raise ValueError(f"{column} {value!r} contains a line break")


def _check_uscc(uscc: str) -> None:
    _check_field(uscc, "uscc")
    # Keys hash uscc.encode("ascii") (DESIGN §4 step 4); printable ASCII also rules out the
    # NUL byte that separates uscc and inspector_id in the step-5 rank key.
    if not uscc or not uscc.isascii() or not uscc.isprintable() or uscc != uscc.strip():
        raise ValueError(f"uscc {uscc!r} must be non-empty printable ASCII without spaces")


# --------------------------------------------------------------------------- quotas


def _exact_ratio(stratum: str, ratio: str | Decimal | float) -> Fraction:
    if isinstance(ratio, bool):
        raise ValueError(f"ratio for stratum {stratum!r} must be a number, not a bool")
    try:
        if isinstance(ratio, float):
            # repr() is the shortest decimal string that round-trips: 0.03 -> "0.03", so the
            # ratio the user typed is used, not the binary approximation 0.0299999...
            dec = Decimal(repr(ratio))
        elif isinstance(ratio, Decimal):
            dec = ratio
        elif isinstance(ratio, int | str):
            dec = Decimal(ratio.strip() if isinstance(ratio, str) else ratio)
        else:
            raise ValueError(f"ratio for stratum {stratum!r} has unsupported type")
    except InvalidOperation as exc:
        raise ValueError(f"ratio {ratio!r} for stratum {stratum!r} is not a number") from exc
    if not dec.is_finite() or dec < 0 or dec > 1:
        raise ValueError(f"ratio {ratio!r} for stratum {stratum!r} must be within [0, 1]")
    return Fraction(dec)


def compute_quotas(
    counts: Mapping[str, int], ratios: Mapping[str, str | Decimal | float]
) -> dict[str, int]:
    """Quota per stratum: n_h = ceil(ratio_h x N_h), capped at N_h (DESIGN §3, Draws).

    Computed exactly with :class:`fractions.Fraction` from the ratio's decimal string, so
    ``0.07 x 100`` is 7 (binary floating point gives 7.000000000000001, which ceil() would
    round up to 8). Floats are read through ``repr``, their shortest decimal form. Every
    stratum in ``counts`` needs a ratio (ValueError naming it); ratios for strata not in
    ``counts`` are ignored (a credit class with no enterprise in the pool). Ratios must lie
    in [0, 1]; strings such as ``"0.03"`` and :class:`~decimal.Decimal` are exact as given.
    """
    quotas: dict[str, int] = {}
    for stratum, n in counts.items():
        size = _check_count(stratum, n, "count")
        if stratum not in ratios:
            raise ValueError(f"no sampling ratio for stratum {stratum!r}")
        r = _exact_ratio(stratum, ratios[stratum])
        n_h = math.ceil(r * size)
        quotas[stratum] = min(n_h, size)
    return quotas


# --------------------------------------------------------------------------- CSV files


def _write_csv(header: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    # csv.QUOTE_MINIMAL (the default): a field is quoted only when it contains a comma or a
    # double quote (doubled inside), e.g. a unit named `a,b` is written `"a,b"`. Line
    # breaks inside fields are rejected before this point, so every row is one LF line.
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def pool_csv(candidates: Iterable[Candidate]) -> bytes:
    """``pool.csv`` of DESIGN §4 step 1: UTF-8, LF, header ``uscc,stratum,unit``, sorted by
    uscc ascending (code-point order). A duplicate uscc raises ValueError."""
    rows: list[tuple[str, str, str]] = []
    for c in candidates:
        _check_uscc(c.uscc)
        _check_field(c.stratum, "stratum")
        _check_field(c.unit, "unit")
        rows.append((c.uscc, c.stratum, c.unit))
    rows.sort()
    for a, b in zip(rows, rows[1:], strict=False):
        if a[0] == b[0]:
            raise ValueError(f"duplicate uscc {a[0]!r} in the candidate pool")
    return _write_csv(POOL_HEADER, rows)


def inspectors_csv(inspectors: Iterable[InspectorRef]) -> bytes:
    """``inspectors.csv``: header ``inspector_id,unit``, sorted by inspector_id; a duplicate
    inspector_id raises ValueError."""
    rows: list[tuple[str, str]] = []
    for i in inspectors:
        _check_field(i.inspector_id, "inspector_id")
        _check_field(i.unit, "unit")
        if not i.inspector_id:
            raise ValueError("inspector_id must not be empty")
        rows.append((i.inspector_id, i.unit))
    rows.sort()
    for a, b in zip(rows, rows[1:], strict=False):
        if a[0] == b[0]:
            raise ValueError(f"duplicate inspector_id {a[0]!r}")
    return _write_csv(INSPECTORS_HEADER, rows)


def exclusions_csv(pairs: Iterable[tuple[str, str]]) -> bytes:
    """``exclusions.csv``: header ``inspector_id,uscc``, every banned pair (art. 43 conflicts
    of interest, rotation), sorted by (inspector_id, uscc) and deduplicated."""
    rows: set[tuple[str, str]] = set()
    for inspector_id, uscc in pairs:
        _check_field(inspector_id, "inspector_id")
        _check_uscc(uscc)
        rows.add((inspector_id, uscc))
    return _write_csv(EXCLUSIONS_HEADER, sorted(rows))


def _read_csv(data: bytes, header: tuple[str, ...], name: str) -> Iterator[list[str]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name} is not valid UTF-8: {exc}") from exc
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        first = next(reader, None)
        if first is None or tuple(first) != header:
            raise ValueError(f"{name} must start with the header {','.join(header)!r}")
        for row in reader:
            if len(row) != len(header):
                raise ValueError(
                    f"{name} line {reader.line_num}: expected {len(header)} fields, got {len(row)}"
                )
            yield row
    except csv.Error as exc:
        raise ValueError(f"{name} line {reader.line_num}: {exc}") from exc


def parse_pool_csv(data: bytes) -> list[Candidate]:
    """Parse ``pool.csv``; ValueError on a wrong header, a malformed row or a duplicate uscc."""
    out: list[Candidate] = []
    seen: set[str] = set()
    for uscc, stratum, unit in _read_csv(data, POOL_HEADER, "pool.csv"):
        try:
            _check_uscc(uscc)
        except ValueError as exc:
            raise ValueError(f"pool.csv: {exc}") from None
        if uscc in seen:
            raise ValueError(f"pool.csv: duplicate uscc {uscc!r}")
        seen.add(uscc)
        out.append(Candidate(uscc, stratum, unit))
    return out


def parse_inspectors_csv(data: bytes) -> list[InspectorRef]:
    """Parse ``inspectors.csv``; ValueError on a wrong header or a duplicate inspector_id."""
    out: list[InspectorRef] = []
    seen: set[str] = set()
    for inspector_id, unit in _read_csv(data, INSPECTORS_HEADER, "inspectors.csv"):
        if not inspector_id or inspector_id in seen:
            raise ValueError(f"inspectors.csv: empty or duplicate inspector_id {inspector_id!r}")
        seen.add(inspector_id)
        out.append(InspectorRef(inspector_id, unit))
    return out


def parse_exclusions_csv(data: bytes) -> list[tuple[str, str]]:
    """Parse ``exclusions.csv`` into (inspector_id, uscc) pairs; ValueError on a wrong header."""
    return [(i, u) for i, u in _read_csv(data, EXCLUSIONS_HEADER, "exclusions.csv")]


# --------------------------------------------------------------------------- commitment


def canonical_json(obj: Any) -> bytes:
    """The canonical JSON of DESIGN §4 step 1: keys sorted, no spaces, UTF-8, non-ASCII kept."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def build_params(
    *,
    plan_id: Any,
    quotas: Mapping[str, int],
    team_size: int,
    max_tasks_per_inspector: int | None,
    cross_unit: bool,
    pool_sha256: str,
    inspectors_sha256: str,
    exclusions_sha256: str,
    server_nonce_sha256: str,
    entropy_source: str,
) -> dict[str, Any]:
    """``params.json`` of DESIGN §4 step 1, with exactly its keys.

    ``max_tasks_per_inspector`` None means no workload cap (JSON null). ``team_size`` must be
    at least 2 (行政处罚法 art. 42).
    """
    for name, n in quotas.items():
        _check_count(name, n, "quota")
    if isinstance(team_size, bool) or not isinstance(team_size, int) or team_size < 2:
        raise ValueError("team_size must be an integer >= 2 (行政处罚法 art. 42)")
    if max_tasks_per_inspector is not None and (
        isinstance(max_tasks_per_inspector, bool)
        or not isinstance(max_tasks_per_inspector, int)
        or max_tasks_per_inspector < 1
    ):
        raise ValueError("max_tasks_per_inspector must be None or an integer >= 1")
    if not isinstance(cross_unit, bool):
        raise ValueError("cross_unit must be a bool")
    digests = {
        "pool_sha256": pool_sha256,
        "inspectors_sha256": inspectors_sha256,
        "exclusions_sha256": exclusions_sha256,
        "server_nonce_sha256": server_nonce_sha256,
    }
    for name, value in digests.items():
        if not _is_hex64(value):
            raise ValueError(f"{name} must be 64 lower-case hex characters")
    if not isinstance(entropy_source, str):
        raise ValueError("entropy_source must be a string")
    return {
        "algorithm": ALGORITHM,
        "plan_id": plan_id,
        "quotas": dict(quotas),
        "team_size": team_size,
        "max_tasks_per_inspector": max_tasks_per_inspector,
        "cross_unit": cross_unit,
        **digests,
        "entropy_source": entropy_source,
    }


def commitment_of(params: Mapping[str, Any]) -> str:
    """The commitment: SHA-256 hex of the canonical ``params.json`` (DESIGN §4 step 1)."""
    return sha256_hex(canonical_json(dict(params)))


def derive_seed(commitment_hex: str, nonce: bytes, entropy: str) -> bytes:
    """DESIGN §4 step 3: ``SHA-256(b"QSSEED-1\\x00" + commitment + nonce + entropy)``.

    ``commitment_hex`` is the 64-character lower-case commitment, ``nonce`` the 32 secret
    server bytes, ``entropy`` the public entropy exactly as entered (UTF-8, no trimming).
    """
    if not _is_hex64(commitment_hex):
        raise ValueError("commitment must be 64 lower-case hex characters")
    if not isinstance(nonce, bytes | bytearray) or len(nonce) != 32:
        raise ValueError("the server nonce must be 32 bytes (DESIGN §4 step 1)")
    if not isinstance(entropy, str) or not entropy:
        raise ValueError("public entropy must be a non-empty string (DESIGN §4 step 2)")
    return hashlib.sha256(
        _SEED_TAG + bytes.fromhex(commitment_hex) + bytes(nonce) + entropy.encode("utf-8")
    ).digest()


# --------------------------------------------------------------------------- step 4


def _enterprise_prefix(seed: bytes) -> HashObject:
    _check_seed(seed)
    return hashlib.sha256(_DRAW_TAG + bytes(seed) + _ENTERPRISE_TAG)


def enterprise_key(seed: bytes, uscc: str) -> bytes:
    """DESIGN §4 step 4: ``SHA-256(b"QSDRAW-1\\x00" + seed + b"\\x01" + uscc)`` (32 bytes)."""
    _check_seed(seed)
    return hashlib.sha256(_DRAW_TAG + bytes(seed) + _ENTERPRISE_TAG + uscc.encode("ascii")).digest()


def enterprise_keys(seed: bytes, usccs: Iterable[str]) -> Iterator[bytes]:
    """Keys of :func:`enterprise_key` for many usccs, in input order (streaming).

    Hashes the constant 42-byte prefix once and ``.copy()``-es its state per uscc, which is
    about 20% faster than hashing the concatenation afresh.
    """
    copy = _enterprise_prefix(seed).copy  # checks the seed now, not at the first next()
    return (_digest_of(copy(), uscc.encode("ascii")) for uscc in usccs)


def _digest_of(h: HashObject, data: bytes) -> bytes:
    h.update(data)
    return h.digest()


Partial: TypeAlias = dict[str, tuple[int, list[tuple[bytes, str]]]]
"""Per stratum: (N_h in the shard, the n_h smallest (key, uscc) of the shard, ascending)."""


def _check_quotas(quotas: Mapping[str, int]) -> None:
    for name, n in quotas.items():
        _check_count(name, n, "quota")


def topk_partial(
    seed: bytes, candidates: Iterable[Candidate], quotas: Mapping[str, int]
) -> Partial:
    """One shard's share of step 4: per stratum, the count N_h and the n_h smallest
    ``(key, uscc)`` pairs, ascending.

    Streams the candidates through a bounded buffer per stratum, so memory is O(sum n_h)
    whatever the pool size, and the result does not depend on row order. Partials of
    disjoint shards combine with :func:`merge_partials`. Every candidate's stratum needs a
    quota (ValueError otherwise). The usccs must be unique (as :func:`pool_csv` ensures); a
    duplicate that reaches a top-k raises ValueError.
    """
    _check_quotas(quotas)
    copy = _enterprise_prefix(seed).copy
    # Per stratum: [N_h so far, buffer of (key, uscc), ceiling key or None, n_h].
    # The buffer grows to 2 n_h, then is cut back to its n_h smallest; the largest key kept
    # becomes the ceiling, and a candidate at or above it cannot be drawn, so it is dropped
    # after one bytes comparison. Sorting a half-sorted buffer costs little; measured ~20%
    # faster than a max-heap of negated integer keys when n_h is a large share of N_h.
    states: dict[str, list[Any]] = {s: [0, [], None, k] for s, k in quotas.items()}
    for c in candidates:
        state = states.get(c.stratum)
        if state is None:
            raise ValueError(f"stratum {c.stratum!r} of {c.uscc!r} has no quota")
        state[0] += 1
        k = state[3]
        if k == 0:
            continue
        h = copy()
        h.update(c.uscc.encode("ascii"))
        key = h.digest()
        ceiling = state[2]
        if ceiling is not None and key >= ceiling:
            if key == ceiling:  # equal keys mean equal usccs (barring a SHA-256 collision)
                raise ValueError(f"duplicate uscc {c.uscc!r} in the candidate pool")
            continue
        buf = state[1]
        buf.append((key, c.uscc))
        if len(buf) >= 2 * k:
            buf.sort()
            del buf[k:]
            state[2] = buf[-1][0]
    partial: Partial = {}
    for stratum, (count, buf, _ceiling, k) in states.items():
        buf.sort()
        partial[stratum] = (count, buf[:k])
    return partial


def merge_partials(partials: Sequence[Partial], quotas: Mapping[str, int]) -> list[Selected]:
    """Combine shard partials of :func:`topk_partial` into the drawn list (DESIGN §4 step 4).

    Per stratum N_h is the sum of the shard counts and the draw is the n_h smallest keys of
    the union. Raises ValueError for a stratum of the pool without a quota, a quota for a
    stratum absent from the pool, a quota above N_h, or a uscc drawn twice. The result is
    ordered by key ascending across strata; ``inclusion_probability`` is n_h/N_h.
    """
    _check_quotas(quotas)
    counts: dict[str, int] = {}
    pools: dict[str, list[tuple[bytes, str]]] = {}
    for partial in partials:
        for stratum, (count, pairs) in partial.items():
            if stratum not in quotas:
                raise ValueError(f"stratum {stratum!r} in the pool has no quota")
            if len(pairs) != min(count, quotas[stratum]):
                raise ValueError(f"partial for stratum {stratum!r} was built with another quota")
            counts[stratum] = counts.get(stratum, 0) + count
            pools.setdefault(stratum, []).extend(pairs)
    selected: list[Selected] = []
    for stratum, quota in quotas.items():
        size = counts.get(stratum, 0)
        if size == 0:
            raise ValueError(f"quota given for stratum {stratum!r}, which is absent from the pool")
        if quota > size:
            raise ValueError(f"quota {quota} for stratum {stratum!r} exceeds its size {size}")
        probability = quota / size
        for key, uscc in heapq.nsmallest(quota, pools.get(stratum, [])):
            selected.append(Selected(uscc, stratum, key.hex(), probability, size, quota))
    selected.sort(key=lambda s: (s.key, s.uscc))
    for a, b in zip(selected, selected[1:], strict=False):
        if a.uscc == b.uscc:
            raise ValueError(f"uscc {a.uscc!r} drawn twice: duplicate in the candidate pool")
    return selected


def select(
    seed: bytes, candidates: Iterable[Candidate], quotas: Mapping[str, int]
) -> list[Selected]:
    """DESIGN §4 step 4: in each stratum the n_h smallest keys, ordered by key ascending.

    Independent of input order; see :func:`topk_partial` and :func:`merge_partials` for the
    rules on quotas (every pool stratum needs one; 0 is allowed).
    """
    return merge_partials([topk_partial(seed, candidates, quotas)], quotas)


# --------------------------------------------------------------------------- step 5


def inspector_rank_prefix(seed: bytes, uscc: str) -> HashObject:
    """Hash state of the step-5 rank key up to and including ``uscc + b"\\x00"``.

    ``.copy()`` it and ``.update(inspector_id.encode("utf-8"))`` to rank many inspectors for
    one enterprise; :func:`inspector_rank_key` is the one-shot form.
    """
    _check_seed(seed)
    return hashlib.sha256(_DRAW_TAG + bytes(seed) + _INSPECTOR_TAG + uscc.encode("ascii") + b"\x00")


def inspector_rank_key(seed: bytes, uscc: str, inspector_id: str) -> bytes:
    """DESIGN §4 step 5: ``SHA-256(b"QSDRAW-1\\x00" + seed + b"\\x02" + uscc + b"\\x00" +
    inspector_id)``; eligible inspectors are ranked by it ascending."""
    h = inspector_rank_prefix(seed, uscc)
    h.update(inspector_id.encode("utf-8"))
    return h.digest()


# --------------------------------------------------------------------------- step 6


def build_result(
    *,
    commitment: str,
    nonce: bytes,
    entropy: str,
    seed: bytes,
    selected: Sequence[Selected],
    teams: Mapping[str, Sequence[str]],
) -> dict[str, Any]:
    """``result.json`` of DESIGN §4 step 6, all hex lower-case, entries in key order.

    Every drawn enterprise needs a team and every team a drawn enterprise (a draw that could
    not staff an enterprise fails as a whole and has no result).
    """
    if not _is_hex64(commitment):
        raise ValueError("commitment must be 64 lower-case hex characters")
    _check_seed(seed)
    usccs = {s.uscc for s in selected}
    if len(usccs) != len(selected):
        raise ValueError("a uscc appears twice in the drawn list")
    missing = [s.uscc for s in selected if s.uscc not in teams]
    if missing:
        raise ValueError(f"no inspector team for drawn enterprise(s): {', '.join(missing)}")
    extra = sorted(set(teams) - usccs)
    if extra:
        raise ValueError(f"team(s) for enterprise(s) not drawn: {', '.join(extra)}")
    return {
        "commitment": commitment,
        "nonce": bytes(nonce).hex(),
        "entropy": entropy,
        "seed": bytes(seed).hex(),
        "selected": [
            {
                "uscc": s.uscc,
                "stratum": s.stratum,
                "key": s.key.lower(),
                "inspectors": list(teams[s.uscc]),
            }
            for s in sorted(selected, key=lambda s: (s.key, s.uscc))
        ],
    }


_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def make_bundle(files: Mapping[str, bytes]) -> bytes:
    """The published bundle (DESIGN §4 step 6) as a deterministic zip.

    Members are sorted by name, stamped 1980-01-01 00:00, mode 0644, ZIP_DEFLATED level 9,
    so the same files give the same bytes with the same zlib. The five members of
    :data:`BUNDLE_MEMBERS` are required; other plain names (e.g. a README) may be added.
    """
    missing = [name for name in BUNDLE_MEMBERS if name not in files]
    if missing:
        raise ValueError(f"bundle is missing {', '.join(missing)}")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name in sorted(files):
            if not name or "/" in name or "\\" in name or name.startswith("."):
                raise ValueError(f"bundle member name {name!r} must be a plain file name")
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix; the default depends on the platform writing it
            info.external_attr = 0o644 << 16
            zf.writestr(info, bytes(files[name]), compresslevel=9)
    return buf.getvalue()


def read_bundle(data: bytes) -> dict[str, bytes]:
    """Members of a bundle by name.

    ValueError when ``data`` is not a zip, a required member is missing, a name repeats, or
    the members would uncompress to more than :data:`MAX_BUNDLE_UNCOMPRESSED` bytes (zip-bomb
    guard; zipfile never yields more than a member's declared size).
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            names = [i.filename for i in infos]
            if len(set(names)) != len(names):
                raise ValueError("bundle has a repeated member name")
            if sum(i.file_size for i in infos) > MAX_BUNDLE_UNCOMPRESSED:
                raise ValueError("bundle uncompresses to more than 2 GiB")
            missing = [name for name in BUNDLE_MEMBERS if name not in names]
            if missing:
                raise ValueError(f"bundle is missing {', '.join(missing)}")
            return {i.filename: zf.read(i) for i in infos if not i.is_dir()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError) as exc:
        raise ValueError(f"not a readable zip bundle: {exc}") from exc
    except (RuntimeError, NotImplementedError) as exc:  # encrypted or unknown compression
        raise ValueError(f"unsupported zip bundle: {exc}") from exc


def _cmp(differences: list[str], what: str, found: object, expected: object) -> bool:
    if found != expected:
        differences.append(f"{what}: bundle has {found!r}, recomputed {expected!r}")
        return False
    return True


def verify_bundle(data: bytes, *, workers: int = 1) -> VerifyReport:
    """Re-run a published draw from its bundle and compare (DESIGN §4 step 6).

    Checks, in this order: the SHA-256 of pool/inspectors/exclusions against ``params.json``;
    the commitment against SHA-256 of the canonical params; the nonce against its committed
    hash; the seed (step 3); the quotas against the pool's strata; then re-runs selection
    (step 4) and team assignment (step 5) and compares each drawn uscc, stratum, key and
    team. Cheap checks all run and report; the re-run always uses the recomputed seed, and
    the comparison stops at the first differing drawn enterprise. Never raises for bad input.
    ``workers`` > 1 hashes the inspector ranks of a large draw in that many processes (see
    :func:`qsampling.core.assignment.assign_teams`; the outcome is the same).
    """
    try:
        files = read_bundle(data)
        params = json.loads(files["params.json"].decode("utf-8"))
        result = json.loads(files["result.json"].decode("utf-8"))
    except ValueError as exc:  # includes UnicodeDecodeError and json.JSONDecodeError
        return VerifyReport(False, [f"unreadable bundle: {exc}"])
    diffs: list[str] = []
    try:
        _verify_files(files, params, result, diffs, workers)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        diffs.append(f"malformed bundle: {type(exc).__name__}: {exc}")
    return VerifyReport(not diffs, diffs)


def _verify_files(
    files: Mapping[str, bytes], params: Any, result: Any, diffs: list[str], workers: int
) -> None:
    # Imported here because assignment imports this module's types.
    from qsampling.core.assignment import StaffingError, assign_teams

    if not isinstance(params, dict) or not isinstance(result, dict):
        diffs.append("params.json and result.json must be JSON objects")
        return
    if set(params) != _PARAMS_KEYS:
        diffs.append(f"params.json keys {sorted(params)} differ from {sorted(_PARAMS_KEYS)}")
        return
    _cmp(diffs, "params.algorithm", params["algorithm"], ALGORITHM)
    for member, key in (
        ("pool.csv", "pool_sha256"),
        ("inspectors.csv", "inspectors_sha256"),
        ("exclusions.csv", "exclusions_sha256"),
    ):
        _cmp(diffs, f"params.{key} (SHA-256 of {member})", params[key], sha256_hex(files[member]))
    commitment = commitment_of(params)
    _cmp(diffs, "result.commitment (SHA-256 of canonical params)", result["commitment"], commitment)
    nonce = bytes.fromhex(result["nonce"])
    _cmp(diffs, "result.nonce (lower-case hex)", result["nonce"], nonce.hex())
    _cmp(
        diffs,
        "params.server_nonce_sha256 (SHA-256 of result.nonce)",
        params["server_nonce_sha256"],
        sha256_hex(nonce),
    )
    seed = derive_seed(commitment, nonce, result["entropy"])
    _cmp(diffs, "result.seed", result["seed"], seed.hex())

    pool = parse_pool_csv(files["pool.csv"])
    quotas = params["quotas"]
    strata = sorted({c.stratum for c in pool})
    if not isinstance(quotas, dict) or sorted(quotas) != strata:
        shown = sorted(quotas) if isinstance(quotas, dict) else quotas
        diffs.append(f"params.quotas strata {shown!r} differ from pool.csv strata {strata!r}")
        return
    try:
        selected = select(seed, pool, quotas)
        teams = assign_teams(
            seed=seed,
            selected=selected,
            inspectors=parse_inspectors_csv(files["inspectors.csv"]),
            exclusions=parse_exclusions_csv(files["exclusions.csv"]),
            enterprise_units={c.uscc: c.unit for c in pool},
            team_size=params["team_size"],
            max_tasks_per_inspector=params["max_tasks_per_inspector"],
            cross_unit=params["cross_unit"],
            workers=workers,
        )
    except StaffingError as exc:
        diffs.append(f"re-run cannot staff the draw: {exc}")
        return
    published = result["selected"]
    if not isinstance(published, list):
        diffs.append("result.selected must be a list")
        return
    _cmp(diffs, "number of drawn enterprises", len(published), len(selected))
    for n, (got, want) in enumerate(zip(published, selected, strict=False), start=1):
        expected = {
            "uscc": want.uscc,
            "stratum": want.stratum,
            "key": want.key,
            "inspectors": teams[want.uscc],
        }
        if not isinstance(got, dict):
            diffs.append(f"drawn #{n}: bundle has {got!r}, recomputed {expected!r}")
            return
        if not all([_cmp(diffs, f"drawn #{n} {k}", got.get(k), v) for k, v in expected.items()]):
            return  # after the first differing enterprise, later ones usually all differ
        if set(got) != set(expected):
            diffs.append(f"drawn #{n}: unexpected fields {sorted(set(got) - set(expected))}")
            return
