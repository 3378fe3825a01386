from __future__ import annotations

import httpx

from qsampling.app import create_app
from qsampling.config import Settings


async def test_request_id_on_every_response(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok", "detail": None}
    assert len(r.headers["x-request-id"]) == 32
    r = await client.get("/nope", headers={"X-Request-ID": "trace-123"})
    assert r.status_code == 404
    assert r.headers["x-request-id"] == "trace-123"
    assert r.json()["error"] == "NotFound"
    # a hostile request id is replaced, not echoed
    r = await client.get("/healthz", headers={"X-Request-ID": "<script>alert(1)</script>"})
    assert "<" not in r.headers["x-request-id"]


async def test_readyz_ok_at_head(client: httpx.AsyncClient) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 200, r.text


async def test_readyz_503_when_database_unreachable(test_settings: Settings) -> None:
    from qsampling.db import create_engine, make_sessionmaker

    eng = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    app = create_app(test_settings, sessionmaker=make_sessionmaker(eng))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/readyz")
        assert r.status_code == 503
        assert r.json()["status"] == "unavailable"
        # a request needing the database answers 503, never 500
        r = await c.post("/api/v1/auth/token", json={"username": "a", "password": "b"})
        assert r.status_code == 503
        assert r.json()["error"] == "DatabaseUnavailable"
    await eng.dispose()


async def test_body_over_limit_is_413(test_settings: Settings, sessionmaker) -> None:
    small = test_settings.model_copy(update={"max_body_bytes": 1000})
    app = create_app(small, sessionmaker=sessionmaker)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.post(
            "/api/v1/auth/token",
            content=b"{" + b" " * 5000 + b"}",
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 413
        assert r.json()["error"] == "PayloadTooLarge"
        assert "1000 bytes" in r.json()["detail"]


async def test_malformed_json_is_422_with_field_path(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/auth/token", content=b'{"username": ', headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert r.json()["error"] == "InvalidInput"
    r = await client.post(
        "/api/v1/auth/token",
        content=b"\xff\xfe\x00garbage",
        headers={"content-type": "application/json"},
    )
    assert r.status_code in (400, 422)
    r = await client.post("/api/v1/auth/token", json={"username": 5, "password": ["x"]})
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"][:2] == ["body", "username"]


async def test_security_headers(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"


async def test_chunked_body_over_limit_is_413(test_settings: Settings, sessionmaker) -> None:
    small = test_settings.model_copy(update={"max_body_bytes": 1000})
    app = create_app(small, sessionmaker=sessionmaker)

    async def chunks():
        for _ in range(10):
            yield b" " * 500

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.post(
            "/api/v1/auth/token", content=chunks(), headers={"content-type": "application/json"}
        )
        assert r.status_code == 413
        assert r.json()["error"] == "PayloadTooLarge"


def test_a_connection_that_failed_beside_sqlalchemy_is_not_returned_to_the_pool() -> None:
    """Errors raised by asyncpg on the hot paths (which talk to the driver directly) mark the
    connection as suspect, so the request's session invalidates it instead of pooling it."""
    from asyncpg import exceptions as pg_errors

    from qsampling.deps import connection_suspect

    cut_off = pg_errors.InternalClientError(
        "cannot switch to state 12; another operation (2) is in progress"
    )
    assert connection_suspect(cut_off)
    assert connection_suspect(pg_errors.ConnectionDoesNotExistError("connection was closed"))
    assert connection_suspect(pg_errors.AdminShutdownError("terminating connection"))
    wrapped = RuntimeError("while submitting")
    wrapped.__cause__ = cut_off
    assert connection_suspect(wrapped)
    # the client's mistakes and constraint violations leave the connection healthy
    assert not connection_suspect(pg_errors.UniqueViolationError("duplicate key"))
    assert not connection_suspect(ValueError("bad input"))
