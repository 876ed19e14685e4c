"""Shared FastAPI dependencies of the API routers: the Brain, each service it wires, the request id and
the caller's context — typed, so ``mypy --strict`` sees every call from a handler into a service.

Handlers take them as annotated parameters: ``async def h(gateway: Gateway, who: CallerDep) -> …``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from studio_brain.bootstrap import Brain
from studio_brain.domain.identity import Principal
from studio_brain.domain.times import iso as iso  # re-exported: the Portal's timestamp shape
from studio_brain.ports import EventStore
from studio_brain.services.audit import AuditService
from studio_brain.services.connectors import ConnectorHealthService
from studio_brain.services.gateway import GatewayService
from studio_brain.services.state import StateService
from studio_brain.services.swarms.drafts import DraftService
from studio_brain.web.auth import authenticating, require_principal, require_staff
from studio_brain.web.middleware import new_request_id

# Dependencies are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in a worker thread,
# a thread hop per request that shows up in the tail latency under load (bench/api_load.py). Each takes
# the request itself, not another dependency: FastAPI solves every level of a dependency chain on every
# request (issue 18), and a service is one attribute of the Brain away.


def brain_of(request: Request) -> Brain:
    """The Brain the app serves (for dependencies that take the request, not another dependency)."""
    brain: Brain = request.app.state.brain
    return brain


async def get_brain(request: Request) -> Brain:
    return brain_of(request)


BrainDep = Annotated[Brain, Depends(get_brain)]


async def get_gateway(request: Request) -> GatewayService:
    return brain_of(request).gateway


async def get_events(request: Request) -> EventStore:
    return brain_of(request).events


async def get_audit(request: Request) -> AuditService:
    return brain_of(request).audit


async def get_state(request: Request) -> StateService:
    return brain_of(request).state


async def get_drafts(request: Request) -> DraftService:
    return brain_of(request).drafts


async def get_connector_health(request: Request) -> ConnectorHealthService:
    return brain_of(request).connector_health


#: the capability gateway (proposals, execution, policy, agent tokens)
Gateway = Annotated[GatewayService, Depends(get_gateway)]
#: the audit log (EventStore port) and the audit service (verify, checkpoints, exports)
Events = Annotated[EventStore, Depends(get_events)]
Audit = Annotated[AuditService, Depends(get_audit)]
#: StudioState: snapshots, diffs, history
StudioState = Annotated[StateService, Depends(get_state)]
#: the swarms' drafts and their review
Drafts = Annotated[DraftService, Depends(get_drafts)]
#: connector health and device readings
ConnectorHealth = Annotated[ConnectorHealthService, Depends(get_connector_health)]


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


@authenticating
async def caller(request: Request) -> Caller:
    principal = await require_principal(request)
    # read after authenticating: a caller's own x-request-id is scoped to the verified caller (web/auth.py)
    return Caller(principal=principal, request_id=get_request_id(request))


@authenticating
async def staff_caller(request: Request) -> Caller:
    principal = await require_staff(request)
    return Caller(principal=principal, request_id=get_request_id(request))


CallerDep = Annotated[Caller, Depends(caller)]
StaffCaller = Annotated[Caller, Depends(staff_caller)]
