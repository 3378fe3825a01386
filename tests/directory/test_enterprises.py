"""The enterprise directory through the API: create, update, get, filters, cursor paging."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.directory import service
from tests.directory.conftest import UNIT, UNIT2, code, wrong_check

pytestmark = pytest.mark.usefixtures("reference")


def body(seed: int, **over: object) -> dict[str, object]:
    b: dict[str, object] = {
        "uscc": code(seed),
        "name": f"福州华强{seed}电器有限公司",
        "region_code": "350102",
        "address": "福建省福州市鼓楼区五四路1号",
        "supervising_unit": UNIT,
        "category_codes": ["02.01.02"],
        "size": "small",
        "channel": "production",
    }
    b.update(over)
    return b


async def test_create_normalises_the_code_and_starts_at_class_b(client, login) -> None:
    h = await login("supervisor")
    c = code(1)
    r = await client.post(
        "/api/v1/enterprises", json=body(1, uscc=f"  {c[:6].lower()} {c[6:]} "), headers=h
    )
    assert r.status_code == 201, r.text
    e = r.json()
    assert e["uscc"] == c
    assert e["credit_class"] == "B"
    assert e["entity_type"] == "企业"  # derived from 9-1
    assert e["status"] == "存续"
    # the path accepts the code as a person types it
    r = await client.get(f"/api/v1/enterprises/{c.lower()}", headers=await login("inspector"))
    assert r.status_code == 200 and r.json()["name"] == "福州华强1电器有限公司"


async def test_entity_type_follows_the_code_when_omitted(client, login) -> None:
    h = await login("admin")
    sole = code(2, kind="sole_trader")
    coop = code(3, kind="cooperative")
    for c, expected in ((sole, "个体工商户"), (coop, "农民专业合作社")):
        r = await client.post("/api/v1/enterprises", json=body(9, uscc=c), headers=h)
        assert r.status_code == 201 and r.json()["entity_type"] == expected


BAD_CREATES = [
    ({"uscc": wrong_check(code(4))}, 422, "InvalidUSCC"),
    ({"uscc": "91350102MA2Y"}, 422, "InvalidUSCC"),
    ({"region_code": "350199"}, 422, "UnknownRegion"),
    ({"region_code": "35010"}, 422, "InvalidInput"),
    ({"category_codes": ["99.99"]}, 422, "UnknownCategory"),
    ({"supervising_unit": "NOPE"}, 422, "UnknownUnit"),
    ({"size": "huge"}, 422, "InvalidInput"),
    ({"name": "张三 110101199003078515 店"}, 422, "PersonalData"),
    ({"address": "鼓楼区 联系电话13912345678"}, 422, "PersonalData"),
    ({"name": "line\nbreak"}, 422, "InvalidInput"),
    ({"name": "nul\x00"}, 422, "InvalidInput"),
    ({"credit_class": "A"}, 422, "InvalidInput"),  # owned by the credit module
    ({"registration_date": "2999-01-01"}, 422, "InvalidDate"),
]


async def test_create_refuses_bad_input(client, login) -> None:
    h = await login("admin")
    for over, status, error in BAD_CREATES:
        r = await client.post("/api/v1/enterprises", json=body(4, **over), headers=h)
        assert r.status_code == status, (over, r.text)
        assert r.json()["error"] == error, (over, r.text)
        assert r.json()["detail"]


async def test_invalid_uscc_reason_is_given(client, login) -> None:
    bad = wrong_check(code(5))
    r = await client.get(f"/api/v1/enterprises/{bad}", headers=await login("analyst"))
    assert r.status_code == 422
    assert r.json()["error"] == "InvalidUSCC"
    assert "check" in r.json()["detail"] and "校验位" in r.json()["detail"]
    r = await client.get(f"/api/v1/enterprises/{code(5)}", headers=await login("analyst"))
    assert r.status_code == 404 and r.json()["error"] == "EnterpriseNotFound"


async def test_duplicate_is_a_conflict(client, login) -> None:
    h = await login("supervisor")
    assert (await client.post("/api/v1/enterprises", json=body(6), headers=h)).status_code == 201
    r = await client.post("/api/v1/enterprises", json=body(6), headers=h)
    assert r.status_code == 409 and r.json()["error"] == "EnterpriseExists"


async def test_patch_changes_only_what_is_sent_and_is_audited(client, login, session) -> None:
    h = await login("supervisor")
    c = code(7)
    await client.post("/api/v1/enterprises", json=body(7), headers=h)
    r = await client.patch(
        f"/api/v1/enterprises/{c}",
        json={"status": "注销", "address": None, "category_codes": ["03.01", "03.01"]},
        headers=h,
    )
    assert r.status_code == 200, r.text
    e = r.json()
    assert e["status"] == "注销" and e["address"] is None
    assert e["category_codes"] == ["03.01"]
    assert e["name"] == "福州华强7电器有限公司" and e["supervising_unit"] == UNIT
    actions = (
        await session.execute(
            text("SELECT action FROM audit_log WHERE entity_id = :c ORDER BY id"), {"c": c}
        )
    ).scalars()
    assert list(actions) == ["enterprise.create", "enterprise.update"]
    r = await client.patch(f"/api/v1/enterprises/{c}", json={"name": None}, headers=h)
    assert r.status_code == 422
    r = await client.patch(f"/api/v1/enterprises/{c}", json={"credit_class": "D"}, headers=h)
    assert r.status_code == 422


async def test_reads_for_staff_writes_for_supervisors(client, login) -> None:
    for role in ("inspector", "analyst"):
        h = await login(role)
        assert (await client.get("/api/v1/enterprises", headers=h)).status_code == 200
        r = await client.post("/api/v1/enterprises", json=body(8), headers=h)
        assert r.status_code == 403
    r = await client.get("/api/v1/enterprises", headers=await login("partner"))
    assert r.status_code == 403


@pytest.fixture
async def directory(client: httpx.AsyncClient, login) -> dict[str, str]:
    h = await login("supervisor")
    made = {
        "toy": body(20, name="福州华强玩具有限公司", category_codes=["03.02.01"]),
        "pram": body(21, name="福州好孩子童车有限公司", category_codes=["03.01.02"]),
        "elec": body(
            22,
            name="厦门华强电子有限公司",
            region_code="350203",
            supervising_unit=UNIT2,
            category_codes=["02.03.01"],
        ),
        "wild": body(
            23,
            name="100%_纯棉服装店",
            category_codes=["01.01.01"],
            uscc=code(23, kind="sole_trader"),
        ),
        "gone": body(24, name="福州旧日玩具厂", category_codes=["03.02.02"], status="吊销"),
    }
    out = {}
    for key, b in made.items():
        r = await client.post("/api/v1/enterprises", json=b, headers=h)
        assert r.status_code == 201, r.text
        out[key] = r.json()["uscc"]
    return out


async def _names(client, h, **params) -> set[str]:
    r = await client.get("/api/v1/enterprises", params=params, headers=h)
    assert r.status_code == 200, r.text
    return {e["name"] for e in r.json()["items"]}


async def test_filters(client, login, directory, session: AsyncSession) -> None:
    h = await login("analyst")
    assert await _names(client, h, region="3502") == {"厦门华强电子有限公司"}
    assert await _names(client, h, region="350200") == {"厦门华强电子有限公司"}  # whole city
    assert len(await _names(client, h, region="35")) == 5
    assert await _names(client, h, category="03.02") == {"福州华强玩具有限公司", "福州旧日玩具厂"}
    assert await _names(client, h, category="03") == {
        "福州华强玩具有限公司",
        "福州旧日玩具厂",
        "福州好孩子童车有限公司",
    }
    assert await _names(client, h, category="03", status="存续") == {
        "福州华强玩具有限公司",
        "福州好孩子童车有限公司",
    }
    assert await _names(client, h, status=["吊销", "注销"]) == {"福州旧日玩具厂"}
    await session.execute(
        text("UPDATE enterprises SET credit_class = 'D' WHERE uscc = :u"), {"u": directory["toy"]}
    )
    assert await _names(client, h, credit_class="D") == {"福州华强玩具有限公司"}
    assert await _names(client, h, credit_class=["A", "D"]) == {"福州华强玩具有限公司"}
    assert await _names(client, h, entity_type="个体工商户") == {"100%_纯棉服装店"}
    assert await _names(client, h, supervising_unit=UNIT2) == {"厦门华强电子有限公司"}


async def test_name_fragments_chinese_short_and_long_and_wildcards(
    client, login, directory
) -> None:
    h = await login("inspector")
    assert await _names(client, h, name="华强") == {"福州华强玩具有限公司", "厦门华强电子有限公司"}
    assert await _names(client, h, name="华") == {"福州华强玩具有限公司", "厦门华强电子有限公司"}
    assert await _names(client, h, name="好孩子童车") == {"福州好孩子童车有限公司"}
    assert await _names(client, h, name="玩具有限") == {"福州华强玩具有限公司"}
    # % and _ are literal characters, not wildcards
    assert await _names(client, h, name="%") == {"100%_纯棉服装店"}
    assert await _names(client, h, name="0%_纯") == {"100%_纯棉服装店"}
    assert await _names(client, h, name="_") == {"100%_纯棉服装店"}
    assert await _names(client, h, name="华%强") == set()


async def test_a_long_chinese_fragment_can_use_the_trigram_index(session: AsyncSession) -> None:
    q = await service.enterprise_query(session, name="华强电器")
    sql = str(q.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    await session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join((await session.execute(text("EXPLAIN " + sql))).scalars())
    assert "ix_enterprises_name_trgm" in plan, plan


BAD_FILTERS = [
    ({"region": "3"}, "InvalidRegion"),
    ({"region": "35a1"}, "InvalidRegion"),
    ({"category": "99"}, "UnknownCategory"),
    ({"status": "active"}, "InvalidInput"),
    ({"credit_class": "E"}, "InvalidInput"),
    ({"limit": 501}, "InvalidInput"),
    ({"limit": 0}, "InvalidInput"),
    ({"cursor": "not-a-cursor"}, "InvalidCursor"),
    ({"cursor": "W10"}, "InvalidCursor"),  # base64 of [] — well-formed but not ours
    ({"cursor": "%00"}, "InvalidCursor"),
    ({"cursor": "a\x00b"}, "InvalidInput"),
    ({"name": "a\x00b"}, "InvalidInput"),
]


async def test_bad_filters_are_422(client, login) -> None:
    h = await login("analyst")
    for params, error in BAD_FILTERS:
        r = await client.get("/api/v1/enterprises", params=params, headers=h)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["error"] == error, (params, r.text)


async def test_cursor_paging_is_complete_and_stable(client, login, directory) -> None:
    h = await login("analyst")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, object] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = await client.get("/api/v1/enterprises", params=params, headers=h)
        page = r.json()
        seen += [e["uscc"] for e in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted(directory.values())


async def test_hostile_keys_are_not_found_not_500(client, login) -> None:
    import base64
    import json

    h = await login("admin")
    for path in (
        "/api/v1/categories/a%00b",
        "/api/v1/units/a%00b",
        "/api/v1/inspectors/a%00b",
        "/api/v1/inspectors/a%00b/conflicts",
        "/api/v1/check-items/a%00b",
        "/api/v1/regions/35%0002",
        "/api/v1/enterprises/a%00b",
        "/api/v1/check-items/" + "x" * 5000,
    ):
        r = await client.get(path, headers=h)
        assert r.status_code in (404, 422), (path, r.status_code, r.text)
    evil = base64.urlsafe_b64encode(json.dumps(["\ud800"]).encode()).decode()
    r = await client.get("/api/v1/enterprises", params={"cursor": evil}, headers=h)
    assert r.status_code == 422 and r.json()["error"] == "InvalidCursor"
    r = await client.post(
        "/api/v1/enterprises/import",
        files={
            "file": (
                "bad\x00name\ud800.csv".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
                b"uscc,name,region_code,size,channel\r\n",
                "text/csv",
            )
        },
        headers=h,
    )
    assert r.status_code == 422
