"""Schemathesis against the app's own OpenAPI: every documented operation, as every role.

The app runs in-process (schemathesis' ASGI client, which also runs the lifespan) over a
committed database of this module's own, cloned from the migrated test database. For each
operation, every identity is tried: the roles the route allows get generated requests
(valid ones and, where the schema allows negating them, invalid ones), every other role
and the anonymous caller get one request each (they must meet 401/403, never a 500).

- The short run (part of ``make test``) tries ``QSAMPLING_FUZZ_EXAMPLES`` (default 2)
  requests per operation and allowed role, derandomised so that CI sees the same cases.
- The long run (``make fuzz``, marked slow) loads a small demo province first, so lists
  and statistics serialise real rows, and tries ``QSAMPLING_FUZZ_EXAMPLES`` (default 60)
  random requests per operation and allowed role.

The check is schemathesis' ``not_a_server_error``: no answer may be a 5xx. Whether the
answers match the documented response schemas is reported by
``test_responses_match_the_documented_schemas`` (long run).
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from qsampling.config import Settings
from qsampling.models.auth import ROLES
from tests.conftest import TEMPLATE_DB, drop_database, recreate_database, with_db

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.generation import GenerationMode  # noqa: E402
from schemathesis.python import asgi as st_asgi  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

try:  # FastAPI ≥ 0.150 keeps included routers lazily; this yields the effective routes
    from fastapi.routing import _iter_included_route_candidates as _effective
except ImportError:  # pragma: no cover

    def _effective(routes: Any) -> Any:  # type: ignore[misc]
        return iter(routes)


PASSWORD = "hostile input 9 passphrase"
ANONYMOUS = "anonymous"
# signing out would revoke the shared token of the role; it gets a fresh token per call
LOGOUT = ("POST", "/api/v1/auth/logout")


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


def _build_app(database_url: str) -> Any:
    from qsampling.app import create_app

    return create_app(
        Settings(
            env="test",
            database_url=database_url,
            audit_seal_interval_seconds=0,
            # the per-address limit has its own tests; here it would only hide the handlers
            public_rate_limit_per_minute=10**7,
            login_max_failures=10**6,
            pool_size=4,
            pool_max_overflow=4,
        )
    )


def _operations() -> list[tuple[str, str, tuple[str, ...]]]:
    """(method, path, identities that may call it) for every documented operation."""
    app = _build_app("postgresql+asyncpg://nobody@127.0.0.1:1/none")  # never connected
    documented = app.openapi()["paths"]
    out = []
    for r in _effective(app.routes):
        if not isinstance(r, APIRoute) or r.path not in documented:
            continue
        roles = _roles_of(r)
        allowed = (ANONYMOUS, *ROLES) if roles is None else tuple(x for x in ROLES if x in roles)
        for m in sorted(r.methods - {"HEAD", "OPTIONS"}):
            if m.lower() in documented[r.path]:
                out.append((m, r.path, allowed))
    return out


OPERATIONS = _operations()


def _in_thread(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` (which may call asyncio.run) off the test loop."""
    box: dict[str, Any] = {}

    def _run() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001
            box["error"] = e

    t = threading.Thread(target=_run)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


