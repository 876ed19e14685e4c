"""The cockpit's Staff page (owners: invite, roles, remove, Firebase link, each person's passkeys, tokens
and sessions) and Account page (everyone: my passkeys, a one-time CLI login code, my tokens and sessions).

One-time secrets (invite links, CLI codes) are shown once in the response to the form that made them —
never put in a URL of this site, a redirect or a log line.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from studio_brain.domain.credentials import Passkey, PersonalToken, Session
from studio_brain.domain.errors import InputInvalid, PermissionDenied, ReasonCode, StudioBrainError
from studio_brain.domain.identity import Person, PersonStatus
from studio_brain.logging import get_logger
from studio_brain.services.identity import IdentityService
from studio_brain.web.auth import get_authenticator
from studio_brain.web.pages_common import (
    Flash,
    PageContext,
    Refusal,
    StaffForm,
    StaffPage,
    brain_of,
    redirect_with,
    render,
    staff_page,
)
from studio_brain.web.signin import CeremonyFinish, _credential_json

log = get_logger(__name__)

router = APIRouter(include_in_schema=False)

STAFF_DONE = {
    "roles": "Roles changed.",
    "removed": "Removed: their sessions and tokens ended at once.",
    "firebase": "Firebase link saved.",
    "passkey-removed": "Passkey removed.",
    "token-revoked": "Token revoked.",
    "session-revoked": "Session ended.",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class PersonView:
    person: Person
    passkeys: list[Passkey] = field(default_factory=list)
    tokens: list[PersonalToken] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)


def _identity(request: Request) -> IdentityService:
    return get_authenticator(request).identity


def _may_manage(page: PageContext) -> bool:
    return page.principal.is_break_glass or (page.principal.person_id is not None and page.principal.is_owner)


async def _people(identity: IdentityService) -> list[PersonView]:
    now_sessions = await identity.all_sessions()
    tokens = await identity.all_tokens()
    views = []
    for person in await identity.persons():
        views.append(
            PersonView(
                person=person,
                passkeys=await identity.passkeys_of(person.id),
                tokens=[t for t in tokens if t.person_id == person.id and t.revoked_at is None],
                sessions=[s for s in now_sessions if s.person_id == person.id and s.revoked_at is None],
            )
        )
    return views


async def _staff_view(
    request: Request,
    page: PageContext,
    *,
    flashes: list[Flash] | None = None,
    refusal: Refusal | None = None,
    invite_url: str = "",
    invite_for: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    identity = _identity(request)
    return render(
        request,
        "staff.html",
        page=page,
        title="Staff",
        nav="staff",
        status_code=status_code,
        flashes=flashes,
        refusal=refusal,
        people=await _people(identity),
        invite_url=invite_url,
        invite_for=invite_for,
        invite_minutes=identity.invite_ttl.total_seconds() // 60,
        now=brain_of(request).clock.now(),
        removed=PersonStatus.REMOVED,
    )


def _owners_only(request: Request, page: PageContext) -> HTMLResponse:
    return render(
        request,
        "error.html",
        page=page,
        title="Staff",
        nav="staff",
        heading="Owners only",
        message="Only an owner of the studio manages staff accounts.",
        status_code=403,
    )


@router.get("/staff", response_class=HTMLResponse)
async def staff_list(request: Request, page: StaffPage) -> Response:
    if not _may_manage(page):
        return _owners_only(request, page)
    done = request.query_params.get("done", "")
    flashes = [Flash(text=STAFF_DONE[done], tone="ok")] if done in STAFF_DONE else []
    return await _staff_view(request, page, flashes=flashes)


def _staff_post(
    request: Request, posted: tuple[PageContext, Mapping[str, str]]
) -> tuple[PageContext, dict[str, str]] | HTMLResponse:
    """An owner's form post on the Staff page (the staff gate and cross-site checks ran as ``StaffForm``)."""
    page, fields = posted
    if not _may_manage(page):
        return _owners_only(request, page)
    return page, dict(fields)


