"""Audit events and the hash chain that makes the log tamper-evident (seed §4 "Audit requirements").

An event is drafted by a caller (:class:`AuditDraft`), then sealed by the EventStore inside the append
transaction, which assigns ``id``, ``seq`` (per tenant, gap-free), ``at`` (database clock),
``prev_hash`` (the previous event's ``hash``, or :data:`GENESIS_HASH`) and ``hash``.

This module also holds the pure rules every store and the verifier share (ADR 0004):

- :func:`validate_draft` — what a draft must look like (bad input → ``InputInvalid``, nothing stored);
- :func:`seal` — the one way to turn a draft into an event; ``hash`` is SHA-256 over the RFC 8785
  canonical JSON of the event's seed fields (camelCase) *without* ``hash`` (:func:`hash_payload`);
- :class:`ChainVerifier` — recomputes hashes and links of a chain fed in ``seq`` order, in constant
  memory, and names the first break (:class:`BreakKind`) with its ``seq``;
- checkpoints: the exact bytes an Ed25519 checkpoint signature covers (:func:`checkpoint_message`);
- the JSON form of an event used by exports (:func:`event_to_json` / :func:`event_from_json`).
"""

from __future__ import annotations

import hashlib
import json.encoder
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar, cast

from studio_brain.domain.errors import InputInvalid
from studio_brain.domain.hashing import (
    MAX_SAFE_INTEGER,
    JSONValue,
    canonical_json,
    is_sha256_hex,
    to_json_value,
)

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
    """Filters for reading the log; pages by keyset on (tenant, seq). No hidden caps: ``limit`` is honoured.

    ``action_prefix`` matches whole dotted segments: ``capability.proposal`` matches
    ``capability.proposal`` and ``capability.proposal.approved`` but not ``capability.proposals``.
    The time range is half-open: ``since <= at < until``.
    """

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


# --- validation ----------------------------------------------------------------------------------

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


def _check_text(field_name: str, value: object, *, max_length: int = MAX_ID_LENGTH) -> str:
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


def _check_hash(field_name: str, value: object, *, nullable: bool = False) -> None:
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


def normalise_metadata(metadata: object) -> dict[str, JSONValue]:
    """``metadata`` as plain JSON by the hashing rules (datetimes, Decimals, bytes converted), or InputInvalid."""
    if not isinstance(metadata, Mapping):
        raise _refuse("metadata", f"must be a JSON object, got {type(metadata).__name__}")
    converted = to_json_value(metadata, _path="metadata")
    assert isinstance(converted, dict)  # a Mapping converts to a dict
    _check_metadata_values(converted, "metadata")
    # the fast canonicaliser of the event hash (same text as canonical_json, proven by a property test)
    if len(_canonical_metadata(converted).encode("utf-8")) > MAX_METADATA_BYTES:
        raise _refuse("metadata", f"is larger than {MAX_METADATA_BYTES} bytes as canonical JSON")
    return converted


def validate_draft(draft: AuditDraft) -> AuditDraft:
    """The draft with enums coerced, strings NFC-normalised and metadata normalised; or InputInvalid."""
    if not isinstance(draft, AuditDraft):
        raise InputInvalid(f"expected an AuditDraft, got {type(draft).__name__}")
    tenant_id = _check_text("tenant_id", draft.tenant_id)
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
    action = _check_text("action", draft.action, max_length=MAX_ACTION_LENGTH)
    if not ACTION_PATTERN.match(action):
        raise _refuse(
            "action", f"{action!r} must be dotted lowercase segments, e.g. capability.proposal.approved"
        )
    target = _check_text("target", draft.target)
    if not TARGET_PATTERN.match(target):
        raise _refuse("target", f"{target!r} must be a lowercase name such as firestore, hubitat or local")
    actor_id = _check_text("actor_id", draft.actor_id)
    request_id = _check_text("request_id", draft.request_id)
    correlation_id = _check_text("correlation_id", draft.correlation_id)
    rationale = _check_text("rationale", draft.rationale, max_length=MAX_RATIONALE_LENGTH)
    capability_id = draft.capability_id
    if capability_id is not None:
        capability_id = _check_text("capability_id", capability_id)
    _check_hash("input_hash", draft.input_hash)
    _check_hash("output_hash", draft.output_hash, nullable=True)
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


# --- sealing and hashing -------------------------------------------------------------------------


