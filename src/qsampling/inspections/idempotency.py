"""Idempotency keys: a retry with the same key and body gets the stored response back.

The request hash covers what the write means (the operation, the task and the canonical
JSON of the validated body), not the path or the transport: a result first sent through
``POST /tasks/{id}/result`` and retried as a row of the lab batch (same key) is recognised.
The key row is written in the same transaction as the write (unique on actor + key), so a
2xx response and its stored copy exist together or not at all.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.errors import Conflict

BATCH_ONLY_FIELDS = frozenset({"task_id", "idempotency_key"})


class IdempotencyKeyReused(Conflict):
    code = "IdempotencyKeyReused"


@dataclass(frozen=True)
class Stored:
    request_sha256: str
    status: int
    body: dict[str, Any]


def request_hash(operation: str, task_id: int, body: BaseModel) -> str:
    """SHA-256 of the operation, the task and the validated body serialised by its model
    (fields in declaration order, defaults filled in): equal meaning, equal hash."""
    h = hashlib.sha256(f"{operation}\x00{task_id}\x00".encode())
    h.update(body.model_dump_json(exclude=set(BATCH_ONLY_FIELDS)).encode())
    return h.hexdigest()


def reused(key: str) -> IdempotencyKeyReused:
    return IdempotencyKeyReused(
        f"The Idempotency-Key {key!r} was already used for a different request; use a new "
        "key for a new request. 该幂等键已用于另一个请求。",
        extra={"idempotency_key": key},
    )


async def lookup(session: AsyncSession, *, actor: str, key: str) -> Stored | None:
    row = (
        await session.execute(
            text(
                "SELECT request_sha256, response_status, response_body FROM idempotency_keys "
                "WHERE actor = :a AND key = :k"
            ),
            {"a": actor, "k": key},
        )
    ).first()
    if row is None:
        return None
    body = row[2] if isinstance(row[2], dict) else json.loads(row[2])
    return Stored(row[0], int(row[1]), body)


async def lookup_many(session: AsyncSession, *, actor: str, keys: list[str]) -> dict[str, Stored]:
    if not keys:
        return {}
    rows = await session.execute(
        text(
            "SELECT key, request_sha256, response_status, response_body FROM idempotency_keys "
            "WHERE actor = :a AND key = ANY(CAST(:k AS text[]))"
        ),
        {"a": actor, "k": keys},
    )
    out: dict[str, Stored] = {}
    for key, h, status, body in rows:
        out[key] = Stored(h, int(status), body if isinstance(body, dict) else json.loads(body))
    return out


def replay_or_raise(stored: Stored, *, key: str, request_sha256: str) -> Stored:
    if stored.request_sha256 != request_sha256:
        raise reused(key)
    return stored
