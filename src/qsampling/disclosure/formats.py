"""How values are written in CSV/XLSX exports (shared by the export writers and by the
precomputed CSV line each publication stores for the COPY fast path)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from typing import Any


def iso_z(v: datetime) -> str:
    return v.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def text_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, datetime):
        return iso_z(v)
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return ";".join(text_value(x) for x in v)
    if isinstance(v, float):
        return repr(v)
    return str(v)


def one_line(s: str) -> str:
    """No line breaks, tabs or ASCII control characters (so one row is one line)."""
    return " ".join(s.split()) if s else s


def csv_line(values: list[Any]) -> str:
    """One CSV row (no line terminator), quoted like Python's csv module does."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([one_line(text_value(v)) for v in values])
    return buf.getvalue()
