"""Request-scoped context: who acts and which request it is (for the audit log)."""

from __future__ import annotations

import getpass
from contextvars import ContextVar
from dataclasses import dataclass

_request_id: ContextVar[str | None] = ContextVar("qsampling_request_id", default=None)


@dataclass(frozen=True)
class Actor:
    username: str
    role: str
    user_id: int | None = None
    inspector_id: str | None = None


def cli_actor() -> Actor:
    try:
        who = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        who = "unknown"
    return Actor(username=f"cli:{who}", role="admin")


SYSTEM = Actor(username="system:jobs", role="admin")


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None) -> object:
    return _request_id.set(value)


def reset_request_id(token: object) -> None:
    _request_id.reset(token)  # type: ignore[arg-type]
