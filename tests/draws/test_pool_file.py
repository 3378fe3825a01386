"""pool.csv as the commit receives it from COPY: hashed, strata counted, cut into chunks."""

from __future__ import annotations

import hashlib
import random
from collections import Counter

import pytest

from qsampling.core.draw import Candidate, pool_csv
from qsampling.draws import pool as pool_module
from qsampling.draws.pool import PoolFile


def _pool(n: int, strata: list[str], units: list[str], seed: int = 1) -> list[Candidate]:
    rng = random.Random(seed)
    return [
        Candidate(f"91350102MA{i:08d}", rng.choice(strata), rng.choice(units)) for i in range(n)
    ]


def _received(data: bytes, seed: int = 2) -> PoolFile:
    """``data`` fed the way COPY hands it over: in pieces of any size, cut anywhere."""
    rng = random.Random(seed)
    f = PoolFile()
    i = 0
    while i < len(data):
        step = rng.choice([1, 7, 100, 5000, 40000])
        f.feed(data[i : i + step])
        i += step
    f.close()
    return f


@pytest.mark.parametrize(
    ("strata", "units"),
    [
        (["A", "B", "C", "D"], ["", "U01", "SJ02"]),
        # a unit holding a stratum between commas, quoted by CSV
        (["A", "B"], ["", "U01", "x,A,y", 'q"A"']),
        # more strata than are counted by search: counted line by line
        ([f"A|35{i:02d}" for i in range(40)], ["", "U01"]),
        # strata that contain one another
        (["A", "A|3501", "3501", ""], ["U01", "3501"]),
    ],
)
def test_strata_counts_chunks_and_hash_are_those_of_the_file(
    strata: list[str], units: list[str]
) -> None:
    cands = _pool(20000, strata, units)
    data = pool_csv(cands)
    f = _received(data)
    assert f.sizes() == dict(sorted(Counter(c.stratum for c in cands).items()))
    assert f.digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert f.size == len(data)
    assert b"".join(f.chunks) == data
    assert len(f.chunks) > 10
    assert all(c.endswith(b"\n") for c in f.chunks)
    assert all(len(c) <= pool_module.CHUNK_BYTES for c in f.chunks)


def test_a_pool_of_the_header_alone_has_no_strata() -> None:
    f = _received(b"uscc,stratum,unit\n")
    assert f.sizes() == {}
    assert f.chunks == [b"uscc,stratum,unit\n"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"uscc,class,unit\n", "not its header"),
        (b'uscc,stratum,unit\n91350102MA00000001,"A,B",U\n', "only the unit may be quoted"),
        (b'uscc,stratum,unit\n91350102MA00000001,A,"two\nlines"\n', "only the unit"),
        (b"uscc,stratum,unit\n91350102MA00000001,A,U", "line end"),
        (b"", "no header"),
    ],
)
def test_a_file_the_stored_pool_readers_could_misread_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(RuntimeError, match=message):
        _received(data)
