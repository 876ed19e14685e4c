"""The cockpit's form for proposing a cloud write (issue 15): an ops note on a member's batch or a batch
close, drafted by the signed-in person for another staff member to approve. Nothing is sent here; the
gateway's dry run reads the batch and the proposal page shows the predicted documents."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from studio_brain.bootstrap import Brain
from studio_brain.domain.capabilities import Capability
from studio_brain.domain.errors import Conflict, InputInvalid, PolicyRefused
from studio_brain.web.pages_common import (
    MAX_RATIONALE,
    Refusal,
    StaffForm,
    StaffPage,
    brain_of,
    other_tenant,
    redirect_with,
    render,
)

router = APIRouter(include_in_schema=False)  # a cockpit page, not part of the documented API
PATH = "/proposals/new-cloud-write"
#: the form's fields per capability (the rest of the input schema is not asked for)
FIELDS: Mapping[str, tuple[str, ...]] = {
    "firestore.ops_note.append": ("batchId", "ownerUid", "note"),
    "firestore.batch.close": ("batchId", "notes"),
}


def cloud_capabilities(brain: Brain) -> list[Capability]:
    return [c for c in brain.gateway.capabilities() if c.id in FIELDS]


async def _form(
    request: Request,
    page: Any,
    wanted: str,
    *,
    refusal: Refusal | None = None,
    form: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    choices = cloud_capabilities(brain_of(request))
    capability = next((c for c in choices if c.id == wanted), choices[0] if choices else None)
    return render(
        request,
        "proposal_new_cloud.html",
        page=page,
        title="Propose a cloud write",
        nav="proposals",
        capabilities=choices,
        capability=capability,
        fields=FIELDS.get(capability.id, ()) if capability else (),
        hours=", ".join(str(w) for w in capability.allowed_hours) if capability else "",
        refusal=refusal,
        form=form or {},
        path=PATH,
        status_code=status_code,
    )


@router.get(PATH, response_class=HTMLResponse)
async def new_cloud_write_page(request: Request, page: StaffPage) -> Response:
    refused = other_tenant(request, page, "Proposals", "proposals")
    if refused is not None:
        return refused
    return await _form(request, page, request.query_params.get("capability", ""))


@router.post(PATH)
async def new_cloud_write(request: Request, posted: StaffForm) -> Response:
    page, fields = posted
    brain = brain_of(request)
    capability = next((c for c in cloud_capabilities(brain) if c.id == fields.get("capability")), None)
    if capability is None:
        return Response("not found", status_code=404, media_type="text/plain")
    # only the fields the capability takes, and an optional one left empty is left out
    input = {name: fields[name].strip() for name in FIELDS[capability.id] if fields.get(name, "").strip()}
    try:
        created = await brain.gateway.create_proposal(
            page.principal, capability.id, input, fields.get("rationale", "")[:MAX_RATIONALE]
        )
    except (PolicyRefused, Conflict, InputInvalid) as err:
        return await _form(
            request, page, capability.id, refusal=Refusal.of(err), form=fields, status_code=400
        )
    response: RedirectResponse = redirect_with(f"/proposals/{created.proposal.id}", page)
    return response
