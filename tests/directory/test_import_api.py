"""Bulk import through HTTP: multipart upload, the report, the rejected rows as CSV."""

from __future__ import annotations

import csv
import io

import pytest

from tests.directory.conftest import code, csv_text, encode, row, wrong_check

pytestmark = pytest.mark.usefixtures("reference")


def upload(data: bytes, name: str = "enterprises.csv") -> dict[str, tuple[str, bytes, str]]:
    return {"file": (name, data, "text/csv")}


async def test_upload_report_and_rejected_csv(client, login) -> None:
    h = await login("supervisor")
    rows = [row(1), row(2, uscc=wrong_check(code(2))), row(3, region_code="350199"), row(4)]
    data = encode(csv_text(rows), "utf-8-sig")
    r = await client.post("/api/v1/enterprises/import", files=upload(data), headers=h)
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["file_format"] == "csv/utf-8-sig" and rep["filename"] == "enterprises.csv"
    assert (rep["total_rows"], rep["accepted"], rep["inserted"], rep["rejected"]) == (4, 2, 2, 2)
    assert [(x["row_number"], x["field"]) for x in rep["rejected_rows"]] == [
        (3, "uscc"),
        (4, "region_code"),
    ]
    import hashlib

    assert rep["file_sha256"] == hashlib.sha256(data).hexdigest()
    # the same report later, and every rejected row as CSV (UTF-8 with BOM for Excel)
    again = await client.get(f"/api/v1/enterprises/imports/{rep['id']}", headers=h)
    assert again.json() == rep
    r = await client.get(rep["rejected_csv"], headers=h)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert table[0] == ["row_number", "field", "value", "reason"]
    assert [(t[0], t[1]) for t in table[1:]] == [("3", "uscc"), ("4", "region_code")]
    assert "校验位" in table[1][3] and table[1][2] == wrong_check(code(2))
    # the enterprises are there
    r = await client.get(f"/api/v1/enterprises/{code(4)}", headers=h)
    assert r.status_code == 200
    # reports are not for every role, and ids of the other kind do not resolve
    r = await client.get(f"/api/v1/enterprises/imports/{rep['id']}", headers=await login("analyst"))
    assert r.status_code == 403
    r = await client.get(f"/api/v1/inspectors/imports/{rep['id']}", headers=h)
    assert r.status_code == 404 and r.json()["error"] == "ImportNotFound"
    r = await client.get("/api/v1/enterprises/imports/999999999/rejected.csv", headers=h)
    assert r.status_code == 404


async def test_reimport_via_http_changes_nothing(client, login) -> None:
    h = await login("admin")
    data = csv_text([row(i) for i in range(1, 4)]).encode()
    first = (await client.post("/api/v1/enterprises/import", files=upload(data), headers=h)).json()
    again = (await client.post("/api/v1/enterprises/import", files=upload(data), headers=h)).json()
    assert (first["inserted"], again["inserted"], again["updated"], again["unchanged"]) == (
        3,
        0,
        0,
        3,
    )
    assert again["rejected_csv"] is None


async def test_strict_upload_is_422_with_the_report(client, login) -> None:
    h = await login("supervisor")
    data = csv_text([row(1), row(2, size="huge")]).encode("gb18030")
    r = await client.post(
        "/api/v1/enterprises/import", params={"strict": "true"}, files=upload(data), headers=h
    )
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "ImportRejected" and "nothing" in body["detail"]
    assert body["report"]["stored"] is False and body["report"]["rejected"] == 1
    assert body["report"]["file_format"] == "csv/gb18030"
    # nothing stored, but the report (committed) can still be read
    r = await client.get(f"/api/v1/enterprises/{code(1)}", headers=h)
    assert r.status_code == 404
    r = await client.get(body["report"]["rejected_csv"], headers=h)
    assert r.status_code == 200 and "size" in r.text


BAD_FILES = [
    (b"", "EmptyFile"),
    (b"name,foo\r\nx,y\r\n", "BadHeader"),
    (b"\x00\x01\x02binary", "NotATextFile"),
    (b"PK\x03\x04garbage", "NotATextFile"),
]


async def test_malformed_uploads(client, login) -> None:
    h = await login("supervisor")
    for data, error in BAD_FILES:
        r = await client.post("/api/v1/enterprises/import", files=upload(data), headers=h)
        assert r.status_code == 422, (data, r.text)
        assert r.json()["error"] == error, (data, r.text)
        assert r.json()["detail"]


async def test_upload_needs_a_file_and_a_writer(client, login) -> None:
    r = await client.post("/api/v1/enterprises/import", headers=await login("supervisor"))
    assert r.status_code == 422
    r = await client.post(
        "/api/v1/enterprises/import",
        files=upload(csv_text([row(1)]).encode()),
        headers=await login("inspector"),
    )
    assert r.status_code == 403


async def test_inspector_upload(client, login) -> None:
    h = await login("supervisor")
    data = b"inspector_id,name,unit_code\r\nH-1,Lin,FJ-350102-S01\r\nH-2,Wu,NOPE\r\n"
    r = await client.post("/api/v1/inspectors/import", files=upload(data, "i.csv"), headers=h)
    assert r.status_code == 200, r.text
    rep = r.json()
    assert (rep["kind"], rep["inserted"], rep["rejected"]) == ("inspectors", 1, 1)
    r = await client.get(rep["rejected_csv"], headers=h)
    assert "unit_code" in r.text
    r = await client.get("/api/v1/inspectors/H-1", headers=h)
    assert r.status_code == 200


async def test_a_hostile_file_name_is_cleaned(client, login) -> None:
    r = await client.post(
        "/api/v1/enterprises/import",
        files={"file": ("a\x00b\x07.csv", csv_text([row(1)]).encode(), "text/csv")},
        headers=await login("supervisor"),
    )
    assert r.status_code == 200, r.text
    assert "\x00" not in r.json()["filename"] and r.json()["filename"].endswith(".csv")
