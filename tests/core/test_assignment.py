"""Inspector teams (DESIGN §4 step 5; 行政处罚法 art. 42/43)."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence

import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from qsampling.core.assignment import StaffingError, assign_teams
from qsampling.core.draw import Candidate, InspectorRef, Selected, inspector_rank_key, select

SEED = hashlib.sha256(b"assignment tests").digest()


def drawn(usccs: Sequence[str], seed: bytes = SEED) -> list[Selected]:
    return select(seed, [Candidate(u, "A", "") for u in usccs], {"A": len(usccs)})


def reference_teams(
    *,
    seed: bytes,
    selected: Sequence[Selected],
    inspectors: Sequence[InspectorRef],
    exclusions: set[tuple[str, str]],
    units: Mapping[str, str],
    team_size: int,
    cap: int | None,
    cross_unit: bool,
) -> tuple[dict[str, list[str]], list[str]]:
    """DESIGN §4 step 5 read literally: rank every eligible inspector, take the first m."""
    tasks = Counter[str]()
    teams: dict[str, list[str]] = {}
    unstaffed: list[str] = []
    for s in sorted(selected, key=lambda s: s.key):
        eligible = [
            i.inspector_id
            for i in inspectors
            if (i.inspector_id, s.uscc) not in exclusions
            and not (cross_unit and units[s.uscc] != "" and i.unit == units[s.uscc])
            and (cap is None or tasks[i.inspector_id] < cap)
        ]
        eligible.sort(key=lambda i: inspector_rank_key(seed, s.uscc, i))
        if len(eligible) < team_size:
            unstaffed.append(s.uscc)
            continue
        teams[s.uscc] = eligible[:team_size]
        tasks.update(teams[s.uscc])
    return teams, unstaffed


@st.composite
def scenarios(draw_: st.DrawFn) -> dict:
    usccs = draw_(
        st.lists(
            st.text("0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=18, max_size=18),
            min_size=1,
            max_size=12,
            unique=True,
        )
    )
    unit_choices = st.sampled_from(["", "U1", "U2", "U3"])
    ids = draw_(
        st.lists(
            st.text("ZF0123456789张", min_size=1, max_size=5), min_size=0, max_size=12, unique=True
        )
    )
    inspectors = [InspectorRef(i, draw_(unit_choices)) for i in ids]
    pairs = [(i, u) for i in ids for u in usccs]
    exclusions = draw_(st.sets(st.sampled_from(pairs))) if pairs else set()
    return {
        "seed": draw_(st.binary(min_size=32, max_size=32)),
        "usccs": usccs,
        "units": {u: draw_(unit_choices) for u in usccs},
        "inspectors": inspectors,
        "exclusions": exclusions,
        "team_size": draw_(st.integers(2, 3)),
        "cap": draw_(st.one_of(st.none(), st.integers(1, 4))),
        "cross_unit": draw_(st.booleans()),
    }


@settings(max_examples=300, deadline=None, database=None)
@given(sc=scenarios())
def test_teams_follow_every_rule_and_equal_the_literal_reading(sc: dict) -> None:
    selected = drawn(sc["usccs"], sc["seed"])
    kwargs = {
        "seed": sc["seed"],
        "selected": selected,
        "inspectors": sc["inspectors"],
        "exclusions": sc["exclusions"],
        "team_size": sc["team_size"],
        "cross_unit": sc["cross_unit"],
    }
    want, want_unstaffed = reference_teams(
        **kwargs,
        units=sc["units"],
        cap=sc["cap"],  # type: ignore[arg-type]
    )
    try:
        teams = assign_teams(
            **kwargs,  # type: ignore[arg-type]
            enterprise_units=sc["units"],
            max_tasks_per_inspector=sc["cap"],
        )
        unstaffed: list[str] = []
    except StaffingError as exc:
        teams, unstaffed = exc.teams, exc.unstaffed
    assert teams == want
    assert unstaffed == want_unstaffed
    assert set(teams) | set(unstaffed) == set(sc["usccs"])

    unit_of = {i.inspector_id: i.unit for i in sc["inspectors"]}
    load = Counter(i for team in teams.values() for i in team)
    for uscc, team in teams.items():
        assert len(team) == len(set(team)) == sc["team_size"]  # art. 42: at least two
        assert not any((i, uscc) in sc["exclusions"] for i in team)  # art. 43 conflicts
        if sc["cross_unit"] and sc["units"][uscc]:
            assert all(unit_of[i] != sc["units"][uscc] for i in team)
        ranks = [inspector_rank_key(sc["seed"], uscc, i) for i in team]
        assert ranks == sorted(ranks)
    if sc["cap"] is not None:
        assert max(load.values(), default=0) <= sc["cap"]


def test_team_size_below_two_is_refused() -> None:
    with pytest.raises(ValueError, match="art. 42"):
        assign_teams(
            seed=SEED,
            selected=drawn(["91110108MA00100002"]),
            inspectors=[InspectorRef("ZF1", "")],
            exclusions=[],
            enterprise_units={},
            team_size=1,
            max_tasks_per_inspector=None,
            cross_unit=False,
        )


def test_staffing_error_lists_every_unstaffed_enterprise() -> None:
    usccs = [f"91110108MA0{n:06d}X" for n in range(6)]
    selected = drawn(usccs)
    inspectors = [InspectorRef(f"ZF{n}", "SJ01" if n < 3 else "SJ02") for n in range(5)]
    # Enterprises 0, 2 and 4 are supervised by SJ01, so under the cross-unit rule only the
    # two SJ02 inspectors are eligible; 0 and 2 have a declared conflict with one of them.
    units = {u: "SJ01" if n % 2 == 0 else "" for n, u in enumerate(usccs)}
    exclusions = [("ZF3", usccs[0]), ("ZF4", usccs[2])]
    with pytest.raises(StaffingError) as caught:
        assign_teams(
            seed=SEED,
            selected=selected,
            inspectors=inspectors,
            exclusions=exclusions,
            enterprise_units=units,
            team_size=2,
            max_tasks_per_inspector=None,
            cross_unit=True,
        )
    order = [s.uscc for s in selected]
    expected = sorted([usccs[0], usccs[2]], key=order.index)
    assert caught.value.unstaffed == expected
    assert all(u in str(caught.value) for u in expected)
    # Everyone else was still staffed by the walk (it did not stop at the first failure).
    assert set(caught.value.teams) == set(usccs) - set(expected)


def test_cap_exhaustion_fails_late_enterprises() -> None:
    usccs = [f"91110108MA0{n:06d}X" for n in range(5)]
    selected = drawn(usccs)
    with pytest.raises(StaffingError) as caught:
        assign_teams(
            seed=SEED,
            selected=selected,
            inspectors=[InspectorRef(f"ZF{n}", "") for n in range(4)],
            exclusions=[],
            enterprise_units={},
            team_size=2,
            max_tasks_per_inspector=2,
            cross_unit=False,
        )
    # 4 inspectors x 2 tasks = 8 places = 4 teams of two: the last drawn goes unstaffed.
    assert caught.value.unstaffed == [selected[-1].uscc]


def test_empty_units_never_count_as_the_same_unit() -> None:
    selected = drawn(["91110108MA00100002", "91110108MA0247570L"])
    teams = assign_teams(
        seed=SEED,
        selected=selected,
        inspectors=[InspectorRef("ZF1", ""), InspectorRef("ZF2", "")],
        exclusions=[],
        enterprise_units={"91110108MA00100002": "", "91110108MA0247570L": "SJ01"},
        team_size=2,
        max_tasks_per_inspector=None,
        cross_unit=True,
    )
    assert {uscc: sorted(team) for uscc, team in teams.items()} == {
        "91110108MA00100002": ["ZF1", "ZF2"],
        "91110108MA0247570L": ["ZF1", "ZF2"],
    }


def test_cross_unit_needs_the_enterprise_unit() -> None:
    with pytest.raises(ValueError, match="supervising unit"):
        assign_teams(
            seed=SEED,
            selected=drawn(["91110108MA00100002"]),
            inspectors=[InspectorRef("ZF1", ""), InspectorRef("ZF2", "")],
            exclusions=[],
            enterprise_units={},
            team_size=2,
            max_tasks_per_inspector=None,
            cross_unit=True,
        )


def test_duplicate_inspectors_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        assign_teams(
            seed=SEED,
            selected=drawn(["91110108MA00100002"]),
            inspectors=[InspectorRef("ZF1", ""), InspectorRef("ZF1", "")],
            exclusions=[],
            enterprise_units={},
            team_size=2,
            max_tasks_per_inspector=None,
            cross_unit=False,
        )


def test_first_ranked_inspector_is_uniform_over_many_seeds() -> None:
    """Chi-square goodness of fit: who leads a team of two out of ten, over 2,000 seeds."""
    inspectors = [InspectorRef(f"ZF{n:02d}", "") for n in range(10)]
    leads = Counter[str]()
    uscc = "91110108MA00100002"
    for n in range(2000):
        seed = hashlib.sha256(b"inspector uniformity" + n.to_bytes(4, "big")).digest()
        teams = assign_teams(
            seed=seed,
            selected=drawn([uscc], seed),
            inspectors=inspectors,
            exclusions=[],
            enterprise_units={},
            team_size=2,
            max_tasks_per_inspector=None,
            cross_unit=False,
        )
        leads[teams[uscc][0]] += 1
    counts = [leads[i.inspector_id] for i in inspectors]
    assert scipy.stats.chisquare(counts).pvalue > 0.001


@settings(max_examples=300, deadline=None, database=None)
@given(sc=scenarios(), margin=st.integers(0, 3))
def test_short_lists_with_any_margin_give_the_literal_teams(sc: dict, margin: int) -> None:
    """The cap is applied to short lists of the best-ranked inspectors; however short they
    are, an enterprise whose list the cap empties is ranked again and the teams stay those
    of the one-pass reading of DESIGN §4 step 5."""
    selected = drawn(sc["usccs"], sc["seed"])
    want, want_unstaffed = reference_teams(
        seed=sc["seed"],
        selected=selected,
        inspectors=sc["inspectors"],
        exclusions=sc["exclusions"],
        units=sc["units"],
        team_size=sc["team_size"],
        cap=sc["cap"],
        cross_unit=sc["cross_unit"],
    )
    try:
        teams = assign_teams(
            seed=sc["seed"],
            selected=selected,
            inspectors=sc["inspectors"],
            exclusions=sc["exclusions"],
            enterprise_units=sc["units"],
            team_size=sc["team_size"],
            max_tasks_per_inspector=sc["cap"],
            cross_unit=sc["cross_unit"],
            top_k=sc["team_size"] + margin,
        )
        unstaffed: list[str] = []
    except StaffingError as exc:
        teams, unstaffed = exc.teams, exc.unstaffed
    assert teams == want
    assert unstaffed == want_unstaffed


def _busy_scenario(n_enterprises: int, n_inspectors: int) -> dict:
    usccs = [f"91350000{n:09d}X" for n in range(n_enterprises)]
    inspectors = [InspectorRef(f"ZF{i:04d}", f"U{i % 3}") for i in range(n_inspectors)]
    return {
        "seed": SEED,
        "selected": drawn(usccs),
        "inspectors": inspectors,
        # every third enterprise has a conflict with the first five inspectors
        "exclusions": {(f"ZF{i:04d}", u) for u in usccs[::3] for i in range(5)},
        "units": {u: f"U{n % 4}" for n, u in enumerate(usccs)},  # U3: no inspector there
    }


def test_a_tight_cap_forces_full_re_ranking_and_keeps_the_teams(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a cap of 2 tasks and 26 inspectors for 19 enterprises, the best-ranked
    inspectors of later enterprises are soon all capped: they are ranked again in full."""
    import qsampling.core.assignment as assignment

    # the pure-Python path, whose full re-ranking goes through _rank_one (the extension's is
    # tested in tests/core/test_rankhash.py)
    monkeypatch.setattr(assignment, "_rankhash", None)
    sc = _busy_scenario(19, 26)
    calls: list[int] = []
    real = assignment._rank_one

    def spy(*args: object) -> tuple[int, list[int]]:
        calls.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(assignment, "_rank_one", spy)
    want, unstaffed = reference_teams(
        seed=sc["seed"],
        selected=sc["selected"],
        inspectors=sc["inspectors"],
        exclusions=sc["exclusions"],
        units=sc["units"],
        team_size=2,
        cap=2,
        cross_unit=True,
    )
    assert unstaffed == []
    teams = assign_teams(
        seed=sc["seed"],
        selected=sc["selected"],
        inspectors=sc["inspectors"],
        exclusions=sc["exclusions"],
        enterprise_units=sc["units"],
        team_size=2,
        max_tasks_per_inspector=2,
        cross_unit=True,
        top_k=3,
    )
    assert teams == want
    assert len(calls) > len(sc["selected"])  # some enterprises were ranked again
    assert max(Counter(i for t in teams.values() for i in t).values()) == 2


