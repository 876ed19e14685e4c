"""In-memory adapters: stand-ins that pass the same contract suites as the real stores (tests, demos,
``open_brain(settings, adapters="memory")``)."""

from studio_brain.adapters.memory.drafts_store import InMemoryDraftStore
from studio_brain.adapters.memory.event_store import InMemoryCheckpointStore, InMemoryEventStore
from studio_brain.adapters.memory.gateway_store import InMemoryGatewayStore
from studio_brain.adapters.memory.notes import InMemoryNotesConnector, NotesTable
from studio_brain.adapters.memory.state_store import InMemoryStateStore

__all__ = [
    "InMemoryCheckpointStore",
    "InMemoryDraftStore",
    "InMemoryEventStore",
    "InMemoryGatewayStore",
    "InMemoryNotesConnector",
    "InMemoryStateStore",
    "NotesTable",
]