def hash_payload(event: AuditEvent) -> dict[str, Any]:
    """The value whose canonical JSON is hashed: the seed fields (camelCase) of ``event`` without ``hash``."""
    return {
        "id": event.id,
        "seq": event.seq,
        "tenantId": event.tenant_id,
        "at": event.at,
        "actorType": str(event.actor_type),
        "actorId": event.actor_id,
        "action": event.action,
        "capabilityId": event.capability_id,
        "target": event.target,
        "rationale": event.rationale,
        "approvalState": str(event.approval_state),
        "inputHash": event.input_hash,
        "outputHash": event.output_hash,
        "requestId": event.request_id,
        "correlationId": event.correlation_id,
        "metadata": event.metadata,
        "prevHash": event.prev_hash,
    }


_quote = json.encoder.encode_basestring  # the C escaper; same escapes as RFC 8785 for valid Unicode


def _jstr(value: str) -> str:
    return _quote(value if value.isascii() else unicodedata.normalize("NFC", value))


def _jtime(value: datetime) -> str:
    offset = value.utcoffset() if isinstance(value, datetime) else None
    if offset is None:
        raise InputInvalid(f"audit event at: {value!r} is not a timezone-aware datetime")
    # Same text as the hashing rule (UTC, ``%Y-%m-%dT%H:%M:%S.%fZ``), several times faster than strftime.
    if offset:
        return '"' + (value.replace(tzinfo=None) - offset).isoformat(timespec="microseconds") + 'Z"'
    text = value.isoformat()[:-6]  # drop "+00:00"
    return '"' + text + ('.000000Z"' if len(text) == 19 else 'Z"')


class _NotFast(Exception):
    """The value needs the general canonicaliser (floats, non-ASCII keys, other types)."""


def _fast_json(value: object) -> str:
    """RFC 8785 text of plain JSON made of dicts with ASCII keys, lists, str, int, bool and None."""
    kind = type(value)
    if kind is str:
        return _quote(value) if value.isascii() else _jstr(value)  # type: ignore[attr-defined, arg-type]
    if kind is dict:
        items = value.items()  # type: ignore[attr-defined]
        for key, _ in items:
            if type(key) is not str or not key.isascii():
                raise _NotFast  # non-ASCII keys sort by UTF-16 code units and need NFC: general path
        return "{" + ",".join([_quote(k) + ":" + _fast_json(v) for k, v in sorted(items)]) + "}"
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:  # type: ignore[operator]
            return str(value)
        raise _NotFast
    if kind is list:
        return "[" + ",".join([_fast_json(item) for item in value]) + "]"  # type: ignore[attr-defined]
    raise _NotFast  # floats (ES number formatting), subclasses and other types


def _canonical_metadata(metadata: Mapping[str, Any]) -> str:
    if not metadata:
        return "{}"
    try:
        return _fast_json(metadata)
    except _NotFast:
        return canonical_json(metadata).decode("utf-8")


def canonical_event_bytes(event: AuditEvent) -> bytes:
    """``canonical_json(hash_payload(event))``, built directly for speed (verify runs at ≥ 50k events/s).

    Keys are written in RFC 8785 order (sorted by UTF-16 code units; all ASCII here). A property test
    proves this equals the general :func:`~studio_brain.domain.hashing.canonical_json` for every event.
    """
    seq = event.seq
    if isinstance(seq, bool) or not isinstance(seq, int) or not -MAX_SAFE_INTEGER <= seq <= MAX_SAFE_INTEGER:
        raise InputInvalid(f"audit event seq: {seq!r} is not a safe integer")
    meta = _canonical_metadata(event.metadata)
    e = event
    cap, out = e.capability_id, e.output_hash
    # One ASCII check for all the strings (the common case) instead of one NFC decision per field.
    everything = "".join(
        (
            e.action, e.actor_id, e.actor_type, e.approval_state, e.correlation_id, e.id, e.input_hash,
            e.prev_hash, e.rationale, e.request_id, e.target, e.tenant_id, cap or "", out or "",
        )
    )  # fmt: skip
    j = _quote if everything.isascii() else _jstr
    text = (
        f'{{"action":{j(e.action)},"actorId":{j(e.actor_id)},'
        f'"actorType":{j(e.actor_type)},"approvalState":{j(e.approval_state)},'
        f'"at":{_jtime(e.at)},"capabilityId":{"null" if cap is None else j(cap)},'
        f'"correlationId":{j(e.correlation_id)},"id":{j(e.id)},"inputHash":{j(e.input_hash)},'
        f'"metadata":{meta},"outputHash":{"null" if out is None else j(out)},"prevHash":{j(e.prev_hash)},'
        f'"rationale":{j(e.rationale)},"requestId":{j(e.request_id)},"seq":{seq},'
        f'"target":{j(e.target)},"tenantId":{j(e.tenant_id)}}}'
    )
    return text.encode("utf-8")


