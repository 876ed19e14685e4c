"""The audit event: what a caller drafts (:class:`AuditDraft`) and what the chain stores (:class:`AuditEvent`).

An event is drafted by a caller, then sealed by the EventStore inside the append transaction, which
assigns ``id``, ``seq`` (per tenant, gap-free), ``at`` (database clock), ``prev_hash`` (the previous
event's ``hash``, or :data:`GENESIS_HASH`) and ``hash`` (:mod:`studio_brain.domain.audit.chain`).

Hashed formats (``format_version``; docs/audit.md "Formats"): **1** — unkeyed, the 17 seed fields
(events written before the keyed-chain upgrade); **2** — keyed: the hash also covers ``hashFormat`` and
``keyId``, and ``mac`` is an HMAC-SHA256 over the hash with a key kept outside the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar, cast

#: prev_hash of the first event of every tenant's chain
GENESIS_HASH = "0" * 64

#: the hashed formats an event may have; new events are written in the newest
FORMAT_UNKEYED = 1
FORMAT_KEYED = 2
FORMATS = (FORMAT_UNKEYED, FORMAT_KEYED)


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
    #: the hashed format (1 unkeyed, 2 keyed); a later format can coexist with the old ones
    format_version: int = FORMAT_UNKEYED
    #: format 2: the id of the MAC key (kept outside the database) and the MAC over ``hash``
    key_id: str | None = None
    mac: str | None = None


E = TypeVar("E", bound=StrEnum)


def lenient_enum(kind: type[E], value: str) -> E:
    """``kind(value)``, or the raw string when a stored row holds a value outside the enum.

    Reading must never fail on a tampered row: the verifier reports it (its hash will not match).
    """
    try:
        return kind(value)
    except ValueError:
        return cast(E, value)
