"""Use cases: what Studio Brain does, written against ports only."""
