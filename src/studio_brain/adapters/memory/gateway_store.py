"""GatewayStore in memory: the same unit of work as PostgreSQL, for fast tests and demos.

Passes ``tests/contract/test_gateway_store.py`` like the real store. Honest where it matters:

- one transaction per tenant at a time (a per-tenant lock held from ``async with`` to its end), so
  ``lock=True``, exclusive targets and rate buckets are serialised at least as strictly as in PostgreSQL;
- a transaction works on a copy of its tenant's rows and publishes them, with its audit drafts appended
  to the event store all-or-nothing, only when it commits; leaving by an exception rolls everything back;
- proposals are stored as the JSON text of their record, so what reads back is a fresh, equal value;
- after a Conflict the transaction is unusable (like an aborted PostgreSQL transaction), and after a
  commit (``commit=True``, a successful ``take_rate_tokens(then_audit=…)``) nothing may be written.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime

from studio_brain.adapters.memory.event_store import InMemoryEventStore
from studio_brain.domain.audit import AuditDraft, validate_draft
from studio_brain.domain.errors import Conflict, StorageError
from studio_brain.domain.policy import AgentToken, Exemption, KillSwitchEntry, RateBucket
from studio_brain.domain.proposals import Proposal, Status, from_record, to_record
from studio_brain.ports.gateway import PolicyOverview, ProposalFilter, ProposalKey, TargetFacts


def _dump(proposal: Proposal) -> str:
    text = json.dumps(to_record(proposal), allow_nan=False)
    if "\\u0000" in text:
        # PostgreSQL cannot store a NUL in jsonb text either
        raise StorageError("database error while running a gateway transaction: UntranslatableCharacter")
    return text


@dataclass(slots=True)
class _Rows:
    """One tenant's rows (proposals as JSON text)."""

    proposals: dict[str, str] = field(default_factory=dict)
    kill_switch: dict[str, KillSwitchEntry] = field(default_factory=dict)
    exemptions: dict[str, Exemption] = field(default_factory=dict)
    rate: dict[tuple[str, datetime], int] = field(default_factory=dict)
    targets: dict[str, datetime] = field(default_factory=dict)
    tokens: dict[str, AgentToken] = field(default_factory=dict)

    def copy(self) -> _Rows:
        # values are immutable (frozen dataclasses, str, int, datetime): shallow copies isolate them
        return _Rows(
            proposals=dict(self.proposals),
            kill_switch=dict(self.kill_switch),
            exemptions=dict(self.exemptions),
            rate=dict(self.rate),
            targets=dict(self.targets),
            tokens=dict(self.tokens),
        )


