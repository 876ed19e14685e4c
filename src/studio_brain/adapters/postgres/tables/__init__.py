"""SQLAlchemy Core table definitions: the schema the migrations build, compared by ``alembic check``.

Each area owns one module; importing this package registers them all on :data:`metadata`.
Stores use plain SQL through psycopg; these definitions exist for Alembic.
"""

from studio_brain.adapters.postgres.tables import (
    audit,
    cockpit,  # noqa: F401  (issue 14)
    connectors,
    gateway,
    identity,  # noqa: F401  (issue 11)
    safety,  # noqa: F401  (issue 17)
    scheduler,
    state,
    studio_state,
)
from studio_brain.adapters.postgres.tables.base import metadata

__all__ = ["audit", "connectors", "gateway", "metadata", "scheduler", "state", "studio_state"]
