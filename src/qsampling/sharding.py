"""Scale-out: QSDRAW-1 step 4 computed per shard and merged (order-independent by design).

Each shard holds part of the directory (hash-partitioned by ``uscc``). For every stratum a
shard returns its count N_h and its n_h smallest keys; the coordinator merges them with
:func:`qsampling.core.draw.merge_partials`, which gives exactly the draw of the union.

The per-shard queries are plain SQL built only from immutable built-ins (``sha256``,
``decode``) and constants, so a ``postgres_fdw`` foreign table — or a Citus worker — runs
them on the shard (``ORDER BY … LIMIT`` and ``GROUP BY`` are pushed down); only
Σ n_h rows per shard cross the network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qsampling.core.draw import Partial, Selected, merge_partials

KEY_DOMAIN = b"QSDRAW-1\x00"


def key_prefix(seed: bytes) -> bytes:
    """The bytes hashed before the uscc in step 4: b"QSDRAW-1\\x00" + seed + b"\\x01"."""
    return KEY_DOMAIN + seed + b"\x01"


def _quote_ident(name: str) -> str:
    parts = name.split(".")
    for p in parts:
        if not p.replace("_", "").isalnum():
            raise ValueError(f"unsafe identifier {name!r}")
    return ".".join(f'"{p}"' for p in parts)


def count_sql(table: str) -> str:
    return f"SELECT stratum, count(*) AS n FROM {_quote_ident(table)} GROUP BY stratum"


def topk_sql(table: str) -> str:
    """n smallest keys of one stratum; usccs are ASCII, so decode(…, 'escape') is their
    bytes (and, unlike convert_to, immutable, hence shippable to a shard)."""
    return (
        f"SELECT uscc, sha256($1::bytea || decode(uscc, 'escape')) AS key "
        f"FROM {_quote_ident(table)} WHERE stratum = $2 "
        f"ORDER BY sha256($1::bytea || decode(uscc, 'escape')) LIMIT $3"
    )


async def shard_partial(
    conn: Any, *, table: str, seed: bytes, quotas: Mapping[str, int]
) -> Partial:
    """One shard's (N_h, n_h smallest (key, uscc)) per stratum, over an asyncpg connection."""
    prefix = key_prefix(seed)
    partial: dict[str, tuple[int, list[tuple[bytes, str]]]] = {}
    for row in await conn.fetch(count_sql(table)):
        stratum, n = row["stratum"], int(row["n"])
        if stratum not in quotas:
            raise ValueError(f"stratum {stratum!r} in the pool has no quota")
        k = min(n, quotas[stratum])
        pairs = (
            [
                (bytes(r["key"]), r["uscc"])
                for r in await conn.fetch(topk_sql(table), prefix, stratum, k)
            ]
            if k
            else []
        )
        partial[stratum] = (n, pairs)
    return partial


async def sharded_select(
    conns: Sequence[Any], *, tables: Sequence[str], seed: bytes, quotas: Mapping[str, int]
) -> list[Selected]:
    """Draw over several shards: compute each shard's partial, merge at the coordinator."""
    partials = [
        await shard_partial(c, table=t, seed=seed, quotas=quotas)
        for c, t in zip(conns, tables, strict=True)
    ]
    return merge_partials(partials, quotas)
