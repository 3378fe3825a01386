"""POST /api/v1/penalties: ledger, rescore, serious-list proposal, audit, bad input."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text

from qsampling.credit import service


def _penalty(uscc: str, **changes: Any) -> dict[str, Any]:
    body = {
        "uscc": uscc,
        "decision_number": "榕鼓市监处罚〔2026〕101号",
        "decision_date": service.china_today().isoformat(),
        "legal_basis": "《中华人民共和国产品质量法》第四十九条",
        "severity": "general",
        "amount": "30000.00",
        "domain": "product_quality",
        "authority": "福州市鼓楼区市场监督管理局",
        "summary": "生产不符合保障人体健康和人身安全的国家标准的儿童玩具",
    }
    body.update(changes)
    return body


async def test_penalty_enters_the_ledger_and_moves_the_class(client, login, enterprises) -> None:
    (u,) = await enterprises(1)
    sup = await login("supervisor")
    r = await client.post("/api/v1/penalties", json=_penalty(u), headers=sup)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["decision_number"] == "榕鼓市监处罚〔2026〕101号"
    assert body["amount"] == "30000.00"
    assert body["serious_proposal_ids"] == []  # a general penalty proposes nothing
    assert body["credit_class"] == "C"  # 80 − 8 = 72 < 75
    view = (await client.get(f"/api/v1/enterprises/{u}/credit", headers=sup)).json()
    (ev,) = [e for e in view["events"] if e["kind"] == "penalty"]
    assert ev["ref"] == "榕鼓市监处罚〔2026〕101号" and ev["points"] == -8.0
    listed = (await client.get(f"/api/v1/penalties?uscc={u}", headers=sup)).json()
    assert [p["id"] for p in listed["items"]] == [body["id"]]


async def test_serious_quality_penalty_proposes_a_listing(
    client, login, enterprises, session
) -> None:
    (u,) = await enterprises(1)
    sup = await login("supervisor")
    r = await client.post("/api/v1/penalties", json=_penalty(u, severity="serious"), headers=sup)
    assert r.status_code == 201
    (pid,) = r.json()["serious_proposal_ids"]
    assert r.json()["credit_class"] == "C"  # 80 − 20 = 60
    entry = (await client.get(f"/api/v1/credit/serious-list/{pid}", headers=sup)).json()
    assert entry["status"] == "proposed" and entry["rule_id"] == "SD-QUALITY-PENALTY-SERIOUS"
    assert "榕鼓市监处罚〔2026〕101号" in entry["proposal_reason"]
    # a serious penalty outside product quality proposes nothing
    r = await client.post(
        "/api/v1/penalties",
        json=_penalty(
            u, severity="serious", domain="pricing", decision_number="榕鼓价处〔2026〕1号"
        ),
        headers=sup,
    )
    assert r.json()["serious_proposal_ids"] == []
    actions = (
        (
            await session.execute(
                text(
                    "SELECT action FROM audit_log "
                    "WHERE action IN ('penalty.create','serious.propose')"
                )
            )
        )
        .scalars()
        .all()
    )
    assert sorted(actions) == ["penalty.create", "penalty.create", "serious.propose"]


async def test_bad_penalties(client, login, enterprises) -> None:
    (u,) = await enterprises(1)
    sup = await login("supervisor")
    assert (
        await client.post("/api/v1/penalties", json=_penalty(u), headers=sup)
    ).status_code == 201
    r = await client.post("/api/v1/penalties", json=_penalty(u), headers=sup)
    assert r.status_code == 409 and r.json()["error"] == "DuplicateDecision"
    r = await client.post(
        "/api/v1/penalties", json=_penalty("91350102MA2Y0000X1", decision_number="x-2"), headers=sup
    )
    assert r.status_code == 404 and r.json()["error"] == "EnterpriseNotFound"
    tomorrow = (service.china_today() + timedelta(days=1)).isoformat()
    r = await client.post(
        "/api/v1/penalties",
        json=_penalty(u, decision_date=tomorrow, decision_number="x-3"),
        headers=sup,
    )
    assert r.status_code == 422 and r.json()["error"] == "DateInFuture"
    for bad in (
        {"severity": "huge"},
        {"amount": "-1"},
        {"uscc": "123"},
        {"legal_basis": ""},
        {"decision_date": "2026-13-40"},
        {"amount": "1e400"},
    ):
        r = await client.post(
            "/api/v1/penalties", json={**_penalty(u, decision_number="x-9"), **bad}, headers=sup
        )
        assert r.status_code == 422, (bad, r.text)
    r = await client.post("/api/v1/penalties", json=_penalty(u), headers=await login("analyst"))
    assert r.status_code == 403
