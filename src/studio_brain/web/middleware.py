"""Request safety around every route: request ids, security headers, Host allow-list, CORS allow-list,
body size limit, and the input guard (unstorable text, out-of-range numbers, credential shapes).

Plain ASGI middleware (no BaseHTTPMiddleware) so streaming bodies and downloads pass through untouched.
Order, outermost first: request context (id + headers) → Host allow-list → CORS → body limit → input
guard → routes. The guard is the one place caller input is checked before any route sees it, so every
endpoint — API, Portal paths, cockpit forms — refuses the same things with the same 400.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import structlog
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from studio_brain.domain.caller_ids import scoped_id
from studio_brain.domain.errors import StudioBrainError
from studio_brain.domain.identity import Principal
from studio_brain.domain.reasons import ReasonCode
from studio_brain.domain.secrets import BODY_ANCHORS, contains_secret, describe, scan
from studio_brain.domain.text import text_problem, value_problem
from studio_brain.logging import get_logger
from studio_brain.settings import Settings
from studio_brain.web.refusals import refusals_for
from studio_brain.web.retry import ReadRetryMiddleware

log = get_logger(__name__)

REQUEST_ID_HEADER = "x-request-id"
#: an incoming id is kept only if it is this shape (it ends up in logs and audit rows)
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        b"frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
)

CORS_ALLOWED_HEADERS = ["authorization", "content-type", "x-studio-brain-admin-token", REQUEST_ID_HEADER]


def new_request_id() -> str:
    return secrets.token_hex(12)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


class RequestContextMiddleware:
    """Echo a safe ``x-request-id`` (or make one), bind it to logs, expose it to routes as
    ``request.state.request_id`` (services carry it into audit rows), and add security headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, REQUEST_ID_HEADER.encode())
        # never adopt (and so echo) an id shaped like a credential: the input guard refuses the request
        supplied = (
            incoming is not None
            and _SAFE_REQUEST_ID.match(incoming) is not None
            and not contains_secret(incoming)
        )
        request_id = incoming if supplied and incoming is not None else new_request_id()
        state: MutableMapping[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        # a caller's own id is scoped to the caller once they are verified (web/auth.py, domain/caller_ids)
        state["request_id_supplied"] = supplied
        path: str = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != REQUEST_ID_HEADER.encode()
                ]
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                present = {k.lower() for k, _ in headers}
                headers.extend((k, v) for k, v in SECURITY_HEADERS if k not in present)
                if path.startswith("/api/") and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self.app(scope, receive, send_with_headers)


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413 — by Content-Length up front, or while streaming."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                await _json(send, 400, "the Content-Length header is not a number", "INPUT_INVALID")
                return
            if too_big:
                await _json(send, 413, self._message(), "BODY_TOO_LARGE")
                return

        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not response_started:
                await _json(send, 413, self._message(), "BODY_TOO_LARGE")

    def _message(self) -> str:
        return f"the request body is larger than the limit of {self.max_bytes} bytes"


class _BodyTooLarge(Exception):
    """Raised inside receive() to unwind the route when a streamed body passes the limit."""


