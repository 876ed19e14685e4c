"""Who is calling: credentials → a verified Principal, and the FastAPI dependencies that demand one.

Credentials, in order of precedence:

* ``authorization: Bearer sbat_…`` — an agent token, verified by the capability gateway;
* ``authorization: Bearer sbpt_…`` — a person's personal API token (CLI, scripts);
* ``authorization: Bearer <JWT>`` — a Firebase ID token (signature, issuer, audience, expiry); when the
  uid is linked to a staff account, the caller *is* that person;
* ``x-studio-brain-admin-token`` — the local admin token: the **break-glass** credential, not a person
  (read, create the first owner, invite, kill switch ON; never approve). Sent together with a Bearer token
  (as the Portal does), it must still be valid, and the Bearer identity is the actor;
* the cockpit session cookie: a random id whose MAC names a server-side session (passkey sign-in, or a
  break-glass login link). Logout, staff removal and ``studio-brain sessions revoke`` end it at once.

A presented credential that fails is a 401 — never a silent fall-through to a weaker one. Roles are
checked by the dependencies (403). The tenant always comes from configuration, never from the request.
"""

from __future__ import annotations

import hmac
import inspect
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol, TypeVar

from fastapi import Request, Security
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPBearer
from pydantic import SecretStr

from studio_brain.adapters.admin_token import load_or_create_admin_token
from studio_brain.adapters.firebase_auth import FirebaseTokenVerifier
from studio_brain.adapters.firebase_emulator import checked_emulator_host, token_verifier
from studio_brain.bootstrap import Brain
from studio_brain.domain.caller_ids import scoped_id
from studio_brain.domain.credentials import PERSONAL_TOKEN_PREFIX
from studio_brain.domain.errors import (
    PermissionDenied,
    ReasonCode,
    Unauthenticated,
)
from studio_brain.domain.identity import AuthMethod, Principal, break_glass_principal
from studio_brain.logging import get_logger
from studio_brain.services.identity import IdentityService
from studio_brain.settings import Settings
from studio_brain.web.refusals import refusals_for

log = get_logger(__name__)

ADMIN_TOKEN_HEADER = "x-studio-brain-admin-token"  # noqa: S105 - a header name
SESSION_COOKIE = "studio_brain_session"
#: agent tokens minted by the capability gateway start with this; anything else after Bearer is a JWT
AGENT_TOKEN_PREFIX = "sbat_"  # noqa: S105 - a prefix, not a token
LOCAL_ADMIN_ID = "local-admin"
LOGIN_PATH = "/login"


class AgentTokenVerifier(Protocol):
    """What the capability gateway offers for agent tokens (``services/gateway``)."""

    def verify_agent_token(self, raw: str) -> Principal | Awaitable[Principal | None] | None: ...


def local_admin(tenant_id: str, *, via: AuthMethod = AuthMethod.ADMIN_TOKEN) -> Principal:
    """The holder of the local admin token: the break-glass credential (never a person, never an approver)."""
    return break_glass_principal(tenant_id, via=via)


