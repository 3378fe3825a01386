"""Users, passwords (argon2id), opaque bearer tokens and login throttling."""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.audit import service as audit
from qsampling.context import Actor
from qsampling.errors import Conflict, InvalidInput, NotAuthenticated, TooManyRequests
from qsampling.models.auth import ROLES, ApiToken, LoginAttempt, User

_hasher = PasswordHasher()  # argon2id, library defaults (RFC 9106 second recommendation)
_DUMMY_HASH = _hasher.hash("qsampling-timing-equaliser")
MIN_PASSWORD_LEN = 10


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def create_user(
    session: AsyncSession,
    *,
    username: str,
    role: str,
    password: str,
    actor: Actor,
    display_name: str | None = None,
    inspector_id: str | None = None,
) -> User:
    username = username.strip()
    if role not in ROLES:
        raise InvalidInput(
            f"Unknown role {role!r}; choose one of {', '.join(ROLES)}.", code="UnknownRole"
        )
    if not username or len(username) > 64:
        raise InvalidInput("Username must be 1–64 characters.", code="InvalidUsername")
    if len(password) < MIN_PASSWORD_LEN:
        raise InvalidInput(
            f"Password must be at least {MIN_PASSWORD_LEN} characters.", code="WeakPassword"
        )
    if await session.scalar(select(User.id).where(User.username == username)):
        raise Conflict(f"User {username!r} already exists.", code="UserExists")
    user = User(
        username=username,
        role=role,
        password_hash=hash_password(password),
        display_name=display_name,
        inspector_id=inspector_id,
    )
    session.add(user)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="user.create",
        entity_type="user",
        entity_id=user.id,
        payload={"username": username, "role": role, "inspector_id": inspector_id},
    )
    return user


async def _recent_failures(
    session: AsyncSession, *, column: str, value: str, since: datetime
) -> tuple[int, datetime | None]:
    col = getattr(LoginAttempt, column)
    row = (
        await session.execute(
            select(func.count(), func.min(LoginAttempt.attempted_at)).where(
                col == value, LoginAttempt.success.is_(False), LoginAttempt.attempted_at >= since
            )
        )
    ).one()
    return int(row[0]), row[1]


async def check_throttle(
    session: AsyncSession, *, username: str, client_addr: str, max_failures: int, window: timedelta
) -> None:
    now = datetime.now(UTC)
    since = now - window
    for column, value in (("username", username), ("client_addr", client_addr)):
        n, oldest = await _recent_failures(session, column=column, value=value, since=since)
        if n >= max_failures and oldest is not None:
            retry = max(1, math.ceil((oldest + window - now).total_seconds()))
            raise TooManyRequests(
                f"Too many failed sign-ins; try again in {retry} seconds. "
                "登录失败次数过多，请稍后再试。",
                code="LoginThrottled",
                headers={"Retry-After": str(retry)},
            )


async def issue_token(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    client_addr: str,
    ttl: timedelta,
    max_failures: int,
    window: timedelta,
) -> tuple[str, datetime, User] | None:
    """A token for valid credentials, or None after recording the failed attempt.

    Bad credentials are returned, not raised, so that the request still commits the
    failed attempt that the throttle counts.
    """
    await check_throttle(
        session,
        username=username,
        client_addr=client_addr,
        max_failures=max_failures,
        window=window,
    )
    user = await session.scalar(select(User).where(User.username == username))
    ok = False
    if user is None or not user.active:
        try:  # equalise timing so a missing user is not distinguishable
            _hasher.verify(_DUMMY_HASH, password + "x")
        except VerificationError:
            pass
    else:
        try:
            ok = _hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            ok = False
    session.add(LoginAttempt(username=username[:64], client_addr=client_addr[:64], success=ok))
    await session.flush()
    if not ok or user is None:
        return None
    token = secrets.token_urlsafe(32)
    expires = datetime.now(UTC) + ttl
    session.add(ApiToken(token_sha256=token_digest(token), user_id=user.id, expires_at=expires))
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    await session.flush()
    await audit.record(
        session,
        actor=Actor(user.username, user.role, user.id),
        action="auth.login",
        entity_type="user",
        entity_id=user.id,
        payload={"client": client_addr},
    )
    return token, expires, user


