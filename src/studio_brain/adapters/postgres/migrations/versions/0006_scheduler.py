"""Scheduler and swarms (issue 8): the swarm_drafts table and its cooldown trigger.

Revision ID: 0006_scheduler
Revises: 0005_connectors
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006_scheduler"
down_revision: str | None = "0005_connectors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Inserts with the same (tenant, cooldown key) are serialised by a transaction advisory lock, then an
# insert younger than the cooldown of the newest such draft is dropped (RETURN NULL): the caller sees no
# row come back and reports "cooling down". Enforced here so every writer, not only the service, obeys it.
_COOLDOWN_FUNCTION = """
CREATE FUNCTION swarm_drafts_enforce_cooldown() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('swarm-draft:' || NEW.tenant_id || ':' || NEW.cooldown_key, 0));
    IF NEW.cooldown_seconds > 0 AND EXISTS (
        SELECT 1 FROM swarm_drafts
        WHERE tenant_id = NEW.tenant_id
          AND cooldown_key = NEW.cooldown_key
          AND created_at > NEW.created_at - make_interval(secs => NEW.cooldown_seconds)
          AND created_at <= NEW.created_at
    ) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
"""


def upgrade() -> None:
    op.create_table(
        "swarm_drafts",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("rule_id", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("dedupe_key", sa.Text(), nullable=False),
        sa.Column("cooldown_key", sa.Text(), nullable=False),
        sa.Column("cooldown_seconds", sa.Integer(), nullable=False),
        sa.Column("draft_day", sa.Date(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("rationale", sa.Text(), nullable=False),
        sa.Column("recommendation", sa.Text(), nullable=False),
        sa.Column("snapshot_date", sa.Date(), nullable=True),
        sa.Column("evidence", postgresql.JSONB(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("body", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("actor_type", sa.Text(), nullable=False),
        sa.Column("actor_id", sa.Text(), nullable=False),
        sa.Column("created_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("updated_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('ops', 'finance', 'marketing')", name=op.f("ck_swarm_drafts_kind")),
        sa.CheckConstraint(
            "status IN ('open', 'draft', 'needs_review', 'approved_for_publish')",
            name=op.f("ck_swarm_drafts_status"),
        ),
        sa.CheckConstraint(
            "severity IN ('info', 'low', 'medium', 'high')", name=op.f("ck_swarm_drafts_severity")
        ),
        sa.CheckConstraint(
            "confidence >= 0 AND confidence <= 1", name=op.f("ck_swarm_drafts_confidence_range")
        ),
        sa.CheckConstraint("cooldown_seconds >= 0", name=op.f("ck_swarm_drafts_cooldown_non_negative")),
        sa.CheckConstraint("dedupe_key ~ '^[0-9a-f]{64}$'", name=op.f("ck_swarm_drafts_dedupe_key_sha256")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_swarm_drafts")),
        sa.UniqueConstraint("tenant_id", "dedupe_key", name=op.f("uq_swarm_drafts_tenant_id_dedupe_key")),
    )
    op.create_index(
        "ix_swarm_drafts_tenant_kind_created", "swarm_drafts", ["tenant_id", "kind", "created_at"]
    )
    op.create_index(
        "ix_swarm_drafts_tenant_cooldown_created", "swarm_drafts", ["tenant_id", "cooldown_key", "created_at"]
    )
    op.execute(_COOLDOWN_FUNCTION)
    op.execute(
        "CREATE TRIGGER swarm_drafts_cooldown BEFORE INSERT ON swarm_drafts"
        " FOR EACH ROW EXECUTE FUNCTION swarm_drafts_enforce_cooldown()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS swarm_drafts_cooldown ON swarm_drafts")
    op.execute("DROP FUNCTION IF EXISTS swarm_drafts_enforce_cooldown()")
    op.drop_index("ix_swarm_drafts_tenant_cooldown_created", table_name="swarm_drafts")
    op.drop_index("ix_swarm_drafts_tenant_kind_created", table_name="swarm_drafts")
    op.drop_table("swarm_drafts")
