"""Dry run: what executing a proposal would do now — the policy decision (without counters) and the
connector's simulated effects where supported. Never acts; audited."""

from __future__ import annotations

from typing import Any, TypedDict

from studio_brain.domain.connectors import DryRunSupport
from studio_brain.domain.errors import PermissionDenied
from studio_brain.domain.identity import Principal
from studio_brain.domain.policy import ReasonCode, applicable_exemption, exemption_may_apply
from studio_brain.services.gateway.context import GatewayContext, NotVisible
from studio_brain.services.gateway.effects import predict_effects
from studio_brain.services.gateway.execution_policy import execute_decision

#: the scope that lets an agent read proposals, and so dry-run them
READ_SCOPE = "proposals:read"


class DryRunResult(TypedDict):
    """What ``dry_run`` returns: the policy decision as things stand and the predicted effects."""

    proposalId: str
    capabilityId: str
    #: whether the connector simulated the call (else the effects predicted at creation)
    supported: bool
    mode: str
    predictedEffects: list[Any]
    decision: dict[str, Any]


class DryRuns:
    """The dry-run use case (composed into :class:`~studio_brain.services.gateway.execution.Executions`)."""

    def __init__(self, ctx: GatewayContext) -> None:
        self._ctx = ctx

    async def dry_run(
        self, principal: Principal, proposal_id: str, *, request_id: str | None = None
    ) -> DryRunResult:
        """What executing would do now: the policy decision (without counters) and the connector's
        dry-run where supported. Never acts. Audited."""
        if not (principal.is_staff or principal.has_scope(READ_SCOPE)):
            # a read of the proposal like any other: staff, or an agent holding proposals:read (issue 12)
            raise PermissionDenied(
                f"a dry run needs staff or the scope {READ_SCOPE!r}", reason_code=ReasonCode.SCOPE_REQUIRED
            )
        try:
            async with self._ctx.store.transaction(principal.tenant_id) as tx:
                proposal = await tx.get_proposal(proposal_id)
                if proposal is None:
                    raise NotVisible
                capability = self._ctx.registry.get(proposal.capability_id)
                kill = await self._ctx.kill(tx)
                now = self._ctx.clock.now()
                # an unreadable kill switch aborted the transaction: read nothing more in it
                candidates = (
                    await tx.exemptions(capability_id=proposal.capability_id)
                    if not kill.unreadable
                    and exemption_may_apply(proposal=proposal, capability=capability, now=now)
                    else []
                )
        except NotVisible:
            # audited after this transaction ended (it writes in transactions of its own)
            await self._ctx.missing(principal, proposal_id, "capability.proposal.dry_run", request_id)
        connector = self._ctx.connectors.connector_for(proposal.tenant_id, proposal.target)
        exemption = applicable_exemption(candidates, proposal=proposal, capability=capability, now=now)
        decision = execute_decision(
            self._ctx, principal, proposal, capability, kill, exemption, connector, now
        )
        effects: list[Any] = proposal.predicted_effects
        supported = (
            capability is not None
            and capability.dry_run is not DryRunSupport.UNSUPPORTED
            and connector is not None
        )
        if supported and capability is not None:
            effects, _ = await predict_effects(
                self._ctx.connectors,
                proposal.tenant_id,
                capability,
                proposal.input,
                request_id or self._ctx.ids.new_id(),
            )
        subject = self._ctx.subject("capability.proposal.dry_run", proposal, request_id=request_id)
        async with self._ctx.store.transaction(principal.tenant_id) as tx:
            await tx.audit(
                self._ctx.draft(principal, subject, decision, action="capability.proposal.dry_run")
            )
        return {
            "proposalId": proposal.id,
            "capabilityId": proposal.capability_id,
            "supported": supported,
            "mode": capability.dry_run.value if capability else "unsupported",
            "predictedEffects": effects,
            "decision": decision.as_json(),
        }
