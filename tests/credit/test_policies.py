"""Versioned credit policies: the shipped default, publication, validation, versions on scores."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from qsampling.context import cli_actor
from qsampling.core.credit_rules import default_policy, policy_to_dict
from qsampling.credit import service
from qsampling.db import REPO_ROOT
from tests.credit.conftest import D, make_enterprises


def _body(**changes: Any) -> dict[str, Any]:
    d = policy_to_dict(default_policy())
    d.pop("version")
    d.update(changes)
    return d


def test_migration_seeds_the_shipped_default() -> None:
    path = Path(REPO_ROOT) / "alembic" / "versions" / "2026-11-22_credit_and_lists.py"
    spec = importlib.util.spec_from_file_location("credit_migration", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.DEFAULT_POLICY_V1 == policy_to_dict(default_policy())


async def test_default_policy_is_active_version_1(client, login) -> None:
    r = await client.get("/api/v1/credit/policies", headers=await login("analyst"))
    assert r.status_code == 200
    (p,) = r.json()
    assert p["version"] == 1 and p["active"] is True
    assert p["body"]["class_a_min"] == 90.0 and p["body"]["weights"]["refusal"] == -20.0


async def test_admin_publishes_a_new_version(client, login, enterprises, sessionmaker) -> None:
    admin = await login("admin")
    r = await client.post(
        "/api/v1/credit/policies",
        json={"policy": _body(class_b_min=80.0), "note": "B 类门槛提高到 80 分"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 2 and r.json()["active"] is True
    listed = (await client.get("/api/v1/credit/policies", headers=admin)).json()
    assert [(p["version"], p["active"]) for p in listed] == [(1, False), (2, True)]
    # a new enterprise (80 points) is still B under v2 (B ≥ 80), and says which version
    (u,) = await enterprises(1)
    async with sessionmaker() as s:
        await service.recompute_all(s, actor=cli_actor(), as_of=D("2026-06-30"))
        await s.commit()
    body = (await client.get(f"/api/v1/enterprises/{u}/credit", headers=admin)).json()
    assert body["policy_version"] == 2 and body["credit_class"] == "B"
    assert "评价规则版本2" in body["explanation"]


async def test_nonsense_policies_are_rejected_with_every_problem(client, login) -> None:
    admin = await login("admin")
    r = await client.post(
        "/api/v1/credit/policies",
        json={"policy": _body(class_a_min=70.0, half_life_days=-5.0)},
        headers=admin,
    )
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "InvalidPolicy"
    msgs = " | ".join(e["msg"] for e in body["errors"])
    assert "class_a_min" in msgs and "half-life" in msgs
    assert any(e["loc"][-1] == "half_life_days" for e in body["errors"])
    # wrong signs and unknown kinds in the weights
    weights = _body()["weights"]
    weights["refusal"] = 20.0
    weights["bribery"] = -1.0
    r = await client.post(
        "/api/v1/credit/policies", json={"policy": _body(weights=weights)}, headers=admin
    )
    assert r.status_code == 422
    locs = {".".join(e["loc"][1:]) for e in r.json()["errors"]}
    assert {"weights.refusal", "weights.bribery"} <= locs
    # malformed bodies are 422 too, never 500
    for bad in ({"policy": {"base_score": "x"}}, {"policy": _body(extra=1)}, {}):
        r = await client.post("/api/v1/credit/policies", json=bad, headers=admin)
        assert r.status_code == 422, bad
    # nothing was published
    listed = (await client.get("/api/v1/credit/policies", headers=admin)).json()
    assert [p["version"] for p in listed] == [1]


async def test_only_admin_publishes(client, login) -> None:
    r = await client.post(
        "/api/v1/credit/policies", json={"policy": _body()}, headers=await login("supervisor")
    )
    assert r.status_code == 403


async def test_incremental_scores_record_the_version(session) -> None:
    (u,) = await make_enterprises(session, 1, seed=21)
    await service.publish_policy(session, body=_body(base_score=92.0), note=None, actor=cli_actor())
    ch = await service.rescore(session, uscc=u, as_of=D("2026-06-30"))
    assert ch.policy_version == 2 and ch.credit_class == "A" and ch.score == 92.0
