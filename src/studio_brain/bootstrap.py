"""The composition root: the one place that picks adapters from settings and wires services.

Entry points (CLI, web, scheduler) call :func:`open_brain` and use what it yields; nothing else
constructs adapters.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

from studio_brain.adapters.attestation_keys import AttestationSigner, read_jwks, verify_token
from studio_brain.adapters.audit_files import CheckpointFile
from studio_brain.adapters.cache import MemoryCacheStore
from studio_brain.adapters.clock import SystemClock, UUID7Factory
from studio_brain.adapters.connectors.registry import build_connectors
from studio_brain.adapters.demo_source import DemoCloud
from studio_brain.adapters.execution_journal import FileExecutionJournal
from studio_brain.adapters.firestore import FirestoreReader
from studio_brain.adapters.functions_http import FunctionsFinanceReader
from studio_brain.adapters.keys import (
    Ed25519Signer,
    Ed25519Verifier,
    LazySigner,
    ensure_mac_keyring,
    load_signing_key,
)
from studio_brain.adapters.memory import (
    InMemoryCheckpointStore,
    InMemoryDraftStore,
    InMemoryEventStore,
    InMemoryGatewayStore,
    InMemoryNotesConnector,
    InMemoryStateStore,
    NotesTable,
)
from studio_brain.adapters.postgres.connector_health_store import PostgresConnectorHealthStore
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.drafts_store import PostgresDraftStore
from studio_brain.adapters.postgres.embedded import EmbeddedServer, start_embedded, stop_embedded
from studio_brain.adapters.postgres.event_store import PostgresCheckpointStore, PostgresEventStore
from studio_brain.adapters.postgres.leader import PostgresJobLocks, PostgresLeaderLock
from studio_brain.adapters.postgres.migrate import upgrade_to_head
from studio_brain.adapters.postgres.roles import app_url as app_role_url
from studio_brain.adapters.postgres.roles import session_options
from studio_brain.adapters.postgres.state_store import PostgresStateStore
from studio_brain.adapters.rule_files import load_calendar, load_rule_table
from studio_brain.domain.attestation import Verification
from studio_brain.domain.errors import ConfigError, StudioBrainError
from studio_brain.logging import get_logger
from studio_brain.ports import CacheStore, Clock, CloudReader, Connector, EventStore, IdFactory, StateStore
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
from studio_brain.services.swarms.drafts import DraftService, GatewayProposalDrafter
from studio_brain.services.swarms.runner import SwarmService
from studio_brain.settings import Settings

log = get_logger(__name__)

T = TypeVar("T")
#: the stores a brain runs on: PostgreSQL, or the in-memory twins that pass the same contract suites
AdapterChoice = Literal["postgres", "memory"]


@dataclass(frozen=True, kw_only=True, slots=True)
class DatabaseTarget:
    """Where the database is: an external URL, or the embedded server this process joined."""

    url: str
    embedded: EmbeddedServer | None


def provision_database(settings: Settings) -> DatabaseTarget:
    """The configured external server, or the embedded one (started or joined). Never a silent fallback."""
    if settings.database_url is not None:
        return DatabaseTarget(url=settings.database_url.get_secret_value(), embedded=None)
    server = start_embedded(settings.home)
    log.info(
        "database.embedded.ready", data_dir=str(server.data_dir), seconds=round(server.started_in_seconds, 3)
    )
    return DatabaseTarget(url=server.url, embedded=server)


def load_audit_signer(settings: Settings) -> Ed25519Signer:
    """The audit checkpoint key from settings, or the key file (created 0600 at first use)."""
    secret = settings.audit_signing_key
    return load_signing_key(
        settings.audit_key_path, secret_hex=None if secret is None else secret.get_secret_value()
    )


def attestation_signer(settings: Settings) -> AttestationSigner:
    """The approval-attestation key of this installation (issue 15): created 0600 at first use under
    STUDIO_BRAIN_HOME; its public half is the JWKS the API publishes and the CLI prints."""
    return AttestationSigner(settings.attestation_key_path)


def jwks_from_file(path: Path) -> dict[str, Any]:
    """A JWKS document from a file (``attestations verify --jwks``); ConfigError when it is not one."""
    return read_jwks(path)


def verify_attestation(
    token: str, jwks: dict[str, Any], *, expected: dict[str, Any] | None = None
) -> Verification:
    """Check one approval attestation against a JWKS document, offline (``attestations verify``)."""
    return verify_token(token, jwks, expected=expected)


def release_database(target: DatabaseTarget) -> None:
    if target.embedded is not None:
        stop_embedded(target.embedded)


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
    leaves this module. A new service gets a field here and in :class:`Brain`, and a line in ``freeze``.
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


def wire_identity(brain: BrainParts) -> IdentityService:
    """Issue 11: staff accounts, passkeys (for the configured RP and origin), sessions and tokens."""
    from datetime import timedelta

    from studio_brain.adapters.identity_key import IDENTITY_KEY_FILE, IdentityKey
    from studio_brain.adapters.postgres.identity_store import PostgresIdentityStore
    from studio_brain.adapters.webauthn import WebAuthnPasskeys
    from studio_brain.domain.identity import SessionTimes
    from studio_brain.services.credentials import CredentialService
    from studio_brain.services.identity_core import IdentityCore

    s = brain.settings
    core = IdentityCore(
        tenant_id=s.tenant_id,
        store=PostgresIdentityStore(brain.database),
        # beside the audit keys, so `studio-brain backup` keeps it with them
        key=IdentityKey(s.home / "keys" / IDENTITY_KEY_FILE),
        events=brain.events,
        clock=brain.clock,
        ids=brain.ids,
    )
    credentials = CredentialService(
        core,
        times=SessionTimes(
            lifetime=timedelta(minutes=s.session_minutes), idle=timedelta(minutes=s.session_idle_minutes)
        ),
        login_link_ttl=timedelta(minutes=s.login_link_minutes),
        cli_code_ttl=timedelta(minutes=s.cli_code_minutes),
    )
    return IdentityService(
        core,
        credentials=credentials,
        passkeys=WebAuthnPasskeys(rp_id=s.passkey_rp_id, rp_name="Studio Brain", origins=[s.cockpit_url]),
        invite_ttl=timedelta(minutes=s.invite_minutes),
    )


def wire_safety(brain: BrainParts, demo_cloud: DemoCloud | None) -> None:
    """Issue 17: notifications (Apprise), the safety watch and the morning brief, and their two jobs."""
    from studio_brain.adapters.demo_safety import DemoFiringReader
    from studio_brain.adapters.firestore_firings import FirestoreFiringReader
    from studio_brain.adapters.notify_apprise import AppriseNotifier
    from studio_brain.adapters.postgres.safety_store import PostgresNotificationStore, PostgresSafetyStore
    from studio_brain.adapters.rule_files import load_safety_rules
    from studio_brain.domain.notify import RetryPolicy, parse_quiet_hours, parse_routes
    from studio_brain.domain.safety import parse_studio_hours
    from studio_brain.domain.schedule import parse_schedule
    from studio_brain.services.brief import MORNING_BRIEF_JOB, morning_brief_job
    from studio_brain.services.jobs import JobDefinition
    from studio_brain.services.notify import NotifyPolicy
    from studio_brain.services.safety import SAFETY_WATCH_JOB, DeviceSelection, safety_watch_job

    s = brain.settings

    def _names(text: str) -> tuple[str, ...]:
        return tuple(n.strip() for n in text.split(",") if n.strip())

    brain.notifications = NotificationService(
        tenant_id=s.tenant_id,
        store=PostgresNotificationStore(brain.database),
        notifier=AppriseNotifier.from_text(s.notify_targets, timeout_seconds=s.notify_timeout_seconds),
        policy=NotifyPolicy(
            routes=parse_routes(s.notify_routes),
            quiet=parse_quiet_hours(s.notify_quiet_hours),
            retry=RetryPolicy(
                attempts=s.notify_attempts,
                base_seconds=s.notify_backoff_base_seconds,
                cap_seconds=s.notify_backoff_cap_seconds,
            ),
        ),
        clock=brain.clock,
        ids=brain.ids,
        zone=s.zone,
        events=brain.events,
        lease_seconds=max(120.0, 3 * s.notify_timeout_seconds),
    )
    firings: DemoFiringReader | FirestoreFiringReader = (
        DemoFiringReader(demo_cloud, now=brain.clock.now)
        if s.state_source == "demo" and demo_cloud is not None
        else FirestoreFiringReader(project_id=s.firestore_project_id)
    )
    if brain.connector_health is None:  # pragma: no cover - open_brain wires connectors first
        return
    brain.safety = SafetyWatch(
        tenant_id=s.tenant_id,
        table=load_safety_rules(s.safety_rules_file),
        store=PostgresSafetyStore(brain.database),
        devices=brain.connector_health,
        firings=firings,
        selection=DeviceSelection(
            kiln_outlet=s.safety_kiln_outlet.strip(),
            doors=_names(s.safety_door_devices),
            watched=_names(s.safety_watched_devices),
            kiln_id=s.safety_kiln_id.strip() or None,
        ),
        hours=parse_studio_hours(s.studio_hours),
        calendar=load_calendar(s.calendar_file),
        notifications=brain.notifications,
        drafts=brain.drafts,
        clock=brain.clock,
        ids=brain.ids,
        zone=s.zone,
        cockpit_url=s.cockpit_url,
        events=brain.events,
    )
    brain.brief = MorningBriefService(
        tenant_id=s.tenant_id,
        state_store=brain.state_store,
        watch=brain.safety,
        notifications=brain.notifications,
        proposals=brain.gateway,
        jobs=brain.jobs,
        connectors=brain.connector_health,
        clock=brain.clock,
        zone=s.zone,
        cockpit_url=s.cockpit_url,
        calendar=brain.safety.calendar,
    )
    if brain.jobs is None or not s.safety_enabled:
        return
    brain.jobs.register(
        JobDefinition(
            name=SAFETY_WATCH_JOB,
            description="Read the safety devices and kiln firings; open findings, drafts and alerts",
            action=safety_watch_job(brain.safety),
            schedule=parse_schedule(s.schedule_safety_watch),
        )
    )
    brief_schedule = parse_schedule(s.schedule_morning_brief)
    brain.jobs.register(
        JobDefinition(
            name=MORNING_BRIEF_JOB,
            description="Send the morning brief to the notification targets",
            action=morning_brief_job(brain.brief, brief_schedule, s.zone),
            schedule=brief_schedule,
        )
    )


def _wire_scheduler_and_swarms(brain: BrainParts) -> None:
    """Issue 8: drafts, swarms, the leader lock, and every job whose service is present."""
    import os
    import socket

    from studio_brain.domain.anomaly import DetectorConfig
    from studio_brain.domain.schedule import parse_schedule
    from studio_brain.services import jobs as j
    from studio_brain.services.swarms.finance import FinanceRules, FinanceSwarm
    from studio_brain.services.swarms.marketing import MarketingSwarm
    from studio_brain.services.swarms.ops import OpsRules, OpsSwarm

    s = brain.settings
    brain.drafts = DraftService(
        tenant_id=s.tenant_id,
        store=PostgresDraftStore(brain.database, zone=s.zone)
        if brain.adapters == "postgres"
        else InMemoryDraftStore(zone=s.zone),
        clock=brain.clock,
        ids=brain.ids,
        events=brain.events,
        state_store=brain.state_store,
        proposals=GatewayProposalDrafter(brain.gateway) if brain.gateway is not None else None,
    )
    ops = OpsSwarm(
        rules=OpsRules(
            backlog_min_active=s.swarm_ops_backlog_min_active,
            backlog_ratio=s.swarm_ops_backlog_ratio,
            agent_queue_min=s.swarm_ops_agent_queue_min,
            blocked_tickets_min=s.swarm_ops_blocked_tickets_min,
            cooldown_hours=s.swarm_cooldown_hours,
        ),
        detector=DetectorConfig(
            threshold=s.swarm_ops_z_threshold,
            min_history_days=s.swarm_ops_min_history_days,
            window_days=s.swarm_ops_window_days,
        ),
        calendar=load_calendar(s.calendar_file),
    )
    finance = FinanceSwarm(
        rules=FinanceRules(
            max_read_age=timedelta(hours=s.swarm_finance_max_read_age_hours),
            cooldown_hours=s.swarm_cooldown_hours,
        )
    )
    brain.swarms = SwarmService(
        tenant_id=s.tenant_id,
        state_store=brain.state_store,
        drafts=brain.drafts,
        clock=brain.clock,
        zone=s.zone,
        swarms=(ops, finance, MarketingSwarm()),
        history_days=s.swarm_ops_window_days + 14,
    )
    brain.leader_lock = PostgresLeaderLock(brain.database_target.url, tenant_id=s.tenant_id)
    brain.jobs = JobService(
        tenant_id=s.tenant_id,
        state_store=brain.state_store,
        locks=PostgresJobLocks(brain.database),
        clock=brain.clock,
        ids=brain.ids,
        zone=s.zone,
        events=brain.events,
        backoff_base_seconds=s.job_backoff_base_seconds,
        backoff_cap_seconds=s.job_backoff_cap_seconds,
        runner=f"{socket.gethostname()}:{os.getpid()}",
    )
    schedules = j.JobSchedules(
        snapshot=parse_schedule(s.schedule_snapshot),
        daily_close=parse_schedule(s.schedule_daily_close),
        connector_health=parse_schedule(s.schedule_connector_health),
        audit_checkpoint=parse_schedule(s.schedule_audit_checkpoint),
        swarms=parse_schedule(s.schedule_swarms) if s.schedule_swarms else None,
    )
    for job in j.standard_jobs(
        schedules,
        snapshot=j.snapshot_job(brain.state) if brain.state is not None else None,
        daily_close=j.daily_close_job(brain.state, s.zone) if brain.state is not None else None,
        connector_health=j.connector_health_job(brain.connector_health) if brain.connector_health else None,
        audit_checkpoint=j.audit_checkpoint_job(brain.audit, s.tenant_id) if brain.audit else None,
        swarms=j.swarms_job(brain.swarms),
    ):
        brain.jobs.register(job)
    if brain.gateway is not None:
        # issue 13: journalled outcomes recorded, stale executions marked, unknown outcomes read back
        gateway = brain.gateway

        async def recover_executions(_ctx: j.JobContext) -> dict[str, Any]:
            return (await gateway.recover_executions(s.tenant_id)).as_json()

        brain.jobs.register(
            j.JobDefinition(
                name=j.EXECUTION_RECOVERY,
                description="Record journalled device outcomes, mark stale executions, read back unknown ones",
                action=recover_executions,
                schedule=parse_schedule(s.schedule_execution_recovery),
            )
        )


async def _seal_unkeyed_at_upgrade(audit: AuditService) -> None:
    """The keyring was just created: seal chains written before the keyed format under a checkpoint
    (docs/audit.md "Upgrading to the keyed chain"). Never stops the brain from starting."""
    try:
        await audit.seal_unkeyed_chains()
    except StudioBrainError as err:
        log.warning("audit.upgrade.seal_failed", reason=str(err))


@asynccontextmanager
async def open_brain(
    settings: Settings,
    *,
    migrate: bool = False,
    target: DatabaseTarget | None = None,
    adapters: AdapterChoice = "postgres",
) -> AsyncIterator[Brain]:
    """Provision the database, optionally migrate it, open the pool, and yield a wired Brain.

    ``adapters="memory"``: the stores that have an in-memory twin passing the same contract suite — the
    StateStore, the audit log and its checkpoints, the gateway's store, the drafts and the ``local``
    notes — live in this process instead of PostgreSQL (tests, demos); the areas without one (identity,
    safety, connector health, job locks, the leader lock) still use the database."""
    memory = adapters == "memory"
    owns_target = target is None
    if target is None:
        target = await asyncio.to_thread(provision_database, settings)
    try:
        if migrate:
            before, after = await asyncio.to_thread(upgrade_to_head, target.url)
            if before != after:
                log.info("database.migrated", from_revision=before, to_revision=after)
        # the embedded default runs as the non-owner app role (migrations above ran as the owner)
        app_database_url = target.url
        if target.embedded is not None:
            app_database_url = await asyncio.to_thread(app_role_url, target.url)
        database = Database(
            app_database_url,
            max_size=settings.db_pool_max,
            options=session_options(settings.tenant_id),
        )
        await database.open()
        try:
            clock = SystemClock()
            brain = BrainParts(
                settings=settings,
                database=database,
                database_target=target,
                clock=clock,
                ids=UUID7Factory(),
                state_store=InMemoryStateStore() if memory else PostgresStateStore(database),
                cache=MemoryCacheStore(clock=clock),
                adapters=adapters,
            )
            # --- audit log (issue 3); keyed chain (issue 12): the MAC keyring lives outside the database ---
            keyring, keyring_created = await asyncio.to_thread(
                ensure_mac_keyring, settings.audit_mac_key_path
            )
            memory_events = InMemoryEventStore(clock, brain.ids, keyring) if memory else None
            brain.events = memory_events or PostgresEventStore(database, brain.ids, keyring)
            brain.audit = AuditService(
                events=brain.events,
                checkpoint_stores=[
                    InMemoryCheckpointStore() if memory else PostgresCheckpointStore(database),
                    CheckpointFile(settings.audit_checkpoint_path),
                ],
                signer=LazySigner(partial(load_audit_signer, settings)),
                verifier=Ed25519Verifier(),
                clock=clock,
                keyring=keyring,
            )
            if keyring_created:
                await _seal_unkeyed_at_upgrade(brain.audit)
            # --- StudioState (issue 4) ---
            cloud_sources: dict[str, CloudReader] = {
                "firestore": FirestoreReader(
                    project_id=settings.firestore_project_id,
                    clock=clock,
                    deadline_seconds=settings.firestore_query_deadline_seconds,
                    max_concurrency=settings.firestore_max_concurrency,
                    attempts=settings.firestore_query_attempts,
                ),
                "demo": DemoCloud(seed=settings.demo_seed, clock=clock, zone=settings.zone),
            }
            finance_reader = None
            if settings.functions_finance_url is not None:
                if settings.functions_refresh_token is None:
                    raise ConfigError(
                        "STUDIO_BRAIN_FUNCTIONS_REFRESH_TOKEN: required when STUDIO_BRAIN_FUNCTIONS_FINANCE_URL is set"
                    )
                finance_reader = FunctionsFinanceReader(
                    endpoint_url=settings.functions_finance_url,
                    refresh_token=settings.functions_refresh_token,
                    api_key=settings.functions_api_key,
                    token_url=settings.functions_token_url,
                    timeout_seconds=settings.functions_timeout_seconds,
                    clock=clock,
                )
            brain.state = StateService(
                tenant_id=settings.tenant_id,
                table=load_rule_table(settings.state_rules_file),
                store=brain.state_store,
                events=brain.events,
                clock=clock,
                ids=brain.ids,
                zone=settings.zone,
                sources=cloud_sources,
                default_source=settings.state_source,
                finance=finance_reader,
                # issue 14: when a missed close may still be read at the day boundary, or just after it
                close_grace=timedelta(minutes=settings.daily_close_grace_minutes),
                version_retention=timedelta(hours=settings.firestore_version_retention_hours),
            )
            if brain.events is not None:
                brain.rebuild = RebuildService(
                    state=brain.state, store=brain.state_store, events=brain.events
                )
            # --- capability gateway (issue 5) ---
            from studio_brain.adapters.capability_registry import load_registry
            from studio_brain.adapters.connector_directory import DictConnectorDirectory
            from studio_brain.adapters.local_connector import LocalNotesConnector
            from studio_brain.adapters.postgres.gateway_store import PostgresGatewayStore
            from studio_brain.domain.connectors import ConnectorMode

            notes_table = NotesTable()

            def _local_notes(tenant_id: str) -> Connector:
                if memory:
                    return InMemoryNotesConnector(
                        notes_table,
                        tenant_id=tenant_id,
                        clock=clock,
                        ids=brain.ids,
                        mode=ConnectorMode.READ_WRITE,
                    )
                return LocalNotesConnector(
                    database, tenant_id=tenant_id, clock=clock, ids=brain.ids, mode=ConnectorMode.READ_WRITE
                )

            brain.gateway = GatewayService(
                # the same transaction carries a proposal change and its audit row
                store=InMemoryGatewayStore(memory_events)
                if memory_events is not None
                else PostgresGatewayStore(
                    database, PostgresEventStore(database, brain.ids, keyring), keyring
                ),
                registry=load_registry(settings.gateway_registry_file),
                # device connectors come from brain.connectors (wired below), looked up at call time
                connectors=DictConnectorDirectory(
                    local_factory=_local_notes, fallback=lambda: brain.connectors
                ),
                clock=clock,
                ids=brain.ids,
                tenant_id=settings.tenant_id,
                events=brain.events,
                # issue 15: write windows and the daily cloud-write budget are in studio time
                zone=settings.zone,
                # issue 13: device outcomes survive a crash before the database has them
                journal=FileExecutionJournal(settings.home / "journal"),
                outcome_retry_seconds=settings.gateway_outcome_retry_seconds,
                # issue 12: approvals bind with an HMAC under the brain's keyring
                keyring=keyring,
            )
            # --- personal identities (issue 11) ---
            brain.identity = wire_identity(brain)
            # --- connectors (issue 6) ---
            brain.connectors = build_connectors(settings, clock=clock)
            brain.connector_health = ConnectorHealthService(
                registry=brain.connectors,
                store=PostgresConnectorHealthStore(database),
                tenant_id=settings.tenant_id,
                clock=clock,
                ids=brain.ids,
                timeout_seconds=settings.connector_timeout_seconds,
            )
            # --- scheduler and swarms (issue 8) ---
            _wire_scheduler_and_swarms(brain)
            # --- safety watch, notifications, morning brief (issue 17) ---
            demo_cloud = cloud_sources["demo"]
            wire_safety(brain, demo_cloud if isinstance(demo_cloud, DemoCloud) else None)
            yield brain.freeze()
        finally:
            await database.close()
    finally:
        if owns_target:
            await asyncio.to_thread(release_database, target)
