"""Ports of the capability gateway: the transactional GatewayStore (a unit of work) and the connector
directory the execution runner looks connectors up in."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from studio_brain.domain.audit import AuditDraft
from studio_brain.domain.policy import AgentToken, Exemption, KillSwitchEntry, RateBucket
from studio_brain.domain.proposals import Proposal, Status
from studio_brain.ports.connectors import Connector


@dataclass(frozen=True, kw_only=True, slots=True)
class ProposalFilter:
    status: Status | None = None
    capability_id: str | None = None
    requested_by: str | None = None
    #: keyset paging, newest first: proposals created strictly before this (created_at, id)
    before: tuple[datetime, str] | None = None
    limit: int = 50


@dataclass(frozen=True, kw_only=True, slots=True)
class PolicyOverview:
    """The newest proposals, the kill switch's entries and the exemptions, as their own reads return them
    (the Portal's capabilities card, issue 18), and ``mark``: what :meth:`GatewayStore.overview_mark`
    answers for as long as none of them — nor the tenant's audit chain — has changed since. A mark is
    compared by equality only; it never names content other than what it was read with."""

    proposals: list[Proposal]
    kill_switch: list[KillSwitchEntry]
    exemptions: list[Exemption]
    mark: object


#: the two unique keys a proposal may be found by
ProposalKey = Literal["idempotency_key", "execution_key"]


@dataclass(frozen=True, kw_only=True, slots=True)
class TargetFacts:
    """What the execution runner reads about a target before it starts: when it last started (cooldown)
    and how many executions on it are still in flight (exclusive capabilities)."""

    last_started_at: datetime | None = None
    in_flight: int = 0


class GatewayTransaction(Protocol):
    """Everything the gateway reads and writes, inside ONE transaction scoped to one tenant.

    A state change and its audit event are written through the same transaction, so one can never exist
    without the other. Leaving the ``async with`` block by an exception rolls everything back; so does a
    refused ``take_rate_tokens`` (the caller must then leave).

    Two implementations keep this contract: ``adapters/postgres/gateway_store.py`` and
    ``adapters/memory/gateway_store.py``; a new method goes into both and into
    ``tests/contract/test_gateway_store.py``. Keep the port narrow: a use case's need is a method here
    only when no existing one can serve it."""

    # proposals
    async def get_proposal(
        self, proposal_id: str, *, lock: bool = False, with_kill_switch: bool = False
    ) -> Proposal | None:
        """``lock``: no other transaction changes the proposal until this one ends. ``with_kill_switch``:
        the kill switch is read along with it, after the lock is held (issue 18: in the same round trip
        on PostgreSQL); the transaction's next ``kill_switch_entries`` answers from that read."""
        ...

    async def proposal_by_key(self, kind: ProposalKey, key: str) -> Proposal | None:
        """The tenant's proposal whose idempotency key (or execution key) is ``key``."""
        ...

    async def insert_proposal(self, proposal: Proposal) -> None:
        """Raises Conflict when the id or the idempotency key exists (the transaction is then unusable:
        leave it)."""
        ...

    async def update_proposal(self, proposal: Proposal) -> None:
        """Store a new version; raises Conflict unless the stored version is ``proposal.version - 1``, or
        when the execution key is taken (the transaction is then unusable: leave it)."""
        ...

    async def insert_and_audit(self, proposal: Proposal, draft: AuditDraft) -> None:
        """:meth:`insert_proposal`, then :meth:`audit` of ``draft`` with ``commit``: the same effects and
        the same Conflicts, in fewer round trips where the store can (issue 18)."""
        ...

    async def update_and_audit(
        self, proposal: Proposal, draft: AuditDraft, *, expected: Proposal | None = None
    ) -> None:
        """:meth:`update_proposal`, then :meth:`audit` of ``draft`` with ``commit``: the same effects and
        the same Conflicts, in fewer round trips where the store can (issue 18).

        With ``expected``: only over exactly that stored proposal (its version and its whole record, not
        only the version), else the same Conflict as a stale version and nothing appended — a caller that
        wrote ``expected`` itself need not lock and re-read it first."""
        ...

    async def list_proposals(self, where: ProposalFilter) -> list[Proposal]:
        """Newest first by (created_at, id), at most ``where.limit``."""
        ...

    async def replace_proposals(self, proposals: Sequence[Proposal]) -> None:
        """Delete every proposal of the tenant and write ``proposals`` as they are (rebuild from the
        audit log)."""
        ...

    async def overview(self, where: ProposalFilter) -> PolicyOverview:
        """``list_proposals(where)``, ``kill_switch_entries()`` and ``exemptions()`` with their checks, and
        the mark of exactly what was read (the audit chain's head read first)."""
        ...

    # kill switch
    async def kill_switch_entries(self) -> list[KillSwitchEntry]:
        """Raises StorageError when the switch cannot be read (the caller fails closed and leaves)."""
        ...

    async def set_kill_switch(self, entry: KillSwitchEntry) -> None:
        """Insert or replace the entry of ``entry.scope``."""
        ...

    # exemptions
    async def exemptions(self, *, capability_id: str | None = None) -> list[Exemption]:
        """Newest first."""
        ...

    async def get_exemption(self, exemption_id: str) -> Exemption | None: ...
    async def save_exemption(self, exemption: Exemption) -> None:
        """Insert a new exemption, or record the revocation of a stored one."""
        ...

    # execution throttles
    async def target_facts(
        self, target: str, *, exclusive: bool, cooldown: bool, started_after: datetime
    ) -> TargetFacts:
        """``exclusive``: serialise execution checks on ``target`` until the transaction ends, then count
        its executions still ``executing`` that started after ``started_after`` (older ones are stale:
        their process died). ``cooldown``: read when the target last started. Unasked facts are left
        at their defaults."""
        ...

    async def mark_target_started(self, target: str, at: datetime) -> None:
        """Record a start (the latest of the stored and ``at`` wins)."""
        ...

    async def take_rate_tokens(
        self, takes: Sequence[tuple[str, datetime, int]], *, then_audit: AuditDraft | None = None
    ) -> bool:
        """Atomically count one use in each (bucket, window start, limit); False when any bucket is at
        its limit (the caller must then roll back; what was counted goes with it).

        With ``then_audit``: the counting happens once the audit chain's lock is held, and only when
        every bucket counted is ``then_audit`` appended and the transaction COMMITTED (nothing may be
        written in it afterwards); when False, nothing is appended and the caller must roll back."""
        ...

    async def rate_buckets(self, *, limit: int) -> list[RateBucket]:
        """Newest window first, then by bucket name."""
        ...

    async def reset_rate_bucket(self, bucket: str) -> int:
        """Delete every window of ``bucket``; returns how many there were."""
        ...

    # agent tokens
    async def get_agent_token(self, token_id: str) -> AgentToken | None: ...
    async def agent_tokens(self) -> list[AgentToken]:
        """Newest first."""
        ...

    async def save_agent_token(self, token: AgentToken) -> None:
        """Insert a new token, or record the revocation of a stored one."""
        ...

    # audit, in this same transaction
    async def audit(self, draft: AuditDraft, *, commit: bool = False) -> None:
        """Append ``draft`` in this transaction (it is sealed into the tenant's chain when the
        transaction commits, or refused — rolling everything back — when malformed). ``commit``: it is
        the transaction's last write — commit with it (nothing may be written afterwards)."""
        ...


class GatewayStore(Protocol):
    def transaction(self, tenant_id: str) -> AbstractAsyncContextManager[GatewayTransaction]:
        """A transaction scoped to ``tenant_id`` (row-level security applies to it)."""
        ...

    async def overview_mark(self, tenant_id: str, where: ProposalFilter) -> object:
        """The mark :meth:`GatewayTransaction.overview` would return now, in one cheap read (no record is
        decoded or checked): equal to a stored overview's mark only while its content is unchanged."""
        ...

    async def proposal_tenant(self, proposal_id: str) -> str | None:
        """Which tenant owns ``proposal_id`` (None: no such proposal) — only to detect cross-tenant
        attempts, which must be refused as TENANT_MISMATCH and audited rather than look like 404s."""
        ...


class ConnectorDirectory(Protocol):
    def connector_for(self, tenant_id: str, target: str) -> Connector | None:
        """The connector serving ``target`` for the tenant, or None when no adapter exists."""
        ...