class InMemoryGatewayTransaction:
    def __init__(self, store: InMemoryGatewayStore, tenant_id: str, rows: _Rows) -> None:
        self._store = store
        self._tenant = tenant_id
        self._rows = rows
        self._drafts: list[AuditDraft] = []
        self._owners: dict[str, str] = {}
        self._state = "open"  # open | aborted | committed

    # --- transaction state -------------------------------------------------------------------------

    def _usable(self) -> _Rows:
        if self._state == "aborted":
            raise StorageError("database error while running a gateway transaction: InFailedSqlTransaction")
        if self._state == "committed":
            raise StorageError("the gateway transaction was already committed")
        return self._rows

    def _conflict(self, message: str) -> Conflict:
        self._state = "aborted"
        return Conflict(message)

    async def commit(self) -> None:
        if self._state != "open":
            return
        # the audit drafts are sealed first, all or nothing; only then do the rows become visible
        await self._store.publish(self._tenant, self._rows, self._drafts, self._owners)
        self._state = "committed"

    # --- proposals ---------------------------------------------------------------------------------

    def _proposals(self) -> list[Proposal]:
        return [from_record(json.loads(text)) for text in self._usable().proposals.values()]

    async def get_proposal(
        self, proposal_id: str, *, lock: bool = False, with_kill_switch: bool = False
    ) -> Proposal | None:
        # with_kill_switch changes nothing here: kill_switch_entries reads this transaction's own copy
        text = self._usable().proposals.get(proposal_id)
        return None if text is None else from_record(json.loads(text))

    async def proposal_by_key(self, kind: ProposalKey, key: str) -> Proposal | None:
        for p in self._proposals():
            if (p.idempotency_key if kind == "idempotency_key" else p.execution_key) == key:
                return p
        return None

    async def insert_proposal(self, proposal: Proposal) -> None:
        rows = self._usable()
        taken = proposal.id in rows.proposals or self._store.owner(proposal.id) is not None
        if taken or (
            proposal.idempotency_key is not None
            and await self.proposal_by_key("idempotency_key", proposal.idempotency_key) is not None
        ):
            raise self._conflict("a proposal with this id or idempotency key already exists")
        rows.proposals[proposal.id] = _dump(proposal)
        self._owners[proposal.id] = proposal.tenant_id

    async def update_proposal(self, proposal: Proposal) -> None:
        rows = self._usable()
        if proposal.execution_key is not None:
            other = await self.proposal_by_key("execution_key", proposal.execution_key)
            if other is not None and other.id != proposal.id:
                raise self._conflict("this execution idempotency key is already used by another proposal")
        stored = await self.get_proposal(proposal.id)
        if stored is None or stored.version != proposal.version - 1:
            raise self._conflict(f"proposal {proposal.id} changed underneath this update; try again")
        rows.proposals[proposal.id] = _dump(proposal)

    async def insert_and_audit(self, proposal: Proposal, draft: AuditDraft) -> None:
        await self.insert_proposal(proposal)
        await self.audit(draft, commit=True)

    async def update_and_audit(
        self, proposal: Proposal, draft: AuditDraft, *, expected: Proposal | None = None
    ) -> None:
        if expected is not None and self._usable().proposals.get(expected.id) != _dump(expected):
            raise self._conflict(f"proposal {proposal.id} changed underneath this update; try again")
        await self.update_proposal(proposal)
        await self.audit(draft, commit=True)

    async def list_proposals(self, where: ProposalFilter) -> list[Proposal]:
        found = [
            p
            for p in self._proposals()
            if (where.status is None or p.status is where.status)
            and (where.capability_id is None or p.capability_id == where.capability_id)
            and (where.requested_by is None or p.requested_by == where.requested_by)
            and (where.before is None or (p.created_at, p.id) < where.before)
        ]
        found.sort(key=lambda p: (p.created_at, p.id), reverse=True)
        return found[: where.limit]

    async def overview(self, where: ProposalFilter) -> PolicyOverview:
        # the head first, as on PostgreSQL; the rows compare by value (this store's rows are its values)
        head = await self._store.chain_head_seq(self._tenant)
        proposals = await self.list_proposals(where)
        entries = await self.kill_switch_entries()
        exemptions = await self.exemptions()
        return PolicyOverview(
            proposals=proposals,
            kill_switch=entries,
            exemptions=exemptions,
            mark=(head, tuple(proposals), tuple(entries), tuple(exemptions)),
        )

    async def replace_proposals(self, proposals: Sequence[Proposal]) -> None:
        rows = self._usable()
        rows.proposals = {p.id: _dump(p) for p in proposals}
        for p in proposals:
            self._owners.setdefault(p.id, p.tenant_id)

    # --- kill switch -------------------------------------------------------------------------------

    async def kill_switch_entries(self) -> list[KillSwitchEntry]:
        return [e for _, e in sorted(self._usable().kill_switch.items())]

    async def set_kill_switch(self, entry: KillSwitchEntry) -> None:
        self._usable().kill_switch[entry.scope] = entry

    # --- exemptions --------------------------------------------------------------------------------

    async def exemptions(self, *, capability_id: str | None = None) -> list[Exemption]:
        found = [
            e
            for e in self._usable().exemptions.values()
            if capability_id is None or e.capability_id == capability_id
        ]
        return sorted(found, key=lambda e: (e.created_at, e.id), reverse=True)

    async def get_exemption(self, exemption_id: str) -> Exemption | None:
        return self._usable().exemptions.get(exemption_id)

    async def save_exemption(self, exemption: Exemption) -> None:
        rows = self._usable()
        stored = rows.exemptions.get(exemption.id)
        if stored is None:
            rows.exemptions[exemption.id] = exemption
            return
        # only the revocation of a stored exemption may change
        rows.exemptions[exemption.id] = replace(
            stored,
            revoked_at=exemption.revoked_at,
            revoked_by=exemption.revoked_by,
            revoke_reason=exemption.revoke_reason,
        )

    # --- throttles ---------------------------------------------------------------------------------

    async def target_facts(
        self, target: str, *, exclusive: bool, cooldown: bool, started_after: datetime
    ) -> TargetFacts:
        rows = self._usable()
        # exclusive: this tenant's transactions already run one at a time (see the module docstring)
        in_flight = 0
        if exclusive:
            in_flight = sum(
                1
                for p in self._proposals()
                if p.target == target and p.status is Status.EXECUTING and p.updated_at > started_after
            )
        return TargetFacts(
            last_started_at=rows.targets.get(target) if cooldown else None, in_flight=in_flight
        )

    async def mark_target_started(self, target: str, at: datetime) -> None:
        rows = self._usable()
        before = rows.targets.get(target)
        rows.targets[target] = at if before is None else max(before, at)

    async def take_rate_tokens(
        self, takes: Sequence[tuple[str, datetime, int]], *, then_audit: AuditDraft | None = None
    ) -> bool:
        rows = self._usable()
        if any(limit <= 0 or rows.rate.get((bucket, start), 0) >= limit for bucket, start, limit in takes):
            return False
        for bucket, start, _ in takes:
            rows.rate[(bucket, start)] = rows.rate.get((bucket, start), 0) + 1
        if then_audit is not None:
            await self.audit(then_audit, commit=True)
        return True

    async def rate_buckets(self, *, limit: int) -> list[RateBucket]:
        ordered = sorted(self._usable().rate.items(), key=lambda item: (-item[0][1].timestamp(), item[0][0]))
        return [
            RateBucket(bucket=bucket, window_start=start, count=count) for (bucket, start), count in ordered
        ][:limit]

    async def reset_rate_bucket(self, bucket: str) -> int:
        rows = self._usable()
        keys = [key for key in rows.rate if key[0] == bucket]
        for key in keys:
            del rows.rate[key]
        return len(keys)

    # --- agent tokens ------------------------------------------------------------------------------

    async def get_agent_token(self, token_id: str) -> AgentToken | None:
        return self._usable().tokens.get(token_id)

    async def agent_tokens(self) -> list[AgentToken]:
        return sorted(self._usable().tokens.values(), key=lambda t: (t.created_at, t.id), reverse=True)

    async def save_agent_token(self, token: AgentToken) -> None:
        rows = self._usable()
        stored = rows.tokens.get(token.id)
        rows.tokens[token.id] = (
            token
            if stored is None
            else replace(stored, revoked_at=token.revoked_at, revoked_by=token.revoked_by)
        )

    # --- audit -------------------------------------------------------------------------------------

    async def audit(self, draft: AuditDraft, *, commit: bool = False) -> None:
        self._usable()
        if draft.tenant_id != self._tenant:
            # PostgreSQL's row-level security refuses a row of another tenant in this transaction
            raise self._conflict(f"an audit row of tenant {draft.tenant_id} in a {self._tenant} transaction")
        try:
            self._drafts.append(validate_draft(draft))
        except Exception:
            self._state = "aborted"
            raise
        if commit:
            await self.commit()


