"""Rebuild of a tenant's proposals table from the audit log alone (each proposal's newest record travels
in the metadata of the audit events about it)."""

from __future__ import annotations

from typing import Any

from studio_brain.domain.errors import StorageError
from studio_brain.domain.identity import Principal
from studio_brain.domain.policy import decide_staff_action
from studio_brain.domain.proposals import from_record
from studio_brain.services.gateway.context import GatewayContext


class ProposalRebuild:
    """Rebuild the proposals table from the audit log."""

    def __init__(self, ctx: GatewayContext) -> None:
        self._ctx = ctx

    async def rebuild_proposals(self, principal: Principal, reason: str) -> int:
        """Wipe the tenant's proposals table and rebuild it from the audit log alone (each proposal's
        newest record travels in the metadata of the audit events about it). Returns the count."""
        decision = decide_staff_action(principal=principal, rationale=reason)
        subject = self._ctx.staff_subject(
            "capability.proposals.rebuild", {"rebuild": principal.tenant_id}, reason
        )
        if not decision.allowed:
            await self._ctx.audit_refusal(principal, subject, decision)
        if self._ctx.events is None:
            raise StorageError("no event store is wired; cannot rebuild from the audit log")
        latest: dict[str, dict[str, Any]] = {}
        async for event in self._ctx.events.stream(principal.tenant_id):
            record = event.metadata.get("proposal")
            if event.action.startswith("capability.proposal.") and isinstance(record, dict):
                latest[str(record["id"])] = record
        async with self._ctx.store.transaction(principal.tenant_id) as tx:
            await tx.replace_proposals([from_record(record) for record in latest.values()])
            await tx.audit(
                self._ctx.draft(
                    principal,
                    subject,
                    decision,
                    action="capability.proposals.rebuilt",
                    extra={"proposals": len(latest)},
                )
            )
        return len(latest)
