"""The C ranking extension (qsampling.core._rankhash) against hashlib and the Python path.

DESIGN §4 step 5 is re-run by anyone with the standard-library verifier, so the extension
must give the very same rank keys and teams as hashlib: on both of its SHA-256 code paths
(SHA instructions, portable C), for any seed, uscc and inspector id (non-ASCII, long ids whose
message spans several 64-byte blocks), with exclusions, the cross-unit rule and workload caps.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import sysconfig
from array import array
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qsampling.core.assignment as assignment
from qsampling.core.assignment import StaffingError, assign_teams
from qsampling.core.draw import InspectorRef, inspector_rank_key
from tests.core import test_draw as golden
from tests.core.test_assignment import _busy_scenario, drawn, reference_teams, scenarios

try:
    from qsampling.core import _rankhash
except ImportError:
    _rankhash = None  # type: ignore[assignment]


def _c_compiler() -> str | None:
    cc = sysconfig.get_config_var("CC") or "cc"
    return shutil.which(shlex.split(cc)[0])


needs_extension = pytest.mark.skipif(
    _rankhash is None,
    reason="qsampling.core._rankhash is not built (installed without a C compiler): "
    "only the pure-Python ranking is tested",
)
IMPLS = _rankhash.implementations() if _rankhash is not None else ()

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
# ASCII, CJK (3 UTF-8 bytes) and an astral character (4 bytes): block boundaries may fall
# inside a character
ID_CHARS = st.sampled_from("ZF0123456789张王李𠀋é")


@contextmanager
def pure_python() -> Iterator[None]:
    """assignment without the extension, as on an install without a C compiler."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(assignment, "_rankhash", None)
        yield


def test_extension_is_built_where_a_compiler_exists() -> None:
    """`pip install -e .` builds the extension with the C compiler Python was built with;
    only an install without one may fall back to the slower pure-Python ranking."""
    if _c_compiler() is None:
        pytest.skip("no C compiler here: the extension is optional and may be missing")
    assert _rankhash is not None, "a C compiler exists but qsampling.core._rankhash is missing"
    assert "portable" in IMPLS


# --------------------------------------------------------------------------- digests


@needs_extension
@settings(max_examples=300, deadline=None, database=None)
@given(
    prefix=st.binary(max_size=300),
    ids=st.lists(st.binary(max_size=200), max_size=9),
)
def test_digests_equal_hashlib_for_any_prefix_and_id_lengths(
    prefix: bytes, ids: list[bytes]
) -> None:
    want = [hashlib.sha256(prefix + i).digest() for i in ids]
    for impl in IMPLS:
        assert _rankhash.digests(prefix, ids, impl=impl) == want, impl


@needs_extension
def test_digests_at_every_block_boundary() -> None:
    """Prefix lengths 0..191 against id lengths around the 55/56/64-byte padding edges."""
    ids = [bytes(range(n)) for n in (0, 1, 3, 4, 54, 55, 56, 57, 63, 64, 65, 119, 120, 128)]
    for plen in range(192):
        prefix = bytes((7 * j + plen) % 256 for j in range(plen))
        want = [hashlib.sha256(prefix + i).digest() for i in ids]
        for impl in IMPLS:
            assert _rankhash.digests(prefix, ids, impl=impl) == want, (impl, plen)


@needs_extension
@settings(max_examples=200, deadline=None, database=None)
@given(
    seed=st.binary(min_size=32, max_size=32),
    uscc=st.text(USCC_CHARS, min_size=0, max_size=40),
    ids=st.lists(st.text(ID_CHARS, min_size=0, max_size=60), max_size=6, unique=True),
)
def test_rank_keys_equal_design_step_5(seed: bytes, uscc: str, ids: list[str]) -> None:
    """SHA-256(b"QSDRAW-1\\x00" + seed + b"\\x02" + uscc + b"\\x00" + id.encode("utf-8"))."""
    prefix = assignment._rank_prefix(seed, uscc)
    encoded = [i.encode("utf-8") for i in ids]
    want = [inspector_rank_key(seed, uscc, i) for i in ids]
    for impl in IMPLS:
        assert _rankhash.digests(prefix, encoded, impl=impl) == want, impl