def event_hash(event: AuditEvent) -> str:
    """The hash ``event`` should carry: SHA-256 hex of its canonical JSON without ``hash``."""
    return hashlib.sha256(canonical_event_bytes(event)).hexdigest()


def seal(draft: AuditDraft, *, event_id: str, seq: int, at: datetime, prev_hash: str) -> AuditEvent:
    """The stored form of ``draft`` at position ``seq`` after ``prev_hash``; validates the draft first.

    ``at`` is stored in UTC; PostgreSQL keeps microseconds, as Python does, so the hashed value is the
    stored one.
    """
    return seal_validated(validate_draft(draft), event_id=event_id, seq=seq, at=at, prev_hash=prev_hash)


def seal_validated(clean: AuditDraft, *, event_id: str, seq: int, at: datetime, prev_hash: str) -> AuditEvent:
    """:func:`seal` of a draft that :func:`validate_draft` returned (validation is idempotent, so this
    only skips repeating it — e.g. while an audit chain's lock is held)."""
    _check_text("id", event_id)
    if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= MAX_SAFE_INTEGER:
        raise InputInvalid(f"audit event seq: {seq!r} must be a positive safe integer")
    _check_hash("prev_hash", prev_hash)
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
    )
    return replace(unsealed, hash=event_hash(unsealed))


