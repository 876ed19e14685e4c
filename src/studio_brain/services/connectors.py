"""Connector use cases: the registry of configured connectors, health checks stored for the cockpit,
and device readings across connectors. Talks only to the Connector and ConnectorHealthStore ports."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from studio_brain.domain.connectors import (
    BreakerState,
    ConnectorCommand,
    ConnectorContext,
    ConnectorHealth,
    ConnectorMode,
    ConnectorResponse,
    DryRunSupport,
    HealthStatus,
)
from studio_brain.domain.errors import ConfigError, ConnectorError, NotFound
from studio_brain.logging import get_logger
from studio_brain.ports import Clock, Connector, ConnectorHealthStore, IdFactory

log = get_logger(__name__)


class UnconfiguredConnector:
    """Stands in for a connector whose settings are missing: health says ``not_configured`` (never
    healthy), and any read or write is refused with the setting to fill in. Does no I/O."""

    dry_run_support = DryRunSupport.UNSUPPORTED
    version = "-"

    def __init__(self, *, connector_id: str, target: str, hint: str, clock: Clock) -> None:
        self._id = connector_id
        self._target = target
        self._hint = hint
        self._clock = clock

    @property
    def id(self) -> str:
        return self._id

    @property
    def target(self) -> str:
        return self._target

    @property
    def mode(self) -> ConnectorMode:
        return ConnectorMode.READ_ONLY

    def __repr__(self) -> str:
        return f"<UnconfiguredConnector id={self._id!r}>"

    async def health(self, ctx: ConnectorContext) -> ConnectorHealth:
        return ConnectorHealth(
            connector_id=self._id,
            status=HealthStatus.NOT_CONFIGURED,
            request_id=ctx.request_id,
            checked_at=self._clock.now(),
            detail=self._hint,
        )

    async def read_status(self, ctx: ConnectorContext, input: dict[str, Any]) -> ConnectorResponse:
        raise ConfigError(f"{self._id} is not configured: {self._hint}")

    async def execute(self, ctx: ConnectorContext, command: ConnectorCommand) -> ConnectorResponse:
        raise ConfigError(f"{self._id} is not configured: {self._hint}")


class ConnectorRegistry(Mapping[str, Connector]):
    """Every known connector by id (configured or not); also the gateway's ConnectorDirectory."""

    def __init__(self, connectors: Iterable[Connector]) -> None:
        self._by_id: dict[str, Connector] = {}
        for connector in connectors:
            if connector.id in self._by_id:
                raise ConfigError(f"two connectors share the id {connector.id!r}")
            self._by_id[connector.id] = connector

    def __getitem__(self, connector_id: str) -> Connector:
        return self._by_id[connector_id]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._by_id))

    def __len__(self) -> int:
        return len(self._by_id)

    def is_configured(self, connector_id: str) -> bool:
        return connector_id in self._by_id and not isinstance(
            self._by_id[connector_id], UnconfiguredConnector
        )

    def get_connector(self, connector_id: str) -> Connector:
        try:
            return self._by_id[connector_id]
        except KeyError:
            known = ", ".join(sorted(self._by_id)) or "none"
            raise NotFound(f"no connector {connector_id!r} (known: {known})") from None

    def connector_for(self, tenant_id: str, target: str) -> Connector | None:
        """The configured connector serving ``target`` (one studio per brain: ``tenant_id`` is the
        brain's own), or None when none is configured — the gateway then refuses with ADAPTER_MISSING."""
        for connector_id, connector in self._by_id.items():
            if connector.target == target and self.is_configured(connector_id):
                return connector
        return None

    def replace(self, connector: Connector) -> None:
        """Swap in a connector under its id (the demo points the connectors at its fakes)."""
        self._by_id[connector.id] = connector


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceReadings:
    connector_id: str
    request_id: str
    devices: list[dict[str, Any]]
    error: str | None = None
    error_kind: str | None = None
    output_hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "connector": self.connector_id,
            "requestId": self.request_id,
            "devices": self.devices,
            "error": self.error,
            "errorKind": self.error_kind,
            "outputHash": self.output_hash,
        }