async def _refused(request: Request, page: PageContext, err: StudioBrainError) -> HTMLResponse:
    status = 403 if isinstance(err, PermissionDenied) else 400 if isinstance(err, InputInvalid) else 409
    return await _staff_view(request, page, refusal=Refusal.of(err), status_code=status)


@router.post("/staff/invite")
async def staff_invite(request: Request, form: StaffForm) -> Response:
    posted = _staff_post(request, form)
    if isinstance(posted, HTMLResponse):
        return posted
    page, fields = posted
    identity = _identity(request)
    role = fields.get("role", "staff")
    try:
        if role == "owner" and page.principal.is_break_glass and not await identity.owners_exist():
            invitation = await identity.create_first_owner(page.principal, fields.get("name", ""))
        else:
            invitation = await identity.invite(page.principal, fields.get("name", ""), [role])
    except StudioBrainError as err:
        return await _refused(request, page, err)
    url = invitation.url(get_authenticator(request).settings.cockpit_url)
    return await _staff_view(
        request,
        page,
        invite_url=url,
        invite_for=invitation.person.display_name,
        flashes=[Flash(text=f"Invite created for {invitation.person.display_name}.", tone="ok")],
    )


@router.post("/staff/{person_id}/reinvite")
async def staff_reinvite(request: Request, person_id: str, form: StaffForm) -> Response:
    posted = _staff_post(request, form)
    if isinstance(posted, HTMLResponse):
        return posted
    page, _fields = posted
    try:
        invitation = await _identity(request).reinvite(page.principal, person_id)
    except StudioBrainError as err:
        return await _refused(request, page, err)
    url = invitation.url(get_authenticator(request).settings.cockpit_url)
    return await _staff_view(
        request,
        page,
        invite_url=url,
        invite_for=invitation.person.display_name,
        flashes=[Flash(text=f"New invite for {invitation.person.display_name}.", tone="ok")],
    )


@router.post("/staff/{person_id}/roles")
async def staff_roles(request: Request, person_id: str, form: StaffForm) -> Response:
    posted = _staff_post(request, form)
    if isinstance(posted, HTMLResponse):
        return posted
    page, fields = posted
    try:
        await _identity(request).set_roles(page.principal, person_id, [fields.get("role", "staff")])
    except StudioBrainError as err:
        return await _refused(request, page, err)
    return redirect_with("/staff", page, done="roles")


@router.post("/staff/{person_id}/remove")
async def staff_remove(request: Request, person_id: str, form: StaffForm) -> Response:
    posted = _staff_post(request, form)
    if isinstance(posted, HTMLResponse):
        return posted
    page, fields = posted
    try:
        await _identity(request).remove(page.principal, person_id, fields.get("reason", "").strip())
    except StudioBrainError as err:
        return await _refused(request, page, err)
    return redirect_with("/staff", page, done="removed")


@router.post("/staff/{person_id}/firebase")
async def staff_firebase(request: Request, person_id: str, form: StaffForm) -> Response:
    posted = _staff_post(request, form)
    if isinstance(posted, HTMLResponse):
        return posted
    page, fields = posted
    uid = fields.get("uid", "").strip() or None
    try:
        await _identity(request).link_firebase(page.principal, person_id, uid)
    except StudioBrainError as err:
        return await _refused(request, page, err)
    return redirect_with("/staff", page, done="firebase")


# --- per-credential actions: used by the Staff page (owners) and the Account page (oneself) ----------


async def _credential_action(
    request: Request,
    posted: tuple[PageContext, Mapping[str, str]],
    back: str,
    done: str,
    act: str,
    item_id: str,
) -> Response:
    page, fields = posted
    identity = _identity(request)
    reason = fields.get("reason", "").strip() or "ended from the cockpit"
    try:
        if act == "passkey":
            await identity.remove_passkey(page.principal, item_id, reason)
        elif act == "token":
            await identity.credentials.revoke_token(page.principal, item_id, reason)
        else:
            await identity.credentials.revoke_session(page.principal, item_id, reason)
    except StudioBrainError as err:
        if back == "/staff" and _may_manage(page):
            return await _refused(request, page, err)
        return await _account_view(request, page, refusal=Refusal.of(err), status_code=403)
    return redirect_with(back, page, done=done)


