"""Exports: CSV with BOM, JSON, XLSX, signed zip bundles, the CLI and verify-export."""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from pathlib import Path

import httpx
import openpyxl
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.config import Settings
from qsampling.disclosure import exports
from qsampling.disclosure.manifest import private_key, verify_export
from tests.disclosure.conftest import Province

E = "/api/v1/public/export"


def _seed(app) -> bytes:
    return app.state.settings.signing_seed


async def test_results_csv_has_bom_header_and_rows(
    client: httpx.AsyncClient, published: Province
) -> None:
    r = await client.get(f"{E}/results.csv")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [c.name for c in exports.COLUMNS["results"]] == list(rows[0].keys())
    assert len(rows) == 3
    by = {row["uscc"]: row for row in rows}
    assert by[published.sole]["conclusion_zh"] == "不合格"
    assert by[published.sole]["failed_items"] == "儿童自行车：刹车性能"
    assert by[published.company]["inspector_names"] == "王检查;李执法"
    assert by[published.company]["published_at"].endswith("Z")
    # filtered
    r = await client.get(f"{E}/results.csv", params={"conclusion": "fail"})
    assert len(list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))) == 1


async def test_json_and_xlsx_exports(client: httpx.AsyncClient, published: Province) -> None:
    r = await client.get(f"{E}/results.json")
    data = r.json()
    assert len(data) == 3
    assert isinstance(data[0]["result_codes"], list)
    r = await client.get(f"{E}/lists.xlsx")
    assert r.status_code == 200
    wb = openpyxl.load_workbook(io.BytesIO(r.content), read_only=True)
    ws = wb["lists"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][0] == "list_name"
    assert {row[0] for row in rows[1:]} == {"abnormal", "serious", "joint-punishment"}
    assert "说明" in wb.sheetnames
    r = await client.get(f"{E}/draws.csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert {row["uscc"] for row in rows} >= {published.company, published.sole}
    assert "stratum" not in rows[0]  # the stratum is the credit class
    r = await client.get(f"{E}/stats.json")
    assert {row["group"] for row in r.json()} == {"02", "03"}


async def test_unknown_dataset_or_format_is_422(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{E}/people.csv")).status_code == 422
    assert (await client.get(f"{E}/results.pdf")).status_code == 422
    r = await client.get(f"{E}/results.csv", params={"region": "x"})
    assert r.status_code == 422
    assert r.json()["error"] == "InvalidRegion"


async def test_zip_bundle_verifies_and_tampering_is_caught(
    client: httpx.AsyncClient, app, published: Province, tmp_path: Path
) -> None:
    r = await client.get(f"{E}/results.csv.zip", params={"region": "35"})
    assert r.status_code == 200, r.text
    bundle = tmp_path / "results.zip"
    bundle.write_bytes(r.content)
    key = private_key(_seed(app)).public_key()
    rep = verify_export(bundle, key)
    assert rep.ok, rep.problems
    assert rep.dataset == "results"
    assert rep.row_count == 3
    with zipfile.ZipFile(bundle) as z:
        manifest = json.loads(z.read("manifest.json"))
        data = z.read("results.csv")
    assert manifest["filters"] == {"region": "35"}
    assert manifest["files"][0]["rows"] == 3
    # the key published at /signing-key is the one that signed
    pub = (await client.get("/api/v1/public/signing-key")).json()["public_key_hex"]
    assert manifest["signature"]["public_key_hex"] == pub
    # a changed data file is caught
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(tampered, "w") as dst:
        for name in src.namelist():
            body = src.read(name)
            dst.writestr(
                name,
                data.replace("王检查".encode(), "赵某某".encode())
                if name == "results.csv"
                else body,
            )
    rep = verify_export(tampered, key)
    assert not rep.ok
    assert any("SHA-256" in p for p in rep.problems)
    # another key does not verify
    other = private_key(b"\x01" * 32).public_key()
    assert not verify_export(bundle, other).ok


async def test_xlsx_bundle(
    client: httpx.AsyncClient, app, published: Province, tmp_path: Path
) -> None:
    r = await client.get(f"{E}/results.xlsx.zip")
    bundle = tmp_path / "x.zip"
    bundle.write_bytes(r.content)
    assert verify_export(bundle, private_key(_seed(app)).public_key()).ok


# --- the CLI, against a committed database of its own -------------------------------------------


@pytest.fixture
async def cli_db(own_database: str, monkeypatch: pytest.MonkeyPatch) -> str:
    from qsampling.context import SYSTEM
    from qsampling.db import create_engine, make_sessionmaker
    from qsampling.disclosure import service
    from tests.disclosure.conftest import build_province

    eng = create_engine(own_database, pool_size=1, max_overflow=0)
    try:
        sm = make_sessionmaker(eng)
        async with sm() as s:
            await build_province(s)
            from datetime import UTC, datetime

            await service.register_final_results(s, now=datetime.now(UTC), actor=SYSTEM)
            await s.commit()
    finally:
        await eng.dispose()
    monkeypatch.setenv("QSAMPLING_DATABASE_URL", own_database)
    monkeypatch.setenv("QSAMPLING_SIGNING_KEY", "11" * 32)
    monkeypatch.setenv("QSAMPLING_ENV", "test")
    return own_database


def _cli(*args: str):
    from typer.testing import CliRunner

    from qsampling.cli import app

    return CliRunner().invoke(app, list(args))


async def test_cli_export_and_verify(cli_db: str, tmp_path: Path) -> None:
    import asyncio

    out = tmp_path / "out"
    res = await asyncio.to_thread(
        _cli, "export", "results", "--format", "csv", "--out", str(out), "--region", "35"
    )
    assert res.exit_code == 0, res.output
    assert "exported 3 rows" in res.output
    assert sorted(os.listdir(out)) == ["manifest.json", "manifest.sig", "results.csv"]
    res = await asyncio.to_thread(_cli, "verify-export", str(out))
    assert res.exit_code == 0, res.output
    pub = private_key(bytes.fromhex("11" * 32)).public_key()
    from qsampling.disclosure.manifest import public_key_bytes

    res = await asyncio.to_thread(
        _cli, "verify-export", str(out), "--public-key", public_key_bytes(pub).hex()
    )
    assert res.exit_code == 0, res.output
    # tamper with the data
    with open(out / "results.csv", "ab") as fh:
        fh.write(b"extra,row\n")
    res = await asyncio.to_thread(_cli, "verify-export", str(out))
    assert res.exit_code == 1
    assert "NOT verified" in res.output
    for fmt in ("json", "xlsx"):
        res = await asyncio.to_thread(
            _cli, "export", "lists", "--format", fmt, "--out", str(tmp_path / fmt)
        )
        assert res.exit_code == 0, res.output
        assert (await asyncio.to_thread(_cli, "verify-export", str(tmp_path / fmt))).exit_code == 0
    res = await asyncio.to_thread(_cli, "export", "people", "--out", str(tmp_path / "p"))
    assert res.exit_code == 1
    res = await asyncio.to_thread(
        _cli, "export", "results", "--out", str(tmp_path / "p"), "--region", "x"
    )
    assert res.exit_code == 1
    assert "region" in res.output


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
async def test_cli_export_disk_full_removes_the_partial_file(cli_db: str, tmp_path: Path) -> None:
    import asyncio

    out = tmp_path / "full"
    out.mkdir()
    # the partial file lands on a device that is always full
    (out / ".results.csv.partial").symlink_to("/dev/full")
    res = await asyncio.to_thread(_cli, "export", "results", "--out", str(out))
    assert res.exit_code == 1
    assert "No space left on device" in res.output
    assert "partial file removed" in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert os.listdir(out) == []


def test_settings_key_is_stable() -> None:
    s = Settings(env="test", signing_key="22" * 32)
    assert s.signing_seed == bytes.fromhex("22" * 32)


async def test_export_streams_through_a_cursor(session: AsyncSession, published: Province) -> None:
    counter = exports.Counter()
    chunks = [
        c
        async for c in exports.stream_export(
            session,
            dataset="results",
            fmt="json",
            params=exports.ExportParams(),
            counter=counter,
        )
    ]
    assert counter.rows == 3
    assert json.loads(b"".join(chunks))[0]["id"] > 0


def test_committed_json_schemas_match_the_exports() -> None:
    root = Path(__file__).resolve().parents[2] / "api" / "schemas"
    for d in exports.DATASETS:
        committed = (root / f"{d}.json").read_text(encoding="utf-8")
        assert committed == exports.render_schema(d), (
            f"api/schemas/{d}.json is stale: run `qsampling disclosure schemas`"
        )


async def test_json_rows_have_exactly_the_schema_fields(
    client: httpx.AsyncClient, published: Province
) -> None:
    for d in exports.DATASETS:
        rows = (await client.get(f"{E}/{d}.json")).json()
        assert rows, d
        schema = exports.json_schema(d)
        for row in rows:
            assert set(row) == set(schema["properties"]), d