async def _json(send: Send, status: int, message: str, reason_code: str) -> None:
    body = json.dumps({"ok": False, "message": message, "reasonCode": reason_code}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


# --- Host allow-list (DNS rebinding) ----------------------------------------------------------------

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_ANY_ADDRESS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - names, not a bind


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """Loopback names, the configured bind host and the public URL's host, and ``allowed_hosts``."""
    from urllib.parse import urlsplit

    names = set(LOOPBACK_HOSTS)
    if settings.host not in _ANY_ADDRESS:
        names.add(settings.host.lower())
    public = urlsplit(settings.cockpit_url).hostname
    if public:
        names.add(public.lower())
    names.update(h.lower().strip("[]") for h in settings.allowed_hosts)
    return frozenset(names)


def host_name(header: str) -> str:
    """The name part of a Host header (no port; IPv6 without brackets), lower-cased."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class HostAllowListMiddleware:
    """400 for a Host header naming another host: a page on an attacker's domain that re-points its DNS
    at 127.0.0.1 (DNS rebinding) would otherwise talk to the brain as a same-origin page."""

    def __init__(self, app: ASGIApp, *, hosts: Iterable[str]) -> None:
        self.app = app
        self.hosts = frozenset(hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = _header(scope, b"host")
        if header is not None and host_name(header) not in self.hosts and "*" not in self.hosts:
            log.warning("http.host.refused", host=header[:200], path=scope.get("path", ""))
            await _json(
                send,
                400,
                "this Host is not one this brain answers to; add it to STUDIO_BRAIN_ALLOWED_HOSTS",
                ReasonCode.HOST_NOT_ALLOWED.value,
            )
            return
        await self.app(scope, receive, send)


# --- input guard -------------------------------------------------------------------------------------

#: headers carrying caller-chosen ids that end up in audit rows
SCANNED_HEADERS = (b"x-request-id", b"idempotency-key", b"x-correlation-id")
#: paths whose *query* legitimately carries a credential (the one-time login link); NULs are still refused
SECRET_SCAN_EXEMPT_PATHS = frozenset({"/login"})
#: passkey ceremonies: their bodies are long base64url WebAuthn blobs a credential shape could match by
#: chance (``AIza…`` inside an attestation object); NULs, surrogates and huge numbers are still refused
CEREMONY_PATHS = frozenset(
    {
        "/login/passkey/begin",
        "/login/passkey/finish",
        "/enrol/begin",
        "/enrol/finish",
        "/account/passkeys/begin",
        "/account/passkeys/finish",
    }
)
#: paths whose *body* is checked by their own layer, which answers in its own protocol: MCP tool calls
#: are scanned by the agent desk and refused as MCP tool errors with the same reason codes (issue 16)
BODY_CHECKED_BY_ROUTE = frozenset({"/mcp"})


class InputRefused(Exception):
    """Raised inside the guard: the request is refused with ``reason_code`` and a message."""

    def __init__(self, reason_code: ReasonCode, message: str) -> None:
        super().__init__(message)
        self.reason_code = reason_code
        self.message = message


def check_text(value: str, *, location: str, secrets_allowed: bool = False) -> None:
    """Refuse unstorable text and credential shapes in one caller-supplied string."""
    problem = text_problem(value)
    if problem:
        raise InputRefused(ReasonCode.INPUT_TEXT_INVALID, f"{location} {problem}")
    if not secrets_allowed:
        findings = scan(value, location=location)
        if findings:
            raise InputRefused(ReasonCode.SECRET_IN_PAYLOAD, describe(findings))


def check_value(value: Any, *, location: str, secrets_allowed: bool = False) -> None:
    """Refuse unstorable text, out-of-range numbers and credential shapes anywhere in a JSON value."""
    problem = value_problem(value, location=location)
    if problem:
        reason = ReasonCode.INPUT_OUT_OF_RANGE if "number" in problem else ReasonCode.INPUT_TEXT_INVALID
        raise InputRefused(reason, problem)
    findings = [] if secrets_allowed else scan(value, location=location)
    if findings:
        raise InputRefused(ReasonCode.SECRET_IN_PAYLOAD, describe(findings))


def _check_request_line(scope: Scope) -> None:
    path: str = scope.get("path", "")
    exempt = path in SECRET_SCAN_EXEMPT_PATHS
    check_text(path, location="the path")
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        check_text(name, location="a query parameter name")
        check_text(value, location=f"query parameter {name[:64]!r}", secrets_allowed=exempt)
    for key, raw in scope.get("headers", ()):
        if key in SCANNED_HEADERS:
            check_text(raw.decode("latin-1"), location=f"header {key.decode()}")


#: raw JSON that may decode to unstorable text or an out-of-range number: NUL bytes, ``\u`` escapes (NUL and
#: surrogates arrive as ``\u0000``/``\ud800``), 16+ digit runs, exponents of 3 digits, NaN and Infinity
_BODY_SUSPECT = re.compile(rb"\x00|\\u|\d{16,}|[eE][+-]?\d{3}|NaN|Infinity|" + BODY_ANCHORS.pattern)


def _check_body(content_type: str, body: bytes, *, secrets_allowed: bool = False) -> None:
    if not body:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        if not _BODY_SUSPECT.search(body):
            return  # nothing in these bytes can decode to a NUL, a surrogate, a huge number or a secret
        try:
            value = json.loads(body)
        except ValueError:
            return  # the route answers malformed JSON with its own 400
        check_value(value, location="body", secrets_allowed=secrets_allowed)
    elif media == "application/x-www-form-urlencoded":
        text = body.decode("utf-8", errors="replace")
        for name, value in parse_qsl(text, keep_blank_values=True):
            check_text(name, location="a form field name")
            check_text(value, location=f"form field {name[:64]!r}", secrets_allowed=secrets_allowed)
    elif media.startswith("text/"):
        check_text(body.decode("utf-8", errors="replace"), location="body", secrets_allowed=secrets_allowed)


class InputGuardMiddleware:
    """Refuse, before any route: NUL or unpaired surrogates in the path, a query parameter, an id header
    or any JSON/form string; integers beyond ±2^53 and non-finite numbers; credential shapes (Stripe,
    Google, PEM keys, JWTs, bearer and agent tokens — :mod:`studio_brain.domain.secrets`). Each is a 400
    with a reason code (``INPUT_TEXT_INVALID``, ``INPUT_OUT_OF_RANGE``, ``SECRET_IN_PAYLOAD``) and a
    message naming where — never the value. A verified caller's refusal is audited (aggregated,
    sanitised: :mod:`studio_brain.web.refusals`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            _check_request_line(scope)
        except InputRefused as refused:
            await _refuse_input(scope, send, refused)
            return
        if (
            scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE")
            or scope.get("path") in BODY_CHECKED_BY_ROUTE
        ):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body = b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        try:
            _check_body(
                _header(scope, b"content-type") or "",
                body,
                secrets_allowed=scope.get("path", "") in CEREMONY_PATHS,
            )
        except InputRefused as refused:
            await _refuse_input(scope, send, refused)
            return

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)


