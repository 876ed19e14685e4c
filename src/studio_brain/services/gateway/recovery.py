"""Recovery of executions without an operator (issue 13): the scheduler's ``execution-recovery`` job.

Three steps, each audited as the brain itself (a system actor, which never approves or sends anything):

1. **Journal replay**: outcomes the device reported but the database never received (a crash or an
   outage between the reply and the write) are recorded from the local journal — ``executed`` with the
   device's output hash, not left ``executing``.
2. **Stale executions**: ``executing`` past its timeout budget plus a grace, with nothing in the journal,
   means the process died mid-call: ``outcome_unknown``.
3. **Read-back**: for an ``outcome_unknown`` write whose connector can read the state it commanded
   (``verify_outcome``, read-only: nothing is sent again), the effect in place proves ``executed``
   (the switch is off), the state unchanged proves ``failed``; anything else stays unknown for a person.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any

from studio_brain.domain.audit import ApprovalState
from studio_brain.domain.connectors import ConnectorContext
from studio_brain.domain.errors import StudioBrainError
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.identity import Principal, system_principal
from studio_brain.domain.outcomes import Observed, RecordedOutcome
from studio_brain.domain.policy import Decision, ReasonCode
from studio_brain.domain.proposals import Event, Proposal, Status
from studio_brain.ports.gateway import ProposalFilter
from studio_brain.services.gateway.context import MAX_PAGE, GatewayContext, log
from studio_brain.services.gateway.effects import approval_claims, command_for
from studio_brain.services.gateway.execution import Executions, stale_after

RECOVERY_ACTOR = "execution-recovery"


@dataclass(frozen=True, kw_only=True, slots=True)
class RecoveryReport:
    journaled: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    reconciled: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"journaled": self.journaled, "stale": self.stale, "reconciled": self.reconciled}


def _decision(state: ApprovalState, detail: str) -> Decision:
    return Decision(allowed=True, reason_code=ReasonCode.ALLOWED, approval_state=state, detail=detail)


class ExecutionRecovery:
    def __init__(self, ctx: GatewayContext, executions: Executions) -> None:
        self._ctx = ctx
        self._executions = executions

    def _principal(self, tenant_id: str) -> Principal:
        return system_principal(tenant_id, RECOVERY_ACTOR)

    async def recover(self, tenant_id: str) -> RecoveryReport:
        """All three steps for ``tenant_id`` (journal first, so a journalled outcome is never lost)."""
        journaled = await self.replay_journal()
        stale = await self.mark_stale(tenant_id)
        reconciled = await self.read_back(tenant_id)
        return RecoveryReport(journaled=journaled, stale=stale, reconciled=reconciled)

    async def replay_journal(self) -> list[str]:
        """Record every journalled outcome the database does not have yet; returns the proposal ids."""
        journal = self._ctx.journal
        if journal is None:
            return []
        done: list[str] = []
        for outcome in await journal.pending():
            if await self._replay_one(outcome):
                done.append(outcome.proposal_id)
            await journal.forget(outcome.proposal_id)
        return done

    async def _replay_one(self, outcome: RecordedOutcome) -> bool:
        async with self._ctx.store.transaction(outcome.tenant_id) as tx:
            proposal = await tx.get_proposal(outcome.proposal_id)
        if (
            proposal is None
            or proposal.status is not Status.EXECUTING
            or proposal.execution_key != outcome.execution_key
        ):
            return False  # recorded already (or superseded): nothing to do
        event = Event(outcome.event)
        at = outcome.recorded_at
        finished = proposal.transition(event, at=at, execution_finished_at=at, **outcome.changes)
        subject = self._ctx.subject("capability.proposal.execute", proposal, request_id=None)
        await self._executions.record_outcome(
            self._principal(proposal.tenant_id),
            proposal.id,
            finished,
            event,
            _decision(proposal.approval_state, "recovered from the local execution journal"),
            subject,
            extra={"recoveredFrom": "journal"},
        )
        log.warning("capability.outcome.recovered", proposal_id=proposal.id, status=finished.status.value)
        return True

    async def mark_stale(self, tenant_id: str) -> list[str]:
        """``executing`` past its budget (and not journalled): ``outcome_unknown``, audited."""
        now = self._ctx.clock.now()
        principal = self._principal(tenant_id)
        lost: list[str] = []
        async with self._ctx.store.transaction(tenant_id) as tx:
            for p in await tx.list_proposals(ProposalFilter(status=Status.EXECUTING, limit=MAX_PAGE)):
                capability = self._ctx.registry.get(p.capability_id)
                started = p.execution_started_at or p.updated_at
                if capability is not None and now - started < stale_after(capability):
                    continue
                unknown = p.transition(
                    Event.LOSE_TRACK,
                    at=now,
                    execution_finished_at=now,
                    error="STALE: the executing process stopped before recording the outcome; outcome unknown",
                )
                await tx.update_proposal(unknown)
                subject = self._ctx.subject("capability.proposal.execute", p, request_id=None)
                await tx.audit(
                    self._ctx.draft(
                        principal,
                        subject,
                        _decision(p.approval_state, "the execution outlived its budget"),
                        action="capability.proposal.outcome_unknown",
                        proposal=unknown,
                        extra={"recoveredFrom": "stale"},
                    )
                )
                lost.append(p.id)
        return lost

    async def read_back(self, tenant_id: str) -> dict[str, str]:
        """Settle ``outcome_unknown`` writes whose connector can read the commanded state back."""
        async with self._ctx.store.transaction(tenant_id) as tx:
            unknown = await tx.list_proposals(ProposalFilter(status=Status.OUTCOME_UNKNOWN, limit=MAX_PAGE))
        settled: dict[str, str] = {}
        for proposal in unknown:
            observed = await self._observe(proposal)
            if observed is None:
                continue
            result = await self._settle(proposal, observed)
            if result is not None:
                settled[proposal.id] = result.status.value
        return settled

    async def _observe(self, proposal: Proposal) -> Observed | None:
        capability = self._ctx.registry.get(proposal.capability_id)
        if capability is None or not capability.is_write:
            return None
        connector = self._ctx.connectors.connector_for(proposal.tenant_id, capability.target.value)
        verify = getattr(connector, "verify_outcome", None)
        if not callable(verify):
            return None
        ctx = ConnectorContext(
            request_id=self._ctx.ids.new_id(),
            timeout_seconds=capability.timeout_budget_seconds,
            # issue 15: a cloud write is found by its proposal and execution key (read-only: nothing is sent)
            idempotency_key=proposal.execution_key,
        )
        try:
            observed = await asyncio.wait_for(
                verify(ctx, command_for(capability, proposal.input, approval=approval_claims(proposal))),
                timeout=capability.timeout_budget_seconds,
            )
        except (StudioBrainError, TimeoutError) as err:
            log.info("capability.outcome.read_back_failed", proposal_id=proposal.id, error=type(err).__name__)
            return None
        return observed if isinstance(observed, Observed) else None

    async def _settle(self, proposal: Proposal, observed: Observed) -> Proposal | None:
        now = self._ctx.clock.now()
        principal = self._principal(proposal.tenant_id)
        event = Event.RECONCILE_EXECUTED if observed.done else Event.RECONCILE_FAILED
        changes: dict[str, Any] = (
            {"output_hash": sha256_hex(observed.data), "result": observed.data, "error": None}
            if observed.done
            else {"error": "RECONCILED: the device shows its state unchanged; the command did not act"}
        )
        async with self._ctx.store.transaction(proposal.tenant_id) as tx:
            current = await tx.get_proposal(proposal.id, lock=True)
            if current is None or current.status is not Status.OUTCOME_UNKNOWN:
                return None  # settled meanwhile (a person, or another brain)
            settled = current.transition(event, at=now, execution_finished_at=now, **changes)
            await tx.update_proposal(settled)
            subject = replace(
                self._ctx.subject("capability.proposal.reconcile", current, request_id=None),
                rationale="read back by the execution-recovery job",
            )
            await tx.audit(
                self._ctx.draft(
                    principal,
                    subject,
                    _decision(current.approval_state, "the device state was read back"),
                    action="capability.proposal.reconciled",
                    proposal=settled,
                    output_hash=settled.output_hash,
                    extra={"recoveredFrom": "read_back", "observed": observed.data},
                ),
                commit=True,
            )
        log.warning("capability.outcome.reconciled", proposal_id=proposal.id, status=settled.status.value)
        return settled
