"""Tables of the gateway area (issue 5). Empty until that issue adds them."""

from studio_brain.adapters.postgres.tables.base import metadata

__all__ = ["metadata"]
