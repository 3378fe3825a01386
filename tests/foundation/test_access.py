"""Walk every route of the app: anonymous → 401, a wrong role → 403.

A new route without a declared role fails here unless it is on the public allow-list.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi.routing import APIRoute

try:  # FastAPI ≥ 0.150 keeps included routers lazily; this yields the effective routes
    from fastapi.routing import _iter_included_route_candidates as _effective
except ImportError:  # pragma: no cover - older FastAPI exposes them in app.routes

    def _effective(routes: Any) -> Any:  # type: ignore[misc]
        return iter(routes)


from qsampling.app import PUBLIC_PATHS, PUBLIC_PREFIXES
from qsampling.models.auth import ROLES


def _roles_of(route: APIRoute) -> frozenset[str] | None:
    found: list[frozenset[str]] = []

    def walk(dep: Any) -> None:
        roles = getattr(dep.call, "qsampling_roles", None)
        if roles is not None:
            found.append(roles)
        for sub in dep.dependencies:
            walk(sub)

    walk(route.dependant)
    if not found:
        return None
    allowed = found[0]
    for f in found[1:]:
        allowed = allowed & f
    return allowed


def _is_public(path: str) -> bool:
    return (
        path in PUBLIC_PATHS
        or path.startswith(PUBLIC_PREFIXES)
        or path == "/"
        or not path.startswith("/api/")
    )


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def _api_routes(app: Any) -> list[tuple[APIRoute, str]]:
    out = []
    for r in _effective(app.routes):
        if isinstance(r, APIRoute):
            for m in sorted(r.methods - {"HEAD", "OPTIONS"}):
                out.append((r, m))
    return out


async def test_every_route_declares_roles_or_is_public(app: Any) -> None:
    undeclared = [
        f"{m} {r.path}"
        for r, m in _api_routes(app)
        if _roles_of(r) is None and not _is_public(r.path)
    ]
    assert undeclared == [], f"routes without a role: {undeclared}"
    # public API routes must not carry a role requirement by mistake either
    assert len(_api_routes(app)) > 3


async def test_anonymous_gets_401_everywhere_not_public(
    app: Any, client: httpx.AsyncClient
) -> None:
    checked = 0
    for route, method in _api_routes(app):
        if _is_public(route.path):
            continue
        r = await client.request(method, _fill(route.path))
        assert r.status_code == 401, f"{method} {route.path}: {r.status_code} {r.text}"
        assert r.json()["error"] in {"NotAuthenticated"}
        checked += 1
    assert checked > 0


async def test_wrong_role_gets_403(app: Any, client: httpx.AsyncClient, login) -> None:
    tokens = {role: await login(role) for role in ROLES}
    checked = 0
    for route, method in _api_routes(app):
        allowed = _roles_of(route)
        if allowed is None:
            continue
        for role in ROLES:
            if role in allowed:
                continue
            r = await client.request(method, _fill(route.path), headers=tokens[role])
            assert r.status_code == 403, f"{role} {method} {route.path}: {r.status_code}"
            assert r.json()["error"] == "Forbidden"
            checked += 1
    assert checked > 0
