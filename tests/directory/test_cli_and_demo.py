"""`qsampling import …` end to end on a committed database, and the demo province."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from qsampling.cli import app
from qsampling.core import uscc as uscc_lib
from qsampling.directory import demo
from tests.directory.conftest import UNIT, csv_text, row


def _sql(url: str, query: str) -> list[tuple]:
    u = make_url(url)

    async def go() -> list[tuple]:
        conn = await asyncpg.connect(
            user=u.username or "postgres",
            password=u.password or None,
            host=u.query.get("host") or u.host,
            port=u.port,
            database=u.database,
        )
        try:
            return [tuple(r) for r in await conn.fetch(query)]
        finally:
            await conn.close()

    return asyncio.run(go())


def test_cli_imports(own_database: str, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"QSAMPLING_DATABASE_URL": own_database, "COLUMNS": "200"}

    def qs(*args: str) -> object:
        return runner.invoke(app, list(args), env=env)

    r = qs("import", "reference")
    assert r.exit_code == 0, r.output
    assert "new regions" in r.stdout
    regions = tmp_path / "regions.csv"
    regions.write_text("代码,名称\n350199,测试区\n", encoding="utf-8")
    r = qs("import", "regions", str(regions))
    assert r.exit_code == 0 and "1 new" in r.stdout
    _sql(own_database, f"INSERT INTO units VALUES ('{UNIT}', '鼓楼所', '350102')")
    assert qs("db", "is-empty").exit_code == 0

    good = tmp_path / "good.csv"
    good.write_bytes(csv_text([row(1), row(2), row(3, size="?")]).encode("gb18030"))
    rejected = tmp_path / "rejected.csv"
    r = qs("import", "enterprises", str(good), "--rejected-csv", str(rejected))
    assert r.exit_code == 0, r.output
    assert "3 rows, 2 accepted (2 new" in r.stdout and "1 rejected" in r.stdout
    assert "row 4 size" in r.stderr
    assert rejected.read_bytes().startswith(b"\xef\xbb\xbf")
    assert qs("db", "is-empty").exit_code == 1

    r = qs("import", "enterprises", str(good))
    assert r.exit_code == 0 and "0 new, 0 updated, 2 unchanged" in r.stdout

    r = qs("import", "enterprises", str(good), "--strict")
    assert r.exit_code == 1
    assert "strict mode" in r.stderr and "nothing was imported" in r.stderr

    for content, words in (
        (b"", "empty"),
        (b"\x00\x01binary", "not a text file"),
        (b"foo,bar\r\n1,2\r\n", "lacks the required"),
    ):
        bad = tmp_path / "bad.csv"
        bad.write_bytes(content)
        r = qs("import", "enterprises", str(bad))
        assert r.exit_code != 0
        assert words in r.stderr.lower() if words.islower() else words in r.stderr
        assert "Traceback" not in r.output
    r = qs("import", "enterprises", str(tmp_path / "missing.csv"))
    assert r.exit_code != 0 and "cannot open" in r.stderr

    ins = tmp_path / "ins.csv"
    ins.write_text(f"inspector_id,name,unit_code\nI-9,林,{UNIT}\n", encoding="utf-8")
    r = qs("import", "inspectors", str(ins))
    assert r.exit_code == 0 and "1 new" in r.stdout
    assert _sql(own_database, "SELECT count(*) FROM enterprises") == [(2,)]


async def _demo_snapshot(session: AsyncSession) -> tuple:
    usccs = list((await session.execute(text("SELECT uscc FROM enterprises ORDER BY 1"))).scalars())
    inspectors = list(
        await session.execute(
            text("SELECT inspector_id, qualifications FROM inspectors ORDER BY 1")
        )
    )
    return usccs, [tuple(i) for i in inspectors]


async def test_demo_province_is_deterministic_and_realistic(session: AsyncSession) -> None:
    sp = await session.begin_nested()
    counts = await demo.build(session, rng=random.Random(7), enterprises=600)
    first = await _demo_snapshot(session)
    await sp.rollback()
    counts2 = await demo.build(session, rng=random.Random(7), enterprises=600)
    assert counts == counts2
    assert await _demo_snapshot(session) == first
    assert counts["enterprises"] == 600 and counts["inspectors"] == 200
    assert counts["conflicts"] > 0 and counts["check items"] >= 10 and counts["demo users"] == 4
    usccs = first[0]
    assert uscc_lib.validate_many(usccs, strict=True).all()
    mix = dict(
        (
            await session.execute(text("SELECT entity_type, count(*) FROM enterprises GROUP BY 1"))
        ).all()
    )
    assert 0.6 < mix["企业"] / 600 < 0.8 and 0.15 < mix["个体工商户"] / 600 < 0.35
    classes = dict(
        (
            await session.execute(text("SELECT credit_class, count(*) FROM enterprises GROUP BY 1"))
        ).all()
    )
    assert classes["B"] > classes["C"] > classes["D"] and classes["A"] > classes["D"]
    sizes = dict(
        (await session.execute(text("SELECT size, count(*) FROM enterprises GROUP BY 1"))).all()
    )
    assert sizes["micro"] + sizes["small"] > 0.7 * 600
    # every enterprise sits in a Fujian county with its unit; categories exist
    bad = await session.scalar(
        text(
            "SELECT count(*) FROM enterprises e WHERE e.region_code NOT LIKE '35%' "
            "OR e.supervising_unit NOT LIKE 'FJ-' || e.region_code || '-%' "
            "OR cardinality(e.category_codes) NOT BETWEEN 1 AND 3 "
            "OR EXISTS (SELECT 1 FROM unnest(e.category_codes) c "
            "           WHERE c NOT IN (SELECT code FROM categories))"
        )
    )
    assert bad == 0
    # inspectors hold qualifications the check items require; the demo account is linked
    unqualified = await session.scalar(
        text(
            "SELECT count(*) FROM check_items ci WHERE ci.qualification IS NOT NULL AND "
            "(SELECT count(*) FROM inspectors i "
            " WHERE ci.qualification = ANY(i.qualifications)) < 10"
        )
    )
    assert unqualified == 0
    linked = await session.scalar(
        text("SELECT inspector_id FROM users WHERE username = 'inspector'")
    )
    assert linked == demo.DEMO_INSPECTOR


@pytest.mark.parametrize("n", [0])
async def test_demo_without_enterprises_still_loads_reference_data(session, n) -> None:
    counts = await demo.build(session, rng=random.Random(1), enterprises=n)
    assert counts["enterprises"] == 0
    assert await session.scalar(text("SELECT count(*) FROM regions")) >= 34
