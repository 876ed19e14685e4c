"""Proof that a cloud write took effect, read from the cloud itself (never by sending anything): the
action doc of an append, the rolled-back state of a rollback, the closed state of a batch. Used by the
connector's ``reconcile`` (which may then send again with the same key) and its read-only
``verify_outcome`` for the execution-recovery job."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from studio_brain.adapters.connectors.functions import contract as fc
from studio_brain.domain.attestation import ApprovalClaims
from studio_brain.domain.errors import InputInvalid

ReadDocument = Callable[[str], Awaitable[dict[str, Any] | None]]
ReadActions = Callable[[str], Awaitable[list[dict[str, Any]]]]


async def proof_of(
    action: fc.ConnectorAction,
    *,
    approval: ApprovalClaims,
    key: str,
    args: dict[str, Any],
    document: ReadDocument,
    actions: ReadActions,
) -> dict[str, Any] | None:
    """The result the write had, as the cloud shows it now, or None when nothing proves it yet."""
    if action.action == "ops_note.append":
        doc_id = fc.action_doc_id(approval.proposal_id, fc.function_key(key))
        found = await document(f"{fc.ACTIONS_COLLECTION}/{doc_id}")
        if found is None:
            return None
        return {
            "ok": True,
            "replayed": True,
            "reconciledBy": "action doc",
            "resourcePointer": {"collection": fc.NOTES_COLLECTION, "docId": found.get("noteId")},
            "actionDoc": f"{fc.ACTIONS_COLLECTION}/{doc_id}",
        }
    if action.action == "ops_note.rollback":
        target = _text(args, "proposalId")
        if any(a.get("rollbackState") == "rolled_back" for a in await actions(target)):
            return {"ok": True, "replayed": True, "reconciledBy": "action doc", "proposalId": target}
        return None
    batch_id = _text(args, "batchId")
    batch = await document(f"{fc.BATCHES_COLLECTION}/{batch_id}")
    if batch is not None and batch.get("isClosed") is True and batch.get("state") == fc.CLOSED_STATE:
        return {
            "ok": True,
            "replayed": True,
            "reconciledBy": "batch doc",
            "resourcePointer": {"collection": fc.BATCHES_COLLECTION, "docId": batch_id},
        }
    return None


def _text(args: dict[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InputInvalid(f"{name}: a non-empty string is required")
    return value
