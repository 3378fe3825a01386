"""统一社会信用代码 (USCC): check digits, validation and test-data generation.

The code is defined by GB 32100-2015 《法人和其他组织统一社会信用代码编码规则》:

====  ==========================================================================
pos   meaning
====  ==========================================================================
1     登记管理部门代码 (registration department; 9 = 工商 / market supervision)
2     机构类别代码 (organisation type within that department)
3–8   登记管理机关行政区划码 (region code, GB/T 2260)
9–17  主体标识码 (organisation code, GB 11714, its own mod-11 check in pos 17)
18    校验码 (check character, mod 31 over positions 1–17)
====  ==========================================================================

The characters come from :data:`ALPHABET` (digits and upper-case letters without I, O, S, V
and Z). The check character is ``C18 = (31 − Σ(v_i × w_i) mod 31) mod 31`` with the weights
``w_i = 3^(i−1) mod 31`` and ``v_i`` the character's index in :data:`ALPHABET`.

Compatibility contract: :func:`is_valid` and :func:`validate_many` agree exactly with
``stdnum.cn.uscc.is_valid`` (python-stdnum), including its input clean-up (separators and
the Unicode spaces, dashes and digits it maps, upper-casing, trimming). Like python-stdnum,
they therefore

* require positions 1–8 to be ASCII digits. GB 32100-2015 also allows the letters A, N and Y
  as registration-department codes; such codes do not occur in a market-supervision
  directory, where every entity is registered by department 9;
* do not look the region code up in GB/T 2260;
* do not verify the GB 11714 organisation-code check in position 17 — pass ``strict=True`` to
  :func:`invalid_reason` or :func:`validate_many` to add that check.

(python-stdnum raises ``ValueError`` instead of returning ``False`` for a few malformed inputs
with a newline inside the first eight characters; here they are simply invalid.)

Pure functions only: no I/O, randomness only through the caller's seeded generator.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any, Final, cast

import numpy as np
import numpy.typing as npt
from stdnum.cn import uscc as _stdnum_uscc
from stdnum.exceptions import ValidationError

__all__ = [
    "ALPHABET",
    "MARKET_SUPERVISION_TYPES",
    "WEIGHTS",
    "ORG_WEIGHTS",
    "check_digit",
    "generate",
    "invalid_reason",
    "is_valid",
    "normalize",
    "org_check_digit",
    "validate_many",
]

ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 characters a USCC may contain (GB 32100-2015), in check-value order."""

WEIGHTS: Final = tuple(pow(3, i, 31) for i in range(17))
"""GB 32100-2015 weights for positions 1–17: 3^(i−1) mod 31."""

ORG_WEIGHTS: Final = (3, 7, 9, 10, 5, 8, 4, 2)
"""GB 11714 weights for the eight body characters of the organisation code."""

MARKET_SUPERVISION_TYPES: Final[Mapping[str, tuple[str, str]]] = {
    "enterprise": ("9", "1"),  # 企业
    "sole_trader": ("9", "2"),  # 个体工商户
    "cooperative": ("9", "3"),  # 农民专业合作社
}
"""(registration department, organisation type) per GB 32100-2015 for the three kinds of
entity in a market-supervision directory: department 9 (工商 / 市场监督管理) with type
1 企业, 2 个体工商户, 3 农民专业合作社 (联合社)."""

_DIGITS: Final = "0123456789"
_VALUE: Final = {ch: i for i, ch in enumerate(ALPHABET)}

_LETTERS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SPECIAL: Final = 255  # not [0-9A-Za-z]: needs python-stdnum's clean-up, take the scalar path
_OUTSIDE: Final = 31  # an ASCII letter the alphabet excludes (I, O, S, V, Z): plainly invalid


def _table(values: Mapping[str, int], default: int, dtype: type[np.generic]) -> npt.NDArray[Any]:
    """A 256-entry lookup table by code point; letters also map their lower-case form."""
    table = np.full(256, default, dtype=dtype)
    for ch, value in values.items():
        table[ord(ch)] = table[ord(ch.lower())] = value
    return table


# Lookup tables for the vectorised path. _LUT: the GB 32100 value, _OUTSIDE or _SPECIAL.
_LUT: Final = _table(
    {ch: _VALUE.get(ch, _OUTSIDE) for ch in _DIGITS + _LETTERS}, _SPECIAL, np.uint8
)
# GB 11714 values: digits 0–9, letters A=10 … Z=35 (their place in the full Latin alphabet).
_ORG_LUT: Final = _table({ch: i for i, ch in enumerate(_DIGITS + _LETTERS)}, 0, np.uint16)
# The organisation-code check character's value (X = 10); 99 never equals a check value.
_ORG_CHECK_LUT: Final = _table({ch: i for i, ch in enumerate(_DIGITS + "X")}, 99, np.uint16)
_CHUNK: Final = 1 << 16