# --------------------------------------------------------------------------- short lists


@st.composite
def rank_problems(draw_: st.DrawFn) -> dict:
    ids = draw_(st.lists(st.text(ID_CHARS, min_size=0, max_size=70), max_size=25, unique=True))
    units = [draw_(st.sampled_from(["", "U1", "U2", "U3"])) for _ in ids]
    jobs = []
    for _ in range(draw_(st.integers(0, 8))):
        uscc = draw_(st.text(USCC_CHARS, min_size=18, max_size=18))
        local = draw_(st.sampled_from(["", "U1", "U2", "U9"]))
        banned = draw_(st.frozensets(st.integers(0, len(ids) - 1))) if ids else frozenset()
        jobs.append((uscc, local, banned))
    return {
        "seed": draw_(st.binary(min_size=32, max_size=32)),
        "ids": ids,
        "units": units,
        "jobs": jobs,
        "k": draw_(st.integers(1, 30)),
    }


@needs_extension
@settings(max_examples=300, deadline=None, database=None)
@given(p=rank_problems())
def test_short_lists_equal_the_python_ranking(p: dict) -> None:
    """Eligible counts and the k best-ranked eligible inspectors, excluded and local ones
    skipped, padded with -1: as the hashlib path computes them, on both SHA-256 paths."""
    encoded = [i.encode("utf-8") for i in p["ids"]]
    with pure_python():
        want = assignment._rank_chunk(p["seed"], p["jobs"], encoded, p["units"], p["k"])
    got = assignment._CInspectors(encoded, p["units"]).rank(p["seed"], p["jobs"], p["k"])
    assert got == want
    c = assignment._CInspectors(encoded, p["units"])
    code = c.unit_code.get
    for impl in IMPLS:
        starts, excluded = array("i", [0]), array("i")
        for _, _, banned in p["jobs"]:
            excluded.extend(banned)
            starts.append(len(excluded))
        eligible, best = _rankhash.rank(
            [assignment._rank_prefix(p["seed"], u) for u, _, _ in p["jobs"]],
            encoded,
            c.id_units,
            array("i", [code(local, -1) if local else -1 for _, local, _ in p["jobs"]]),
            starts,
            excluded,
            p["k"],
            impl=impl,
        )
        assert (array("i", eligible), array("i", best)) == want, impl


@needs_extension
def test_rank_refuses_inconsistent_arguments() -> None:
    prefix = [b"p"]
    one = array("i", [-1])
    with pytest.raises(IndexError):
        _rankhash.rank(prefix, [b"a"], one, one, array("i", [0, 1]), array("i", [1]), 2)
    with pytest.raises(ValueError, match="excluded_start"):
        _rankhash.rank(prefix, [b"a"], one, one, array("i", [1, 0]), array("i", [0]), 2)
    with pytest.raises(ValueError, match="len"):
        _rankhash.rank(prefix, [b"a", b"b"], one, one, array("i", [0, 0]), array("i"), 2)
    with pytest.raises(TypeError):
        _rankhash.rank(["p"], [b"a"], one, one, array("i", [0, 0]), array("i"), 2)
    with pytest.raises(ValueError, match="not available"):
        _rankhash.digests(b"", [b"a"], impl="md5")


# --------------------------------------------------------------------------- teams


def _teams(sc: dict, **extra: object) -> tuple[dict[str, list[str]], list[str]]:
    try:
        teams = assign_teams(
            seed=sc["seed"],
            selected=drawn(sc["usccs"], sc["seed"]),
            inspectors=sc["inspectors"],
            exclusions=sc["exclusions"],
            enterprise_units=sc["units"],
            team_size=sc["team_size"],
            max_tasks_per_inspector=sc["cap"],
            cross_unit=sc["cross_unit"],
            **extra,  # type: ignore[arg-type]
        )
        return teams, []
    except StaffingError as exc:
        return exc.teams, exc.unstaffed


