"""What a cloud write would do, for dry runs: the documents the Function writes and what the target looks
like now (exists? owner? closed?). Pure: the connector does the reads and passes them in."""

from __future__ import annotations

from typing import Any

from studio_brain.adapters.connectors.functions import contract as fc

Effects = tuple[list[dict[str, Any]], list[str]]


def batch_check(
    batch_id: str, batch: dict[str, Any] | None, problem: str | None, *, owner: str | None
) -> dict[str, Any]:
    """The target batch as read now (``problem``: it could not be read)."""
    if problem is not None:
        return {
            "kind": "check",
            "batchId": batch_id,
            "exists": None,
            "ownerMatches": None,
            "closed": None,
            "state": None,
            "readError": problem,
        }
    return {
        "kind": "check",
        "batchId": batch_id,
        "exists": batch is not None,
        "ownerMatches": None if batch is None or owner is None else batch.get("ownerUid") == owner,
        "closed": None if batch is None else batch.get("isClosed") is True,
        "state": None if batch is None else batch.get("state"),
        "readError": None,
    }


def ops_note_effects(body: dict[str, Any], check: dict[str, Any]) -> Effects:
    """``executeStudioBrainPilotAction``: a note and its action doc, in one transaction."""
    batch_id, owner = body["resourceId"], body["ownerUid"]
    warnings: list[str] = []
    if check["exists"] is False:
        warnings.append(f"batch {batch_id} does not exist: execution will be refused")
    elif check["ownerMatches"] is False:
        warnings.append(f"batch {batch_id} belongs to another member: execution will be refused")
    if check["closed"]:
        warnings.append(f"batch {batch_id} is closed: the note is added to a closed batch")
    effects: list[dict[str, Any]] = [
        {
            "kind": "write",
            "op": "create",
            "collection": fc.NOTES_COLLECTION,
            "docId": "(auto id)",
            "fields": {
                "ownerUid": owner,
                "resourceCollection": fc.BATCHES_COLLECTION,
                "resourceId": batch_id,
                "note": body["note"],
                "proposalId": "(this proposal)",
                "idempotencyKey": "(this proposal's execution key)",
                "createdByUid": "(the brain's Firebase user)",
                "rolledBackAt": None,
                "rollbackReason": None,
            },
        },
        {
            "kind": "write",
            "op": "create",
            "collection": fc.ACTIONS_COLLECTION,
            "docId": "(proposalId)__(key)",
            "fields": {
                "approvedBy": "(approvers and the approval attestation)",
                "ownerUid": owner,
                "resourceCollection": fc.BATCHES_COLLECTION,
                "resourceId": batch_id,
                "noteCollection": fc.NOTES_COLLECTION,
                "rollbackState": "active",
            },
        },
        check,
    ]
    return effects, warnings


def rollback_effects(body: dict[str, Any], actions: list[dict[str, Any]], problem: str | None) -> Effects:
    """``rollbackStudioBrainPilotAction``: the note and the action marked rolled back (never deleted)."""
    target = body["proposalId"]
    warnings: list[str] = []
    if problem is None and not actions:
        warnings.append(f"proposal {target} has no pilot action in the cloud: execution will be refused")
    effects: list[dict[str, Any]] = [
        {
            "kind": "write",
            "op": "update",
            "collection": fc.NOTES_COLLECTION,
            "docId": a.get("noteId"),
            "fields": {"rolledBackAt": "(now)", "rollbackReason": body["reason"]},
        }
        for a in actions
    ] + [
        {
            "kind": "write",
            "op": "update",
            "collection": fc.ACTIONS_COLLECTION,
            "docId": a.get("docId"),
            "fields": {"rollbackState": "rolled_back", "rolledBackAt": "(now)"},
        }
        for a in actions
    ]
    effects.append({"kind": "check", "proposalId": target, "actions": len(actions), "readError": problem})
    return effects, warnings


def close_effects(body: dict[str, Any], check: dict[str, Any]) -> Effects:
    """``pickedUpAndClose``: the batch merged closed, and a timeline event."""
    batch_id = body["batchId"]
    warnings: list[str] = []
    if check["exists"] is False:
        warnings.append(f"batch {batch_id} does not exist: execution will be refused")
    if check["closed"]:
        warnings.append(f"batch {batch_id} is already closed: execution will be refused")
    effects: list[dict[str, Any]] = [
        {
            "kind": "write",
            "op": "merge",
            "collection": fc.BATCHES_COLLECTION,
            "docId": batch_id,
            "fields": {"isClosed": True, "state": fc.CLOSED_STATE, "closedAt": "(now)", "updatedAt": "(now)"},
        },
        {
            "kind": "write",
            "op": "create",
            "collection": f"{fc.BATCHES_COLLECTION}/{batch_id}/{fc.TIMELINE_SUBCOLLECTION}",
            "docId": "(auto id)",
            "fields": {"type": "PICKED_UP_AND_CLOSE", "notes": body["notes"] or fc.DEFAULT_CLOSE_NOTES},
        },
        check,
    ]
    return effects, warnings
