"""Kept only as the name ``web/app.py`` includes: the Portal paths live in :mod:`studio_brain.web.portal`."""

from studio_brain.web.portal import router

__all__ = ["router"]
