"""Inspector teams for a draw: DESIGN §4 step 5 of algorithm QSDRAW-1 (the second 随机).

Rules carried here (DESIGN §3, Draws):

- at least two law-enforcement officers per task (行政处罚法 art. 42), so ``team_size >= 2``;
- no inspector with a declared conflict of interest with the enterprise (行政处罚法 art. 43)
  and no inspector barred by rotation: both arrive as (inspector_id, uscc) exclusion pairs;
- optional cross-unit rule (所所交叉): no inspector from the enterprise's supervising unit;
- a per-plan workload cap per inspector.

Pure and deterministic: the only randomness is the seed, through
:func:`qsampling.core.draw.inspector_rank_key`. The rank keys are hashed by the C extension
:mod:`qsampling.core._rankhash` when it was built (installing from source with a C compiler
builds it), else by hashlib from Python; both give the same teams, the extension in about a
tenth of the CPU time.
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from qsampling.core.draw import (
    _DRAW_TAG,
    _INSPECTOR_TAG,
    InspectorRef,
    Selected,
    inspector_rank_prefix,
)

if TYPE_CHECKING:
    from hashlib import _Hash as HashObject

try:
    from qsampling.core import _rankhash
except ImportError:  # installed without a C compiler: hashlib from Python, same teams
    _rankhash = None  # type: ignore[assignment]


class StaffingError(Exception):
    """Some drawn enterprises could not get a full team (DESIGN §4 step 5).

    The draw fails as a whole (the service answers 409 and stores nothing). ``unstaffed``
    lists every such uscc in key order; ``teams`` holds the teams that the walk did form,
    for diagnosis only.
    """

    def __init__(self, unstaffed: list[str], team_size: int, teams: dict[str, list[str]]):
        self.unstaffed = unstaffed
        self.team_size = team_size
        self.teams = teams
        shown = ", ".join(unstaffed[:20]) + (" …" if len(unstaffed) > 20 else "")
        super().__init__(
            f"{len(unstaffed)} drawn enterprise(s) could not be staffed with "
            f"{team_size} eligible inspectors: {shown}"
        )


def assign_teams(
    *,
    seed: bytes,
    selected: Sequence[Selected],
    inspectors: Sequence[InspectorRef],
    exclusions: Iterable[tuple[str, str]],
    enterprise_units: Mapping[str, str],
    team_size: int,
    max_tasks_per_inspector: int | None,
    cross_unit: bool,
    workers: int = 1,
    top_k: int | None = None,
) -> dict[str, list[str]]:
    """Form the inspector team of every drawn enterprise (DESIGN §4 step 5).

    Walk the drawn enterprises in key order. For enterprise ``e`` the eligible inspectors are
    those in ``inspectors`` with no (inspector_id, e) pair in ``exclusions`` (art. 43
    conflicts, rotation), not from ``e``'s unit when ``cross_unit`` (an enterprise with an
    empty unit has no such restriction; an inspector with an empty unit is never local), and
    with fewer than ``max_tasks_per_inspector`` tasks so far (None: no cap). They are ranked
    by ``inspector_rank_key(seed, e, inspector_id)`` ascending and the first ``team_size``
    form the team.

    An enterprise with fewer than ``team_size`` eligible inspectors gets nobody and the walk
    goes on; at the end :class:`StaffingError` lists all of them.

    Returns uscc -> inspector ids in rank order, in key order. Cost: one SHA-256 per eligible
    inspector per enterprise (the smallest hashes need every hash): with 2,000 inspectors
    about 0.1 ms of one core per enterprise with the C extension on a CPU with SHA
    instructions, 1.2-1.5 ms from Python.

    How it is computed does not change the result. The rank keys do not depend on the
    workload cap, so the hashing is done first, per enterprise, keeping only the ``top_k``
    best-ranked inspectors that are neither excluded nor local (by default ``team_size``
    without a cap, ``team_size + 14`` with one); with ``workers > 1`` this runs in that
    many processes. The walk in key order then applies the cap to those short lists: the
    first ``team_size`` under the cap are exactly the team of the one-pass definition,
    because every inspector outside the short list ranks after all of it. Only when the cap
    has removed so many that fewer than ``team_size`` remain (and there were more eligible
    inspectors than the short list) is the enterprise ranked again in full.
    """
    if isinstance(team_size, bool) or not isinstance(team_size, int) or team_size < 2:
        raise ValueError(
            "team_size must be an integer >= 2: 行政处罚法 art. 42 requires at least two "
            "law-enforcement officers"
        )
    cap = max_tasks_per_inspector
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise ValueError("max_tasks_per_inspector must be None or an integer >= 1")
    if not isinstance(seed, bytes | bytearray) or len(seed) != 32:
        raise ValueError("seed must be 32 raw bytes")
    if top_k is None:
        top_k = team_size if cap is None else team_size + _CAP_MARGIN
    if top_k < team_size:
        raise ValueError("top_k must be at least team_size")

    order = sorted(selected, key=lambda s: (s.key, s.uscc))
    drawn = {s.uscc for s in order}
    if len(drawn) != len(order):
        raise ValueError("a uscc appears twice in the drawn list")

    ids: list[str] = []
    seen: set[str] = set()
    for ins in inspectors:
        if ins.inspector_id in seen:
            raise ValueError(f"duplicate inspector_id {ins.inspector_id!r}")
        seen.add(ins.inspector_id)
        ids.append(ins.inspector_id)
    index = {inspector_id: i for i, inspector_id in enumerate(ids)}
    encoded = [i.encode("utf-8") for i in ids]
    units = [ins.unit for ins in inspectors]

    banned: dict[str, set[int]] = {}
    for inspector_id, uscc in exclusions:
        # pairs for enterprises not drawn, or inspectors not eligible, cannot matter
        if uscc in drawn and inspector_id in index:
            banned.setdefault(uscc, set()).add(index[inspector_id])

    # Per enterprise: (uscc, local unit, banned inspector indexes). The local unit "" (no
    # cross-unit rule, or the enterprise's unit is unknown) bars nobody, and an inspector's
    # empty unit never equals it.
    jobs: list[tuple[str, str, frozenset[int]]] = []
    for s in order:
        local = ""
        if cross_unit:
            if s.uscc not in enterprise_units:
                raise ValueError(f"no supervising unit given for drawn enterprise {s.uscc!r}")
            local = enterprise_units[s.uscc]
        jobs.append((s.uscc, local, frozenset(banned.get(s.uscc, ()))))

    eligible, best = _shortlists(bytes(seed), jobs, encoded, units, top_k, workers)

    tasks = [0] * len(ids)
    teams: dict[str, list[str]] = {}
    unstaffed: list[str] = []
    for n, (uscc, local, excluded) in enumerate(jobs):
        shortlist = [i for i in best[n * top_k : (n + 1) * top_k] if i >= 0]
        if cap is None:
            team = shortlist[:team_size]
        else:
            team = [i for i in shortlist if tasks[i] < cap][:team_size]
            if len(team) < team_size and eligible[n] > len(shortlist):
                # the cap emptied the short list: rank every inspector still under the cap
                full = frozenset(i for i, t in enumerate(tasks) if t >= cap)
                _, team = _rank_one(
                    bytes(seed), uscc, local, excluded | full, encoded, units, team_size
                )
        if len(team) < team_size:
            unstaffed.append(uscc)
            continue
        teams[uscc] = [ids[i] for i in team]
        for i in team:
            tasks[i] += 1

    if unstaffed:
        raise StaffingError(unstaffed, team_size, teams)
    return teams


# Short-list length beyond team_size when a workload cap applies: how many capped
# inspectors an enterprise's best-ranked ones may include before it is ranked again in full.
_CAP_MARGIN = 14
# Below this many (enterprise, inspector) hashes worker processes cost more than they save
# (threads, with the extension, would not, but a fraction of a second is not worth splitting).
_PARALLEL_MIN_HASHES = 2_000_000
_CHUNK = 2_000


def _rank_one(
    seed: bytes,
    uscc: str,
    local: str,
    excluded: frozenset[int],
    encoded: Sequence[bytes],
    units: Sequence[str],
    k: int,
) -> tuple[int, list[int]]:
    """(number of eligible inspectors, indexes of the ``k`` best-ranked) for one enterprise,
    ignoring the workload cap; best first, ties (never seen: SHA-256) by inspector_id."""
    if _rankhash is not None:
        inspectors = _CInspectors(encoded, units)
        eligible, best = inspectors.rank(seed, [(uscc, local, excluded)], k)
        return eligible[0], [i for i in best if i >= 0]
    # copy/update/digest on the prefix state, in a comprehension with local names: the
    # per-pair cost is then close to the hash itself (2,000 pairs per enterprise)
    copy = inspector_rank_prefix(seed, uscc).copy
    if not excluded and not local:
        keys = [_digest(copy(), e) for e in encoded]
        best_ = heapq.nsmallest(k, zip(keys, encoded, range(len(keys)), strict=True))
        return len(keys), [b[2] for b in best_]
    ranked = [
        (_digest(copy(), encoded[i]), encoded[i], i)
        for i in range(len(encoded))
        if i not in excluded and not (local and units[i] == local)
    ]
    return len(ranked), [b[2] for b in heapq.nsmallest(k, ranked)]


def _digest(h: HashObject, data: bytes) -> bytes:
    h.update(data)
    return h.digest()


def _rank_chunk(
    seed: bytes,
    jobs: Sequence[tuple[str, str, frozenset[int]]],
    encoded: Sequence[bytes],
    units: Sequence[str],
    k: int,
) -> tuple[array[int], array[int]]:
    """Short lists of a run of enterprises, compact: the eligible counts, and ``k`` inspector
    indexes per enterprise (padded with -1), best first. A worker-process entry point."""
    eligible: array[int] = array("i")
    best: array[int] = array("i")
    pad = [-1] * k
    for uscc, local, excluded in jobs:
        count, top = _rank_one(seed, uscc, local, excluded, encoded, units, k)
        eligible.append(count)
        best.extend(top)
        best.extend(pad[len(top) :])
    return eligible, best


def _rank_prefix(seed: bytes, uscc: str) -> bytes:
    """The bytes :func:`qsampling.core.draw.inspector_rank_prefix` hashes: the rank key of
    inspector i is ``SHA-256(_rank_prefix(seed, uscc) + i.encode("utf-8"))``."""
    return _DRAW_TAG + seed + _INSPECTOR_TAG + uscc.encode("ascii") + b"\x00"


class _CInspectors:
    """The eligible inspectors in the form :func:`qsampling.core._rankhash.rank` takes:
    UTF-8 ids, and units as small integers (-1: no unit, which is never local)."""

    def __init__(self, encoded: Sequence[bytes], units: Sequence[str]):
        self.encoded = list(encoded)
        self.unit_code: dict[str, int] = {}
        for unit in units:
            if unit:
                self.unit_code.setdefault(unit, len(self.unit_code))
        self.id_units = array("i", [self.unit_code[u] if u else -1 for u in units])

    def rank(
        self, seed: bytes, jobs: Sequence[tuple[str, str, frozenset[int]]], k: int
    ) -> tuple[array[int], array[int]]:
        """What :func:`_rank_chunk` returns, from the C extension (without the GIL)."""
        assert _rankhash is not None
        # an enterprise's local unit that no inspector has bars nobody: -1, as "" does
        code = self.unit_code.get
        local_units = array("i", [code(local, -1) if local else -1 for _, local, _ in jobs])
        starts = array("i", [0])
        excluded = array("i")
        for _, _, banned in jobs:
            excluded.extend(banned)
            starts.append(len(excluded))
        eligible_bytes, best_bytes = _rankhash.rank(
            [_rank_prefix(seed, uscc) for uscc, _, _ in jobs],
            self.encoded,
            self.id_units,
            local_units,
            starts,
            excluded,
            k,
        )
        eligible: array[int] = array("i")
        eligible.frombytes(eligible_bytes)
        best: array[int] = array("i")
        best.frombytes(best_bytes)
        return eligible, best


def _shortlists(
    seed: bytes,
    jobs: list[tuple[str, str, frozenset[int]]],
    encoded: list[bytes],
    units: list[str],
    k: int,
    workers: int,
) -> tuple[array[int], array[int]]:
    serial = workers <= 1 or len(jobs) * len(encoded) < _PARALLEL_MIN_HASHES
    chunks = [jobs[i : i + _CHUNK] for i in range(0, len(jobs), _CHUNK)]
    eligible: array[int] = array("i")
    best: array[int] = array("i")
    if _rankhash is not None:
        inspectors = _CInspectors(encoded, units)
        if serial:
            return inspectors.rank(seed, jobs, k)
        from concurrent.futures import ThreadPoolExecutor

        # the extension hashes without the GIL: threads share the inspectors, no copies
        with ThreadPoolExecutor(max_workers=workers) as threads:
            for part_eligible, part_best in threads.map(
                lambda chunk: inspectors.rank(seed, chunk, k), chunks
            ):
                eligible.extend(part_eligible)
                best.extend(part_best)
        return eligible, best
    if serial:
        return _rank_chunk(seed, jobs, encoded, units, k)
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    # "spawn": the caller may be a threaded server, and a forked child inherits its locks
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        n = len(chunks)
        for part_eligible, part_best in pool.map(
            _rank_chunk, [seed] * n, chunks, [encoded] * n, [units] * n, [k] * n
        ):
            eligible.extend(part_eligible)
            best.extend(part_best)
    return eligible, best
