"""What an agent may do, as use cases: read the studio, propose through the gateway, cancel its own drafts.

The MCP server (``studio_brain/mcp``) is a thin translation of these calls; nothing here knows MCP. Every
call — read or write, allowed or refused — leaves an audit row naming the agent (actor type ``agent``)
and the caller's correlation id (for MCP: the session and request id, in the agent's namespace so it can
never join another caller's timeline). Writes go through the gateway's own use cases, which audit their
decisions themselves; reads are audited here as ``agent.tool.called``. Refusals raise
:class:`PolicyRefused` with a reason code, after their audit row is written.

Nothing here approves, executes, or changes policy, exemptions, the kill switch or tokens: those methods
do not exist on this class, and the gateway refuses an agent who tries them elsewhere.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from studio_brain.domain.audit import ApprovalState, AuditDraft, AuditQuery
from studio_brain.domain.caller_ids import scoped_id
from studio_brain.domain.capabilities import Capability
from studio_brain.domain.errors import NotFound, PolicyRefused, StudioBrainError
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.identity import Principal
from studio_brain.domain.proposals import Proposal, Status
from studio_brain.domain.reasons import ReasonCode
from studio_brain.domain.secrets import describe, scan
from studio_brain.domain.text import sanitise, value_problem
from studio_brain.logging import get_logger
from studio_brain.ports.audit import EventStore
from studio_brain.ports.clock import Clock, IdFactory
from studio_brain.ports.gateway import ProposalFilter
from studio_brain.ports.state import StateStore
from studio_brain.services.connectors import ConnectorHealthService
from studio_brain.services.gateway import GatewayService
from studio_brain.services.state import StateService

log = get_logger(__name__)

#: the most days of one metric's history a call returns
MAX_HISTORY_DAYS = 366
#: the most proposals one listing returns
MAX_LISTED = 50


@dataclass(frozen=True, kw_only=True, slots=True)
class CallContext:
    """Who calls and under which ids: the verified agent, and the caller-supplied correlation."""

    principal: Principal
    #: e.g. ``mcp:<session>/<request id>``; namespaced to the agent before it is stored
    correlation: str
    request_id: str


class RateLimiter:
    """At most ``per_minute`` calls per agent in any 60 seconds (a sliding window held in memory).

    In memory on purpose: it protects this process from a looping agent; the gateway's own per-capability
    rate limits (in the database) still bound what reaches a device or the cloud."""

    def __init__(self, clock: Clock, per_minute: int) -> None:
        self._clock = clock
        self._per_minute = per_minute
        self._calls: dict[str, deque[datetime]] = {}

    def allow(self, key: str) -> bool:
        now = self._clock.now()
        calls = self._calls.setdefault(key, deque())
        while calls and now - calls[0] >= timedelta(minutes=1):
            calls.popleft()
        if len(calls) >= self._per_minute:
            return False
        calls.append(now)
        return True


class AgentDesk:
    def __init__(
        self,
        *,
        gateway: GatewayService,
        state: StateService,
        state_store: StateStore,
        connector_health: ConnectorHealthService,
        events: EventStore,
        clock: Clock,
        ids: IdFactory,
        zone: tzinfo,
        rate_per_minute: int = 60,
    ) -> None:
        self._gateway = gateway
        self._state = state
        self._state_store = state_store
        self._health = connector_health
        self._events = events
        self._clock = clock
        self._ids = ids
        self._zone = zone
        self._limiter = RateLimiter(clock, rate_per_minute)

    def registry_capabilities(self) -> list[Capability]:
        """The capabilities in force (for building the per-capability proposal tools)."""
        return self._gateway.capabilities()

    # --- reads ---------------------------------------------------------------------------------------

    async def latest_state(self, call: CallContext) -> dict[str, Any]:
        await self._admit(call, "state.latest", {}, scope="state:read")
        run = await self._state_store.latest_snapshot(call.principal.tenant_id)
        if run is None:
            return await self._done(call, "state.latest", {}, {"snapshot": None, "note": "no snapshot yet"})
        return await self._done(call, "state.latest", {}, {"snapshot": _snapshot(run)})

    async def since_yesterday(self, call: CallContext) -> dict[str, Any]:
        await self._admit(call, "state.since_yesterday", {}, scope="state:read")
        since = await self._state.since_yesterday()
        out = {
            "yesterday": since.yesterday.isoformat(),
            "comparedWith": since.basis,
            "latestSnapshotId": since.latest.id if since.latest else None,
            "changes": since.changes,
        }
        return await self._done(call, "state.since_yesterday", {}, out)

    async def metric_history(self, call: CallContext, metric: str, days: int) -> dict[str, Any]:
        args = {"metric": metric, "days": days}
        await self._admit(call, "state.history", args, scope="state:read")
        section, _, name = metric.partition(".")
        if not name or section not in ("counts", "ops", "finance"):
            await self._refuse(
                call, "state.history", args, ReasonCode.INPUT_INVALID, "metric: e.g. counts.batchesActive"
            )
        if not 1 <= days <= MAX_HISTORY_DAYS:
            await self._refuse(
                call, "state.history", args, ReasonCode.INPUT_OUT_OF_RANGE, f"days: 1 to {MAX_HISTORY_DAYS}"
            )
        end = self._clock.now().astimezone(self._zone).date()
        runs = await self._state_store.history(call.principal.tenant_id, end - timedelta(days=days - 1), end)
        points = [
            {"date": run.snapshot_date.isoformat(), "value": (run.document.get(section) or {}).get(name)}
            for run in runs
        ]
        return await self._done(call, "state.history", args, {"metric": metric, "points": points})

    async def devices(self, call: CallContext) -> dict[str, Any]:
        await self._admit(call, "devices.list", {}, scope="state:read")
        health = [h.to_dict() for h in await self._health.latest()]
        readings = [r.to_dict() for r in await self._health.read_devices()]
        return await self._done(call, "devices.list", {}, {"connectors": health, "devices": readings})

    async def capabilities(self, call: CallContext) -> dict[str, Any]:
        """The registry, each capability with its input schema and whether this agent may propose it."""
        await self._admit(call, "capabilities.list", {}, scope=None)
        listed = [_capability(c, call.principal) for c in self._gateway.capabilities()]
        return await self._done(call, "capabilities.list", {}, {"capabilities": listed})

    async def my_proposals(self, call: CallContext, status: str | None = None) -> dict[str, Any]:
        args = {"status": status}
        await self._admit(call, "proposals.mine", args, scope=None)
        wanted: Status | None = None
        if status is not None:
            try:
                wanted = Status(status)
            except ValueError:
                choices = ", ".join(s.value for s in Status)
                await self._refuse(
                    call, "proposals.mine", args, ReasonCode.INPUT_INVALID, f"status: one of {choices}"
                )
        found = await self._gateway.list_proposals(
            call.principal,
            ProposalFilter(status=wanted, requested_by=call.principal.actor_id, limit=MAX_LISTED),
        )
        return await self._done(call, "proposals.mine", args, {"proposals": [_proposal(p) for p in found]})

    async def timeline(self, call: CallContext, proposal_id: str) -> dict[str, Any]:
        """The audit events of one of the agent's own proposals, oldest first."""
        args = {"proposalId": proposal_id}
        await self._admit(call, "proposals.timeline", args, scope=None)
        proposal = await self._own(call, "proposals.timeline", proposal_id)
        page = await self._events.query(
            call.principal.tenant_id, AuditQuery(correlation_id=proposal.correlation_id, limit=500)
        )
        events = [
            {
                "seq": e.seq,
                "at": e.at.isoformat(),
                "action": e.action,
                "actorType": e.actor_type.value,
                "actorId": e.actor_id,
                "approvalState": e.approval_state.value,
                "reasonCode": e.metadata.get("reasonCode"),
                "rationale": e.rationale,
            }
            for e in page.events
        ]
        return await self._done(
            call, "proposals.timeline", args, {"proposal": _proposal(proposal), "events": events}
        )

    # --- writes (through the gateway's own use cases) -----------------------------------------------

    async def propose(
        self, call: CallContext, capability_id: str, input: Any, rationale: str, *, draft: bool
    ) -> dict[str, Any]:
        """Create a proposal (submitted for approval) or a draft (the agent or staff submits it later)."""
        args = {"capabilityId": capability_id, "input": input, "rationale": rationale, "draft": draft}
        await self._admit(call, "proposals.create", args, scope=None)
        created = await self._gateway.create_proposal(
            call.principal,
            capability_id,
            input,
            rationale,
            correlation_id=self._correlation(call),
            request_id=call.request_id,
            as_draft=draft,
        )  # the gateway decides (scope, kill switch, input schema) and audits its own refusals
        return {
            "proposal": _proposal(created.proposal),
            "decision": created.decision.as_json(),
            "replayed": created.replayed,
        }

    async def cancel_draft(self, call: CallContext, proposal_id: str, reason: str) -> dict[str, Any]:
        args = {"proposalId": proposal_id, "reason": reason}
        await self._admit(call, "proposals.cancel", args, scope=None)
        proposal = await self._own(call, "proposals.cancel", proposal_id)
        if proposal.status is not Status.DRAFT:
            await self._refuse(
                call,
                "proposals.cancel",
                args,
                ReasonCode.INVALID_TRANSITION,
                f"only a draft can be cancelled here (this one is {proposal.status.value}); ask staff",
            )
        cancelled = await self._gateway.cancel(
            call.principal, proposal_id, reason, request_id=call.request_id
        )
        return {"proposal": _proposal(cancelled)}

    # --- the shared steps ----------------------------------------------------------------------------

    def _correlation(self, call: CallContext) -> str:
        return scoped_id(call.principal, call.correlation)

    async def _admit(self, call: CallContext, tool: str, args: dict[str, Any], *, scope: str | None) -> None:
        """Refuse (audited) a non-agent, a rate-limited agent, unstorable or secret-bearing input, a missing scope."""
        principal = call.principal
        if not principal.is_agent:
            await self._refuse(
                call, tool, {}, ReasonCode.ACTOR_NOT_ELIGIBLE, "this surface is for agent tokens"
            )
        if not self._limiter.allow(principal.actor_id):
            await self._refuse(call, tool, {}, ReasonCode.RATE_LIMITED, "too many calls: at most 60 a minute")
        problem = value_problem(args, location="arguments")
        if problem:
            await self._refuse(call, tool, {}, ReasonCode.INPUT_TEXT_INVALID, problem)
        findings = scan(args, location="arguments") + scan(call.correlation, location="the request id")
        if findings:
            await self._refuse(call, tool, {}, ReasonCode.SECRET_IN_PAYLOAD, describe(findings))
        if scope is not None and not principal.has_scope(scope):
            await self._refuse(
                call, tool, args, ReasonCode.DELEGATION_SCOPE_MISSING, f"this needs the scope {scope}"
            )

    async def _own(self, call: CallContext, tool: str, proposal_id: str) -> Proposal:
        try:
            proposal = await self._gateway.get(call.principal, proposal_id)
        except NotFound:
            proposal = None
        if proposal is None or proposal.requested_by != call.principal.actor_id:
            # the same answer for "not there" and "not yours": an agent learns nothing of others' work
            await self._refuse(
                call,
                tool,
                {"proposalId": proposal_id},
                ReasonCode.NOT_FOUND,
                f"no proposal {proposal_id} of yours",
            )
        assert proposal is not None
        return proposal

    async def record_refusal(self, call: CallContext, tool: str, reason: ReasonCode, message: str) -> None:
        """Audit a call refused before it reached a use case (an unknown tool, malformed arguments)."""
        await self._audit(call, tool, {}, action="agent.tool.refused", reason=reason, note=message)
        log.info("agent.tool.refused", tool=tool, agent=call.principal.actor_id, reason_code=reason.value)

    async def _refuse(
        self, call: CallContext, tool: str, args: dict[str, Any], reason: ReasonCode, message: str
    ) -> None:
        await self._audit(call, tool, args, action="agent.tool.refused", reason=reason, note=message)
        log.info("agent.tool.refused", tool=tool, agent=call.principal.actor_id, reason_code=reason.value)
        raise PolicyRefused(reason, message)

    async def _done(
        self, call: CallContext, tool: str, args: dict[str, Any], out: dict[str, Any]
    ) -> dict[str, Any]:
        await self._audit(
            call, tool, args, action="agent.tool.called", reason=ReasonCode.ALLOWED, note="", out=out
        )
        return out

    async def _audit(
        self,
        call: CallContext,
        tool: str,
        args: dict[str, Any],
        *,
        action: str,
        reason: ReasonCode,
        note: str,
        out: dict[str, Any] | None = None,
    ) -> None:
        principal = call.principal
        await self._events.append(
            AuditDraft(
                tenant_id=principal.tenant_id,
                actor_type=principal.actor_type,
                actor_id=principal.actor_id,
                action=action,
                target="agent-desk",
                rationale=sanitise(f"{tool}: {note}" if note else tool, limit=500),
                approval_state=ApprovalState.NOT_APPLICABLE,
                input_hash=sha256_hex(_hashable(args)),
                output_hash=sha256_hex(_hashable(out)) if out is not None else None,
                request_id=sanitise(call.request_id, limit=200),
                correlation_id=sanitise(self._correlation(call), limit=300),
                metadata={"tool": tool, "reasonCode": reason.value, "credential": principal.credential()},
            )
        )


