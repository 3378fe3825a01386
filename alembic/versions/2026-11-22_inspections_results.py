"""inspections results: versioned results, samples, test items, evidence, idempotency keys,
notification/objection/retest, rectification orders, domain events and final_results.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# DESIGN §3 result categories (a copy: migrations never import the models)
RESULT_CATEGORIES = [
    ("1", "未发现问题", "No problem found", "ok"),
    ("B", "未按规定公示应当公示的信息", "Required information not disclosed", "problem"),
    ("C", "公示信息隐瞒真实情况弄虚作假", "Disclosed information false or concealing", "problem"),
    (
        "6",
        "通过登记的住所（经营场所）无法联系",
        "Unreachable at the registered address",
        "unreachable",
    ),
    ("A", "发现问题待后续处理", "Problem found, follow-up pending", "problem"),
    ("E", "发现问题已责令改正", "Problem found, correction ordered", "problem"),
    ("8", "不配合检查情节严重", "Seriously refused to cooperate", "refused"),
    (
        "F",
        "未发现开展本次抽查涉及的经营活动",
        "No activity covered by this inspection",
        "no_activity",
    ),
    ("7", "已关闭停业或正在组织清算", "Closed or in liquidation", "closure"),
    ("9", "注销", "Deregistered", "closure"),
    ("10", "被吊销", "Licence revoked", "closure"),
    ("11", "被撤销", "Registration cancelled", "closure"),
    ("12", "迁出", "Moved out of the jurisdiction", "closure"),
]

TABLES_IN_DROP_ORDER = (
    "rectification_orders",
    "retest_items",
    "retests",
    "objections",
    "result_notifications",
    "test_items",
    "samples",
    "results",
    "final_results",
    "domain_events",
    "idempotency_keys",
    "evidence_files",
    "result_categories",
)


def upgrade() -> None:
    op.create_table(
        "result_categories",
        sa.Column("code", sa.String(length=2), nullable=False),
        sa.Column("name_zh", sa.String(length=50), nullable=False),
        sa.Column("name_en", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_result_categories")),
    )
    op.create_table(
        "evidence_files",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "media_type IN ('image/jpeg','image/png','image/webp','application/pdf')",
            name=op.f("ck_evidence_files_media_type"),
        ),
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name=op.f("ck_evidence_files_sha256_hex")),
        sa.CheckConstraint("size_bytes > 0", name=op.f("ck_evidence_files_size_positive")),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_evidence_files")),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("response_status", sa.SmallInteger(), nullable=False),
        sa.Column("response_body", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("actor", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(
        "ix_idempotency_keys_created_brin",
        "idempotency_keys",
        ["created_at"],
        unique=False,
        postgresql_using="brin",
    )
    op.create_table(
        "domain_events",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column(
            "occurred_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("uscc", sa.String(length=18), nullable=True),
        sa.Column("task_id", sa.BigInteger(), nullable=True),
        sa.Column("result_id", sa.BigInteger(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_domain_events")),
    )
    op.create_index("ix_domain_events_kind_id", "domain_events", ["kind", "id"], unique=False)
    op.create_index(op.f("ix_domain_events_uscc"), "domain_events", ["uscc"], unique=False)
    op.create_index(
        "uq_domain_events_kind_result",
        "domain_events",
        ["kind", "result_id"],
        unique=True,
        postgresql_where=sa.text("result_id IS NOT NULL"),
    )
    op.create_table(
        "final_results",
        sa.Column("result_id", sa.BigInteger(), nullable=False),
        sa.Column("sample_no", sa.SmallInteger(), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("plan_id", sa.BigInteger(), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("check_item_code", sa.String(length=32), nullable=False),
        sa.Column("category_code", sa.String(length=32), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("enterprise_size", sa.String(length=8), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("inspected_on", sa.Date(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("inclusion_probability", sa.Float(), nullable=False),
        sa.Column("stratum", sa.String(length=64), nullable=False),
        sa.Column("stratum_sample_size", sa.Integer(), nullable=False),
        sa.Column("stratum_population", sa.Integer(), nullable=False),
        sa.Column("follow_up", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("result_id", "sample_no", name=op.f("pk_final_results")),
    )
    op.create_index(
        "ix_final_results_cat_region_on",
        "final_results",
        ["category_code", "region_code", "inspected_on"],
        unique=False,
    )
    op.create_index(
        "ix_final_results_inspected_on", "final_results", ["inspected_on"], unique=False
    )
    op.create_index(op.f("ix_final_results_plan_id"), "final_results", ["plan_id"], unique=False)
    op.create_index(op.f("ix_final_results_uscc"), "final_results", ["uscc"], unique=False)
    op.create_table(
        "results",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("live", sa.Boolean(), nullable=False),
        sa.Column("supersedes_id", sa.BigInteger(), nullable=True),
        sa.Column("correction_reason", sa.Text(), nullable=True),
        sa.Column("inspected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("conclusion", sa.String(length=4), nullable=True),
        sa.Column("category_codes", postgresql.ARRAY(sa.String(length=2)), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column(
            "evidence_sha256",
            postgresql.ARRAY(sa.String(length=64)),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("submitted_by", sa.String(length=64), nullable=False),
        sa.Column(
            "submitted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("source", sa.String(length=8), server_default="api", nullable=False),
        sa.Column("final_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("final_conclusion", sa.String(length=4), nullable=True),
        sa.CheckConstraint("conclusion IN ('pass','fail')", name=op.f("ck_results_conclusion")),
        sa.CheckConstraint(
            "final_conclusion IN ('pass','fail')", name=op.f("ck_results_final_conclusion")
        ),
        sa.CheckConstraint("source IN ('api','batch','demo')", name=op.f("ck_results_source")),
        sa.CheckConstraint(
            "cardinality(category_codes) >= 1", name=op.f("ck_results_has_category")
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_results_version_positive")),
        sa.ForeignKeyConstraint(
            ["supersedes_id"], ["results.id"], name=op.f("fk_results_supersedes_id_results")
        ),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name=op.f("fk_results_task_id_tasks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_results")),
        sa.UniqueConstraint("task_id", "version", name=op.f("uq_results_task_id_version")),
    )
    op.create_index(
        "uq_results_live_task",
        "results",
        ["task_id"],
        unique=True,
        postgresql_where=sa.text("live"),
    )
    op.create_table(
        "samples",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("result_id", sa.BigInteger(), nullable=False),
        sa.Column("sample_no", sa.SmallInteger(), nullable=False),
        sa.Column("product_name", sa.String(length=200), nullable=False),
        sa.Column("brand", sa.String(length=100), nullable=True),
        sa.Column("model_spec", sa.String(length=200), nullable=True),
        sa.Column("batch_no", sa.String(length=100), nullable=True),
        sa.Column("production_date", sa.Date(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("quantity_unit", sa.String(length=16), nullable=True),
        sa.Column("standard", sa.String(length=200), nullable=True),
        sa.Column("category_code", sa.String(length=32), nullable=True),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_samples_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["category_code"], ["categories.code"], name=op.f("fk_samples_category_code_categories")
        ),
        sa.ForeignKeyConstraint(
            ["result_id"],
            ["results.id"],
            name=op.f("fk_samples_result_id_results"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_samples")),
        sa.UniqueConstraint("result_id", "sample_no", name=op.f("uq_samples_result_id_sample_no")),
    )
    op.create_table(
        "test_items",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("result_id", sa.BigInteger(), nullable=False),
        sa.Column("sample_id", sa.BigInteger(), nullable=False),
        sa.Column("item_no", sa.SmallInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("requirement", sa.Text(), nullable=True),
        sa.Column("measured_value", sa.String(length=200), nullable=True),
        sa.Column("unit", sa.String(length=32), nullable=True),
        sa.Column("verdict", sa.String(length=4), nullable=False),
        sa.CheckConstraint("verdict IN ('pass','fail')", name=op.f("ck_test_items_verdict")),
        sa.ForeignKeyConstraint(
            ["result_id"],
            ["results.id"],
            name=op.f("fk_test_items_result_id_results"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"],
            ["samples.id"],
            name=op.f("fk_test_items_sample_id_samples"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_items")),
        sa.UniqueConstraint("sample_id", "item_no", name=op.f("uq_test_items_sample_id_item_no")),
    )
    op.create_index(op.f("ix_test_items_result_id"), "test_items", ["result_id"], unique=False)
    op.create_table(
        "result_notifications",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("result_id", sa.BigInteger(), nullable=False),
        sa.Column("notified_on", sa.Date(), nullable=False),
        sa.Column("objection_deadline", sa.Date(), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=True),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["result_id"], ["results.id"], name=op.f("fk_result_notifications_result_id_results")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_result_notifications")),
        sa.UniqueConstraint("result_id", name=op.f("uq_result_notifications_result_id")),
    )
    op.create_index(
        op.f("ix_result_notifications_objection_deadline"),
        "result_notifications",
        ["objection_deadline"],
        unique=False,
    )
    op.create_table(
        "objections",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("result_id", sa.BigInteger(), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("disputed_item_ids", postgresql.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "cardinality(disputed_item_ids) >= 1", name=op.f("ck_objections_has_items")
        ),
        sa.ForeignKeyConstraint(
            ["result_id"], ["results.id"], name=op.f("fk_objections_result_id_results")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_objections")),
        sa.UniqueConstraint("result_id", name=op.f("uq_objections_result_id")),
    )
    op.create_table(
        "retests",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("result_id", sa.BigInteger(), nullable=False),
        sa.Column("objection_id", sa.BigInteger(), nullable=False),
        sa.Column("retested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("conclusion", sa.String(length=4), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column(
            "evidence_sha256",
            postgresql.ARRAY(sa.String(length=64)),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("conclusion IN ('pass','fail')", name=op.f("ck_retests_conclusion")),
        sa.ForeignKeyConstraint(
            ["objection_id"], ["objections.id"], name=op.f("fk_retests_objection_id_objections")
        ),
        sa.ForeignKeyConstraint(
            ["result_id"], ["results.id"], name=op.f("fk_retests_result_id_results")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retests")),
        sa.UniqueConstraint("objection_id", name=op.f("uq_retests_objection_id")),
        sa.UniqueConstraint("result_id", name=op.f("uq_retests_result_id")),
    )
    op.create_table(
        "retest_items",
        sa.Column("retest_id", sa.BigInteger(), nullable=False),
        sa.Column("test_item_id", sa.BigInteger(), nullable=False),
        sa.Column("measured_value", sa.String(length=200), nullable=True),
        sa.Column("unit", sa.String(length=32), nullable=True),
        sa.Column("verdict", sa.String(length=4), nullable=False),
        sa.CheckConstraint("verdict IN ('pass','fail')", name=op.f("ck_retest_items_verdict")),
        sa.ForeignKeyConstraint(
            ["retest_id"],
            ["retests.id"],
            name=op.f("fk_retest_items_retest_id_retests"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["test_item_id"],
            ["test_items.id"],
            name=op.f("fk_retest_items_test_item_id_test_items"),
        ),
        sa.PrimaryKeyConstraint("retest_id", "test_item_id", name=op.f("pk_retest_items")),
    )
    op.create_table(
        "rectification_orders",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("result_id", sa.BigInteger(), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("check_item_code", sa.String(length=32), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("reinspection_due_date", sa.Date(), nullable=False),
        sa.Column("follow_up_plan_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=24), server_default="open", nullable=False),
        sa.Column("reinspection_result_id", sa.BigInteger(), nullable=True),
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
            "status IN ('open','reinspection_passed','reinspection_failed')",
            name=op.f("ck_rectification_orders_status"),
        ),
        sa.ForeignKeyConstraint(
            ["follow_up_plan_id"],
            ["plans.id"],
            name=op.f("fk_rectification_orders_follow_up_plan_id_plans"),
        ),
        sa.ForeignKeyConstraint(
            ["reinspection_result_id"],
            ["results.id"],
            name=op.f("fk_rectification_orders_reinspection_result_id_results"),
        ),
        sa.ForeignKeyConstraint(
            ["result_id"], ["results.id"], name=op.f("fk_rectification_orders_result_id_results")
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_rectification_orders_task_id_tasks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rectification_orders")),
        sa.UniqueConstraint("result_id", name=op.f("uq_rectification_orders_result_id")),
    )
    op.create_index(
        op.f("ix_rectification_orders_follow_up_plan_id"),
        "rectification_orders",
        ["follow_up_plan_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_rectification_orders_uscc"), "rectification_orders", ["uscc"], unique=False
    )
    categories = sa.table(
        "result_categories",
        sa.column("code", sa.String),
        sa.column("name_zh", sa.String),
        sa.column("name_en", sa.String),
        sa.column("kind", sa.String),
    )
    op.bulk_insert(
        categories,
        [
            {"code": c, "name_zh": zh, "name_en": en, "kind": k}
            for c, zh, en, k in RESULT_CATEGORIES
        ],
    )


def downgrade() -> None:
    # indexes go with their tables; IF EXISTS so that a database first migrated with the
    # empty placeholder of this revision can still be taken down and up again
    for table in TABLES_IN_DROP_ORDER:
        op.execute(f'DROP TABLE IF EXISTS "{table}"')
