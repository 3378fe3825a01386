"""The migration that stores frozen pools as their pool.csv bytes: existing commitments keep
their file, hash and draw across the upgrade, and the downgrade gives the rows back."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from qsampling.core.draw import Candidate, pool_csv
from qsampling.core.draw import select as core_select
from qsampling.db import create_engine, downgrade, make_sessionmaker, upgrade
from qsampling.draws.pool import pool_csv_bytes, sql_topk

BEFORE = "0008"  # the revision before frozen pools were stored as files
UNITS = ["", "U-GL", "a,b", 'q"uote', "中文单位", " spaced ", "\\.", "NULL", ","]


def _in_thread(fn: Callable[[], Any]) -> None:
    err: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as e:  # noqa: BLE001
            err.append(e)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if err:
        raise err[0]


def _pool(n: int) -> list[Candidate]:
    return [
        Candidate(f"9135{(i * 7919) % 100_000:014d}", "ABCD"[i % 4], UNITS[i % len(UNITS)])
        for i in range(n)
    ]


async def _commitment(
    engine: AsyncEngine, number: int, pool: list[Candidate], pool_sha256: str
) -> int:
    async with engine.begin() as conn:
        if number == 1:
            await conn.execute(
                text(
                    "INSERT INTO check_items (code, name, legal_basis, kind, category_codes, "
                    "ratios) VALUES ('CI', 'item', 'basis', '一般', '{}', '{}')"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO plans (id, name, check_item_code, scope, strata_fields, "
                    "team_size, exclusion_days, created_by) VALUES "
                    "(1, 'p', 'CI', '{}', '{credit_class}', 2, 180, 't')"
                )
            )
        cid = await conn.scalar(
            text(
                "INSERT INTO commitments (plan_id, commitment, params_json, pool_sha256, "
                "inspectors_csv, exclusions_csv, nonce, pool_size, strata_sizes, quotas) "
                "VALUES (1, :c, '\\x7b7d', :sha, '\\x', '\\x', '\\x', :n, "
                "CAST(:sizes AS jsonb), CAST(:quotas AS jsonb)) RETURNING id"
            ),
            {
                "c": f"{number:064x}",
                "sha": pool_sha256,
                "n": len(pool),
                "sizes": json.dumps({s: sum(c.stratum == s for c in pool) for s in "ABCD"}),
                "quotas": json.dumps({s: 5 for s in "ABCD"}),
            },
        )
        if pool:
            await conn.execute(
                text(
                    "INSERT INTO draw_pool (commitment_id, uscc, stratum, unit) "
                    "SELECT :cid, r.u, r.s, r.x FROM unnest(CAST(:u AS text[]), "
                    "CAST(:s AS text[]), CAST(:x AS text[])) AS r(u, s, x)"
                ),
                {
                    "cid": cid,
                    "u": [c.uscc for c in pool],
                    "s": [c.stratum for c in pool],
                    "x": [c.unit for c in pool],
                },
            )
        return int(cid)


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        )
        return {r[0] for r in rows}


async def test_upgrade_keeps_each_pool_file_and_draw_and_downgrade_gives_rows_back(
    own_database_empty: str,
) -> None:
    url = own_database_empty
    _in_thread(lambda: upgrade(url, BEFORE))
    pool = _pool(3000)  # several chunks
    expected = pool_csv(pool)
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        big = await _commitment(engine, 1, pool, hashlib.sha256(expected).hexdigest())
        # a commitment stored without pool rows read as the header alone, and still does
        empty = await _commitment(engine, 2, [], "0" * 64)
        await engine.dispose()

        _in_thread(lambda: upgrade(url))
        assert "draw_pool" not in await _tables(engine)
        seed = hashlib.sha256(b"seed").digest()
        quotas = {s: 5 for s in "ABCD"}
        async with make_sessionmaker(engine)() as session:
            assert await pool_csv_bytes(session, commitment_id=big) == expected
            assert await pool_csv_bytes(session, commitment_id=empty) == b"uscc,stratum,unit\n"
            got = await sql_topk(session, commitment_id=big, seed=seed, quotas=quotas)
            chunks = await session.scalar(
                text("SELECT count(*) FROM draw_pool_chunks WHERE commitment_id = :c"),
                {"c": big},
            )
        assert chunks is not None and chunks > 1
        assert sorted((r.key.hex(), r.uscc) for r in got) == [
            (s.key, s.uscc) for s in core_select(seed, pool, quotas)
        ]
        await engine.dispose()

        _in_thread(lambda: downgrade(url, BEFORE))
        assert "draw_pool_chunks" not in await _tables(engine)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT commitment_id, uscc, stratum, unit FROM draw_pool "
                        'ORDER BY commitment_id, uscc COLLATE "C"'
                    )
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            (big, c.uscc, c.stratum, c.unit) for c in sorted(pool, key=lambda c: c.uscc)
        ]
    finally:
        await engine.dispose()


async def test_upgrade_refuses_a_pool_whose_rows_no_longer_match_its_commitment(
    own_database_empty: str,
) -> None:
    url = own_database_empty
    _in_thread(lambda: upgrade(url, BEFORE))
    pool = _pool(50)
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        cid = await _commitment(engine, 1, pool, hashlib.sha256(pool_csv(pool)).hexdigest())
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE draw_pool SET stratum = 'A' WHERE commitment_id = :c"), {"c": cid}
            )
        await engine.dispose()
        with pytest.raises(RuntimeError, match=f"commitment {cid}: the pool.csv"):
            _in_thread(lambda: upgrade(url))
        # nothing changed: the rows are still there, the schema still at the old revision
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT version_num FROM alembic_version")) == BEFORE
            assert await conn.scalar(text("SELECT count(*) FROM draw_pool")) == len(pool)
    finally:
        await engine.dispose()
