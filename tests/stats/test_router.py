"""The statistics API as a client sees it: roles, parameters, errors, numbers, SVG."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import date

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.stats.factories import Batch, add

SVG = "{http://www.w3.org/2000/svg}"
Q2 = date(2026, 5, 10)
Q3 = date(2026, 8, 15)

DATA = [
    Batch("01.01.01", "350102", Q3, passed=47, failed=3),
    Batch("01.02.01", "350203", Q3, passed=20),
    Batch("02.01.01", "350102", Q3, passed=0, failed=5),
    Batch("03.02.01", "350203", Q2, passed=98, failed=2, pi=0.5, stratum="D"),
    Batch("03.02.01", "350203", Q3, passed=80, failed=20, pi=0.5, stratum="D"),
    Batch("03.02.01", "350203", Q3, passed=30, pi=0.05, stratum="A"),
]


@pytest.fixture
async def analyst(login) -> dict[str, str]:
    return await login("analyst")


@pytest.fixture
async def data(session: AsyncSession) -> None:
    await add(session, *DATA)


async def test_pass_rates_for_each_staff_role_that_may(
    client: httpx.AsyncClient, login, data
) -> None:
    for role in ("analyst", "supervisor", "admin"):
        r = await client.get(
            "/api/v1/stats/pass-rates", params={"group_by": "category:1"}, headers=await login(role)
        )
        assert r.status_code == 200, r.text
    for role in ("inspector", "partner"):
        r = await client.get("/api/v1/stats/pass-rates", headers=await login(role))
        assert r.status_code == 403
        assert r.json()["error"] == "Forbidden"
    assert (await client.get("/api/v1/stats/pass-rates")).status_code == 401


async def test_pass_rates_rows(client: httpx.AsyncClient, analyst, data) -> None:
    r = await client.get(
        "/api/v1/stats/pass-rates",
        params=[("group_by", "category:1,region:city"), ("target", "0.9"), ("weighted", "true")],
        headers=analyst,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["denominator"] == "batches tested (检验批次)"
    assert body["group_by"] == ["category:1", "region:city"]
    rows = {(x["group"]["category"], x["group"]["region"]): x for x in body["rows"]}
    assert set(rows) == {("01", "350100"), ("01", "350200"), ("02", "350100"), ("03", "350200")}
    clothes = rows[("01", "350100")]
    assert clothes["labels"] == {"category": "日用及纺织品", "region": "福州市"}
    assert (clothes["tested"], clothes["passed"], clothes["failed"]) == (50, 47, 3)
    assert clothes["rate"] == pytest.approx(0.94)
    assert clothes["lower"] < 0.94 < clothes["upper"]
    assert clothes["method"] == "wilson" and clothes["confidence"] == 0.95
    assert clothes["target"]["verdict"] in ("met", "not met", "not shown")
    assert set(clothes["weighted"]) >= {"estimate", "se", "n_eff", "lower", "upper"}
    appliances = rows[("02", "350100")]
    assert appliances["lower"] == 0.0 and appliances["flag"]["small"] is True
    assert appliances["target"]["verdict"] == "not met"
    toys = rows[("03", "350200")]
    # 80/100 at π = 0.5 and 30/30 at π = 0.05: the population estimate is far above 110/130
    assert toys["weighted"]["estimate"] > toys["rate"]
    assert "Wilson" in body["methodology"]


async def test_repeated_group_by_and_methods(client: httpx.AsyncClient, analyst, data) -> None:
    r = await client.get(
        "/api/v1/stats/pass-rates",
        params=[
            ("group_by", "category:2"),
            ("group_by", "period:quarter"),
            ("method", "clopper_pearson"),
            ("confidence", "0.99"),
            ("from", "2026-07-01"),
            ("to", "2026-09-30"),
            ("region", "350200"),
        ],
        headers=analyst,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["filters"] == {"from": "2026-07-01", "to": "2026-09-30", "region": "3502"}
    assert {(x["group"]["category"], x["group"]["period"]) for x in body["rows"]} == {
        ("01.02", "2026Q3"),
        ("03.02", "2026Q3"),
    }
    assert {x["method"] for x in body["rows"]} == {"clopper_pearson"}


BAD_PARAMS = [
    ({"group_by": "colour"}, "InvalidGroupBy"),
    ({"group_by": "category:x"}, "InvalidGroupBy"),
    ({"group_by": "category,category:2"}, "InvalidGroupBy"),
    ({"method": "wald"}, "InvalidInput"),
    ({"confidence": "1.5"}, "InvalidInput"),
    ({"confidence": "nan"}, "InvalidInput"),
    ({"target": "93"}, "InvalidInput"),
    ({"target": "0"}, "InvalidInput"),
    ({"region": "35x"}, "InvalidRegion"),
    ({"region": "3"}, "InvalidRegion"),
    ({"category": "03'; drop table x"}, "InvalidCategory"),
    ({"from": "2026-09-01", "to": "2026-01-01"}, "InvalidDateRange"),
    ({"from": "yesterday"}, "InvalidInput"),
    ({"plan_id": "0"}, "InvalidInput"),
    ({"check_item": "a b"}, "InvalidCheckItem"),
    ({"weighted": "maybe"}, "InvalidInput"),
]


async def test_bad_parameters_get_422_with_a_code(client: httpx.AsyncClient, analyst) -> None:
    for params, code in BAD_PARAMS:
        for path in ("/api/v1/stats/pass-rates", "/api/v1/stats/charts/pass-rates.svg"):
            r = await client.get(path, params=params, headers=analyst)
            assert r.status_code == 422, (path, params, r.text)
            assert r.json()["error"] == code, (path, params, r.text)
            assert r.json()["detail"]


async def test_chart_svg_has_labels_whiskers_and_target(
    client: httpx.AsyncClient, analyst, data
) -> None:
    r = await client.get(
        "/api/v1/stats/charts/pass-rates.svg",
        params={"group_by": "category:1", "target": "0.93"},
        headers=analyst,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(r.content)
    assert root.tag == f"{SVG}svg"
    assert root.find(f"{SVG}title") is not None and root.find(f"{SVG}desc") is not None
    texts = "".join(t.text or "" for t in root.iter(f"{SVG}text"))
    for label in ("日用及纺织品", "电子电器", "儿童用品", "目标 93.0%"):
        assert label in texts
    targets = [e for e in root.iter(f"{SVG}line") if e.get("class") == "target"]
    assert len(targets) == 1 and targets[0].get("stroke-dasharray")
    assert len([e for e in root.iter(f"{SVG}line") if e.get("class") == "whisker"]) == 3
    assert "Noto Sans CJK SC" in (root.get("font-family") or "")


async def test_chart_svg_without_data_is_still_valid(client: httpx.AsyncClient, analyst) -> None:
    r = await client.get("/api/v1/stats/charts/pass-rates.svg", headers=analyst)
    assert r.status_code == 200
    root = ET.fromstring(r.content)
    assert "无数据" in "".join(t.text or "" for t in root.iter(f"{SVG}text"))


async def test_trend_endpoint(client: httpx.AsyncClient, analyst, data) -> None:
    r = await client.get("/api/v1/stats/trend", params={"group_by": "category:1"}, headers=analyst)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["periods"] == ["2026Q2", "2026Q3"]
    toys = next(s for s in body["series"] if s["group"] == {"category": "03"})
    assert toys["direction"] == "decreasing"
    assert [p["tested"] for p in toys["points"]] == [100, 130]
    r = await client.get("/api/v1/stats/trend", params={"period": "week"}, headers=analyst)
    assert r.status_code == 422


async def test_trend_without_data_says_why(client: httpx.AsyncClient, analyst) -> None:
    r = await client.get("/api/v1/stats/trend", headers=analyst)
    assert r.status_code == 422
    assert r.json()["error"] == "NotEnoughPeriods"


async def test_compare_endpoint(client: httpx.AsyncClient, analyst, data) -> None:
    r = await client.get(
        "/api/v1/stats/compare",
        params={"group_by": "category:1", "from": "2026-07-01"},
        headers=analyst,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["df"] == 2 and 0 <= body["p_value"] <= 1
    assert len(body["pairwise"]) == 3
    assert all(p["p_adjusted"] >= p["p_raw"] for p in body["pairwise"])
    r = await client.get(
        "/api/v1/stats/compare", params={"group_by": "region:province"}, headers=analyst
    )
    assert r.status_code == 422 and r.json()["error"] == "NotEnoughGroups"


async def test_sample_size_endpoint(client: httpx.AsyncClient, analyst) -> None:
    r = await client.post(
        "/api/v1/stats/sample-size",
        json={
            "margin": 0.03,
            "confidence": 0.95,
            "expected_rate": 0.93,
            "strata": [
                {"stratum": "A", "population": 5000},
                {"stratum": "B", "population": 3000},
                {"stratum": "C", "population": 500, "expected_rate": 0.8},
                {"stratum": "D", "population": 10, "expected_rate": 0.6},
            ],
            "allocation": "neyman",
            "zero_failure_p0": 0.95,
        },
        headers=analyst,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == sum(s["n"] for s in body["strata"])
    assert [s["stratum"] for s in body["strata"]] == ["A", "B", "C", "D"]
    assert body["strata"][3]["n"] <= 10
    assert body["zero_failure_n"] == 59
    simple = await client.post("/api/v1/stats/sample-size", json={"margin": 0.05}, headers=analyst)
    assert simple.json()["total"] == 385


BAD_BODIES = [
    {},
    {"margin": 0},
    {"margin": 0.6},
    {"margin": 0.05, "confidence": 1},
    {"margin": 0.05, "strata": []},
    {"margin": 0.05, "strata": [{"stratum": "A", "population": -1}]},
    {"margin": 0.05, "strata": [{"stratum": "A", "population": 0}]},
    {"margin": 0.05, "allocation": "optimal"},
    {"margin": 0.05, "surprise": 1},
    {"zero_failure_p0": 1.0},
    {"margin": "a lot"},
    [1, 2],
]


async def test_sample_size_rejects_bad_input(client: httpx.AsyncClient, analyst) -> None:
    for body in BAD_BODIES:
        r = await client.post("/api/v1/stats/sample-size", json=body, headers=analyst)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"] == "InvalidInput"
    r = await client.post(
        "/api/v1/stats/sample-size",
        content=b"{not json",
        headers={**analyst, "content-type": "application/json"},
    )
    assert r.status_code == 422


async def test_early_warnings_endpoint(client: httpx.AsyncClient, analyst, data) -> None:
    r = await client.get(
        "/api/v1/stats/early-warnings",
        params={"period": "2026Q3", "group_by": "category:2"},
        headers=analyst,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["period"] == "2026Q3" and body["previous_period"] == "2026Q2"
    assert [w["code"] for w in body["warnings"]] == ["03.02"]
    assert body["warnings"][0]["label"] == "玩具"
    everything = await client.get(
        "/api/v1/stats/early-warnings",
        params={"period": "2026Q3", "all": "true", "target": "0.95"},
        headers=analyst,
    )
    assert everything.json()["screened"] == len(everything.json()["warnings"])
    bad = await client.get(
        "/api/v1/stats/early-warnings", params={"period": "2026Q5"}, headers=analyst
    )
    assert bad.status_code == 422 and bad.json()["error"] == "InvalidPeriod"


async def test_report_html_endpoint(client: httpx.AsyncClient, analyst, data) -> None:
    r = await client.get(
        "/api/v1/stats/report.html", params={"period": "2026Q3", "target": "0.93"}, headers=analyst
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "分行业质量状况分析报告" in r.text
    bad = await client.get(
        "/api/v1/stats/report.html", params={"period": "Q3 2026"}, headers=analyst
    )
    assert bad.status_code == 422 and bad.json()["error"] == "InvalidPeriod"


async def test_json_never_contains_nan(client: httpx.AsyncClient, analyst, data) -> None:
    for params in (
        {"group_by": "category", "weighted": "true", "target": "0.99"},
        {"group_by": "region:county,period:month", "weighted": "true", "method": "jeffreys"},
        {"weighted": "true", "category": "09"},
    ):
        r = await client.get("/api/v1/stats/pass-rates", params=params, headers=analyst)
        assert r.status_code == 200, r.text

        def walk(v: object) -> None:
            if isinstance(v, float):
                assert math.isfinite(v)
            elif isinstance(v, dict):
                for x in v.values():
                    walk(x)
            elif isinstance(v, list):
                for x in v:
                    walk(x)

        walk(r.json())


ODD = ["", "%", "'", "\x00", "é中文", "nan", "1e309", "0" * 300]
ENDPOINTS = {
    "/api/v1/stats/pass-rates": (
        "group_by",
        "from",
        "to",
        "category",
        "region",
        "check_item",
        "plan_id",
        "method",
        "confidence",
        "weighted",
        "target",
        "include_follow_up",
    ),
    "/api/v1/stats/charts/pass-rates.svg": ("group_by", "category", "target", "region"),
    "/api/v1/stats/trend": ("group_by", "period", "from", "to", "category", "confidence"),
    "/api/v1/stats/compare": ("group_by", "alpha", "region", "from"),
    "/api/v1/stats/early-warnings": ("period", "group_by", "target", "alpha", "all", "region"),
    "/api/v1/stats/report.html": ("period", "target"),
}


async def test_odd_input_never_gives_a_server_error(
    client: httpx.AsyncClient, analyst, data
) -> None:
    for path, names in ENDPOINTS.items():
        for name in names:
            for value in ODD:
                params = {name: value}
                if path.endswith("report.html") and name != "period":
                    params["period"] = "2026Q3"
                r = await client.get(path, params=params, headers=analyst)
                assert r.status_code < 500, (path, params, r.status_code, r.text[:300])
                if r.status_code >= 400:
                    assert r.json()["error"], (path, params)