async def resolve_token(session: AsyncSession, token: str) -> User:
    row = (
        await session.execute(
            select(User, ApiToken.expires_at, ApiToken.revoked_at)
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(ApiToken.token_sha256 == token_digest(token))
        )
    ).first()
    if row is None:
        raise NotAuthenticated("The bearer token is not valid.", code="InvalidToken")
    user, expires_at, revoked_at = row
    if revoked_at is not None or expires_at <= datetime.now(UTC) or not user.active:
        raise NotAuthenticated(
            "The bearer token has expired or was revoked; sign in again.", code="TokenExpired"
        )
    return user


# --- the signed-in actor, cached briefly ------------------------------------------------------

TOKEN_CACHE_SECONDS = 5.0
"""How long a worker process trusts a token it has checked without asking the database again.

Every API call needs its caller; asking the database each time costs a round trip and about a
third of a result submission's CPU. A logout (``revoke_token``) drops the token from the cache
of the process that served it at once; the other worker processes, and a user deactivated or a
token revoked directly in the database, notice within this many seconds. The token's own
expiry is always checked against the cached ``expires_at``.
"""
TOKEN_CACHE_MAX = 10_000

_RESOLVE = text("""
    SELECT u.id, u.username, u.role, u.inspector_id, u.active, t.expires_at, t.revoked_at
    FROM api_tokens t JOIN users u ON u.id = t.user_id
    WHERE t.token_sha256 = :d
""")

# token digest → (actor, token expiry, monotonic time until which the entry is trusted)
_clock = time.monotonic  # the cache's clock (a test moves it on)
_actor_cache: dict[str, tuple[Actor, datetime, float]] = {}
# tokens being revoked here → monotonic time until which they are not cached: a request that
# reads the token before the logout commits must not put it back for another TTL
_uncacheable: dict[str, float] = {}


def forget_token(digest: str | None = None) -> None:
    """Drop one token (or, with no argument, every token) from this process's cache."""
    if digest is None:
        _actor_cache.clear()
        return
    _actor_cache.pop(digest, None)
    now = _clock()
    for d, until in list(_uncacheable.items()):
        if until <= now:
            del _uncacheable[d]
    _uncacheable[digest] = now + 2 * TOKEN_CACHE_SECONDS


def _expired() -> NotAuthenticated:
    return NotAuthenticated(
        "The bearer token has expired or was revoked; sign in again.", code="TokenExpired"
    )


async def resolve_actor(session: AsyncSession, token: str) -> Actor:
    """The actor a bearer token signs in, from the database or, for up to
    ``TOKEN_CACHE_SECONDS``, from this process's cache (see there for revocation)."""
    digest = token_digest(token)
    now = datetime.now(UTC)
    hit = _actor_cache.get(digest)
    if hit is not None:
        actor, expires_at, trusted_until = hit
        if _clock() < trusted_until:
            if expires_at <= now:
                _actor_cache.pop(digest, None)
                raise _expired()
            return actor
        _actor_cache.pop(digest, None)
    row = (await session.execute(_RESOLVE, {"d": digest})).first()
    if row is None:
        raise NotAuthenticated("The bearer token is not valid.", code="InvalidToken")
    if row.revoked_at is not None or row.expires_at <= now or not row.active:
        raise _expired()
    actor = Actor(
        username=row.username, role=row.role, user_id=row.id, inspector_id=row.inspector_id
    )
    mono = _clock()
    if _uncacheable.get(digest, 0.0) > mono:
        return actor
    if len(_actor_cache) >= TOKEN_CACHE_MAX:
        _actor_cache.clear()  # bounded: a flood of distinct tokens only costs the round trips
    _actor_cache[digest] = (actor, row.expires_at, mono + TOKEN_CACHE_SECONDS)
    return actor


async def revoke_token(session: AsyncSession, *, token: str, actor: Actor) -> None:
    digest = token_digest(token)
    forget_token(digest)
    await session.execute(
        update(ApiToken).where(ApiToken.token_sha256 == digest).values(revoked_at=func.now())
    )
    await audit.record(
        session,
        actor=actor,
        action="auth.logout",
        entity_type="user",
        entity_id=actor.user_id or actor.username,
        payload={},
    )


async def purge_old_attempts(session: AsyncSession, *, older_than: timedelta) -> int:
    res = await session.execute(
        text("DELETE FROM login_attempts WHERE attempted_at < :t"),
        {"t": datetime.now(UTC) - older_than},
    )
    return int(getattr(res, "rowcount", 0) or 0)
