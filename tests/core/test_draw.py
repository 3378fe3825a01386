"""QSDRAW-1 (DESIGN §4): golden vectors, exact quotas, files, properties, bundle checks."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from qsampling.core import draw
from qsampling.core.assignment import assign_teams
from qsampling.core.draw import (
    ALGORITHM,
    Candidate,
    InspectorRef,
    Selected,
    build_params,
    build_result,
    canonical_json,
    commitment_of,
    compute_quotas,
    derive_seed,
    enterprise_key,
    enterprise_keys,
    exclusions_csv,
    inspector_rank_key,
    inspectors_csv,
    make_bundle,
    merge_partials,
    parse_exclusions_csv,
    parse_inspectors_csv,
    parse_pool_csv,
    pool_csv,
    read_bundle,
    select,
    sha256_hex,
    topk_partial,
    verify_bundle,
)

# --------------------------------------------------------------------------- golden fixture
# Twelve enterprises with valid GB 32100 codes (Beijing, Shanghai, Shenzhen), three strata.

USCCS = [
    "91110108MA00100002",
    "91310115MA0089190R",
    "91440305MA0168380X",
    "91110108MA0247570L",
    "91310115MA0326760C",
    "91440305MA0405950G",
    "91110108MA0485140G",
    "91310115MA05643308",
    "91440305MA0643520C",
    "91110108MA07227103",
    "91310115MA0801900T",
    "91440305MA0881090W",
]
STRATA = "AAAAABBBBCCC"
UNITS = ["SJ01", "SJ02", "SJ03", "SJ01", "", "SJ02", "SJ03", "SJ01", "SJ02", "SJ03", "SJ01", ""]
POOL = [Candidate(u, s, unit) for u, s, unit in zip(USCCS, STRATA, UNITS, strict=True)]
INSPECTORS = [
    InspectorRef(f"ZF{n:03d}", unit)
    for n, unit in enumerate(["SJ01", "SJ01", "SJ02", "SJ02", "SJ03", "SJ03", "", "SJ01"], 1)
]
EXCLUSIONS = [("ZF005", USCCS[9]), ("ZF001", USCCS[0]), ("ZF003", USCCS[5])]
QUOTAS = {"A": 2, "B": 2, "C": 1}
NONCE = bytes(range(32))
ENTROPY = "12345678901234567890"
ENTROPY_SOURCE = "现场掷骰 20 位 (dice, 2 witnesses)"

GOLDEN_POOL_CSV = (
    b"uscc,stratum,unit\n"
    b"91110108MA00100002,A,SJ01\n"
    b"91110108MA0247570L,A,SJ01\n"
    b"91110108MA0485140G,B,SJ03\n"
    b"91110108MA07227103,C,SJ03\n"
    b"91310115MA0089190R,A,SJ02\n"
    b"91310115MA0326760C,A,\n"
    b"91310115MA05643308,B,SJ01\n"
    b"91310115MA0801900T,C,SJ01\n"
    b"91440305MA0168380X,A,SJ03\n"
    b"91440305MA0405950G,B,SJ02\n"
    b"91440305MA0643520C,B,SJ02\n"
    b"91440305MA0881090W,C,\n"
)
GOLDEN_EXCLUSIONS_CSV = (
    b"inspector_id,uscc\n"
    b"ZF001,91110108MA00100002\n"
    b"ZF003,91440305MA0405950G\n"
    b"ZF005,91110108MA07227103\n"
)
POOL_SHA = "089ec6533c883e0f5cc4358d7c118a13fa05a9852de4706bc109b4d5193ae5e9"
INSPECTORS_SHA = "9d06581b1dcb08217b1c74e331510070a4e6678e0e92b4020f14564abeac4e7c"
EXCLUSIONS_SHA = "d752d4272b842e31d945af45b23f84aff6fc6797a0233d49691e19f5f0a77a0b"
NONCE_SHA = "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"
COMMITMENT = "594403c670e3ddfc13b41067913b901d120fb40ed8330f922f7bc0548114e866"
SEED = "72d1939b1d22fe6da7158396d338f0d74801dc36766b90ed34d90d833f04be47"
FIRST_KEYS = {
    "91110108MA00100002": "64c9e54f3562167d489d291001182f2d2786a554038580563a2231db4f882d11",
    "91310115MA0089190R": "94bc993b9eba3a525b108899f96cadb6420d8ddf66fcc7eabf3d4e62238fa228",
    "91440305MA0168380X": "fd61946e56ddd71e2b8bcece8154dd14f3405f4c9e999904be1a0fd43ce3ba74",
}
GOLDEN_SELECTED = [
    Selected(
        "91110108MA0485140G",
        "B",
        "02fb85cf1a2d97eb8ff5fffd3f9a9ca290188bfecace6560beaa22d24ef7e1a4",
        0.5,
        4,
        2,
    ),
    Selected(
        "91310115MA0801900T",
        "C",
        "2a19295ef14fbba74b8ffcf0ba20e1ce6237495e0e9df30d0018534223dded26",
        1 / 3,
        3,
        1,
    ),
    Selected(
        "91110108MA00100002",
        "A",
        "64c9e54f3562167d489d291001182f2d2786a554038580563a2231db4f882d11",
        0.4,
        5,
        2,
    ),
    Selected(
        "91310115MA0089190R",
        "A",
        "94bc993b9eba3a525b108899f96cadb6420d8ddf66fcc7eabf3d4e62238fa228",
        0.4,
        5,
        2,
    ),
    Selected(
        "91440305MA0405950G",
        "B",
        "c2b3e864aa6d39cc8df35581157ee9052bf824605462935eb76104054e33be94",
        0.5,
        4,
        2,
    ),
]
GOLDEN_TEAMS = {
    "91110108MA0485140G": ["ZF002", "ZF003"],
    "91310115MA0801900T": ["ZF004", "ZF006"],
    "91110108MA00100002": ["ZF005", "ZF004"],
    "91310115MA0089190R": ["ZF005", "ZF001"],
    "91440305MA0405950G": ["ZF002", "ZF008"],
}


def golden_params() -> dict[str, Any]:
    return build_params(
        plan_id=42,
        quotas=QUOTAS,
        team_size=2,
        max_tasks_per_inspector=2,
        cross_unit=True,
        pool_sha256=sha256_hex(pool_csv(POOL)),
        inspectors_sha256=sha256_hex(inspectors_csv(INSPECTORS)),
        exclusions_sha256=sha256_hex(exclusions_csv(EXCLUSIONS)),
        server_nonce_sha256=sha256_hex(NONCE),
        entropy_source=ENTROPY_SOURCE,
    )


def golden_teams(seed: bytes, selected: list[Selected]) -> dict[str, list[str]]:
    return assign_teams(
        seed=seed,
        selected=selected,
        inspectors=INSPECTORS,
        exclusions=EXCLUSIONS,
        enterprise_units={c.uscc: c.unit for c in POOL},
        team_size=2,
        max_tasks_per_inspector=2,
        cross_unit=True,
    )


def golden_files() -> dict[str, bytes]:
    """The five bundle members of the golden draw, built through the public API."""
    params = golden_params()
    commitment = commitment_of(params)
    seed = derive_seed(commitment, NONCE, ENTROPY)
    selected = select(seed, POOL, QUOTAS)
    result = build_result(
        commitment=commitment,
        nonce=NONCE,
        entropy=ENTROPY,
        seed=seed,
        selected=selected,
        teams=golden_teams(seed, selected),
    )
    return {
        "pool.csv": pool_csv(POOL),
        "inspectors.csv": inspectors_csv(INSPECTORS),
        "exclusions.csv": exclusions_csv(EXCLUSIONS),
        "params.json": canonical_json(params),
        "result.json": canonical_json(result),
    }


def tampered(files: dict[str, bytes], how: str) -> dict[str, bytes]:
    """A copy of the bundle files with one of the frauds a verifier must catch."""
    files = dict(files)
    result = json.loads(files["result.json"])
    if how == "pool row":  # an enterprise quietly moved to another credit class
        files["pool.csv"] = files["pool.csv"].replace(
            b"91110108MA0485140G,B,", b"91110108MA0485140G,A,"
        )
    elif how == "entropy":
        result["entropy"] = "12345678901234567891"
    elif how == "nonce":  # a nonce chosen after the entropy was known
        result["nonce"] = bytes(range(1, 33)).hex()
    elif how == "team":  # a friendlier inspector swapped into a team
        result["selected"][0]["inspectors"][1] = "ZF007"
    elif how == "dropped enterprise":
        del result["selected"][2]
    else:
        raise AssertionError(how)
    files["result.json"] = canonical_json(result)
    return files


TAMPERINGS = ["pool row", "entropy", "nonce", "team", "dropped enterprise"]


# --------------------------------------------------------------------------- golden vectors


def test_golden_files_are_canonical_and_hashed() -> None:
    assert pool_csv(POOL) == GOLDEN_POOL_CSV
    assert pool_csv(reversed(POOL)) == GOLDEN_POOL_CSV
    assert exclusions_csv(EXCLUSIONS + EXCLUSIONS[:1]) == GOLDEN_EXCLUSIONS_CSV
    assert inspectors_csv(INSPECTORS).startswith(b"inspector_id,unit\nZF001,SJ01\n")
    assert sha256_hex(GOLDEN_POOL_CSV) == POOL_SHA
    assert sha256_hex(inspectors_csv(INSPECTORS)) == INSPECTORS_SHA
    assert sha256_hex(GOLDEN_EXCLUSIONS_CSV) == EXCLUSIONS_SHA
    assert sha256_hex(NONCE) == NONCE_SHA


def test_golden_commitment_seed_keys_selection_and_teams() -> None:
    params = golden_params()
    assert set(params) == {
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
    assert params["algorithm"] == ALGORITHM == "QSDRAW-1"
    assert commitment_of(params) == COMMITMENT
    seed = derive_seed(COMMITMENT, NONCE, ENTROPY)
    assert seed.hex() == SEED
    for uscc, key in FIRST_KEYS.items():
        assert enterprise_key(seed, uscc).hex() == key
    selected = select(seed, POOL, QUOTAS)
    assert selected == GOLDEN_SELECTED
    assert golden_teams(seed, selected) == GOLDEN_TEAMS


def test_golden_vectors_match_a_line_by_line_hashlib_computation() -> None:
    """Cross-check of DESIGN §4 steps 1, 3, 4 and 5 written out from the text of the spec."""
    params_text = (
        '{"algorithm":"QSDRAW-1","cross_unit":true,'
        '"entropy_source":"现场掷骰 20 位 (dice, 2 witnesses)",'
        f'"exclusions_sha256":"{EXCLUSIONS_SHA}","inspectors_sha256":"{INSPECTORS_SHA}",'
        '"max_tasks_per_inspector":2,"plan_id":42,'
        f'"pool_sha256":"{POOL_SHA}","quotas":{{"A":2,"B":2,"C":1}},'
        f'"server_nonce_sha256":"{NONCE_SHA}","team_size":2}}'
    )
    assert canonical_json(golden_params()) == params_text.encode("utf-8")
    commitment = hashlib.sha256(params_text.encode("utf-8")).hexdigest()
    assert commitment == COMMITMENT
    seed = hashlib.sha256(
        b"QSSEED-1\x00" + bytes.fromhex(commitment) + NONCE + ENTROPY.encode("utf-8")
    ).digest()
    assert seed.hex() == SEED

    keyed = sorted(
        (hashlib.sha256(b"QSDRAW-1\x00" + seed + b"\x01" + c.uscc.encode("ascii")).digest(), c)
        for c in POOL
    )
    by_stratum: dict[str, list[tuple[bytes, Candidate]]] = {}
    for key, c in keyed:
        by_stratum.setdefault(c.stratum, []).append((key, c))
    drawn = sorted(pair for s, pairs in by_stratum.items() for pair in pairs[: QUOTAS[s]])
    assert [(c.uscc, k.hex()) for k, c in drawn] == [(s.uscc, s.key) for s in GOLDEN_SELECTED]

    # Step 5 on the first drawn enterprise (B stratum, unit SJ03, nobody has tasks yet).
    first = drawn[0][1]
    eligible = [i for i in INSPECTORS if i.unit != first.unit]
    ranked = sorted(
        eligible,
        key=lambda i: hashlib.sha256(
            b"QSDRAW-1\x00"
            + seed
            + b"\x02"
            + first.uscc.encode("ascii")
            + b"\x00"
            + i.inspector_id.encode("utf-8")
        ).digest(),
    )
    assert [i.inspector_id for i in ranked[:2]] == GOLDEN_TEAMS[first.uscc]
    assert (
        inspector_rank_key(seed, first.uscc, "ZF002")
        == hashlib.sha256(
            b"QSDRAW-1\x00" + seed + b"\x02" + first.uscc.encode() + b"\x00ZF002"
        ).digest()
    )


def test_golden_result_json_shape() -> None:
    result = json.loads(golden_files()["result.json"])
    assert set(result) == {"commitment", "nonce", "entropy", "seed", "selected"}
    assert result["commitment"] == COMMITMENT
    assert result["nonce"] == NONCE.hex()
    assert result["seed"] == SEED
    assert result["entropy"] == ENTROPY
    assert result["selected"][0] == {
        "uscc": "91110108MA0485140G",
        "stratum": "B",
        "key": "02fb85cf1a2d97eb8ff5fffd3f9a9ca290188bfecace6560beaa22d24ef7e1a4",
        "inspectors": ["ZF002", "ZF003"],
    }
    assert [e["uscc"] for e in result["selected"]] == [s.uscc for s in GOLDEN_SELECTED]


# --------------------------------------------------------------------------- quotas


def test_quotas_are_exact_where_floats_would_round_up() -> None:
    assert 0.07 * 100 > 7  # the float trap: ceil() would give 8
    assert compute_quotas({"A": 100}, {"A": 0.07}) == {"A": 7}
    assert compute_quotas({"A": 300}, {"A": 0.14}) == {"A": 42}
    assert compute_quotas({"A": 100}, {"A": 0.03}) == {"A": 3}
    assert compute_quotas({"A": 100}, {"A": "0.03"}) == {"A": 3}
    assert compute_quotas({"A": 100}, {"A": Decimal("0.03")}) == {"A": 3}
    assert compute_quotas({"B": 21}, {"B": 0.05}) == {"B": 2}
    assert compute_quotas({"C": 1000}, {"C": 0.2}) == {"C": 200}
    assert compute_quotas({"D": 7}, {"D": "0.6"}) == {"D": 5}


def test_quotas_ceiling_cap_and_bounds() -> None:
    ratios = {"A": "0.03", "B": "0.05", "C": "0.2", "D": "0.6"}
    counts = {"A": 1, "B": 40, "C": 0, "D": 3}
    assert compute_quotas(counts, ratios) == {"A": 1, "B": 2, "C": 0, "D": 2}
    assert compute_quotas({"A": 9}, {"A": 1}) == {"A": 9}
    assert compute_quotas({"A": 9}, {"A": "0"}) == {"A": 0}
    assert compute_quotas({"A": 10**12}, {"A": "0.000000000001"}) == {"A": 1}
    # Ratios for classes with no enterprises in the pool are ignored.
    assert compute_quotas({"A": 5}, {"A": "0.5", "Z": "0.1"}) == {"A": 3}


@pytest.mark.parametrize("ratio", ["1.01", "-0.1", 1.5, "NaN", "abc", "Infinity", True])
def test_quotas_reject_ratios_outside_unit_interval(ratio: Any) -> None:
    with pytest.raises(ValueError, match="'A'"):
        compute_quotas({"A": 10}, {"A": ratio})


def test_quotas_missing_ratio_names_the_stratum() -> None:
    with pytest.raises(ValueError, match="'C'"):
        compute_quotas({"A": 10, "C": 3}, {"A": "0.1"})


# --------------------------------------------------------------------------- CSV files


def test_csv_quotes_a_field_with_a_comma_and_round_trips() -> None:
    pool = [
        Candidate("91110108MA00100002", "A|食品", "所,一"),
        Candidate("91110108MA0247570L", 'B"x', ""),
    ]
    data = pool_csv(pool)
    assert data.decode("utf-8").splitlines()[1] == '91110108MA00100002,A|食品,"所,一"'
    assert parse_pool_csv(data) == pool
    assert b"\r" not in data
    inspectors = [InspectorRef("张三,01", "SJ01"), InspectorRef("ZF2", "")]
    assert parse_inspectors_csv(inspectors_csv(inspectors)) == sorted(
        inspectors, key=lambda i: i.inspector_id
    )
    assert parse_exclusions_csv(GOLDEN_EXCLUSIONS_CSV) == sorted(EXCLUSIONS)


@pytest.mark.parametrize(
    "bad",
    [
        [Candidate("91110108MA00100002", "A", ""), Candidate("91110108MA00100002", "B", "")],
        [Candidate("91110108MA0010000\n", "A", "")],
        [Candidate("91110108MA00100002", "A\r\nB", "")],
        [Candidate("", "A", "")],
        [Candidate("９１110108MA0010000", "A", "")],
    ],
)
def test_pool_csv_rejects_duplicates_and_unsafe_fields(bad: list[Candidate]) -> None:
    with pytest.raises(ValueError, match=r"uscc|stratum|line break"):
        pool_csv(bad)


def test_duplicate_inspector_is_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        inspectors_csv([InspectorRef("A", ""), InspectorRef("A", "x")])


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"uscc,stratum\n91110108MA00100002,A\n",
        b"\xef\xbb\xbfuscc,stratum,unit\n",  # a BOM is not the canonical file
        b"USCC,STRATUM,UNIT\n",
        b"uscc,stratum,unit\n91110108MA00100002,A\n",
        b"uscc,stratum,unit\n91110108MA00100002,A,\n91110108MA00100002,B,\n",
        b"uscc,stratum,unit\n\xff\xfe,A,\n",
    ],
)
def test_parse_pool_csv_rejects_malformed_files(data: bytes) -> None:
    with pytest.raises(ValueError, match="pool.csv"):
        parse_pool_csv(data)


def test_parsers_reject_wrong_headers() -> None:
    with pytest.raises(ValueError, match="header"):
        parse_inspectors_csv(b"id,unit\n")
    with pytest.raises(ValueError, match="header"):
        parse_exclusions_csv(b"uscc,inspector_id\n")


# --------------------------------------------------------------------------- commitment/seed


def test_canonical_json_keeps_non_ascii_and_sorts_keys() -> None:
    assert canonical_json({"b": 1, "a": ["抽查", None, True]}) == (
        '{"a":["抽查",null,true],"b":1}'.encode()
    )


def test_build_params_validates_and_accepts_string_plan_ids() -> None:
    params = golden_params()
    other = build_params(**{**_params_kwargs(params), "plan_id": "2025-SJ-0042"})
    assert other["plan_id"] == "2025-SJ-0042"
    assert commitment_of(other) != commitment_of(params)
    no_cap = build_params(**{**_params_kwargs(params), "max_tasks_per_inspector": None})
    assert b'"max_tasks_per_inspector":null' in canonical_json(no_cap)
    with pytest.raises(ValueError, match="art. 42"):
        build_params(**{**_params_kwargs(params), "team_size": 1})
    with pytest.raises(ValueError, match="pool_sha256"):
        build_params(**{**_params_kwargs(params), "pool_sha256": POOL_SHA.upper()})
    with pytest.raises(ValueError, match="quota"):
        build_params(**{**_params_kwargs(params), "quotas": {"A": -1}})


def _params_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k != "algorithm"}


def test_seed_depends_on_every_input_and_validates_them() -> None:
    seed = derive_seed(COMMITMENT, NONCE, ENTROPY)
    assert derive_seed(COMMITMENT, NONCE, ENTROPY + " ") != seed
    assert derive_seed(COMMITMENT, bytes(32), ENTROPY) != seed
    assert derive_seed(COMMITMENT[::-1], NONCE, ENTROPY) != seed
    with pytest.raises(ValueError, match="commitment"):
        derive_seed(COMMITMENT.upper(), NONCE, ENTROPY)
    with pytest.raises(ValueError, match="nonce"):
        derive_seed(COMMITMENT, bytes(16), ENTROPY)
    with pytest.raises(ValueError, match="entropy"):
        derive_seed(COMMITMENT, NONCE, "")


def test_fast_keys_equal_one_shot_keys() -> None:
    seed = bytes.fromhex(SEED)
    assert list(enterprise_keys(seed, USCCS)) == [enterprise_key(seed, u) for u in USCCS]
    with pytest.raises(ValueError, match="32"):
        enterprise_key(b"short", USCCS[0])


# --------------------------------------------------------------------------- selection


def test_select_rejects_inconsistent_quotas() -> None:
    seed = bytes.fromhex(SEED)
    with pytest.raises(ValueError, match="'D'.*absent"):
        select(seed, POOL, {**QUOTAS, "D": 1})
    with pytest.raises(ValueError, match="exceeds"):
        select(seed, POOL, {**QUOTAS, "C": 4})
    with pytest.raises(ValueError, match="'C'.*no quota"):
        select(seed, POOL, {"A": 1, "B": 1})
    with pytest.raises(ValueError, match="duplicate|twice"):
        select(seed, [*POOL, POOL[0]], {"A": 5, "B": 0, "C": 0})


def test_select_zero_quota_and_whole_stratum() -> None:
    seed = bytes.fromhex(SEED)
    drawn = select(seed, POOL, {"A": 5, "B": 0, "C": 3})
    assert Counter(s.stratum for s in drawn) == {"A": 5, "C": 3}
    assert all(s.inclusion_probability == 1.0 for s in drawn)
    assert [s.key for s in drawn] == sorted(s.key for s in drawn)


USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
usccs_st = st.lists(
    st.text(USCC_ALPHABET, min_size=18, max_size=18), min_size=1, max_size=40, unique=True
)


@st.composite
def draws(draw_: st.DrawFn) -> tuple[bytes, list[Candidate], dict[str, int]]:
    usccs = draw_(usccs_st)
    pool = [
        Candidate(u, draw_(st.sampled_from("ABCD")), draw_(st.sampled_from(["", "U1", "U2"])))
        for u in usccs
    ]
    sizes = Counter(c.stratum for c in pool)
    quotas = {s: draw_(st.integers(0, n)) for s, n in sorted(sizes.items())}
    return draw_(st.binary(min_size=32, max_size=32)), pool, quotas


@settings(max_examples=150, deadline=None, database=None)
@given(d=draws(), data=st.data())
def test_row_order_never_changes_the_draw(
    d: tuple[bytes, list[Candidate], dict[str, int]], data: st.DataObject
) -> None:
    seed, pool, quotas = d
    shuffled = data.draw(st.permutations(pool))
    assert select(seed, shuffled, quotas) == select(seed, pool, quotas)


@settings(max_examples=150, deadline=None, database=None)
@given(d=draws())
def test_quotas_respected_and_smallest_keys_taken(
    d: tuple[bytes, list[Candidate], dict[str, int]],
) -> None:
    seed, pool, quotas = d
    drawn = select(seed, pool, quotas)
    sizes = Counter(c.stratum for c in pool)
    assert Counter(s.stratum for s in drawn) == +Counter(quotas)
    assert [s.key for s in drawn] == sorted(s.key for s in drawn)
    chosen = {s.uscc for s in drawn}
    for s in drawn:
        assert s.quota == quotas[s.stratum]
        assert s.stratum_size == sizes[s.stratum]
        assert s.inclusion_probability == quotas[s.stratum] / sizes[s.stratum]
    # Nobody left out of a stratum has a smaller key than someone drawn from it.
    for c in pool:
        if c.uscc not in chosen:
            key = enterprise_key(seed, c.uscc).hex()
            assert all(key > s.key for s in drawn if s.stratum == c.stratum)


@settings(max_examples=150, deadline=None, database=None)
@given(d=draws(), data=st.data())
def test_merged_shard_partials_equal_the_whole(
    d: tuple[bytes, list[Candidate], dict[str, int]], data: st.DataObject
) -> None:
    seed, pool, quotas = d
    n_shards = data.draw(st.integers(1, 4))
    shard_of = data.draw(st.lists(st.integers(0, n_shards - 1), min_size=len(pool)))
    shards: list[list[Candidate]] = [[] for _ in range(n_shards)]
    for c, i in zip(pool, shard_of, strict=False):
        shards[i].append(c)
    partials = [topk_partial(seed, shard, quotas) for shard in shards]
    assert merge_partials(partials, quotas) == select(seed, pool, quotas)


def test_merge_rejects_partials_built_with_another_quota() -> None:
    seed = bytes.fromhex(SEED)
    partial = topk_partial(seed, POOL, {"A": 1, "B": 1, "C": 1})
    with pytest.raises(ValueError, match="another quota"):
        merge_partials([partial], QUOTAS)


def test_topk_memory_is_bounded_by_the_quota() -> None:
    seed = bytes.fromhex(SEED)
    pool = (Candidate(f"91110108MA{n:08d}", "A", "") for n in range(20_000))
    partial = topk_partial(seed, pool, {"A": 3})
    count, pairs = partial["A"]
    assert count == 20_000
    assert len(pairs) == 3
    assert pairs == sorted(pairs)


def test_enterprise_draw_is_uniform_over_many_seeds() -> None:
    """Chi-square goodness of fit: 2,000 seeds, one of ten drawn, each equally likely."""
    pool = [Candidate(f"91110108MA0{n:06d}X", "A", "") for n in range(10)]
    position = {c.uscc: i for i, c in enumerate(pool)}
    counts = [0] * 10
    for n in range(2000):
        seed = hashlib.sha256(b"uniformity" + n.to_bytes(4, "big")).digest()
        counts[position[select(seed, pool, {"A": 1})[0].uscc]] += 1
    assert scipy.stats.chisquare(counts).pvalue > 0.001


# --------------------------------------------------------------------------- bundle


def test_bundle_round_trip_is_deterministic_and_verifies() -> None:
    files = golden_files()
    bundle = make_bundle(files)
    assert make_bundle(dict(reversed(list(files.items())))) == bundle
    assert read_bundle(bundle) == files
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        assert zf.namelist() == sorted(files)
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_DEFLATED}
    report = verify_bundle(bundle)
    assert report.ok, report.differences
    assert report.differences == []


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("pool row", "pool_sha256"),
        ("entropy", "result.seed"),
        ("nonce", "server_nonce_sha256"),
        ("team", "drawn #1 inspectors"),
        ("dropped enterprise", "number of drawn enterprises"),
    ],
)
def test_verify_bundle_catches_tampering(how: str, message: str) -> None:
    report = verify_bundle(make_bundle(tampered(golden_files(), how)))
    assert not report.ok
    assert message in report.differences[0]


def test_recommitting_after_the_fact_changes_the_seed() -> None:
    """Editing the pool and re-hashing everything still fails: the seed moves with the
    commitment, so the published selection no longer follows."""
    files = golden_files()
    files["pool.csv"] = pool_csv([c for c in POOL if c.uscc != "91110108MA0485140G"])
    params = json.loads(files["params.json"])
    params["pool_sha256"] = sha256_hex(files["pool.csv"])
    files["params.json"] = canonical_json(params)
    result = json.loads(files["result.json"])
    result["commitment"] = commitment_of(params)
    files["result.json"] = canonical_json(result)
    report = verify_bundle(make_bundle(files))
    assert not report.ok
    assert report.differences[0].startswith("result.seed")


def test_verify_bundle_reports_unreadable_input() -> None:
    assert not verify_bundle(b"not a zip").ok
    assert "unreadable" in verify_bundle(b"PK\x03\x04garbage").differences[0]


def test_read_bundle_guards() -> None:
    files = golden_files()
    with pytest.raises(ValueError, match="not a readable zip"):
        read_bundle(b"\x00" * 100)
    with pytest.raises(ValueError, match="missing result.json"):
        make_bundle({k: v for k, v in files.items() if k != "result.json"})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            if name != "params.json":
                zf.writestr(name, data)
    with pytest.raises(ValueError, match="missing params.json"):
        read_bundle(buf.getvalue())
    with pytest.raises(ValueError, match="plain file name"):
        make_bundle({**files, "../evil": b""})


def test_read_bundle_refuses_a_zip_bomb(monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = make_bundle({**golden_files(), "padding.bin": bytes(1_000_000)})
    assert len(bundle) < 50_000
    monkeypatch.setattr(draw, "MAX_BUNDLE_UNCOMPRESSED", 500_000)
    with pytest.raises(ValueError, match="2 GiB"):
        read_bundle(bundle)


def with_json(files: dict[str, bytes], member: str, path: list[Any], value: Any) -> bytes:
    """The bundle with one JSON value replaced (path of keys/indexes; [] = whole document)."""
    doc = json.loads(files[member])
    if path:
        target = doc
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
    else:
        doc = value
    text = json.dumps(doc, ensure_ascii=False)  # may hold NaN: a hostile bundle would
    return make_bundle({**files, member: text.encode("utf-8")})


MALFORMED = [
    ("params.json", [], ["not", "an", "object"]),
    ("params.json", ["quotas"], {"A": 2, "B": 2, "C": float("nan")}),
    ("params.json", ["quotas"], 5),
    ("params.json", ["team_size"], "2"),
    ("result.json", ["nonce"], "zz"),
    ("result.json", ["nonce"], None),
    ("result.json", ["entropy"], 12345678901234567890),
    ("result.json", ["selected"], {"uscc": 1}),
    ("result.json", ["selected", 0], "91110108MA0485140G"),
    ("result.json", ["selected", 0, "extra"], 1),
    ("result.json", ["seed"], SEED.upper()),
]


@pytest.mark.parametrize(("member", "path", "value"), MALFORMED)
def test_verify_bundle_reports_malformed_values_without_raising(
    member: str, path: list[Any], value: Any
) -> None:
    report = verify_bundle(with_json(golden_files(), member, path, value))
    assert not report.ok
    assert report.differences