async def _refuse_input(scope: Scope, send: Send, refused: InputRefused) -> None:
    request = Request(scope)
    request_id = str(scope.get("state", {}).get("request_id") or "unknown")
    principal = await _verified_caller(request)
    log.info(
        "http.input.refused",
        reason_code=refused.reason_code,
        path=request.url.path,
        actor_id=principal.actor_id if principal else None,
    )
    if principal is not None and "app" in scope:
        audited_id = request_id
        if scope.get("state", {}).get("request_id_supplied"):
            audited_id = scoped_id(principal, request_id)  # never joins another caller's timeline
        await refusals_for(request.app).record(
            principal,
            reason_code=refused.reason_code,
            message=refused.message,
            method=request.method,
            path=request.url.path,
            request_id=audited_id,
        )
    body = json.dumps(
        {
            "ok": False,
            "message": refused.message,
            "reasonCode": refused.reason_code.value,
            "requestId": request_id,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _verified_caller(request: Request) -> Principal | None:
    """The request's verified caller, or None (anonymous, or credentials that fail): only they are audited."""
    auth = getattr(request.app.state, "auth", None) if "app" in request.scope else None
    if auth is None:
        return None
    try:
        principal = await auth.authenticate(request)
    except StudioBrainError:
        return None
    return principal if isinstance(principal, Principal) else None


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """Add the safety middleware to ``app`` (added innermost first)."""
    app.add_middleware(ReadRetryMiddleware)  # issue 13: innermost, so a retried read keeps its request id
    app.add_middleware(InputGuardMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=CORS_ALLOWED_HEADERS,
        expose_headers=[REQUEST_ID_HEADER],
        allow_credentials=False,
        max_age=600,
    )
    app.add_middleware(HostAllowListMiddleware, hosts=allowed_hosts(settings))
    app.add_middleware(RequestContextMiddleware)
