"""What may be public about a person, decided in one place (DESIGN §3 Disclosure).

- No personal identity numbers, no phone numbers, no home addresses of natural persons.
- Sole traders (个体工商户) are natural persons' businesses: shown by business name, their
  registered address is treated as the owner's home and never published.
- Free text that reaches public output (product names, batch numbers, list reasons) is
  passed through :func:`redact`, which masks anything shaped like a PRC identity number
  (GB 11643, 18 characters with a date of birth) or a mainland mobile/landline number.

Pure functions, no I/O.
"""

from __future__ import annotations

import re
from typing import Final

NATURAL_PERSON_ENTITY_TYPES: Final = frozenset({"个体工商户"})
MASK: Final = "［已隐去］"

# boundaries: not inside a longer run of letters/digits (hashes, USCCs, serial numbers)
_B0 = r"(?<![0-9A-Za-z])"
_B1 = r"(?![0-9A-Za-z])"
ID_NUMBER = re.compile(
    _B0 + r"[1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]" + _B1
)
MOBILE = re.compile(_B0 + r"(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{4}){2}" + _B1)
LANDLINE = re.compile(_B0 + r"0\d{2,3}-\d{7,8}" + _B1)


def redact(text: str | None) -> str:
    """``text`` with identity numbers and phone numbers masked ('' for None)."""
    if not text:
        return ""
    out = ID_NUMBER.sub(MASK, text)
    out = MOBILE.sub(MASK, out)
    return LANDLINE.sub(MASK, out)


def is_natural_person(entity_type: str | None) -> bool:
    return entity_type in NATURAL_PERSON_ENTITY_TYPES


def public_address(entity_type: str | None, address: str | None) -> str | None:
    """The address as it may be published: none for a sole trader, redacted otherwise."""
    if is_natural_person(entity_type) or not address:
        return None
    return redact(address)
