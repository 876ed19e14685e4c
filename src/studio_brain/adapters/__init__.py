"""Adapters: the edge where Studio Brain meets PostgreSQL, Firestore, HTTP devices and the OS."""
