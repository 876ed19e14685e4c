"""Half-sent device writes and database cuts around them (issue 13, items 2b, 3, 4), over real HTTP to a
faulty device fake and real PostgreSQL behind a TCP proxy.

Faults: a 200 with malformed JSON (or an HTML page) after the device acted was recorded ``failed``; an
execution whose device call succeeded failed to record its outcome 1 ms later (503, stuck ``executing``);
stale executions needed an operator.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr

from studio_brain.adapters.capability_registry import load_registry
from studio_brain.adapters.clock import SystemClock, UUID7Factory
from studio_brain.adapters.connector_directory import DictConnectorDirectory
from studio_brain.adapters.connectors.breaker import CircuitBreaker
from studio_brain.adapters.connectors.hubitat import HubitatConnector
from studio_brain.adapters.execution_journal import FileExecutionJournal
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.event_store import PostgresEventStore
from studio_brain.adapters.postgres.gateway_store import PostgresGatewayStore
from studio_brain.domain.connectors import ConnectorMode, WriteAllowlist
from studio_brain.domain.errors import DatabaseUnavailable
from studio_brain.domain.hashing import is_sha256_hex
from studio_brain.domain.proposals import Status
from studio_brain.services.gateway import GatewayService
from tests.contract.connector_contract import FAST
from tests.faults.conftest import ProxiedDatabase
from tests.faults.devices import AFTER_ACTING, FaultyMakerApi
from tests.integration.gateway_kit import ALICE, BOB, TENANT

pytestmark = pytest.mark.postgres

TOKEN = "maker-token-faults"
OUTLET = "21"  # the fake studio's Kiln Room Outlet, switched on


@dataclass
class Rig:
    hub: FaultyMakerApi
    service: GatewayService
    database: Database
    journal: FileExecutionJournal

    async def approved_switch_off(self) -> str:
        created = await self.service.create_proposal(
            ALICE, "hubitat.switch.set", {"deviceId": OUTLET, "state": "off"}, "kiln finished; power off"
        )
        await self.service.approve(BOB, created.proposal.id, "checked the kiln log")
        return created.proposal.id


def gateway(
    database: Database, hub_url: str, app_id: str, journal: FileExecutionJournal, retry: float
) -> GatewayService:
    clock = SystemClock()
    hubitat = HubitatConnector(
        hub_url=hub_url,
        app_id=app_id,
        token=SecretStr(TOKEN),
        clock=clock,
        breaker=CircuitBreaker(name="hubitat", clock=clock),
        policy=FAST,
        mode=ConnectorMode.READ_WRITE,
        allowlist=WriteAllowlist.parse([f"{OUTLET}:on", f"{OUTLET}:off"]),
    )
    ids = UUID7Factory()
    return GatewayService(
        store=PostgresGatewayStore(database, PostgresEventStore(database, ids)),
        registry=load_registry(None),
        connectors=DictConnectorDirectory({"hubitat": hubitat}),
        clock=clock,
        ids=ids,
        tenant_id=TENANT,
        events=PostgresEventStore(database, ids),
        journal=journal,
        outcome_retry_seconds=retry,
    )


@pytest.fixture
def hub() -> Iterator[FaultyMakerApi]:
    server = FaultyMakerApi(token=TOKEN)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def rig(proxied: ProxiedDatabase, hub: FaultyMakerApi, tmp_path: Path) -> AsyncIterator[Rig]:
    database = Database(proxied.url, max_size=4, timeout=2.0)
    await database.open()
    journal = FileExecutionJournal(tmp_path / "journal")
    try:
        yield Rig(
            hub=hub,
            service=gateway(database, hub.hub_url, hub.app_id, journal, retry=1.5),
            database=database,
            journal=journal,
        )
    finally:
        await database.close()


@pytest.mark.parametrize("answer", AFTER_ACTING)
async def test_a_write_answered_badly_after_the_device_acted_is_outcome_unknown(
    rig: Rig, answer: str
) -> None:
    rig.hub.after_act = answer
    proposal_id = await rig.approved_switch_off()
    done = await rig.service.execute(BOB, proposal_id)
    assert rig.hub.switch(OUTLET) == "off"  # the device did act
    assert done.proposal.status is Status.OUTCOME_UNKNOWN, done.proposal.error
    assert "outcome unknown" in (done.proposal.error or "")


async def test_a_write_the_device_refused_is_failed(rig: Rig) -> None:
    rig.hub.rotate_token("someone-changed-the-token")  # 401: the hub refuses before acting
    done = await rig.service.execute(BOB, await rig.approved_switch_off())
    assert done.proposal.status is Status.FAILED
    assert rig.hub.switch(OUTLET) == "on"


async def test_a_write_that_never_reached_the_device_is_failed(rig: Rig) -> None:
    rig.hub.stop()  # connection refused: provably nothing sent
    done = await rig.service.execute(BOB, await rig.approved_switch_off())
    assert done.proposal.status is Status.FAILED, done.proposal.error
    assert "could not connect" in (done.proposal.error or "")


async def _status(url: str, proposal_id: str) -> tuple[str, str | None]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute(
            "SELECT record->>'status', record->>'outputHash' FROM gateway_proposals WHERE id = %s",
            (proposal_id,),
        )
        row = await cursor.fetchone()
    assert row is not None
    return str(row[0]), row[1]


async def test_an_outcome_is_written_with_retries_while_the_database_blinks(
    rig: Rig, proxied: ProxiedDatabase
) -> None:
    proposal_id = await rig.approved_switch_off()
    loop = asyncio.get_running_loop()

    def blink() -> None:  # the database goes away right after the device acted, back 0.6 s later
        proxied.proxy.cut()
        loop.call_soon_threadsafe(loop.call_later, 0.6, proxied.proxy.restore)

    rig.hub.on_write = blink
    done = await rig.service.execute(BOB, proposal_id)
    assert done.proposal.status is Status.EXECUTED
    assert await _status(proxied.direct_url, proposal_id) == ("executed", done.proposal.output_hash)
    assert await rig.journal.pending() == []


async def test_an_outcome_the_database_never_got_is_recovered_from_the_journal_as_executed(
    rig: Rig, proxied: ProxiedDatabase
) -> None:
    proposal_id = await rig.approved_switch_off()
    rig.hub.on_write = proxied.proxy.cut  # gone for longer than the 1.5 s of retries
    with pytest.raises(DatabaseUnavailable, match="kept in the local journal"):
        await rig.service.execute(BOB, proposal_id)
    assert rig.hub.switch(OUTLET) == "off"
    [kept] = await rig.journal.pending()
    assert kept.proposal_id == proposal_id
    assert kept.event == "succeed"
    proxied.proxy.restore()
    assert (await _status(proxied.direct_url, proposal_id))[0] == "executing"

    report = await rig.service.recover_executions(TENANT)
    assert report.journaled == [proposal_id]
    status, output_hash = await _status(proxied.direct_url, proposal_id)
    assert status == "executed"
    assert output_hash == kept.changes["output_hash"]
    assert is_sha256_hex(output_hash)
    assert await rig.journal.pending() == []


async def test_a_process_killed_between_the_device_reply_and_the_database_write_is_recovered(
    proxied: ProxiedDatabase, hub: FaultyMakerApi, database: Database, tmp_path: Path
) -> None:
    """kill -9 of a real process: it executes with the database cut right after the device replied."""
    journal_dir = tmp_path / "journal"
    setup = gateway(database, hub.hub_url, hub.app_id, FileExecutionJournal(journal_dir), retry=1.0)
    created = await setup.create_proposal(
        ALICE, "hubitat.switch.set", {"deviceId": OUTLET, "state": "off"}, "kiln finished; power off"
    )
    await setup.approve(BOB, created.proposal.id, "checked the kiln log")
    hub.on_write = proxied.proxy.cut
    code = textwrap.dedent(
        f"""
        import asyncio
        from pathlib import Path
        from studio_brain.adapters.execution_journal import FileExecutionJournal
        from studio_brain.adapters.postgres.database import Database
        from tests.faults.test_execution_faults import gateway
        from tests.integration.gateway_kit import BOB

        async def main():
            database = Database({proxied.url!r}, max_size=2, timeout=2.0)
            await database.open()
            journal = FileExecutionJournal(Path({str(journal_dir)!r}))
            service = gateway(database, {hub.hub_url!r}, {hub.app_id!r}, journal, retry=3600)
            print("executing", flush=True)
            await service.execute(BOB, {created.proposal.id!r})

        asyncio.run(main())
        """
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "executing"
        for _ in range(200):  # until the device acted and the outcome sits in the journal
            if list(journal_dir.glob("*.json")):
                break
            await asyncio.sleep(0.05)
        assert hub.switch(OUTLET) == "off"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        child.kill()
        child.wait(timeout=10)
        assert child.stdout is not None
        child.stdout.close()
    proxied.proxy.restore()
    assert (await _status(proxied.direct_url, created.proposal.id))[0] == "executing"

    report = await gateway(
        database, hub.hub_url, hub.app_id, FileExecutionJournal(journal_dir), retry=1.0
    ).recover_executions(TENANT)
    assert report.journaled == [created.proposal.id]
    status, output_hash = await _status(proxied.direct_url, created.proposal.id)
    assert status == "executed"
    assert output_hash is not None


async def _left_executing(url: str, proposal_id: str, *, minutes_ago: int) -> None:
    """What a kill -9 in the middle of a device call leaves: ``executing`` since then, nothing journalled."""
    when = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE gateway_proposals SET status = 'executing', execution_key = 'key-' || id,"
            " updated_at = %s::timestamptz, record = record || jsonb_build_object('status', 'executing',"
            " 'executionKey', 'key-' || id, 'executionStartedAt', %s::text, 'updatedAt', %s::text)"
            " WHERE id = %s",
            (when, when, when, proposal_id),
        )


@pytest.mark.parametrize(("device_acted", "settled"), [(True, "executed"), (False, "failed")])
async def test_a_stale_execution_is_marked_unknown_then_settled_by_reading_the_device_back(
    rig: Rig, proxied: ProxiedDatabase, device_acted: bool, settled: str
) -> None:
    proposal_id = await rig.approved_switch_off()
    rig.hub.after_act = "no_answer"
    if not device_acted:
        rig.hub.on_write = lambda: rig.hub.set_attribute(OUTLET, "switch", "on")  # the relay stuck
    first = await rig.service.execute(BOB, proposal_id)
    assert first.proposal.status is Status.OUTCOME_UNKNOWN
    report = await rig.service.recover_executions(TENANT)
    assert report.reconciled == {proposal_id: settled}
    status, output_hash = await _status(proxied.direct_url, proposal_id)
    assert status == settled
    assert (output_hash is not None) == device_acted
    audit = [e.action async for e in PostgresEventStore(rig.database, UUID7Factory()).stream(TENANT)]
    assert audit[-1] == "capability.proposal.reconciled"


async def test_an_execution_whose_process_died_is_marked_outcome_unknown_by_the_recovery_job(
    rig: Rig, proxied: ProxiedDatabase
) -> None:
    proposal_id = await rig.approved_switch_off()
    rig.hub.stop()  # the read-back cannot tell either: the outcome stays unknown, for a person
    await _left_executing(proxied.direct_url, proposal_id, minutes_ago=1)  # within budget + grace
    assert (await rig.service.recover_executions(TENANT)).stale == []
    await _left_executing(proxied.direct_url, proposal_id, minutes_ago=10)
    report = await rig.service.recover_executions(TENANT)
    assert report.stale == [proposal_id]
    assert report.reconciled == {}
    assert (await _status(proxied.direct_url, proposal_id))[0] == "outcome_unknown"
