"""The capability gateway use cases: propose, submit, approve, reject, cancel, execute, dry-run, recover.
``GatewayService`` also carries the administration of ``services/gateway_admin.py`` (kill switch,
exemptions, rate buckets, agent tokens, rebuild) and the shared internals of ``services/gateway_core.py``.

Every call takes the verified :class:`Principal`; the tenant comes from it, never from input. Every
decision — allowed or refused — is audited with its reason code, actor, tenant, capability, input hash
and correlation id. A state change and its audit event commit in ONE transaction. A refusal rolls the
attempted change back, is audited in its own transaction, and then raises ``PolicyRefused``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from studio_brain.domain.audit import ApprovalState, AuditDraft
from studio_brain.domain.capabilities import Capability
from studio_brain.domain.connectors import ConnectorCommand, ConnectorContext, ConnectorMode, DryRunSupport
from studio_brain.domain.errors import (
    CanonicalisationError,
    ConfigError,
    Conflict,
    ConnectorError,
    InputInvalid,
    NotFound,
)
from studio_brain.domain.hashing import is_sha256_hex, sha256_hex
from studio_brain.domain.identity import Principal
from studio_brain.domain.policy import (
    ConnectorFacts,
    Decision,
    Exemption,
    KillSwitch,
    ReasonCode,
    Throttle,
    decide_approve,
    decide_cancel,
    decide_create,
    decide_execute,
    decide_reject,
    decide_staff_action,
    decide_submit,
    decide_throttle,
    refuse,
)
from studio_brain.domain.proposals import (
    Approval,
    Event,
    Proposal,
    Status,
    execution_key_for,
)
from studio_brain.ports.connectors import Connector
from studio_brain.ports.gateway import ConnectorDirectory, GatewayTransaction, ProposalFilter
from studio_brain.services.gateway_admin import AGENT_TOKEN_PREFIX, GatewayAdmin, IssuedToken
from studio_brain.services.gateway_core import MAX_PAGE, NotVisible, Refusal, Subject, log

#: beyond its timeout budget, how long an ``executing`` proposal is still considered in flight
STALE_GRACE_SECONDS = 60

__all__ = [
    "AGENT_TOKEN_PREFIX",
    "Created",
    "DictConnectorDirectory",
    "Execution",
    "GatewayService",
    "IssuedToken",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class Execution:
    """What ``execute`` returns: the proposal as it ended, the decision that let it run, and whether the
    result was replayed from an earlier execution with the same idempotency key."""

    proposal: Proposal
    decision: Decision
    replayed: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class Created:
    proposal: Proposal
    decision: Decision
    #: True when an earlier proposal with the same idempotency key and payload was returned
    replayed: bool = False


class DictConnectorDirectory:
    """Connectors by target; ``local_factory`` builds the per-tenant ``local`` notes connector, and
    ``fallback`` yields the device connectors' directory (looked up at call time, wired later)."""

    def __init__(
        self,
        connectors: dict[str, Connector] | None = None,
        *,
        local_factory: Callable[[str], Connector] | None = None,
        fallback: Callable[[], ConnectorDirectory | None] | None = None,
    ) -> None:
        self._connectors = dict(connectors or {})
        self._local_factory = local_factory
        self._local: dict[str, Connector] = {}
        self._fallback = fallback

    def add(self, connector: Connector) -> None:
        self._connectors[connector.target] = connector

    def connector_for(self, tenant_id: str, target: str) -> Connector | None:
        if target == "local" and self._local_factory is not None:
            if tenant_id not in self._local:
                self._local[tenant_id] = self._local_factory(tenant_id)
            return self._local[tenant_id]
        if target in self._connectors:
            return self._connectors[target]
        other = self._fallback() if self._fallback is not None else None
        return other.connector_for(tenant_id, target) if other is not None else None


