"""Audit events and the hash chain that makes the log tamper-evident (seed §4 "Audit requirements").

An event is drafted by a caller (:class:`AuditDraft`), then sealed by the EventStore inside the append
transaction, which assigns ``id``, ``seq`` (per tenant, gap-free), ``at`` (database clock),
``prev_hash`` (the previous event's ``hash``, or :data:`GENESIS_HASH`) and ``hash``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

#: prev_hash of the first event of every tenant's chain
GENESIS_HASH = "0" * 64


class ActorType(StrEnum):
    HUMAN = "human"
    STAFF = "staff"
    AGENT = "agent"
    SYSTEM = "system"


class ApprovalState(StrEnum):
    REQUIRED = "required"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXEMPT = "exempt"
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditDraft:
    """What a caller says happened. Every ``*_hash`` must be a SHA-256 hex digest."""

    tenant_id: str
    actor_type: ActorType
    actor_id: str
    #: dotted, e.g. ``capability.proposal.approved``
    action: str
    target: str
    rationale: str
    approval_state: ApprovalState
    input_hash: str
    request_id: str
    correlation_id: str
    capability_id: str | None = None
    output_hash: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditEvent:
    """A sealed, stored event: the draft's fields plus its place in the chain."""

    id: str
    seq: int
    tenant_id: str
    at: datetime
    actor_type: ActorType
    actor_id: str
    action: str
    capability_id: str | None
    target: str
    rationale: str
    approval_state: ApprovalState
    input_hash: str
    output_hash: str | None
    request_id: str
    correlation_id: str
    metadata: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditQuery:
    """Filters for reading the log; pages by keyset on (tenant, seq). No hidden caps: ``limit`` is honoured."""

    action_prefix: str | None = None
    actor_id: str | None = None
    capability_id: str | None = None
    approval_state: ApprovalState | None = None
    since: datetime | None = None
    until: datetime | None = None
    correlation_id: str | None = None
    #: return events with seq > after_seq (ascending) ...
    after_seq: int | None = None
    #: ... or, when newest_first, events with seq < before_seq (descending)
    before_seq: int | None = None
    newest_first: bool = False
    limit: int = 100


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditPage:
    events: list[AuditEvent]
    #: pass as after_seq (or before_seq when newest_first) to get the next page; None at the end
    next_cursor: int | None
