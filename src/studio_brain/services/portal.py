"""What the Portal's older staff module asks of the brain beyond the gateway: the ops scorecard, degraded
mode entries, audit reads in keyset pages and their export manifest, and the audited refusal of the
lifecycle steps this brain does not have (reopen, rollback). The web layer (``web/portal/``) only
translates shapes; every decision and every audit row is made here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft, AuditEvent, AuditQuery, ChainHead
from studio_brain.domain.errors import PolicyRefused, ReasonCode
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.identity import Principal
from studio_brain.domain.proposals import Proposal, proposal_phrase
from studio_brain.ports.audit import EventStore
from studio_brain.ports.clock import Clock
from studio_brain.ports.state import StateStore

#: how many events the filtered Portal views (delegation traces, rate-limit events) look back through
AUDIT_SCAN_LIMIT = 20_000
#: page size of the keyset reads behind the Portal's audit paths
AUDIT_READ_PAGE = 1000
#: refusal reason codes the Portal's "rate-limit events" card lists
RATE_LIMIT_CODES = frozenset({"RATE_LIMITED", "COOLDOWN_ACTIVE"})


class AuditRefused(Protocol):
    """The gateway's refusal windows (``GatewayService.audit_refused``)."""

    async def __call__(
        self, draft: AuditDraft, *, attempted: str, reason: ReasonCode, sample: str = ""
    ) -> None: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class ScorecardMetric:
    key: str
    label: str
    value: Any
    target: Any
    ok: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class Scorecard:
    computed_at: datetime
    metrics: tuple[ScorecardMetric, ...]
    last_breach_at: datetime | None

    @property
    def ok(self) -> bool:
        return all(m.ok for m in self.metrics)


@dataclass(frozen=True, kw_only=True, slots=True)
class ExportManifest:
    """The Portal's export bundle manifest over ``rows`` (oldest first), each carrying its chain hash."""

    rows: tuple[AuditEvent, ...]
    public_key: str | None

    @property
    def row_hashes(self) -> list[str]:
        return [e.hash for e in self.rows]

    @property
    def payload_hash(self) -> str:
        return sha256_hex(self.row_hashes)


def is_agent_call(event: AuditEvent) -> bool:
    return event.actor_type is ActorType.AGENT


def is_rate_limit_refusal(event: AuditEvent) -> bool:
    decision = event.metadata.get("decision")
    return isinstance(decision, dict) and decision.get("reasonCode") in RATE_LIMIT_CODES


