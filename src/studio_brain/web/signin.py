"""Signing in and out of the cockpit: the passkey sign-in page and its WebAuthn endpoints, enrolment from
an invite, break-glass login links, logout, and the styled signed-out and invalid-link pages.

The session cookie carries only a random id (HttpOnly, SameSite=Strict); the session itself is a row
the server can end at any time. The WebAuthn endpoints answer JSON; the browser side is
``static/passkeys.js`` (no inline script: the CSP allows only this site's files).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from studio_brain.domain.errors import InputInvalid, ReasonCode, Unauthenticated
from studio_brain.logging import get_logger
from studio_brain.services.credentials import OpenedSession
from studio_brain.web.auth import LOGIN_PATH, SESSION_COOKIE, get_authenticator
from studio_brain.web.middleware import new_request_id
from studio_brain.web.pages_common import render

log = get_logger(__name__)

router = APIRouter(include_in_schema=False)

#: a WebAuthn response is a few kilobytes at most
MAX_CREDENTIAL_JSON = 64 * 1024


class CeremonyFinish(BaseModel):
    challengeId: str = Field(min_length=1, max_length=64)
    credential: dict[str, Any]
    label: str = Field(default="", max_length=60)


class EnrolBegin(BaseModel):
    invite: str = Field(min_length=1, max_length=200)


def _credential_json(body: CeremonyFinish) -> str:
    text = json.dumps(body.credential)
    if len(text) > MAX_CREDENTIAL_JSON:
        raise InputInvalid("the passkey response is too large")
    return text


def set_session_cookie(request: Request, response: Response, opened: OpenedSession) -> None:
    settings = get_authenticator(request).settings
    response.set_cookie(
        SESSION_COOKIE,
        opened.raw,
        max_age=settings.session_minutes * 60,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def _request_id(request: Request) -> str:
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else new_request_id()


def link_invalid(request: Request, *, heading: str, message: str) -> HTMLResponse:
    return render(
        request,
        "link_invalid.html",
        page=None,
        title=heading,
        heading=heading,
        message=message,
        status_code=401,
    )


# --- sign in ---------------------------------------------------------------------------------------


@router.get(LOGIN_PATH, response_class=HTMLResponse)
async def login(request: Request, token: str = "") -> Response:
    """The sign-in page; with ``?token=`` a one-time break-glass login link, redeemed once (ever)."""
    auth = get_authenticator(request)
    if not token:
        owners = await auth.identity.owners_exist()
        return render(request, "signin.html", page=None, title="Sign in", owners_exist=owners)
    opened = await auth.identity.credentials.redeem_login_link(token, request_id=_request_id(request))
    if opened is None:
        log.info("auth.login_link.refused")
        return link_invalid(
            request,
            heading="This login link does not work",
            message="It is unknown, expired, or was used already — each link works once, for a few minutes. "
            "Create a new one on the studio machine with `studio-brain login-link`, or sign in with your passkey.",
        )
    log.info("auth.login_link.accepted", session_id=opened.session.id)
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(request, response, opened)
    return response


@router.post(LOGIN_PATH + "/passkey/begin")
async def passkey_begin(request: Request) -> JSONResponse:
    ceremony = await get_authenticator(request).identity.begin_sign_in()
    return JSONResponse({"challengeId": ceremony.challenge_id, "options": json.loads(ceremony.options)})


@router.post(LOGIN_PATH + "/passkey/finish")
async def passkey_finish(request: Request, body: CeremonyFinish) -> JSONResponse:
    identity = get_authenticator(request).identity
    opened = await identity.finish_sign_in(
        body.challengeId, _credential_json(body), request_id=_request_id(request)
    )
    response = JSONResponse({"ok": True, "redirect": "/", "name": opened.principal.display_name})
    set_session_cookie(request, response, opened)
    return response


# --- enrolment from an invite ----------------------------------------------------------------------


@router.get("/enrol", response_class=HTMLResponse)
async def enrol_page(request: Request, invite: str = "") -> Response:
    person = await get_authenticator(request).identity.invited_person(invite) if invite else None
    if person is None:
        return link_invalid(
            request,
            heading="This invite does not work",
            message="It is unknown, expired, or was used already. Ask an owner of the studio for a new invite.",
        )
    return render(request, "enrol.html", page=None, title="Create your passkey", person=person, invite=invite)


@router.post("/enrol/begin")
async def enrol_begin(request: Request, body: EnrolBegin) -> JSONResponse:
    ceremony = await get_authenticator(request).identity.begin_enrolment(body.invite)
    return JSONResponse({"challengeId": ceremony.challenge_id, "options": json.loads(ceremony.options)})


@router.post("/enrol/finish")
async def enrol_finish(request: Request, body: CeremonyFinish) -> JSONResponse:
    identity = get_authenticator(request).identity
    _passkey, opened = await identity.finish_registration(
        body.challengeId, _credential_json(body), label=body.label
    )
    if opened is None:  # pragma: no cover - an invite always opens a session
        raise Unauthenticated("enrolment did not open a session", reason_code=ReasonCode.INVITE_INVALID)
    response = JSONResponse({"ok": True, "redirect": "/", "name": opened.principal.display_name})
    set_session_cookie(request, response, opened)
    return response


# --- sign out --------------------------------------------------------------------------------------


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session on the server (the cookie stops working everywhere at once), then forget it."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await get_authenticator(request).identity.credentials.sign_out(
            cookie, request_id=_request_id(request)
        )
    response = RedirectResponse(LOGIN_PATH + "/signed-out", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get(LOGIN_PATH + "/signed-out", response_class=HTMLResponse)
async def signed_out(request: Request) -> HTMLResponse:
    return render(request, "signed_out.html", page=None, title="Signed out")
