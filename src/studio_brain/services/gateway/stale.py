"""Stale executions: ``executing`` proposals whose process died (older than their timeout budget plus a
grace period) are marked ``outcome_unknown``, audited, and never run again."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from studio_brain.domain.capabilities import Capability
from studio_brain.domain.identity import Principal
from studio_brain.domain.policy import decide_staff_action
from studio_brain.domain.proposals import Event, Proposal, Status
from studio_brain.ports.gateway import ProposalFilter
from studio_brain.services.gateway.context import MAX_PAGE, GatewayContext

#: beyond its timeout budget, how long an ``executing`` proposal is still considered in flight
STALE_GRACE_SECONDS = 60


def stale_after(capability: Capability) -> timedelta:
    """How long an execution may stay ``executing`` before it counts as abandoned."""
    return timedelta(seconds=capability.timeout_budget_seconds + STALE_GRACE_SECONDS)


class StaleExecutions:
    """The staff use case that marks abandoned executions (composed into ``Executions``)."""

    def __init__(self, ctx: GatewayContext) -> None:
        self._ctx = ctx

    async def recover_stale_executions(self, principal: Principal, reason: str) -> list[Proposal]:
        """Mark ``executing`` proposals whose process died (older than their budget plus a grace period)
        as ``outcome_unknown``, audited. They never run again; a person checks the device."""
        decision = decide_staff_action(principal=principal, rationale=reason)
        subject = self._ctx.staff_subject(
            "capability.proposals.recover", {"recover": principal.tenant_id}, reason
        )
        if not decision.allowed:
            await self._ctx.audit_refusal(principal, subject, decision)
        now = self._ctx.clock.now()
        recovered: list[Proposal] = []
        async with self._ctx.store.transaction(principal.tenant_id) as tx:
            for p in await tx.list_proposals(ProposalFilter(status=Status.EXECUTING, limit=MAX_PAGE)):
                capability = self._ctx.registry.get(p.capability_id)
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
                    self._ctx.draft(
                        principal,
                        replace(subject, capability_id=p.capability_id, target=p.target, proposal_id=p.id),
                        decision,
                        action="capability.proposal.outcome_unknown",
                        proposal=lost,
                    )
                )
                recovered.append(lost)
        return recovered