def _hashable(value: Any) -> Any:
    """A value the canonical hash accepts (unstorable text already refused; anything odd as text)."""
    try:
        sha256_hex(value)
    except StudioBrainError:
        return {"unhashable": sanitise(repr(value), limit=200)}
    except (TypeError, ValueError):
        return {"unhashable": sanitise(repr(value), limit=200)}
    return value


def _snapshot(run: Any) -> dict[str, Any]:
    return {
        "id": run.id,
        "snapshotDate": run.snapshot_date.isoformat(),
        "generatedAt": run.generated_at.isoformat(),
        "completeness": run.completeness.value,
        "snapshotHash": run.snapshot_hash,
        "document": run.document,
    }


def _capability(c: Capability, principal: Principal) -> dict[str, Any]:
    return {
        "id": c.id,
        "description": c.description,
        "target": c.target.value,
        "mode": c.mode.value,
        "risk": c.risk.value,
        "requiresApproval": c.requires_approval,
        "approvalsRequired": c.approvals_required,
        "inputSchema": c.input_schema,
        "youMayPropose": principal.has_scope(c.propose_scope()),
    }


def _proposal(p: Proposal) -> dict[str, Any]:
    return {
        "id": p.id,
        "capabilityId": p.capability_id,
        "status": p.status.value,
        "approvalState": p.approval_state.value,
        "requestedBy": p.requested_by,
        "input": p.input,
        "rationale": p.rationale,
        "predictedEffects": p.predicted_effects,
        "createdAt": p.created_at.isoformat(),
        "updatedAt": p.updated_at.isoformat(),
        "approvals": len(p.approvals),
        "error": p.error,
    }


__all__ = ["AgentDesk", "CallContext", "RateLimiter"]