def _back(request: Request) -> str:
    return "/account" if request.query_params.get("from") == "account" else "/staff"


@router.post("/staff/passkeys/{passkey_id}/remove")
async def passkey_remove(request: Request, passkey_id: str, form: StaffForm) -> Response:
    return await _credential_action(request, form, _back(request), "passkey-removed", "passkey", passkey_id)


@router.post("/staff/tokens/{token_id}/revoke")
async def token_revoke(request: Request, token_id: str, form: StaffForm) -> Response:
    return await _credential_action(request, form, _back(request), "token-revoked", "token", token_id)


@router.post("/staff/sessions/{session_id}/revoke")
async def session_revoke(request: Request, session_id: str, form: StaffForm) -> Response:
    return await _credential_action(request, form, _back(request), "session-revoked", "session", session_id)


# --- my account ------------------------------------------------------------------------------------


async def _account_view(
    request: Request,
    page: PageContext,
    *,
    flashes: list[Flash] | None = None,
    refusal: Refusal | None = None,
    cli_code: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    identity = _identity(request)
    me = page.principal.person_id
    mine = None
    if me is not None and not page.principal.is_break_glass:
        person = await identity.person_or_none(me)
        if person is not None:
            mine = PersonView(
                person=person,
                passkeys=await identity.passkeys_of(me),
                tokens=[
                    t for t in await identity.credentials.tokens(page.principal, me) if t.revoked_at is None
                ],
                sessions=[
                    s for s in await identity.credentials.sessions(page.principal, me) if s.revoked_at is None
                ],
            )
    return render(
        request,
        "account.html",
        page=page,
        title="My account",
        nav="account",
        status_code=status_code,
        flashes=flashes,
        refusal=refusal,
        mine=mine,
        cli_code=cli_code,
        cli_minutes=identity.credentials.cli_code_ttl.total_seconds() // 60,
    )


@router.get("/account", response_class=HTMLResponse)
async def account(request: Request, page: StaffPage) -> Response:
    done = request.query_params.get("done", "")
    flashes = [Flash(text=STAFF_DONE[done], tone="ok")] if done in STAFF_DONE else []
    return await _account_view(request, page, flashes=flashes)


@router.post("/account/cli-code")
async def account_cli_code(request: Request, posted: StaffForm) -> Response:
    page, _fields = posted
    try:
        code = await _identity(request).credentials.issue_cli_code(page.principal)
    except StudioBrainError as err:
        return await _account_view(request, page, refusal=Refusal.of(err), status_code=403)
    return await _account_view(request, page, cli_code=code)


async def _json_session_page(request: Request) -> PageContext:
    """A signed-in person calling a JSON endpoint of the cockpit: same origin and the form token."""
    page = await staff_page(request)
    if isinstance(page, HTMLResponse):
        raise PermissionDenied("sign in first", reason_code=ReasonCode.AUTH_REQUIRED)
    sent = request.headers.get("x-csrf-token", "")
    here = f"{request.url.scheme}://{request.url.netloc}"
    if (
        request.headers.get("origin") not in (None, here)
        or not sent
        or not hmac.compare_digest(sent, page.csrf_token)
    ):
        raise PermissionDenied(
            "the form token is missing or wrong", reason_code=ReasonCode.CROSS_ORIGIN_REFUSED
        )
    return page


@router.post("/account/passkeys/begin")
async def account_passkey_begin(request: Request) -> JSONResponse:
    page = await _json_session_page(request)
    ceremony = await _identity(request).begin_adding_passkey(page.principal)
    return JSONResponse({"challengeId": ceremony.challenge_id, "options": json.loads(ceremony.options)})


@router.post("/account/passkeys/finish")
async def account_passkey_finish(request: Request, body: CeremonyFinish) -> JSONResponse:
    page = await _json_session_page(request)
    await _identity(request).finish_registration(
        body.challengeId, _credential_json(body), label=body.label, principal=page.principal
    )
    return JSONResponse({"ok": True, "redirect": "/account"})
