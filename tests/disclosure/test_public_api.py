"""The open-data API: no token, filters, stable cursor paging, 304s, changed_since, limits."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.disclosure.conftest import SOLE_ADDRESS, Province

R = "/api/v1/public/results"


async def test_results_need_no_token_and_show_the_public_fields(
    client: httpx.AsyncClient, published: Province
) -> None:
    r = await client.get(R)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert len(items) == 3
    # newest publication first
    assert [i["id"] for i in items] == sorted((i["id"] for i in items), reverse=True)
    ok = next(i for i in items if i["uscc"] == published.company)
    assert ok["conclusion"] == "pass"
    assert ok["conclusion_zh"] == "未发现不合格"
    assert ok["result_code_names"] == ["未发现问题"]
    assert ok["inspector_names"] == ["王检查", "李执法"]
    assert ok["samples"][0]["product"] == "儿童推车"
    assert ok["region_name"] == "鼓楼区"
    refused = next(i for i in items if i["uscc"] == published.listed)
    assert refused["conclusion_zh"] == "未检验"
    assert refused["result_codes"] == ["8"]


FILTER_CASES: list[tuple[dict[str, Any], set[str]]] = [
    ({"region": "3502"}, {"listed"}),
    ({"region": "35"}, {"company", "sole", "listed"}),
    ({"category": "03"}, {"company", "sole"}),
    ({"category": "03.01"}, {"company", "sole"}),
    ({"category": "02"}, set()),
    ({"result_code": "8"}, {"listed"}),
    ({"result_code": ["8", "E"]}, {"listed", "sole"}),
    ({"conclusion": "fail"}, {"sole"}),
    ({"from": "2024-10-01"}, {"sole", "listed"}),
    ({"to": "2024-09-30"}, {"company"}),
    ({"region": "35", "conclusion": "pass", "to": "2024-09-30"}, {"company"}),
]


async def test_result_filters(client: httpx.AsyncClient, published: Province) -> None:
    names = {published.company: "company", published.sole: "sole", published.listed: "listed"}
    for params, expected in FILTER_CASES:
        r = await client.get(R, params=params)
        assert r.status_code == 200, r.text
        assert {names[i["uscc"]] for i in r.json()["items"]} == expected, params


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"region": "35010"}, "InvalidRegion"),
        ({"region": "abc"}, "InvalidRegion"),
        ({"category": "x'; drop"}, "InvalidCategory"),
        ({"result_code": "Z"}, "InvalidResultCode"),
        ({"from": "2024-12-01", "to": "2024-01-01"}, "InvalidDateRange"),
        ({"from": "yesterday"}, "InvalidInput"),
        ({"limit": "1001"}, "InvalidInput"),
        ({"limit": "0"}, "InvalidInput"),
        ({"cursor": "not-a-cursor"}, "InvalidCursor"),
        ({"cursor": "eyJvIjoiaWQiLCJpZCI6IngifQ"}, "InvalidCursor"),
        ({"uscc": "123"}, "InvalidUscc"),
        ({"changed_since": "soon"}, "InvalidInput"),
    ],
)
async def test_bad_filters_get_422_with_a_code(
    client: httpx.AsyncClient, params: dict[str, Any], code: str
) -> None:
    r = await client.get(R, params=params)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == code
    assert r.json()["detail"]


async def test_cursor_paging_is_stable_and_complete(
    client: httpx.AsyncClient, published: Province
) -> None:
    seen: list[int] = []
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 1}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get(R, params=params)).json()
        seen.extend(i["id"] for i in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 3 == len(set(seen))
    assert seen == sorted(seen, reverse=True)


async def test_etag_and_last_modified_give_304(
    client: httpx.AsyncClient, published: Province
) -> None:
    r = await client.get(R)
    etag = r.headers["etag"]
    lm = r.headers["last-modified"]
    r2 = await client.get(R, headers={"If-None-Match": etag})
    assert r2.status_code == 304
    assert r2.content == b""
    r3 = await client.get(R, headers={"If-Modified-Since": lm})
    assert r3.status_code == 304
    r4 = await client.get(R, params={"region": "3502"}, headers={"If-None-Match": etag})
    assert r4.status_code == 200


async def test_changed_since_lets_a_mirror_sync_incrementally(
    client: httpx.AsyncClient, session: AsyncSession, published: Province
) -> None:
    first = (await client.get(R, params={"changed_since": "2000-01-01T00:00:00Z"})).json()
    assert len(first["items"]) == 3
    upd = [i["updated_at"] for i in first["items"]]
    assert upd == sorted(upd)
    mark = max(upd)
    # paged one by one, the same rows in the same order
    paged: list[str] = []
    params: dict[str, Any] = {"changed_since": "2000-01-01T00:00:00Z", "limit": 1}
    while True:
        body = (await client.get(R, params=params)).json()
        paged.extend(i["updated_at"] for i in body["items"])
        if not body["next_cursor"]:
            break
        params["cursor"] = body["next_cursor"]
    assert paged == upd
    # a cursor of the newest-first order is refused in the sync order
    first_page = (await client.get(R, params={"limit": 1})).json()
    r = await client.get(R, params={"changed_since": mark, "cursor": first_page["next_cursor"]})
    assert r.status_code == 422
    r = await client.get(R, params={"changed_since": mark})
    assert r.json()["items"] == []
    await session.execute(
        text(
            "UPDATE result_publications SET updated_at = now() + interval '1 second' "
            "WHERE result_id = :r"
        ),
        {"r": published.result_ids["fail"]},
    )
    await session.commit()
    r = await client.get(R, params={"changed_since": mark})
    assert [i["uscc"] for i in r.json()["items"]] == [published.sole]


async def test_one_result_and_404(client: httpx.AsyncClient, published: Province) -> None:
    items = (await client.get(R)).json()["items"]
    r = await client.get(f"{R}/{items[0]['id']}")
    assert r.status_code == 200
    assert r.json()["id"] == items[0]["id"]
    r = await client.get(f"{R}/999999999")
    assert r.status_code == 404
    assert r.json()["error"] == "ResultNotFound"
    assert (await client.get(f"{R}/abc")).status_code == 422


async def test_enterprise_page_has_no_private_fields(
    client: httpx.AsyncClient, published: Province
) -> None:
    r = await client.get(f"/api/v1/public/enterprises/{published.sole}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["is_sole_trader"] is True
    assert body["address"] is None
    assert SOLE_ADDRESS not in r.text
    assert "credit_class" not in body
    assert [e["list_name"] for e in body["list_entries"]] == ["abnormal"]
    assert len(body["results"]) == 1
    company = (await client.get(f"/api/v1/public/enterprises/{published.company}")).json()
    assert company["address"].startswith("福州市鼓楼区五四路1号")
    assert "13812345678" not in company["address"]  # a phone in an address is masked
    # a serious-list *proposal* is internal
    assert company["list_entries"] == []
    r = await client.get("/api/v1/public/enterprises/91350100MA2YT0099X")
    assert r.status_code == 404
    assert r.json()["error"] == "EnterpriseNotFound"
    r = await client.get("/api/v1/public/enterprises/nonsense")
    assert r.status_code == 422


async def test_enterprise_search(client: httpx.AsyncClient, published: Province) -> None:
    r = await client.get("/api/v1/public/enterprises", params={"q": "童车"})
    assert {e["uscc"] for e in r.json()} == {published.company, published.sole}
    r = await client.get("/api/v1/public/enterprises", params={"q": published.listed.lower()})
    assert [e["uscc"] for e in r.json()] == [published.listed]
    r = await client.get("/api/v1/public/enterprises", params={"q": "100%_"})
    assert r.status_code == 200
    assert r.json() == []
    assert (await client.get("/api/v1/public/enterprises")).status_code == 422


async def test_lists(client: httpx.AsyncClient, published: Province) -> None:
    r = await client.get("/api/v1/public/lists/abnormal")
    assert r.status_code == 200
    [entry] = r.json()["items"]
    assert entry["uscc"] == published.sole
    assert entry["authority"] == "鼓楼区市场监督管理局"
    assert "13912345678" not in entry["reason"]
    r = await client.get("/api/v1/public/lists/serious")
    [entry] = r.json()["items"]
    assert entry["uscc"] == published.listed
    assert entry["decision_number"] == "厦市监失〔2024〕1号"
    assert entry["expires_on"] == "2027-11-01"
    r = await client.get("/api/v1/public/lists/joint-punishment")
    [entry] = r.json()["items"]
    assert entry["measures"] and entry["measures"][0]["end_on"] == "2027-11-01"
    r = await client.get("/api/v1/public/lists/serious", params={"status": "removed"})
    assert r.json()["items"] == []
    r = await client.get("/api/v1/public/lists/blacklist")
    assert r.status_code == 404
    assert r.json()["error"] == "ListNotFound"


async def test_stats(client: httpx.AsyncClient, published: Province) -> None:
    r = await client.get("/api/v1/public/stats", params={"target": "0.93"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["denominator"].startswith("batches tested")
    keys = {row["group"]["category"] for row in body["rows"]}
    assert keys == {"02", "03"}
    assert all(row["lower"] <= row["rate"] <= row["upper"] for row in body["rows"])
    assert sum(row["tested"] for row in body["rows"]) == 40
    r = await client.get("/api/v1/public/stats", params={"group_by": "colour"})
    assert r.status_code == 422


async def test_signing_key(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/public/signing-key")
    assert r.status_code == 200
    body = r.json()
    assert body["algorithm"] == "Ed25519"
    assert len(body["public_key_hex"]) == 64
    assert body["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")


async def test_rate_limit_answers_429_with_retry_after(
    test_settings, sessionmaker, published: Province
) -> None:
    from qsampling.app import create_app

    app = create_app(
        test_settings.model_copy(update={"public_rate_limit_per_minute": 3}),
        sessionmaker=sessionmaker,
    )
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        codes = [(await c.get(R)).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        r = await c.get("/")
        assert r.status_code == 429
        assert r.json()["error"] == "TooManyRequests"
        assert int(r.headers["retry-after"]) >= 1
    # another address has its own bucket
    other = httpx.ASGITransport(app=app, client=("203.0.113.8", 1234))
    async with httpx.AsyncClient(transport=other, base_url="http://test") as c:
        assert (await c.get(R)).status_code == 200
        # the signed-in API is not limited by this
        assert (await c.get("/healthz")).status_code in (200, 503)


def test_token_bucket_refills() -> None:
    from qsampling.disclosure.ratelimit import TokenBucketLimiter

    now = [0.0]
    lim = TokenBucketLimiter(60, clock=lambda: now[0])
    assert all(lim.take("a") == 0 for _ in range(60))
    wait = lim.take("a")
    assert wait == pytest.approx(1.0)
    now[0] += 1.0
    assert lim.take("a") == 0
    assert lim.take("b") == 0


async def test_rate_limit_middleware_covers_other_public_routes_without_double_counting(
    test_settings, sessionmaker, published: Province
) -> None:
    from qsampling.app import create_app
    from qsampling.disclosure.ratelimit import PublicRateLimitMiddleware

    app = create_app(
        test_settings.model_copy(update={"public_rate_limit_per_minute": 2}),
        sessionmaker=sessionmaker,
    )
    app.add_middleware(PublicRateLimitMiddleware)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.1", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        assert (await c.get("/api/v1/public/draws")).status_code == 200
        assert (await c.get(R)).status_code == 200  # counted once, not twice
        r = await c.get("/api/v1/public/draws")
        assert r.status_code == 429
        assert "retry-after" in r.headers
        assert (await c.get("/healthz")).status_code in (200, 503)
