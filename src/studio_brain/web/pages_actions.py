"""Physical actions a person understands (issue 14): devices by name and room, effects in words, Execute
offered only where it can run, results readable.

- ``GET /proposals/new?capability=…`` proposes a device capability with a device picker built from the
  connectors' own device lists (name, room, current state), never a raw id to type.
- For the proposal page: the input with device ids named, the predicted effect with the device's current
  state ("Kiln Room Outlet: on → off, drawing 1,520 W"), why Execute is not offered on a read-only or
  missing connector, and the execution result in words (the note's text, the device's answer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from studio_brain.bootstrap import Brain
from studio_brain.domain.capabilities import Capability
from studio_brain.domain.connectors import ConnectorMode
from studio_brain.domain.errors import Conflict, InputInvalid, PolicyRefused, StudioBrainError
from studio_brain.domain.proposals import Proposal
from studio_brain.logging import get_logger
from studio_brain.web import pages_view as view
from studio_brain.web.pages_common import (
    MAX_RATIONALE,
    Flash,
    Refusal,
    StaffForm,
    StaffPage,
    brain_of,
    other_tenant,
    redirect_with,
    render,
)

log = get_logger(__name__)

router = APIRouter(include_in_schema=False)

#: attributes worth naming in an effect, in this order, with their unit
_READINGS = (("power", "W", "drawing"), ("temperature", "°", "at"), ("battery", "%", "battery"))


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceChoice:
    connector_id: str
    device_id: str
    label: str
    room: str
    state: str

    @property
    def words(self) -> str:
        room = f" ({self.room})" if self.room else ""
        state = f" — now {self.state}" if self.state else ""
        return f"{self.label}{room}{state}"


def _state_of(device: Mapping[str, Any]) -> str:
    attributes = device.get("attributes") or {}
    for key in ("switch", "lock", "state", "status"):
        if isinstance(attributes, Mapping) and attributes.get(key) is not None:
            return str(attributes[key])
    return ""


def _fits(device: Mapping[str, Any], capability: Capability | None) -> bool:
    """A switch action offers switches only (not the door lock or a contact sensor)."""
    if capability is None or not capability.action.startswith("switch."):
        return True
    attributes = device.get("attributes") or {}
    return isinstance(attributes, Mapping) and "switch" in attributes


async def devices_of(
    brain: Brain, connector_id: str | None = None, *, capability: Capability | None = None
) -> list[DeviceChoice]:
    """Every device the connectors report (one connector's when given) that ``capability`` can act on,
    by name; [] when none answer."""
    service = brain.connector_health
    if service is None:
        return []
    try:
        readings = await service.read_devices(connector_id)
    except StudioBrainError as err:
        log.warning("cockpit.devices.unreadable", error=err.message)
        return []
    choices = []
    for reading in readings:
        for d in reading.devices:
            if d.get("id") is None or not _fits(d, capability):
                continue
            choices.append(
                DeviceChoice(
                    connector_id=reading.connector_id,
                    device_id=str(d["id"]),
                    label=str(d.get("label") or d.get("name") or d["id"]),
                    room=str(d.get("room") or ""),
                    state=_state_of(d),
                )
            )
    return choices


def _reading_words(device: Mapping[str, Any]) -> str:
    attributes = device.get("attributes") or {}
    if not isinstance(attributes, Mapping):
        return ""
    for key, unit, verb in _READINGS:
        value = attributes.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return f", {verb} {view.format_number(round(float(value)))} {unit}".replace(" °", "°")
    return ""


async def describe_proposal(
    brain: Brain, proposal: Proposal, capability: Capability | None
) -> dict[str, Any]:
    """What the proposal page shows in words: input rows, effects, why Execute is not offered, result."""
    devices: dict[str, Mapping[str, Any]] = {}
    device_field = capability.device_field if capability else None
    if capability is not None and device_field and brain.connector_health is not None:
        try:
            for reading in await brain.connector_health.read_devices(capability.target.value):
                devices.update({str(d.get("id")): d for d in reading.devices})
        except StudioBrainError as err:
            log.info("cockpit.devices.unreadable", error=err.message)
    rows: list[tuple[str, str]] = []
    for key, value in sorted(proposal.input.items()):
        shown = value if isinstance(value, str | int | float) else view.reading(value)
        if key == device_field and str(value) in devices:
            d = devices[str(value)]
            room = f", {d['room']}" if d.get("room") else ""
            shown = f"{d.get('label') or value} (device {value}{room})"
        rows.append((view.humanise_key(key), str(shown)))
    effects = effect_words(proposal, capability, devices)
    return {
        "input_rows": rows,
        "effect_words": effects,
        "execute_blocked": execute_blocked(brain, proposal.tenant_id, capability),
        "result_text": result_text(proposal),
    }


def effect_words(
    proposal: Proposal, capability: Capability | None, devices: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """The predicted effect in words, naming the device and its state now (the server's own list of
    predicted effects is shown beside it, unchanged)."""
    words: list[str] = []
    device_field = capability.device_field if capability else None
    command_field = capability.command_field if capability else None
    if capability is not None and device_field and command_field:
        device_id = str(proposal.input.get(device_field, ""))
        wanted = str(proposal.input.get(command_field, ""))
        d = devices.get(device_id)
        if d is not None:
            now = _state_of(d) or "unknown"
            words.append(f"{d.get('label') or device_id}: {now} → {wanted}{_reading_words(d)}")
        elif device_id:
            words.append(f"device {device_id}: → {wanted} (its current state could not be read)")
    if not words and capability is not None and capability.action == "note.append":
        words.append(f"adds a staff note: “{str(proposal.input.get('text', ''))[:200]}”")
    return words


def execute_blocked(brain: Brain, tenant_id: str, capability: Capability | None) -> str:
    """Why Execute cannot run on this brain ('' when it can): a write on a read-only or absent connector."""
    if capability is None or brain.gateway is None or not capability.is_write:
        return ""
    if capability.target.value == "local":
        return ""
    facts = brain.gateway.connector_facts(tenant_id, capability)
    name = capability.target.value
    if not facts.present:
        return f"No {name} connector is configured on this brain, so this cannot be executed here."
    if facts.mode is ConnectorMode.READ_ONLY:
        return (
            f"The {name} connector is read-only on this brain: executing would be refused. "
            f"An operator can allow writes in its settings (see docs/connectors.md)."
        )
    return ""


def result_text(proposal: Proposal) -> str:
    """The execution's result in words (the note's text, the device's answer), '' before one exists."""
    result = proposal.result
    if not isinstance(result, Mapping) or not result:
        return ""
    note = result.get("note") if isinstance(result.get("note"), Mapping) else None
    if note is not None and note.get("text"):
        return f"Note added: “{note['text']}”"
    if isinstance(result.get("text"), str):
        return f"Note added: “{result['text']}”"
    if result.get("noteId") is not None and isinstance(proposal.input.get("text"), str):
        # the store answers with the note's id; its text is the approved input
        return f"Note added: “{proposal.input['text']}” (note {result['noteId']})"
    pointer = result.get("resourcePointer")
    if isinstance(pointer, Mapping) and pointer.get("collection"):
        # issue 15: a cloud write through the studio's Function
        where = f"{pointer['collection']}/{pointer.get('docId') or '?'}"
        again = (
            " (the Function already held it: replayed, nothing written twice)"
            if result.get("replayed")
            else ""
        )
        signed = "; signed approval attestation attached" if result.get("attestation") else ""
        return f"Written in the studio's cloud: {where}{again}{signed}"
    inner = result.get("data")
    data: Mapping[str, Any] = inner if isinstance(inner, Mapping) else result
    parts = [
        f"{view.humanise_key(str(k)).lower()} {view.reading(v)}"
        for k, v in data.items()
        if isinstance(v, str | int | float | bool) and k not in {"requestId", "outputHash"}
    ]
    return ("Answer: " + ", ".join(parts[:8])) if parts else ""


def device_capabilities(brain: Brain) -> Sequence[Capability]:
    return [c for c in brain.gateway.capabilities() if c.device_field and c.is_write]


@router.get("/proposals/new", response_class=HTMLResponse)
async def new_proposal_page(request: Request, page: StaffPage) -> Response:
    refused = other_tenant(request, page, "Proposals", "proposals")
    if refused is not None:
        return refused
    brain = brain_of(request)
    return await _new_form(request, brain, page, request.query_params.get("capability", ""))


async def _new_form(
    request: Request,
    brain: Brain,
    page: Any,
    wanted: str,
    *,
    refusal: Refusal | None = None,
    form: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    choices = device_capabilities(brain)
    capability = next((c for c in choices if c.id == wanted), choices[0] if choices else None)
    devices = await devices_of(brain, capability.target.value, capability=capability) if capability else []
    commands = _commands(capability)
    return render(
        request,
        "proposal_new.html",
        page=page,
        title="Propose a device action",
        nav="proposals",
        capabilities=choices,
        capability=capability,
        devices=devices,
        commands=commands,
        blocked=execute_blocked(brain, page.principal.tenant_id, capability),
        refusal=refusal,
        form=form or {},
        status_code=status_code,
    )


def _commands(capability: Capability | None) -> list[str]:
    if capability is None or not capability.command_field:
        return []
    spec = (capability.input_schema.get("properties") or {}).get(capability.command_field) or {}
    allowed = spec.get("enum")
    return [str(v) for v in allowed] if isinstance(allowed, list) else ["on", "off"]


@router.post("/proposals/new")
async def new_proposal(request: Request, posted: StaffForm) -> Response:
    page, fields = posted
    brain = brain_of(request)
    gateway = brain.gateway
    capability = next((c for c in device_capabilities(brain) if c.id == fields.get("capability")), None)
    if gateway is None or capability is None or not capability.device_field or not capability.command_field:
        return Response("not found", status_code=404, media_type="text/plain")
    device = fields.get("device", "")
    known = {d.device_id for d in await devices_of(brain, capability.target.value, capability=capability)}
    try:
        if device not in known:
            raise InputInvalid("choose a device from the list (it is read from the connector)")
        created = await gateway.create_proposal(
            page.principal,
            capability.id,
            {capability.device_field: device, capability.command_field: fields.get("command", "")},
            fields.get("rationale", "")[:MAX_RATIONALE],
        )
    except (PolicyRefused, Conflict, InputInvalid) as err:
        return await _new_form(
            request, brain, page, capability.id, refusal=Refusal.of(err), form=fields, status_code=400
        )
    response: RedirectResponse = redirect_with(f"/proposals/{created.proposal.id}", page)
    return response


__all__ = ["Flash", "describe_proposal", "router"]
