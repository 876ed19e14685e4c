"""In-memory adapters: stand-ins that pass the same contract suites as the real stores (tests, demos)."""

from studio_brain.adapters.memory.event_store import InMemoryCheckpointStore, InMemoryEventStore

__all__ = ["InMemoryCheckpointStore", "InMemoryEventStore"]
