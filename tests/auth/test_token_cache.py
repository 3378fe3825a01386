"""Signed-in callers are cached for a few seconds; a logout still ends the token at once."""

from __future__ import annotations

import httpx

from qsampling.auth import service


async def test_logout_revokes_a_cached_token_at_once(client: httpx.AsyncClient, login) -> None:
    headers = await login("supervisor")
    for _ in range(2):  # the second call is answered from the cache
        r = await client.get("/api/v1/auth/me", headers=headers)
        assert r.status_code == 200, r.text
    r = await client.post("/api/v1/auth/logout", headers=headers)
    assert r.status_code == 204
    r = await client.get("/api/v1/auth/me", headers=headers)
    assert r.status_code == 401


async def test_revocation_elsewhere_is_honoured_within_the_ttl(
    client: httpx.AsyncClient, login, monkeypatch, session
) -> None:
    import time

    from sqlalchemy import text

    headers = await login("supervisor")
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 200
    # revoked behind this worker's back (another worker's logout, an administrator in SQL)
    await session.execute(text("UPDATE api_tokens SET revoked_at = now()"))
    await session.flush()
    later = time.monotonic() + service.TOKEN_CACHE_SECONDS + 0.1
    monkeypatch.setattr(service, "_clock", lambda: later)
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 401
