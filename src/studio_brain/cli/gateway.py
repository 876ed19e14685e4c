"""CLI commands of the gateway area (issue 5). Registered on the root app by :func:`register`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app (none yet)."""
