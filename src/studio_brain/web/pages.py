"""The cockpit: server-rendered pages (Jinja2 + htmx, vendored) — issue 7. No pages yet."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
