"""Tables of the studio state area (issue 4). Empty until that issue adds them."""

from studio_brain.adapters.postgres.tables.base import metadata

__all__ = ["metadata"]
