"""Sealing: the one way a draft becomes a chained event, and the hash every event must carry.

``hash`` is SHA-256 over the RFC 8785 canonical JSON (:func:`~studio_brain.domain.hashing.canonical_json`,
the project's one encoder) of the event's seed fields, camelCase, *without* ``hash`` (:func:`hash_payload`).
Format 1 (unkeyed) hashes the 17 seed fields; format 2 (keyed) adds ``hashFormat`` and ``keyId`` to them
and carries ``mac`` (:mod:`.mac`). Sealing with a key writes format 2; without one, format 1.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from studio_brain.domain.audit.event import FORMAT_KEYED, FORMAT_UNKEYED, AuditDraft, AuditEvent
from studio_brain.domain.audit.mac import event_mac
from studio_brain.domain.audit.validation import check_hash, check_text, validate_draft
from studio_brain.domain.errors import InputInvalid
from studio_brain.domain.hashing import MAX_SAFE_INTEGER, CanonicalShape
from studio_brain.domain.records import MacKey


def hash_payload(event: AuditEvent) -> dict[str, Any]:
    """The value whose canonical JSON is hashed: the seed fields (camelCase) of ``event`` without ``hash``.

    Built with its keys already in RFC 8785 order, so the encoder's sort finds one sorted run. A keyed
    (format 2) event's payload also holds ``hashFormat`` and ``keyId``.
    """
    payload: dict[str, Any] = {
        "action": event.action,
        "actorId": event.actor_id,
        "actorType": str(event.actor_type),
        "approvalState": str(event.approval_state),
        "at": event.at,
        "capabilityId": event.capability_id,
        "correlationId": event.correlation_id,
        "id": event.id,
        "inputHash": event.input_hash,
        "metadata": event.metadata,
        "outputHash": event.output_hash,
        "prevHash": event.prev_hash,
        "rationale": event.rationale,
        "requestId": event.request_id,
        "seq": event.seq,
        "target": event.target,
        "tenantId": event.tenant_id,
    }
    if event.format_version != FORMAT_UNKEYED:
        payload["hashFormat"] = event.format_version
        payload["keyId"] = event.key_id
    return payload


#: the keys of :func:`hash_payload`, in its order, and which always hold text
_EVENT_KEYS = (
    "action", "actorId", "actorType", "approvalState", "at", "capabilityId", "correlationId", "id",
    "inputHash", "metadata", "outputHash", "prevHash", "rationale", "requestId", "seq", "target",
    "tenantId",
)  # fmt: skip
_EVENT_TEXT = (
    "action", "actorId", "actorType", "approvalState", "correlationId", "id", "inputHash", "prevHash",
    "rationale", "requestId", "target", "tenantId",
)  # fmt: skip
_EVENT_SHAPE = CanonicalShape(
    _EVENT_KEYS, text=_EVENT_TEXT, optional_text=("capabilityId", "outputHash"), times=("at",)
)
#: format 2 adds two keys
_KEYED_SHAPE = CanonicalShape(
    (*_EVENT_KEYS, "hashFormat", "keyId"),
    text=_EVENT_TEXT,
    optional_text=("capabilityId", "outputHash", "keyId"),
    times=("at",),
)


def canonical_event_bytes(event: AuditEvent) -> bytes:
    """The bytes an event's hash covers: ``canonical_json(hash_payload(event))``, by the encoder's
    fixed-shape path (verify runs at >= 50,000 events/s; a property test proves the two equal).

    Raises InputInvalid for a format this code does not know.
    """
    e = event
    fields = (
        e.action, e.actor_id, str(e.actor_type), str(e.approval_state), e.at, e.capability_id,
        e.correlation_id, e.id, e.input_hash, e.metadata, e.output_hash, e.prev_hash, e.rationale,
        e.request_id, e.seq, e.target, e.tenant_id,
    )  # fmt: skip
    return canonical_fields_bytes(fields, e.format_version, e.key_id)


def canonical_fields_bytes(fields: tuple[Any, ...], version: object, key_id: object) -> bytes:
    """:func:`canonical_event_bytes` from the values of :func:`hash_payload`'s first 17 keys, in its order
    (enums as their text), without an :class:`AuditEvent`: a store can hash a row as read."""
    if version == FORMAT_UNKEYED:
        return _EVENT_SHAPE.encode(fields)
    if version == FORMAT_KEYED and type(version) is int:
        return _KEYED_SHAPE.encode((*fields, version, key_id))
    raise InputInvalid(f"audit event format {version!r} is unknown")


def event_hash(event: AuditEvent) -> str:
    """The hash ``event`` should carry: SHA-256 hex of its canonical JSON without ``hash``."""
    return hashlib.sha256(canonical_event_bytes(event)).hexdigest()


def seal(
    draft: AuditDraft, *, event_id: str, seq: int, at: datetime, prev_hash: str, key: MacKey | None = None
) -> AuditEvent:
    """The stored form of ``draft`` at position ``seq`` after ``prev_hash``; validates the draft first.

    With ``key``: a keyed (format 2) event carrying its MAC. Without: an unkeyed (format 1) event, which
    a keyed brain's verifier accepts only before the chain became keyed (docs/audit.md).
    ``at`` is stored in UTC; PostgreSQL keeps microseconds, as Python does, so the hashed value is the
    stored one.
    """
    return seal_validated(
        validate_draft(draft), event_id=event_id, seq=seq, at=at, prev_hash=prev_hash, key=key
    )


def seal_validated(
    clean: AuditDraft,
    *,
    event_id: str,
    seq: int,
    at: datetime,
    prev_hash: str,
    key: MacKey | None = None,
) -> AuditEvent:
    """:func:`seal` of a draft that :func:`validate_draft` returned (validation is idempotent, so this
    only skips repeating it — e.g. while an audit chain's lock is held)."""
    check_text("id", event_id)
    if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= MAX_SAFE_INTEGER:
        raise InputInvalid(f"audit event seq: {seq!r} must be a positive safe integer")
    check_hash("prev_hash", prev_hash)
    if at.tzinfo is None or at.utcoffset() is None:
        raise InputInvalid(f"audit event at: datetime {at!r} has no timezone")
    unsealed = AuditEvent(
        id=event_id,
        seq=seq,
        tenant_id=clean.tenant_id,
        at=at.astimezone(UTC),
        actor_type=clean.actor_type,
        actor_id=clean.actor_id,
        action=clean.action,
        capability_id=clean.capability_id,
        target=clean.target,
        rationale=clean.rationale,
        approval_state=clean.approval_state,
        input_hash=clean.input_hash,
        output_hash=clean.output_hash,
        request_id=clean.request_id,
        correlation_id=clean.correlation_id,
        metadata=clean.metadata,
        prev_hash=prev_hash,
        hash="",
        format_version=FORMAT_UNKEYED if key is None else FORMAT_KEYED,
        key_id=None if key is None else key.key_id,
    )
    hash_ = event_hash(unsealed)
    return replace(unsealed, hash=hash_, mac=None if key is None else event_mac(key, hash_))