class PortalDesk:
    """The Portal module's non-gateway use cases over the audit log and the state store."""

    def __init__(
        self,
        *,
        events: EventStore,
        state_store: StateStore,
        clock: Clock,
        snapshot_max_age_minutes: int,
        audit_refused: AuditRefused,
    ) -> None:
        self._events = events
        #: the gateway's refusal windows (a Portal retrying a rollback in a loop is one counted row)
        self._audit_refused = audit_refused
        self._state = state_store
        self._clock = clock
        self._max_age = snapshot_max_age_minutes

    def now(self) -> datetime:
        return self._clock.now()

    # --- audit reads -------------------------------------------------------------------------------

    async def chain_head(self, tenant_id: str) -> ChainHead | None:
        """The newest event's seq and hash: what every page read after it holds (the page cache's key)."""
        return await self._events.chain_head(tenant_id)

    async def newest_events(
        self,
        tenant_id: str,
        query: AuditQuery,
        limit: int,
        keep: Callable[[AuditEvent], bool] | None = None,
    ) -> list[AuditEvent]:
        """``limit`` newest matching events (``keep`` filters further), read in keyset pages so no single
        query is unbounded. With ``keep``, at most :data:`AUDIT_SCAN_LIMIT` events are examined."""
        out: list[AuditEvent] = []
        before: int | None = None
        scanned = 0
        while len(out) < limit and (keep is None or scanned < AUDIT_SCAN_LIMIT):
            size = AUDIT_READ_PAGE if keep is not None else min(AUDIT_READ_PAGE, limit - len(out))
            page = await self._events.query(tenant_id, replace(query, before_seq=before, limit=size))
            scanned += len(page.events)
            out.extend(e for e in page.events if keep is None or keep(e))
            if page.next_cursor is None or not page.events:
                break
            before = page.next_cursor
        return out[:limit]

    async def export(self, tenant_id: str, limit: int, public_key: str | None) -> ExportManifest:
        newest = await self.newest_events(tenant_id, AuditQuery(newest_first=True), limit)
        return ExportManifest(rows=tuple(reversed(newest)), public_key=public_key)

    # --- ops: degraded mode and the scorecard --------------------------------------------------------

    async def record_degraded(
        self,
        principal: Principal,
        *,
        status: str,
        mode: str,
        reason: str | None,
        rationale: str | None,
        request_id: str,
    ) -> AuditEvent:
        """Entering or leaving a degraded mode, audited as ``ops.degraded.<status>``."""
        payload = {"status": status, "mode": mode, "reason": reason, "rationale": rationale}
        return await self._events.append(
            AuditDraft(
                tenant_id=principal.tenant_id,
                actor_type=principal.actor_type,
                actor_id=principal.actor_id,
                action=f"ops.degraded.{status}",
                target="local",
                rationale=rationale or reason or f"degraded mode {mode} {status}",
                approval_state=ApprovalState.NOT_APPLICABLE,
                input_hash=sha256_hex(payload),
                request_id=request_id,
                correlation_id=request_id,
                metadata={
                    "mode": mode,
                    "reason": reason,
                    "via": "portal",
                    "credential": principal.credential(),
                },
            )
        )

    async def scorecard(self, tenant_id: str) -> Scorecard:
        """Snapshot freshness and degraded mode; a breach of either makes the card not ok."""
        now = self._clock.now()
        latest = await self._state.latest_snapshot(tenant_id)
        age = None if latest is None else round((now - latest.generated_at).total_seconds() / 60.0, 1)
        fresh = age is not None and age <= self._max_age
        degraded = await self._events.query(
            tenant_id, AuditQuery(action_prefix="ops.degraded", newest_first=True, limit=1)
        )
        last = degraded.events[0] if degraded.events else None
        in_degraded = last is not None and last.action == "ops.degraded.entered"
        metrics = (
            ScorecardMetric(
                key="snapshot_freshness",
                label="Latest snapshot age (minutes)",
                value=age,
                target=self._max_age,
                ok=fresh,
            ),
            ScorecardMetric(
                key="degraded_mode",
                label="Degraded mode",
                value=last.metadata.get("mode") if in_degraded and last is not None else None,
                target=None,
                ok=not in_degraded,
            ),
        )
        return Scorecard(
            computed_at=now,
            metrics=metrics,
            last_breach_at=last.at if in_degraded and last is not None else None,
        )

    # --- lifecycle steps this brain does not have -----------------------------------------------------

    async def refuse_unsupported(
        self, principal: Principal, proposal: Proposal, step: str, rationale: str, request_id: str
    ) -> PolicyRefused:
        """``reopen`` / ``rollback``: always refused (decisions are final; executions are not undone
        automatically) and audited as ``capability.decision.refused``. Returns the refusal to show."""
        if step == "reopen":
            refused = PolicyRefused(
                ReasonCode.INVALID_TRANSITION,
                f"{proposal_phrase(proposal.status)} cannot be reopened: decisions are final; "
                "create a new proposal",
            )
        else:
            refused = PolicyRefused(
                ReasonCode.INVALID_TRANSITION,
                "this brain does not roll executions back automatically; propose the reverse action for approval",
            )
        decision = {
            "allowed": False,
            "reasonCode": refused.reason_code,
            "approvalState": proposal.approval_state.value,
            "detail": refused.message,
        }
        await self._audit_refused(
            AuditDraft(
                tenant_id=principal.tenant_id,
                actor_type=principal.actor_type,
                actor_id=principal.actor_id,
                action="capability.decision.refused",
                target=proposal.target,
                capability_id=proposal.capability_id,
                rationale=rationale or refused.message,
                approval_state=proposal.approval_state,
                input_hash=proposal.input_hash,
                request_id=request_id,
                correlation_id=proposal.correlation_id,
                metadata={
                    "attempted": f"capability.proposal.{step}",
                    "decision": decision,
                    "proposalId": proposal.id,
                    "via": "portal",
                    "credential": principal.credential(),
                },
            ),
            attempted=f"capability.proposal.{step}",
            reason=refused.reason_code,
            sample=proposal.id,
        )
        return refused


@dataclass(frozen=True, kw_only=True, slots=True)
class PortalInput:
    """The Portal form's ``requestInput`` mapped onto a capability's input, with what was dropped and why."""

    value: dict[str, Any]
    ignored: dict[str, str]


def portal_request_input(
    schema: dict[str, Any] | None, request_input: dict[str, Any], tenant_id: str
) -> PortalInput:
    """The Portal always sends ``requestInput.tenantId`` (its tenant field, or the uid). The tenant comes
    from the verified identity, never from a body: when the capability's input has no ``tenantId`` field
    it is dropped and the answer says so; everything else is validated by the gateway as sent (a
    ``batchId: null`` from an empty form field is an input error there, not here)."""
    properties = (schema or {}).get("properties") or {}
    value = dict(request_input)
    ignored: dict[str, str] = {}
    if "tenantId" in value and "tenantId" not in properties:
        sent = value.pop("tenantId")
        ignored["requestInput.tenantId"] = (
            f"ignored: the tenant is {tenant_id!r}, from your verified identity"
            + ("" if sent == tenant_id else f" (the form sent {str(sent)[:64]!r})")
        )
    return PortalInput(value=value, ignored=ignored)
