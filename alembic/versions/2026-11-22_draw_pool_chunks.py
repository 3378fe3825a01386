"""frozen pools stored as the bytes of their pool.csv (draw_pool_chunks) instead of one row
per candidate (draw_pool)

Upgrade writes every commitment's pool.csv from its rows exactly as the commit published it
(header ``uscc,stratum,unit``, rows in uscc byte order, minimal CSV quoting, an empty unit
written as nothing), checks the bytes against the committed ``pool_sha256`` and refuses to
go on if they differ; a commitment without rows keeps reading as the header alone.
Downgrade parses the stored files back into rows.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 00:00:00
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# copies, as of this revision (migrations never import the application)
POOL_HEADER = ("uscc", "stratum", "unit")
CHUNK_BYTES = 32 * 1024
ROWS_PER_FETCH = 20_000
CHUNKS_PER_INSERT = 256
ROWS_PER_INSERT = 50_000

chunks_table = sa.table(
    "draw_pool_chunks",
    sa.column("commitment_id", sa.BigInteger()),
    sa.column("seq", sa.Integer()),
    sa.column("data", sa.LargeBinary()),
)


def _create_draw_pool() -> None:
    op.create_table(
        "draw_pool",
        sa.Column("commitment_id", sa.BigInteger(), nullable=False),
        sa.Column("uscc", sa.String(length=18, collation="C"), nullable=False),
        sa.Column("stratum", sa.String(length=64), nullable=False),
        sa.Column("unit", sa.String(length=32), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("commitment_id", "uscc", name=op.f("pk_draw_pool")),
    )


def _pool_chunks(rows: Iterator[Sequence[str]]) -> Iterator[bytes]:
    """pool.csv of ``rows`` (already in uscc byte order), in chunks of whole lines."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(POOL_HEADER)
    for uscc, stratum, unit in rows:
        writer.writerow((uscc, stratum, unit or ""))
        if buf.tell() >= CHUNK_BYTES:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode("utf-8")


def _pool_rows(conn: sa.Connection, commitment_id: int) -> Iterator[Sequence[str]]:
    """A commitment's frozen rows in uscc byte order, a page at a time (the primary key
    serves the order)."""
    after = ""
    while True:
        page = conn.execute(
            sa.text(
                "SELECT uscc, stratum, unit FROM draw_pool WHERE commitment_id = :c "
                'AND uscc > :after ORDER BY uscc COLLATE "C" LIMIT :n'
            ),
            {"c": commitment_id, "after": after, "n": ROWS_PER_FETCH},
        ).all()
        yield from page
        if len(page) < ROWS_PER_FETCH:
            return
        after = page[-1][0]


def _insert_chunks(conn: sa.Connection, batch: list[dict[str, object]]) -> None:
    if batch:
        conn.execute(chunks_table.insert(), batch)
        batch.clear()


def upgrade() -> None:
    op.create_table(
        "draw_pool_chunks",
        sa.Column("commitment_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["commitment_id"],
            ["commitments.id"],
            name=op.f("fk_draw_pool_chunks_commitment_id_commitments"),
        ),
        sa.PrimaryKeyConstraint("commitment_id", "seq", name=op.f("pk_draw_pool_chunks")),
    )
    # stored uncompressed: compressing a ten-million-line pool.csv at each commit cost more
    # than writing it, for files already a fraction of the size of a row per candidate
    op.execute("ALTER TABLE draw_pool_chunks ALTER COLUMN data SET STORAGE EXTERNAL")
    conn = op.get_bind()
    pooled = conn.execute(
        sa.text(
            "SELECT c.id, c.pool_sha256 FROM commitments c WHERE EXISTS "
            "(SELECT 1 FROM draw_pool p WHERE p.commitment_id = c.id) ORDER BY c.id"
        )
    ).all()
    for commitment_id, pool_sha256 in pooled:
        digest = hashlib.sha256()
        batch: list[dict[str, object]] = []
        for seq, chunk in enumerate(_pool_chunks(_pool_rows(conn, commitment_id))):
            digest.update(chunk)
            batch.append({"commitment_id": commitment_id, "seq": seq, "data": chunk})
            if len(batch) >= CHUNKS_PER_INSERT:
                _insert_chunks(conn, batch)
        _insert_chunks(conn, batch)
        if digest.hexdigest() != pool_sha256:
            raise RuntimeError(
                f"commitment {commitment_id}: the pool.csv written from its frozen rows hashes "
                f"to {digest.hexdigest()}, not to its committed pool_sha256 {pool_sha256}; "
                "nothing was converted (the rows, or the commitment, were changed after the "
                "commit)"
            )
    op.drop_table("draw_pool")


def downgrade() -> None:
    _create_draw_pool()
    conn = op.get_bind()
    ids = conn.scalars(
        sa.text("SELECT DISTINCT commitment_id FROM draw_pool_chunks ORDER BY 1")
    ).all()
    insert = sa.text(
        "INSERT INTO draw_pool (commitment_id, uscc, stratum, unit) "
        "SELECT CAST(:c AS bigint), r.uscc, r.stratum, r.unit FROM unnest(CAST(:u AS text[]), "
        "CAST(:s AS text[]), CAST(:x AS text[])) AS r(uscc, stratum, unit)"
    )
    for commitment_id in ids:
        rows: list[list[str]] = []
        after = -1
        while True:
            chunks = conn.execute(
                sa.text(
                    "SELECT seq, data FROM draw_pool_chunks WHERE commitment_id = :c "
                    "AND seq > :after ORDER BY seq LIMIT :n"
                ),
                {"c": commitment_id, "after": after, "n": CHUNKS_PER_INSERT},
            ).all()
            for seq, data in chunks:
                reader = csv.reader(io.StringIO(bytes(data).decode("utf-8"), newline=""))
                if seq == 0:
                    next(reader)  # the header
                rows.extend(reader)
                if len(rows) >= ROWS_PER_INSERT:
                    conn.execute(insert, _columns(commitment_id, rows))
                    rows = []
            if len(chunks) < CHUNKS_PER_INSERT:
                break
            after = chunks[-1][0]
        if rows:
            conn.execute(insert, _columns(commitment_id, rows))
    op.drop_table("draw_pool_chunks")


def _columns(commitment_id: int, rows: list[list[str]]) -> dict[str, object]:
    return {
        "c": commitment_id,
        "u": [r[0] for r in rows],
        "s": [r[1] for r in rows],
        "x": [r[2] for r in rows],
    }
