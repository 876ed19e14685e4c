"""The ``studio-brain`` command line: a thin entry point over the services wired by bootstrap."""

from studio_brain.cli.main import app, main

__all__ = ["app", "main"]
