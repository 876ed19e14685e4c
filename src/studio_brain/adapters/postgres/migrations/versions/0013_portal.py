"""Portal Control Tower (issue 21): acknowledgements.

Revision ID: 0013_portal
Revises: 0012_cockpit
Create Date: 2026-12-01

Reserved slot in the linear chain, and it stays a no-op: an overseer acknowledgement is an audit event
(``control_tower.overseer.acknowledged``, hash-chained and tenant-scoped like every event), triage
feedback too (``trust_safety.triage.feedback``), and the Control Tower reads what other tables already
hold. No new table, so nothing new for row-level security.
"""

from collections.abc import Sequence

revision: str = "0013_portal"
down_revision: str | None = "0012_cockpit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
