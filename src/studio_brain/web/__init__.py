"""HTTP surfaces: the JSON API, the Portal-compatible paths and the cockpit, in one FastAPI app."""
