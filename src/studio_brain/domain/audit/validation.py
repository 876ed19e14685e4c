"""What an audit draft must look like before it is sealed: bad input is ``InputInvalid`` naming the field,
and nothing is stored. A validated draft holds exactly what will be hashed (NFC strings, plain-JSON
metadata that survives a JSONB round trip unchanged)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime

from studio_brain.domain.audit.event import ActorType, ApprovalState, AuditDraft
from studio_brain.domain.errors import CanonicalisationError, InputInvalid
from studio_brain.domain.hashing import (
    MAX_SAFE_INTEGER,
    JSONValue,
    canonical_json,
    is_sha256_hex,
    to_json_value,
)

#: dotted lowercase segments, at least two: ``capability.proposal.approved``
ACTION_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
#: a tenant id: letters, digits and ``_ - . :``; starts with a letter or digit
TENANT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
#: a target system: ``firestore``, ``stripe``, ``hubitat``, ``roborock``, ``local``, ...
TARGET_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
MAX_ID_LENGTH = 512
MAX_ACTION_LENGTH = 200
MAX_RATIONALE_LENGTH = 20_000
#: the canonical JSON of ``metadata`` may not exceed this (documented in docs/audit.md)
MAX_METADATA_BYTES = 256 * 1024


def _refuse(field_name: str, problem: str) -> InputInvalid:
    return InputInvalid(f"audit event {field_name}: {problem}")


def check_text(field_name: str, value: object, *, max_length: int = MAX_ID_LENGTH) -> str:
    if not isinstance(value, str):
        raise _refuse(field_name, f"must be a string, got {type(value).__name__}")
    if not value.strip():
        raise _refuse(field_name, "must not be empty")
    if len(value) > max_length:
        raise _refuse(field_name, f"is longer than {max_length} characters")
    _check_storable(field_name, value)
    return value


def _check_storable(field_name: str, value: str) -> None:
    # PostgreSQL text and jsonb refuse NUL, and a lone surrogate cannot be encoded as UTF-8.
    if "\x00" in value:
        raise _refuse(field_name, "contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _refuse(field_name, "is not valid Unicode (lone surrogate)") from None


def check_hash(field_name: str, value: object, *, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    if not is_sha256_hex(value):
        raise _refuse(field_name, "must be a SHA-256 hex digest (64 lowercase hex characters)")


def _check_metadata_values(value: JSONValue, path: str) -> None:
    """Refuse what would not survive a JSONB round trip unchanged (so a read-back re-hashes alike)."""
    if isinstance(value, str):
        _check_storable(path, value)
    elif isinstance(value, float):
        # JSONB prints a large float as an integer literal, which reads back as an unsafe integer.
        if abs(value) > MAX_SAFE_INTEGER:
            raise _refuse(path, f"number {value!r} is outside ±(2^53-1); carry it as a string")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_storable(f"{path} key", key)
            _check_metadata_values(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_metadata_values(item, f"{path}[{index}]")


class _NotPlain(Exception):
    """The value needs the general conversion and checks (or is refused by them, with its path)."""


def _plain_checked(value: object) -> JSONValue:
    """``to_json_value`` and ``_check_metadata_values`` in one walk, for the shapes every audit event
    carries (dicts with ASCII keys, lists, ASCII strings, safe ints, bools, None, aware datetimes), with
    no path strings built (issue 18: these were most of an append's CPU). Anything else — and anything
    either function would refuse — raises ``_NotPlain`` and the whole value takes the general path,
    which converts it or refuses it naming the field."""
    kind = type(value)
    if kind is str:
        if not value.isascii() or "\x00" in value:  # type: ignore[attr-defined, operator]
            raise _NotPlain  # NFC and the storable check (NUL, lone surrogates): the general path
        return value  # type: ignore[return-value]
    if kind is dict:
        out: dict[str, JSONValue] = {}
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str or not key.isascii() or "\x00" in key:
                raise _NotPlain
            out[key] = _plain_checked(item)
        return out
    if value is None or kind is bool:
        return value  # type: ignore[return-value]
    if kind is int:
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:  # type: ignore[operator]
            return value  # type: ignore[return-value]
        raise _NotPlain
    if kind is list or kind is tuple:
        return [_plain_checked(item) for item in value]  # type: ignore[attr-defined]
    if kind is datetime and value.utcoffset() is not None:  # type: ignore[attr-defined]
        return to_json_value(value)
    raise _NotPlain  # floats, Decimals, bytes, UUIDs, subclasses, naive datetimes …


def normalise_metadata(metadata: object) -> dict[str, JSONValue]:
    """``metadata`` as plain JSON by the hashing rules (datetimes, Decimals, bytes converted), or InputInvalid."""
    if not isinstance(metadata, Mapping):
        raise _refuse("metadata", f"must be a JSON object, got {type(metadata).__name__}")
    try:
        converted = _plain_checked(metadata if type(metadata) is dict else dict(metadata))
    except (_NotPlain, CanonicalisationError):  # the general path refuses it again, naming the field
        converted = to_json_value(metadata, _path="metadata")
        _check_metadata_values(converted, "metadata")
    assert isinstance(converted, dict)  # a Mapping converts to a dict
    if len(canonical_json(converted)) > MAX_METADATA_BYTES:
        raise _refuse("metadata", f"is larger than {MAX_METADATA_BYTES} bytes as canonical JSON")
    return converted


def validate_draft(draft: AuditDraft) -> AuditDraft:
    """The draft with enums coerced, strings NFC-normalised and metadata normalised; or InputInvalid."""
    if not isinstance(draft, AuditDraft):
        raise InputInvalid(f"expected an AuditDraft, got {type(draft).__name__}")
    tenant_id = check_text("tenant_id", draft.tenant_id)
    if not TENANT_PATTERN.match(tenant_id):
        raise _refuse("tenant_id", "must be letters, digits and _ - . : (at most 128)")
    try:
        actor_type = ActorType(draft.actor_type)
    except ValueError:
        raise _refuse("actor_type", f"must be one of {', '.join(a.value for a in ActorType)}") from None
    try:
        approval_state = ApprovalState(draft.approval_state)
    except ValueError:
        raise _refuse(
            "approval_state", f"must be one of {', '.join(a.value for a in ApprovalState)}"
        ) from None
    action = check_text("action", draft.action, max_length=MAX_ACTION_LENGTH)
    if not ACTION_PATTERN.match(action):
        raise _refuse(
            "action", f"{action!r} must be dotted lowercase segments, e.g. capability.proposal.approved"
        )
    target = check_text("target", draft.target)
    if not TARGET_PATTERN.match(target):
        raise _refuse("target", f"{target!r} must be a lowercase name such as firestore, hubitat or local")
    actor_id = check_text("actor_id", draft.actor_id)
    request_id = check_text("request_id", draft.request_id)
    correlation_id = check_text("correlation_id", draft.correlation_id)
    rationale = check_text("rationale", draft.rationale, max_length=MAX_RATIONALE_LENGTH)
    capability_id = draft.capability_id
    if capability_id is not None:
        capability_id = check_text("capability_id", capability_id)
    check_hash("input_hash", draft.input_hash)
    check_hash("output_hash", draft.output_hash, nullable=True)
    metadata = normalise_metadata(draft.metadata)
    nfc = _nfc
    return AuditDraft(
        tenant_id=nfc(tenant_id),
        actor_type=actor_type,
        actor_id=nfc(actor_id),
        action=action,
        target=target,
        rationale=nfc(rationale),
        approval_state=approval_state,
        input_hash=draft.input_hash,
        request_id=nfc(request_id),
        correlation_id=nfc(correlation_id),
        capability_id=None if capability_id is None else nfc(capability_id),
        output_hash=draft.output_hash,
        metadata=metadata,
    )


def _nfc(text: str) -> str:
    return text if text.isascii() else unicodedata.normalize("NFC", text)
