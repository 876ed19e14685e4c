"""The studio's Cloud Functions write contract (docs/cloud-writes.md, reference ``cloud-writes.md`` and
``control-tower.md`` §4), written once and used by both sides: the connector builds bodies that pass it,
the fake Functions server validates with it exactly as the Functions' zod schemas do.

Functions: ``executeStudioBrainPilotAction`` (ops note append), ``rollbackStudioBrainPilotAction``,
``pickedUpAndClose`` (batch close). Document ids: ``studioBrainPilotActions/{proposalId}__{key}`` where key
is the idempotency key with every character outside ``[A-Za-z0-9_-]`` removed, cut to 80.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

EXECUTE_FUNCTION = "executeStudioBrainPilotAction"
ROLLBACK_FUNCTION = "rollbackStudioBrainPilotAction"
CLOSE_FUNCTION = "pickedUpAndClose"
FUNCTIONS = (EXECUTE_FUNCTION, ROLLBACK_FUNCTION, CLOSE_FUNCTION)

ACTIONS_COLLECTION = "studioBrainPilotActions"
NOTES_COLLECTION = "studioBrainPilotOpsNotes"
BATCHES_COLLECTION = "batches"
#: where ``pickedUpAndClose`` adds its timeline event (a subcollection of the batch)
TIMELINE_SUBCOLLECTION = "timeline"
CLOSED_STATE = "CLOSED_PICKED_UP"
DEFAULT_CLOSE_NOTES = "Picked up; batch closed"
#: the Function's own rate limit on batch closes (429 with Retry-After past it)
CLOSE_RATE_LIMIT = (10, 60)

_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True, kw_only=True, slots=True)
class ConnectorAction:
    """A write action of the connector: which Function it calls and its allowlist pair."""

    action: str
    function: str
    #: the second half of the allowlist pair ``function:command``
    command: str


WRITE_ACTIONS: dict[str, ConnectorAction] = {
    "ops_note.append": ConnectorAction(
        action="ops_note.append", function=EXECUTE_FUNCTION, command="ops_note_append"
    ),
    "ops_note.rollback": ConnectorAction(
        action="ops_note.rollback", function=ROLLBACK_FUNCTION, command="rollback"
    ),
    "batch.close": ConnectorAction(action="batch.close", function=CLOSE_FUNCTION, command="close"),
}


def function_key(key: str) -> str:
    """The ``idempotencyKey`` sent for the brain's execution key: the key itself when the Function keeps
    it whole (8-80 characters of ``[A-Za-z0-9_-]``, like the gateway's ``prop-<hex>``), else a digest of it
    — the Function strips other characters and cuts at 80, which could make two keys one."""
    if 8 <= len(key) <= 80 and not _KEY_UNSAFE.search(key):
        return key
    return "k-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]


def action_doc_id(proposal_id: str, idempotency_key: str) -> str:
    """``{proposalId}__{key}`` with the key sanitised as the Function does."""
    return f"{proposal_id}__{_KEY_UNSAFE.sub('', idempotency_key)[:80]}"


# --- zod-equivalent validation -----------------------------------------------------------------------


class BodyInvalid(ValueError):
    """What the Function answers ``400 {ok: false, message}`` with."""


def _string(body: dict[str, Any], name: str, *, min_len: int = 0, max_len: int | None = None) -> str:
    value = body.get(name)
    if value is None:
        raise BodyInvalid(f"{name}: Required")
    if not isinstance(value, str):
        raise BodyInvalid(f"{name}: Expected string, received {_type(value)}")
    if len(value) < min_len:
        raise BodyInvalid(f"{name}: String must contain at least {min_len} character(s)")
    if max_len is not None and len(value) > max_len:
        raise BodyInvalid(f"{name}: String must contain at most {max_len} character(s)")
    return value


def _optional_string(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BodyInvalid(f"{name}: Expected string, received {_type(value)}")
    return value


def _literal(body: dict[str, Any], name: str, literal: str) -> str:
    if body.get(name) != literal:
        raise BodyInvalid(f'{name}: Invalid literal value, expected "{literal}"')
    return literal


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BodyInvalid(f"Expected object, received {_type(body)}")
    return body


def parse_execute(body: Any) -> dict[str, Any]:
    """``executeStudioBrainPilotAction``'s schema. Unknown keys are stripped (zod's default)."""
    b = _object(body)
    return {
        "proposalId": _string(b, "proposalId", min_len=8),
        "approvedBy": _optional_string(b, "approvedBy"),
        "approvedAt": _optional_string(b, "approvedAt"),
        "idempotencyKey": _string(b, "idempotencyKey", min_len=8, max_len=120),
        "actorUid": _string(b, "actorUid", min_len=1),
        "actionType": _literal(b, "actionType", "ops_note_append"),
        "ownerUid": _string(b, "ownerUid", min_len=1),
        "resourceCollection": _literal(b, "resourceCollection", "batches"),
        "resourceId": _string(b, "resourceId", min_len=1),
        "note": _string(b, "note", min_len=5, max_len=500),
    }


def parse_rollback(body: Any) -> dict[str, Any]:
    b = _object(body)
    return {
        "proposalId": _string(b, "proposalId", min_len=8),
        "idempotencyKey": _string(b, "idempotencyKey", min_len=8, max_len=120),
        "actorUid": _string(b, "actorUid", min_len=1),
        "reason": _string(b, "reason", min_len=10, max_len=500),
    }


def parse_close(body: Any) -> dict[str, Any]:
    b = _object(body)
    return {"batchId": _string(b, "batchId", min_len=1), "notes": _optional_string(b, "notes")}


def is_staff(claims: dict[str, Any]) -> bool:
    """The Functions' ``requireAdmin``: claim ``staff == true`` or ``roles`` containing ``staff``."""
    roles = claims.get("roles")
    return claims.get("staff") is True or (isinstance(roles, list) and "staff" in roles)
