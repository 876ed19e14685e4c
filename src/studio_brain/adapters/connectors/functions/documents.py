"""Reading the cloud documents a cloud write touches: the target batch (dry runs and pre-send checks) and
the pilot action docs (reconciliation, rollback). Reads only — the brain never writes Firestore itself.

Two readers with one shape (:class:`CloudDocuments`): :class:`FirestoreDocuments` with the official async
client (the emulator when ``FIRESTORE_EMULATOR_HOST`` is set, like the StudioState reader), and
:class:`MemoryDocuments` over a :class:`MemoryStore` (the demo's cloud, and the fake's store in fast tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Protocol

from studio_brain.adapters.connectors.functions.contract import ACTIONS_COLLECTION
from studio_brain.adapters.firestore import EMULATOR_ENV
from studio_brain.domain.errors import CloudReadError
from studio_brain.logging import get_logger

log = get_logger(__name__)


class CloudDocuments(Protocol):
    async def get(self, path: str) -> dict[str, Any] | None:
        """The document at ``collection/id`` (or a deeper path), or None when it does not exist."""
        ...

    async def actions_for(self, proposal_id: str) -> list[tuple[str, dict[str, Any]]]:
        """Every pilot action doc of ``proposal_id`` as (doc id, data)."""
        ...


def json_ready(value: Any) -> Any:
    """Firestore values as JSON: timestamps as ISO strings, nested maps and lists walked."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value


class MemoryStore:
    """A thread-safe in-memory document store: ``{path: data}``; ``transaction()`` holds its lock."""

    def __init__(self) -> None:
        self._docs: dict[str, dict[str, Any]] = {}
        self._lock = threading.RLock()
        self._counter = 0

    @contextmanager
    def transaction(self) -> Iterator[MemoryStore]:
        with self._lock:
            yield self

    def get(self, path: str) -> dict[str, Any] | None:
        with self._lock:
            doc = self._docs.get(path)
            return copy.deepcopy(doc) if doc is not None else None

    def set(self, path: str, data: dict[str, Any], *, merge: bool = False) -> None:
        with self._lock:
            if merge and path in self._docs:
                self._docs[path] = {**self._docs[path], **copy.deepcopy(data)}
            else:
                self._docs[path] = copy.deepcopy(data)

    def new_id(self) -> str:
        with self._lock:
            self._counter += 1
            return f"mem{self._counter:017d}"

    def collection(self, name: str) -> list[tuple[str, dict[str, Any]]]:
        """Documents directly in collection ``name`` (a path without further segments)."""
        prefix = name + "/"
        with self._lock:
            return [
                (path[len(prefix) :], copy.deepcopy(doc))
                for path, doc in sorted(self._docs.items())
                if path.startswith(prefix) and "/" not in path[len(prefix) :]
            ]


class MemoryDocuments:
    """CloudDocuments over a :class:`MemoryStore` (the demo's cloud; fast tests)."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def __repr__(self) -> str:
        return "MemoryDocuments()"

    async def get(self, path: str) -> dict[str, Any] | None:
        doc = self._store.get(path)
        return json_ready(doc) if doc is not None else None

    async def actions_for(self, proposal_id: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (doc_id, json_ready(doc))
            for doc_id, doc in self._store.collection(ACTIONS_COLLECTION)
            if doc.get("proposalId") == proposal_id
        ]


class FirestoreDocuments:
    """CloudDocuments with the official async client; each call has a deadline and translates errors."""

    def __init__(
        self,
        *,
        project_id: str,
        deadline_seconds: float = 10.0,
        client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self._project = project_id
        self._deadline = deadline_seconds
        self._factory = client_factory

    def __repr__(self) -> str:
        return f"FirestoreDocuments(project={self._project!r})"

    def _client(self) -> Any:
        if self._factory is not None:
            return self._factory()
        if os.environ.get(EMULATOR_ENV) == "":
            raise CloudReadError(f"{EMULATOR_ENV} is set but empty: unset it, or set it to host:port")
        import google.auth.exceptions
        from google.cloud import firestore  # heavy: imported on first use

        try:
            return firestore.AsyncClient(project=self._project)
        except google.auth.exceptions.GoogleAuthError as err:
            raise CloudReadError(
                f"no Google credentials to read Firestore project {self._project!r} (see docs/cloud-writes.md)"
            ) from err

    async def get(self, path: str) -> dict[str, Any] | None:
        client = self._client()
        try:
            snapshot = await asyncio.wait_for(client.document(path).get(), timeout=self._deadline)
        except TimeoutError as err:
            raise CloudReadError(f"reading {path.split('/')[0]} timed out after {self._deadline}s") from err
        except Exception as err:  # google.api_core errors, transport errors: one translation point
            raise CloudReadError(f"reading {path.split('/')[0]} failed ({type(err).__name__})") from err
        finally:
            await _close(client)
        if not snapshot.exists:
            return None
        data: dict[str, Any] = json_ready(snapshot.to_dict() or {})
        return data

    async def actions_for(self, proposal_id: str) -> list[tuple[str, dict[str, Any]]]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        client = self._client()
        try:
            query = client.collection(ACTIONS_COLLECTION).where(
                filter=FieldFilter("proposalId", "==", proposal_id)
            )
            snapshots = await asyncio.wait_for(query.get(), timeout=self._deadline)
        except TimeoutError as err:
            raise CloudReadError(f"reading {ACTIONS_COLLECTION} timed out after {self._deadline}s") from err
        except Exception as err:
            raise CloudReadError(f"reading {ACTIONS_COLLECTION} failed ({type(err).__name__})") from err
        finally:
            await _close(client)
        return [(s.id, json_ready(s.to_dict() or {})) for s in snapshots]


async def _close(client: Any) -> None:
    # AsyncClient has no public close(); its gRPC channel must be closed on the loop that opened it
    transport = getattr(client, "_transport", None)
    if transport is not None:
        # closing must not mask the read's own outcome
        with contextlib.suppress(Exception):
            await transport.close()
