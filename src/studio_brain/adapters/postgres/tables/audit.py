"""Tables of the audit area (issue 3). Empty until that issue adds them."""

from studio_brain.adapters.postgres.tables.base import metadata

__all__ = ["metadata"]
