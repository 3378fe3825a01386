"""draws extras: entropy source and reason on plans, who committed, the drawn team on tasks

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "plans",
        sa.Column(
            "entropy_source",
            sa.Text(),
            server_default="dice rolled in front of witnesses (at least 20 digits)",
            nullable=False,
        ),
    )
    op.add_column("plans", sa.Column("reason", sa.Text(), nullable=True))
    op.add_column(
        "commitments",
        sa.Column("committed_by", sa.String(length=64), server_default="", nullable=False),
    )
    # pool.csv is sorted in byte order (QSDRAW-1 step 1); a "C" column lets the primary key
    # serve that order whatever the database's default collation is
    op.alter_column(
        "draw_pool",
        "uscc",
        type_=sa.String(length=18, collation="C"),
        existing_type=sa.String(length=18),
        existing_nullable=False,
    )
    # the per-row FK check dominated freezing a large pool; commitments are never deleted
    op.drop_constraint("fk_draw_pool_commitment_id_commitments", "draw_pool", type_="foreignkey")
    op.add_column("draws", sa.Column("entropy_note", sa.Text(), nullable=True))
    op.add_column("draws", sa.Column("result_sha256", sa.String(length=64), nullable=True))
    op.add_column(
        "tasks",
        sa.Column("drawn_team", postgresql.ARRAY(sa.String(length=32)), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("tasks", "drawn_team")
    op.drop_column("draws", "result_sha256")
    op.drop_column("draws", "entropy_note")
    op.create_foreign_key(
        "fk_draw_pool_commitment_id_commitments",
        "draw_pool",
        "commitments",
        ["commitment_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.alter_column(
        "draw_pool",
        "uscc",
        type_=sa.String(length=18),
        existing_type=sa.String(length=18, collation="C"),
        existing_nullable=False,
        postgresql_using='uscc COLLATE "default"',
    )
    op.drop_column("commitments", "committed_by")
    op.drop_column("plans", "reason")
    op.drop_column("plans", "entropy_source")
