"""The whole-column path checks and loads a file a batch at a time, and a first load into an
empty directory builds the primary key once at the end: the report, the rows and the schema
come out as they do otherwise."""

from __future__ import annotations

import io
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.directory import importer
from tests.directory.conftest import ACTOR, code, csv_text, row, wrong_check
from tests.directory.test_import_columns import messy_rows

pytestmark = pytest.mark.usefixtures("reference")


async def run(session: AsyncSession, data: bytes, **kw: Any) -> importer.DirectoryImport:
    return await importer.import_enterprises(
        session, f=io.BytesIO(data), filename="t.csv", actor=ACTOR, **kw
    )


async def outcome(session: AsyncSession, report: importer.DirectoryImport) -> tuple:
    problems = [
        (r.row_number, r.field, r.value, r.reason)
        for r in await importer.rejected_rows(session, import_id=report.id, limit=None)
    ]
    stored = (
        await session.execute(
            text(
                "SELECT uscc, name, entity_type, region_code, address, supervising_unit, "
                "category_codes, size, channel, status, registration_date, credit_class "
                "FROM enterprises ORDER BY uscc"
            )
        )
    ).all()
    counts = (report.total_rows, report.accepted, report.rejected, report.inserted)
    return counts, problems, [tuple(r) for r in stored]


async def schema(session: AsyncSession) -> list[str]:
    """Indexes and constraints of ``enterprises`` and every foreign key that references it."""
    rows = await session.execute(
        text(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'enterprises' UNION ALL "
            "SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE conrelid = 'enterprises'::regclass "
            "OR confrelid = 'enterprises'::regclass ORDER BY 1"
        )
    )
    return [r[0] for r in rows]


def messy_file() -> bytes:
    rows = messy_rows() + [row(100 + i) for i in range(40)]
    rows.insert(12, row(200, uscc=code(103)))  # duplicates a later row's code: first one wins
    return csv_text(rows).encode()


@pytest.mark.parametrize("bulk", [False, True])
async def test_small_batches_give_the_same_report_and_rows(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch, bulk: bool
) -> None:
    kw = {"bulk_min_rows": 1} if bulk else {}
    nested = await session.begin_nested()
    whole = await outcome(session, await run(session, messy_file(), **kw))
    await nested.rollback()
    monkeypatch.setattr(importer, "BATCH_ROWS", 4)
    batched = await outcome(session, await run(session, messy_file(), **kw))
    assert batched == whole
    counts, problems, stored = batched
    assert counts[1] == len(stored) > 40
    assert {p[1] for p in problems} >= {"uscc", "name", "address", "region_code"}


async def test_strict_failure_in_a_later_batch_stores_nothing(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "BATCH_ROWS", 5)
    before = await schema(session)
    rows = [row(i) for i in range(1, 30)] + [row(99, size="?"), row(98, channel="?")]
    report = await run(session, csv_text(rows).encode(), strict=True, bulk_min_rows=1)
    assert not report.stored
    assert (report.rejected, report.inserted) == (2, 0)
    problems = await importer.rejected_rows(session, import_id=report.id, limit=None)
    assert [(p.row_number, p.field) for p in problems] == [(31, "size"), (32, "channel")]
    assert await session.scalar(text("SELECT count(*) FROM enterprises")) == 0
    assert await schema(session) == before


async def test_first_load_into_an_empty_directory_restores_the_key_and_its_references(
    session: AsyncSession,
) -> None:
    before = await schema(session)
    assert any("PRIMARY KEY (uscc)" in s for s in before)
    assert any(s.startswith("tasks ") and "REFERENCES enterprises(uscc)" in s for s in before)
    rows = [row(i) for i in range(1, 40)] + [row(50, uscc=wrong_check(code(50)))]
    report = await run(session, csv_text(rows).encode(), bulk_min_rows=1)
    assert (report.inserted, report.rejected) == (39, 1)
    assert await schema(session) == before
    # the key is enforced again: a second row with a known code is refused by the database
    with pytest.raises(IntegrityError, match="pk_enterprises"):
        async with session.begin_nested():
            await session.execute(
                text(
                    "INSERT INTO enterprises (uscc, name, entity_type, region_code, size, "
                    "channel) VALUES (:u, 'x', '企业', '350102', 'small', 'production')"
                ),
                {"u": code(1)},
            )
    again = await run(session, csv_text(rows).encode(), bulk_min_rows=1)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 39)
