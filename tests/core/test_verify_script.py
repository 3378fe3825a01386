"""The standalone verifier scripts/verify_draw.py: the public's independent check (DESIGN §4)."""

from __future__ import annotations

import ast
import functools
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qsampling.core.assignment import StaffingError, assign_teams
from qsampling.core.draw import (
    Candidate,
    InspectorRef,
    build_params,
    build_result,
    canonical_json,
    commitment_of,
    derive_seed,
    exclusions_csv,
    inspectors_csv,
    make_bundle,
    pool_csv,
    read_bundle,
    select,
    sha256_hex,
    verify_bundle,
)
from tests.core.test_draw import MALFORMED, TAMPERINGS, golden_files, tampered, with_json

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "verify_draw.py"


def run(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@functools.cache
def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_draw_script", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_uses_only_the_standard_library() -> None:
    tree = ast.parse(SCRIPT.read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported
    assert imported <= set(sys.stdlib_module_names)
    assert "qsampling" not in imported


def test_script_prints_match_on_a_good_bundle(tmp_path: Path) -> None:
    path = tmp_path / "draw.zip"
    path.write_bytes(make_bundle(golden_files()))
    done = run(path)
    assert (done.returncode, done.stdout.strip()) == (0, "MATCH"), done.stderr


@pytest.mark.parametrize("how", TAMPERINGS)
def test_script_exits_1_on_each_tampering(tmp_path: Path, how: str) -> None:
    path = tmp_path / "draw.zip"
    path.write_bytes(make_bundle(tampered(golden_files(), how)))
    done = run(path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.strip()
    assert "MATCH" not in done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("pool row", "pool_sha256"),
        ("entropy", "result.seed"),
        ("nonce", "server_nonce_sha256"),
        ("team", "drawn #1"),
        ("dropped enterprise", "number of drawn enterprises"),
    ],
)
def test_script_names_the_first_difference(tmp_path: Path, how: str, expected: str) -> None:
    path = tmp_path / "draw.zip"
    path.write_bytes(make_bundle(tampered(golden_files(), how)))
    assert expected in run(path).stdout


@pytest.mark.parametrize("content", [b"garbage, not a zip", None])
def test_script_exits_2_on_an_unreadable_file(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "draw.zip"
    if content is not None:
        path.write_bytes(content)
    done = run(path)
    assert done.returncode == 2
    assert "unreadable" in done.stdout
    assert "Traceback" not in done.stderr


@st.composite
def bundles(draw_: st.DrawFn) -> bytes | None:
    """A random but valid draw, published as a bundle (None if it cannot be staffed)."""
    usccs = draw_(
        st.lists(
            st.text("0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=18, max_size=18),
            min_size=1,
            max_size=15,
            unique=True,
        )
    )
    units = st.sampled_from(["", "SJ01", "SJ02", "所,三"])
    pool = [Candidate(u, draw_(st.sampled_from(["A", "B", "C|食品"])), draw_(units)) for u in usccs]
    ids = draw_(
        st.lists(st.text("ZF0123456789李", min_size=1, max_size=4), max_size=10, unique=True)
    )
    inspectors = [InspectorRef(i, draw_(units)) for i in ids]
    pairs = [(i, u) for i in ids for u in usccs]
    exclusions = sorted(draw_(st.sets(st.sampled_from(pairs)))) if pairs else []
    sizes: dict[str, int] = {}
    for c in pool:
        sizes[c.stratum] = sizes.get(c.stratum, 0) + 1
    quotas = {s: draw_(st.integers(0, n)) for s, n in sorted(sizes.items())}
    team_size = draw_(st.integers(2, 3))
    cap = draw_(st.one_of(st.none(), st.integers(1, 5)))
    cross_unit = draw_(st.booleans())
    nonce = draw_(st.binary(min_size=32, max_size=32))
    entropy = draw_(st.text("0123456789", min_size=20, max_size=30))
    files = {
        "pool.csv": pool_csv(pool),
        "inspectors.csv": inspectors_csv(inspectors),
        "exclusions.csv": exclusions_csv(exclusions),
    }
    params = build_params(
        plan_id=draw_(st.one_of(st.integers(1, 10**6), st.text(max_size=8))),
        quotas=quotas,
        team_size=team_size,
        max_tasks_per_inspector=cap,
        cross_unit=cross_unit,
        pool_sha256=sha256_hex(files["pool.csv"]),
        inspectors_sha256=sha256_hex(files["inspectors.csv"]),
        exclusions_sha256=sha256_hex(files["exclusions.csv"]),
        server_nonce_sha256=sha256_hex(nonce),
        entropy_source="骰子 dice",
    )
    commitment = commitment_of(params)
    seed = derive_seed(commitment, nonce, entropy)
    selected = select(seed, pool, quotas)
    try:
        teams = assign_teams(
            seed=seed,
            selected=selected,
            inspectors=inspectors,
            exclusions=exclusions,
            enterprise_units={c.uscc: c.unit for c in pool},
            team_size=team_size,
            max_tasks_per_inspector=cap,
            cross_unit=cross_unit,
        )
    except StaffingError:
        return None
    result = build_result(
        commitment=commitment,
        nonce=nonce,
        entropy=entropy,
        seed=seed,
        selected=selected,
        teams=teams,
    )
    files["params.json"] = canonical_json(params)
    files["result.json"] = canonical_json(result)
    return make_bundle(files)


@settings(max_examples=150, deadline=None, database=None)
@given(bundle=bundles())
def test_script_and_core_agree_on_random_draws(bundle: bytes | None) -> None:
    """Two independent implementations of steps 3-5 accept every draw the core produces."""
    if bundle is None:
        return
    assert verify_bundle(bundle).ok
    load_script().verify(read_bundle(bundle))  # raises script.Difference on any disagreement


@pytest.mark.parametrize(("member", "path", "value"), MALFORMED)
def test_script_reports_malformed_values_without_a_traceback(
    tmp_path: Path, member: str, path: list[Any], value: Any
) -> None:
    bundle = tmp_path / "draw.zip"
    bundle.write_bytes(with_json(golden_files(), member, path, value))
    done = run(bundle)
    assert done.returncode == 1, done.stdout
    assert "Traceback" not in done.stderr
