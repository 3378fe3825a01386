"""directory extras: bulk-import reports and their rejected rows

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 00:00:00

Reference data (regions, categories, check items) is deliberately not seeded here: bureaus
load the shipped tables with ``qsampling import reference`` (the demo does it too), and a
migration that inserted them would collide with rows that existing databases and test
fixtures already hold.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "directory_imports",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("file_format", sa.String(length=16), nullable=False),
        sa.Column("strict", sa.Boolean(), nullable=False),
        sa.Column("stored", sa.Boolean(), nullable=False),
        sa.Column("total_rows", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column(
            "ignored_columns",
            postgresql.ARRAY(sa.String(length=100)),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('enterprises','inspectors')", name=op.f("ck_directory_imports_kind")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_imports")),
    )
    op.create_index(
        op.f("ix_directory_imports_file_sha256"),
        "directory_imports",
        ["file_sha256"],
        unique=False,
    )
    op.create_table(
        "directory_import_rejections",
        sa.Column("import_id", sa.BigInteger(), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["directory_imports.id"],
            name=op.f("fk_directory_import_rejections_import_id_directory_imports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "import_id", "row_number", "field", name=op.f("pk_directory_import_rejections")
        ),
    )


def downgrade() -> None:
    op.drop_table("directory_import_rejections")
    op.drop_index(op.f("ix_directory_imports_file_sha256"), table_name="directory_imports")
    op.drop_table("directory_imports")
