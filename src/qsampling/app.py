"""create_app(): lifespan, middleware, routers, error handlers, health, portal."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from asyncpg import exceptions as asyncpg_errors
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qsampling import __version__
from qsampling.config import Settings, get_settings
from qsampling.context import reset_request_id, set_request_id
from qsampling.db import create_engine, make_sessionmaker, resolve_database_url, schema_status
from qsampling.errors import QSamplingError, causes
from qsampling.responses import ERROR_DESCRIPTIONS, error_body

log = logging.getLogger("qsampling")

# Routes that need no token (an explicit allow-list; a test enforces that every other route
# declares its roles).
PUBLIC_PATHS: frozenset[str] = frozenset(
    {
        "/healthz",
        "/readyz",
        "/api/v1/auth/token",
    }
)
PUBLIC_PREFIXES: tuple[str, ...] = ("/api/v1/public/",)

_RID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class SchemaBehind(RuntimeError):
    pass


class RequestContextMiddleware:
    """X-Request-ID on every response (echoes a sane incoming one) and security headers."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = 10 * 1024 * 1024) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self._http(scope, receive, send)

    def _too_large(self) -> dict[str, str]:
        return {
            "error": "PayloadTooLarge",
            "detail": f"The request body is larger than the limit of {self.max_body_bytes} "
            "bytes. 请求体过大。",
        }

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        incoming = None
        declared_length = -1
        for k, v in scope.get("headers", ()):
            if k == b"x-request-id":
                with contextlib.suppress(UnicodeDecodeError):
                    incoming = v.decode("ascii")
            elif k == b"content-length":
                with contextlib.suppress(ValueError):
                    declared_length = int(v)
        rid = incoming if incoming and _RID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        token = set_request_id(rid)

        received = 0
        exceeded = False
        replaced = False

        async def _receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    exceeded = True
                    raise _BodyTooLarge()
            return message

        async def _send(message: Message) -> None:
            nonlocal replaced
            if exceeded:
                # the body was cut off mid-stream: whatever the app answers, say 413
                if message["type"] == "http.response.start" and not replaced:
                    replaced = True
                    body = json.dumps(self._too_large()).encode()
                    await _send_raw(
                        {
                            "type": "http.response.start",
                            "status": 413,
                            "headers": [
                                (b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                return
            await _send_raw(message)

        async def _send_raw(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"x-frame-options", b"DENY"))
                headers.append((b"referrer-policy", b"same-origin"))
                message["headers"] = headers
            await send(message)

        try:
            if declared_length > self.max_body_bytes:
                # answered before reading a byte of the body; chunked bodies are cut off by
                # FastAPI's max_body_size with the same status
                resp = JSONResponse(self._too_large(), status_code=413)
                await resp(scope, receive, _send)
                return
            await self.app(scope, _receive, _send)
        except _BodyTooLarge:
            if not replaced:
                resp = JSONResponse(self._too_large(), status_code=413)
                exceeded_send = _send_raw
                await resp(scope, receive, exceeded_send)
        finally:
            reset_request_id(token)


class _BodyTooLarge(Exception):
    pass


def _one_is_db_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeout, ConnectionError, OSError)):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return type(exc).__name__ in {
        "CannotConnectNowError",
        "ConnectionDoesNotExistError",
        "InterfaceError",
        "InternalClientError",
        "AdminShutdownError",
        "ConnectionFailureError",
        "TooManyConnectionsError",
        "CrashShutdownError",
        "ServerShutdownError",
    }


def _is_db_unavailable(exc: BaseException) -> bool:
    """True when the database is away: the cause may sit several wrappers deep
    (DBAPIError → the adapter's Error → asyncpg's CannotConnectNowError)."""
    return any(_one_is_db_unavailable(e) for e in causes(exc))


def _invalid_value(exc: BaseException) -> str | None:
    """The database's complaint when ``exc`` is a data error (SQLSTATE class 22: out of
    range, NUL in text, invalid encoding …) or asyncpg refusing to encode an argument."""
    for e in causes(exc):
        if isinstance(e, asyncpg_errors.DataError) and not isinstance(
            e, asyncpg_errors.DivisionByZeroError
        ):
            return str(e).split("\n")[0][:200]
    return None


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(QSamplingError)
    async def _qs(request: Request, exc: QSamplingError) -> JSONResponse:
        return _json(exc.status, error_body(exc), exc.headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = []
        for e in exc.errors():
            loc = [str(p) for p in e.get("loc", ())]
            errs.append({"loc": loc, "msg": str(e.get("msg", "")), "type": e.get("type", "")})
        first = errs[0] if errs else {"loc": [], "msg": "invalid"}
        field = ".".join(first["loc"][1:] if len(first["loc"]) > 1 else first["loc"])
        detail = f"Invalid input at {field or 'body'}: {first['msg']}. 输入无效。"
        return _json(422, {"error": "InvalidInput", "detail": detail, "errors": errs})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {
            400: "BadRequest",
            401: "NotAuthenticated",
            403: "Forbidden",
            404: "NotFound",
            405: "MethodNotAllowed",
            413: "PayloadTooLarge",
            415: "UnsupportedMediaType",
        }
        code = codes.get(exc.status_code, f"HTTP{exc.status_code}")
        detail = str(exc.detail)
        if exc.status_code == 400 and detail == "There was an error parsing the body":
            detail = (
                "The request body could not be parsed (not valid JSON, not UTF-8, or a broken "
                "form). 请求体无法解析。"
            )
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"No such resource: {request.url.path}. 资源不存在。"
        if exc.status_code == 413:
            limit = request.app.state.settings.max_body_bytes
            detail = f"The request body is larger than the limit of {limit} bytes. 请求体过大。"
        return _json(
            exc.status_code,
            {"error": code, "detail": detail},
            dict(exc.headers) if exc.headers else None,
        )

    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        bad_value = _invalid_value(exc)
        if bad_value is not None:
            # a value the client sent that PostgreSQL cannot take (a number beyond 64 bits,
            # a NUL character in text …): the client's mistake, not ours
            log.warning("value refused by the database: %s", bad_value)
            return _json(
                422,
                {
                    "error": "InvalidValue",
                    "detail": "A value in the request is out of range or is not valid text "
                    f"({bad_value}). 输入值超出范围或含有无效字符。",
                },
            )
        if _is_db_unavailable(exc):
            log.warning("database unavailable: %s", exc)
            return _json(
                503,
                {
                    "error": "DatabaseUnavailable",
                    "detail": "The database is not reachable right now; retry "
                    "shortly. 数据库暂不可用，请稍后重试。",
                },
                {"Retry-After": "2"},
            )
        rid = getattr(request.state, "request_id", None) or request.scope.get("state", {}).get(
            "request_id"
        )
        log.exception("unhandled error (request %s)", rid)
        return _json(
            500,
            {
                "error": "InternalError",
                "detail": f"An internal error occurred (request {rid}). 服务器内部错误。",
            },
        )

    # Registered per class (not for bare Exception) so that Starlette's ExceptionMiddleware
    # answers them and nothing is re-raised to the server; anything else is a bug → 500.
    for cls in (
        SQLAlchemyError,
        OSError,
        asyncpg_errors.PostgresError,
        asyncpg_errors.InterfaceError,
    ):
        app.add_exception_handler(cls, _unexpected)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)  # type: ignore[arg-type]


async def _sealer(sm: async_sessionmaker[AsyncSession], interval: float) -> None:
    from qsampling.audit.service import seal

    while True:
        await asyncio.sleep(interval)
        try:
            async with sm() as s:
                await seal(s)
                await s.commit()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - keep sealing after a database outage
            log.debug("audit sealer: %s", exc)


async def check_schema(engine: AsyncEngine) -> None:
    current, head = await schema_status(engine)
    if current != head:
        raise SchemaBehind(
            f"database schema is at {current or 'empty'} but this version needs {head}: "
            "run `qsampling db upgrade`"
        )


def create_app(
    settings: Settings | None = None,
    *,
    sessionmaker: async_sessionmaker[AsyncSession] | None = None,
    engine: AsyncEngine | None = None,
    check_migrations: bool = True,
) -> FastAPI:
    """Build the application. Tests pass their own sessionmaker (bound to a rolled-back
    transaction); the server builds an engine from the settings."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_engine = None
        if app.state.sessionmaker is None:
            eng = engine or create_engine(
                resolve_database_url(settings),
                pool_size=settings.pool_size,
                max_overflow=settings.pool_max_overflow,
            )
            own_engine = eng if engine is None else None
            if check_migrations:
                try:
                    await check_schema(eng)
                except SchemaBehind:
                    raise
                except Exception as exc:
                    # a worker (re)started while the database is away must not take the
                    # server down: it serves 503 and /readyz says why until the database is back
                    if not _is_db_unavailable(exc):
                        raise
                    log.warning("database unavailable at start-up: %s", exc)
            app.state.engine = eng
            app.state.sessionmaker = make_sessionmaker(eng)
        task = None
        if settings.audit_seal_interval_seconds > 0:
            task = asyncio.create_task(
                _sealer(app.state.sessionmaker, settings.audit_seal_interval_seconds)
            )
        try:
            yield
        finally:
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if own_engine is not None:
                await own_engine.dispose()

    app = FastAPI(
        title="qsampling 双随机、一公开",
        version=__version__,
        description=(
            "Verifiable random supervision draws, inspection results, pass-rate statistics, "
            "enterprise credit and public disclosure for market-supervision bureaus.\n\n"
            "市场监管“双随机、一公开”抽查系统：可验证随机抽取、检查结果、合格率统计、"
            "企业信用分类与信息公示。\n\n"
            'Errors are JSON `{"error": code, "detail": sentence}`. Sign in with '
            "`POST /api/v1/auth/token`; public endpoints under `/api/v1/public/` need no token."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.sessionmaker = sessionmaker
    app.state.engine = engine
    from qsampling.disclosure.ratelimit import PublicRateLimitMiddleware

    # the public API and portal are rate-limited per client address (inner), every response
    # gets a request id and the security headers (outer)
    app.add_middleware(PublicRateLimitMiddleware)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    install_error_handlers(app)

    from qsampling.health import router as health_router

    app.include_router(health_router)
    for r in _routers():
        app.include_router(r)
    _document_body_errors(app)
    return app


def _document_body_errors(app: FastAPI) -> None:
    """Every operation that takes a body may answer 400 (the body cannot be parsed: not
    JSON, not UTF-8, a broken multipart form) and 413 (over the size limit): say so in the
    OpenAPI document instead of repeating it on every route."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = original()
        ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        for item in doc.get("paths", {}).values():
            for op in item.values():
                if isinstance(op, dict) and "requestBody" in op:
                    for code in (400, 413):
                        op["responses"].setdefault(
                            str(code), {"description": ERROR_DESCRIPTIONS[code], "content": ref}
                        )
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def _routers() -> list[Any]:
    """Every domain router, in the order they appear in the OpenAPI document."""
    import importlib

    out = []
    for mod in ROUTER_MODULES:
        out.append(importlib.import_module(mod).router)
    return out


ROUTER_MODULES: list[str] = [
    "qsampling.auth.router",
    "qsampling.directory.router",
    "qsampling.draws.router",
    "qsampling.inspections.router",
    "qsampling.stats.router",
    "qsampling.credit.router",
    "qsampling.disclosure.router",
    "qsampling.audit.router",
]
