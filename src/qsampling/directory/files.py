"""Reading the files people bring: CSV (UTF-8, UTF-8 with BOM or GB18030) and XLSX.

A file is first sniffed in one pass over its bytes (SHA-256, format, encoding): a UTF-8 BOM
means ``utf-8-sig``; otherwise the whole stream must decode as strict UTF-8, and if it does
not, as GB18030 (what Excel and WPS write on Chinese Windows when "CSV" is chosen). Files with
NUL bytes are not text; a ZIP container is read as an XLSX workbook; an OLE2 container is an
old ``.xls`` workbook, which we ask the user to save as ``.xlsx`` or CSV.

Rows then come in chunks of lists of strings (cells trimmed of nothing: validators decide),
numbered as a spreadsheet numbers them: the header is row 1, so the first data row is 2.
Entirely blank rows are skipped but still counted, so the numbers match what the user sees.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO, Any

from qsampling.errors import InvalidInput

BLOCK = 1 << 22  # 4 MiB per read while sniffing
CHUNK_ROWS = 32_000  # two chunks in flight stay well under 100 MB
csv.field_size_limit(1 << 20)  # a cell of a megabyte is already absurd; larger is an error


class FileProblem(InvalidInput):
    """The file as a whole cannot be imported (nothing is read from it)."""

    code = "BadFile"


@dataclass(frozen=True)
class Sniffed:
    format: str  # "csv" | "xlsx"
    encoding: str | None  # for CSV: "utf-8" | "utf-8-sig" | "gb18030"
    sha256: str
    size: int

    @property
    def label(self) -> str:
        return f"csv/{self.encoding}" if self.format == "csv" else self.format


_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def sniff(f: IO[bytes]) -> Sniffed:
    """Read ``f`` once from the start: digest, format and encoding. Leaves ``f`` at 0."""
    f.seek(0)
    digest = hashlib.sha256()
    first = f.read(BLOCK)
    size = len(first)
    digest.update(first)
    if first.startswith(b"PK\x03\x04"):
        while block := f.read(BLOCK):
            digest.update(block)
            size += len(block)
        f.seek(0)
        return Sniffed("xlsx", None, digest.hexdigest(), size)
    if first.startswith(_OLE2):
        raise FileProblem(
            "This is an old Excel .xls workbook; save it as .xlsx or CSV and import that. "
            "请另存为 .xlsx 或 CSV 后导入。",
            code="NotATextFile",
        )
    bom = first.startswith(codecs.BOM_UTF8)
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    utf8_ok = True
    has_text = bool(first[3:].strip() if bom else first.strip())
    block = first[3:] if bom else first
    while True:
        if b"\x00" in block:
            raise FileProblem(
                "This is not a text file (it contains NUL bytes): upload a CSV or an .xlsx "
                "workbook. 文件不是文本（CSV）或 .xlsx 工作簿。",
                code="NotATextFile",
            )
        if utf8_ok:
            try:
                decoder.decode(block)
            except UnicodeDecodeError:
                utf8_ok = False
        block = f.read(BLOCK)
        if not block:
            break
        size += len(block)
        digest.update(block)
        has_text = has_text or bool(block.strip())
    if utf8_ok:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8_ok = False
    if not has_text:
        raise FileProblem("The file is empty. 文件为空。", code="EmptyFile")
    if bom:
        if not utf8_ok:
            raise FileProblem(
                "The file starts with a UTF-8 byte-order mark but is not valid UTF-8. "
                "文件编码错误。",
                code="BadEncoding",
            )
        encoding = "utf-8-sig"
    elif utf8_ok:
        encoding = "utf-8"
    else:
        encoding = "gb18030"
        f.seek(0)
        dec = codecs.getincrementaldecoder("gb18030")("strict")
        try:
            while block := f.read(BLOCK):
                dec.decode(block)
            dec.decode(b"", final=True)
        except UnicodeDecodeError:
            raise FileProblem(
                "The file is neither UTF-8 nor GB18030 text; save it as CSV (UTF-8) and try "
                "again. 无法识别文件编码（应为 UTF-8 或 GB18030）。",
                code="BadEncoding",
            ) from None
    f.seek(0)
    return Sniffed("csv", encoding, digest.hexdigest(), size)


@dataclass
class Table:
    """The rows of a file after its header. ``chunks()`` yields (row numbers, rows)."""

    header: list[str]
    source: Iterator[list[str]]
    position: Callable[[], int]  # bytes consumed so far (for progress)
    size: int
    header_number: int = 1
    blank_rows: int = 0  # entirely blank rows skipped so far (still counted in numbers)
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def chunks(self, n: int = CHUNK_ROWS) -> Iterator[tuple[list[int], list[list[str]]]]:
        number = self.header_number
        while True:
            try:
                batch = list(itertools.islice(self.source, n))
            except csv.Error as exc:
                raise FileProblem(
                    f"The CSV cannot be read after row {number}: {exc}. CSV 格式错误。",
                    code="BadCsv",
                ) from None
            if not batch:
                return
            numbers = list(range(number + 1, number + 1 + len(batch)))
            number += len(batch)
            filled = list(map(any, batch))
            if not all(filled):
                keep = [i for i, f in enumerate(filled) if f]
                self.blank_rows += len(batch) - len(keep)
                numbers = [numbers[i] for i in keep]
                batch = [batch[i] for i in keep]
                if not batch:
                    continue
            yield numbers, batch

    def close(self) -> None:
        for c in self._closers:
            c()


def _detacher(text: io.TextIOWrapper) -> Callable[[], None]:
    """Let go of the binary file without closing it (the caller owns it)."""

    def _detach() -> None:
        with contextlib.suppress(ValueError):
            text.detach()

    return _detach


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, datetime):
        return v.date().isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _xlsx_rows(rows: Iterator[tuple[Any, ...]]) -> Iterator[list[str]]:
    for values in rows:
        row = [_cell(v) for v in values]
        # whitespace-only cells count as blank, like in the CSV reader after trimming
        yield row if any(c.strip() for c in row) else []


def open_table(f: IO[bytes], sniffed: Sniffed) -> Table:
    """The header and a row iterator over ``f`` (already sniffed)."""
    f.seek(0)
    number = 0
    if sniffed.format == "xlsx":
        try:
            from openpyxl import load_workbook

            wb = load_workbook(f, read_only=True, data_only=True)
            ws = wb.worksheets[0]
            it = ws.iter_rows(values_only=True)
            header_values: tuple[Any, ...] | None = None
            for values in it:
                number += 1
                if any(_cell(v).strip() for v in values):
                    header_values = values
                    break
        except Exception as exc:  # noqa: BLE001 - any failure means the workbook is unreadable
            raise FileProblem(
                f"The file looks like an .xlsx workbook but cannot be read ({type(exc).__name__})."
                " 无法读取该 .xlsx 工作簿。",
                code="NotATextFile",
            ) from None
        if header_values is None:
            wb.close()
            raise FileProblem("The workbook's first sheet is empty. 工作表为空。", code="EmptyFile")
        header = [_cell(v) for v in header_values]
        # trailing empty header cells are formatting, not columns
        while header and not header[-1].strip():
            header.pop()
        return Table(header, _xlsx_rows(it), lambda: 0, sniffed.size, number, _closers=[wb.close])
    assert sniffed.encoding is not None
    text = io.TextIOWrapper(f, encoding=sniffed.encoding, newline="", errors="strict")
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader)
        number = 1
        while not any(c.strip() for c in header):
            header = next(reader)
            number += 1
    except StopIteration:
        raise FileProblem("The file is empty. 文件为空。", code="EmptyFile") from None
    except csv.Error as exc:
        raise FileProblem(
            f"The CSV header cannot be read: {exc}. CSV 格式错误。", code="BadCsv"
        ) from None

    def position() -> int:
        try:
            return f.tell()
        except (OSError, ValueError):
            return 0

    return Table(header, reader, position, sniffed.size, number, _closers=[_detacher(text)])


# --- headers ---------------------------------------------------------------------------------


def _key(name: str) -> str:
    return "".join(name.replace("\ufeff", "").split()).lower().replace("_", "").replace("-", "")


PERSONAL_COLUMNS = (
    "身份证",
    "证件号",
    "手机",
    "电话",
    "联系方式",
    "idnumber",
    "idcard",
    "phone",
    "mobile",
    "tel",
)


@dataclass(frozen=True)
class Columns:
    """Where each known column sits in the file; unknown columns are read past."""

    index: dict[str, int]
    ignored: list[str]


def map_header(
    header: list[str],
    *,
    aliases: dict[str, tuple[str, ...]],
    required: tuple[str, ...],
    what: str,
) -> Columns:
    """Match the header against the known columns (English names or Chinese aliases).

    Missing required columns, a column given twice or a header that matches nothing is a
    ``BadHeader`` error naming the columns expected. Unknown columns are ignored (and reported):
    real exports carry 序号 and the like. Columns that would hold personal ID or phone numbers
    are ignored too: such data never enters the directory.
    """
    lookup: dict[str, str] = {}
    for canonical, names in aliases.items():
        for n in (canonical, *names):
            lookup[_key(n)] = canonical
    index: dict[str, int] = {}
    ignored: list[str] = []
    for i, raw in enumerate(header):
        hit = lookup.get(_key(raw))
        if hit is None:
            if raw.strip():
                ignored.append(raw.strip())
            continue
        if hit in index:
            raise FileProblem(
                f"Column {hit!r} appears twice in the header (columns {index[hit] + 1}"
                f" and {i + 1}). 表头列重复。",
                code="BadHeader",
            )
        index[hit] = i
    missing = [c for c in required if c not in index]
    if missing:
        expected = ", ".join(f"{c} ({aliases[c][0]})" if aliases[c] else c for c in aliases)
        raise FileProblem(
            f"The header lacks the required column(s) {', '.join(missing)} for {what}. "
            f"Expected columns: {expected}. 表头缺少必填列。",
            code="BadHeader",
        )
    return Columns(index, ignored)


def is_personal_column(name: str) -> bool:
    k = _key(name)
    return any(p in k for p in PERSONAL_COLUMNS)


def columns_of(
    rows: list[list[str]], cols: Columns, width: int
) -> tuple[dict[str, Sequence[str]], list[int]]:
    """Transpose a chunk to the known columns. Short rows are padded with empty cells (some
    tools drop trailing empty cells); rows with more cells than the header are returned as
    ``too_long`` (their cells cannot be trusted to be in the right columns)."""
    too_long: list[int] = []
    if set(map(len, rows)) != {width}:
        fixed: list[list[str]] = []
        for i, r in enumerate(rows):
            if len(r) > width:
                if any(c.strip() for c in r[width:]):
                    too_long.append(i)
                r = r[:width]
            elif len(r) < width:
                r = r + [""] * (width - len(r))
            fixed.append(r)
        rows = fixed
    transposed = list(zip(*rows, strict=True)) if rows else []  # C speed, one pass
    out: dict[str, Sequence[str]] = {}
    for name, i in cols.index.items():
        out[name] = transposed[i] if transposed else ()
    return out, too_long


# --- whole columns (the fast path for large, regular CSV files) ------------------------------

FAST_MAX_BYTES = 256 << 20  # held in memory (≈ 5× its size at the peak): beyond, stream it


def read_columns(f: IO[bytes], sniffed: Sniffed, width: int, header_number: int) -> Any:
    """The data rows of a regular CSV as whole columns (a ``pyarrow.Table`` of strings named
    ``c0`` … ``c{width-1}``), parsed by Arrow's multi-threaded C++ reader, or ``None`` when
    the file needs the row reader above: not CSV, larger than :data:`FAST_MAX_BYTES`, blank
    lines before the header, a quote that is not plainly well-formed (the row reader's strict
    rules then decide what it means), blank rows (they are skipped but still numbered) or
    rows with another number of cells than the header. Row ``i`` of the result is file row
    ``header_number + 1 + i``."""
    if sniffed.format != "csv" or sniffed.size > FAST_MAX_BYTES or header_number != 1 or width < 2:
        return None
    import pyarrow as pa
    import pyarrow.csv as pacsv

    f.seek(0)
    raw = f.read()
    f.seek(0)
    if sniffed.encoding == "gb18030":
        raw = raw.decode("gb18030").encode("utf-8")
    elif raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    quoted = b'"' in raw
    if quoted and (b'"' in raw[: raw.find(b"\n")] or not _well_quoted(raw)):
        return None  # (a quoted header: Arrow's skip_rows could count its lines otherwise)
    # blank rows (empty lines, or empty cells only): the row reader skips them but counts them
    empty = b"," * (width - 1)
    if raw.endswith((b"\n" + empty, b"\r" + empty)) or _has_blank_lines(raw, width):
        return None
    irregular: list[int] = []

    def odd_row(row: Any) -> str:
        irregular.append(1)
        return "skip"

    names = [f"c{i}" for i in range(width)]
    try:
        table = pacsv.read_csv(
            pa.py_buffer(raw),
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=header_number, block_size=8 << 20
            ),
            parse_options=pacsv.ParseOptions(
                quote_char='"' if quoted else False,
                newlines_in_values=quoted,
                ignore_empty_lines=False,
                invalid_row_handler=odd_row,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                null_values=[],
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, ValueError):
        return None
    del raw
    if irregular or table.num_rows == 0:
        return None
    return table


def _has_blank_lines(raw: bytes, width: int) -> bool:
    """Whether ``raw`` holds ``\\n\\n``, ``\\n\\r`` or ``\\r\\r``, or a line of ``width - 1``
    commas only between two line-end bytes. The line ends of a few megabytes at a time, at
    once (NumPy): searching for each of these byte pairs stops at every line of the file,
    and small pieces reuse their memory instead of faulting in fresh pages."""
    import numpy as np

    buf = np.frombuffer(raw, dtype=np.uint8)
    step = 1 << 22
    for start in range(0, buf.size, step):
        part = buf[start : start + step + width]  # overlaps the next piece: nothing falls between
        ends = np.flatnonzero((part == ord("\n")) | (part == ord("\r")))
        if ends.size < 2:
            continue
        gap = np.diff(ends)
        first, second = part[ends[:-1]], part[ends[1:]]
        if ((gap == 1) & ~((first == ord("\r")) & (second == ord("\n")))).any():
            return True
        commas_only = np.flatnonzero(gap == width)  # width - 1 bytes between two line ends
        if commas_only.size:
            between = ends[commas_only][:, None] + np.arange(1, width)
            if (part[between] == ord(",")).all(axis=1).any():
                return True
    return False


def _well_quoted(raw: bytes) -> bool:
    """Whether every double quote in ``raw`` sits where RFC 4180 puts it, checked on all
    quotes at once. Counting from the start, the 1st, 3rd … quote opens a field (after a
    comma, a line end or at the start) or is the second of a doubled pair (right after the
    first); the 2nd, 4th … closes a field (before a comma, a line end or the end) or is the
    first of a pair (right before a quote). Anything else (``"a"b``, ``a"b``, an unterminated
    field) is left to the row reader, whose strict rules refuse or read it."""
    import numpy as np

    buf = np.frombuffer(raw, dtype=np.uint8)
    at = np.flatnonzero(buf == ord('"'))
    if at.size % 2:
        return False
    line_end = ord("\n")
    prev = np.where(at > 0, buf[np.maximum(at - 1, 0)], line_end)
    nxt = np.where(at + 1 < buf.size, buf[np.minimum(at + 1, buf.size - 1)], line_end)
    opening, closing = at[0::2], at[1::2]
    seps = np.frombuffer(b",\r\n", dtype=np.uint8)
    # an opening quote right after the previous (closing) quote is the second of a pair
    paired = np.zeros(opening.size, dtype=bool)
    paired[1:] = opening[1:] == closing[:-1] + 1
    opens_ok = np.isin(prev[0::2], seps) | paired
    closes_ok = np.isin(nxt[1::2], seps) | (nxt[1::2] == ord('"'))
    return bool(opens_ok.all() and closes_ok.all())