# Full-width forms (U+FF01–U+FF5E) and the ideographic space map to ASCII.
_FULLWIDTH: Final = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def normalize(code: str) -> str:
    """Return the canonical form of a USCC typed or pasted by a person.

    Full-width letters, digits and spaces (``９１３５…``, U+3000) become ASCII; then the
    clean-up of python-stdnum applies (Unicode dashes and spaces become separators, ``' '`` and
    ``'-'`` are removed, upper-case, trimmed); any whitespace left inside is removed too.
    Normalising never turns a valid code invalid: for a code :func:`is_valid` accepts, the
    result equals python-stdnum's ``compact()``.
    """
    cleaned: str = _stdnum_uscc.compact(code.translate(_FULLWIDTH))
    return "".join(cleaned.split())


def _require(text: str, length: int, allowed: str, what: str) -> None:
    if len(text) != length or any(ch not in allowed for ch in text):
        raise ValueError(f"{what} must be {length} characters from {allowed!r}: {text!r}")


def _check_digit(first17: str) -> str:
    total = sum(_VALUE[ch] * w for ch, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def check_digit(first17: str) -> str:
    """Position 18 for the first 17 characters (GB 32100-2015 校验码).

    ``C18 = (31 − Σ v_i·w_i mod 31) mod 31`` with ``w_i = 3^(i−1) mod 31``; the value maps
    back to a character through :data:`ALPHABET`. Raises ``ValueError`` unless ``first17`` is
    17 characters from :data:`ALPHABET` (no normalising: call :func:`normalize` first).
    """
    _require(first17, 17, ALPHABET, "first17")
    return _check_digit(first17)


def _org_check_digit(body: str) -> str:
    total = sum(int(ch, 36) * w for ch, w in zip(body, ORG_WEIGHTS, strict=True))
    value = 11 - total % 11
    return "X" if value == 10 else "0" if value == 11 else str(value)


def org_check_digit(body: str) -> str:
    """The check character of a GB 11714 organisation code (USCC position 17).

    ``body`` is the code's first eight characters (USCC positions 9–16): digits or upper-case
    letters, valued 0–9 and A=10 … Z=35. ``C9 = 11 − (Σ c_i·w_i mod 11)`` with weights
    3, 7, 9, 10, 5, 8, 4, 2; 10 is written ``X`` and 11 is written ``0``.
    """
    _require(body, 8, _DIGITS + _LETTERS, "organisation-code body")
    return _org_check_digit(body)


def _reason(code: str, *, strict: bool) -> str | None:
    """Why an already-compacted code is invalid, in python-stdnum's order of checks."""
    if len(code) != 18:
        return f"长度应为18位（实际{len(code)}位）/ must be 18 characters (got {len(code)})"
    for pos, ch in enumerate(code[:8], start=1):
        if ch not in _DIGITS:
            return (
                f"含非法字符：第{pos}位 {ch!r}，第1–8位应为数字 / "
                f"invalid character {ch!r} at position {pos}: positions 1–8 must be digits"
            )
    for pos, ch in enumerate(code[8:], start=9):
        if ch not in _VALUE:
            return (
                f"含非法字符：第{pos}位 {ch!r} 不在代码字符集内 / "
                f"invalid character {ch!r} at position {pos}: not in {ALPHABET}"
            )
    expected = _check_digit(code[:17])
    if code[17] != expected:
        return (
            f"校验位错误：第18位应为 {expected}，实为 {code[17]} / "
            f"wrong check character: expected {expected}, got {code[17]}"
        )
    if strict:
        expected = _org_check_digit(code[8:16])
        if code[16] != expected:
            return (
                f"组织机构代码校验位错误：第17位应为 {expected}，实为 {code[16]} / "
                f"wrong organisation-code check character (position 17): "
                f"expected {expected}, got {code[16]}"
            )
    return None


def invalid_reason(code: str, *, strict: bool = False) -> str | None:
    """A short Chinese + English reason why ``code`` is not a valid USCC, or ``None``.

    ``invalid_reason(code) is None`` exactly when :func:`is_valid` is true. With
    ``strict=True`` the GB 11714 organisation-code check (position 17) is verified as well.
    Positions in the message count from 1 in the cleaned-up code.
    """
    if not isinstance(code, str):
        return "不是字符串 / not a string"
    try:
        compact: str = _stdnum_uscc.compact(code)
    except ValidationError:
        return "含非法字符 / invalid characters"
    return _reason(compact, strict=strict)


def is_valid(code: str) -> bool:
    """True when ``code`` is a valid USCC by GB 32100-2015, exactly as python-stdnum decides.

    See the module docstring for what that does and does not check.
    """
    return invalid_reason(code) is None


def _check_columns(
    cols: npt.NDArray[np.uint8], *, strict: bool
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Validate codes stored column-wise: ``cols[i, k]`` is character ``i`` of code ``k``.

    Returns (valid, plain). ``plain`` codes hold only ASCII letters and digits, for which
    python-stdnum's clean-up is just upper-casing, so ``valid`` is final for them; the others
    must go to the scalar path. The column-wise layout makes every step a fast elementwise
    operation over ``k`` instead of a reduction over 18-character rows.
    """
    vals = np.take(_LUT, cols)
    head = vals[:8].max(axis=0)
    tail = vals[8:].max(axis=0)
    plain = np.maximum(head, tail) != _SPECIAL
    total = vals[0].astype(np.uint16)  # Σ ≤ 30·30·17 fits in uint16
    for i in range(1, 17):
        total += vals[i] * np.uint16(WEIGHTS[i])
    valid = plain & (head < 10) & (tail < _OUTSIDE) & ((31 - total % 31) % 31 == vals[17])
    if strict:
        org = np.zeros(cols.shape[1], dtype=np.uint16)
        for i in range(8):
            org += np.take(_ORG_LUT, cols[8 + i]) * np.uint16(ORG_WEIGHTS[i])
        valid &= (11 - org % 11) % 11 == np.take(_ORG_CHECK_LUT, cols[16])
    return valid, plain


def _scalar(code: object, *, strict: bool) -> bool:
    return isinstance(code, str) and invalid_reason(code, strict=strict) is None


def _finish_odd_lengths(
    rows: npt.NDArray[np.intp], codes: list[str], out: npt.NDArray[np.bool_], *, strict: bool
) -> None:
    """Set ``out[rows]`` for codes (``codes[j]`` is row ``rows[j]``) that are not 18 long."""
    for i, code in zip(rows.tolist(), codes, strict=True):
        # Plain ASCII letters and digits cannot be cleaned up to a different length.
        if not (code.isascii() and code.isalnum()):
            out[i] = _scalar(code, strict=strict)


def _validate_str_chunk(chunk: list[str], out: npt.NDArray[np.bool_], *, strict: bool) -> None:
    n = len(chunk)
    # One NUL-separated buffer: the separators give every code's start and length at once.
    joined = "\0".join(chunk)
    buf: npt.NDArray[np.uint8] | npt.NDArray[np.uint32]
    if joined.isascii():
        buf = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    else:
        buf = np.frombuffer(joined.encode("utf-32-le"), dtype="<u4")
    seps = np.flatnonzero(buf == 0)
    if seps.size == n - 1:
        starts = np.concatenate(([0], seps + 1))
        lengths = np.diff(np.concatenate((starts, [buf.size + 1]))) - 1
    else:  # a code contains NUL itself
        lengths = np.fromiter(map(len, chunk), dtype=np.intp, count=n)
        starts = np.concatenate(([0], np.cumsum(lengths[:-1] + 1)))
    is18 = lengths == 18
    rows18 = np.flatnonzero(is18)
    cols: npt.NDArray[Any]
    if rows18.size == n:
        item = buf.itemsize
        cols = np.lib.stride_tricks.as_strided(buf, shape=(18, n), strides=(item, 19 * item))
    else:
        cols = buf[starts[rows18][np.newaxis, :] + np.arange(18)[:, np.newaxis]]
    if cols.dtype != np.uint8:
        # Code points above 255 fold to 255, marked special like everything non-alphanumeric.
        cols = np.minimum(cols, 255).astype(np.uint8)
    else:
        cols = np.ascontiguousarray(cols)
    valid, plain = _check_columns(cols, strict=strict)
    out[rows18] = valid
    for i in rows18[~plain].tolist():
        out[i] = _scalar(chunk[i], strict=strict)
    odd = np.flatnonzero(~is18)
    _finish_odd_lengths(odd, [chunk[i] for i in odd.tolist()], out, strict=strict)


def _validate_unicode_array(arr: npt.NDArray[np.str_], *, strict: bool) -> npt.NDArray[np.bool_]:
    flat = np.ascontiguousarray(arr).reshape(-1)
    out = np.zeros(flat.shape[0], dtype=bool)
    width = flat.dtype.itemsize // 4
    for start in range(0, flat.shape[0] if width else 0, _CHUNK):
        chunk = flat[start : start + _CHUNK]
        view = out[start : start + _CHUNK]
        is18 = np.char.str_len(chunk) == 18
        rows18 = np.flatnonzero(is18)
        if rows18.size:
            cols32 = chunk.view(np.uint32).reshape(-1, width)[rows18, :18].T
            cols = np.minimum(cols32, 255).astype(np.uint8)
            valid, plain = _check_columns(cols, strict=strict)
            view[rows18] = valid
            for i in rows18[~plain].tolist():
                view[i] = _scalar(str(chunk[i]), strict=strict)
        odd = np.flatnonzero(~is18)
        _finish_odd_lengths(odd, chunk[odd].tolist(), view, strict=strict)
    return out.reshape(arr.shape)


def validate_many(
    codes: Sequence[str] | npt.NDArray[np.str_] | npt.NDArray[np.object_],
    *,
    strict: bool = False,
) -> npt.NDArray[np.bool_]:
    """Vectorised :func:`is_valid`: a boolean array, one entry per code.

    Agrees exactly with ``stdnum.cn.uscc.is_valid`` for every input, so it does not need
    normalised input: lower-case letters are accepted (as python-stdnum upper-cases), and a
    code with separators, surrounding whitespace or non-ASCII characters is cleaned up the way
    python-stdnum does it. Codes made only of ASCII letters and digits — what an import has
    after its own strip/upper pass — take the NumPy path (a character lookup table, a dot
    product with :data:`WEIGHTS`, mod 31); the rest take the scalar path, which is slower but
    rare. Elements that are not ``str`` are invalid. A NumPy ``str_`` array keeps its shape;
    note that NumPy drops trailing NUL characters from such arrays.

    ``strict=True`` also verifies the GB 11714 organisation-code check (position 17).
    """
    if isinstance(codes, np.ndarray):
        if codes.dtype.kind == "U":
            return _validate_unicode_array(cast(npt.NDArray[np.str_], codes), strict=strict)
        shape = codes.shape
        items: Sequence[object] = codes.reshape(-1).tolist()
    else:
        shape = (len(codes),)
        items = codes if isinstance(codes, list | tuple) else list(codes)
    out = np.zeros(len(items), dtype=bool)
    for start in range(0, len(items), _CHUNK):
        chunk = list(items[start : start + _CHUNK])
        view = out[start : start + len(chunk)]
        try:
            _validate_str_chunk(chunk, view, strict=strict)  # type: ignore[arg-type]
        except TypeError:
            # Some element is not a str (None, NaN, bytes …): those are invalid.
            strings = ["" if not isinstance(code, str) else code for code in chunk]
            view[:] = False
            _validate_str_chunk(strings, view, strict=strict)
    return out.reshape(shape)


def validate_bytes(
    chars: npt.NDArray[np.uint8], *, strict: bool = False
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Vectorised :func:`is_valid` over codes already laid out as bytes: ``chars[k]`` holds
    the 18 bytes of code ``k`` (what a bulk reader has when every cell is 18 bytes long).

    Returns (valid, plain) like the NumPy path of :func:`validate_many`: ``valid`` is final
    where ``plain`` (the code is only ASCII letters and digits, lower case allowed); the other
    codes must be checked one by one with :func:`is_valid`."""
    if chars.ndim != 2 or chars.shape[1] != 18:
        raise ValueError("expected an (n, 18) array of bytes")
    n = chars.shape[0]
    valid = np.zeros(n, dtype=bool)
    plain = np.zeros(n, dtype=bool)
    for start in range(0, n, _CHUNK):  # chunks keep the lookups' temporaries in cache
        part = np.ascontiguousarray(chars[start : start + _CHUNK].T)
        valid[start : start + _CHUNK], plain[start : start + _CHUNK] = _check_columns(
            part, strict=strict
        )
    return valid, plain


def generate(
    rng: random.Random,
    *,
    region_code: str,
    registration_dept: str = "9",
    org_type: str = "1",
) -> str:
    """A random valid USCC for test and demo data (GB 32100-2015, GB/T 2260, GB 11714).

    Layout: ``registration_dept`` + ``org_type`` + ``region_code`` + an organisation code
    (eight body characters and their GB 11714 check character) + the GB 32100 check character.
    The body is eight digits or, half the time, ``MA`` + six characters from
    :data:`ALPHABET`, the form issued since 2015. For the kinds of entity in a
    market-supervision directory see :data:`MARKET_SUPERVISION_TYPES`: 企业 ``"9", "1"``,
    个体工商户 ``"9", "2"``, 农民专业合作社 ``"9", "3"``. The result always passes
    :func:`is_valid` and ``validate_many(..., strict=True)``; the same seeded ``rng`` state
    gives the same code. ``region_code`` must be six digits (it is not looked up).
    """
    _require(region_code, 6, _DIGITS, "region_code")
    # python-stdnum accepts only digits in positions 1–8, so letter departments are refused.
    _require(registration_dept, 1, _DIGITS, "registration_dept")
    _require(org_type, 1, _DIGITS, "org_type")
    if rng.random() < 0.5:
        body = "MA" + "".join(rng.choice(ALPHABET) for _ in range(6))
    else:
        body = "".join(rng.choice(_DIGITS) for _ in range(8))
    first17 = registration_dept + org_type + region_code + body + _org_check_digit(body)
    return first17 + _check_digit(first17)
