"""StudioState (issue 4): intentionally no tables of its own.

Snapshot runs and diffs live in the foundation's ``snapshot_runs``/``snapshot_diffs`` (0001); every run records
its rule table's version and hash, and the full rule-table definition travels in the run's
``studio_state.computed`` audit event, so no separate rule-table store is needed. The revision is kept so the
chain of revision ids stays stable.

Revision ID: 0003_studio_state
Revises: 0002_audit
Create Date: 2026-11-25
"""

from collections.abc import Sequence

revision: str = "0003_studio_state"
down_revision: str | None = "0002_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
