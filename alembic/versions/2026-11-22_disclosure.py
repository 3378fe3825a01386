"""disclosure

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "result_publications",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("result_id", sa.BigInteger(), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("plan_id", sa.BigInteger(), nullable=True),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("enterprise_name", sa.String(length=200), nullable=False),
        sa.Column("entity_type", sa.String(length=16), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("region_name", sa.String(length=100), server_default="", nullable=False),
        sa.Column("check_item_code", sa.String(length=32), nullable=False),
        sa.Column("check_item_name", sa.String(length=200), server_default="", nullable=False),
        sa.Column("inspected_on", sa.Date(), nullable=False),
        sa.Column("conclusion", sa.String(length=16), nullable=False),
        sa.Column(
            "result_codes",
            postgresql.ARRAY(sa.String(length=4)),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "category_codes",
            postgresql.ARRAY(sa.String(length=32)),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "samples",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("products_text", sa.Text(), server_default="", nullable=False),
        sa.Column("failed_items_text", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "inspector_names",
            postgresql.ARRAY(sa.String(length=50)),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("csv_line", sa.Text(), server_default="", nullable=False),
        sa.Column("final_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("due_exact", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("due_note", sa.Text(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "conclusion IN ('pass','fail','not_tested')",
            name=op.f("ck_result_publications_conclusion"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_result_publications")),
        sa.UniqueConstraint("result_id", name=op.f("uq_result_publications_result_id")),
    )
    op.create_index(
        op.f("ix_result_publications_task_id"), "result_publications", ["task_id"], unique=False
    )
    op.create_index(
        op.f("ix_result_publications_uscc"), "result_publications", ["uscc"], unique=False
    )
    op.create_index(
        op.f("ix_result_publications_inspected_on"),
        "result_publications",
        ["inspected_on"],
        unique=False,
    )
    op.create_index(
        "ix_result_publications_region_code",
        "result_publications",
        ["region_code"],
        unique=False,
        postgresql_ops={"region_code": "text_pattern_ops"},
    )
    op.create_index(
        "ix_result_publications_categories",
        "result_publications",
        ["category_codes"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        "ix_result_publications_codes",
        "result_publications",
        ["result_codes"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        "ix_result_publications_updated",
        "result_publications",
        ["updated_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_result_publications_unpublished_due",
        "result_publications",
        ["due_date"],
        unique=False,
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "disclosure_cursors",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("last_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_disclosure_cursors")),
    )


def downgrade() -> None:
    op.drop_table("disclosure_cursors")
    op.drop_index("ix_result_publications_unpublished_due", table_name="result_publications")
    op.drop_index("ix_result_publications_updated", table_name="result_publications")
    op.drop_index("ix_result_publications_codes", table_name="result_publications")
    op.drop_index("ix_result_publications_categories", table_name="result_publications")
    op.drop_index("ix_result_publications_region_code", table_name="result_publications")
    op.drop_index(op.f("ix_result_publications_inspected_on"), table_name="result_publications")
    op.drop_index(op.f("ix_result_publications_uscc"), table_name="result_publications")
    op.drop_index(op.f("ix_result_publications_task_id"), table_name="result_publications")
    op.drop_table("result_publications")
