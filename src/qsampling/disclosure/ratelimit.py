"""Per-address rate limit for the public API and the portal: an in-process token bucket.

Each client address gets a bucket of ``public_rate_limit_per_minute`` tokens refilled
continuously at that rate; a request takes one token, an empty bucket answers 429
``TooManyRequests`` with ``Retry-After`` (whole seconds until a token is back).

Limits of this design, on purpose:
- The buckets live in the process. Behind several uvicorn workers each worker has its own
  buckets, so a client may get up to ``workers ×`` the limit. In production put nginx
  ``limit_req`` (per ``$binary_remote_addr``) in front as the shared, authoritative limit;
  this one protects a single process from a single client.
- The address is ``request.client.host``: behind a reverse proxy start uvicorn with
  ``--proxy-headers --forwarded-allow-ips=<proxy>`` (``qsampling serve`` sets
  ``proxy_headers``) so it is the real client, not the proxy.
- At most ``MAX_TRACKED`` addresses are remembered; the least recently seen are forgotten
  first (a forgotten address simply starts with a full bucket).

Used as a router dependency (public API routers, the portal) and, optionally, as an ASGI
middleware covering every ``/api/v1/public/`` path and portal page; whichever runs first
marks the request so it is never counted twice.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from qsampling.errors import TooManyRequests

MAX_TRACKED = 100_000
_SCOPE_FLAG = "qsampling.rate_limited"


class TokenBucketLimiter:
    """``per_minute`` requests per minute per key, bursts up to ``per_minute``."""

    def __init__(
        self,
        per_minute: int,
        *,
        max_tracked: int = MAX_TRACKED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be >= 1")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.max_tracked = max_tracked
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take a token for ``key``; 0.0 when allowed, else seconds until one is back."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
            while len(self._buckets) > self.max_tracked:
                self._buckets.popitem(last=False)
        return wait


def limiter_for(app_state: Any, per_minute: int) -> TokenBucketLimiter:
    """The app's limiter (one per application instance, created on first use)."""
    lim: TokenBucketLimiter | None = getattr(app_state, "public_rate_limiter", None)
    if lim is None or lim.capacity != float(per_minute):
        lim = TokenBucketLimiter(per_minute)
        app_state.public_rate_limiter = lim
    return lim


def client_key(scope: dict[str, Any]) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def too_many(wait: float) -> TooManyRequests:
    seconds = max(1, math.ceil(wait))
    return TooManyRequests(
        f"Too many requests from this address; retry in {seconds} s. "
        f"请求过于频繁，请 {seconds} 秒后重试。",
        headers={"Retry-After": str(seconds)},
    )


def check(scope: dict[str, Any], app_state: Any, per_minute: int) -> None:
    """Count this request (once) against its address; raise 429 when over the limit."""
    if scope.get(_SCOPE_FLAG):
        return
    scope[_SCOPE_FLAG] = True
    wait = limiter_for(app_state, per_minute).take(client_key(scope))
    if wait > 0:
        raise too_many(wait)


def is_limited_path(path: str) -> bool:
    """Public API paths and portal pages (not health checks or the signed-in API)."""
    if path.startswith("/api/v1/public/"):
        return True
    return not path.startswith(("/api/", "/healthz", "/readyz", "/openapi.json", "/docs"))


class PublicRateLimitMiddleware:
    """ASGI form: ``app.add_middleware(PublicRateLimitMiddleware)`` covers every public path,
    including public routes of other modules (draw bundles)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and is_limited_path(scope.get("path", "")):
            application = scope.get("app")
            state = getattr(application, "state", None)
            settings = getattr(state, "settings", None)
            if state is not None and settings is not None:
                try:
                    check(scope, state, settings.public_rate_limit_per_minute)
                except TooManyRequests as exc:
                    from fastapi.responses import JSONResponse

                    from qsampling.responses import error_body

                    resp = JSONResponse(error_body(exc), status_code=429, headers=exc.headers)
                    await resp(scope, receive, send)
                    return
        await self.app(scope, receive, send)