class GatewayService(GatewayAdmin):
    """The gateway's use cases (see docs/gateway.md); administration comes from :class:`GatewayAdmin`."""

    # --- proposals -------------------------------------------------------------------------------------

    async def create_proposal(
        self,
        principal: Principal,
        capability_id: str,
        input: Any,
        rationale: str,
        *,
        predicted_effects: list[Any] | None = None,
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
        request_id: str | None = None,
        as_draft: bool = False,
    ) -> Created:
        """Propose running a capability. Refusals: CAPABILITY_UNKNOWN, KILL_SWITCH_ACTIVE,
        DELEGATION_SCOPE_MISSING, ACTOR_NOT_ELIGIBLE, RATIONALE_REQUIRED, INPUT_INVALID, IDEMPOTENCY_KEY_REUSED."""
        request_id = request_id or self._ids.new_id()
        correlation_id = correlation_id or request_id
        rationale = rationale if isinstance(rationale, str) else ""
        capability = self._registry.get(capability_id)
        try:
            input_hash = sha256_hex(input)
        except CanonicalisationError as err:
            input_hash = sha256_hex({"unhashableInput": str(err)})
            input = None
        subject = Subject(
            action="capability.proposal.create",
            capability_id=capability_id if capability else None,
            target=capability.target.value if capability else "gateway",
            input_hash=input_hash,
            correlation_id=correlation_id,
            request_id=request_id,
            rationale=rationale,
        )
        # a first decision without the kill switch, before any dry-run; the transaction that inserts
        # decides again with the switch read in it
        decision = decide_create(
            principal=principal, capability=capability, input=input, rationale=rationale, kill=KillSwitch()
        )
        if decision.allowed and not isinstance(input, dict):
            decision = refuse(
                ReasonCode.INPUT_INVALID, "input must be a JSON object", decision.approval_state
            )
        if not decision.allowed or capability is None or not isinstance(input, dict):
            await self._audit_refusal(principal, subject, decision)
        effects = predicted_effects
        extra: dict[str, Any] = {}
        if effects is None:
            effects, extra = await self._predict(principal.tenant_id, capability, input, request_id)
        try:
            effects_hash = sha256_hex(effects)
        except CanonicalisationError as err:
            raise InputInvalid(f"predicted effects: {err.message}") from err
        now = self._clock.now()
        if as_draft:
            status = Status.DRAFT
        elif capability.requires_approval:
            status = Status.PENDING_APPROVAL
        else:
            status = Status.APPROVED
        proposal = Proposal(
            id=self._ids.new_id(),
            tenant_id=principal.tenant_id,
            capability_id=capability.id,
            registry_version=self._registry.version,
            target=capability.target.value,
            mode=capability.mode.value,
            status=status,
            requested_by=principal.actor_id,
            requester_type=principal.actor_type,
            input=dict(input),
            input_hash=input_hash,
            predicted_effects=list(effects),
            predicted_effects_hash=effects_hash,
            rationale=rationale.strip(),
            correlation_id=correlation_id,
            request_id=request_id,
            created_at=now,
            updated_at=now,
            idempotency_key=idempotency_key,
            approval_state=ApprovalState.REQUIRED
            if capability.requires_approval
            else ApprovalState.NOT_APPLICABLE,
            extra=extra,
        )
        try:
            async with self._store.transaction(principal.tenant_id) as tx:
                # decided inside the transaction that inserts, so the kill switch read is current
                decision = decide_create(
                    principal=principal,
                    capability=capability,
                    input=input,
                    rationale=rationale,
                    kill=await self._kill(tx),
                )
                if not decision.allowed:
                    raise Refusal(decision)
                if idempotency_key is not None:
                    earlier = await tx.proposal_by_idempotency_key(idempotency_key)
                    if earlier is not None:
                        if earlier.capability_id == capability.id and earlier.input_hash == input_hash:
                            return Created(proposal=earlier, decision=decision, replayed=True)
                        raise Refusal(
                            refuse(
                                ReasonCode.IDEMPOTENCY_KEY_REUSED,
                                "this idempotency key was used for a different proposal",
                                decision.approval_state,
                            )
                        )
                await tx.insert_proposal(proposal)
                await tx.audit(
                    self._draft(
                        principal,
                        replace(subject, proposal_id=proposal.id),
                        decision,
                        action="capability.proposal.created",
                        proposal=proposal,
                    ),
                    commit=True,
                )
        except Refusal as refused:
            await self._audit_refusal(principal, subject, refused.decision)
        log.info(
            "capability.proposal.created",
            proposal_id=proposal.id,
            capability_id=capability.id,
            status=status.value,
        )
        return Created(proposal=proposal, decision=decision)

    async def _predict(
        self, tenant_id: str, capability: Capability, input: dict[str, Any], request_id: str
    ) -> tuple[list[Any], dict[str, Any]]:
        """Predicted effects from the connector's dry-run where supported (never a real action)."""
        if not capability.is_write:
            return [f"read {capability.target.value} ({capability.action})"], {}
        connector = self._connectors.connector_for(tenant_id, capability.target.value)
        if connector is None or capability.dry_run is DryRunSupport.UNSUPPORTED:
            return [], {"dryRun": "unavailable"}
        ctx = ConnectorContext(
            request_id=request_id, timeout_seconds=capability.timeout_budget_seconds, dry_run=True
        )
        try:
            response = await asyncio.wait_for(
                connector.execute(ctx, self._command(capability, input)),
                timeout=capability.timeout_budget_seconds,
            )
        except (ConnectorError, TimeoutError) as err:
            kind = err.kind if isinstance(err, ConnectorError) else "TIMEOUT"
            return [], {"dryRun": f"failed: {kind}"}
        effects = response.data.get("effects", [response.data])
        return list(effects) if isinstance(effects, list) else [effects], {}

    @staticmethod
    def _command(capability: Capability, input: dict[str, Any]) -> ConnectorCommand:
        device = input.get(capability.device_field) if capability.device_field else None
        command = input.get(capability.command_field) if capability.command_field else None
        return ConnectorCommand(
            action=capability.action,
            device_id=str(device) if device is not None else None,
            command=str(command) if command is not None else None,
            args=dict(input),
            write=capability.is_write,
        )

    async def get(self, principal: Principal, proposal_id: str) -> Proposal:
        async with self._store.transaction(principal.tenant_id) as tx:
            proposal = await tx.get_proposal(proposal_id)
        if proposal is None:
            raise NotFound(f"no proposal {proposal_id}")
        return proposal

    async def list_proposals(
        self, principal: Principal, where: ProposalFilter | None = None
    ) -> list[Proposal]:
        where = where or ProposalFilter()
        if not 1 <= where.limit <= MAX_PAGE:
            raise InputInvalid(f"limit must be between 1 and {MAX_PAGE}")
        async with self._store.transaction(principal.tenant_id) as tx:
            return await tx.list_proposals(where)

    async def _decide_and_change(
        self,
        principal: Principal,
        proposal_id: str,
        action: str,
        rationale: str,
        request_id: str | None,
        decide: Callable[[Proposal, KillSwitch], Decision],
        change: Callable[[Proposal, Decision, datetime], tuple[Proposal, str]],
    ) -> Proposal:
        """The shape of submit/approve/reject/cancel: lock, decide, transition + audit in one transaction."""
        subject: Subject | None = None
        try:
            async with self._store.transaction(principal.tenant_id) as tx:
                proposal = await tx.get_proposal(proposal_id, lock=True)
                if proposal is None:
                    raise NotVisible
                subject = self._subject(action, proposal, request_id=request_id, rationale=rationale)
                decision = decide(proposal, await self._kill(tx))
                if not decision.allowed:
                    raise Refusal(decision)
                now = self._clock.now()
                changed, event_action = change(proposal, decision, now)
                await tx.update_proposal(changed)
                await tx.audit(
                    self._draft(principal, subject, decision, action=event_action, proposal=changed),
                    commit=True,
                )
        except NotVisible:
            await self._missing(principal, proposal_id, action, request_id)
        except Refusal as refused:
            assert subject is not None  # set before any decision is made
            await self._audit_refusal(principal, subject, refused.decision)
        log.info(
            event_action, proposal_id=proposal_id, actor_id=principal.actor_id, status=changed.status.value
        )
        return changed

    async def submit(
        self, principal: Principal, proposal_id: str, *, request_id: str | None = None
    ) -> Proposal:
        """draft → pending_approval (or approved, for capabilities that need no approval)."""

        def change(p: Proposal, d: Decision, now: datetime) -> tuple[Proposal, str]:
            cap = self._registry.get(p.capability_id)
            event = Event.SUBMIT if cap is None or cap.requires_approval else Event.SUBMIT_UNGATED
            return p.transition(event, at=now), "capability.proposal.submitted"

        return await self._decide_and_change(
            principal,
            proposal_id,
            "capability.proposal.submit",
            "",
            request_id,
            lambda p, _k: decide_submit(principal=principal, proposal=p),
            change,
        )

    async def approve(
        self, principal: Principal, proposal_id: str, rationale: str, *, request_id: str | None = None
    ) -> Proposal:
        """Record an approval. Refusals: TENANT_MISMATCH, CAPABILITY_UNKNOWN, KILL_SWITCH_ACTIVE,
        APPROVER_NOT_ELIGIBLE, ALREADY_EXECUTED, INVALID_TRANSITION, SELF_APPROVAL_FORBIDDEN,
        APPROVAL_PAYLOAD_MISMATCH, RATIONALE_REQUIRED."""

        def decide(p: Proposal, kill: KillSwitch) -> Decision:
            return decide_approve(
                principal=principal,
                proposal=p,
                capability=self._registry.get(p.capability_id),
                registry_version=self._registry.version,
                kill=kill,
                rationale=rationale,
            )

        def change(p: Proposal, d: Decision, now: datetime) -> tuple[Proposal, str]:
            cap = self._registry.get(p.capability_id)
            assert cap is not None  # decide_approve refused otherwise
            approvals = (
                *p.approvals,
                Approval(
                    approver_id=principal.actor_id,
                    approver_type=principal.actor_type,
                    at=now,
                    rationale=rationale.strip(),
                    binding=p.binding(),
                ),
            )
            if d.approval_state is ApprovalState.APPROVED:
                first = min(a.at for a in approvals)
                return (
                    p.transition(
                        Event.APPROVE,
                        at=now,
                        approvals=approvals,
                        approval_state=ApprovalState.APPROVED,
                        approved_at=now,
                        approval_expires_at=first + timedelta(seconds=cap.approval_ttl_seconds),
                    ),
                    "capability.proposal.approved",
                )
            return (
                p.transition(Event.APPROVE_PARTIAL, at=now, approvals=approvals),
                "capability.proposal.approval_recorded",
            )

        return await self._decide_and_change(
            principal, proposal_id, "capability.proposal.approve", rationale, request_id, decide, change
        )

    async def reject(
        self, principal: Principal, proposal_id: str, rationale: str, *, request_id: str | None = None
    ) -> Proposal:
        def change(p: Proposal, d: Decision, now: datetime) -> tuple[Proposal, str]:
            return (
                p.transition(
                    Event.REJECT,
                    at=now,
                    approval_state=ApprovalState.REJECTED,
                    decided_by=principal.actor_id,
                    decision_rationale=rationale.strip(),
                ),
                "capability.proposal.rejected",
            )

        return await self._decide_and_change(
            principal,
            proposal_id,
            "capability.proposal.reject",
            rationale,
            request_id,
            lambda p, _k: decide_reject(principal=principal, proposal=p, rationale=rationale),
            change,
        )

    async def cancel(
        self, principal: Principal, proposal_id: str, rationale: str, *, request_id: str | None = None
    ) -> Proposal:
        def change(p: Proposal, d: Decision, now: datetime) -> tuple[Proposal, str]:
            return (
                p.transition(
                    Event.CANCEL, at=now, decided_by=principal.actor_id, decision_rationale=rationale.strip()
                ),
                "capability.proposal.cancelled",
            )

        return await self._decide_and_change(
            principal,
            proposal_id,
            "capability.proposal.cancel",
            rationale,
            request_id,
            lambda p, _k: decide_cancel(principal=principal, proposal=p, rationale=rationale),
            change,
        )

    # --- execution -------------------------------------------------------------------------------------

    async def execute(
        self,
        principal: Principal,
        proposal_id: str,
        *,
        idempotency_key: str | None = None,
        request_id: str | None = None,
    ) -> Execution:
        """Run an approved (or exempt) proposal once. Checks, in order and before any side effect: kill
        switch → tenant → approval/exemption → connector → rate limit → cooldown → one in-flight per target.
        Then commits ``executing``, calls the connector within the timeout budget, and commits
        ``executed`` / ``failed`` / ``outcome_unknown`` with the output hash."""
        subject: Subject | None = None
        claimed: tuple[Proposal, Decision, Capability, Connector] | None = None
        try:
            async with self._store.transaction(principal.tenant_id) as tx:
                proposal = await tx.get_proposal(proposal_id, lock=True)
                if proposal is None:
                    raise NotVisible
                subject = self._subject("capability.proposal.execute", proposal, request_id=request_id)
                replay = await self._replay(tx, principal, proposal, subject, idempotency_key)
                if replay is not None:
                    return replay
                claimed = await self._claim(tx, principal, proposal, subject, idempotency_key)
        except NotVisible:
            await self._missing(principal, proposal_id, "capability.proposal.execute", request_id)
        except Refusal as refused:
            assert subject is not None  # set before any decision is made
            if refused.decision.reason_code is ReasonCode.APPROVAL_EXPIRED:
                await self._expire(principal, proposal_id, subject)
            await self._audit_refusal(principal, subject, refused.decision)
        assert claimed is not None
        assert subject is not None
        running, decision, capability, connector = claimed
        return await self._run(principal, running, decision, capability, connector, subject)

    async def _replay(
        self,
        tx: GatewayTransaction,
        principal: Principal,
        proposal: Proposal,
        subject: Subject,
        idempotency_key: str | None,
    ) -> Execution | None:
        if idempotency_key is None:
            return None
        other = await tx.proposal_by_execution_key(idempotency_key)
        if other is not None and other.id != proposal.id:
            raise Refusal(
                refuse(
                    ReasonCode.IDEMPOTENCY_KEY_REUSED,
                    "this idempotency key belongs to another proposal's execution",
                )
            )
        if proposal.execution_key == idempotency_key and proposal.status in (
            Status.EXECUTED,
            Status.FAILED,
            Status.OUTCOME_UNKNOWN,
        ):
            decision = Decision(
                allowed=True,
                reason_code=ReasonCode.ALLOWED,
                approval_state=proposal.approval_state,
                detail="replayed the stored result",
            )
            await tx.audit(
                self._draft(
                    principal,
                    subject,
                    decision,
                    action="capability.proposal.replayed",
                    output_hash=proposal.output_hash,
                )
            )
            return Execution(proposal=proposal, decision=decision, replayed=True)
        return None

    def _execute_decision(
        self,
        principal: Principal,
        proposal: Proposal,
        capability: Capability | None,
        kill: KillSwitch,
        exemption: Exemption | None,
        connector: Connector | None,
        now: datetime,
    ) -> Decision:
        """The execution policy for ``proposal`` as things stand now (shared by execute and dry-run):
        the input is re-hashed and the binding recomputed against the registry in force, so a changed
        input or registry fails the approval binding."""
        current_input_hash = sha256_hex(proposal.input)
        return decide_execute(
            principal=principal,
            proposal=proposal,
            capability=capability,
            kill=kill,
            current_input_hash=current_input_hash,
            current_binding=replace(
                proposal, registry_version=self._registry.version, input_hash=current_input_hash
            ).binding(),
            exemption=exemption,
            connector=ConnectorFacts(
                present=connector is not None, mode=connector.mode if connector else ConnectorMode.READ_ONLY
            ),
            now=now,
        )

    async def _claim(
        self,
        tx: GatewayTransaction,
        principal: Principal,
        proposal: Proposal,
        subject: Subject,
        idempotency_key: str | None,
    ) -> tuple[Proposal, Decision, Capability, Connector]:
        now = self._clock.now()
        capability = self._registry.get(proposal.capability_id)
        kill = await self._kill(tx)
        if kill.unreadable:
            # fail closed, and leave the (aborted) transaction before anything else reads
            raise Refusal(refuse(ReasonCode.KILL_SWITCH_ACTIVE, "the kill switch state cannot be read"))
        connector = (
            self._connectors.connector_for(proposal.tenant_id, capability.target.value)
            if capability
            else None
        )
        exemption: Exemption | None = None
        approval_current = proposal.status is Status.APPROVED and (
            proposal.approval_expires_at is not None and now < proposal.approval_expires_at
        )
        if capability is not None and capability.exemptable and not approval_current:
            for candidate in await tx.exemptions(capability_id=capability.id):
                if candidate.covers(
                    tenant_id=proposal.tenant_id,
                    capability=capability,
                    actor_id=proposal.requested_by,
                    now=now,
                ):
                    exemption = candidate
                    break
        decision = self._execute_decision(principal, proposal, capability, kill, exemption, connector, now)
        if not decision.allowed or capability is None or connector is None:
            raise Refusal(decision)
        target = capability.target.value
        if capability.exclusive:
            await tx.lock_target(target)
        last_started = await tx.target_last_started(target) if capability.cooldown_seconds else None
        in_flight = (
            await tx.in_flight(target, started_after=now - stale_after(capability))
            if capability.exclusive
            else 0
        )
        # Decide cooldown and busy now; the rate token is counted last (below) so that its bucket rows
        # are locked only for the end of the transaction, not while it queues for the audit chain.
        early = decide_throttle(
            capability=capability,
            throttle=Throttle(rate_token_taken=True, last_started_at=last_started, in_flight=in_flight),
            now=now,
            state=decision.approval_state,
        )
        event = Event.START_EXEMPT if decision.approval_state is ApprovalState.EXEMPT else Event.START
        running = proposal.transition(
            event,
            at=now,
            execution_key=idempotency_key or execution_key_for(proposal.id, proposal.input_hash),
            executed_by=principal.actor_id,
            execution_started_at=now,
            approval_state=decision.approval_state,
            exemption_id=exemption.id
            if decision.approval_state is ApprovalState.EXEMPT and exemption
            else None,
        )
        executing: AuditDraft | None = None
        if early.allowed:
            try:
                await tx.update_proposal(running)
            except Conflict as err:
                raise Refusal(
                    refuse(ReasonCode.IDEMPOTENCY_KEY_REUSED, err.message, decision.approval_state)
                ) from err
            if target in self._cooled_targets:
                await tx.mark_target_started(target, now)
            executing = self._draft(
                principal, subject, decision, action="capability.proposal.executing", proposal=running
            )
        # All of this is one transaction: the `executing` event is appended and the transaction committed
        # only if every rate token counts (the tokens are counted once the audit chain's lock is held, in
        # the same round trip as its head read); if the rate limit refuses, nothing is appended, the change
        # above rolls back, and the refusal is audited on its own. Precedence stays rate → cooldown → busy.
        limit = capability.rate_limit
        # counted even when cooldown/busy already refuse, so RATE_LIMITED keeps its precedence (the
        # transaction rolls back on any refusal, so a refused call never consumes a token)
        taken = await tx.take_rate_tokens(
            [
                (f"{capability.id}:hour", now.replace(minute=0, second=0, microsecond=0), limit.per_hour),
                (f"{capability.id}:minute", now.replace(second=0, microsecond=0), limit.burst),
            ],
            then_audit=executing,
        )
        gate = decide_throttle(
            capability=capability,
            throttle=Throttle(rate_token_taken=taken, last_started_at=last_started, in_flight=in_flight),
            now=now,
            state=decision.approval_state,
        )
        if not gate.allowed:
            raise Refusal(gate)
        if executing is None:  # unreachable (gate allows only what early allowed); never run unaudited
            raise Refusal(early)
        return running, decision, capability, connector

    async def _run(
        self,
        principal: Principal,
        running: Proposal,
        decision: Decision,
        capability: Capability,
        connector: Connector,
        subject: Subject,
    ) -> Execution:
        assert running.execution_key is not None
        ctx = ConnectorContext(
            request_id=subject.request_id,
            timeout_seconds=capability.timeout_budget_seconds,
            idempotency_key=running.execution_key,
        )
        event: Event
        changes: dict[str, Any]
        try:
            if capability.is_write:
                call = connector.execute(ctx, self._command(capability, running.input))
            else:
                call = connector.read_status(ctx, running.input)
            response = await asyncio.wait_for(call, timeout=capability.timeout_budget_seconds)
            output_hash = (
                response.output_hash if is_sha256_hex(response.output_hash) else sha256_hex(response.data)
            )
            event, changes = Event.SUCCEED, {"output_hash": output_hash, "result": response.data}
        except TimeoutError:
            event = Event.LOSE_TRACK
            changes = {
                "error": f"TIMEOUT: no answer within {capability.timeout_budget_seconds}s; outcome unknown"
            }
        except ConnectorError as err:
            unknown = err.kind in ("TIMEOUT", "UNKNOWN")
            event = Event.LOSE_TRACK if unknown else Event.FAIL
            changes = {"error": f"{err.kind}: {err.message}"}
        except (Conflict, ConfigError, InputInvalid) as err:
            # connectors raise these before sending anything (e.g. a reused idempotency key)
            event, changes = Event.FAIL, {"error": f"{err.code}: {err.message}"}
        except asyncio.CancelledError:
            await asyncio.shield(
                self._finish(
                    principal,
                    running,
                    Event.LOSE_TRACK,
                    {"error": "CANCELLED: outcome unknown"},
                    decision,
                    subject,
                )
            )
            raise
        except Exception as err:  # an unexpected failure: we cannot know what the device did
            log.exception("capability.execution.crashed", proposal_id=running.id)
            event, changes = Event.LOSE_TRACK, {"error": f"UNKNOWN: {type(err).__name__}; outcome unknown"}
        finished = await self._finish(principal, running, event, changes, decision, subject)
        return Execution(proposal=finished, decision=decision)

    async def _finish(
        self,
        principal: Principal,
        running: Proposal,
        event: Event,
        changes: dict[str, Any],
        decision: Decision,
        subject: Subject,
    ) -> Proposal:
        now = self._clock.now()
        finished = running.transition(event, at=now, execution_finished_at=now, **changes)
        action = {
            Event.SUCCEED: "capability.proposal.executed",
            Event.FAIL: "capability.proposal.failed",
            Event.LOSE_TRACK: "capability.proposal.outcome_unknown",
        }[event]
        async with self._store.transaction(running.tenant_id) as tx:
            await tx.update_proposal(finished)
            await tx.audit(
                self._draft(
                    principal,
                    subject,
                    decision,
                    action=action,
                    proposal=finished,
                    output_hash=finished.output_hash,
                ),
                commit=True,
            )
        log.info(action, proposal_id=running.id, capability_id=running.capability_id, error=finished.error)
        return finished

    async def _expire(self, principal: Principal, proposal_id: str, subject: Subject) -> None:
        async with self._store.transaction(principal.tenant_id) as tx:
            proposal = await tx.get_proposal(proposal_id, lock=True)
            if proposal is None or proposal.status is not Status.APPROVED:
                return
            expired = proposal.transition(Event.EXPIRE, at=self._clock.now())
            await tx.update_proposal(expired)
            decision = Decision(
                allowed=True,
                reason_code=ReasonCode.ALLOWED,
                approval_state=ApprovalState.APPROVED,
                detail="the approval expired",
            )
            await tx.audit(
                self._draft(
                    principal, subject, decision, action="capability.proposal.expired", proposal=expired
                )
            )

    async def dry_run(
        self, principal: Principal, proposal_id: str, *, request_id: str | None = None
    ) -> dict[str, Any]:
        """What executing would do now: the policy decision (without counters) and the connector's
        dry-run where supported. Never acts. Audited."""
        async with self._store.transaction(principal.tenant_id) as tx:
            proposal = await tx.get_proposal(proposal_id)
            if proposal is None:
                await self._missing(principal, proposal_id, "capability.proposal.dry_run", request_id)
            capability = self._registry.get(proposal.capability_id)
            kill = await self._kill(tx)
            exemptions = [] if kill.unreadable else await tx.exemptions(capability_id=proposal.capability_id)
        now = self._clock.now()
        connector = self._connectors.connector_for(proposal.tenant_id, proposal.target)
        exemption = next(
            (
                e
                for e in exemptions
                if capability is not None
                and e.covers(
                    tenant_id=proposal.tenant_id,
                    capability=capability,
                    actor_id=proposal.requested_by,
                    now=now,
                )
            ),
            None,
        )
        decision = self._execute_decision(principal, proposal, capability, kill, exemption, connector, now)
        effects: list[Any] = proposal.predicted_effects
        supported = (
            capability is not None
            and capability.dry_run is not DryRunSupport.UNSUPPORTED
            and connector is not None
        )
        if supported and capability is not None:
            effects, _ = await self._predict(
                proposal.tenant_id, capability, proposal.input, request_id or self._ids.new_id()
            )
        subject = self._subject("capability.proposal.dry_run", proposal, request_id=request_id)
        async with self._store.transaction(principal.tenant_id) as tx:
            await tx.audit(self._draft(principal, subject, decision, action="capability.proposal.dry_run"))
        return {
            "proposalId": proposal.id,
            "capabilityId": proposal.capability_id,
            "supported": supported,
            "mode": capability.dry_run.value if capability else "unsupported",
            "predictedEffects": effects,
            "decision": decision.as_json(),
        }

    async def recover_stale_executions(self, principal: Principal, reason: str) -> list[Proposal]:
        """Mark ``executing`` proposals whose process died (older than their budget plus a grace period)
        as ``outcome_unknown``, audited. They never run again; a person checks the device."""
        decision = decide_staff_action(principal=principal, rationale=reason)
        subject = Subject(
            action="capability.proposals.recover",
            capability_id=None,
            target="gateway",
            input_hash=sha256_hex({"recover": principal.tenant_id}),
            correlation_id=self._ids.new_id(),
            request_id=self._ids.new_id(),
            rationale=reason,
        )
        if not decision.allowed:
            await self._audit_refusal(principal, subject, decision)
        now = self._clock.now()
        recovered: list[Proposal] = []
        async with self._store.transaction(principal.tenant_id) as tx:
            for p in await tx.list_proposals(ProposalFilter(status=Status.EXECUTING, limit=MAX_PAGE)):
                capability = self._registry.get(p.capability_id)
                if capability is not None and now - p.updated_at < stale_after(capability):
                    continue
                lost = p.transition(
                    Event.LOSE_TRACK,
                    at=now,
                    execution_finished_at=now,
                    error="STALE: the executing process stopped before recording the outcome; outcome unknown",
                )
                await tx.update_proposal(lost)
                await tx.audit(
                    self._draft(
                        principal,
                        replace(subject, capability_id=p.capability_id, target=p.target, proposal_id=p.id),
                        decision,
                        action="capability.proposal.outcome_unknown",
                        proposal=lost,
                    )
                )
                recovered.append(lost)
        return recovered


def stale_after(capability: Capability) -> timedelta:
    """How long an execution may stay ``executing`` before it counts as abandoned."""
    return timedelta(seconds=capability.timeout_budget_seconds + STALE_GRACE_SECONDS)
