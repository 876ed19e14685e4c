"""The hot read requests' database work (issue 18): the latest state's version, the connector health read
and an audit page are one round trip each (and, since the sixth pass, one query message), and the Portal's
capabilities card reads the gateway in one transaction — with the tenant scope still on every statement."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from bench.wire_trips import WireTrips, counting_wire_trips
from psycopg.rows import tuple_row

from studio_brain.adapters.postgres.connector_health_store import PostgresConnectorHealthStore
from studio_brain.adapters.postgres.gateway_store import PostgresGatewayStore
from studio_brain.bootstrap import Brain
from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft, AuditQuery
from studio_brain.domain.connectors import BreakerState, ConnectorHealth, HealthStatus
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.state import Completeness, SnapshotRun, SnapshotVersion
from studio_brain.web.auth import Authenticator
from tests.fixtures.auth import TokenMinter

pytestmark = pytest.mark.postgres


@pytest.fixture
def trips() -> Iterator[WireTrips]:
    """Round trips as the wire sees them (bench/wire_trips.py): each wait for the server's answer, psycopg's
    BEGIN and COMMIT inside a pipeline (each followed by a Sync it waits for) included."""
    with counting_wire_trips() as counted:
        yield counted


async def _save_run(brain: Brain, tenant_id: str, run_id: str, hour: int = 6) -> SnapshotRun:
    run = SnapshotRun(
        id=run_id,
        tenant_id=tenant_id,
        snapshot_date=date(2026, 11, 20),
        generated_at=datetime(2026, 11, 20, hour, tzinfo=UTC),
        completeness=Completeness.FULL,
        source="demo",
        document={"counts": {"batchesActive": hour}},
        snapshot_hash=sha256_hex({"counts": {"batchesActive": hour}}),
    )
    await brain.state_store.save_run(run)
    return run


async def test_the_latest_state_version_is_read_in_one_round_trip_and_only_for_its_tenant(
    api_brain: Brain, trips: WireTrips
) -> None:
    await _save_run(api_brain, api_brain.tenant_id, "run-older", hour=5)
    ours = await _save_run(api_brain, api_brain.tenant_id, "run-newest", hour=6)
    trips.reset()
    version = await api_brain.state_store.latest_snapshot_version(api_brain.tenant_id)
    # scope and SELECT in one implicit transaction, one round trip (on 38414c2 three: psycopg's BEGIN and
    # COMMIT inside the pipeline each waited for a Sync of their own, then the block's)
    assert trips.count == 1
    assert trips.queries == 1  # the scope and the SELECT in one query message (issue 18, sixth pass: 4)
    assert version == SnapshotVersion.of(ours)
    assert await api_brain.state_store.latest_snapshot_version("a-studio-with-none") is None


async def test_the_latest_connector_health_is_read_in_one_round_trip_and_only_for_its_tenant(
    api_brain: Brain, trips: WireTrips
) -> None:
    store = PostgresConnectorHealthStore(api_brain.database)
    checked = ConnectorHealth(
        connector_id="probe",
        status=HealthStatus.HEALTHY,
        breaker=BreakerState.CLOSED,
        request_id="req-probe",
        latency_ms=1.5,
        checked_at=datetime(2026, 11, 20, 6, tzinfo=UTC),
    )
    await store.record(api_brain.tenant_id, checked)
    trips.reset()
    assert [h.connector_id for h in await store.latest(api_brain.tenant_id)] == ["probe"]
    assert trips.count == 1
    assert await store.latest("another-studio") == []  # row-level security: the scope rode along


async def test_the_portal_capabilities_card_reads_the_gateway_in_one_transaction(
    api_client: httpx.AsyncClient, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    original = PostgresGatewayStore.transaction

    def counted(self: PostgresGatewayStore, tenant_id: str) -> Any:
        opened.append(tenant_id)
        return original(self, tenant_id)

    monkeypatch.setattr(PostgresGatewayStore, "transaction", counted)
    response = await api_client.get("/api/capabilities", headers=admin_headers)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"ok", "capabilities", "proposals", "policy", "connectors"}
    assert set(body["policy"]) == {"killSwitch", "exemptions"}
    assert len(opened) == 1  # proposals, kill switch and exemptions: one transaction (it was three)


async def test_a_portal_request_verifies_its_caller_once_though_router_and_route_both_ask(
    api_client: httpx.AsyncClient, tokens: TokenMinter, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    original = Authenticator.authenticate

    async def counted(self: Authenticator, request: Any) -> Any:
        nonlocal calls
        calls += 1
        return await original(self, request)

    monkeypatch.setattr(Authenticator, "authenticate", counted)
    response = await api_client.get("/api/capabilities", headers=tokens.headers("staff-1", staff=True))
    assert response.status_code == 200
    assert calls == 1


def _draft(tenant_id: str, action: str, actor_id: str) -> AuditDraft:
    return AuditDraft(
        tenant_id=tenant_id,
        actor_type=ActorType.STAFF,
        actor_id=actor_id,
        action=action,
        target="probe",
        approval_state=ApprovalState.NOT_APPLICABLE,
        input_hash=sha256_hex({"action": action}),
        request_id=f"req-{action}",
        correlation_id=f"corr-{action}",
        rationale="a 50% probe; with a semicolon",  # a parameter holding ; and % is bound, not split
    )


async def test_an_audit_page_is_one_query_message_and_only_for_its_tenant(
    api_brain: Brain, trips: WireTrips
) -> None:
    events = api_brain.events
    for action in ("probe.one", "probe.two", "probe.three"):
        await events.append(_draft(api_brain.tenant_id, action, "staff:ana"))
    await events.append(_draft("another-studio", "probe.theirs", "staff:ana"))
    trips.reset()
    page = await events.query(
        api_brain.tenant_id,
        AuditQuery(action_prefix="probe", actor_id="staff:ana", newest_first=True, limit=2),
    )
    # it was four round trips and four queries: the pool's liveness statement, BEGIN, the SELECT, COMMIT
    assert (trips.count, trips.queries) == (1, 1)
    assert [e.action for e in page.events] == ["probe.three", "probe.two"]
    assert page.next_cursor == page.events[-1].seq
    assert page.events[0].rationale == "a 50% probe; with a semicolon"
    nothing = await events.query(api_brain.tenant_id, AuditQuery(action_prefix="probe.theirs"))
    assert nothing.events == []


async def test_a_one_statement_read_refuses_a_second_statement(api_brain: Brain) -> None:
    with pytest.raises(ValueError, match="exactly one statement"):
        await api_brain.database.statement("SELECT 1; SELECT 2", row_factory=tuple_row)
