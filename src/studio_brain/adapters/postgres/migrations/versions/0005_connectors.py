"""Connectors (issue 6): connector health-check results kept for the cockpit.

Revision ID: 0005_connectors
Revises: 0004_gateway
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_connectors"
down_revision: str | None = "0004_gateway"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "connector_health_checks",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("connector_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("breaker", sa.Text(), nullable=False),
        sa.Column("latency_ms", sa.Double(), nullable=True),
        sa.Column("error_kind", sa.Text(), nullable=True),
        sa.Column("mode", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("checked_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('healthy', 'degraded', 'down', 'not_configured')",
            name=op.f("ck_connector_health_checks_status"),
        ),
        sa.CheckConstraint(
            "breaker IN ('closed', 'open', 'half_open')", name=op.f("ck_connector_health_checks_breaker")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connector_health_checks")),
    )
    op.create_index(
        "ix_connector_health_checks_latest",
        "connector_health_checks",
        ["tenant_id", "connector_id", "checked_at"],
    )
    # Row-level security as on the gateway's tables: a second wall behind the store's tenant filter.
    op.execute("ALTER TABLE connector_health_checks ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE connector_health_checks FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON connector_health_checks"
        " USING (tenant_id = current_setting('studio_brain.tenant_id', true))"
        " WITH CHECK (tenant_id = current_setting('studio_brain.tenant_id', true))"
    )


def downgrade() -> None:
    op.execute("DROP POLICY IF EXISTS tenant_isolation ON connector_health_checks")
    op.drop_index("ix_connector_health_checks_latest", table_name="connector_health_checks")
    op.drop_table("connector_health_checks")
