"""Bulk import of enterprises: every validation rule, every encoding, the report of rejected
rows, idempotent re-import, strict mode, malformed files, the bulk-load path."""

from __future__ import annotations

import csv
import io
import random

import numpy as np
import pytest
import stdnum.cn.uscc as stdnum_uscc
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.core import uscc as uscc_lib
from qsampling.directory import importer
from qsampling.directory.files import FileProblem, map_header, open_table, sniff
from qsampling.models.directory import Enterprise
from tests.directory.conftest import (
    ACTOR,
    HEADER,
    UNIT,
    code,
    csv_text,
    encode,
    row,
    wrong_check,
    xlsx_bytes,
)

pytestmark = pytest.mark.usefixtures("reference")


@pytest.fixture(autouse=True, params=["columns", "rows"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with both readers: regular CSV files normally take the whole-column
    reader (Arrow); with "rows" they go through the row reader that irregular files take."""
    if request.param == "rows":
        monkeypatch.setattr(importer, "read_columns", lambda *a, **k: None)
    return str(request.param)


async def run(
    session: AsyncSession, data: bytes, *, strict: bool = False, **kw: object
) -> importer.DirectoryImport:
    return await importer.import_enterprises(
        session, f=io.BytesIO(data), filename="t.csv", actor=ACTOR, strict=strict, **kw
    )


async def problems(session: AsyncSession, report: importer.DirectoryImport) -> list[tuple]:
    rows = await importer.rejected_rows(session, import_id=report.id, limit=None)
    return [(r.row_number, r.field, r.reason) for r in rows]


async def count(session: AsyncSession) -> int:
    return int(await session.scalar(text("SELECT count(*) FROM enterprises")) or 0)


# --- validation rules, one by one ------------------------------------------------------------

RULES = [
    # (field, bad value, words expected in the reason)
    ("uscc", lambda: wrong_check(code(900)), "校验位"),
    ("uscc", lambda: "91350102MA2Y", "18"),
    ("uscc", lambda: "91350102MA2YI0000X", "character"),
    ("uscc", lambda: "", "required"),
    ("name", lambda: "", "required"),
    ("name", lambda: "字" * 201, "200"),
    ("name", lambda: "张三 350102199003078510 经营部", "personal"),
    ("address", lambda: "鼓楼区 联系人手机 13912345678", "personal"),
    ("address", lambda: "路" * 301, "300"),
    ("region_code", lambda: "", "required"),
    ("region_code", lambda: "35010", "6 digits"),
    ("region_code", lambda: "350199", "unknown region"),
    ("supervising_unit", lambda: "NO-SUCH-UNIT", "unknown unit"),
    ("category_codes", lambda: "03.01;99.99", "unknown category"),
    ("entity_type", lambda: "公司集团", "must be one of"),
    ("size", lambda: "", "required"),
    ("size", lambda: "huge", "must be one of"),
    ("channel", lambda: "wholesale", "must be one of"),
    ("status", lambda: "active", "must be one of"),
    ("registration_date", lambda: "31/05/2020", "2020-05-31"),
    ("registration_date", lambda: "2020-02-30", "2020-05-31"),
    ("registration_date", lambda: "2999-01-01", "future"),
]


@pytest.mark.parametrize(("field", "bad", "words"), RULES)
async def test_each_rule_rejects_its_row(session, field, bad, words) -> None:
    rows = [row(1), row(2, **{field: bad()}), row(3)]
    report = await run(session, csv_text(rows).encode())
    assert (report.total_rows, report.accepted, report.rejected) == (3, 2, 1)
    assert report.stored and report.inserted == 2
    [(number, fld, reason)] = await problems(session, report)
    assert (number, fld) == (3, field)  # the header is row 1
    assert words in reason


async def test_duplicates_inside_the_file_keep_the_first(session) -> None:
    rows = [row(1), row(2), row(3, uscc=code(1).lower()), row(4), row(5, uscc=f" {code(2)} ")]
    report = await run(session, csv_text(rows).encode(), chunk_rows=2)  # across chunks too
    assert report.accepted == 3 and report.rejected == 2
    assert await problems(session, report) == [
        (4, "uscc", "与第2行重复 / duplicates row 2"),
        (6, "uscc", "与第3行重复 / duplicates row 3"),
    ]
    first = await session.get(Enterprise, code(1))
    assert first is not None and first.name == "福州测试1童车有限公司"


async def test_a_row_with_several_problems_is_reported_once_per_field(session) -> None:
    report = await run(session, csv_text([row(1, size="x", channel="y", region_code="1")]).encode())
    assert report.rejected == 1
    assert [p[1] for p in await problems(session, report)] == ["channel", "region_code", "size"]


async def test_values_are_normalised(session) -> None:
    c = code(7, kind="sole_trader")
    rows = [
        row(
            7,
            uscc=f"  {c.lower()}  ",
            name="  鼓楼区小王童车店 ",
            entity_type="",
            size="微型",
            channel="流通",
            status="在营",
            category_codes="03.01.01；03.02、03.01.01",
            registration_date="2015/6/1",
            address="",
            supervising_unit="",
        )
    ]
    report = await run(session, csv_text(rows).encode())
    assert report.accepted == 1, await problems(session, report)
    e = await session.get(Enterprise, c)
    assert e is not None
    await session.refresh(e)
    assert e.name == "鼓楼区小王童车店"
    assert e.entity_type == "个体工商户"  # from the code (9-2)
    assert (e.size, e.channel, e.status) == ("micro", "circulation", "存续")
    assert e.category_codes == ["03.01.01", "03.02"]
    assert str(e.registration_date) == "2015-06-01"
    assert e.address is None and e.supervising_unit is None
    assert e.credit_class == "B"


async def test_personal_values_are_masked_in_the_report(session) -> None:
    report = await run(session, csv_text([row(1, name="李四经营部 13912345678")]).encode())
    [r] = await importer.rejected_rows(session, import_id=report.id)
    assert r.value is not None and "13912345678" not in r.value and "139" in r.value


async def test_extra_cells_reject_the_row_and_short_rows_are_padded(session) -> None:
    body = csv_text([row(1), row(2)]).rstrip("\r\n").split("\r\n")
    body[1] += ",surplus"
    body.append(f"{code(3)},短行企业,,350102,,,,small,production")  # trailing cells missing
    report = await run(session, ("\r\n".join(body) + "\r\n").encode())
    assert report.accepted == 2 and report.rejected == 1
    assert (await problems(session, report))[0][:2] == (2, "*")


async def test_blank_rows_are_skipped_but_counted_in_row_numbers(session) -> None:
    lines = csv_text([row(1), row(2, size="x")]).split("\r\n")
    lines.insert(2, ",,,,,,,,,,")
    lines.insert(2, "")
    report = await run(session, "\r\n".join(lines).encode())
    assert report.total_rows == 2
    assert (await problems(session, report))[0][:2] == (5, "size")


async def test_vectorised_uscc_check_agrees_with_python_stdnum(session) -> None:
    """The importer's fast path (trim, upper-case, NumPy check) accepts exactly the codes that
    python-stdnum accepts after the same trim and upper-casing."""
    rng = random.Random(11)
    alphabet = uscc_lib.ALPHABET + "IOSVZabcxyz -"
    codes: list[str] = []
    for i in range(600):
        c = code(1000 + i)
        roll = rng.random()
        if roll < 0.3:
            c = wrong_check(c)
        elif roll < 0.5:
            pos = rng.randrange(18)
            c = c[:pos] + rng.choice(alphabet) + c[pos + 1 :]
        elif roll < 0.6:
            c = c.lower()
        elif roll < 0.65:
            c = f" {c} "
        elif roll < 0.7:
            c = c[: rng.randrange(18)]
        codes.append(c)
    rows = [row(2000 + i, uscc=c) for i, c in enumerate(codes)]
    cols = map_header(HEADER, aliases=importer.ENTERPRISE_ALIASES, required=(), what="x")
    v = importer.EnterpriseValidator(
        cols, len(HEADER), regions={"350102"}, units={UNIT}, categories={"03.01.01", "03.02"}
    )
    chunk = v.validate(list(range(2, len(rows) + 2)), [[r[h] for h in HEADER] for r in rows])
    rejected = {n for n, fld, _, _ in chunk.rejections.items if fld == "uscc"}
    seen: set[str] = set()
    for i, c in enumerate(codes):
        cleaned = c.strip().upper()
        expected = stdnum_uscc.is_valid(cleaned) and cleaned not in seen
        if stdnum_uscc.is_valid(cleaned):
            seen.add(cleaned)
        assert (i + 2 not in rejected) == expected, c
    assert 100 < len(rejected) < 500
    # and the same verdicts straight from the vectorised function
    clean = np.array([c.strip().upper() for c in codes])
    assert list(uscc_lib.validate_many(clean)) == [stdnum_uscc.is_valid(c) for c in clean]


# --- encodings and formats -------------------------------------------------------------------

CHINESE_HEADER = [
    "统一社会信用代码",
    "企业名称",
    "主体类型",
    "行政区划代码",
    "住所",
    "监管单位",
    "产品类别",
    "企业规模",
    "渠道",
    "登记状态",
    "成立日期",
]


def _as_chinese(rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([*CHINESE_HEADER, "序号", "法定代表人电话"])
    for i, r in enumerate(rows):
        w.writerow([*(r[h] for h in HEADER), i + 1, ""])
    return buf.getvalue()


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
async def test_csv_encodings_give_the_same_result(session, encoding) -> None:
    rows = [
        row(1, name="福州市鼓楼区华强电器有限公司"),
        row(2, name="厦门鹭岛玩具厂"),
        row(3, size="?"),
    ]
    report = await run(session, encode(_as_chinese(rows), encoding))
    assert report.file_format == f"csv/{encoding}"
    assert (report.accepted, report.rejected) == (2, 1)
    assert report.ignored_columns == ["序号", "法定代表人电话"]
    names = set(await session.scalars(select(Enterprise.name)))
    assert {"福州市鼓楼区华强电器有限公司", "厦门鹭岛玩具厂"} <= names


async def test_xlsx(session) -> None:
    from datetime import date, datetime

    rows: list[list[object]] = [HEADER]
    for i in range(1, 4):
        r = row(i)
        values: list[object] = [r[h] for h in HEADER]
        values[HEADER.index("registration_date")] = (
            datetime(2015, 6, i) if i == 1 else date(2016, 1, i)
        )
        rows.append(values)
    rows.append([None] * len(HEADER))  # a blank row in the middle
    rows.append([code(9), "坏行", "企业", 350102, None, None, None, "small", "x", None, None])
    report = await run(session, xlsx_bytes(rows))
    assert report.file_format == "xlsx"
    assert (report.total_rows, report.accepted, report.rejected) == (4, 3, 1)
    assert await problems(session, report) == [
        (
            6,
            "channel",
            "应为 circulation / e-commerce / production 之一 / must be one of "
            "circulation / e-commerce / production",
        )
    ]
    e = await session.get(Enterprise, code(1))
    assert e is not None and str(e.registration_date) == "2015-06-01"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", "EmptyFile"),
        (b"\r\n  \r\n", "EmptyFile"),
        ("统一社会信用代码,名称\r\n".encode(), "BadHeader"),  # required columns missing
        ((b"uscc,name,region_code,size,channel,name\r\n"), "BadHeader"),  # twice
        ("\ufeff".encode() + b"\xff\xfe", "BadEncoding"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "NotATextFile"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "NotATextFile"),
        (b"PK\x03\x04 not really a workbook", "NotATextFile"),
        ((b"uscc,name,region_code,size,channel\r\n"), "EmptyFile"),  # header only
        (b'uscc,name,region_code,size,channel\r\n"unterminated', "BadCsv"),
    ],
)
async def test_malformed_files_are_refused_with_a_code(session, data, error) -> None:
    before = await count(session)
    with pytest.raises(FileProblem) as exc:
        await run(session, data)
    assert exc.value.code == error
    assert exc.value.status == 422
    assert "\n" not in exc.value.detail
    assert await count(session) == before


# --- idempotence, updates, strict mode -------------------------------------------------------


async def test_reimport_changes_nothing_and_a_changed_file_updates(session) -> None:
    rows = [row(i) for i in range(1, 6)]
    first = await run(session, csv_text(rows).encode())
    assert (first.inserted, first.updated, first.unchanged) == (5, 0, 0)
    stamp = await session.scalar(text("SELECT max(updated_at) FROM enterprises"))
    again = await run(session, csv_text(rows).encode())
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 5)
    assert await session.scalar(text("SELECT max(updated_at) FROM enterprises")) == stamp
    rows[2] = row(3, status="注销")
    rows.append(row(6))
    third = await run(session, csv_text(rows).encode())
    assert (third.inserted, third.updated, third.unchanged) == (1, 1, 4)
    e = await session.get(Enterprise, code(3))
    assert e is not None
    await session.refresh(e)
    assert e.status == "注销"


async def test_columns_absent_from_the_file_are_left_alone(session) -> None:
    await run(session, csv_text([row(1)]).encode())
    await session.execute(
        text("UPDATE enterprises SET credit_class = 'A' WHERE uscc = :u"), {"u": code(1)}
    )
    slim = ["uscc", "name", "region_code", "size", "channel"]
    report = await run(session, csv_text([row(1, name="改名后")], header=slim).encode())
    assert report.updated == 1
    e = await session.get(Enterprise, code(1))
    assert e is not None
    await session.refresh(e)
    assert e.name == "改名后"
    assert e.address == "福建省福州市鼓楼区五四路1号"  # not in the file: kept
    assert e.category_codes == ["03.01.01", "03.02"]
    assert e.credit_class == "A"  # never touched by imports


async def test_strict_mode_stores_nothing_but_reports_everything(session) -> None:
    await run(session, csv_text([row(1)]).encode())
    before = await count(session)
    rows = [row(1, name="不应生效"), row(2), row(3, size="?"), row(4), row(5, channel="?")]
    report = await run(session, csv_text(rows).encode(), strict=True, chunk_rows=2)
    assert not report.stored
    assert (report.rejected, report.inserted, report.updated) == (2, 0, 0)
    assert [p[:2] for p in await problems(session, report)] == [(4, "size"), (6, "channel")]
    assert await count(session) == before
    e = await session.get(Enterprise, code(1))
    assert e is not None
    await session.refresh(e)
    assert e.name == "福州测试1童车有限公司"
    clean = await run(session, csv_text([row(2), row(4)]).encode(), strict=True)
    assert clean.stored and clean.inserted == 2


async def test_one_audit_entry_per_import(session) -> None:
    report = await run(session, csv_text([row(i) for i in range(1, 4)]).encode())
    rows = (
        await session.execute(
            text("SELECT action, entity_id FROM audit_log WHERE action = 'enterprise.import'")
        )
    ).all()
    assert [tuple(r) for r in rows] == [("enterprise.import", str(report.id))]


# --- the bulk-load path ----------------------------------------------------------------------


async def _schema(session: AsyncSession) -> list[str]:
    rows = await session.execute(
        text(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'enterprises' UNION ALL "
            "SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'enterprises'::regclass ORDER BY 1"
        )
    )
    return [r[0] for r in rows]


async def test_bulk_path_restores_every_index_and_key(session) -> None:
    schema = await _schema(session)
    await run(session, csv_text([row(1), row(2, status="注销")]).encode())
    rows = [row(i) for i in range(1, 40)] + [row(50, region_code="350199")]
    report = await run(session, csv_text(rows).encode(), chunk_rows=10, bulk_min_rows=1)
    assert (report.inserted, report.updated, report.unchanged, report.rejected) == (37, 1, 1, 1)
    assert await _schema(session) == schema
    assert await count(session) == 39
    valid, check_xmin = (
        await session.execute(
            text(
                "SELECT indisvalid AND indisready, indcheckxmin FROM pg_index "
                "WHERE indexrelid = 'ix_enterprises_name_trgm'::regclass"
            )
        )
    ).one()
    assert valid
    if check_xmin:
        # rebuilt over a table with HOT-updated rows (which depends on where earlier rows
        # landed in its pages): PostgreSQL lets only later transactions use the index
        return
    await session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(
        (
            await session.execute(
                text("EXPLAIN SELECT uscc FROM enterprises WHERE name ILIKE '%测试12童车%'")
            )
        ).scalars()
    )
    assert "ix_enterprises_name_trgm" in plan


async def test_bulk_path_in_strict_mode_restores_the_schema_on_failure(session) -> None:
    schema = await _schema(session)
    rows = [row(i) for i in range(1, 30)] + [row(99, size="?")]
    report = await run(
        session, csv_text(rows).encode(), strict=True, chunk_rows=10, bulk_min_rows=1
    )
    assert not report.stored
    assert await _schema(session) == schema
    assert await count(session) == 0


# --- reading back ----------------------------------------------------------------------------


async def test_reader_numbers_rows_like_a_spreadsheet() -> None:
    data = b"\r\n\r\nuscc,name\r\na,b\r\n\r\nc,d\r\n"
    f = io.BytesIO(data)
    table = open_table(f, sniff(f))
    assert table.header == ["uscc", "name"]
    assert list(table.chunks()) == [([4, 6], [["a", "b"], ["c", "d"]])]
    assert table.blank_rows == 1
