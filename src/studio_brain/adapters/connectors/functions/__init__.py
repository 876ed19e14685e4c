"""The Functions write connector (target ``firestore``): the studio's Cloud Functions write path, its
reference contract, the documents it reads, and the fake Functions server (docs/cloud-writes.md)."""

from studio_brain.adapters.connectors.functions.client import FunctionsConnector
from studio_brain.adapters.connectors.functions.documents import (
    CloudDocuments,
    FirestoreDocuments,
    MemoryDocuments,
    MemoryStore,
)

__all__ = ["CloudDocuments", "FirestoreDocuments", "FunctionsConnector", "MemoryDocuments", "MemoryStore"]
