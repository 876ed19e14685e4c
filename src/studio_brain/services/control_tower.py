"""The Portal's Control Tower, from what this brain knows: approvals waiting, incidents (open safety
findings, failing or overdue jobs, connectors down), this brain's own heartbeat, the audit log's new
events for the event stream, and the overseer acknowledgement (audited). The Portal's shapes are made
in ``web/portal/control_tower.py``; every read and every audit row is here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from studio_brain.domain.audit import ApprovalState, AuditDraft, AuditEvent, AuditQuery
from studio_brain.domain.connectors import ConnectorHealth, HealthStatus
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.identity import Principal
from studio_brain.domain.proposals import Proposal, Status
from studio_brain.domain.safety import FindingRecord, FindingStatus
from studio_brain.ports.audit import EventStore
from studio_brain.ports.clock import Clock
from studio_brain.ports.gateway import ProposalFilter
from studio_brain.services.connectors import ConnectorHealthService
from studio_brain.services.gateway import GatewayService
from studio_brain.services.jobs import JobHealth, JobService
from studio_brain.services.safety import SafetyWatch

#: the Control Tower lists at most this many waiting approvals, incidents and recent events
TOWER_ROWS = 25
#: audit action of an overseer acknowledgement
ACK_ACTION = "control_tower.overseer.acknowledged"


@dataclass(frozen=True, kw_only=True, slots=True)
class TowerView:
    """One Control Tower snapshot."""

    generated_at: datetime
    started_at: datetime
    version: str
    approvals: tuple[Proposal, ...]
    findings: tuple[FindingRecord, ...]
    failing_jobs: tuple[JobHealth, ...]
    jobs: tuple[JobHealth, ...]
    connectors: tuple[ConnectorHealth, ...]
    recent: tuple[AuditEvent, ...]
    last_ack: AuditEvent | None
    #: each capability's risk (the approvals list shows it)
    risks: dict[str, str]

    @property
    def connectors_down(self) -> tuple[ConnectorHealth, ...]:
        return tuple(c for c in self.connectors if c.status in (HealthStatus.DOWN, HealthStatus.DEGRADED))

    @property
    def needs_attention(self) -> int:
        return len(self.findings) + len(self.failing_jobs) + len(self.connectors_down)

    @property
    def overall(self) -> str:
        """The Portal's ``ops.overallStatus``: error with an incident, waiting with approvals, else healthy."""
        if self.needs_attention:
            return "error"
        if self.approvals:
            return "waiting"
        return "healthy"


def _failing(job: JobHealth, now: datetime, grace: timedelta) -> bool:
    """Its last runs failed, or it ran before and stopped running (overdue past the scheduler's grace).
    A job that never ran (a brain installed minutes ago) is not an incident."""
    if job.consecutive_failures > 0:
        return True
    return (
        job.last_started_at is not None and job.overdue_since is not None and job.overdue_since < now - grace
    )


class ControlTower:
    """Reads for the Control Tower and its one write, the overseer acknowledgement."""

    def __init__(
        self,
        *,
        gateway: GatewayService,
        safety: SafetyWatch,
        jobs: JobService,
        connector_health: ConnectorHealthService,
        events: EventStore,
        clock: Clock,
        version: str,
        started_at: datetime,
        overdue_grace: timedelta,
    ) -> None:
        self._gateway = gateway
        self._safety = safety
        self._jobs = jobs
        self._health = connector_health
        self._events = events
        self._clock = clock
        self._version = version
        self._started_at = started_at
        self._grace = overdue_grace

    def now(self) -> datetime:
        return self._clock.now()

    async def view(self, principal: Principal) -> TowerView:
        waiting = await self._gateway.list_proposals(
            principal, ProposalFilter(status=Status.PENDING_APPROVAL, limit=TOWER_ROWS)
        )
        findings = await self._safety.findings(status=FindingStatus.OPEN.value, limit=TOWER_ROWS)
        jobs = await self._jobs.health(history=5)
        connectors = await self._health.latest()
        recent = await self._events.query(
            principal.tenant_id, AuditQuery(newest_first=True, limit=TOWER_ROWS)
        )
        acks = await self._events.query(
            principal.tenant_id, AuditQuery(action_prefix=ACK_ACTION, newest_first=True, limit=1)
        )
        now = self._clock.now()
        return TowerView(
            generated_at=now,
            started_at=self._started_at,
            version=self._version,
            approvals=tuple(waiting),
            findings=tuple(findings),
            failing_jobs=tuple(j for j in jobs if _failing(j, now, self._grace)),
            jobs=tuple(jobs),
            connectors=tuple(connectors),
            recent=tuple(recent.events),
            last_ack=acks.events[0] if acks.events else None,
            risks={c.id: c.risk.value for c in self._gateway.capabilities()},
        )

    async def head(self, tenant_id: str) -> int:
        """The seq of the newest audit event (0 for an empty log): a stream starts after it."""
        page = await self._events.query(tenant_id, AuditQuery(newest_first=True, limit=1))
        return page.events[0].seq if page.events else 0

    async def events_after(self, tenant_id: str, after_seq: int, limit: int = 100) -> list[AuditEvent]:
        """Audit events newer than ``after_seq``, oldest first: what the event stream sends next."""
        page = await self._events.query(tenant_id, AuditQuery(after_seq=after_seq, limit=limit))
        return list(page.events)

    async def acknowledge(
        self, principal: Principal, *, note: str, run_id: str | None, request_id: str
    ) -> AuditEvent:
        """The overseer saw the tower: an audit row (who, when, the note), nothing else changes."""
        payload: dict[str, Any] = {"note": note, "runId": run_id}
        return await self._events.append(
            AuditDraft(
                tenant_id=principal.tenant_id,
                actor_type=principal.actor_type,
                actor_id=principal.actor_id,
                action=ACK_ACTION,
                target="local",
                rationale=note or "acknowledged",
                approval_state=ApprovalState.NOT_APPLICABLE,
                input_hash=sha256_hex(payload),
                request_id=request_id,
                correlation_id=request_id,
                metadata={"runId": run_id, "via": "portal"},
            )
        )
