"""The Brain (what an entry point gets from :func:`studio_brain.bootstrap.open_brain`: total and frozen),
where its database is (:class:`DatabaseTarget`) and :class:`BrainParts`, the scratchpad wiring fills.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeVar

from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.embedded import EmbeddedServer
from studio_brain.adapters.postgres.leader import PostgresLeaderLock
from studio_brain.domain.errors import ConfigError
from studio_brain.ports import CacheStore, Clock, EventStore, IdFactory, StateStore
from studio_brain.ports.record_ledger import RecordLedger
from studio_brain.services.audit import AuditService
from studio_brain.services.brief import MorningBriefService
from studio_brain.services.connectors import ConnectorHealthService, ConnectorRegistry
from studio_brain.services.gateway import GatewayService
from studio_brain.services.identity import IdentityService
from studio_brain.services.jobs import JobService
from studio_brain.services.notify import NotificationService
from studio_brain.services.rebuild import RebuildService
from studio_brain.services.safety import SafetyWatch
from studio_brain.services.state import StateService
from studio_brain.services.swarms.drafts import DraftService
from studio_brain.services.swarms.runner import SwarmService
from studio_brain.settings import Settings

T = TypeVar("T")
#: the stores a brain runs on: PostgreSQL, or the in-memory twins that pass the same contract suites
AdapterChoice = Literal["postgres", "memory"]


@dataclass(frozen=True, kw_only=True, slots=True)
class DatabaseTarget:
    """Where the database is: an external URL, or the embedded server this process joined."""

    url: str
    embedded: EmbeddedServer | None


@dataclass(frozen=True, kw_only=True, slots=True)
class Brain:
    """Everything an entry point needs, wired once: total (no field is missing) and frozen."""

    settings: Settings
    database: Database
    database_target: DatabaseTarget
    clock: Clock
    ids: IdFactory
    state_store: StateStore
    cache: CacheStore
    #: the audit log (issue 3); every area appends through it (or through the gateway)
    events: EventStore
    #: verify, checkpoints and exports of the audit log (issue 3)
    audit: AuditService
    #: StudioState (issue 4): snapshots, diffs, history; and its rebuild from the audit log
    state: StateService
    rebuild: RebuildService
    #: every device connector, configured or not (issue 6); also the gateway's ConnectorDirectory
    connectors: ConnectorRegistry
    #: connector health checks stored for the cockpit, and device readings (issue 6)
    connector_health: ConnectorHealthService
    #: scheduler and swarms (issue 8): the job catalogue, the leader lock, drafts and the swarms
    jobs: JobService
    leader_lock: PostgresLeaderLock
    drafts: DraftService
    swarms: SwarmService
    #: the capability gateway (issue 5): proposals, approvals, execution, policy, agent tokens
    gateway: GatewayService
    #: personal identities (issue 11): staff accounts, passkeys, sessions, personal tokens, login links
    identity: IdentityService
    #: safety watch, notifications and the morning brief (issue 17)
    safety: SafetyWatch
    notifications: NotificationService
    brief: MorningBriefService
    #: which stores this brain runs on (``open_brain(adapters=…)``)
    adapters: AdapterChoice = "postgres"

    @property
    def tenant_id(self) -> str:
        return self.settings.tenant_id


def _wired(value: T | None, name: str) -> T:
    if value is None:
        raise ConfigError(f"bootstrap left {name} unwired")
    return value


@dataclass(kw_only=True)
class BrainParts:
    """The wiring scratchpad of :func:`open_brain`: the Brain's fields, filled section by section (a
    later section reads what an earlier one set), then :meth:`freeze` checks every one is set. It never
    leaves the composition root (``bootstrap`` and ``wiring``). A new service gets a field here and in :class:`Brain`, and a line in ``freeze``.
    """

    settings: Settings
    database: Database
    database_target: DatabaseTarget
    clock: Clock
    ids: IdFactory
    state_store: StateStore
    cache: CacheStore
    #: the audit log (issue 3); every area appends through it (or through the gateway)
    events: EventStore | None = None
    #: verify, checkpoints and exports of the audit log (issue 3)
    audit: AuditService | None = None
    #: StudioState (issue 4): snapshots, diffs, history; and its rebuild from the audit log
    state: StateService | None = None
    rebuild: RebuildService | None = None
    #: every device connector, configured or not (issue 6); also the gateway's ConnectorDirectory
    connectors: ConnectorRegistry | None = None
    #: connector health checks stored for the cockpit, and device readings (issue 6)
    connector_health: ConnectorHealthService | None = None
    #: scheduler and swarms (issue 8): the job catalogue, the leader lock, drafts and the swarms
    jobs: JobService | None = None
    leader_lock: PostgresLeaderLock | None = None
    drafts: DraftService | None = None
    swarms: SwarmService | None = None
    #: the capability gateway (issue 5): proposals, approvals, execution, policy, agent tokens
    gateway: GatewayService | None = None
    #: personal identities (issue 11): staff accounts, passkeys, sessions, personal tokens, login links
    identity: IdentityService | None = None
    #: safety watch, notifications and the morning brief (issue 17)
    safety: SafetyWatch | None = None
    notifications: NotificationService | None = None
    brief: MorningBriefService | None = None
    adapters: AdapterChoice = "postgres"
    #: issue 12: the floors no copy of a keyed row may fall below (identity and the kill switch read it);
    #: wiring only — the services that need it hold it
    record_ledger: RecordLedger | None = None

    @property
    def tenant_id(self) -> str:
        return self.settings.tenant_id

    def freeze(self) -> Brain:
        """The total, frozen Brain; ConfigError names a service no section wired."""
        return Brain(
            settings=self.settings,
            database=self.database,
            database_target=self.database_target,
            clock=self.clock,
            ids=self.ids,
            state_store=self.state_store,
            cache=self.cache,
            events=_wired(self.events, "events"),
            audit=_wired(self.audit, "audit"),
            state=_wired(self.state, "state"),
            rebuild=_wired(self.rebuild, "rebuild"),
            connectors=_wired(self.connectors, "connectors"),
            connector_health=_wired(self.connector_health, "connector_health"),
            jobs=_wired(self.jobs, "jobs"),
            leader_lock=_wired(self.leader_lock, "leader_lock"),
            drafts=_wired(self.drafts, "drafts"),
            swarms=_wired(self.swarms, "swarms"),
            gateway=_wired(self.gateway, "gateway"),
            identity=_wired(self.identity, "identity"),
            safety=_wired(self.safety, "safety"),
            notifications=_wired(self.notifications, "notifications"),
            brief=_wired(self.brief, "brief"),
            adapters=self.adapters,
        )
