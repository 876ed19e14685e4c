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
from studio_brain.web.auth import require_principal, require_staff
from studio_brain.web.middleware import new_request_id

# Dependencies are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in a worker thread,
# a thread hop per request that shows up in the tail latency under load (bench/api_load.py).


async def get_brain(request: Request) -> Brain:
    brain: Brain = request.app.state.brain
    return brain


BrainDep = Annotated[Brain, Depends(get_brain)]


async def get_gateway(brain: BrainDep) -> GatewayService:
    return brain.gateway


async def get_events(brain: BrainDep) -> EventStore:
    return brain.events


async def get_audit(brain: BrainDep) -> AuditService:
    return brain.audit


async def get_state(brain: BrainDep) -> StateService:
    return brain.state


async def get_drafts(brain: BrainDep) -> DraftService:
    return brain.drafts


async def get_connector_health(brain: BrainDep) -> ConnectorHealthService:
    return brain.connector_health


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


async def caller(
    principal: Principal = Depends(require_principal), request_id: str = Depends(current_request_id)
) -> Caller:
    return Caller(principal=principal, request_id=request_id)


async def staff_caller(
    principal: Principal = Depends(require_staff), request_id: str = Depends(current_request_id)
) -> Caller:
    return Caller(principal=principal, request_id=request_id)


CallerDep = Annotated[Caller, Depends(caller)]
StaffCaller = Annotated[Caller, Depends(staff_caller)]
