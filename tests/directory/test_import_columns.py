"""The whole-column reader (Arrow) and the row reader agree, rule for rule, on one file full of
problems; and which files the whole-column reader takes."""

from __future__ import annotations

import io

import pytest

from qsampling.directory import importer
from qsampling.directory.files import map_header, open_table, read_columns, sniff
from tests.directory.conftest import UNIT, code, csv_text, encode, row, wrong_check

REGIONS = {"350102", "350203"}
CATEGORIES = {"03.01.01", "03.02", "03.01"}


def messy_rows() -> list[dict[str, str]]:
    c7 = code(7, kind="sole_trader")
    return [
        row(1),
        row(2, uscc=wrong_check(code(2))),
        row(3, uscc=code(1)),  # duplicates row 2
        row(4, uscc=code(4).lower(), name="  前后有空格的企业 "),
        row(5, uscc=f" {code(5)} "),
        row(6, uscc=code(5)),  # duplicates the trimmed code of row 6
        row(7, uscc=c7, entity_type="", size="微型", channel="流通", status="在营"),
        row(8, name=""),
        row(9, name="字" * 201),
        row(10, name="张三 350102199003078510 经营部"),
        row(11, address="鼓楼区 联系人手机 13912345678"),
        row(12, address="五四路\x01号"),
        row(13, address="路" * 301),
        row(14, region_code=""),
        row(15, region_code="35010"),
        row(16, region_code="350199"),
        row(17, region_code=" 350203 "),
        row(18, supervising_unit="NO-SUCH-UNIT"),
        row(19, supervising_unit=""),
        row(20, category_codes="03.01；99.99"),
        row(21, category_codes="03.01.01；03.02、03.01.01"),
        row(22, entity_type="公司集团"),
        row(23, size=""),
        row(24, size="huge", channel="wholesale", status="active"),
        row(25, status=""),
        row(26, registration_date="31/05/2020"),
        row(27, registration_date="2015/6/1"),
        row(28, registration_date="2999-01-01"),
        row(29, registration_date=""),
        row(30, uscc=""),
        row(31, uscc="91350102MA2YI0000X"),
        row(32, address="", name="\u3000全角空格\u3000"),
        row(33, uscc=code(33, kind="cooperative"), entity_type=""),
        row(34, name='带"引号"的企业', address="五四路1号, 2层"),
        row(35, address="两行\n地址"),
    ]


def both(data: bytes) -> tuple[tuple, tuple]:
    f = io.BytesIO(data)
    sniffed = sniff(f)
    table = open_table(f, sniffed)
    cols = map_header(
        table.header,
        aliases=importer.ENTERPRISE_ALIASES,
        required=importer.ENTERPRISE_REQUIRED,
        what="enterprises",
    )

    def validator() -> importer.EnterpriseValidator:
        return importer.EnterpriseValidator(
            cols, len(table.header), regions=REGIONS, units={UNIT}, categories=CATEGORIES
        )

    by_rows = validator()
    items: list[tuple] = []
    lines: list[list[str | None]] = []
    for numbers, rows in table.chunks(7):  # several chunks: duplicates across them too
        chunk = by_rows.validate(numbers, rows)
        items += chunk.rejections.items
        for line in chunk.lines:
            cells = [c.replace("\\\\", "\\") for c in line.split("\t")]
            lines.append([None if c == importer.NULL else c for c in cells])
    columns = read_columns(f, sniffed, len(table.header), table.header_number)
    assert columns is not None
    out, keep, rej = validator().validate_table(columns, table.header_number + 1)
    accepted = out.take(keep).to_pylist()
    col_lines = [[r[c] for c in importer.STAGE_COLUMNS] for r in accepted]
    return (sorted(items), lines), (sorted(rej.items), col_lines)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_whole_column_reader_agrees_with_the_row_reader(encoding: str) -> None:
    data = encode(csv_text(messy_rows()), encoding)
    (items, lines), (col_items, col_lines) = both(data)
    assert col_items == items
    assert col_lines == lines
    fields = {i[1] for i in items}
    assert {"uscc", "name", "address", "region_code", "registration_date"} <= fields
    assert len(lines) > 8


def test_whole_column_reader_without_optional_columns() -> None:
    header = ["uscc", "name", "region_code", "size", "channel", "备注"]
    rows = [row(i, 备注="x") for i in range(1, 6)] + [row(6, uscc=code(1))]
    (items, lines), (col_items, col_lines) = both(csv_text(rows, header).encode())
    assert col_items == items and col_lines == lines
    assert [i[0] for i in items] == [7]


@pytest.mark.parametrize(
    ("data", "takes"),
    [
        (csv_text([row(1), row(2)]), True),
        (csv_text([row(1), row(2, address="五四路1号, 2层")]), True),  # well-formed quotes
        (csv_text([row(1)]) + f'{code(2)},"引号"企业,,350102,,,,small,production,,\r\n', False),
        (csv_text([row(1)]) + f'{code(2)},"未闭合,,350102,,,,small,production,,\r\n', False),
        (csv_text([row(1)]) + f'{code(2)},中间"引号,,350102,,,,small,production,,\r\n', False),
        (csv_text([row(1)]) + "\r\n" + csv_text([row(2)]).split("\r\n", 1)[1], False),
        (csv_text([row(1)]) + ",,,,,,,,,,\r\n", False),  # a blank row
        (csv_text([row(1)]) + f"{code(3)},短行企业,,350102\r\n", False),  # a short row
        ("\r\n" + csv_text([row(1)]), False),  # blank lines before the header
    ],
)
def test_which_files_the_whole_column_reader_takes(data: str, takes: bool) -> None:
    f = io.BytesIO(data.encode())
    sniffed = sniff(f)
    table = open_table(f, sniffed)
    got = read_columns(f, sniffed, len(table.header), table.header_number)
    assert (got is not None) == takes
    if takes:
        assert got.num_rows == 2 and got.column(0).to_pylist() == [code(1), code(2)]


def test_whitespace_list_matches_python() -> None:
    assert set(importer.WHITESPACE_CHARS) == {chr(c) for c in range(0x110000) if chr(c).isspace()}


@pytest.mark.parametrize("blank", [b"\n", b"\r\n", b",\n", b",\r\n"])
@pytest.mark.parametrize("at", [(1 << 22) - 3, (1 << 22) - 1, 1 << 22, (1 << 22) + 1])
def test_a_blank_row_anywhere_in_a_large_file_sends_it_to_the_row_reader(
    blank: bytes, at: int
) -> None:
    """(The line ends of a large file are scanned a few megabytes at a time: a blank row on
    the border between two pieces counts too.)"""
    head = b"x,y\n"
    first = b"a" * (at - len(head) - 3) + b",b\n"  # the next line starts at byte ``at``
    rest = b"a,b\n" * 1000
    for data, regular in ((head + first + rest, True), (head + first + blank + rest, False)):
        assert data[at : at + len(blank)] == (blank if not regular else b"a,b\n"[: len(blank)])
        f = io.BytesIO(data)
        sniffed = sniff(f)
        got = read_columns(f, sniffed, 2, 1)
        assert (got is not None) == regular
