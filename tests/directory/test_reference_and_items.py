"""Reference data (regions, categories, units) and the check-item list through the API."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.directory.files import FileProblem
from qsampling.directory.reference import (
    load_reference,
    load_regions,
    parse_regions_file,
    shipped_check_items,
)
from tests.directory.conftest import ACTOR


async def test_loading_the_shipped_reference_data_twice_changes_nothing(session) -> None:
    await load_reference(session, actor=ACTOR)
    again = await load_reference(session, actor=ACTOR)
    assert again == {"regions": 0, "categories": 0, "check items": 0}
    n = await session.scalar(text("SELECT count(*) FROM regions WHERE level = 'province'"))
    assert n == 34
    fujian = await session.scalar(
        text("SELECT count(*) FROM regions WHERE code LIKE '35%' AND level = 'county'")
    )
    assert fujian and fujian > 80
    items = await session.scalar(text("SELECT count(*) FROM check_items"))
    assert items == len(shipped_check_items())


@pytest.mark.usefixtures("reference")
async def test_regions_api(client, login) -> None:
    h = await login("analyst")
    r = await client.get("/api/v1/regions", params={"level": "province", "limit": 500}, headers=h)
    assert len(r.json()["items"]) == 34
    r = await client.get("/api/v1/regions", params={"prefix": "350100", "limit": 500}, headers=h)
    codes = [x["code"] for x in r.json()["items"]]
    assert codes[0] == "350100" and "350102" in codes and all(c[:4] == "3501" for c in codes)
    r = await client.get("/api/v1/regions", params={"parent_code": "350100"}, headers=h)
    assert {x["parent_code"] for x in r.json()["items"]} == {"350100"}
    r = await client.get("/api/v1/regions/350102", headers=h)
    assert r.json() == {
        "code": "350102",
        "name": "鼓楼区",
        "level": "county",
        "parent_code": "350100",
    }
    assert (await client.get("/api/v1/regions/999999", headers=h)).status_code == 404
    # paging through every region returns each once
    seen, cursor = [], None
    while True:
        params: dict[str, object] = {"limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/v1/regions", params=params, headers=h)).json()
        seen += [x["code"] for x in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 279 and seen == sorted(seen)


@pytest.mark.usefixtures("reference")
async def test_regions_and_categories_can_be_added_and_renamed(client, login) -> None:
    h = await login("admin")
    r = await client.post("/api/v1/regions", json={"code": "350199", "name": "测试区"}, headers=h)
    assert r.status_code == 201 and r.json()["parent_code"] == "350100"
    r = await client.post("/api/v1/regions", json={"code": "990101", "name": "无上级"}, headers=h)
    assert r.status_code == 422 and r.json()["error"] == "UnknownRegion"
    r = await client.patch("/api/v1/regions/350199", json={"name": "测试新区"}, headers=h)
    assert r.json()["name"] == "测试新区"
    r = await client.post(
        "/api/v1/categories", json={"code": "03.01.99", "name": "滑板车"}, headers=h
    )
    assert r.status_code == 201 and r.json()["parent_code"] == "03.01" and r.json()["level"] == 3
    r = await client.post("/api/v1/categories", json={"code": "77.01", "name": "孤儿"}, headers=h)
    assert r.status_code == 422 and r.json()["error"] == "UnknownCategory"
    r = await client.post("/api/v1/categories", json={"code": "03.01.99", "name": "x"}, headers=h)
    assert r.status_code == 409
    r = await client.post(
        "/api/v1/regions", json={"code": "350199", "name": "x"}, headers=await login("inspector")
    )
    assert r.status_code == 403


@pytest.mark.usefixtures("reference")
async def test_categories_api(client, login) -> None:
    h = await login("inspector")
    r = await client.get("/api/v1/categories", params={"level": 1}, headers=h)
    names = [c["name"] for c in r.json()["items"]]
    for top in (
        "日用及纺织品",
        "电子电器",
        "儿童用品",
        "食品相关产品",
        "建筑和装饰装修材料",
        "农业生产资料",
        "工业生产资料",
        "交通用具及相关产品",
    ):
        assert top in names
    r = await client.get("/api/v1/categories", params={"prefix": "03.01", "limit": 500}, headers=h)
    codes = [c["code"] for c in r.json()["items"]]
    assert codes[0] == "03.01" and all(c == "03.01" or c.startswith("03.01.") for c in codes)
    r = await client.get("/api/v1/categories", params={"parent_code": "03"}, headers=h)
    assert {c["parent_code"] for c in r.json()["items"]} == {"03"}
    r = await client.get("/api/v1/categories/03.02", headers=h)
    assert r.json()["name"] == "玩具"


@pytest.mark.usefixtures("reference")
async def test_units_api(client, login) -> None:
    h = await login("supervisor")
    r = await client.post(
        "/api/v1/units",
        json={"code": "FJ-350103-S01", "name": "台江区市场监管所", "region_code": "350103"},
        headers=h,
    )
    assert r.status_code == 201
    r = await client.patch("/api/v1/units/FJ-350103-S01", json={"name": "台江所"}, headers=h)
    assert r.json()["name"] == "台江所"
    r = await client.get("/api/v1/units", params={"region": "3501"}, headers=h)
    assert "FJ-350103-S01" in [u["code"] for u in r.json()["items"]]
    r = await client.post(
        "/api/v1/units", json={"code": "U-X", "name": "x", "region_code": "350199"}, headers=h
    )
    assert r.status_code == 422 and r.json()["error"] == "UnknownRegion"


def _item(code: str = "CI-T-1", **over: object) -> dict[str, object]:
    b: dict[str, object] = {
        "code": code,
        "name": "玩具产品质量监督抽查",
        "legal_basis": "《中华人民共和国产品质量法》第十五条",
        "kind": "重点",
        "category_codes": ["03.02"],
        "ratios": {"A": "0.03", "B": "0.05", "C": "0.2", "D": "0.6"},
        "qualification": "QUAL-CHILD",
    }
    b.update(over)
    return b


@pytest.mark.usefixtures("reference")
async def test_check_items(client, login, session: AsyncSession) -> None:
    h = await login("supervisor")
    r = await client.post("/api/v1/check-items", json=_item(), headers=h)
    assert r.status_code == 201, r.text
    item = r.json()
    assert (item["team_size"], item["exclusion_days"]) == (2, 180)
    assert item["ratios"] == {"A": "0.03", "B": "0.05", "C": "0.2", "D": "0.6"}
    r = await client.patch(
        "/api/v1/check-items/CI-T-1", json={"team_size": 3, "kind": "一般"}, headers=h
    )
    assert (r.json()["team_size"], r.json()["kind"]) == (3, "一般")
    r = await client.get("/api/v1/check-items", params={"category": "03.02.01"}, headers=h)
    codes = [i["code"] for i in r.json()["items"]]
    assert "CI-T-1" in codes and "SC-2026-001" in codes  # 03 covers 03.02.01 too
    assert "SC-2026-002" not in codes
    r = await client.get("/api/v1/check-items", params={"kind": "重点"}, headers=h)
    assert all(i["kind"] == "重点" for i in r.json()["items"])
    r = await client.get("/api/v1/check-items/SC-2026-003", headers=await login("inspector"))
    assert r.json()["team_size"] == 3 and r.json()["ratios"]["D"] == "1.00"


BAD_ITEMS = [
    ({"team_size": 1}, "InvalidInput"),
    ({"ratios": {"A": "0.03", "B": "0.05", "C": "0.2"}}, "InvalidInput"),
    ({"ratios": {"A": "1.5", "B": "0.05", "C": "0.2", "D": "0.6"}}, "InvalidInput"),
    ({"ratios": {"A": 0.03, "B": "0.05", "C": "0.2", "D": "0.6"}}, "InvalidInput"),
    ({"category_codes": ["99"]}, "UnknownCategory"),
    ({"kind": "普通"}, "InvalidInput"),
    ({"exclusion_days": -1}, "InvalidInput"),
    ({"code": "SC-2026-001"}, "CheckItemExists"),
]


@pytest.mark.usefixtures("reference")
async def test_check_item_rules(client, login) -> None:
    h = await login("admin")
    for over, error in BAD_ITEMS:
        r = await client.post("/api/v1/check-items", json=_item(**over), headers=h)
        assert r.status_code in (409, 422), (over, r.text)
        assert r.json()["error"] == error, (over, r.text)


def test_region_file_with_codes_and_names_only() -> None:
    data = (
        "区划代码,名称\n350000,福建省\n350100,福州市\n350102,鼓楼区\n"
        "469001,五指山市\n460000,海南省\n"
    )
    rows = {r["code"]: r for r in parse_regions_file(io.BytesIO(data.encode("gb18030")))}
    assert rows["350102"]["level"] == "county" and rows["350102"]["parent_code"] == "350100"
    assert rows["350100"]["level"] == "city" and rows["350100"]["parent_code"] == "350000"
    # a county directly under its province (省直辖县级行政区)
    assert rows["469001"]["parent_code"] == "460000"
    with pytest.raises(FileProblem, match="6 digits"):
        parse_regions_file(io.BytesIO(b"code,name\n3501,x\n"))
    with pytest.raises(FileProblem) as exc:
        parse_regions_file(io.BytesIO(b"code,name\n350100,a\n350100,b\n"))
    assert exc.value.code == "InvalidRows"


async def test_region_upsert_counts(session) -> None:
    rows = parse_regions_file(io.BytesIO(b"code,name\n350000,Fujian\n350100,Fuzhou\n"))
    first = await load_regions(session, rows, actor=ACTOR)
    assert first.inserted == 2
    rows[1]["name"] = "福州"
    again = await load_regions(session, rows, actor=ACTOR)
    assert (again.inserted, again.updated, again.unchanged) == (0, 1, 1)
