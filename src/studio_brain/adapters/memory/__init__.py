"""In-memory adapters: stand-ins that pass the same contract suites as the real stores (tests, demos)."""

from studio_brain.adapters.memory.event_store import InMemoryCheckpointStore, InMemoryEventStore
from studio_brain.adapters.memory.gateway_store import InMemoryGatewayStore

__all__ = ["InMemoryCheckpointStore", "InMemoryEventStore", "InMemoryGatewayStore"]
