"""The JSON form of an audit event used by exports: written as the hash payload plus ``hash``, read back
exactly as written (the verifier, not the reader, judges the content)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from studio_brain.domain.audit.chain import hash_payload
from studio_brain.domain.audit.event import (
    FORMAT_UNKEYED,
    ActorType,
    ApprovalState,
    AuditEvent,
    lenient_enum,
)
from studio_brain.domain.errors import InputInvalid
from studio_brain.domain.hashing import to_json_value


def event_to_json(event: AuditEvent) -> dict[str, Any]:
    """The export form of ``event``: its hash payload as plain JSON plus ``hash`` (and, keyed, ``mac``).

    A format-1 event is written exactly as before the keyed format existed (no ``hashFormat``).
    """
    payload = cast(dict[str, Any], to_json_value(hash_payload(event)))
    payload["hash"] = event.hash
    if event.format_version != FORMAT_UNKEYED:
        payload["mac"] = event.mac
    return payload


_JSON_FIELDS = (
    ("id", "id"),
    ("seq", "seq"),
    ("tenant_id", "tenantId"),
    ("actor_id", "actorId"),
    ("action", "action"),
    ("target", "target"),
    ("rationale", "rationale"),
    ("input_hash", "inputHash"),
    ("request_id", "requestId"),
    ("correlation_id", "correlationId"),
    ("prev_hash", "prevHash"),
    ("hash", "hash"),
)


def event_from_json(data: object) -> AuditEvent:
    """Read an exported event back exactly as written (no validation of its content: the verifier judges).

    Raises InputInvalid when the shape is wrong (missing field, wrong type).
    """
    if not isinstance(data, dict):
        raise InputInvalid("an exported audit event must be a JSON object")
    try:
        values: dict[str, Any] = {name: data[key] for name, key in _JSON_FIELDS}
        at_text = data["at"]
        actor_type = data["actorType"]
        approval_state = data["approvalState"]
        capability_id = data["capabilityId"]
        output_hash = data["outputHash"]
        metadata = data["metadata"]
    except KeyError as err:
        raise InputInvalid(f"an exported audit event lacks {err.args[0]!r}") from None
    if isinstance(values["seq"], bool) or not isinstance(values["seq"], int):
        raise InputInvalid("an exported audit event has a non-integer seq")
    for name, value in values.items():
        if name != "seq" and not isinstance(value, str):
            raise InputInvalid(f"an exported audit event has a non-string {name}")
    if not isinstance(metadata, dict):
        raise InputInvalid("an exported audit event has non-object metadata")
    for name, value in (("capabilityId", capability_id), ("outputHash", output_hash)):
        if value is not None and not isinstance(value, str):
            raise InputInvalid(f"an exported audit event has a non-string {name}")
    if not isinstance(at_text, str) or not isinstance(actor_type, str) or not isinstance(approval_state, str):
        raise InputInvalid("an exported audit event has a malformed at, actorType or approvalState")
    try:
        at = datetime.fromisoformat(at_text)
    except ValueError:
        raise InputInvalid(f"an exported audit event has an unreadable time {at_text!r}") from None
    if at.tzinfo is None:
        raise InputInvalid(f"an exported audit event has a time without zone {at_text!r}")
    format_version = data.get("hashFormat", FORMAT_UNKEYED)
    key_id, mac = data.get("keyId"), data.get("mac")
    if isinstance(format_version, bool) or not isinstance(format_version, int):
        raise InputInvalid("an exported audit event has a non-integer hashFormat")
    for name, value in (("keyId", key_id), ("mac", mac)):
        if value is not None and not isinstance(value, str):
            raise InputInvalid(f"an exported audit event has a non-string {name}")
    return AuditEvent(
        format_version=format_version,
        key_id=key_id,
        mac=mac,
        at=at,
        actor_type=lenient_enum(ActorType, actor_type),
        approval_state=lenient_enum(ApprovalState, approval_state),
        capability_id=capability_id,
        output_hash=output_hash,
        metadata=metadata,
        **values,
    )
