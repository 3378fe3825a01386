from __future__ import annotations

from pathlib import Path

from qsampling.openapi import build_openapi, render

COMMITTED = Path(__file__).resolve().parents[2] / "api" / "openapi.json"


def test_committed_openapi_matches_the_app() -> None:
    live = render(build_openapi())
    committed = COMMITTED.read_text(encoding="utf-8") if COMMITTED.exists() else ""
    assert committed == live, (
        "api/openapi.json differs from the app's schema; regenerate it with "
        "`make openapi` (qsampling openapi --out api/openapi.json) and commit it"
    )


async def test_served_openapi_is_the_same_document(client) -> None:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    assert r.json() == build_openapi()
