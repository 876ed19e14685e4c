"""Acting on swarm drafts from the cockpit (issue 14): what waits, Submit as a proposal, Dismiss with a reason.

A draft is only advice. Submitting one creates a ``studio.note.append`` proposal in the requester's name
that still needs someone else's approval; dismissing one records the reason. Both are audited and final
(one decision per draft); marketing copy keeps its own review machine (``DraftService.review_marketing``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from studio_brain.domain.audit import ApprovalState, AuditDraft
from studio_brain.domain.drafts import Draft, DraftDecision, DraftDecisionKind, DraftKind, DraftStatus
from studio_brain.domain.errors import Conflict, InputInvalid, NotFound, PolicyRefused, ReasonCode
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.identity import Principal
from studio_brain.logging import get_logger
from studio_brain.ports import Clock, EventStore, IdFactory
from studio_brain.ports.drafts import DraftStore

log = get_logger(__name__)

SUBMIT_CAPABILITY = "studio.note.append"
MAX_REASON = 500
#: how many drafts of each kind are looked at for "waiting"
WINDOW = 100


class DecisionStore(Protocol):
    async def record(self, decision: DraftDecision) -> None: ...

    async def decisions(self, tenant_id: str) -> dict[str, DraftDecision]: ...


class _Gateway(Protocol):
    async def create_proposal(
        self,
        principal: Principal,
        capability_id: str,
        input: Any,
        rationale: str,
        *,
        idempotency_key: str | None = None,
    ) -> Any: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class DraftItem:
    draft: Draft
    decision: DraftDecision | None

    @property
    def waiting(self) -> bool:
        if self.decision is not None:
            return False
        # marketing copy approved for publishing needs nothing more from anyone
        return self.draft.status is not DraftStatus.APPROVED_FOR_PUBLISH


def note_text(draft: Draft) -> str:
    """The note a submitted draft proposes: what was found and what to do, with the draft's id."""
    text = f"{draft.title}. {draft.recommendation} (swarm draft {draft.id})"
    return text[:2000]


class DraftDecisionService:
    def __init__(
        self,
        *,
        drafts: DraftStore,
        store: DecisionStore,
        gateway: _Gateway | None,
        events: EventStore | None,
        clock: Clock,
        ids: IdFactory,
    ) -> None:
        self._drafts = drafts
        self._store = store
        self._gateway = gateway
        self._events = events
        self._clock = clock
        self._ids = ids

    def _require_staff(self, principal: Principal) -> None:
        if not principal.is_staff or principal.is_agent:
            raise PolicyRefused(ReasonCode.STAFF_REQUIRED, "only staff act on swarm drafts")

    async def items(
        self, principal: Principal, kinds: Sequence[DraftKind] = tuple(DraftKind)
    ) -> list[DraftItem]:
        """Drafts of ``kinds``, newest first, each with its decision (if any)."""
        self._require_staff(principal)
        decisions = await self._store.decisions(principal.tenant_id)
        items: list[DraftItem] = []
        for kind in kinds:
            for draft in await self._drafts.list(principal.tenant_id, kind=kind, limit=WINDOW):
                items.append(DraftItem(draft=draft, decision=decisions.get(draft.id)))
        items.sort(key=lambda i: (i.draft.created_at, i.draft.id), reverse=True)
        return items

    async def waiting(self, principal: Principal) -> list[DraftItem]:
        return [i for i in await self.items(principal) if i.waiting]

    async def _undecided(self, principal: Principal, draft_id: str) -> Draft:
        self._require_staff(principal)
        draft = await self._drafts.get(principal.tenant_id, draft_id)
        if draft is None:
            raise NotFound(f"no draft {draft_id!r}")
        if draft_id in await self._store.decisions(principal.tenant_id):
            raise Conflict(f"draft {draft_id} was already decided")
        return draft

    async def submit(self, principal: Principal, draft_id: str) -> str:
        """Propose the draft's note for approval; returns the proposal id."""
        draft = await self._undecided(principal, draft_id)
        if draft.kind is DraftKind.MARKETING:
            raise InputInvalid(
                "marketing copy is reviewed (Needs review → Approved for publish), not submitted"
            )
        if self._gateway is None:
            raise InputInvalid("this brain has no capability gateway to submit proposals to")
        created = await self._gateway.create_proposal(
            principal,
            SUBMIT_CAPABILITY,
            {"text": note_text(draft), "topic": f"swarm:{draft.kind.value}"},
            f"Submitted from swarm draft {draft.id} ({draft.kind.value}, {draft.severity.value}): {draft.rationale}"[
                :2000
            ],
            idempotency_key=f"draft-submit:{draft.id}",
        )
        proposal_id = str(getattr(getattr(created, "proposal", created), "id", created))
        await self._decide(
            principal, draft, DraftDecisionKind.SUBMITTED, "submitted for approval", proposal_id
        )
        return proposal_id

    async def dismiss(self, principal: Principal, draft_id: str, reason: str) -> DraftDecision:
        reason = (reason or "").strip()
        if not reason:
            raise InputInvalid("dismissing a draft needs a reason")
        if len(reason) > MAX_REASON:
            raise InputInvalid(f"the reason is longer than {MAX_REASON} characters")
        draft = await self._undecided(principal, draft_id)
        return await self._decide(principal, draft, DraftDecisionKind.DISMISSED, reason, None)

    async def _decide(
        self,
        principal: Principal,
        draft: Draft,
        kind: DraftDecisionKind,
        reason: str,
        proposal_id: str | None,
    ) -> DraftDecision:
        decision = DraftDecision(
            tenant_id=principal.tenant_id,
            draft_id=draft.id,
            decision=kind,
            reason=reason,
            proposal_id=proposal_id,
            actor_id=principal.actor_id,
            decided_at=self._clock.now(),
        )
        await self._store.record(decision)
        if self._events is not None:
            request_id = self._ids.new_id()
            inputs = {
                "draftId": draft.id,
                "kind": draft.kind.value,
                "decision": kind.value,
                "proposalId": proposal_id,
            }
            await self._events.append(
                AuditDraft(
                    tenant_id=principal.tenant_id,
                    actor_type=principal.actor_type,
                    actor_id=principal.actor_id,
                    action=f"swarm.draft.{kind.value}",
                    target="local",
                    rationale=reason,
                    approval_state=ApprovalState.NOT_APPLICABLE,
                    input_hash=sha256_hex(inputs),
                    request_id=request_id,
                    correlation_id=proposal_id or request_id,
                    metadata={**inputs, "title": draft.title[:200], "credential": principal.credential()},
                )
            )
        log.info(f"swarm.draft.{kind.value}", draft_id=draft.id, actor_id=principal.actor_id)
        return decision
