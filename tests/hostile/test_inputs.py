"""Hostile input, one kind at a time: each gets a clear 4xx with ``{"error", "detail"}``
(or, where the input is legitimate data, is stored and returned literally), never a 500.

Oversized and endless bodies, 100,000 levels of JSON nesting, invalid UTF-8 in JSON and in
CSV imports, SQL-looking strings in filters and names, path traversal in uploaded file
names, huge page sizes, huge and negative ids, malformed cursors.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.context import Actor
from qsampling.directory.reference import load_reference
from tests.directory.conftest import UNIT, code, csv_text, row

Login = Callable[..., Awaitable[dict[str, str]]]
ACTOR = Actor(username="test:hostile", role="admin")
SQLISH = [
    "'; DROP TABLE enterprises; --",
    "1' OR '1'='1",
    '童车"); DELETE FROM audit_log; --',
    "%_\\%",
    "$1::text",
]


def assert_error(r: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert r.status_code in statuses, (r.status_code, r.text[:500])
    body = r.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("detail"), str) and body["detail"], body
    return body  # type: ignore[no-any-return]


@pytest.fixture
async def reference(session: AsyncSession) -> AsyncSession:
    await load_reference(session, actor=ACTOR)
    await session.execute(
        text(
            "INSERT INTO units (code, name, region_code) VALUES "
            "(:u, '鼓楼区市场监管所', '350102') ON CONFLICT DO NOTHING"
        ),
        {"u": UNIT},
    )
    await session.commit()
    return session


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


# --- bodies ----------------------------------------------------------------------------


async def test_oversized_body_is_413_before_it_is_read(
    client: httpx.AsyncClient, login: Login, app: Any
) -> None:
    h = await login("supervisor")
    limit = app.state.settings.max_body_bytes
    big = b"{" + b" " * limit + b"}"
    r = await client.post(
        "/api/v1/enterprises", content=big, headers={**h, "Content-Type": "application/json"}
    )
    body = assert_error(r, 413)
    assert body["error"] == "PayloadTooLarge"


async def test_oversized_chunked_body_without_length_is_413(
    client: httpx.AsyncClient, login: Login, app: Any
) -> None:
    h = await login("supervisor")
    limit = app.state.settings.max_body_bytes
    chunk = b" " * (1024 * 1024)

    async def endless() -> AsyncIterator[bytes]:
        yield b"["
        for _ in range(limit // len(chunk) + 2):
            yield chunk

    r = await client.post(
        "/api/v1/enterprises",
        content=endless(),
        headers={**h, "Content-Type": "application/json"},
    )
    assert assert_error(r, 413)["error"] == "PayloadTooLarge"


@pytest.mark.parametrize("depth", [1_000, 100_000])
async def test_deeply_nested_json_is_a_4xx(
    client: httpx.AsyncClient, login: Login, depth: int
) -> None:
    h = await login("supervisor")
    for opener, closer in ((b"[", b"]"), (b'{"a":', b"}")):
        body = opener * depth + b"1" + closer * depth
        r = await client.post(
            "/api/v1/enterprises", content=body, headers={**h, "Content-Type": "application/json"}
        )
        assert_error(r, 400, 422)


async def test_invalid_utf8_in_json_is_a_4xx(client: httpx.AsyncClient, login: Login) -> None:
    h = await login("supervisor")
    for body in (b'{"name": "\xff\xfe\xfd"}', b"\xc3\x28", b'{"uscc": "\xed\xa0\x80"}'):
        r = await client.post(
            "/api/v1/enterprises", content=body, headers={**h, "Content-Type": "application/json"}
        )
        assert_error(r, 400, 422)


async def test_nul_characters_in_text_are_a_4xx_not_a_database_error(
    client: httpx.AsyncClient, login: Login, reference: AsyncSession
) -> None:
    h = await login("supervisor")
    r = await client.post(
        "/api/v1/enterprises",
        json={**_enterprise(7), "name": "福州\u0000测试有限公司"},
        headers=h,
    )
    assert_error(r, 422)


async def test_nul_characters_in_query_filters_are_a_4xx_not_a_database_error(
    client: httpx.AsyncClient, login: Login
) -> None:
    h = await login("supervisor")
    r = await client.get("/api/v1/tasks", params={"inspector_id": "I\u0000D"}, headers=h)
    body = assert_error(r, 422)
    assert "NUL" in body["detail"] or "0x00" in body["detail"] or "invalid" in body["detail"]


async def test_unparseable_bodies_are_400_and_documented_so(
    client: httpx.AsyncClient, login: Login
) -> None:
    h = await login("supervisor")
    r = await client.post(
        "/api/v1/regions",
        content=b"k\xff\x00d\x1f{",
        headers={**h, "Content-Type": "application/json"},
    )
    if r.status_code == 400:
        assert "请求体无法解析" in assert_error(r, 400)["detail"]
    else:
        assert_error(r, 422)
    doc = (await client.get("/openapi.json")).json()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if "requestBody" in op:
                assert {"400", "413"} <= set(op["responses"]), (method, path)


async def test_json_body_that_is_not_an_object_is_a_4xx(
    client: httpx.AsyncClient, login: Login
) -> None:
    h = await login("supervisor")
    for body in (b"null", b"[]", b'"x"', b"1e999999", b"NaN", b""):
        r = await client.post(
            "/api/v1/enterprises", content=body, headers={**h, "Content-Type": "application/json"}
        )
        assert_error(r, 400, 422)


# --- imports -----------------------------------------------------------------------------


async def test_invalid_utf8_csv_import_is_reported_not_a_500(
    client: httpx.AsyncClient, login: Login, reference: AsyncSession
) -> None:
    h = await login("supervisor")
    good = csv_text([row(1)]).encode("utf-8")
    for data in (
        b"\xff\xfe\x00\x00\xc3\x28\xa0\xa1" * 50,  # not text in any encoding we accept
        good[:-10] + b"\xc3\x28\xed\xa0\x80\r\n",  # a valid header, broken bytes in a row
        b"\x00" * 64,
    ):
        r = await client.post(
            "/api/v1/enterprises/import",
            files={"file": ("bad.csv", data, "text/csv")},
            headers=h,
        )
        assert r.status_code < 500, r.text
        if r.status_code >= 400:
            assert_error(r, r.status_code)


async def test_import_file_name_with_path_traversal_is_harmless(
    client: httpx.AsyncClient, login: Login, reference: AsyncSession
) -> None:
    h = await login("supervisor")
    data = csv_text([row(11)]).encode("utf-8")
    r = await client.post(
        "/api/v1/enterprises/import",
        files={"file": ("../../../../etc/passwd.csv", data, "text/csv")},
        headers=h,
    )
    assert r.status_code in (200, 201), r.text
    # the name is a label in the import report (control characters removed), never a path:
    # nothing is written to the file system and the rejected-rows download is named by id
    report = r.json()
    assert all(c.isprintable() for c in report["filename"])
    got = await client.get(f"/api/v1/enterprises/imports/{report['id']}", headers=h)
    assert got.status_code == 200


# --- file names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filename",
    ["../../etc/passwd", "..\\..\\windows\\win.ini", "/etc/shadow", "a/../../b.png"],
)
async def test_evidence_file_name_with_path_traversal_is_not_a_path(
    client: httpx.AsyncClient, login: Login, filename: str, tmp_path: Any
) -> None:
    h = await login("inspector")
    r = await client.post(
        "/api/v1/evidence", files={"file": (filename, _png(), "image/png")}, headers=h
    )
    assert r.status_code in (200, 201), r.text
    # content-addressed: the name is neither used as a path nor echoed
    assert set(r.json()) >= {"sha256", "media_type", "size_bytes"}
    assert "passwd" not in r.text and "win.ini" not in r.text and ".." not in r.text
    got = await client.get(f"/api/v1/evidence/{r.json()['sha256']}", headers=h)
    assert got.status_code == 200
    assert got.content == _png()
    assert "content-disposition" not in got.headers


async def test_evidence_file_name_of_5000_characters_is_a_clear_400(
    client: httpx.AsyncClient, login: Login
) -> None:
    h = await login("inspector")
    r = await client.post(
        "/api/v1/evidence", files={"file": ("x" * 5000, _png(), "image/png")}, headers=h
    )
    assert_error(r, 400, 422)


async def test_evidence_file_name_with_a_nul_byte_is_not_a_500(
    client: httpx.AsyncClient, login: Login
) -> None:
    h = await login("inspector")
    r = await client.post(
        "/api/v1/evidence", files={"file": ("a\u0000b.png", _png(), "image/png")}, headers=h
    )
    assert r.status_code < 500, r.text


async def test_evidence_that_is_not_an_image_is_415(
    client: httpx.AsyncClient, login: Login
) -> None:
    h = await login("inspector")
    r = await client.post(
        "/api/v1/evidence",
        files={"file": ("passwd.png", b"root:x:0:0:root:/root:/bin/bash\n", "image/png")},
        headers=h,
    )
    assert_error(r, 415, 422)


# --- SQL-looking strings ----------------------------------------------------------------------


def _enterprise(seed: int, **over: Any) -> dict[str, Any]:
    return {
        "uscc": code(seed),
        "name": f"福州测试{seed}有限公司",
        "region_code": "350102",
        "size": "small",
        "channel": "production",
        **over,
    }


@pytest.mark.parametrize("evil", SQLISH)
async def test_sql_looking_names_are_stored_and_returned_literally(
    client: httpx.AsyncClient, login: Login, reference: AsyncSession, evil: str
) -> None:
    h = await login("supervisor")
    seed = 100 + SQLISH.index(evil)
    r = await client.post("/api/v1/enterprises", json=_enterprise(seed, name=evil), headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["name"] == evil.strip()
    got = await client.get(f"/api/v1/enterprises/{code(seed)}", headers=h)
    assert got.status_code == 200
    assert got.json()["name"] == evil.strip()
    # the table is still there and the filter treats the text as text
    listed = await client.get("/api/v1/enterprises", params={"name": evil}, headers=h)
    assert listed.status_code == 200, listed.text
    assert [e["uscc"] for e in listed.json()["items"]] == [code(seed)]


@pytest.mark.parametrize("evil", SQLISH)
async def test_sql_looking_filters_answer_normally(
    client: httpx.AsyncClient, login: Login, evil: str
) -> None:
    h = await login("analyst")
    for path, params in (
        ("/api/v1/enterprises", {"name": evil}),
        ("/api/v1/enterprises", {"region": evil}),
        ("/api/v1/plans", {"status": evil}),
        ("/api/v1/public/enterprises", {"name": evil}),
        ("/api/v1/public/results", {"region": evil}),
        ("/api/v1/stats/pass-rates", {"region": evil}),
    ):
        r = await client.get(path, params=params, headers=h)
        assert r.status_code < 500, (path, r.text)
        if r.status_code >= 400:
            assert_error(r, 400, 404, 422)


# --- pages, ids, cursors ----------------------------------------------------------------------

LISTS = [
    "/api/v1/enterprises",
    "/api/v1/inspectors",
    "/api/v1/regions",
    "/api/v1/plans",
    "/api/v1/tasks",
    "/api/v1/audit",
    "/api/v1/credit/abnormal-list",
    "/api/v1/credit/serious-list",
    "/api/v1/feeds/joint-punishment.csv",
    "/api/v1/penalties",
    "/api/v1/public/enterprises",
    "/api/v1/public/results",
    "/api/v1/public/draws",
]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("limit", [10**9, -1, 0, "1e9", "9" * 40])
async def test_huge_or_nonsense_page_sizes_are_422(
    client: httpx.AsyncClient, login: Login, path: str, limit: Any
) -> None:
    h = await login("admin")
    r = await client.get(path, params={"limit": limit}, headers=h)
    assert assert_error(r, 422)["error"] == "InvalidInput"


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize(
    "cursor",
    ["!!!", "eyJ4IjogMX0", "null", "\u0000", "A" * 512, "' OR 1=1 --", "-1", str(2**63), "9" * 30],
)
async def test_malformed_cursors_are_a_4xx(
    client: httpx.AsyncClient, login: Login, path: str, cursor: str
) -> None:
    h = await login("admin")
    r = await client.get(path, params={"cursor": cursor}, headers=h)
    assert r.status_code < 500, r.text
    if r.status_code != 200:  # an opaque cursor may also be read as "from the start"
        assert_error(r, 400, 422)


INT_ID_PATHS = [
    "/api/v1/plans/{}",
    "/api/v1/tasks/{}",
    "/api/v1/results/{}",
    "/api/v1/enterprises/imports/{}",
    "/api/v1/credit/abnormal-list/{}",
    "/api/v1/credit/serious-list/{}",
    "/api/v1/public/draws/{}",
    "/api/v1/public/results/{}",
]


@pytest.mark.parametrize("path", INT_ID_PATHS)
@pytest.mark.parametrize("ident", ["-1", "0", "1e3", "abc", "1;DROP TABLE plans"])
async def test_nonsense_ids_are_404_or_422(
    client: httpx.AsyncClient, login: Login, path: str, ident: str
) -> None:
    h = await login("admin")
    r = await client.get(path.format(ident), headers=h)
    assert_error(r, 404, 422)


@pytest.mark.parametrize(
    "path",
    INT_ID_PATHS,
)
@pytest.mark.parametrize("ident", [str(2**63), "9" * 30])
async def test_ids_beyond_bigint_are_404_or_422(
    client: httpx.AsyncClient, login: Login, path: str, ident: str
) -> None:
    h = await login("admin")
    r = await client.get(path.format(ident), headers=h)
    assert_error(r, 404, 422)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/plans/{}/commit"),
        ("POST", "/api/v1/plans/{}/cancel"),
        ("POST", "/api/v1/plans/{}/draw"),
        ("POST", "/api/v1/credit/abnormal-list/{}/removal-application"),
    ],
)
async def test_writes_to_ids_beyond_bigint_are_404_or_422(
    client: httpx.AsyncClient, login: Login, method: str, path: str
) -> None:
    h = await login("admin")
    r = await client.request(method, path.format(2**64), json={}, headers=h)
    assert_error(r, 404, 422)


@pytest.mark.parametrize("as_of", ["0002-01-01", "9999-12-31"])
async def test_dates_at_the_ends_of_the_calendar_are_422_not_an_overflow(
    client: httpx.AsyncClient, login: Login, as_of: str
) -> None:
    """The incentive list looks 730 days back from `as_of`: year 2 would overflow."""
    h = await login("supervisor")
    r = await client.get("/api/v1/credit/incentives", params={"as_of": as_of}, headers=h)
    assert_error(r, 422)
