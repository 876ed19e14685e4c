"""Who is calling: credentials → a verified Principal, and the FastAPI dependencies that demand one.

Credentials, in order of precedence:

* ``authorization: Bearer sbat_…`` — an agent token, verified by the capability gateway;
* ``authorization: Bearer <JWT>`` — a Firebase ID token (signature, issuer, audience, expiry);
* ``x-studio-brain-admin-token`` — the local admin token (constant-time comparison). Sent together with
  a Bearer token (as the Portal does), it must still be valid, and the Bearer identity is the actor;
* the cockpit session cookie, set by a one-time login link (``/login?token=…``).

A presented credential that fails is a 401 — never a silent fall-through to a weaker one. Roles are
checked by the dependencies (403). The tenant always comes from configuration, never from the request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Security
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPBearer
from pydantic import SecretStr

from studio_brain.adapters.admin_token import load_or_create_admin_token
from studio_brain.adapters.firebase_auth import FirebaseTokenVerifier
from studio_brain.bootstrap import Brain
from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft
from studio_brain.domain.errors import PermissionDenied, ReasonCode, StudioBrainError, Unauthenticated
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.identity import AuthMethod, Principal
from studio_brain.logging import get_logger
from studio_brain.settings import Settings

log = get_logger("studio_brain.web.auth")

ADMIN_TOKEN_HEADER = "x-studio-brain-admin-token"  # noqa: S105 - a header name
SESSION_COOKIE = "studio_brain_session"
#: agent tokens minted by the capability gateway start with this; anything else after Bearer is a JWT
AGENT_TOKEN_PREFIX = "sbat_"  # noqa: S105 - a prefix, not a token
LOCAL_ADMIN_ID = "local-admin"
LOGIN_PATH = "/login"


class AgentTokenVerifier(Protocol):
    """What the capability gateway offers for agent tokens (``services/gateway.py``)."""

    def verify_agent_token(self, raw: str) -> Principal | Awaitable[Principal | None] | None: ...


def local_admin(tenant_id: str, *, via: AuthMethod = AuthMethod.ADMIN_TOKEN) -> Principal:
    """The holder of the local admin token (the studio's own machine)."""
    return Principal(
        tenant_id=tenant_id,
        actor_type=ActorType.STAFF,
        actor_id=LOCAL_ADMIN_ID,
        via=via,
        roles=frozenset({"staff", "admin"}),
        display_name="Local admin",
    )


# --- signed tokens (sessions and login links) ------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, kw_only=True, slots=True)
class _Signer:
    """HMAC-SHA256 over a small JSON payload, keyed from the admin token and a purpose.

    Keyed from the admin token so that rotating it logs every session out.
    """

    key: bytes

    @classmethod
    def for_purpose(cls, admin_token: SecretStr, purpose: str) -> _Signer:
        key = hmac.new(admin_token.get_secret_value().encode(), purpose.encode(), hashlib.sha256).digest()
        return cls(key=key)

    def sign(self, payload: dict[str, Any]) -> str:
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        mac = _b64(hmac.new(self.key, body.encode(), hashlib.sha256).digest())
        return f"{body}.{mac}"

    def unsign(self, token: str) -> dict[str, Any] | None:
        body, dot, mac = token.partition(".")
        if not dot or len(token) > 4096:
            return None
        expected = _b64(hmac.new(self.key, body.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, mac):
            return None
        try:
            payload = json.loads(_unb64(body))
        except ValueError:
            return None
        return payload if isinstance(payload, dict) else None


def _principal_payload(principal: Principal, expires_at: float) -> dict[str, Any]:
    return {
        "sub": principal.actor_id,
        "typ": principal.actor_type.value,
        "roles": sorted(principal.roles),
        "name": principal.display_name,
        "exp": int(expires_at),
    }


def _principal_from_payload(payload: dict[str, Any], *, tenant_id: str, via: AuthMethod) -> Principal | None:
    try:
        actor_type = ActorType(payload["typ"])
        sub = payload["sub"]
        roles = frozenset(str(r) for r in payload["roles"])
    except (KeyError, ValueError, TypeError):
        return None
    if not isinstance(sub, str) or actor_type is ActorType.AGENT:
        return None
    name = payload.get("name")
    return Principal(
        tenant_id=tenant_id,
        actor_type=actor_type,
        actor_id=sub,
        via=via,
        roles=roles,
        display_name=name if isinstance(name, str) else None,
    )


# --- the authenticator -----------------------------------------------------------------------------


@dataclass(kw_only=True)
class Authenticator:
    """Turns a request's credentials into a Principal. One per app, built from the Brain."""

    settings: Settings
    firebase: FirebaseTokenVerifier
    agents: AgentTokenVerifier | None = None
    #: a wall clock in seconds; replaced in tests
    now: Callable[[], float] = time.time
    _used_logins: dict[str, float] = field(default_factory=dict)
    _admin_token: SecretStr | None = None

    @classmethod
    def for_brain(cls, brain: Brain) -> Authenticator:
        settings = brain.settings
        return cls(
            settings=settings,
            firebase=FirebaseTokenVerifier(
                project_id=settings.firebase_project_id or settings.firestore_project_id,
                tenant_id=settings.tenant_id,
                clock=brain.clock,
                certs_file=settings.firebase_certs_file,
            ),
            agents=getattr(brain, "gateway", None),
        )

    @property
    def admin_token(self) -> SecretStr:
        """Read (or, at first run, generated and stored 0600) when first needed, not at import or app build."""
        if self._admin_token is None:
            self._admin_token = load_or_create_admin_token(self.settings.admin_token, self.settings.home)
        return self._admin_token

    @property
    def tenant_id(self) -> str:
        return self.settings.tenant_id

    @property
    def _sessions(self) -> _Signer:
        return _Signer.for_purpose(self.admin_token, "studio-brain/session/v1")

    @property
    def _logins(self) -> _Signer:
        return _Signer.for_purpose(self.admin_token, "studio-brain/login/v1")

    async def authenticate(self, request: Request) -> Principal | None:
        """The request's verified Principal; None without credentials; Unauthenticated for bad ones."""
        bearer = _bearer(request.headers.get("authorization"))
        admin_header = request.headers.get(ADMIN_TOKEN_HEADER)
        if admin_header is not None and not self.is_admin_token(admin_header):
            raise Unauthenticated(
                "the admin token is not valid", reason_code=ReasonCode.AUTH_ADMIN_TOKEN_INVALID
            )
        if bearer is not None:
            if bearer.startswith(AGENT_TOKEN_PREFIX):
                return await self._agent(bearer)
            return await self.firebase.verify(bearer)
        if admin_header is not None:
            return local_admin(self.tenant_id)
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            principal = self.read_session(cookie)
            if principal is None:
                raise Unauthenticated(
                    "the cockpit session expired or is not valid; open a new login link",
                    reason_code=ReasonCode.AUTH_SESSION_INVALID,
                )
            _refuse_cross_origin(request)
            return principal
        return None

    def is_admin_token(self, presented: str) -> bool:
        expected = self.admin_token.get_secret_value().encode()
        return hmac.compare_digest(expected, presented.strip().encode())

    async def _agent(self, raw: str) -> Principal:
        if self.agents is None:
            raise Unauthenticated(
                "agent tokens are not enabled on this brain", reason_code=ReasonCode.AUTH_TOKEN_INVALID
            )
        verified = self.agents.verify_agent_token(raw)
        principal = await verified if inspect.isawaitable(verified) else verified
        if principal is None:
            raise Unauthenticated(
                "the agent token is unknown, revoked or expired", reason_code=ReasonCode.AUTH_TOKEN_INVALID
            )
        if principal.tenant_id != self.tenant_id:
            raise Unauthenticated(
                "the agent token belongs to another tenant", reason_code=ReasonCode.AUTH_TENANT_MISMATCH
            )
        return principal

    # sessions -------------------------------------------------------------------------------------

    def new_session(self, principal: Principal) -> str:
        expires = self.now() + self.settings.session_minutes * 60
        return self._sessions.sign(_principal_payload(principal, expires))

    def read_session(self, cookie: str) -> Principal | None:
        payload = self._sessions.unsign(cookie)
        if payload is None or not isinstance(payload.get("exp"), int) or payload["exp"] < self.now():
            return None
        return _principal_from_payload(payload, tenant_id=self.tenant_id, via=AuthMethod.SESSION)

    # one-time login links -------------------------------------------------------------------------

    def issue_login_token(self, principal: Principal | None = None) -> str:
        """A single-use, expiring token for ``/login?token=…`` (default: the local admin)."""
        who = principal or local_admin(self.tenant_id, via=AuthMethod.SESSION)
        if who.is_agent:
            raise PermissionDenied(
                "agents cannot open cockpit sessions", reason_code=ReasonCode.AGENT_NOT_ALLOWED
            )
        expires = self.now() + self.settings.login_link_minutes * 60
        payload = {**_principal_payload(who, expires), "nonce": secrets.token_urlsafe(16)}
        return self._logins.sign(payload)

    def login_url(self, base_url: str, principal: Principal | None = None) -> str:
        return f"{base_url.rstrip('/')}{LOGIN_PATH}?token={quote(self.issue_login_token(principal))}"

    def redeem_login_token(self, token: str) -> Principal | None:
        """The Principal the link was issued for, once; None if forged, expired or already used."""
        payload = self._logins.unsign(token)
        now = self.now()
        if payload is None or not isinstance(payload.get("exp"), int) or payload["exp"] < now:
            return None
        nonce = payload.get("nonce")
        if not isinstance(nonce, str):
            return None
        # forget used links once they would have expired anyway, so this never grows without bound
        for used, expiry in list(self._used_logins.items()):
            if expiry < now:
                del self._used_logins[used]
        if nonce in self._used_logins:
            return None
        self._used_logins[nonce] = float(payload["exp"])
        return _principal_from_payload(payload, tenant_id=self.tenant_id, via=AuthMethod.SESSION)


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _refuse_cross_origin(request: Request) -> None:
    """A cookie rides along on requests other pages start; SameSite=Strict stops other sites, but not other
    ports of the same host (the Portal dev server at localhost:5173 is "same site"). So a state-changing
    API call carried by the cookie must come from this origin. (Cockpit forms check a form token too.)"""
    if request.method in _SAFE_METHODS or not request.url.path.startswith("/api/"):
        return  # cockpit pages run their own Origin and form-token checks (web/pages.py)
    origin = request.headers.get("origin")
    here = f"{request.url.scheme}://{request.url.netloc}"
    if origin is not None and origin != here:
        raise PermissionDenied(
            "a cookie-authenticated change must come from the cockpit's own origin",
            reason_code=ReasonCode.CROSS_ORIGIN_REFUSED,
        )


def _bearer(header: str | None) -> str | None:
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthenticated(
            "the authorization header must be 'Bearer <token>'", reason_code=ReasonCode.AUTH_TOKEN_INVALID
        )
    return value.strip()


# --- FastAPI dependencies --------------------------------------------------------------------------


def get_authenticator(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


# Declared only so the OpenAPI document names the three ways to authenticate; reading and checking the
# credentials is Authenticator.authenticate's job (these never raise: auto_error=False).
_bearer_scheme = HTTPBearer(auto_error=False, description="Firebase ID token, or an agent token (sbat_…)")
_admin_scheme = APIKeyHeader(name=ADMIN_TOKEN_HEADER, auto_error=False, description="The local admin token")
_session_scheme = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="Cockpit session cookie")


async def current_principal_or_none(
    request: Request,
    _bearer: object = Security(_bearer_scheme),
    _admin: object = Security(_admin_scheme),
    _session: object = Security(_session_scheme),
) -> Principal | None:
    """The caller, or None when no credential was sent (pages use this to show a login hint)."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    principal = await get_authenticator(request).authenticate(request)
    if principal is not None:
        request.state.principal = principal
    return principal


async def require_principal(
    principal: Principal | None = Depends(current_principal_or_none),
) -> Principal:
    """Any authenticated caller (staff, admin, agent, signed-in human). 401 without credentials."""
    if principal is None:
        raise Unauthenticated(
            "authentication required: send 'authorization: Bearer <token>', the admin token header, "
            "or sign in through a login link",
            reason_code=ReasonCode.AUTH_REQUIRED,
        )
    return principal


async def refuse(request: Request, principal: Principal, message: str, reason_code: ReasonCode) -> NoReturn:
    """Audit a verified caller's refused request (``http.request.refused``), then raise the 403.

    Only verified identities are audited: an anonymous or forged request has no actor to name (it is
    logged), and auditing it would let anyone fill the log.
    """
    events = getattr(getattr(request.app.state, "brain", None), "events", None)
    request_id = getattr(request.state, "request_id", None) or "unknown"
    if events is not None:
        attempt = {"method": request.method, "path": request.url.path}
        try:
            await events.append(
                AuditDraft(
                    tenant_id=principal.tenant_id,
                    actor_type=principal.actor_type,
                    actor_id=principal.actor_id,
                    action="http.request.refused",
                    target="http",
                    rationale=message,
                    approval_state=ApprovalState.NOT_APPLICABLE,
                    input_hash=sha256_hex(attempt),
                    request_id=request_id,
                    correlation_id=request_id,
                    metadata={**attempt, "reasonCode": reason_code.value, "via": principal.via.value},
                )
            )
        except StudioBrainError as err:  # the refusal stands even if the log cannot take it
            log.warning("auth.refusal.not_audited", error=err.message, reason_code=reason_code)
    log.info("auth.refused", actor_id=principal.actor_id, reason_code=reason_code, path=request.url.path)
    raise PermissionDenied(message, reason_code=reason_code)


async def require_staff(request: Request, principal: Principal = Depends(require_principal)) -> Principal:
    """Studio staff or admin (Firebase claim, admin token, or cockpit session). 403 (audited) otherwise."""
    if not principal.is_staff:
        await refuse(request, principal, "this needs a staff account", ReasonCode.STAFF_REQUIRED)
    return principal


async def require_admin(request: Request, principal: Principal = Depends(require_principal)) -> Principal:
    """An admin (claim ``admin``/``roles`` ∋ admin, or the local admin token). 403 (audited) otherwise."""
    if not principal.is_admin:
        await refuse(request, principal, "this needs an admin account", ReasonCode.ADMIN_REQUIRED)
    return principal


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """Staff always; agents only with ``scope`` (e.g. ``state:read``); other humans 403 (audited)."""

    async def dependency(request: Request, principal: Principal = Depends(require_principal)) -> Principal:
        if principal.is_staff or (principal.is_agent and principal.has_scope(scope)):
            return principal
        await refuse(
            request, principal, f"this needs staff or the agent scope {scope!r}", ReasonCode.SCOPE_REQUIRED
        )

    return dependency


# --- login and logout routes -----------------------------------------------------------------------

router = APIRouter(include_in_schema=False)


@router.get(LOGIN_PATH)
async def login(request: Request, token: str = "") -> Response:
    """Redeem a one-time login link: set the session cookie and go to the cockpit."""
    auth = get_authenticator(request)
    principal = auth.redeem_login_token(token) if token else None
    if principal is None:
        log.info("auth.login.refused")
        return HTMLResponse(
            "<!doctype html><title>Login link not valid</title><main><h1>Login link not valid</h1>"
            "<p>This login link is unknown, expired or was already used. Restart "
            "<code>studio-brain serve</code> or ask for a new link.</p></main>",
            status_code=401,
        )
    log.info("auth.login.accepted", actor_id=principal.actor_id)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        auth.new_session(principal),
        max_age=auth.settings.session_minutes * 60,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse(LOGIN_PATH + "/signed-out", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get(LOGIN_PATH + "/signed-out")
async def signed_out() -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><title>Signed out</title><main><h1>Signed out</h1>"
        "<p>Open a new login link to use the cockpit again.</p></main>"
    )


__all__ = [
    "ADMIN_TOKEN_HEADER",
    "AGENT_TOKEN_PREFIX",
    "SESSION_COOKIE",
    "Authenticator",
    "current_principal_or_none",
    "local_admin",
    "require_admin",
    "require_principal",
    "require_scope",
    "require_staff",
]
