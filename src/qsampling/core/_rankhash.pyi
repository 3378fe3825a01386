"""Inspector ranking of QSDRAW-1 step 5 in C (see _rankhash.c)."""

from array import array
from collections.abc import Sequence

_Int32s = array[int] | bytes | bytearray | memoryview

def rank(
    prefixes: Sequence[bytes],
    ids: Sequence[bytes],
    id_units: _Int32s,
    local_units: _Int32s,
    excluded_start: _Int32s,
    excluded: _Int32s,
    k: int,
    impl: str | None = None,
) -> tuple[bytes, bytes]: ...
def digests(prefix: bytes, ids: Sequence[bytes], impl: str | None = None) -> list[bytes]: ...
def implementations() -> tuple[str, ...]: ...
