"""Plans, commit and draw through the HTTP API, as a supervisor and as the public."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import httpx

from qsampling.core.draw import verify_bundle
from tests.draws.conftest import ITEM

ENTROPY = "31415926535897932384626"


async def make_plan(client: httpx.AsyncClient, headers: dict[str, str], **kw: Any) -> dict:
    body = {"name": "2026年儿童玩具抽查", "check_item_code": ITEM, **kw}
    r = await client.post("/api/v1/plans", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def commit(client: httpx.AsyncClient, headers: dict[str, str], plan_id: int) -> dict:
    r = await client.post(f"/api/v1/plans/{plan_id}/commit", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def draw(
    client: httpx.AsyncClient, headers: dict[str, str], plan_id: int, entropy: str = ENTROPY
) -> httpx.Response:
    return await client.post(
        f"/api/v1/plans/{plan_id}/draw",
        json={"entropy": entropy, "entropy_source": "dice, witnesses 张三, 李四"},
        headers=headers,
    )


async def test_plan_defaults_from_the_check_item(client, province, supervisor) -> None:
    await province()
    plan = await make_plan(client, supervisor)
    assert plan["status"] == "draft"
    assert plan["team_size"] == 2
    assert plan["exclusion_days"] == 180
    assert plan["strata_fields"] == ["credit_class"]
    assert plan["scope"] == {
        "region_prefixes": [],
        "category_codes": ["03.02"],
        "statuses": ["存续"],
    }
    assert plan["commitment"] is None
    r = await client.get(f"/api/v1/plans/{plan['id']}", headers=supervisor)
    assert r.status_code == 200 and r.json()["name"] == "2026年儿童玩具抽查"


async def test_plan_validation(client, province, supervisor) -> None:
    await province()
    cases = [
        ({"team_size": 1}, "TeamTooSmall"),
        ({"check_item_code": "NOPE"}, "UnknownCheckItem"),
        ({"ratios": {"A": "1.5"}}, "InvalidRatio"),
        ({"ratios": {"A": "abc"}}, "InvalidRatio"),
        ({"ratios": {"A": "0.1"}, "quotas": {"A": 1}}, "RatiosOrQuotas"),
        ({"quotas": {"A": -1}}, "InvalidInput"),
        ({"strata_fields": ["credit_class", "credit_class"]}, "InvalidStrata"),
        ({"strata_fields": ["shoe_size"]}, "InvalidInput"),
        ({"scope": {"region_prefixes": ["3"]}}, "InvalidInput"),
        ({"scope": {"statuses": ["alive"]}}, "InvalidInput"),
        ({"targets": ["91350100M000100Y43"]}, "TargetsNotAllowed"),
        ({"plan_type": "weekly"}, "InvalidInput"),
        ({"name": "a\u0000b"}, "InvalidInput"),
    ]
    for extra, code in cases:
        body = {"name": "p", "check_item_code": ITEM, **extra}
        r = await client.post("/api/v1/plans", json=body, headers=supervisor)
        assert r.status_code == 422, (extra, r.text)
        assert r.json()["error"] == code, (extra, r.json())
        assert r.json()["detail"]


async def test_lone_surrogate_is_422_not_500(client, province, supervisor) -> None:
    await province()
    raw = b'{"name": "\\ud800", "check_item_code": "CI-TOY"}'
    r = await client.post(
        "/api/v1/plans",
        content=raw,
        headers={**supervisor, "content-type": "application/json"},
    )
    assert r.status_code == 422


async def test_commit_draw_bundle_verify(client, province, supervisor) -> None:
    prov = await province(enterprises=60, inspectors=8)
    plan = await make_plan(client, supervisor, due_date="2026-12-31")
    c = await commit(client, supervisor, plan["id"])
    eligible = [
        e for e in prov.enterprises if e.status == "存续" and e.category_codes[0] != "04.01"
    ]
    assert c["pool_size"] == len(eligible)
    by_class = {s["stratum"]: s for s in c["strata"]}
    for cls, ratio in {"A": 0.1, "B": 0.2, "C": 0.5, "D": 1}.items():
        n = sum(1 for e in eligible if e.credit_class == cls)
        assert by_class[cls]["population"] == n
        assert by_class[cls]["quota"] == min(n, -(-int(ratio * 10) * n // 10))
    assert c["params"]["quotas"] == {s: v["quota"] for s, v in by_class.items()}
    assert c["params"]["algorithm"] == "QSDRAW-1"
    assert len(c["commitment"]) == 64
    assert "nonce" not in json.dumps(c).replace("server_nonce_sha256", "")

    # published before the draw, without the nonce
    pub = (await client.get("/api/v1/public/draws")).json()["items"]
    assert pub[0]["commitment"] == c["commitment"] and pub[0]["nonce"] is None
    files = await client.get(pub[0]["files_url"])
    assert files.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(files.content)).namelist()
    assert names == ["exclusions.csv", "inspectors.csv", "params.json", "pool.csv"]

    r = await draw(client, supervisor, plan["id"])
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["selected_count"] == c["quota_total"] == len(d["selected"])
    assert d["commitment"] == c["commitment"] and len(d["nonce"]) == 64
    keys = [s["key"] for s in d["selected"]]
    assert keys == sorted(keys)
    for s in d["selected"]:
        assert len(s["inspectors"]) == 2 and len(set(s["inspectors"])) == 2
        q = by_class[s["stratum"]]
        assert s["inclusion_probability"] == q["quota"] / q["population"]

    plan_now = (await client.get(f"/api/v1/plans/{plan['id']}", headers=supervisor)).json()
    assert plan_now["status"] == "drawn" and plan_now["selected_count"] == d["selected_count"]

    bundle = await client.get(f"/api/v1/public/draws/{plan['id']}/bundle")
    assert bundle.status_code == 200
    assert bundle.headers["content-type"] == "application/zip"
    report = verify_bundle(bundle.content)
    assert report.ok, report.differences
    zf = zipfile.ZipFile(io.BytesIO(bundle.content))
    result = json.loads(zf.read("result.json"))
    assert result["nonce"] == d["nonce"] and result["entropy"] == ENTROPY
    assert [s["uscc"] for s in result["selected"]] == [s["uscc"] for s in d["selected"]]
    # no names or personal data in the inspector file
    assert zf.read("inspectors.csv").decode().splitlines()[0] == "inspector_id,unit"
    assert "检查员" not in zf.read("inspectors.csv").decode()

    pub = (await client.get("/api/v1/public/draws")).json()["items"][0]
    assert pub["nonce"] == d["nonce"] and pub["seed"] == d["seed"]
    assert pub["entropy"] == ENTROPY and pub["selected_count"] == d["selected_count"]
    detail = (await client.get(f"/api/v1/public/draws/{plan['id']}")).json()
    assert [s["uscc"] for s in detail["selected"]] == [s["uscc"] for s in d["selected"]]

    # a plan is drawn once
    again = await draw(client, supervisor, plan["id"])
    assert again.status_code == 409 and again.json()["error"] == "AlreadyDrawn"
    recommit = await client.post(f"/api/v1/plans/{plan['id']}/commit", headers=supervisor)
    assert recommit.status_code == 409 and recommit.json()["error"] == "PlanDrawn"
    cancel = await client.post(f"/api/v1/plans/{plan['id']}/cancel", headers=supervisor)
    assert cancel.status_code == 409 and cancel.json()["error"] == "PlanDrawn"


async def test_entropy_too_short_and_draw_before_commit(client, province, supervisor) -> None:
    await province()
    plan = await make_plan(client, supervisor)
    r = await draw(client, supervisor, plan["id"])
    assert r.status_code == 409 and r.json()["error"] == "NotCommitted"
    await commit(client, supervisor, plan["id"])
    r = await draw(client, supervisor, plan["id"], entropy="1234")
    assert r.status_code == 422 and r.json()["error"] == "EntropyTooShort"
    r = await client.post(f"/api/v1/plans/{plan['id']}/draw", json={}, headers=supervisor)
    assert r.status_code == 422
    r = await draw(client, supervisor, 999_999)
    assert r.status_code == 404 and r.json()["error"] == "PlanNotFound"


async def test_empty_pool_and_too_few_inspectors(client, province, supervisor) -> None:
    await province(inspectors=1)
    plan = await make_plan(client, supervisor, scope={"region_prefixes": ["4401"]})
    r = await client.post(f"/api/v1/plans/{plan['id']}/commit", headers=supervisor)
    assert r.status_code == 409 and r.json()["error"] == "EmptyPool"
    assert "4401" in r.json()["detail"]
    plan = await make_plan(client, supervisor)
    r = await client.post(f"/api/v1/plans/{plan['id']}/commit", headers=supervisor)
    assert r.status_code == 409 and r.json()["error"] == "CannotStaff"
    # nothing was stored: the plan is still a draft and nothing is public
    got = (await client.get(f"/api/v1/plans/{plan['id']}", headers=supervisor)).json()
    assert got["status"] == "draft" and got["commitment"] is None
    assert (await client.get("/api/v1/public/draws")).json()["items"] == []


async def test_unstaffable_draw_stores_nothing(client, province, supervisor, sessionmaker) -> None:
    prov = await province(inspectors=3)
    # cross-unit with 3 inspectors in 3 units leaves 2 per enterprise; a cap of 1 task
    # exhausts them after one enterprise
    plan = await make_plan(
        client,
        supervisor,
        cross_unit=True,
        max_tasks_per_inspector=1,
        quotas={"A": 3, "B": 3},
    )
    await commit(client, supervisor, plan["id"])
    r = await draw(client, supervisor, plan["id"])
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["error"] == "CannotStaff"
    assert body["unstaffed"] and set(body["unstaffed"]) <= set(prov.usccs())
    got = (await client.get(f"/api/v1/plans/{plan['id']}", headers=supervisor)).json()
    assert got["status"] == "committed" and got["selected_count"] is None
    assert (await client.get(f"/api/v1/public/draws/{plan['id']}/bundle")).status_code == 404


async def test_recommit_supersedes_and_both_stay_public(client, province, supervisor) -> None:
    await province()
    plan = await make_plan(client, supervisor)
    first = await commit(client, supervisor, plan["id"])
    second = await commit(client, supervisor, plan["id"])
    assert second["superseded"] == [first["commitment"]]
    assert second["commitment"] != first["commitment"]  # a fresh nonce
    items = (await client.get("/api/v1/public/draws")).json()["items"]
    assert [i["commitment"] for i in items] == [second["commitment"], first["commitment"]]
    assert [i["superseded"] for i in items] == [False, True]
    r = await draw(client, supervisor, plan["id"])
    assert r.json()["commitment"] == second["commitment"]
    detail = (await client.get(f"/api/v1/public/draws/{plan['id']}")).json()
    assert detail["commitment"] == second["commitment"]
    assert [h["commitment"] for h in detail["history"]] == [first["commitment"]]
    assert detail["history"][0]["nonce"] is None


async def test_cancel_before_draw(client, province, supervisor) -> None:
    await province()
    plan = await make_plan(client, supervisor)
    await commit(client, supervisor, plan["id"])
    r = await client.post(f"/api/v1/plans/{plan['id']}/cancel", headers=supervisor)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = await draw(client, supervisor, plan["id"])
    assert r.status_code == 409 and r.json()["error"] == "PlanCancelled"
    r = await client.post(f"/api/v1/plans/{plan['id']}/cancel", headers=supervisor)
    assert r.status_code == 409


async def test_list_plans_paged_and_roles(client, province, supervisor, login) -> None:
    await province()
    ids = [(await make_plan(client, supervisor, name=f"p{i}"))["id"] for i in range(3)]
    analyst = await login("analyst")
    r = await client.get("/api/v1/plans?limit=2", headers=analyst)
    assert r.status_code == 200
    page = r.json()
    assert [p["id"] for p in page["items"]] == ids[::-1][:2]
    r = await client.get(f"/api/v1/plans?limit=2&cursor={page['next_cursor']}", headers=analyst)
    assert [p["id"] for p in r.json()["items"]] == [ids[0]]
    assert r.json()["next_cursor"] is None
    r = await client.post(
        "/api/v1/plans", json={"name": "x", "check_item_code": ITEM}, headers=analyst
    )
    assert r.status_code == 403
    inspector = await login("inspector")
    r = await client.post(f"/api/v1/plans/{ids[0]}/commit", headers=inspector)
    assert r.status_code == 403


async def test_public_lookups_of_unknown_things(client) -> None:
    assert (await client.get("/api/v1/public/draws/12345")).status_code == 404
    assert (await client.get("/api/v1/public/draws/12345/bundle")).status_code == 404
    r = await client.get("/api/v1/public/commitments/" + "0" * 64 + "/files")
    assert r.status_code == 404
    r = await client.get("/api/v1/public/commitments/xyz/files")
    assert r.status_code == 422
    assert (await client.get("/api/v1/public/draws?limit=0")).status_code == 422
    assert (await client.get("/api/v1/public/draws/abc")).status_code == 422
