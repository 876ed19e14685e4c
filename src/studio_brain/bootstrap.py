"""The composition root: the one place that picks adapters from settings and wires services.

Entry points (CLI, web, scheduler) call :func:`open_brain` and use what it yields; nothing else
constructs adapters. The :class:`Brain` itself and the wiring of the larger areas are in
:mod:`studio_brain.wiring` (``Brain``, ``DatabaseTarget`` stay importable from here).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

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
    InMemoryEventStore,
    InMemoryGatewayStore,
    InMemoryNotesConnector,
    InMemoryStateStore,
    NotesTable,
)
from studio_brain.adapters.postgres.connector_health_store import PostgresConnectorHealthStore
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.embedded import start_embedded, stop_embedded
from studio_brain.adapters.postgres.event_store import PostgresCheckpointStore, PostgresEventStore
from studio_brain.adapters.postgres.migrate import upgrade_to_head
from studio_brain.adapters.postgres.roles import app_url as app_role_url
from studio_brain.adapters.postgres.roles import session_options
from studio_brain.adapters.postgres.segment_verifier import ProcessSegmentVerifier, verify_workers
from studio_brain.adapters.postgres.state_store import PostgresStateStore
from studio_brain.adapters.record_ledger import FileRecordLedger, MemoryRecordLedger
from studio_brain.adapters.rule_files import load_rule_table
from studio_brain.domain.attestation import Verification
from studio_brain.domain.errors import ConfigError, StudioBrainError
from studio_brain.logging import get_logger
from studio_brain.ports import CloudReader, Connector
from studio_brain.services.audit import AuditService
from studio_brain.services.connectors import ConnectorHealthService
from studio_brain.services.gateway import GatewayService
from studio_brain.services.rebuild import RebuildService
from studio_brain.services.state import StateService
from studio_brain.settings import Settings
from studio_brain.wiring.brain import AdapterChoice as AdapterChoice
from studio_brain.wiring.brain import Brain as Brain
from studio_brain.wiring.brain import BrainParts
from studio_brain.wiring.brain import DatabaseTarget as DatabaseTarget
from studio_brain.wiring.identity import wire_identity as wire_identity
from studio_brain.wiring.safety import wire_safety as wire_safety
from studio_brain.wiring.scheduler import wire_scheduler_and_swarms

log = get_logger(__name__)


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
            # issue 12: floors a database writer cannot roll back (older rows written back, deleted rows)
            brain.record_ledger = (
                MemoryRecordLedger() if memory else FileRecordLedger(settings.record_ledger_path)
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
                segments=None
                if memory
                else ProcessSegmentVerifier(database, workers=verify_workers(settings.audit_verify_workers)),
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
                    database,
                    PostgresEventStore(database, brain.ids, keyring),
                    keyring,
                    ledger=brain.record_ledger,
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
            wire_scheduler_and_swarms(brain)
            # --- safety watch, notifications, morning brief (issue 17) ---
            demo_cloud = cloud_sources["demo"]
            wire_safety(brain, demo_cloud if isinstance(demo_cloud, DemoCloud) else None)
            yield brain.freeze()
        finally:
            await database.close()
    finally:
        if owns_target:
            await asyncio.to_thread(release_database, target)
