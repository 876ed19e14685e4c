"""The composition root: the one place that picks adapters from settings and wires services.

Entry points (CLI, web, scheduler) call :func:`open_brain` and use what it yields; nothing else
constructs adapters.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from studio_brain.adapters.cache import MemoryCacheStore
from studio_brain.adapters.clock import SystemClock, UUID7Factory
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.embedded import EmbeddedServer, start_embedded, stop_embedded
from studio_brain.adapters.postgres.migrate import upgrade_to_head
from studio_brain.adapters.postgres.state_store import PostgresStateStore
from studio_brain.logging import get_logger
from studio_brain.ports import CacheStore, Clock, IdFactory, StateStore
from studio_brain.settings import Settings

log = get_logger("studio_brain.bootstrap")


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


def release_database(target: DatabaseTarget) -> None:
    if target.embedded is not None:
        stop_embedded(target.embedded)


@dataclass(kw_only=True)
class Brain:
    """Everything an entry point needs, wired once."""

    settings: Settings
    database: Database
    database_target: DatabaseTarget
    clock: Clock
    ids: IdFactory
    state_store: StateStore
    cache: CacheStore
    # Later areas add their services here as typed fields with a default, e.g.
    # ``audit: AuditService | None = None``, and fill them in open_brain's sections below.

    @property
    def tenant_id(self) -> str:
        return self.settings.tenant_id


@asynccontextmanager
async def open_brain(
    settings: Settings, *, migrate: bool = False, target: DatabaseTarget | None = None
) -> AsyncIterator[Brain]:
    """Provision the database, optionally migrate it, open the pool, and yield a wired Brain."""
    owns_target = target is None
    if target is None:
        target = await asyncio.to_thread(provision_database, settings)
    try:
        if migrate:
            before, after = await asyncio.to_thread(upgrade_to_head, target.url)
            if before != after:
                log.info("database.migrated", from_revision=before, to_revision=after)
        database = Database(target.url, max_size=settings.db_pool_max)
        await database.open()
        try:
            clock = SystemClock()
            brain = Brain(
                settings=settings,
                database=database,
                database_target=target,
                clock=clock,
                ids=UUID7Factory(),
                state_store=PostgresStateStore(database),
                cache=MemoryCacheStore(clock=clock),
            )
            # --- audit log (issue 3) ---
            # --- StudioState (issue 4) ---
            # --- capability gateway (issue 5) ---
            # --- connectors (issue 6) ---
            # --- scheduler and swarms (issue 8) ---
            yield brain
        finally:
            await database.close()
    finally:
        if owns_target:
            await asyncio.to_thread(release_database, target)
