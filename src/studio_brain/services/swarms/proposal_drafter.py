"""The swarms' proposal drafter over the capability gateway (the :class:`~studio_brain.ports.drafts.ProposalDrafter`
the finance swarm and agent drafts use): it only ever creates *draft* proposals."""

from __future__ import annotations

from typing import Any, Protocol

from studio_brain.domain.identity import Principal, system_principal


class _Gateway(Protocol):
    async def create_proposal(
        self,
        principal: Principal,
        capability_id: str,
        input: Any,
        rationale: str,
        *,
        idempotency_key: str | None = None,
        as_draft: bool = False,
    ) -> Any: ...


class GatewayProposalDrafter:
    """ProposalDrafter over the capability gateway: a *draft* ``studio.note.append`` proposal, proposed by
    the system principal, which staff may submit for approval (or ignore). Nothing runs without approval."""

    CAPABILITY = "studio.note.append"

    def __init__(self, gateway: _Gateway) -> None:
        self._gateway = gateway

    async def draft_proposal(self, *, tenant_id: str, text: str, rationale: str, idempotency_key: str) -> str:
        created = await self._gateway.create_proposal(
            system_principal(tenant_id, "swarm:finance"),
            self.CAPABILITY,
            {"text": text[:2000], "topic": "reconciliation"},
            rationale,
            idempotency_key=idempotency_key,
            as_draft=True,
        )
        return str(created.proposal.id)

    async def draft_capability(
        self,
        *,
        tenant_id: str,
        actor_id: str,
        capability_id: str,
        input: dict[str, object],
        rationale: str,
        idempotency_key: str,
    ) -> str:
        created = await self._gateway.create_proposal(
            system_principal(tenant_id, actor_id),
            capability_id,
            dict(input),
            rationale[:2000],
            idempotency_key=idempotency_key,
            as_draft=True,
        )
        return str(created.proposal.id)