async def _seed(url: str, *, demo_enterprises: int, tokens_per_role: int) -> dict[str, list[str]]:
    """Optionally the demo province; a user per role with bearer tokens minted directly
    (signing in hashes a password, which would dominate a short run)."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import text

    from qsampling.auth.service import create_user, token_digest
    from qsampling.context import cli_actor
    from qsampling.db import create_engine, make_sessionmaker

    eng = create_engine(url, pool_size=1, max_overflow=0)
    tokens: dict[str, list[str]] = {}
    try:
        sm = make_sessionmaker(eng)
        async with sm() as s:
            if demo_enterprises:
                from qsampling.demo import build_demo

                await build_demo(s, rng=random.Random(9), enterprises=demo_enterprises)
            expires = datetime.now(UTC) + timedelta(hours=6)
            for role in ROLES:
                user = await create_user(
                    s, username=f"fuzz-{role}", role=role, password=PASSWORD, actor=cli_actor()
                )
                tokens[role] = [secrets.token_urlsafe(32) for _ in range(tokens_per_role)]
                for tok in tokens[role]:
                    await s.execute(
                        text(
                            "INSERT INTO api_tokens (token_sha256, user_id, expires_at) "
                            "VALUES (:d, :u, :e)"
                        ),
                        {"d": token_digest(tok), "u": user.id, "e": expires},
                    )
            await s.commit()
    finally:
        await eng.dispose()
    return tokens


@dataclass
class FuzzEnv:
    app: Any
    client: Any
    schema: Any
    tokens: dict[str, list[str]] = field(default_factory=dict)

    def headers(self, identity: str, *, fresh: bool = False) -> dict[str, str]:
        if identity == ANONYMOUS:
            return {}
        pool = self.tokens[identity]
        # the first token stays valid for the whole run; sign-out uses the spare ones
        if fresh:
            tok = pool.pop() if len(pool) > 1 else "spent-no-spare-token-left"
        else:
            tok = pool[0]
        return {"Authorization": f"Bearer {tok}"}


def _env(server_url: str, *, demo_enterprises: int, spare_tokens: int) -> Iterator[FuzzEnv]:
    name = f"qs_fuzz_{uuid.uuid4().hex[:10]}"
    _in_thread(lambda: asyncio.run(recreate_database(server_url, name, template=TEMPLATE_DB)))
    try:
        url = with_db(server_url, name)
        tokens = _in_thread(
            lambda: asyncio.run(
                _seed(url, demo_enterprises=demo_enterprises, tokens_per_role=1 + spare_tokens)
            )
        )
        app = _build_app(url)
        with st_asgi.get_client(app) as client:  # runs the lifespan once
            schema = schemathesis.openapi.from_asgi("/openapi.json", app)
            yield FuzzEnv(app=app, client=client, schema=schema, tokens=tokens)
    finally:
        _in_thread(lambda: asyncio.run(drop_database(server_url, name)))


@pytest.fixture(scope="module")
def fuzz_short(server_url: str, database_url: str) -> Iterator[FuzzEnv]:
    yield from _env(server_url, demo_enterprises=0, spare_tokens=_examples(2) * 6)


@pytest.fixture(scope="module")
def fuzz_long(server_url: str, database_url: str) -> Iterator[FuzzEnv]:
    n = int(os.environ.get("QSAMPLING_FUZZ_DEMO_ENTERPRISES", "150"))
    yield from _env(server_url, demo_enterprises=n, spare_tokens=_examples(60) * 6)


def _strategy(op: Any) -> Any:
    """Valid requests, and invalid ones where the schema has something to negate."""
    strategies = [op.as_strategy(GenerationMode.POSITIVE)]
    try:
        strategies.append(op.as_strategy(GenerationMode.NEGATIVE))
    except Exception:  # noqa: BLE001 - nothing to negate (no parameters, no body)
        pass
    return st.one_of(*strategies)


def _fuzz(
    env: FuzzEnv,
    method: str,
    path: str,
    identity: str,
    *,
    examples: int,
    derandomize: bool,
    checks: list[Any],
) -> None:
    op = env.schema[path][method]
    fresh = (method, path) == LOGOUT

    @hsettings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=derandomize,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=_strategy(op))
    def run(case: Any) -> None:
        headers = env.headers(identity, fresh=fresh)
        # the generated Authorization header (if any) must not replace the identity's
        if case.headers:
            for k in list(case.headers):
                if k.lower() == "authorization":
                    del case.headers[k]
        response = case.call(session=env.client, headers=headers)
        case.validate_response(response, checks=checks)

    run()


def _examples(default: int) -> int:
    return int(os.environ.get("QSAMPLING_FUZZ_EXAMPLES", str(default)))


TOKEN = ("POST", "/api/v1/auth/token")

# Found by this fuzzing; fixed in the owning module, these marks go (strict: a fix shows).
# Operations with a known server error, pinned as strict xfails until fixed.
KNOWN_500: dict[tuple[str, str], str] = {}


def _identities(
    method: str, path: str, allowed: tuple[str, ...], many: int, few: int
) -> list[tuple[str, int]]:
    """(identity, examples): the callers the route serves get ``many``, others ``few``."""
    if (method, path) == TOKEN:  # signing in is what the anonymous caller does
        return [(ANONYMOUS, many)]
    main = {ANONYMOUS} if ANONYMOUS in allowed else set(allowed)
    return [(i, many if i in main else few) for i in (ANONYMOUS, *ROLES)]


def _params(strict: bool) -> list[Any]:
    out = []
    for op in OPERATIONS:
        reason = KNOWN_500.get((op[0], op[1]))
        marks = [pytest.mark.xfail(strict=strict, reason=reason)] if reason else []
        out.append(pytest.param(op, id=f"{op[0]} {op[1]}", marks=marks))
    return out


@pytest.mark.parametrize("op", _params(strict=True))
def test_no_server_error_short(fuzz_short: FuzzEnv, op: tuple[str, str, tuple[str, ...]]) -> None:
    method, path, allowed = op
    for identity, n in _identities(method, path, allowed, _examples(2), 1):
        _fuzz(
            fuzz_short,
            method,
            path,
            identity,
            examples=n,
            derandomize=True,
            checks=[not_a_server_error],
        )


@pytest.mark.slow
@pytest.mark.parametrize("op", _params(strict=False))
def test_no_server_error_long(fuzz_long: FuzzEnv, op: tuple[str, str, tuple[str, ...]]) -> None:
    method, path, allowed = op
    for identity, n in _identities(method, path, allowed, _examples(60), 3):
        _fuzz(
            fuzz_long,
            method,
            path,
            identity,
            examples=n,
            derandomize=False,
            checks=[not_a_server_error],
        )


@pytest.mark.slow
@pytest.mark.parametrize("op", _params(strict=False))
def test_responses_match_the_documented_schemas(
    fuzz_long: FuzzEnv, op: tuple[str, str, tuple[str, ...]]
) -> None:
    method, path, allowed = op
    callers = (ANONYMOUS,) if ANONYMOUS in allowed or (method, path) == TOKEN else allowed
    for identity in callers:
        _fuzz(
            fuzz_long,
            method,
            path,
            identity,
            examples=_examples(20),
            derandomize=False,
            checks=[
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
            ],
        )
