"""USCC (GB 32100-2015): agreement with python-stdnum, normalisation, generation.

Run this file as a script for the validate_many throughput measurement:
``.venv/bin/python tests/core/test_uscc.py``.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time

import numpy as np
import pytest
import stdnum.cn.uscc as stdnum_uscc
from hypothesis import example, given, settings
from hypothesis import strategies as st

from qsampling.core import uscc

LOWER = "abcdefghijklmnopqrstuvwxyz"
# Characters a spreadsheet or a person might put into a code: the alphabet, the letters it
# excludes, lower case, separators, whitespace, full-width forms, the odd control character
# and CJK.
NOISE = (
    uscc.ALPHABET
    + "IOSVZ"
    + LOWER
    + " -\t\n_./\x00\u3000\u00a0\u2013\u2014"
    + "０１２３４５６７８９ＡＢＣＸＹ－ｍａ"
    + "统一社会信用代码ﬀ"
)


def reference(code: object) -> bool:
    """python-stdnum's verdict; it raises ValueError on a few malformed inputs (a newline in
    the first eight characters): those count as invalid."""
    try:
        return bool(stdnum_uscc.is_valid(code))  # type: ignore[arg-type]
    except ValueError:
        return False


region_codes = st.sampled_from(["110000", "350102", "350581", "370116", "371728", "000000"])
seeds = st.integers(min_value=0, max_value=2**64)


@st.composite
def valid_codes(draw: st.DrawFn) -> str:
    """A valid code: either from generate() or built from arbitrary characters."""
    if draw(st.booleans()):
        rng = random.Random(draw(seeds))
        kind = draw(st.sampled_from(sorted(uscc.MARKET_SUPERVISION_TYPES)))
        dept, org_type = uscc.MARKET_SUPERVISION_TYPES[kind]
        return uscc.generate(
            rng, region_code=draw(region_codes), registration_dept=dept, org_type=org_type
        )
    head = draw(st.text(alphabet="0123456789", min_size=8, max_size=8))
    tail = draw(st.text(alphabet=uscc.ALPHABET, min_size=9, max_size=9))
    return head + tail + uscc.check_digit(head + tail)


@st.composite
def mutated_codes(draw: st.DrawFn) -> str:
    code = draw(valid_codes())
    pos = draw(st.integers(min_value=0, max_value=17))
    return code[:pos] + draw(st.sampled_from(NOISE)) + code[pos + 1 :]


@st.composite
def decorated_codes(draw: st.DrawFn) -> str:
    """A valid code with case changes, separators and surrounding whitespace."""
    code = draw(valid_codes())
    out = []
    for ch in code:
        if draw(st.booleans()):
            ch = ch.lower()
        out.append(ch + draw(st.sampled_from(["", "", " ", "-"])))
    return draw(st.sampled_from(["", " ", "\t", "\u3000"])) + "".join(out) + " \n"


any_codes = st.one_of(
    valid_codes(),
    mutated_codes(),
    decorated_codes(),
    valid_codes().map(str.lower),
    st.text(alphabet=uscc.ALPHABET, min_size=17, max_size=19),
    st.text(alphabet=NOISE, min_size=17, max_size=19),
    st.text(max_size=24),
)


# -- scalar functions -----------------------------------------------------------------------


def test_check_digit_known_codes() -> None:
    # The python-stdnum documentation example and the GB 32100-2015 example code.
    assert uscc.check_digit("91110000600037341") == "L"
    assert uscc.check_digit("91350100M000100Y4") == "3"
    assert uscc.is_valid("91110000600037341L")
    assert uscc.is_valid("91350100M000100Y43")


def test_check_digit_weights_are_powers_of_three() -> None:
    assert uscc.WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


@pytest.mark.parametrize("bad", ["9111000060003734", "911100006000373411", "9111000060003734I"])
def test_check_digit_rejects_malformed_input(bad: str) -> None:
    with pytest.raises(ValueError, match="first17"):
        uscc.check_digit(bad)


@pytest.mark.parametrize(
    ("body", "check"),
    [
        ("60003734", "1"),
        ("M000100Y", "4"),
        ("00000001", "9"),  # Σ = 2 → 11 − 2
        ("00000006", "X"),  # Σ = 12 ≡ 1 → 10 is written X
        ("00000000", "0"),  # Σ ≡ 0 → 11 is written 0
    ],
)
def test_org_check_digit_gb_11714(body: str, check: str) -> None:
    assert uscc.org_check_digit(body) == check


@given(any_codes)
@settings(max_examples=600)
@example("1234567\n9000000000")  # python-stdnum raises ValueError here
@example("")
@example("91110000600037341L\x00")
@example("９１１１００００６０００３７３４１Ｌ")
@example("91110000600037341ﬀ")
def test_is_valid_agrees_with_stdnum(code: str) -> None:
    assert uscc.is_valid(code) == reference(code)
    assert (uscc.invalid_reason(code) is None) == reference(code)


@given(valid_codes())
def test_valid_codes_are_valid(code: str) -> None:
    assert uscc.is_valid(code)
    assert uscc.is_valid(code.lower())


@given(valid_codes(), st.integers(min_value=0, max_value=17), st.sampled_from(uscc.ALPHABET))
def test_any_single_substitution_is_detected(code: str, pos: int, ch: str) -> None:
    # Mod 31 with weights coprime to 31 catches every single-character substitution.
    mutated = code[:pos] + ch + code[pos + 1 :]
    assert uscc.is_valid(mutated) == (mutated == code)


def test_invalid_reason_messages() -> None:
    assert uscc.invalid_reason("91110000600037341L") is None
    length = uscc.invalid_reason("9111000060003734")
    assert length is not None
    assert "长度应为18位" in length
    assert "must be 18 characters" in length
    head = uscc.invalid_reason("A1110000600037341L")
    assert head is not None
    assert "含非法字符" in head
    assert "position 1" in head
    tail = uscc.invalid_reason("91110000600037I41L")
    assert tail is not None
    assert "含非法字符" in tail
    assert "position 15" in tail
    check = uscc.invalid_reason("91110000600037341M")
    assert check is not None
    assert "校验位错误" in check
    assert "expected L" in check
    assert uscc.invalid_reason(None) is not None  # type: ignore[arg-type]


def test_org_code_check_only_when_strict() -> None:
    # Valid by GB 32100 (and python-stdnum) but the organisation code's check is wrong.
    code = "92350102MA31234567"
    assert uscc.is_valid(code)
    assert uscc.invalid_reason(code) is None
    reason = uscc.invalid_reason(code, strict=True)
    assert reason is not None
    assert reason.startswith("组织机构代码校验位错误")
    assert "expected 9" in reason
    assert uscc.validate_many([code]).tolist() == [True]
    assert uscc.validate_many([code], strict=True).tolist() == [False]


# -- normalisation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        " 91110000600037341l ",
        "９１１１００００６０００３７３４１Ｌ",
        "\u30009111 0000 6000 3734 1L\u3000",
        "91110000-60003734-1L",
        "9111\t0000600037341L\n",
        "９１１１００００６０００３７３４１ｌ",
    ],
)
def test_normalize(raw: str) -> None:
    assert uscc.normalize(raw) == "91110000600037341L"
    assert uscc.is_valid(uscc.normalize(raw))


@given(decorated_codes())
def test_normalize_recovers_decorated_codes(raw: str) -> None:
    code = uscc.normalize(raw)
    assert uscc.is_valid(code)
    assert code == code.upper()
    assert code.isascii()
    assert len(code) == 18


@given(any_codes)
@settings(max_examples=500)
def test_normalize_never_breaks_a_valid_code(raw: str) -> None:
    if reference(raw):
        assert uscc.normalize(raw) == stdnum_uscc.compact(raw)
    assert uscc.normalize(uscc.normalize(raw)) == uscc.normalize(raw)


# -- validate_many ------------------------------------------------------------------------


@given(st.lists(any_codes, max_size=40))
@settings(max_examples=200)
def test_validate_many_agrees_with_stdnum(codes: list[str]) -> None:
    expected = [reference(code) for code in codes]
    result = uscc.validate_many(codes)
    assert result.dtype == np.bool_
    assert result.shape == (len(codes),)
    assert result.tolist() == expected
    assert uscc.validate_many(tuple(codes)).tolist() == expected
    assert uscc.validate_many(np.array(codes, dtype=object)).tolist() == expected


@given(st.lists(any_codes, min_size=1, max_size=40))
@settings(max_examples=150)
def test_validate_many_on_numpy_str_array(codes: list[str]) -> None:
    arr = np.array(codes, dtype=str)
    # NumPy drops trailing NULs when storing: compare with what the array holds.
    expected = [reference(str(code)) for code in arr]
    assert uscc.validate_many(arr).tolist() == expected
    assert uscc.validate_many(arr.reshape(1, -1)).tolist() == [expected]


@given(st.lists(any_codes, max_size=40))
@settings(max_examples=150)
def test_validate_many_strict_agrees_with_invalid_reason(codes: list[str]) -> None:
    expected = [uscc.invalid_reason(code, strict=True) is None for code in codes]
    assert uscc.validate_many(codes, strict=True).tolist() == expected


def test_validate_many_edge_cases() -> None:
    assert uscc.validate_many([]).tolist() == []
    assert uscc.validate_many(np.array([], dtype=str)).tolist() == []
    assert uscc.validate_many(np.array(["", ""])).tolist() == [False, False]
    mixed = ["91110000600037341L", None, 91110000600037341, b"91110000600037341L", float("nan")]
    assert uscc.validate_many(mixed).tolist() == [True, False, False, False, False]  # type: ignore[arg-type]
    assert uscc.validate_many(["91110000600037341l", "9111000060003734-1L"]).tolist() == [
        True,
        True,
    ]


def test_validate_many_across_chunks() -> None:
    rng = random.Random(20260101)
    n = 70_000  # crosses an internal chunk boundary (65 536)
    codes = [uscc.generate(rng, region_code="370102") for _ in range(n)]
    expected = np.ones(n, dtype=bool)
    for i in range(0, n, 7):
        wrong = uscc.ALPHABET[(uscc.ALPHABET.index(codes[i][17]) + 1) % 31]
        codes[i] = codes[i][:17] + wrong
        expected[i] = False
    for i in range(3, n, 1001):
        codes[i] = " " + codes[i]  # scalar path; still valid unless mutated above
    for i in range(5, n, 5003):
        codes[i] = codes[i][:10]
        expected[i] = False
    assert (uscc.validate_many(codes) == expected).all()
    assert (uscc.validate_many(np.array(codes)) == expected).all()
    assert (uscc.validate_many(codes, strict=True) == expected).all()


@given(st.lists(any_codes, max_size=40))
@settings(max_examples=200)
def test_validate_bytes_agrees_with_stdnum(codes: list[str]) -> None:
    """The byte-matrix path (what the bulk import has for cells of 18 bytes): final where it
    says ``plain``, and then it agrees with python-stdnum."""
    raw = [c.encode("utf-8") for c in codes]
    fixed = [(c, r) for c, r in zip(codes, raw, strict=True) if len(r) == 18]
    chars = np.frombuffer(b"".join(r for _, r in fixed), dtype=np.uint8).reshape(-1, 18)
    for strict in (False, True):
        valid, plain = uscc.validate_bytes(chars, strict=strict)
        for (code, _), v, p in zip(fixed, valid.tolist(), plain.tolist(), strict=True):
            assert p == (code.isascii() and code.isalnum())
            if p:
                expected = (
                    uscc.invalid_reason(code, strict=True) is None if strict else reference(code)
                )
                assert v == expected


def test_validate_bytes_across_chunks() -> None:
    rng = random.Random(20260102)
    n = 70_000  # crosses an internal chunk boundary (65 536)
    codes = [uscc.generate(rng, region_code="350102") for _ in range(n)]
    expected = np.ones(n, dtype=bool)
    for i in range(0, n, 7):
        codes[i] = codes[i][:17] + uscc.ALPHABET[(uscc.ALPHABET.index(codes[i][17]) + 1) % 31]
        expected[i] = False
    codes[1] = codes[1].lower()  # lower case is accepted, as python-stdnum upper-cases
    chars = np.frombuffer("".join(codes).encode(), dtype=np.uint8).reshape(n, 18)
    valid, plain = uscc.validate_bytes(chars)
    assert plain.all() and (valid == expected).all()
    assert [reference(c) for c in codes[:50]] == valid[:50].tolist()
    with pytest.raises(ValueError, match="18"):
        uscc.validate_bytes(chars[:, :17])


# -- generate ------------------------------------------------------------------------------


@given(seeds, region_codes, st.sampled_from(sorted(uscc.MARKET_SUPERVISION_TYPES)))
def test_generate_is_valid_and_deterministic(seed: int, region: str, kind: str) -> None:
    dept, org_type = uscc.MARKET_SUPERVISION_TYPES[kind]
    code = uscc.generate(
        random.Random(seed), region_code=region, registration_dept=dept, org_type=org_type
    )
    again = uscc.generate(
        random.Random(seed), region_code=region, registration_dept=dept, org_type=org_type
    )
    assert code == again
    assert reference(code)
    assert uscc.invalid_reason(code, strict=True) is None
    assert code[0] == dept
    assert code[1] == org_type
    assert code[2:8] == region


def test_generate_entity_kinds() -> None:
    assert uscc.MARKET_SUPERVISION_TYPES == {
        "enterprise": ("9", "1"),
        "sole_trader": ("9", "2"),
        "cooperative": ("9", "3"),
    }
    rng = random.Random(7)
    assert uscc.generate(rng, region_code="350102", org_type="2").startswith("92350102")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"region_code": "35010"},
        {"region_code": "35010A"},
        {"region_code": "350102", "registration_dept": "Y"},
        {"region_code": "350102", "org_type": "12"},
    ],
)
def test_generate_rejects_bad_parts(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="must be"):
        uscc.generate(random.Random(1), **kwargs)


def test_core_modules_stay_pure() -> None:
    # core/ imports neither the web framework nor the database layer.
    code = (
        "import sys, qsampling.core.uscc, qsampling.core.workdays; "
        "print(sorted(m for m in ('fastapi', 'sqlalchemy', 'asyncpg') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def _measure(n: int = 1_000_000) -> None:
    """Print validate_many throughput; a measurement, not a test."""
    rng = random.Random(1)
    codes = [uscc.generate(rng, region_code="350102") for _ in range(n)]
    for i in range(0, n, 10):
        codes[i] = codes[i][:17] + ("0" if codes[i][17] != "0" else "1")
    arr = np.array(codes)
    for label, data, strict in [
        ("list[str]", codes, False),
        ("list[str] strict", codes, True),
        ("ndarray <U18", arr, False),
    ]:
        best = min(_timed(data, strict) for _ in range(5))
        print(f"validate_many {label}: {n / best / 1e6:.1f} M codes/s ({best * 1e3:.0f} ms)")
    start = time.perf_counter()
    for code in codes[:100_000]:
        stdnum_uscc.is_valid(code)
    elapsed = time.perf_counter() - start
    print(f"stdnum.cn.uscc.is_valid loop: {100_000 / elapsed / 1e6:.2f} M codes/s")


def _timed(data: object, strict: bool) -> float:
    start = time.perf_counter()
    uscc.validate_many(data, strict=strict)  # type: ignore[arg-type]
    return time.perf_counter() - start


if __name__ == "__main__":
    _measure()
