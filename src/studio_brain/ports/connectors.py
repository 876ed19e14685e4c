"""Connector: the one async protocol every device or action target implements (seed §5, design D9)."""

from __future__ import annotations

from typing import Any, Protocol

from studio_brain.domain.connectors import (
    ConnectorCommand,
    ConnectorContext,
    ConnectorHealth,
    ConnectorMode,
    ConnectorResponse,
    DryRunSupport,
)


class Connector(Protocol):
    @property
    def id(self) -> str:
        """Stable id, e.g. ``hubitat`` or ``roborock``."""
        ...

    @property
    def target(self) -> str:
        """The capability target it serves: hubitat | roborock | local | firestore | ..."""
        ...

    @property
    def version(self) -> str: ...

    @property
    def mode(self) -> ConnectorMode:
        """READ_ONLY unless configured otherwise."""
        ...

    @property
    def dry_run_support(self) -> DryRunSupport: ...

    async def health(self, ctx: ConnectorContext) -> ConnectorHealth: ...

    async def read_status(self, ctx: ConnectorContext, input: dict[str, Any]) -> ConnectorResponse:
        """A read; ``input`` selects what (e.g. ``{"deviceId": "12"}``; empty = everything)."""
        ...

    async def execute(self, ctx: ConnectorContext, command: ConnectorCommand) -> ConnectorResponse:
        """Act. Raises ConnectorError(READ_ONLY_VIOLATION) before any I/O when read-only and
        ``command.write``; ConnectorError(NOT_ALLOWED) outside the allowlist."""
        ...


class ConnectorHealthStore(Protocol):
    """Where health-check results are kept for the cockpit (PostgreSQL in production)."""

    async def record(self, tenant_id: str, health: ConnectorHealth) -> None: ...

    async def latest(self, tenant_id: str) -> list[ConnectorHealth]:
        """The newest result per connector, ordered by connector id."""
        ...

    async def history(self, tenant_id: str, connector_id: str, *, limit: int = 50) -> list[ConnectorHealth]:
        """Newest first."""
        ...
