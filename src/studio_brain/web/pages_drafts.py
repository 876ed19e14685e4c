"""The cockpit's Drafts page (issue 14): ops, finance and marketing drafts with their evidence.

Submit turns an ops or finance draft into a proposal waiting for approval; Dismiss records a reason;
marketing copy moves through its review machine (draft → needs review → approved for publish).
Every decision is audited by the services; this module only translates forms.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from studio_brain.adapters.postgres.draft_decisions_store import PostgresDraftDecisionStore
from studio_brain.adapters.postgres.drafts_store import PostgresDraftStore
from studio_brain.bootstrap import Brain
from studio_brain.domain.drafts import DraftKind, DraftStatus
from studio_brain.domain.errors import Conflict, InputInvalid, NotFound, PolicyRefused
from studio_brain.logging import get_logger
from studio_brain.services.swarms.decisions import DraftDecisionService
from studio_brain.web.pages_common import (
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

_services: dict[int, DraftDecisionService] = {}

KIND_TITLES = {"ops": "Operations", "finance": "Finance", "marketing": "Marketing copy"}
#: marketing review buttons: (from status) -> [(to status, label)]
REVIEW_STEPS: dict[str, list[tuple[str, str]]] = {
    "draft": [("needs_review", "Send for review")],
    "needs_review": [("approved_for_publish", "Approve for publish"), ("draft", "Back to draft")],
    "approved_for_publish": [("needs_review", "Reopen review")],
}
DONE = {
    "submitted": "Draft submitted: it is now a proposal waiting for someone else's approval.",
    "dismissed": "Draft dismissed; the reason is in the audit log.",
    "reviewed": "Review recorded.",
}


def decisions_of(brain: Brain) -> DraftDecisionService | None:
    """The draft-decision service of this brain (built once; None when drafts are not wired)."""
    service = _services.get(id(brain))
    if service is None:
        service = DraftDecisionService(
            drafts=PostgresDraftStore(brain.database, zone=brain.settings.zone),
            store=PostgresDraftDecisionStore(brain.database),
            gateway=brain.gateway,
            events=brain.events,
            clock=brain.clock,
            ids=brain.ids,
        )
        _services[id(brain)] = service
    return service


def _kind(raw: str | None) -> DraftKind | None:
    try:
        return DraftKind(raw) if raw else None
    except ValueError:
        return None


@router.get("/drafts", response_class=HTMLResponse)
async def drafts_page(request: Request, page: StaffPage) -> Response:
    refused = other_tenant(request, page, "Drafts", "drafts")
    if refused is not None:
        return refused
    service = decisions_of(brain_of(request))
    if service is None:
        return render(
            request,
            "drafts.html",
            page=page,
            title="Drafts",
            nav="drafts",
            unavailable=True,
            what="Swarm drafts",
            why="This brain was started without the swarms.",
        )
    kind = _kind(request.query_params.get("kind"))
    show_all = request.query_params.get("show") == "all"
    items = await service.items(page.principal, (kind,) if kind else tuple(DraftKind))
    waiting = [i for i in items if i.waiting]
    shown = items if show_all else waiting
    done = request.query_params.get("done", "")
    flashes = [Flash(text=DONE[done], tone="ok")] if done in DONE else []
    return render(
        request,
        "drafts.html",
        page=page,
        title="Drafts",
        nav="drafts",
        items=shown,
        waiting_count=len(waiting),
        total=len(items),
        kind=kind.value if kind else "",
        show_all=show_all,
        kind_titles=KIND_TITLES,
        review_steps=REVIEW_STEPS,
        flashes=flashes,
    )


@router.post("/drafts/{draft_id}/{action}")
async def draft_action(request: Request, draft_id: str, action: str, posted: StaffForm) -> Response:
    page, fields = posted
    brain = brain_of(request)
    service = decisions_of(brain)
    if service is None or brain.drafts is None or action not in {"submit", "dismiss", "review"}:
        return Response("not found", status_code=404, media_type="text/plain")
    back = {"kind": fields.get("kind", "")}
    try:
        match action:
            case "submit":
                proposal_id = await service.submit(page.principal, draft_id)
                log.info("cockpit.draft.submitted", draft_id=draft_id, proposal_id=proposal_id)
                return redirect_with(f"/proposals/{proposal_id}", page, done="submitted-draft")
            case "dismiss":
                await service.dismiss(page.principal, draft_id, fields.get("reason", ""))
                return redirect_with("/drafts", page, done="dismissed", **back)
            case _:
                await brain.drafts.review_marketing(
                    page.principal,
                    draft_id,
                    DraftStatus(fields.get("to_status", ""))
                    if fields.get("to_status") in {s.value for s in DraftStatus}
                    else fields.get("to_status", ""),
                    fields.get("rationale", "") or "reviewed in the cockpit",
                )
                return redirect_with("/drafts", page, done="reviewed", **back)
    except (PolicyRefused, Conflict, InputInvalid, NotFound) as err:
        refusal = Refusal.of(err)
        log.info("cockpit.draft.refused", action=action, draft_id=draft_id, code=refusal.code)
        items = await service.items(page.principal)
        return render(
            request,
            "drafts.html",
            page=page,
            title="Drafts",
            nav="drafts",
            items=[i for i in items if i.waiting],
            waiting_count=sum(1 for i in items if i.waiting),
            total=len(items),
            kind="",
            show_all=False,
            kind_titles=KIND_TITLES,
            review_steps=REVIEW_STEPS,
            flashes=[Flash(text=f"{refusal.words} {refusal.detail}".strip(), tone="bad")],
            status_code=404 if isinstance(err, NotFound) else 409 if isinstance(err, Conflict) else 400,
        )