@dataclass(kw_only=True)
class Authenticator:
    """Turns a request's credentials into a Principal. One per app, built from the Brain."""

    settings: Settings
    firebase: FirebaseTokenVerifier
    identity: IdentityService
    agents: AgentTokenVerifier | None = None
    _admin_token: SecretStr | None = None

    def __repr__(self) -> str:
        return f"Authenticator(tenant_id={self.settings.tenant_id!r})"

    @classmethod
    def for_brain(cls, brain: Brain) -> Authenticator:
        settings = brain.settings
        # issue 21: the Auth emulator's unsigned tokens, only when asked for, on loopback, with the
        # emulator's variable set (ConfigError otherwise: the brain does not start)
        emulator_host = checked_emulator_host(
            enabled=settings.firebase_auth_emulator, host=settings.host, environ=os.environ
        )
        return cls(
            settings=settings,
            firebase=token_verifier(
                emulator_host=emulator_host,
                project_id=settings.firebase_project_id or settings.firestore_project_id,
                tenant_id=settings.tenant_id,
                clock=brain.clock,
                certs_file=settings.firebase_certs_file,
            ),
            identity=brain.identity,
            agents=brain.gateway,
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

    async def authenticate(self, request: Request) -> Principal | None:
        """The request's verified Principal; None without credentials; Unauthenticated for bad ones."""
        bearer = _bearer(request.headers.get("authorization"))
        admin_header = request.headers.get(ADMIN_TOKEN_HEADER)
        if admin_header is not None and not admin_header.strip():
            # the Portal's Reports and older module send the header even when staff typed no token
            # (issue 21): an empty value is no admin token, not a wrong one
            admin_header = None
        if admin_header is not None and not self.is_admin_token(admin_header):
            raise Unauthenticated(
                "the admin token is not valid", reason_code=ReasonCode.AUTH_ADMIN_TOKEN_INVALID
            )
        if bearer is not None:
            if bearer.startswith(AGENT_TOKEN_PREFIX):
                return await self._agent(bearer)
            if bearer.startswith(PERSONAL_TOKEN_PREFIX):
                return await self._personal(bearer)
            return await self.identity.firebase_principal(await self.firebase.verify(bearer))
        if admin_header is not None:
            return local_admin(self.tenant_id)
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            principal = await self.identity.credentials.principal_for_session(cookie)
            if principal is None:
                raise Unauthenticated(
                    "the cockpit session ended or is not valid; sign in again",
                    reason_code=ReasonCode.AUTH_SESSION_INVALID,
                )
            _refuse_cross_origin(request)
            return principal
        return None

    def is_admin_token(self, presented: str) -> bool:
        expected = self.admin_token.get_secret_value().encode()
        return hmac.compare_digest(expected, presented.strip().encode())

    async def _personal(self, raw: str) -> Principal:
        principal = await self.identity.credentials.verify_token(raw)
        if principal is None:
            raise Unauthenticated(
                "the personal token is unknown, revoked or expired (or its person was removed)",
                reason_code=ReasonCode.AUTH_TOKEN_INVALID,
            )
        return principal

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

    # one-time break-glass login links ----------------------------------------------------------------

    async def login_url(self, base_url: str | None = None) -> str:
        """A new one-time, minutes-long break-glass link (persisted: single use across restarts)."""
        raw = await self.identity.credentials.issue_login_link(local_admin(self.tenant_id))
        return f"{(base_url or self.settings.cockpit_url).rstrip('/')}{LOGIN_PATH}?token={raw}"


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
_bearer_scheme = HTTPBearer(
    auto_error=False, description="Firebase ID token, a personal token (sbpt_…) or an agent token (sbat_…)"
)
_admin_scheme = APIKeyHeader(name=ADMIN_TOKEN_HEADER, auto_error=False, description="The local admin token")
_session_scheme = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="Cockpit session cookie")


#: the three schemes above as the OpenAPI document's ``components.securitySchemes`` (name → model) and
#: an operation's ``security`` (any one of them), what FastAPI wrote for them when they were parameters
OPENAPI_SECURITY_SCHEMES: dict[str, Any] = {
    scheme.scheme_name: scheme.model for scheme in (_bearer_scheme, _admin_scheme, _session_scheme)
}
OPENAPI_SECURITY: list[dict[str, list[str]]] = [{name: []} for name in OPENAPI_SECURITY_SCHEMES]
#: the dependencies below that authenticate without FastAPI's Security() parameters (see ``authenticating``)
AUTHENTICATING: set[Callable[..., Any]] = set()

_Dependency = TypeVar("_Dependency", bound=Callable[..., Any])


def authenticating(dependency: _Dependency) -> _Dependency:
    """Mark ``dependency`` as one that authenticates from the request alone (issue 18).

    FastAPI solves every declared dependency on every request, and the three Security() schemes plus a
    chain of ``Depends`` levels cost more than the checks themselves (bench/api_load.py profiles), so
    the routes' auth dependencies take only the request and call :func:`principal_or_none` directly. The
    OpenAPI document still names the three ways to authenticate for every operation that uses one
    (``web/app.py`` adds :data:`OPENAPI_SECURITY` to it: the schemes are no longer in the dependency tree)."""
    AUTHENTICATING.add(dependency)
    return dependency


