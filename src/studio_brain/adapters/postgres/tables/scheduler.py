"""Tables of the scheduler area (issue 8). Empty until that issue adds them."""

from studio_brain.adapters.postgres.tables.base import metadata

__all__ = ["metadata"]
