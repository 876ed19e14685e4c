"""Demo data for cockpit tests and the cockpit benchmark: daily snapshots written through the StateStore."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from studio_brain.adapters.connectors.fakes.demo import DemoDevices, start_demo_devices
from studio_brain.adapters.connectors.registry import build_connectors
from studio_brain.bootstrap import Brain
from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.identity import Principal
from studio_brain.domain.proposals import Proposal
from studio_brain.domain.state import Completeness, SnapshotRun
from studio_brain.ports import StateStore
from studio_brain.services.gateway import GatewayService


def snapshot_document(day: date, n: int, *, tenant_id: str) -> dict[str, Any]:
    """A schema v3.0 document whose numbers drift with ``n`` (so sparklines have a shape)."""
    return {
        "schemaVersion": "v3.0",
        "snapshotDate": day.isoformat(),
        "generatedAt": datetime.combine(day, time(6, 0), tzinfo=UTC).isoformat(),
        "tenantId": tenant_id,
        "cloudSync": {"firestoreReadAt": f"{day.isoformat()}T06:00:00Z", "stripeReadAt": None},
        "counts": {
            "batchesActive": 20 + n % 7,
            "batchesClosed": 100 + n,
            "reservationsOpen": 5 + (n * 3) % 5,
            "firingsScheduled": 2 + n % 3,
            "reportsOpen": 1 + n % 4,
        },
        "ops": {"blockedTickets": n % 3, "agentRequestsPending": (n * 5) % 4, "highSeverityReports": n % 2},
        "finance": {"pendingOrders": 3 + n % 5, "unsettledPayments": n % 6},
        "sourceHashes": {"firestore": sha256_hex({"day": day.isoformat()}), "stripe": None},
    }


def snapshot_run(
    day: date,
    n: int,
    *,
    tenant_id: str,
    generated_at: datetime | None = None,
    completeness: Completeness = Completeness.FULL,
    document: dict[str, Any] | None = None,
) -> SnapshotRun:
    doc = document if document is not None else snapshot_document(day, n, tenant_id=tenant_id)
    return SnapshotRun(
        id=f"run-{tenant_id}-{day.isoformat()}-{completeness.value}",
        tenant_id=tenant_id,
        snapshot_date=day,
        generated_at=generated_at or datetime.combine(day, time(13, 0), tzinfo=UTC),
        completeness=completeness,
        source="demo",
        document=doc,
        snapshot_hash=sha256_hex(doc),
    )


async def seed_snapshots(
    store: StateStore, *, tenant_id: str, last_day: date, days: int
) -> list[SnapshotRun]:
    """``days`` complete daily snapshots ending at ``last_day``, oldest first."""
    runs = []
    for back in range(days - 1, -1, -1):
        day = last_day - timedelta(days=back)
        run = snapshot_run(day, days - back, tenant_id=tenant_id)
        await store.save_run(run)
        runs.append(run)
    return runs


def audit_draft(
    tenant_id: str,
    n: int,
    *,
    action: str = "state.snapshot.computed",
    actor_id: str = "studio-brain",
    capability_id: str | None = None,
    correlation_id: str | None = None,
) -> AuditDraft:
    """An ordinary audit event; ``n`` makes it distinct."""
    return AuditDraft(
        tenant_id=tenant_id,
        actor_type=ActorType.SYSTEM,
        actor_id=actor_id,
        action=action,
        target="local",
        rationale=f"demo event {n}",
        approval_state=ApprovalState.NOT_APPLICABLE,
        input_hash=sha256_hex({"n": n}),
        request_id=f"req-{n}",
        correlation_id=correlation_id or f"corr-{n}",
        capability_id=capability_id,
    )


async def propose_note(
    gateway: GatewayService, requester: Principal, text: str = "Kiln 2 shelf cracked"
) -> Proposal:
    """A pending ``studio.note.append`` proposal drafted by ``requester`` (a safe local write)."""
    created = await gateway.create_proposal(
        requester,
        "studio.note.append",
        {"text": text, "topic": "kilns"},
        "Staff should know before loading kiln 2 tonight",
        predicted_effects=["one staff note appended to the local note store"],
    )
    return created.proposal


async def aim_connectors_at_fakes(brain: Brain) -> DemoDevices:
    """Start the fake Hubitat and Home Assistant servers on loopback and point the real connectors at
    them (read-only), as ``studio-brain demo`` does. The caller stops them."""
    devices = start_demo_devices()
    settings = brain.settings.model_copy(update=devices.settings_update())
    for connector in build_connectors(settings, clock=brain.clock).values():
        brain.connectors.replace(connector)
    return devices
