"""The gateway's ConnectorDirectory: connectors by target, the per-tenant ``local`` notes connector, and
a fallback directory (the device connectors, wired after the gateway) looked up at call time."""

from __future__ import annotations

from collections.abc import Callable

from studio_brain.ports.connectors import Connector
from studio_brain.ports.gateway import ConnectorDirectory


class DictConnectorDirectory:
    """Connectors by target; ``local_factory`` builds the per-tenant ``local`` notes connector, and
    ``fallback`` yields the device connectors' directory (looked up at call time, wired later)."""

    def __init__(
        self,
        connectors: dict[str, Connector] | None = None,
        *,
        local_factory: Callable[[str], Connector] | None = None,
        fallback: Callable[[], ConnectorDirectory | None] | None = None,
    ) -> None:
        self._connectors = dict(connectors or {})
        self._local_factory = local_factory
        self._local: dict[str, Connector] = {}
        self._fallback = fallback

    def add(self, connector: Connector) -> None:
        self._connectors[connector.target] = connector

    def connector_for(self, tenant_id: str, target: str) -> Connector | None:
        if target == "local" and self._local_factory is not None:
            if tenant_id not in self._local:
                self._local[tenant_id] = self._local_factory(tenant_id)
            return self._local[tenant_id]
        if target in self._connectors:
            return self._connectors[target]
        other = self._fallback() if self._fallback is not None else None
        return other.connector_for(tenant_id, target) if other is not None else None
