"""Where the fake Functions server writes: the Firestore emulator (official client, real transactions) or
an in-memory store (the demo's cloud, fast contract tests). Both apply the reference effects exactly:

- ``executeStudioBrainPilotAction``: in ONE transaction, read ``studioBrainPilotActions/{proposalId}__{key}``;
  if it exists return its pointer (``replayed: true``), else create the note and the action doc;
- ``rollbackStudioBrainPilotAction``: in one transaction mark the note and the action rolled back (a
  second call replays; an unknown action is "not found");
- ``pickedUpAndClose``: merge ``isClosed/state/closedAt/updatedAt`` into the batch and add a timeline event.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime
from typing import Any, Protocol

from studio_brain.adapters.connectors.functions import contract as fc
from studio_brain.adapters.connectors.functions.documents import MemoryStore

Pointer = dict[str, Any]


class PilotStore(Protocol):
    def execute(self, body: dict[str, Any], *, now: datetime) -> tuple[bool, Pointer]: ...
    def rollback(self, body: dict[str, Any], *, now: datetime) -> bool | None:
        """True: replayed; False: rolled back now; None: no such action."""
        ...

    def close_batch(self, batch_id: str, notes: str, *, uid: str, now: datetime) -> bool:
        """False when the batch does not exist."""
        ...

    def put(self, path: str, data: dict[str, Any]) -> None:
        """Seed a document (tests, the demo)."""
        ...

    def get(self, path: str) -> dict[str, Any] | None: ...


def _note(body: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "ownerUid": body["ownerUid"],
        "resourceCollection": body["resourceCollection"],
        "resourceId": body["resourceId"],
        "note": body["note"],
        "proposalId": body["proposalId"],
        "idempotencyKey": body["idempotencyKey"],
        "createdAt": now,
        "createdByUid": body["actorUid"],
        "rolledBackAt": None,
        "rollbackReason": None,
    }


def _action(body: dict[str, Any], note_id: str, now: datetime) -> dict[str, Any]:
    return {
        "proposalId": body["proposalId"],
        "idempotencyKey": body["idempotencyKey"],
        "approvedBy": body["approvedBy"],
        "approvedAt": body["approvedAt"],
        "actorUid": body["actorUid"],
        "ownerUid": body["ownerUid"],
        "resourceCollection": body["resourceCollection"],
        "resourceId": body["resourceId"],
        "noteCollection": fc.NOTES_COLLECTION,
        "noteId": note_id,
        "createdAt": now,
        "rollbackState": "active",
        "rollbackReason": None,
        "rolledBackAt": None,
    }


def _timeline(notes: str, uid: str, now: datetime) -> dict[str, Any]:
    return {"type": "PICKED_UP_AND_CLOSE", "notes": notes, "actorUid": uid, "at": now}


class MemoryPilotStore:
    def __init__(self, store: MemoryStore | None = None) -> None:
        self.store = store or MemoryStore()

    def execute(self, body: dict[str, Any], *, now: datetime) -> tuple[bool, Pointer]:
        doc_id = fc.action_doc_id(body["proposalId"], body["idempotencyKey"])
        path = f"{fc.ACTIONS_COLLECTION}/{doc_id}"
        with self.store.transaction() as tx:
            existing = tx.get(path)
            if existing is not None:
                return True, {"collection": fc.NOTES_COLLECTION, "docId": existing["noteId"]}
            note_id = tx.new_id()
            tx.set(f"{fc.NOTES_COLLECTION}/{note_id}", _note(body, now))
            tx.set(path, _action(body, note_id, now))
            return False, {"collection": fc.NOTES_COLLECTION, "docId": note_id}

    def rollback(self, body: dict[str, Any], *, now: datetime) -> bool | None:
        path = f"{fc.ACTIONS_COLLECTION}/{fc.action_doc_id(body['proposalId'], body['idempotencyKey'])}"
        with self.store.transaction() as tx:
            action = tx.get(path)
            if action is None:
                return None
            if action.get("rollbackState") == "rolled_back":
                return True
            marks = {"rolledBackAt": now, "rollbackReason": body["reason"]}
            tx.set(f"{fc.NOTES_COLLECTION}/{action['noteId']}", marks, merge=True)
            tx.set(path, {**marks, "rollbackState": "rolled_back"}, merge=True)
            return False

    def close_batch(self, batch_id: str, notes: str, *, uid: str, now: datetime) -> bool:
        path = f"{fc.BATCHES_COLLECTION}/{batch_id}"
        with self.store.transaction() as tx:
            if tx.get(path) is None:
                return False
            tx.set(
                path,
                {"isClosed": True, "state": fc.CLOSED_STATE, "closedAt": now, "updatedAt": now},
                merge=True,
            )
            tx.set(f"{path}/{fc.TIMELINE_SUBCOLLECTION}/{tx.new_id()}", _timeline(notes, uid, now))
            return True

    def put(self, path: str, data: dict[str, Any]) -> None:
        self.store.set(path, data)

    def get(self, path: str) -> dict[str, Any] | None:
        return self.store.get(path)


class EmulatorPilotStore:
    """The same effects in the Firestore emulator, with the official (sync) client's transactions."""

    def __init__(self, *, project_id: str, emulator_host: str | None = None) -> None:
        if emulator_host:
            os.environ["FIRESTORE_EMULATOR_HOST"] = emulator_host
        if not os.environ.get("FIRESTORE_EMULATOR_HOST"):
            raise RuntimeError("the emulator store needs FIRESTORE_EMULATOR_HOST")
        from google.cloud import firestore

        self._firestore = firestore
        self._client = firestore.Client(project=project_id)
        # The emulator resolves two read-then-write transactions on one document by making each wait for
        # the other's lock until it times out (seconds per conflict; twenty at once exhaust the retries).
        # One server's own threads therefore take turns per document; across servers (processes, Function
        # instances) the transaction below is still what dedupes.
        self._doc_locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def _turn(self, doc_id: str) -> threading.Lock:
        with self._locks_lock:
            return self._doc_locks.setdefault(doc_id, threading.Lock())

    def execute(self, body: dict[str, Any], *, now: datetime) -> tuple[bool, Pointer]:
        firestore, client = self._firestore, self._client
        doc_id = fc.action_doc_id(body["proposalId"], body["idempotencyKey"])
        action_ref = client.collection(fc.ACTIONS_COLLECTION).document(doc_id)

        @firestore.transactional  # type: ignore[untyped-decorator]
        def run(tx: Any) -> tuple[bool, Pointer]:
            snapshot = action_ref.get(transaction=tx)
            if snapshot.exists:
                return True, {"collection": fc.NOTES_COLLECTION, "docId": snapshot.get("noteId")}
            note_ref = client.collection(fc.NOTES_COLLECTION).document()
            tx.set(note_ref, _note(body, now))
            tx.set(action_ref, _action(body, note_ref.id, now))
            return False, {"collection": fc.NOTES_COLLECTION, "docId": note_ref.id}

        with self._turn(doc_id):
            result: tuple[bool, Pointer] = run(client.transaction(max_attempts=50))
        return result

    def rollback(self, body: dict[str, Any], *, now: datetime) -> bool | None:
        firestore, client = self._firestore, self._client
        doc_id = fc.action_doc_id(body["proposalId"], body["idempotencyKey"])
        action_ref = client.collection(fc.ACTIONS_COLLECTION).document(doc_id)

        @firestore.transactional  # type: ignore[untyped-decorator]
        def run(tx: Any) -> bool | None:
            snapshot = action_ref.get(transaction=tx)
            if not snapshot.exists:
                return None
            if snapshot.get("rollbackState") == "rolled_back":
                return True
            marks = {"rolledBackAt": now, "rollbackReason": body["reason"]}
            tx.update(client.collection(fc.NOTES_COLLECTION).document(snapshot.get("noteId")), marks)
            tx.update(action_ref, {**marks, "rollbackState": "rolled_back"})
            return False

        with self._turn(doc_id):
            result: bool | None = run(client.transaction(max_attempts=50))
        return result

    def close_batch(self, batch_id: str, notes: str, *, uid: str, now: datetime) -> bool:
        batch_ref = self._client.collection(fc.BATCHES_COLLECTION).document(batch_id)
        if not batch_ref.get().exists:
            return False
        # like the Function: a merge, then the timeline event (two writes, not one transaction)
        batch_ref.set(
            {"isClosed": True, "state": fc.CLOSED_STATE, "closedAt": now, "updatedAt": now}, merge=True
        )
        batch_ref.collection(fc.TIMELINE_SUBCOLLECTION).document().set(_timeline(notes, uid, now))
        return True

    def put(self, path: str, data: dict[str, Any]) -> None:
        self._client.document(path).set(data)

    def get(self, path: str) -> dict[str, Any] | None:
        snapshot = self._client.document(path).get()
        return snapshot.to_dict() if snapshot.exists else None
