"""Typed errors. Each carries an HTTP status, a machine-readable code and a sentence.

Rendered by one handler in ``app.py`` as ``{"error": code, "detail": sentence}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class QSamplingError(Exception):
    status: int = 400
    code: str = "BadRequest"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.extra = extra or {}
        self.headers = headers or {}


class NotAuthenticated(QSamplingError):
    status = 401
    code = "NotAuthenticated"


class Forbidden(QSamplingError):
    status = 403
    code = "Forbidden"


class NotFound(QSamplingError):
    status = 404
    code = "NotFound"


class Conflict(QSamplingError):
    status = 409
    code = "Conflict"


class InvalidInput(QSamplingError):
    status = 422
    code = "InvalidInput"


class PayloadTooLarge(QSamplingError):
    status = 413
    code = "PayloadTooLarge"


class TooManyRequests(QSamplingError):
    status = 429
    code = "TooManyRequests"


class ServiceUnavailable(QSamplingError):
    status = 503
    code = "ServiceUnavailable"


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything behind it — ``__cause__``, ``__context__`` and SQLAlchemy's
    ``orig`` (the driver's exception) — each once. A database failure often sits several
    wrappers deep (DBAPIError → the adapter's error → asyncpg's own)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        orig = getattr(e, "orig", None)
        todo += [e.__cause__, e.__context__, orig if isinstance(orig, BaseException) else None]
