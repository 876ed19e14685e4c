"""Tables of the StudioState area (issue 4): none of its own — runs and diffs use ``tables/state.py`` (see 0003)."""

from studio_brain.adapters.postgres.tables.base import metadata

__all__ = ["metadata"]