class InMemoryGatewayStore:
    """Gateway rows per tenant; audit rows go to ``events`` when a transaction commits."""

    def __init__(self, events: InMemoryEventStore) -> None:
        self._events = events
        self._tenants: dict[str, _Rows] = {}
        self._owners: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def owner(self, proposal_id: str) -> str | None:
        return self._owners.get(proposal_id)

    async def publish(
        self, tenant_id: str, rows: _Rows, drafts: Sequence[AuditDraft], owners: dict[str, str]
    ) -> None:
        """Commit a transaction: append its drafts (all or nothing), then make its rows visible."""
        if drafts:
            await self._events.append_many(drafts)
        self._tenants[tenant_id] = rows
        self._owners.update(owners)

    @asynccontextmanager
    async def transaction(self, tenant_id: str) -> AsyncIterator[InMemoryGatewayTransaction]:
        lock = self._locks.setdefault(tenant_id, asyncio.Lock())
        async with lock:
            current = self._tenants.get(tenant_id) or _Rows()
            tx = InMemoryGatewayTransaction(self, tenant_id, current.copy())
            yield tx  # an exception here leaves the copy unpublished: rolled back
            await tx.commit()

    async def chain_head_seq(self, tenant_id: str) -> int:
        head = await self._events.chain_head(tenant_id)
        return 0 if head is None else head.seq

    async def overview_mark(self, tenant_id: str, where: ProposalFilter) -> object:
        async with self.transaction(tenant_id) as tx:
            return (await tx.overview(where)).mark

    async def proposal_tenant(self, proposal_id: str) -> str | None:
        return self._owners.get(proposal_id)
