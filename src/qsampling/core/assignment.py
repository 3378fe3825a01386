"""Inspector teams for a draw: DESIGN §4 step 5 of algorithm QSDRAW-1 (the second 随机).

Rules carried here (DESIGN §3, Draws):

- at least two law-enforcement officers per task (行政处罚法 art. 42), so ``team_size >= 2``;
- no inspector with a declared conflict of interest with the enterprise (行政处罚法 art. 43)
  and no inspector barred by rotation: both arrive as (inspector_id, uscc) exclusion pairs;
- optional cross-unit rule (所所交叉): no inspector from the enterprise's supervising unit;
- a per-plan workload cap per inspector.

Pure and deterministic: the only randomness is the seed, through
:func:`qsampling.core.draw.inspector_rank_key`.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence

from qsampling.core.draw import InspectorRef, Selected, inspector_rank_prefix


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
    inspector per enterprise (the smallest hashes need every hash), about 1.2-1.5 ms per
    enterprise with 2,000 inspectors.
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

    order = sorted(selected, key=lambda s: (s.key, s.uscc))
    drawn = {s.uscc for s in order}
    if len(drawn) != len(order):
        raise ValueError("a uscc appears twice in the drawn list")

    # (inspector_id, encoded id, unit) of inspectors still under the cap, in a fixed order.
    available: list[tuple[str, bytes, str]] = []
    seen: set[str] = set()
    for ins in inspectors:
        if ins.inspector_id in seen:
            raise ValueError(f"duplicate inspector_id {ins.inspector_id!r}")
        seen.add(ins.inspector_id)
        available.append((ins.inspector_id, ins.inspector_id.encode("utf-8"), ins.unit))

    banned: dict[str, set[str]] = {}
    for inspector_id, uscc in exclusions:
        if uscc in drawn:  # pairs for enterprises not drawn cannot matter
            banned.setdefault(uscc, set()).add(inspector_id)

    tasks: dict[str, int] = dict.fromkeys(seen, 0)
    teams: dict[str, list[str]] = {}
    unstaffed: list[str] = []
    no_one: set[str] = set()

    for s in order:
        uscc = s.uscc
        # The unit whose inspectors may not go; "" (no cross-unit rule, or the enterprise's
        # unit is unknown) bars nobody, and an inspector's empty unit never equals it.
        local = ""
        if cross_unit:
            if uscc not in enterprise_units:
                raise ValueError(f"no supervising unit given for drawn enterprise {uscc!r}")
            local = enterprise_units[uscc]
        excluded = banned.get(uscc, no_one)
        copy = inspector_rank_prefix(seed, uscc).copy
        ranked: list[tuple[bytes, str]] = []
        for inspector_id, encoded, inspector_unit in available:
            if inspector_id in excluded or (local and inspector_unit == local):
                continue
            h = copy()
            h.update(encoded)
            ranked.append((h.digest(), inspector_id))
        if len(ranked) < team_size:
            unstaffed.append(uscc)
            continue
        team = [inspector_id for _, inspector_id in heapq.nsmallest(team_size, ranked)]
        teams[uscc] = team
        full = False
        for inspector_id in team:
            tasks[inspector_id] += 1
            full |= cap is not None and tasks[inspector_id] >= cap
        if full:
            available = [a for a in available if cap is None or tasks[a[0]] < cap]

    if unstaffed:
        raise StaffingError(unstaffed, team_size, teams)
    return teams