def check_query(query: AuditQuery) -> None:
    """Refuse a query no store can answer sensibly (InputInvalid)."""
    if isinstance(query.limit, bool) or not isinstance(query.limit, int) or query.limit < 1:
        raise InputInvalid(f"audit query limit must be a positive integer, got {query.limit!r}")
    for name in ("after_seq", "before_seq"):
        value = getattr(query, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise InputInvalid(f"audit query {name} must be a non-negative integer, got {value!r}")
    if query.after_seq is not None and query.newest_first:
        raise InputInvalid("audit query: after_seq pages oldest-first; use before_seq with newest_first")
    if query.before_seq is not None and not query.newest_first:
        raise InputInvalid("audit query: before_seq pages newest-first; set newest_first")
    for name in ("since", "until"):
        value = getattr(query, name)
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise InputInvalid(f"audit query {name} must be timezone-aware")
    if query.approval_state is not None:
        try:
            ApprovalState(query.approval_state)
        except ValueError:
            raise InputInvalid(f"audit query approval_state {query.approval_state!r} is unknown") from None


def action_matches(action: str, prefix: str) -> bool:
    """Dotted-segment prefix match (see :class:`AuditQuery`); a trailing ``.`` means children only."""
    if prefix.endswith("."):
        return action.startswith(prefix)
    return action == prefix or action.startswith(prefix + ".")


def matches(event: AuditEvent, query: AuditQuery) -> bool:
    """True when ``event`` passes every filter of ``query`` (cursor fields excluded)."""
    return (
        (query.action_prefix is None or action_matches(event.action, query.action_prefix))
        and (query.actor_id is None or event.actor_id == query.actor_id)
        and (query.capability_id is None or event.capability_id == query.capability_id)
        and (query.approval_state is None or event.approval_state == query.approval_state)
        and (query.since is None or event.at >= query.since)
        and (query.until is None or event.at < query.until)
        and (query.correlation_id is None or event.correlation_id == query.correlation_id)
    )


# --- JSON form (exports) -------------------------------------------------------------------------


def event_to_json(event: AuditEvent) -> dict[str, Any]:
    """The export form of ``event``: its hash payload as plain JSON plus ``hash``."""
    payload = cast(dict[str, Any], to_json_value(hash_payload(event)))
    payload["hash"] = event.hash
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
    return AuditEvent(
        at=at,
        actor_type=lenient_enum(ActorType, actor_type),
        approval_state=lenient_enum(ApprovalState, approval_state),
        capability_id=capability_id,
        output_hash=output_hash,
        metadata=metadata,
        **values,
    )


E = TypeVar("E", bound=StrEnum)


def lenient_enum(kind: type[E], value: str) -> E:
    """``kind(value)``, or the raw string when a stored row holds a value outside the enum.

    Reading must never fail on a tampered row: the verifier reports it (its hash will not match).
    """
    try:
        return kind(value)
    except ValueError:
        return cast(E, value)


# --- checkpoints ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditCheckpoint:
    """A signed statement "tenant T's chain had ``hash`` at ``seq``", kept in the DB and in a file."""

    tenant_id: str
    seq: int
    hash: str
    at: datetime
    #: Ed25519 signature (hex) over :func:`checkpoint_message`
    signature: str
    #: the signer's raw Ed25519 public key (hex)
    public_key: str


def checkpoint_message(*, tenant_id: str, seq: int, hash: str, at: datetime) -> bytes:
    """The bytes a checkpoint signature covers: canonical JSON of ``{tenantId, seq, hash, at}``."""
    return canonical_json({"tenantId": tenant_id, "seq": seq, "hash": hash, "at": at})


def checkpoint_to_json(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    return {
        "tenantId": checkpoint.tenant_id,
        "seq": checkpoint.seq,
        "hash": checkpoint.hash,
        "at": to_json_value(checkpoint.at),
        "signature": checkpoint.signature,
        "publicKey": checkpoint.public_key,
    }


def checkpoint_from_json(data: object) -> AuditCheckpoint:
    """A checkpoint read from a file or manifest; InputInvalid when its shape is wrong."""
    if not isinstance(data, dict):
        raise InputInvalid("a checkpoint must be a JSON object")
    try:
        tenant_id, seq, hash_, at_text = data["tenantId"], data["seq"], data["hash"], data["at"]
        signature, public_key = data["signature"], data["publicKey"]
    except KeyError as err:
        raise InputInvalid(f"a checkpoint lacks {err.args[0]!r}") from None
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise InputInvalid("a checkpoint has a non-integer seq")
    if not all(isinstance(v, str) for v in (tenant_id, hash_, at_text, signature, public_key)):
        raise InputInvalid("a checkpoint has a non-string field")
    try:
        at = datetime.fromisoformat(at_text)
    except ValueError:
        raise InputInvalid(f"a checkpoint has an unreadable time {at_text!r}") from None
    if at.tzinfo is None:
        raise InputInvalid(f"a checkpoint has a time without zone {at_text!r}")
    return AuditCheckpoint(
        tenant_id=tenant_id, seq=seq, hash=hash_, at=at, signature=signature, public_key=public_key
    )


# --- verification --------------------------------------------------------------------------------


class BreakKind(StrEnum):
    """How a chain is broken (the first break found is reported with its seq)."""

    #: a row's content no longer matches its hash, or a row was rewritten with a fresh hash
    MODIFIED = "modified"
    #: a seq is absent (a row was deleted)
    MISSING = "missing"
    #: a row that was never sealed into the chain sits in it
    INSERTED = "inserted"
    #: a genuine row sits at the wrong position
    REORDERED = "reordered"
    #: rows covered by a signed checkpoint are gone from the end of the chain
    TRUNCATED_AFTER_CHECKPOINT = "truncated_after_checkpoint"
    #: a checkpoint's signature does not verify with a trusted key
    BAD_SIGNATURE = "bad_signature"


@dataclass(frozen=True, kw_only=True, slots=True)
class ChainBreak:
    tenant_id: str
    seq: int
    kind: BreakKind
    detail: str


def first_break(breaks: Iterable[ChainBreak | None]) -> ChainBreak | None:
    """The break with the lowest seq (ties: the first given)."""
    found = [b for b in breaks if b is not None]
    return min(found, key=lambda b: b.seq) if found else None


#: how far from its position the verifier looks for the seq a displaced row was sealed at
REORDER_WINDOW = 4096


class ChainVerifier:
    """Feed one tenant's events in ``seq`` order; get the first break. Constant memory, pure.

    Keeps the last two accepted hashes and at most one suspicious row, which is judged when the next
    row (or the end) arrives — enough to tell a modified row from an inserted, missing or moved one.
    ``checkpoints`` must already be signature-checked; the chain must match each one it passes and must
    reach the newest.
    """

    def __init__(
        self,
        tenant_id: str,
        *,
        first_seq: int = 1,
        anchor_hash: str = GENESIS_HASH,
        checkpoints: Sequence[AuditCheckpoint] = (),
    ) -> None:
        self.tenant_id = tenant_id
        self._expected = first_seq
        self._first_seq = first_seq
        self._prev_hash = anchor_hash
        self._prevprev_hash: str | None = None
        self._pending: AuditEvent | None = None
        self._broken: ChainBreak | None = None
        self._checkpoints = {c.seq: c for c in checkpoints if c.tenant_id == tenant_id}
        self._newest_checkpoint = max(self._checkpoints, default=0)
        self.checked = 0
        self.last_seq: int | None = None
        self.last_hash: str | None = None

    @property
    def broken(self) -> ChainBreak | None:
        return self._broken

    def _break(self, seq: int, kind: BreakKind, detail: str) -> ChainBreak:
        self._broken = ChainBreak(tenant_id=self.tenant_id, seq=seq, kind=kind, detail=detail)
        return self._broken

    def feed(self, event: AuditEvent) -> ChainBreak | None:
        """Check the next event; returns the break once one is known (and keeps returning it)."""
        if self._broken is not None:
            return self._broken
        self.checked += 1
        if self._pending is not None:
            return self._classify(self._pending, event)
        if (
            event.seq == self._expected
            and event.prev_hash == self._prev_hash
            and _hash_or_none(event) == event.hash
        ):
            return self._accept(event)
        if event.seq > self._expected:
            return self._break(
                self._expected, BreakKind.MISSING, f"seq {self._expected} is absent; next is {event.seq}"
            )
        self._pending = event
        return None

    def finish(self) -> ChainBreak | None:
        """Call after the last event: judges a pending row and checks the newest checkpoint was reached."""
        if self._broken is not None:
            return self._broken
        if self._pending is not None:
            return self._classify(self._pending, None)
        reached = self.last_seq if self.last_seq is not None else self._first_seq - 1
        if self._newest_checkpoint > reached:
            return self._break(
                reached + 1,
                BreakKind.TRUNCATED_AFTER_CHECKPOINT,
                f"the chain ends at seq {reached} but a signed checkpoint covers seq {self._newest_checkpoint}",
            )
        return None

    def _accept(self, event: AuditEvent) -> ChainBreak | None:
        checkpoint = self._checkpoints.get(event.seq)
        if checkpoint is not None and checkpoint.hash != event.hash:
            return self._break(
                event.seq, BreakKind.MODIFIED, "the chain differs from a signed checkpoint at this seq"
            )
        self._prevprev_hash = self._prev_hash
        self._prev_hash = event.hash
        self._expected = event.seq + 1
        self.last_seq = event.seq
        self.last_hash = event.hash
        return None

    def _classify(self, row: AuditEvent, after: AuditEvent | None) -> ChainBreak:
        expected = self._expected
        if row.seq < expected:
            return self._break(row.seq, BreakKind.INSERTED, f"a second row claims seq {row.seq}")
        self_ok = _hash_or_none(row) == row.hash
        link_ok = row.prev_hash == self._prev_hash
        if link_ok:  # content changed under a kept hash
            return self._break(expected, BreakKind.MODIFIED, "the row's content does not match its hash")
        if self_ok:
            # Sealed for this seq, but it does not link to the row before it.
            if self._prevprev_hash is not None and row.prev_hash == self._prevprev_hash:
                return self._break(
                    expected - 1, BreakKind.INSERTED, "the row before does not belong to the chain"
                )
            if after is not None and (
                after.prev_hash == self._prev_hash or _hash_as(after, expected) == after.hash
            ):
                return self._break(expected, BreakKind.INSERTED, "this row does not belong to the chain")
            if expected > self._first_seq:
                return self._break(
                    expected - 1,
                    BreakKind.MODIFIED,
                    "the row was rewritten with a fresh hash; the next row still links to the original",
                )
            return self._break(expected, BreakKind.MODIFIED, "the row does not link to the chain's anchor")
        sealed_at = _sealed_seq(row, expected)
        if sealed_at is None:
            return self._break(expected, BreakKind.MODIFIED, "the row matches neither its hash nor its place")
        if sealed_at == expected - 1 and row.prev_hash == self._prevprev_hash:
            return self._break(
                expected - 1, BreakKind.INSERTED, "a foreign row was inserted and later rows renumbered"
            )
        if sealed_at == expected + 1 and (after is None or after.hash != row.prev_hash):
            return self._break(
                expected,
                BreakKind.MISSING,
                "the row sealed at this seq is gone and later rows were renumbered",
            )
        return self._break(
            expected, BreakKind.REORDERED, f"the row sealed as seq {sealed_at} sits at seq {expected}"
        )


def _hash_or_none(event: AuditEvent) -> str | None:
    try:
        return event_hash(event)
    except (InputInvalid, TypeError, ValueError, AttributeError):
        return None  # a tampered row may hold values that cannot even be hashed


def _hash_as(event: AuditEvent, seq: int) -> str | None:
    if seq < 1:
        return None
    return _hash_or_none(replace(event, seq=seq))


def _sealed_seq(event: AuditEvent, position: int) -> int | None:
    """The seq near ``position`` that ``event`` was sealed with, if any (rows moved by a few places)."""
    for distance in range(1, REORDER_WINDOW + 1):
        for candidate in (position + distance, position - distance):
            if _hash_as(event, candidate) == event.hash:
                return candidate
    return None
