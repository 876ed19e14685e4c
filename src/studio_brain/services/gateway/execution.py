"""Execution: run an approved (or exempt) proposal once and replay a stored result; dry-run
(``dry_run.py``) and the recovery of executions whose process died (``stale.py``) are composed in.

Checks run in the seed's order before any side effect (kill switch → tenant → approval/exemption →
connector → rate limit → cooldown → one in-flight per target); ``executing`` commits with its audit row
before the connector is called, and the outcome commits with its own.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from studio_brain.domain.audit import ApprovalState, AuditDraft
from studio_brain.domain.capabilities import Capability
from studio_brain.domain.connectors import ConnectorContext, ErrorKind, error_kind
from studio_brain.domain.errors import (
    ConfigError,
    Conflict,
    ConnectorError,
    DatabaseUnavailable,
    InputInvalid,
)
from studio_brain.domain.hashing import is_sha256_hex, sha256_hex
from studio_brain.domain.identity import Principal
from studio_brain.domain.outcomes import Outcome, RecordedOutcome, outcome_after_error
from studio_brain.domain.policy import (
    Decision,
    ReasonCode,
    applicable_exemption,
    decide_target_free,
    decide_write_budget,
    exemption_may_apply,
    rate_limited,
    refuse,
)
from studio_brain.domain.proposals import Event, Proposal, Status, execution_key_for
from studio_brain.domain.write_policy import BUDGET_BUCKET, budget_window_start
from studio_brain.ports.connectors import Connector
from studio_brain.ports.gateway import GatewayTransaction
from studio_brain.services.gateway.context import GatewayContext, NotVisible, Refusal, Subject, log
from studio_brain.services.gateway.dry_run import DryRunResult as DryRunResult
from studio_brain.services.gateway.dry_run import DryRuns
from studio_brain.services.gateway.effects import approval_claims, command_for
from studio_brain.services.gateway.execution_policy import execute_decision
from studio_brain.services.gateway.stale import STALE_GRACE_SECONDS as STALE_GRACE_SECONDS
from studio_brain.services.gateway.stale import StaleExecutions
from studio_brain.services.gateway.stale import stale_after as stale_after

OUTCOME_ACTIONS = {
    Event.SUCCEED: "capability.proposal.executed",
    Event.FAIL: "capability.proposal.failed",
    Event.LOSE_TRACK: "capability.proposal.outcome_unknown",
}


def _event_after(kind: ErrorKind, *, sent: bool | None, write: bool) -> Event:
    """The proposal event for an execution that ended with an error (the table is domain/outcomes.py)."""
    outcome = outcome_after_error(kind, sent=sent, write=write)
    return Event.LOSE_TRACK if outcome is Outcome.OUTCOME_UNKNOWN else Event.FAIL


@dataclass(frozen=True, kw_only=True, slots=True)
class Execution:
    """What ``execute`` returns: the proposal as it ended, the decision that let it run, and whether the
    result was replayed from an earlier execution with the same idempotency key."""

    proposal: Proposal
    decision: Decision
    replayed: bool = False


class Executions:
    """The execution use cases (see docs/gateway.md)."""

    def __init__(self, ctx: GatewayContext) -> None:
        self._ctx = ctx
        # dry-run and stale-execution recovery are their own modules, composed here
        self.dry_run = DryRuns(ctx).dry_run
        self.recover_stale_executions = StaleExecutions(ctx).recover_stale_executions

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
            async with self._ctx.store.transaction(principal.tenant_id) as tx:
                proposal = await tx.get_proposal(proposal_id, lock=True, with_kill_switch=True)
                if proposal is None:
                    raise NotVisible
                subject = self._ctx.subject("capability.proposal.execute", proposal, request_id=request_id)
                replay = await self._replay(tx, principal, proposal, subject, idempotency_key)
                if replay is not None:
                    return replay
                claimed = await self._claim(tx, principal, proposal, subject, idempotency_key)
        except NotVisible:
            await self._ctx.missing(principal, proposal_id, "capability.proposal.execute", request_id)
        except Refusal as refused:
            assert subject is not None  # set before any decision is made
            if refused.decision.reason_code is ReasonCode.APPROVAL_EXPIRED:
                await self._expire(principal, proposal_id, subject)
            await self._ctx.audit_refusal(principal, subject, refused.decision)
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
        other = await tx.proposal_by_key("execution_key", idempotency_key)
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
                self._ctx.draft(
                    principal,
                    subject,
                    decision,
                    action="capability.proposal.replayed",
                    output_hash=proposal.output_hash,
                )
            )
            return Execution(proposal=proposal, decision=decision, replayed=True)
        return None

    async def _claim(
        self,
        tx: GatewayTransaction,
        principal: Principal,
        proposal: Proposal,
        subject: Subject,
        idempotency_key: str | None,
    ) -> tuple[Proposal, Decision, Capability, Connector]:
        now = self._ctx.clock.now()
        capability = self._ctx.registry.get(proposal.capability_id)
        kill = await self._ctx.kill(tx)
        if kill.unreadable:
            # fail closed, and leave the (aborted) transaction before anything else reads
            raise Refusal(refuse(ReasonCode.KILL_SWITCH_ACTIVE, "the kill switch state cannot be read"))
        connector = (
            self._ctx.connectors.connector_for(proposal.tenant_id, capability.target.value)
            if capability
            else None
        )
        candidates = (
            await tx.exemptions(capability_id=proposal.capability_id)
            if exemption_may_apply(proposal=proposal, capability=capability, now=now)
            else []
        )
        exemption = applicable_exemption(candidates, proposal=proposal, capability=capability, now=now)
        decision = execute_decision(
            self._ctx, principal, proposal, capability, kill, exemption, connector, now
        )
        if not decision.allowed or capability is None or connector is None:
            raise Refusal(decision)
        target = capability.target.value
        facts = await tx.target_facts(
            target,
            exclusive=capability.exclusive,
            cooldown=bool(capability.cooldown_seconds),
            started_after=now - stale_after(capability),
        )
        budget = self._ctx.registry.write_policy.daily_cloud_write_budget
        if capability.is_cloud_write and budget is not None:
            # the tenant's cloud writes today: counted in this transaction (rolled back on any refusal)
            budget_taken = await tx.take_rate_tokens(
                [(BUDGET_BUCKET, budget_window_start(now.astimezone(self._ctx.zone)), budget)]
            )
            within = decide_write_budget(
                capability=capability, budget=budget, token_taken=budget_taken, state=decision.approval_state
            )
            if not within.allowed:
                raise Refusal(within)
        # Decide cooldown and busy now; the rate token is counted last (below) so that its bucket rows
        # are locked only for the end of the transaction, not while it queues for the audit chain.
        target_free = decide_target_free(
            capability=capability,
            last_started_at=facts.last_started_at,
            in_flight=facts.in_flight,
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
        if target_free.allowed:
            try:
                await tx.update_proposal(running)
            except Conflict as err:
                raise Refusal(
                    refuse(ReasonCode.IDEMPOTENCY_KEY_REUSED, err.message, decision.approval_state)
                ) from err
            if target in self._ctx.cooled_targets:
                await tx.mark_target_started(target, now)
            executing = self._ctx.draft(
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
        if not taken:
            raise Refusal(rate_limited(capability, decision.approval_state))
        if executing is None:  # cooling down or busy: nothing was appended, nothing may run
            raise Refusal(target_free)
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
                call = connector.execute(
                    ctx, command_for(capability, running.input, approval=approval_claims(running))
                )
            else:
                call = connector.read_status(ctx, running.input)
            response = await asyncio.wait_for(call, timeout=capability.timeout_budget_seconds)
            output_hash = (
                response.output_hash if is_sha256_hex(response.output_hash) else sha256_hex(response.data)
            )
            event, changes = Event.SUCCEED, {"output_hash": output_hash, "result": response.data}
        except TimeoutError:
            event = _event_after(ErrorKind.TIMEOUT, sent=None, write=capability.is_write)
            changes = {
                "error": f"TIMEOUT: no answer within {capability.timeout_budget_seconds}s"
                + ("; outcome unknown" if event is Event.LOSE_TRACK else "")
            }
        except ConnectorError as err:
            # issue 13: after a write was sent, only a proven refusal is `failed` (domain/outcomes.py)
            event = _event_after(error_kind(err), sent=err.sent, write=capability.is_write)
            suffix = "; the device may have acted: outcome unknown" if event is Event.LOSE_TRACK else ""
            changes = {"error": f"{err.kind}: {err.message}{suffix}"}
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
            event = _event_after(ErrorKind.UNKNOWN, sent=None, write=capability.is_write)
            changes = {"error": f"UNKNOWN: {type(err).__name__}; outcome unknown"}
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
        """Record the outcome: journalled on local disk first, then written with retries and back-off
        while the database is away (issue 13), so a device that acted is never left ``executing``."""
        now = self._ctx.clock.now()
        finished = running.transition(event, at=now, execution_finished_at=now, **changes)
        journal = self._ctx.journal
        assert running.execution_key is not None
        if journal is not None:
            await journal.record(
                RecordedOutcome(
                    tenant_id=running.tenant_id,
                    proposal_id=running.id,
                    execution_key=running.execution_key,
                    event=event.value,
                    changes=changes,
                    recorded_at=now,
                )
            )
        deadline = self._ctx.clock.monotonic() + self._ctx.outcome_retry_seconds
        delay = 0.05
        while True:
            try:
                recorded = await self.record_outcome(
                    principal, running.id, finished, event, decision, subject, running=running
                )
                break
            except DatabaseUnavailable as err:
                if self._ctx.clock.monotonic() + delay > deadline:
                    log.error(
                        "capability.outcome.unrecorded", proposal_id=running.id, status=finished.status.value
                    )
                    raise DatabaseUnavailable(
                        f"the device call ended ({finished.status.value}) but the database is unavailable;"
                        " the outcome is kept in the local journal and recorded when the database returns"
                    ) from err
                log.warning("capability.outcome.retry", proposal_id=running.id, wait_seconds=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        if journal is not None:
            await journal.forget(running.id)
        return recorded

    async def record_outcome(
        self,
        principal: Principal,
        proposal_id: str,
        finished: Proposal,
        event: Event,
        decision: Decision,
        subject: Subject,
        *,
        extra: dict[str, Any] | None = None,
        running: Proposal | None = None,
    ) -> Proposal:
        """Write ``finished`` and its audit row in one transaction, unless the proposal already left
        ``executing`` (an earlier attempt committed before its answer was lost): idempotent.

        ``running`` is the proposal as this execution's claim wrote it: the write then goes only over exactly
        that row, with no locked re-read first (issue 18: two statements and a record check fewer per
        execution); when the row is anything else, it is read and judged as without ``running``."""
        action = OUTCOME_ACTIONS[event]
        draft = self._ctx.draft(
            principal,
            subject,
            decision,
            action=action,
            proposal=finished,
            output_hash=finished.output_hash,
            extra=extra,
        )
        if running is not None:
            try:
                async with self._ctx.store.transaction(finished.tenant_id) as tx:
                    await tx.update_and_audit(finished, draft, expected=running)
            except Conflict:
                pass  # changed since the claim: judged below, on a locked and checked read
            else:
                log.info(
                    action,
                    proposal_id=proposal_id,
                    capability_id=finished.capability_id,
                    error=finished.error,
                )
                return finished
        async with self._ctx.store.transaction(finished.tenant_id) as tx:
            current = await tx.get_proposal(proposal_id, lock=True)
            if current is not None and current.status is not Status.EXECUTING:
                return current
            await tx.update_and_audit(finished, draft)
        log.info(action, proposal_id=proposal_id, capability_id=finished.capability_id, error=finished.error)
        return finished

    async def _expire(self, principal: Principal, proposal_id: str, subject: Subject) -> None:
        async with self._ctx.store.transaction(principal.tenant_id) as tx:
            proposal = await tx.get_proposal(proposal_id, lock=True)
            if proposal is None or proposal.status is not Status.APPROVED:
                return
            expired = proposal.transition(Event.EXPIRE, at=self._ctx.clock.now())
            await tx.update_proposal(expired)
            decision = Decision(
                allowed=True,
                reason_code=ReasonCode.ALLOWED,
                approval_state=ApprovalState.APPROVED,
                detail="the approval expired",
            )
            await tx.audit(
                self._ctx.draft(
                    principal, subject, decision, action="capability.proposal.expired", proposal=expired
                )
            )