class ConnectorHealthService:
    """Checks every connector's health (concurrently), stores each result, and reads devices."""

    def __init__(
        self,
        *,
        registry: ConnectorRegistry,
        store: ConnectorHealthStore | None,
        tenant_id: str,
        clock: Clock,
        ids: IdFactory,
        timeout_seconds: float = 10.0,
    ) -> None:
        self._registry = registry
        self._store = store
        self._tenant_id = tenant_id
        self._clock = clock
        self._ids = ids
        self._timeout = timeout_seconds

    @property
    def registry(self) -> ConnectorRegistry:
        return self._registry

    def _ctx(self) -> ConnectorContext:
        return ConnectorContext(request_id=self._ids.new_id(), timeout_seconds=self._timeout)

    async def _check_one(self, connector: Connector) -> ConnectorHealth:
        ctx = self._ctx()
        try:
            health = await connector.health(ctx)
        except ConnectorError as err:  # a connector should answer DOWN itself; never let one sink the rest
            health = ConnectorHealth(
                connector_id=connector.id,
                status=HealthStatus.DOWN,
                request_id=ctx.request_id,
                checked_at=self._clock.now(),
                breaker=BreakerState.CLOSED,
                detail=err.message,
            )
        log.info(
            "connector.health.checked",
            connector=health.connector_id,
            status=health.status.value,
            breaker=health.breaker.value,
            latency_ms=None if health.latency_ms is None else round(health.latency_ms, 2),
        )
        return health

    async def check_all(self, *, record: bool = True) -> list[ConnectorHealth]:
        """Every connector's health now, ordered by id; stored for the cockpit when ``record``."""
        results = list(await asyncio.gather(*(self._check_one(c) for c in self._registry.values())))
        if record and self._store is not None:
            for health in results:
                await self._store.record(self._tenant_id, health)
        return results

    async def latest(self) -> list[ConnectorHealth]:
        """The newest stored result per connector (what the cockpit shows). A connector never checked
        yet, or whose breaker changed state since its stored check, is checked now (and stored), so every
        connector is always listed with a real status."""
        stored = {h.connector_id: h for h in await self._store.latest(self._tenant_id)} if self._store else {}
        # issue 13: a breaker that opened (or closed) since the last check makes the stored row a lie
        # ("healthy, breaker closed" for minutes while calls are refused): check those again now
        missing = [
            c
            for cid, c in self._registry.items()
            if cid not in stored or _live_breaker(c) not in (None, stored[cid].breaker)
        ]
        fresh = list(await asyncio.gather(*(self._check_one(c) for c in missing)))
        if self._store is not None:
            for health in fresh:
                await self._store.record(self._tenant_id, health)
        merged = {**stored, **{h.connector_id: h for h in fresh}}
        return [merged[cid] for cid in self._registry if cid in merged]

    async def read_devices(self, connector_id: str | None = None) -> list[DeviceReadings]:
        """Device readings from one connector, or from every configured one (a failing connector is
        reported with its error; the others still answer)."""
        ids = (
            [connector_id] if connector_id else [c for c in self._registry if self._registry.is_configured(c)]
        )
        for cid in ids:
            self._registry.get_connector(cid)
        return list(await asyncio.gather(*(self._read_one(cid) for cid in ids)))

    async def _read_one(self, connector_id: str) -> DeviceReadings:
        connector = self._registry.get_connector(connector_id)
        ctx = self._ctx()
        try:
            response = await connector.read_status(ctx, {})
        except ConnectorError as err:
            return DeviceReadings(
                connector_id=connector_id,
                request_id=ctx.request_id,
                devices=[],
                error=err.message,
                error_kind=err.kind,
            )
        devices = response.data.get("devices")
        return DeviceReadings(
            connector_id=connector_id,
            request_id=response.request_id,
            devices=list(devices) if isinstance(devices, list) else [],
            output_hash=response.output_hash,
        )


def _live_breaker(connector: Connector) -> BreakerState | None:
    """The in-process breaker state of a connector that has one (HTTP connectors), else None."""
    state = getattr(getattr(connector, "breaker", None), "state", None)
    return state if isinstance(state, BreakerState) else None
