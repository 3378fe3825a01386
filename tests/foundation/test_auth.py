from __future__ import annotations

import httpx
import pytest

from tests.conftest import PASSWORD


async def test_token_login_me_logout(client: httpx.AsyncClient, login) -> None:
    headers = await login("analyst", username="ana")
    r = await client.get("/api/v1/auth/me", headers=headers)
    assert r.status_code == 200
    assert r.json()["username"] == "ana"
    assert r.json()["role"] == "analyst"
    r = await client.post("/api/v1/auth/logout", headers=headers)
    assert r.status_code == 204
    r = await client.get("/api/v1/auth/me", headers=headers)
    assert r.status_code == 401
    assert r.json()["error"] == "TokenExpired"


async def test_wrong_password_is_401_with_code(client: httpx.AsyncClient, login) -> None:
    await login("analyst", username="bob")
    r = await client.post("/api/v1/auth/token", json={"username": "bob", "password": "nope"})
    assert r.status_code == 401
    assert r.json() == {
        "error": "InvalidCredentials",
        "detail": "Wrong username or password. 用户名或密码错误。",
    }
    r = await client.post("/api/v1/auth/token", json={"username": "ghost", "password": "x"})
    assert r.status_code == 401


async def test_failed_logins_are_throttled_with_retry_after(
    client: httpx.AsyncClient, login
) -> None:
    await login("analyst", username="carol")
    for _ in range(10):
        r = await client.post("/api/v1/auth/token", json={"username": "carol", "password": "x"})
        assert r.status_code == 401
    # even the right password is refused while throttled
    r = await client.post("/api/v1/auth/token", json={"username": "carol", "password": PASSWORD})
    assert r.status_code == 429
    assert r.json()["error"] == "LoginThrottled"
    assert 1 <= int(r.headers["Retry-After"]) <= 15 * 60


async def test_throttle_per_client_address(client: httpx.AsyncClient) -> None:
    # ten different usernames from the same address also trip the limit
    for i in range(10):
        await client.post("/api/v1/auth/token", json={"username": f"u{i}", "password": "x"})
    r = await client.post("/api/v1/auth/token", json={"username": "someone", "password": "x"})
    assert r.status_code == 429


async def test_malformed_bearer_and_missing_token(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/auth/me")
    assert r.status_code == 401
    assert r.json()["error"] == "NotAuthenticated"
    r = await client.get("/api/v1/auth/me", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    assert r.json()["error"] == "InvalidToken"


async def test_passwords_are_argon2id_and_tokens_hashed(client, login, session) -> None:
    from sqlalchemy import text

    headers = await login("supervisor", username="dave")
    h = await session.scalar(text("SELECT password_hash FROM users WHERE username='dave'"))
    assert h.startswith("$argon2id$")
    token = headers["Authorization"].split()[1]
    stored = (await session.execute(text("SELECT token_sha256 FROM api_tokens"))).scalars().all()
    assert token not in stored
    import hashlib

    assert hashlib.sha256(token.encode()).hexdigest() in stored


@pytest.mark.parametrize("body", [{}, {"username": "x"}, {"username": "", "password": "y"}])
async def test_token_request_validation(client: httpx.AsyncClient, body) -> None:
    r = await client.post("/api/v1/auth/token", json=body)
    assert r.status_code == 422
    assert r.json()["error"] == "InvalidInput"
    assert r.json()["errors"][0]["loc"][0] == "body"