@pytest.mark.parametrize("cap", [None, 20])
def test_worker_processes_give_the_same_teams(
    monkeypatch: pytest.MonkeyPatch, cap: int | None
) -> None:
    """The hashing may run in worker processes (large draws); the teams do not change."""
    import qsampling.core.assignment as assignment

    sc = _busy_scenario(300, 60)
    kwargs = {
        "seed": sc["seed"],
        "selected": sc["selected"],
        "inspectors": sc["inspectors"],
        "exclusions": sc["exclusions"],
        "enterprise_units": sc["units"],
        "team_size": 3,
        "max_tasks_per_inspector": cap,
        "cross_unit": True,
    }
    one = assign_teams(**kwargs)  # type: ignore[arg-type]
    monkeypatch.setattr(assignment, "_PARALLEL_MIN_HASHES", 0)
    monkeypatch.setattr(assignment, "_CHUNK", 37)
    two = assign_teams(**kwargs, workers=2)  # type: ignore[arg-type]
    want, unstaffed = reference_teams(
        seed=sc["seed"],
        selected=sc["selected"],
        inspectors=sc["inspectors"],
        exclusions=sc["exclusions"],
        units=sc["units"],
        team_size=3,
        cap=cap,
        cross_unit=True,
    )
    assert unstaffed == []
    assert one == two == want
    assert list(two) == [s.uscc for s in sc["selected"]]
