"""stats: final_result_counts, a monthly summary of final_results kept by triggers

Pass rates grouped by category, region and period (the common questions, and the public
statistics page) add up this summary instead of scanning every tested batch. Statement-level
triggers with transition tables keep it equal to ``final_results`` whoever writes there
(finalisation, the demo, bulk loads): one upsert per statement, in key order so concurrent
writers lock summary rows in the same order.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = "category_code, region_code, month, follow_up"

# one aggregate of a transition table, as (key…, tested, passed) rows in key order
_AGG = """
    SELECT category_code, region_code, date_trunc('month', inspected_on::timestamp)::date,
           follow_up, count(*), count(*) FILTER (WHERE passed)
    FROM {rows} GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
"""

_ADD = f"""
    INSERT INTO final_result_counts AS c ({KEY}, tested, passed)
    {_AGG.format(rows="{rows}")}
    ON CONFLICT ({KEY}) DO UPDATE
    SET tested = c.tested + EXCLUDED.tested, passed = c.passed + EXCLUDED.passed;
"""

_SUB = f"""
    UPDATE final_result_counts AS c
    SET tested = c.tested - o.tested, passed = c.passed - o.passed
    FROM ({_AGG.format(rows="{rows}")}) AS o (category_code, region_code, month, follow_up,
                                            tested, passed)
    WHERE (c.category_code, c.region_code, c.month, c.follow_up)
        = (o.category_code, o.region_code, o.month, o.follow_up);
    DELETE FROM final_result_counts WHERE tested = 0;
"""


def upgrade() -> None:
    op.create_table(
        "final_result_counts",
        sa.Column("category_code", sa.String(length=32), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("follow_up", sa.Boolean(), nullable=False),
        sa.Column("tested", sa.BigInteger(), nullable=False),
        sa.Column("passed", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "tested >= 0 AND passed >= 0 AND passed <= tested",
            name=op.f("ck_final_result_counts_counts"),
        ),
        sa.PrimaryKeyConstraint(
            "category_code",
            "region_code",
            "month",
            "follow_up",
            name=op.f("pk_final_result_counts"),
        ),
    )
    op.execute(
        f"INSERT INTO final_result_counts ({KEY}, tested, passed) "
        + _AGG.format(rows="final_results")
    )
    bodies = {
        "insert": _ADD.format(rows="new_rows"),
        "delete": _SUB.format(rows="old_rows"),
        "update": _SUB.format(rows="old_rows") + _ADD.format(rows="new_rows"),
        "truncate": "TRUNCATE final_result_counts;",
    }
    transition = {
        "insert": "REFERENCING NEW TABLE AS new_rows",
        "delete": "REFERENCING OLD TABLE AS old_rows",
        "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "truncate": "",
    }
    for event, body in bodies.items():
        op.execute(
            f"CREATE FUNCTION final_result_counts_{event}() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN {body} RETURN NULL; END $$"
        )
        op.execute(
            f"CREATE TRIGGER final_result_counts_{event} AFTER {event.upper()} "
            f"ON final_results {transition[event]} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION final_result_counts_{event}()"
        )


def downgrade() -> None:
    for event in ("truncate", "update", "delete", "insert"):
        op.execute(f"DROP TRIGGER final_result_counts_{event} ON final_results")
        op.execute(f"DROP FUNCTION final_result_counts_{event}()")
    op.drop_table("final_result_counts")
