"""credit and lists: policies, penalties, the credit event ledger, scores and class
history, the abnormal-operations and serious-dishonesty lists.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 00:00:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The default policy as shipped (qsampling.core.credit_rules.default_policy(), version 1),
# written out so that this migration does not change when the code's defaults do.
DEFAULT_POLICY_V1 = {
    "version": 1,
    "base_score": 80.0,
    "weights": {
        "result_pass": 5.0,
        "result_fail": {"minor": -4.0, "general": -8.0, "serious": -15.0},
        "refusal": -20.0,
        "unreachable": -10.0,
        "false_disclosure": -15.0,
        "reinspection_fail": -15.0,
        "penalty": {"minor": -3.0, "general": -8.0, "serious": -20.0},
        "abnormal_listed": -10.0,
        "abnormal_removed": 0.0,
        "serious_listed": -25.0,
        "serious_removed": 0.0,
    },
    "positive_cap": 15.0,
    "half_life_days": 365.0,
    "horizon_days": 1095,
    "class_a_min": 90.0,
    "class_b_min": 75.0,
    "class_c_min": 60.0,
    "serious_list_class": "D",
    "abnormal_list_max_class": "C",
}


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "credit_cursors",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_credit_cursors")),
    )
    op.create_table(
        "credit_policies",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("body", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("active", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("published_by", sa.String(length=64), nullable=False),
        sa.Column(
            "published_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_credit_policies_version_positive")),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_credit_policies")),
    )
    op.create_index(
        "uq_credit_policies_active",
        "credit_policies",
        ["active"],
        unique=True,
        postgresql_where=sa.text("active"),
    )
    op.create_table(
        "credit_recomputes",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("enterprises", sa.BigInteger(), nullable=False),
        sa.Column("changed", sa.BigInteger(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("started_by", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["policy_version"],
            ["credit_policies.version"],
            name=op.f("fk_credit_recomputes_policy_version_credit_policies"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_recomputes")),
    )
    op.create_index(
        op.f("ix_credit_recomputes_as_of"), "credit_recomputes", ["as_of"], unique=False
    )
    op.create_table(
        "abnormal_list_entries",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("cause", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("listed_on", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("basis", sa.Text(), nullable=False),
        sa.Column("authority", sa.String(length=200), nullable=False),
        sa.Column("decision_number", sa.String(length=64), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=80), nullable=True),
        sa.Column("source_ref", sa.String(length=200), nullable=True),
        sa.Column("warned_on", sa.Date(), nullable=True),
        sa.Column("removal_applied_on", sa.Date(), nullable=True),
        sa.Column("removal_application", sa.Text(), nullable=True),
        sa.Column("removal_refused_note", sa.Text(), nullable=True),
        sa.Column("removal_refused_on", sa.Date(), nullable=True),
        sa.Column("removed_on", sa.Date(), nullable=True),
        sa.Column("removal_reason", sa.Text(), nullable=True),
        sa.Column("removal_basis", sa.Text(), nullable=True),
        sa.Column("removal_authority", sa.String(length=200), nullable=True),
        sa.Column("removal_decided_by", sa.String(length=64), nullable=True),
        sa.Column("escalated_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint(
            "cause IN ('unreachable','annual_report','disclosure_overdue','false_disclosure')",
            name=op.f("ck_abnormal_list_entries_cause"),
        ),
        sa.CheckConstraint(
            "status IN ('listed','removal_applied','escalated','removed')",
            name=op.f("ck_abnormal_list_entries_status"),
        ),
        sa.CheckConstraint(
            "removed_on IS NULL OR removed_on >= listed_on",
            name=op.f("ck_abnormal_list_entries_removed_after"),
        ),
        sa.ForeignKeyConstraint(
            ["uscc"], ["enterprises.uscc"], name=op.f("fk_abnormal_list_entries_uscc_enterprises")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_abnormal_list_entries")),
        sa.UniqueConstraint("source", name=op.f("uq_abnormal_list_entries_source")),
    )
    op.create_index(
        op.f("ix_abnormal_list_entries_status"), "abnormal_list_entries", ["status"], unique=False
    )
    op.create_index(
        "ix_abnormal_list_entries_updated_at",
        "abnormal_list_entries",
        ["updated_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_abnormal_list_entries_uscc"), "abnormal_list_entries", ["uscc"], unique=False
    )
    op.create_index(
        "uq_abnormal_list_entries_open",
        "abnormal_list_entries",
        ["uscc", "cause"],
        unique=True,
        postgresql_where=sa.text("status <> 'removed'"),
    )
    op.create_table(
        "credit_class_history",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("credit_class", sa.String(length=1), nullable=False),
        sa.Column("previous_class", sa.String(length=1), nullable=True),
        sa.Column("score", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint(
            "credit_class IN ('A','B','C','D')", name=op.f("ck_credit_class_history_credit_class")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_class_history")),
    )
    op.create_index(
        "ix_credit_class_history_uscc_id", "credit_class_history", ["uscc", "id"], unique=False
    )
    op.create_table(
        "credit_events",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=True),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("ref", sa.String(length=200), server_default="", nullable=False),
        sa.Column("domain", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=80), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('result_pass','result_fail','refusal','unreachable','false_disclosure',"
            "'reinspection_fail','penalty','abnormal_listed','abnormal_removed',"
            "'serious_listed','serious_removed')",
            name=op.f("ck_credit_events_kind"),
        ),
        sa.CheckConstraint(
            "severity IS NULL OR severity IN ('minor','general','serious')",
            name=op.f("ck_credit_events_severity"),
        ),
        sa.ForeignKeyConstraint(
            ["uscc"], ["enterprises.uscc"], name=op.f("fk_credit_events_uscc_enterprises")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_events")),
        sa.UniqueConstraint("source", name=op.f("uq_credit_events_source")),
    )
    op.create_index(
        "ix_credit_events_uscc_occurred",
        "credit_events",
        ["uscc", "occurred_on"],
        unique=False,
        postgresql_include=["kind", "severity"],
    )
    op.create_table(
        "credit_scores",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("score", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("credit_class", sa.String(length=1), nullable=False),
        sa.Column("score_class", sa.String(length=1), nullable=False),
        sa.Column("hard_rule", sa.String(length=16), nullable=True),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "credit_class IN ('A','B','C','D')", name=op.f("ck_credit_scores_credit_class")
        ),
        sa.CheckConstraint(
            "score_class IN ('A','B','C','D')", name=op.f("ck_credit_scores_score_class")
        ),
        sa.CheckConstraint(
            "score >= 0 AND score <= 100", name=op.f("ck_credit_scores_score_range")
        ),
        sa.PrimaryKeyConstraint("uscc", name=op.f("pk_credit_scores")),
    )
    # the daily recompute rewrites every row: leave room on each page for HOT updates
    op.execute("ALTER TABLE credit_scores SET (fillfactor = 50)")
    op.create_table(
        "penalties",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("decision_number", sa.String(length=64), nullable=False),
        sa.Column("decision_date", sa.Date(), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("domain", sa.String(length=32), nullable=False),
        sa.Column("authority", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint(
            "domain IN ('product_quality','food_safety','pricing','advertising','licensing',"
            "'other')",
            name=op.f("ck_penalties_domain"),
        ),
        sa.CheckConstraint(
            "severity IN ('minor','general','serious')", name=op.f("ck_penalties_severity")
        ),
        sa.CheckConstraint(
            "amount IS NULL OR amount >= 0", name=op.f("ck_penalties_amount_nonneg")
        ),
        sa.ForeignKeyConstraint(
            ["uscc"], ["enterprises.uscc"], name=op.f("fk_penalties_uscc_enterprises")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_penalties")),
        sa.UniqueConstraint("decision_number", name=op.f("uq_penalties_decision_number")),
    )
    op.create_index(op.f("ix_penalties_uscc"), "penalties", ["uscc"], unique=False)
    op.create_table(
        "serious_list_entries",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("rule_id", sa.String(length=40), nullable=False),
        sa.Column(
            "trigger_event_ids",
            postgresql.ARRAY(sa.BigInteger()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("proposed_on", sa.Date(), nullable=False),
        sa.Column("proposal_reason", sa.Text(), nullable=False),
        sa.Column("proposal_basis", sa.Text(), nullable=False),
        sa.Column("proposed_by", sa.String(length=64), nullable=False),
        sa.Column("listed_on", sa.Date(), nullable=True),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("repair_eligible_on", sa.Date(), nullable=True),
        sa.Column("repair_notified_on", sa.Date(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("basis", sa.Text(), nullable=True),
        sa.Column("authority", sa.String(length=200), nullable=True),
        sa.Column("decision_number", sa.String(length=64), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_on", sa.Date(), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("repair_applied_on", sa.Date(), nullable=True),
        sa.Column("repair_application", sa.Text(), nullable=True),
        sa.Column("repair_decided_by", sa.String(length=64), nullable=True),
        sa.Column("repair_decided_on", sa.Date(), nullable=True),
        sa.Column("removed_on", sa.Date(), nullable=True),
        sa.Column("removal_reason", sa.Text(), nullable=True),
        sa.Column("removal_basis", sa.Text(), nullable=True),
        sa.Column("removal_authority", sa.String(length=200), nullable=True),
        sa.Column("abnormal_entry_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint(
            "status IN ('proposed','listed','rejected','repair_applied','removed_repaired',"
            "'removed_expired')",
            name=op.f("ck_serious_list_entries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["abnormal_entry_id"],
            ["abnormal_list_entries.id"],
            name=op.f("fk_serious_list_entries_abnormal_entry_id_abnormal_list_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["uscc"], ["enterprises.uscc"], name=op.f("fk_serious_list_entries_uscc_enterprises")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serious_list_entries")),
    )
    op.create_index(
        op.f("ix_serious_list_entries_abnormal_entry_id"),
        "serious_list_entries",
        ["abnormal_entry_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_serious_list_entries_status"), "serious_list_entries", ["status"], unique=False
    )
    op.create_index(
        "ix_serious_list_entries_updated_at", "serious_list_entries", ["updated_at"], unique=False
    )
    op.create_index(
        op.f("ix_serious_list_entries_uscc"), "serious_list_entries", ["uscc"], unique=False
    )

    # every database starts with the shipped default policy, active
    op.execute(
        sa.text(
            "INSERT INTO credit_policies (version, body, active, note, published_by) "
            "VALUES (1, CAST(:body AS jsonb), true, :note, 'system:migration')"
        ).bindparams(
            body=json.dumps(DEFAULT_POLICY_V1, ensure_ascii=False),
            note="默认信用评价规则（DESIGN §3）/ shipped default policy",
        )
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_serious_list_entries_uscc"), table_name="serious_list_entries")
    op.drop_index("ix_serious_list_entries_updated_at", table_name="serious_list_entries")
    op.drop_index(op.f("ix_serious_list_entries_status"), table_name="serious_list_entries")
    op.drop_index(
        op.f("ix_serious_list_entries_abnormal_entry_id"), table_name="serious_list_entries"
    )
    op.drop_table("serious_list_entries")
    op.drop_index(op.f("ix_penalties_uscc"), table_name="penalties")
    op.drop_table("penalties")
    op.drop_table("credit_scores")
    op.drop_index("ix_credit_events_uscc_occurred", table_name="credit_events")
    op.drop_table("credit_events")
    op.drop_index("ix_credit_class_history_uscc_id", table_name="credit_class_history")
    op.drop_table("credit_class_history")
    op.drop_index("uq_abnormal_list_entries_open", table_name="abnormal_list_entries")
    op.drop_index(op.f("ix_abnormal_list_entries_uscc"), table_name="abnormal_list_entries")
    op.drop_index("ix_abnormal_list_entries_updated_at", table_name="abnormal_list_entries")
    op.drop_index(op.f("ix_abnormal_list_entries_status"), table_name="abnormal_list_entries")
    op.drop_table("abnormal_list_entries")
    op.drop_index(op.f("ix_credit_recomputes_as_of"), table_name="credit_recomputes")
    op.drop_table("credit_recomputes")
    op.drop_index("uq_credit_policies_active", table_name="credit_policies")
    op.drop_table("credit_policies")
    op.drop_table("credit_cursors")
