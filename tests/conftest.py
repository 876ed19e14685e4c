"""Shared test configuration: real PostgreSQL per test (template clone), and the Firestore emulator."""

pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.firestore", "tests.fixtures.auth"]
