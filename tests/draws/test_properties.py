"""Properties of the draw the service relies on (hypothesis), and uniformity over seeds."""

from __future__ import annotations

import hashlib
import random

from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

from qsampling.core.assignment import StaffingError, assign_teams
from qsampling.core.draw import Candidate, InspectorRef, select

UNITS = ["U1", "U2", "U3", ""]


@st.composite
def scenarios(draw: st.DrawFn) -> dict:
    n = draw(st.integers(1, 40))
    pool = [
        Candidate(f"91350102MA{i:08d}", draw(st.sampled_from("ABC")), draw(st.sampled_from(UNITS)))
        for i in range(n)
    ]
    sizes: dict[str, int] = {}
    for c in pool:
        sizes[c.stratum] = sizes.get(c.stratum, 0) + 1
    quotas = {s: draw(st.integers(0, k)) for s, k in sizes.items()}
    inspectors = [
        InspectorRef(f"ZF{j:03d}", draw(st.sampled_from(UNITS)))
        for j in range(draw(st.integers(2, 12)))
    ]
    exclusions = draw(
        st.lists(
            st.tuples(
                st.sampled_from([i.inspector_id for i in inspectors]),
                st.sampled_from([c.uscc for c in pool]),
            ),
            max_size=30,
        )
    )
    return {
        "pool": pool,
        "quotas": quotas,
        "inspectors": inspectors,
        "exclusions": exclusions,
        "team_size": draw(st.integers(2, 3)),
        "cap": draw(st.none() | st.integers(1, 8)),
        "cross_unit": draw(st.booleans()),
        "seed": draw(st.binary(min_size=32, max_size=32)),
        "shuffle": draw(st.randoms(use_true_random=False)),
    }


def _run(s: dict, pool: list[Candidate], inspectors: list[InspectorRef]):
    selected = select(s["seed"], pool, s["quotas"])
    try:
        teams = assign_teams(
            seed=s["seed"],
            selected=selected,
            inspectors=inspectors,
            exclusions=s["exclusions"],
            enterprise_units={c.uscc: c.unit for c in pool},
            team_size=s["team_size"],
            max_tasks_per_inspector=s["cap"],
            cross_unit=s["cross_unit"],
        )
    except StaffingError as exc:
        return selected, ("unstaffed", tuple(exc.unstaffed))
    return selected, teams


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_draw_rules_hold_and_row_order_does_not_matter(s: dict) -> None:
    selected, teams = _run(s, s["pool"], s["inspectors"])
    pool, inspectors = list(s["pool"]), list(s["inspectors"])
    s["shuffle"].shuffle(pool)
    s["shuffle"].shuffle(inspectors)
    assert _run(s, pool, inspectors) == (selected, teams)

    for stratum, quota in s["quotas"].items():
        assert sum(1 for x in selected if x.stratum == stratum) == quota
    if isinstance(teams, tuple):
        return
    banned = set(s["exclusions"])
    unit_of = {c.uscc: c.unit for c in s["pool"]}
    ins_unit = {i.inspector_id: i.unit for i in s["inspectors"]}
    load: dict[str, int] = {}
    for x in selected:
        team = teams[x.uscc]
        assert len(team) == s["team_size"] == len(set(team))
        for i in team:
            assert (i, x.uscc) not in banned
            if s["cross_unit"] and unit_of[x.uscc]:
                assert ins_unit[i] != unit_of[x.uscc]
            load[i] = load.get(i, 0) + 1
    if s["cap"] is not None:
        assert all(v <= s["cap"] for v in load.values())


def test_enterprises_are_drawn_uniformly_over_many_seeds() -> None:
    pool = [Candidate(f"91350102MA{i:08d}", "A" if i < 12 else "B", "") for i in range(20)]
    quotas = {"A": 3, "B": 2}
    counts = dict.fromkeys((c.uscc for c in pool), 0)
    seeds = 3000
    for n in range(seeds):
        seed = hashlib.sha256(b"uniformity-%d" % n).digest()
        for x in select(seed, pool, quotas):
            counts[x.uscc] += 1
    a = [counts[c.uscc] for c in pool if c.stratum == "A"]
    b = [counts[c.uscc] for c in pool if c.stratum == "B"]
    assert sum(a) == 3 * seeds and sum(b) == 2 * seeds
    # expected n_h/N_h per enterprise and seed; a fixed-seed chi-square, not a flaky one
    assert chisquare(a).pvalue > 0.001
    assert chisquare(b).pvalue > 0.001


def test_inspectors_are_chosen_uniformly_over_many_seeds() -> None:
    pool = [Candidate("91350102MA00000001", "A", "")]
    inspectors = [InspectorRef(f"ZF{j:03d}", "") for j in range(10)]
    counts = dict.fromkeys((i.inspector_id for i in inspectors), 0)
    rng = random.Random(4)
    for _ in range(2000):
        seed = rng.randbytes(32)
        teams = assign_teams(
            seed=seed,
            selected=select(seed, pool, {"A": 1}),
            inspectors=inspectors,
            exclusions=[],
            enterprise_units={},
            team_size=2,
            max_tasks_per_inspector=None,
            cross_unit=False,
        )
        for i in teams[pool[0].uscc]:
            counts[i] += 1
    assert chisquare(list(counts.values())).pvalue > 0.001
