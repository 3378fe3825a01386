"""Web-layer dependencies shared by the routers: the session, the principal, role checks.

Every route declares who may call it with ``Depends(require(...))`` (or is listed in
``app.PUBLIC_PATHS``); a test walks all routes to enforce it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from asyncpg import exceptions as asyncpg_errors
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.auth import service as auth_service
from qsampling.config import Settings
from qsampling.context import Actor
from qsampling.errors import Forbidden, NotAuthenticated, causes

_bearer = HTTPBearer(auto_error=False, description="Token from POST /api/v1/auth/token")


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, committed once on success, rolled back on any error."""
    sm = request.app.state.sessionmaker
    async with sm() as session:
        try:
            yield session
            await session.commit()
        except BaseException as exc:
            if session.in_transaction() and connection_suspect(exc):
                # the hot paths talk to asyncpg directly, beside SQLAlchemy: a connection
                # that failed there (server restarted, an operation cut off) must not go
                # back to the pool looking healthy
                with contextlib.suppress(Exception):
                    await (await session.connection()).invalidate()
            await session.rollback()
            raise


def connection_suspect(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) says the database connection itself failed."""
    for e in causes(exc):
        if isinstance(
            e,
            asyncpg_errors.InterfaceError
            | asyncpg_errors.InternalClientError
            | asyncpg_errors.PostgresConnectionError
            | asyncpg_errors.OperatorInterventionError
            | ConnectionError
            | TimeoutError,
        ):
            return True
        if isinstance(e, DBAPIError) and e.connection_invalidated:
            return True
    return False


# scope="function": commit happens before the response is sent, so a 2xx means committed
Session = Annotated[AsyncSession, Depends(get_session, scope="function")]


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_actor(
    session: Session,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    if creds is None or not creds.credentials:
        raise NotAuthenticated(
            "Sign in first: send `Authorization: Bearer <token>`. 请先登录。",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return await auth_service.resolve_actor(session, creds.credentials)


def require(*roles: str) -> Callable[..., Coroutine[Any, Any, Actor]]:
    """Dependency factory: the signed-in actor, who must hold one of ``roles``."""
    allowed = frozenset(roles)

    async def _check(actor: Annotated[Actor, Depends(get_actor)]) -> Actor:
        if actor.role not in allowed:
            raise Forbidden(
                f"Role {actor.role!r} may not do this; allowed: {', '.join(sorted(allowed))}. "
                "无权执行此操作。"
            )
        return actor

    _check.qsampling_roles = allowed  # type: ignore[attr-defined]
    return _check


ALL_STAFF = ("admin", "supervisor", "inspector", "analyst")
WRITERS = ("admin", "supervisor")
ANALYSTS = ("admin", "supervisor", "analyst")

AnyStaff = Annotated[Actor, Depends(require(*ALL_STAFF))]
Writer = Annotated[Actor, Depends(require(*WRITERS))]
Admin = Annotated[Actor, Depends(require("admin"))]
Analyst = Annotated[Actor, Depends(require(*ANALYSTS))]