async def principal_or_none(request: Request) -> Principal | None:
    """The caller, or None when no credential was sent; verified once per request (kept on its state)."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    principal = await get_authenticator(request).authenticate(request)
    if principal is not None:
        request.state.principal = principal
        if getattr(request.state, "request_id_supplied", False):
            # a caller's own x-request-id lives in its namespace: it cannot join another caller's timeline
            request.state.request_id = scoped_id(principal, request.state.request_id)
            request.state.request_id_supplied = False
    return principal


async def current_principal_or_none(
    request: Request,
    _bearer: object = Security(_bearer_scheme),
    _admin: object = Security(_admin_scheme),
    _session: object = Security(_session_scheme),
) -> Principal | None:
    """The caller, or None when no credential was sent (pages use this to show a login hint)."""
    return await principal_or_none(request)


@authenticating
async def require_principal(request: Request) -> Principal:
    """Any authenticated caller (staff, admin, agent, signed-in human). 401 without credentials."""
    principal = await principal_or_none(request)
    if principal is None:
        raise Unauthenticated(
            "authentication required: send 'authorization: Bearer <token>', the admin token header, "
            "or sign in to the cockpit with your passkey",
            reason_code=ReasonCode.AUTH_REQUIRED,
        )
    return principal


async def refuse(request: Request, principal: Principal, message: str, reason_code: ReasonCode) -> NoReturn:
    """Audit a verified caller's refused request (``http.request.refused``), then raise the 403.

    Only verified identities are audited: an anonymous or forged request has no actor to name (it is
    logged), and auditing it would let anyone fill the log.
    """
    # one row per caller and window, not one per request: refusals cannot flood the log (web/refusals.py)
    await refusals_for(request.app).record(
        principal,
        reason_code=reason_code,
        message=message,
        method=request.method,
        path=request.url.path,
        request_id=getattr(request.state, "request_id", None) or "unknown",
        metadata={"credential": principal.credential()},
    )
    log.info("auth.refused", actor_id=principal.actor_id, reason_code=reason_code, path=request.url.path)
    raise PermissionDenied(message, reason_code=reason_code)


@authenticating
async def require_staff(request: Request) -> Principal:
    """Studio staff or admin (Firebase claim, admin token, or cockpit session). 401 without credentials;
    403 (audited) otherwise."""
    principal = await require_principal(request)
    if not principal.is_staff:
        await refuse(request, principal, "this needs a staff account", ReasonCode.STAFF_REQUIRED)
    return principal


@authenticating
async def require_admin(request: Request) -> Principal:
    """An admin (claim ``admin``/``roles`` ∋ admin, or the local admin token). 403 (audited) otherwise."""
    principal = await require_principal(request)
    if not principal.is_admin:
        await refuse(request, principal, "this needs an admin account", ReasonCode.ADMIN_REQUIRED)
    return principal


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """Staff always; agents only with ``scope`` (e.g. ``state:read``); other humans 403 (audited)."""

    @authenticating
    async def dependency(request: Request) -> Principal:
        principal = await require_principal(request)
        if principal.is_staff or (principal.is_agent and principal.has_scope(scope)):
            return principal
        await refuse(
            request, principal, f"this needs staff or the agent scope {scope!r}", ReasonCode.SCOPE_REQUIRED
        )

    return dependency


__all__ = [
    "ADMIN_TOKEN_HEADER",
    "AGENT_TOKEN_PREFIX",
    "AUTHENTICATING",
    "OPENAPI_SECURITY",
    "OPENAPI_SECURITY_SCHEMES",
    "SESSION_COOKIE",
    "Authenticator",
    "authenticating",
    "current_principal_or_none",
    "local_admin",
    "principal_or_none",
    "refuse",
    "require_admin",
    "require_principal",
    "require_scope",
    "require_staff",
]