@needs_extension
@settings(max_examples=300, deadline=None, database=None)
@given(sc=scenarios(), margin=st.integers(0, 3))
def test_teams_with_and_without_the_extension_are_identical(sc: dict, margin: int) -> None:
    """Exclusions, cross-unit rule and caps; short lists as short as the team, so the cap
    often empties them and enterprises are ranked again in full."""
    top_k = sc["team_size"] + margin
    with pure_python():
        want = _teams(sc, top_k=top_k)
    assert _teams(sc, top_k=top_k) == want
    assert _teams(sc) == want
    literal = reference_teams(
        seed=sc["seed"],
        selected=drawn(sc["usccs"], sc["seed"]),
        inspectors=sc["inspectors"],
        exclusions=sc["exclusions"],
        units=sc["units"],
        team_size=sc["team_size"],
        cap=sc["cap"],
        cross_unit=sc["cross_unit"],
    )
    assert want == literal


@needs_extension
def test_a_tight_cap_re_ranks_through_the_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    sc = _busy_scenario(19, 26)
    kwargs = {
        "seed": sc["seed"],
        "selected": sc["selected"],
        "inspectors": sc["inspectors"],
        "exclusions": sc["exclusions"],
        "enterprise_units": sc["units"],
        "team_size": 2,
        "max_tasks_per_inspector": 2,
        "cross_unit": True,
        "top_k": 3,
    }
    with pure_python():
        want = assign_teams(**kwargs)  # type: ignore[arg-type]
    re_ranked: list[str] = []
    real = assignment._rank_one

    def spy(*args: object) -> tuple[int, list[int]]:
        re_ranked.append(args[1])  # type: ignore[arg-type]
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(assignment, "_rank_one", spy)
    teams = assign_teams(**kwargs)  # type: ignore[arg-type]
    assert teams == want
    assert re_ranked  # the cap emptied some short lists
    assert max(Counter(i for t in teams.values() for i in t).values()) == 2


@needs_extension
@pytest.mark.parametrize("cap", [None, 20])
def test_threads_give_the_same_teams(monkeypatch: pytest.MonkeyPatch, cap: int | None) -> None:
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
    with pure_python():
        want = assign_teams(**kwargs)  # type: ignore[arg-type]
    monkeypatch.setattr(assignment, "_PARALLEL_MIN_HASHES", 0)
    monkeypatch.setattr(assignment, "_CHUNK", 37)
    assert assign_teams(**kwargs, workers=2) == want  # type: ignore[arg-type]


@needs_extension
def test_inspectors_with_long_non_ascii_ids() -> None:
    """Ids of several blocks and of mixed lengths (hashed one by one, not in pairs)."""
    inspectors = [
        InspectorRef("张" * n + str(n), f"U{n % 3}") for n in (0, 1, 2, 17, 18, 19, 40, 41, 90)
    ] + [InspectorRef(f"ZF{n:03d}", "") for n in range(7)]
    sc = {
        "seed": hashlib.sha256(b"long ids").digest(),
        "usccs": [f"91350000{n:09d}X" for n in range(12)],
        "inspectors": inspectors,
        "exclusions": {(inspectors[n % 9].inspector_id, f"91350000{n:09d}X") for n in range(12)},
        "units": {f"91350000{n:09d}X": f"U{n % 4}" for n in range(12)},
        "team_size": 3,
        "cap": 3,
        "cross_unit": True,
    }
    with pure_python():
        want = _teams(sc)
    assert _teams(sc) == want
    assert len(want[0]) == 12  # all staffed


# --------------------------------------------------------------------------- golden vectors


@pytest.mark.parametrize("extension", [True, False])
def test_golden_vectors_both_ways(extension: bool) -> None:
    """The golden draw of tests/core/test_draw.py, with and without the extension."""
    if extension and _rankhash is None:
        pytest.skip("qsampling.core._rankhash is not built (installed without a C compiler)")
    with pytest.MonkeyPatch.context() as mp:
        if not extension:
            mp.setattr(assignment, "_rankhash", None)
        golden.test_golden_commitment_seed_keys_selection_and_teams()
        golden.test_golden_vectors_match_a_line_by_line_hashlib_computation()
        golden.test_golden_result_json_shape()
