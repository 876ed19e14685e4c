"""Ports of the capability gateway: the transactional GatewayStore (a unit of work) and the connector
directory the execution runner looks connectors up in."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from studio_brain.domain.audit import AuditDraft, AuditEvent
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


class GatewayTransaction(Protocol):
    """Everything the gateway reads and writes, inside ONE database transaction scoped to one tenant.

    A state change and its audit event are written through the same transaction, so one can never exist
    without the other. Leaving the ``async with`` block by an exception rolls everything back."""

    # proposals
    async def get_proposal(self, proposal_id: str, *, lock: bool = False) -> Proposal | None: ...
    async def proposal_by_idempotency_key(self, key: str) -> Proposal | None: ...
    async def proposal_by_execution_key(self, key: str) -> Proposal | None: ...
    async def insert_proposal(self, proposal: Proposal) -> None:
        """Raises Conflict when the id or the idempotency key exists (the transaction is then unusable:
        leave it)."""
        ...

    async def update_proposal(self, proposal: Proposal) -> None:
        """Store a new version; raises Conflict unless the stored version is ``proposal.version - 1``, or
        when the execution key is taken (the transaction is then unusable: leave it)."""
        ...

    async def list_proposals(self, where: ProposalFilter) -> list[Proposal]: ...
    async def delete_all_proposals(self) -> int: ...
    async def upsert_proposal(self, proposal: Proposal) -> None:
        """Write a proposal as-is (used by rebuild from the audit log)."""
        ...

    # kill switch
    async def kill_switch_entries(self) -> list[KillSwitchEntry]: ...
    async def set_kill_switch(self, entry: KillSwitchEntry) -> None: ...

    # exemptions
    async def exemptions(self, *, capability_id: str | None = None) -> list[Exemption]: ...
    async def get_exemption(self, exemption_id: str, *, lock: bool = False) -> Exemption | None: ...
    async def insert_exemption(self, exemption: Exemption) -> None: ...
    async def update_exemption(self, exemption: Exemption) -> None: ...

    # execution throttles (call lock_target first when the capability is exclusive)
    async def lock_target(self, target: str) -> None:
        """Serialise execution checks on ``target`` until the transaction ends."""
        ...

    async def take_rate_tokens(
        self, takes: Sequence[tuple[str, datetime, int]], *, then_audit: AuditDraft | None = None
    ) -> bool:
        """Atomically count one use in each (bucket, window start, limit); False (and nothing counted
        for the bucket that was full) when any bucket is at its limit.

        With ``then_audit``: the counting happens once the audit chain's lock is held, and only when
        every bucket counted is ``then_audit`` appended and the transaction COMMITTED (nothing may be
        written in it afterwards); when False, nothing is appended and the caller must roll back."""
        ...

    async def rate_buckets(self, *, limit: int) -> list[RateBucket]: ...
    async def reset_rate_bucket(self, bucket: str) -> int: ...
    async def target_last_started(self, target: str) -> datetime | None: ...
    async def mark_target_started(self, target: str, at: datetime) -> None: ...
    async def in_flight(self, target: str, *, started_after: datetime) -> int:
        """Executions on ``target`` still ``executing`` that started after ``started_after`` (older ones
        are stale: their process died; see ``GatewayService.recover_stale_executions``)."""
        ...

    # agent tokens
    async def insert_agent_token(self, token: AgentToken) -> None: ...
    async def get_agent_token(self, token_id: str) -> AgentToken | None: ...
    async def agent_tokens(self) -> list[AgentToken]: ...
    async def update_agent_token(self, token: AgentToken) -> None: ...

    # audit, in this same transaction
    async def audit(self, draft: AuditDraft, *, commit: bool = False) -> AuditEvent:
        """Append ``draft`` in this transaction. ``commit``: it is the transaction's last write — commit
        with it (in one round trip, so the audit chain's lock is held for less time)."""
        ...


class GatewayStore(Protocol):
    def transaction(self, tenant_id: str) -> AbstractAsyncContextManager[GatewayTransaction]:
        """A transaction scoped to ``tenant_id`` (row-level security applies to it)."""
        ...

    async def proposal_tenant(self, proposal_id: str) -> str | None:
        """Which tenant owns ``proposal_id`` (None: no such proposal) — only to detect cross-tenant
        attempts, which must be refused as TENANT_MISMATCH and audited rather than look like 404s."""
        ...


class ConnectorDirectory(Protocol):
    def connector_for(self, tenant_id: str, target: str) -> Connector | None:
        """The connector serving ``target`` for the tenant, or None when no adapter exists."""
        ...
