"""Shared internals of the capability gateway services: construction, audit drafting, refusal auditing,
the fail-closed kill switch read and cross-tenant detection. ``GatewayService`` builds on this."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from studio_brain.domain.audit import AuditDraft
from studio_brain.domain.capabilities import Capability, Registry, Violation
from studio_brain.domain.errors import (
    NotFound,
    PolicyRefused,
    StorageError,
)
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.identity import Principal
from studio_brain.domain.policy import (
    ConnectorFacts,
    Decision,
    KillSwitch,
    ReasonCode,
    kill_switch_from,
    refuse,
)
from studio_brain.domain.proposals import (
    Proposal,
    to_record,
)
from studio_brain.logging import get_logger
from studio_brain.ports.audit import EventStore
from studio_brain.ports.clock import Clock, IdFactory
from studio_brain.ports.gateway import ConnectorDirectory, GatewayStore, GatewayTransaction

log = get_logger("studio_brain.services.gateway")

MAX_PAGE = 500


class NotVisible(Exception):
    """Internal: the proposal is not visible in the caller's tenant (resolved by ``_missing``)."""


class Refusal(Exception):
    """Internal: leaves a transaction (rolling it back) carrying the decision to audit."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.detail)
        self.decision = decision


@dataclass(frozen=True, kw_only=True, slots=True)
class Subject:
    """What an audit row about a decision names."""

    action: str
    capability_id: str | None
    target: str
    input_hash: str
    correlation_id: str
    request_id: str
    proposal_id: str | None = None
    rationale: str = ""


class GatewayCore:
    """Construction and the helpers every gateway use case shares."""

    def __init__(
        self,
        *,
        store: GatewayStore,
        registry: Registry,
        connectors: ConnectorDirectory,
        clock: Clock,
        ids: IdFactory,
        tenant_id: str,
        events: EventStore | None = None,
        token_source: Callable[[], str] = lambda: secrets.token_urlsafe(32),
    ) -> None:
        self._store = store
        self._registry = registry
        self._connectors = connectors
        self._clock = clock
        self._ids = ids
        self._tenant_id = tenant_id
        self._events = events
        self._token_source = token_source
        #: targets some capability keeps a cooldown on: only these need their last start recorded
        self._cooled_targets = frozenset(
            c.target.value for c in registry.capabilities.values() if c.cooldown_seconds
        )

    # --- registry ------------------------------------------------------------------------------------

    @property
    def registry(self) -> Registry:
        return self._registry

    def capabilities(self) -> list[Capability]:
        return sorted(self._registry.capabilities.values(), key=lambda c: c.id)

    def lint(self) -> list[Violation]:
        return list(self._registry.violations)

    def connector_facts(self, tenant_id: str, capability: Capability) -> ConnectorFacts:
        connector = self._connectors.connector_for(tenant_id, capability.target.value)
        if connector is None:
            return ConnectorFacts(present=False)
        return ConnectorFacts(present=True, mode=connector.mode)

    # --- audit helpers -------------------------------------------------------------------------------

    def _draft(
        self,
        principal: Principal,
        subject: Subject,
        decision: Decision,
        *,
        action: str | None = None,
        proposal: Proposal | None = None,
        output_hash: str | None = None,
        extra: dict[str, Any] | None = None,
        tenant_id: str | None = None,
    ) -> AuditDraft:
        metadata: dict[str, Any] = {"decision": decision.as_json(), "attempted": subject.action}
        if subject.proposal_id is not None:
            metadata["proposalId"] = subject.proposal_id
        if proposal is not None:
            metadata["proposal"] = to_record(proposal)
        if extra:
            metadata.update(extra)
        return AuditDraft(
            tenant_id=tenant_id or principal.tenant_id,
            actor_type=principal.actor_type,
            actor_id=principal.actor_id,
            action=action or subject.action,
            target=subject.target,
            # a NUL cannot be stored; the refusal is still audited, with the character replaced
            rationale=(subject.rationale.strip() or decision.detail or subject.action).replace(
                "\x00", "\ufffd"
            ),
            approval_state=decision.approval_state,
            input_hash=subject.input_hash,
            request_id=subject.request_id,
            correlation_id=subject.correlation_id,
            capability_id=subject.capability_id,
            output_hash=output_hash,
            metadata=metadata,
        )

    async def _audit_refusal(
        self, principal: Principal, subject: Subject, decision: Decision, *, tenant_id: str | None = None
    ) -> NoReturn:
        async with self._store.transaction(tenant_id or principal.tenant_id) as tx:
            await tx.audit(
                self._draft(
                    principal, subject, decision, action="capability.decision.refused", tenant_id=tenant_id
                )
            )
        log.info(
            "capability.refused",
            reason_code=decision.reason_code.value,
            attempted=subject.action,
            capability_id=subject.capability_id,
            proposal_id=subject.proposal_id,
            actor_id=principal.actor_id,
            tenant_id=principal.tenant_id,
        )
        raise PolicyRefused(decision.reason_code.value, decision.detail)

    async def _kill(self, tx: GatewayTransaction) -> KillSwitch:
        try:
            entries = await tx.kill_switch_entries()
        except StorageError:
            log.warning("capability.killswitch.unreadable")
            return KillSwitch(unreadable=True)  # fail closed: an unreadable switch is on
        return kill_switch_from({e.scope: e.enabled for e in entries})

    def _subject(
        self,
        action: str,
        proposal: Proposal,
        *,
        request_id: str | None,
        rationale: str = "",
    ) -> Subject:
        return Subject(
            action=action,
            capability_id=proposal.capability_id,
            target=proposal.target,
            input_hash=proposal.input_hash,
            correlation_id=proposal.correlation_id,
            request_id=request_id or self._ids.new_id(),
            proposal_id=proposal.id,
            rationale=rationale,
        )

    async def _missing(
        self, principal: Principal, proposal_id: str, action: str, request_id: str | None
    ) -> NoReturn:
        """Not visible in the caller's tenant: TENANT_MISMATCH (audited in both tenants) or NotFound."""
        owner = await self._store.proposal_tenant(proposal_id)
        if owner is None or owner == principal.tenant_id:
            raise NotFound(f"no proposal {proposal_id}")
        subject = Subject(
            action=action,
            capability_id=None,
            target="gateway",
            input_hash=sha256_hex({"proposalId": proposal_id}),
            correlation_id=request_id or self._ids.new_id(),
            request_id=request_id or self._ids.new_id(),
            proposal_id=proposal_id,
            rationale="cross-tenant attempt",
        )
        decision = refuse(ReasonCode.TENANT_MISMATCH, "the proposal belongs to another tenant")
        # the owning tenant's log records the attempt too (the actor's tenant is named in the row)
        async with self._store.transaction(owner) as tx:
            await tx.audit(
                self._draft(
                    principal,
                    subject,
                    decision,
                    action="capability.decision.refused",
                    tenant_id=owner,
                    extra={"actorTenantId": principal.tenant_id},
                )
            )
        await self._audit_refusal(principal, subject, decision)
