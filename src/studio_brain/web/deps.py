"""Shared FastAPI dependencies of the API routers: the Brain, the request id, the caller's context."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, Request

from studio_brain.bootstrap import Brain
from studio_brain.domain.errors import ConfigError
from studio_brain.domain.identity import Principal
from studio_brain.ports import EventStore
from studio_brain.web.auth import require_principal, require_staff
from studio_brain.web.middleware import new_request_id

# Dependencies are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in a worker thread,
# a thread hop per request that shows up in the tail latency under load (bench/api_load.py).


async def get_brain(request: Request) -> Brain:
    brain: Brain = request.app.state.brain
    return brain


def get_request_id(request: Request) -> str:
    """The id set by the request middleware (echoed in ``x-request-id``); carried into audit rows."""
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else new_request_id()


async def current_request_id(request: Request) -> str:
    """:func:`get_request_id` as a dependency (see above why it is async)."""
    return get_request_id(request)


@dataclass(frozen=True, kw_only=True, slots=True)
class Caller:
    """Who is asking and under which request id: what every service call needs."""

    principal: Principal
    request_id: str

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant_id


async def caller(
    principal: Principal = Depends(require_principal), request_id: str = Depends(current_request_id)
) -> Caller:
    return Caller(principal=principal, request_id=request_id)


async def staff_caller(
    principal: Principal = Depends(require_staff), request_id: str = Depends(current_request_id)
) -> Caller:
    return Caller(principal=principal, request_id=request_id)


def wired(brain: Brain, name: str, what: str) -> Any:
    """A service another area adds to the Brain (``events``, ``gateway``…); 503 when it is not wired.

    Typed ``Any`` on purpose: areas land in parallel and the routers call them through their Ports.
    """
    service = getattr(brain, name, None)
    if service is None:
        raise ConfigError(f"{what} is not available on this brain")
    return service


def events(brain: Brain) -> EventStore:
    """The audit log (EventStore port)."""
    store: EventStore = wired(brain, "events", "the audit log")
    return store


def iso(value: datetime | None) -> str | None:
    """UTC timestamps as the Portal reads them: ISO 8601 with a Z."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
