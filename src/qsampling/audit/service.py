"""Audit log: record in the caller's transaction, seal in a chain, verify the chain."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.context import Actor, current_request_id
from qsampling.models.audit import AuditEntry

GENESIS = "0" * 64
SEAL_LOCK_KEY = 0x5153_4155_4449_5400  # "QSAUDIT" — serialises sealers, never requests
SEAL_BATCH = 5000


def payload_digest(payload: Any) -> str:
    body = json.dumps(
        payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


async def record(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: str | int,
    payload: Any,
) -> None:
    """Append an audit entry in the caller's transaction (committed with the change)."""
    session.add(
        AuditEntry(
            actor=actor.username,
            role=actor.role,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            request_id=current_request_id(),
            payload_sha256=payload_digest(payload),
        )
    )


async def record_many(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    entity_type: str,
    items: list[tuple[str, Any]],
) -> None:
    """Bulk form for imports: one INSERT … SELECT over arrays, still in the caller's tx."""
    if not items:
        return
    await session.execute(
        text("""
            INSERT INTO audit_log (actor, role, action, entity_type, entity_id, request_id,
                                   payload_sha256)
            SELECT :actor, :role, :action, :etype, e, :rid, p
            FROM unnest(CAST(:eids AS text[]), CAST(:phs AS text[])) AS t(e, p)
        """),
        {
            "actor": actor.username,
            "role": actor.role,
            "action": action,
            "etype": entity_type,
            "rid": current_request_id(),
            "eids": [str(i) for i, _ in items],
            "phs": [payload_digest(p) for _, p in items],
        },
    )


def entry_hash(prev_hash: str, seq: int, row: Any) -> str:
    created = row.created_at.astimezone(UTC).isoformat(timespec="microseconds")
    parts = [
        prev_hash,
        str(seq),
        str(row.id),
        created,
        row.actor,
        row.role,
        row.action,
        row.entity_type,
        row.entity_id,
        row.request_id or "",
        row.payload_sha256,
    ]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


async def seal(session: AsyncSession, *, limit: int = 100_000) -> int:
    """Chain every committed-but-unsealed entry; returns how many were sealed.

    Runs in its own short transaction; an advisory lock keeps two sealers from
    interleaving, while requests never wait on it.
    """
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SEAL_LOCK_KEY})
    last = (
        await session.execute(
            text(
                "SELECT seq, entry_hash FROM audit_log WHERE seq IS NOT NULL "
                "ORDER BY seq DESC LIMIT 1"
            )
        )
    ).first()
    seq, prev = (last.seq, last.entry_hash) if last else (0, GENESIS)
    sealed = 0
    while sealed < limit:
        rows = (
            await session.execute(
                text(
                    "SELECT id, created_at, actor, role, action, entity_type, entity_id, "
                    "request_id, payload_sha256 FROM audit_log WHERE seq IS NULL "
                    "ORDER BY id LIMIT :n"
                ),
                {"n": SEAL_BATCH},
            )
        ).all()
        if not rows:
            break
        ids, seqs, prevs, hashes = [], [], [], []
        for row in rows:
            seq += 1
            h = entry_hash(prev, seq, row)
            ids.append(row.id)
            seqs.append(seq)
            prevs.append(prev)
            hashes.append(h)
            prev = h
        await session.execute(
            text("""
            UPDATE audit_log a SET seq = t.seq, prev_hash = t.prev, entry_hash = t.h,
                   sealed_at = now()
            FROM unnest(CAST(:ids AS bigint[]), CAST(:seqs AS bigint[]), CAST(:prevs AS text[]),
                        CAST(:hs AS text[])) AS t(id, seq, prev, h)
            WHERE a.id = t.id
        """),
            {"ids": ids, "seqs": seqs, "prevs": prevs, "hs": hashes},
        )
        sealed += len(rows)
    return sealed


@dataclass
class VerifyReport:
    ok: bool
    checked: int
    unsealed: int
    problem: str | None = None
    seq: int | None = None
    entry_id: int | None = None


async def verify(session: AsyncSession) -> VerifyReport:
    """Walk the chain in ``seq`` order and name the first broken link."""
    prev, expected_seq, checked = GENESIS, 1, 0
    after = 0
    while True:
        rows = (
            await session.execute(
                text(
                    "SELECT id, seq, prev_hash, entry_hash, created_at, actor, role, action, "
                    "entity_type, entity_id, request_id, payload_sha256 FROM audit_log "
                    "WHERE seq > :after ORDER BY seq LIMIT 10000"
                ),
                {"after": after},
            )
        ).all()
        if not rows:
            break
        for row in rows:
            if row.seq != expected_seq:
                return VerifyReport(
                    False,
                    checked,
                    0,
                    f"sequence gap: expected {expected_seq}, found {row.seq}",
                    row.seq,
                    row.id,
                )
            if row.prev_hash != prev:
                return VerifyReport(
                    False,
                    checked,
                    0,
                    "prev_hash does not match the previous entry's hash",
                    row.seq,
                    row.id,
                )
            if entry_hash(prev, row.seq, row) != row.entry_hash:
                return VerifyReport(
                    False,
                    checked,
                    0,
                    "entry_hash does not match the entry's content (row altered)",
                    row.seq,
                    row.id,
                )
            prev = row.entry_hash
            expected_seq += 1
            checked += 1
            after = row.seq
    unsealed = await session.scalar(text("SELECT count(*) FROM audit_log WHERE seq IS NULL"))
    return VerifyReport(True, checked, int(unsealed or 0))


def now_utc() -> datetime:
    return datetime.now(UTC)
