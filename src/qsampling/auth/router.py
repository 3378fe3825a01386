from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from qsampling.auth import service
from qsampling.auth.schemas import Me, TokenRequest, TokenResponse
from qsampling.context import Actor
from qsampling.deps import Session, SettingsDep, _bearer, require
from qsampling.errors import NotAuthenticated
from qsampling.models.auth import ROLES
from qsampling.responses import error_body, errors_for

router = APIRouter(prefix="/api/v1/auth", tags=["auth 认证"])

AnyRole = Annotated[Actor, Depends(require(*ROLES))]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post(
    "/token",
    response_model=TokenResponse,
    responses=errors_for(401, 422, 429),
    summary="Sign in: username + password → bearer token / 登录获取令牌",
)
async def token(
    body: TokenRequest, request: Request, session: Session, settings: SettingsDep
) -> TokenResponse | JSONResponse:
    """Exchange credentials for an opaque bearer token (stored server-side only as a hash).

    Failed sign-ins are throttled per username and per client address
    (default 10 failures in 15 minutes → 429 with `Retry-After`)."""
    result = await service.issue_token(
        session,
        username=body.username,
        password=body.password,
        client_addr=client_address(request),
        ttl=timedelta(hours=settings.token_ttl_hours),
        max_failures=settings.login_max_failures,
        window=timedelta(minutes=settings.login_window_minutes),
    )
    if result is None:
        # returned (not raised) so the failed attempt commits and counts for the throttle
        err = NotAuthenticated(
            "Wrong username or password. 用户名或密码错误。", code="InvalidCredentials"
        )
        return JSONResponse(error_body(err), status_code=401)
    tok, expires, user = result
    return TokenResponse(
        access_token=tok, expires_at=expires, role=user.role, username=user.username
    )


@router.post(
    "/logout",
    status_code=204,
    responses=errors_for(401),
    summary="Revoke the current token / 注销令牌",
)
async def logout(request: Request, session: Session, actor: AnyRole) -> None:
    creds = await _bearer(request)
    assert creds is not None  # the role dependency already demanded it
    await service.revoke_token(session, token=creds.credentials, actor=actor)


@router.get("/me", response_model=Me, responses=errors_for(401), summary="Who am I / 当前用户")
async def me(actor: AnyRole) -> Me:
    return Me(username=actor.username, role=actor.role, inspector_id=actor.inspector_id)


__all__ = ["router", "require"]
