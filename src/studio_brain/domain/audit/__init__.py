"""The audit log's pure rules (seed §4, ADR 0004), one concept per module:

- :mod:`.event` — :class:`AuditDraft` (what a caller says happened) and :class:`AuditEvent` (stored);
- :mod:`.validation` — :func:`validate_draft`: bad input is ``InputInvalid`` naming the field;
- :mod:`.chain` — :func:`seal`, the one way to turn a draft into a chained event, and its hash;
- :mod:`.mac` — the MAC a keyed (format 2) event carries, with a key kept outside the database;
- :mod:`.verify` — :class:`ChainVerifier`, constant memory, names the first break (:class:`BreakKind`);
- :mod:`.checkpoint` — the bytes an Ed25519 checkpoint signature covers, and the checkpoint's JSON form;
- :mod:`.codec` — the JSON form of an event used by exports;
- :mod:`.query` — filters and paging for reading the log.

Every name callers import is re-exported here: ``from studio_brain.domain.audit import …``.
"""

from studio_brain.domain.audit.chain import (
    canonical_event_bytes,
    event_hash,
    hash_payload,
    seal,
    seal_validated,
)
from studio_brain.domain.audit.checkpoint import (
    AuditCheckpoint,
    checkpoint_from_json,
    checkpoint_message,
    checkpoint_to_json,
)
from studio_brain.domain.audit.codec import event_from_json, event_to_json
from studio_brain.domain.audit.event import (
    FORMAT_KEYED,
    FORMAT_UNKEYED,
    FORMATS,
    GENESIS_HASH,
    ActorType,
    ApprovalState,
    AuditDraft,
    AuditEvent,
    lenient_enum,
)
from studio_brain.domain.audit.mac import event_mac, mac_ok
from studio_brain.domain.audit.query import (
    AuditPage,
    AuditQuery,
    ChainHead,
    action_matches,
    check_query,
    matches,
)
from studio_brain.domain.audit.validation import (
    ACTION_PATTERN,
    MAX_ACTION_LENGTH,
    MAX_ID_LENGTH,
    MAX_METADATA_BYTES,
    MAX_RATIONALE_LENGTH,
    TARGET_PATTERN,
    TENANT_PATTERN,
    normalise_metadata,
    validate_draft,
)
from studio_brain.domain.audit.verify import (
    REORDER_WINDOW,
    BreakKind,
    ChainBreak,
    ChainVerifier,
    first_break,
)

__all__ = [
    "ACTION_PATTERN",
    "FORMATS",
    "FORMAT_KEYED",
    "FORMAT_UNKEYED",
    "GENESIS_HASH",
    "MAX_ACTION_LENGTH",
    "MAX_ID_LENGTH",
    "MAX_METADATA_BYTES",
    "MAX_RATIONALE_LENGTH",
    "REORDER_WINDOW",
    "TARGET_PATTERN",
    "TENANT_PATTERN",
    "ActorType",
    "ApprovalState",
    "AuditCheckpoint",
    "AuditDraft",
    "AuditEvent",
    "AuditPage",
    "AuditQuery",
    "BreakKind",
    "ChainBreak",
    "ChainHead",
    "ChainVerifier",
    "action_matches",
    "canonical_event_bytes",
    "check_query",
    "checkpoint_from_json",
    "checkpoint_message",
    "checkpoint_to_json",
    "event_from_json",
    "event_hash",
    "event_mac",
    "event_to_json",
    "first_break",
    "hash_payload",
    "lenient_enum",
    "mac_ok",
    "matches",
    "normalise_metadata",
    "seal",
    "seal_validated",
    "validate_draft",
]
