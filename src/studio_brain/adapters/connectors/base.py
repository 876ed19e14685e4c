"""Shared machinery of HTTP device connectors: deadlines, per-attempt timeouts, read-only retries, the
breaker, full-match path allowlists, error translation by type and status, hashing, secret hygiene.

A concrete connector (Hubitat, Home Assistant) subclasses :class:`HttpConnector` and supplies: its path
allowlists, how it authenticates a request, how it reads (``_read``), how it turns a write command into
one request (``_write_request``) and the health probe. Everything that must be the same for every
connector — the order of safety checks, the taxonomy, the hashes — lives here, once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx
import stamina

from studio_brain.adapters.connectors.breaker import CircuitBreaker
from studio_brain.domain.connectors import (
    BreakerState,
    ConnectorCommand,
    ConnectorContext,
    ConnectorHealth,
    ConnectorMode,
    ConnectorResponse,
    DryRunSupport,
    ErrorKind,
    HealthStatus,
    WriteAllowlist,
    classify_health,
    connector_error,
    error_kind,
)
from studio_brain.domain.errors import Conflict, ConnectorError
from studio_brain.domain.hashing import sha256_hex
from studio_brain.logging import get_logger, redact_text
from studio_brain.ports import Clock

log = get_logger(__name__)


class _RedactHttpxRecords(logging.Filter):
    """httpx logs every request URL at INFO, and the Hubitat token travels in the URL: whatever level
    someone sets on these loggers, the record is redacted before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # pragma: no cover - a malformed foreign record
            message = str(record.msg)
        record.msg = redact_text(message)
        record.args = ()
        return True


_HTTPX_FILTER = _RedactHttpxRecords()
for _name in ("httpx", "httpcore"):
    _logger = logging.getLogger(_name)
    if _HTTPX_FILTER not in _logger.filters:
        _logger.addFilter(_HTTPX_FILTER)


class HtmlJson(StrEnum):
    """What a connector does with a JSON body served as ``text/html`` (documented per connector)."""

    #: parse it (Hubitat serves real JSON as text/html on some firmware)
    PARSE = "parse"
    #: refuse it as BAD_RESPONSE (an HTML page where an API answer was expected: a proxy, a login page)
    REFUSE = "refuse"


@dataclass(frozen=True, kw_only=True, slots=True)
class HttpPolicy:
    """Timeouts, retries and thresholds of one connector (from settings)."""

    #: the most one HTTP attempt may take (also capped by the remaining deadline)
    attempt_timeout_seconds: float = 3.0
    connect_timeout_seconds: float = 2.0
    #: attempts for a read (writes are never retried)
    read_attempts: int = 3
    retry_wait_initial_seconds: float = 0.1
    retry_wait_max_seconds: float = 1.0
    #: a health probe slower than this is ``degraded``
    degraded_after_ms: float = 1500.0
    #: a CA bundle that pins a self-signed hub certificate; never a blanket ``verify=False``
    ca_file: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class HttpRequest:
    method: str
    #: relative to the connector's base URL, without query string; checked against the allowlist
    path: str
    params: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None

    def describe(self) -> dict[str, Any]:
        """What a dry run reports and what logs show: no credentials are ever part of it."""
        return {"method": self.method, "path": self.path, "params": self.params, "body": self.body}


class HttpConnector:
    """Base of HTTP device connectors. Subclasses set the class attributes and implement the hooks."""

    read_paths: tuple[re.Pattern[str], ...] = ()
    write_paths: tuple[re.Pattern[str], ...] = ()
    html_json: HtmlJson = HtmlJson.REFUSE
    dry_run_support: DryRunSupport = DryRunSupport.SIMULATED
    version: str = "1"
    _IDEMPOTENCY_MEMORY = 256

    def __init__(
        self,
        *,
        connector_id: str,
        target: str,
        base_url: str,
        mode: ConnectorMode,
        allowlist: WriteAllowlist,
        clock: Clock,
        breaker: CircuitBreaker,
        policy: HttpPolicy,
    ) -> None:
        self._id = connector_id
        self._target = target
        self._base_url = base_url.rstrip("/") + "/"
        self._mode = mode
        self._allowlist = allowlist
        self._clock = clock
        self._breaker = breaker
        self._policy = policy
        # built once: creating an SSL context per call costs more than a loopback round trip
        self._verify = ssl.create_default_context(cafile=policy.ca_file)
        self._done: OrderedDict[str, ConnectorResponse] = OrderedDict()
        self._log = log.bind(connector=connector_id)

    # --- identity --------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self._id

    @property
    def target(self) -> str:
        return self._target

    @property
    def mode(self) -> ConnectorMode:
        return self._mode

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    @property
    def allowlist(self) -> WriteAllowlist:
        return self._allowlist

    def __repr__(self) -> str:
        # never the credentials: only what identifies the connector
        return f"<{type(self).__name__} id={self._id!r} base_url={self._base_url!r} mode={self._mode.value}>"

    # --- hooks for subclasses ----------------------------------------------------------------------
    def _authorise(self, request: HttpRequest) -> tuple[dict[str, str], dict[str, str]]:
        """Extra (query params, headers) carrying the credential. Never logged, never hashed."""
        raise NotImplementedError

    def _health_request(self) -> HttpRequest:
        raise NotImplementedError

    async def _read(self, ctx: ConnectorContext, input: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _write_request(self, command: ConnectorCommand) -> HttpRequest:
        """One request for an allowlisted write; raise NOT_ALLOWED (or InputInvalid) otherwise."""
        raise NotImplementedError

    def _write_result(self, command: ConnectorCommand, payload: Any) -> dict[str, Any]:
        return {"ok": True, "result": payload}

    def _check_payload(self, payload: Any, request: HttpRequest) -> None:
        """Raise BAD_RESPONSE when a 200 answer is really a failure (e.g. Hubitat ``{"error": true}``)."""

    # --- the protocol ------------------------------------------------------------------------------
    async def health(self, ctx: ConnectorContext) -> ConnectorHealth:
        checked_at = self._clock.now()
        snapshot = self._breaker.snapshot()
        if snapshot.state is BreakerState.OPEN:
            return ConnectorHealth(
                connector_id=self._id,
                status=HealthStatus.DOWN,
                request_id=ctx.request_id,
                checked_at=checked_at,
                breaker=BreakerState.OPEN,
                detail=f"circuit open; next trial in {snapshot.retry_in_seconds:.1f}s",
                error_kind=ErrorKind.CIRCUIT_OPEN,
                mode=self._mode,
            )
        started = time.perf_counter()
        try:
            await self._call(ctx, self._health_request(), write=False, retry=False)
        except ConnectorError as err:
            return ConnectorHealth(
                connector_id=self._id,
                status=HealthStatus.DOWN,
                request_id=ctx.request_id,
                checked_at=checked_at,
                latency_ms=(time.perf_counter() - started) * 1000.0,
                breaker=self._breaker.state,
                detail=err.message,
                error_kind=error_kind(err),
                mode=self._mode,
            )
        latency_ms = (time.perf_counter() - started) * 1000.0
        breaker = self._breaker.state
        return ConnectorHealth(
            connector_id=self._id,
            status=classify_health(
                latency_ms=latency_ms, degraded_after_ms=self._policy.degraded_after_ms, breaker=breaker
            ),
            request_id=ctx.request_id,
            checked_at=checked_at,
            latency_ms=latency_ms,
            breaker=breaker,
            detail="slow answer" if latency_ms > self._policy.degraded_after_ms else "",
            mode=self._mode,
        )

    async def read_status(self, ctx: ConnectorContext, input: dict[str, Any]) -> ConnectorResponse:
        started = time.perf_counter()
        data = await self._read(ctx, dict(input))
        return self._respond(ctx, input, data, started=started)

    async def execute(self, ctx: ConnectorContext, command: ConnectorCommand) -> ConnectorResponse:
        started = time.perf_counter()
        if not command.write:
            # a parametrised read: the command's own fields win over anything of the same name in args
            read_input: dict[str, Any] = {**command.args, "action": command.action}
            if command.device_id is not None:
                read_input["deviceId"] = command.device_id
            data = await self._read(ctx, read_input)
            return self._respond(ctx, command.as_input(), data, started=started)
        # Safety order matters: read-only first, before anything is parsed or sent.
        if self._mode is not ConnectorMode.READ_WRITE:
            self._log.warning(
                "connector.write.refused", reason=ErrorKind.READ_ONLY_VIOLATION.value, action=command.action
            )
            raise connector_error(
                ErrorKind.READ_ONLY_VIOLATION,
                f"{self._id} is read-only; {command.action} was not sent "
                f"(set STUDIO_BRAIN_{self._id.upper()}_MODE=read_write to allow approved writes)",
            )
        request = self._write_request(command)
        self._require_path(request.path, write=True)
        if ctx.idempotency_key is not None and ctx.idempotency_key in self._done:
            done = self._done[ctx.idempotency_key]
            if done.input_hash != self._input_hash(command.as_input()):
                raise Conflict(
                    f"{self._id}: idempotency key reused for a different command; nothing was sent"
                )
            self._log.info("connector.write.replayed", action=command.action, request_id=ctx.request_id)
            return done
        if ctx.dry_run:
            data = {"dryRun": True, "wouldSend": request.describe()}
            return self._respond(ctx, command.as_input(), data, started=started, dry_run=True)
        payload = await self._call(ctx, request, write=True, retry=False)
        response = self._respond(
            ctx, command.as_input(), self._write_result(command, payload), started=started
        )
        self._log.info(
            "connector.write.sent", action=command.action, path=request.path, request_id=ctx.request_id
        )
        if ctx.idempotency_key is not None:
            self._done[ctx.idempotency_key] = response
            while len(self._done) > self._IDEMPOTENCY_MEMORY:
                self._done.popitem(last=False)
        return response

    # --- machinery -----------------------------------------------------------------------------------
    def _respond(
        self,
        ctx: ConnectorContext,
        input: dict[str, Any],
        data: dict[str, Any],
        *,
        started: float,
        dry_run: bool = False,
    ) -> ConnectorResponse:
        return ConnectorResponse(
            request_id=ctx.request_id,
            input_hash=self._input_hash(input),
            output_hash=sha256_hex(data),
            data=data,
            dry_run=dry_run,
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )

    def _input_hash(self, input: dict[str, Any]) -> str:
        return sha256_hex({"connector": self._id, "input": input})

    def _require_path(self, path: str, *, write: bool) -> None:
        patterns = self.write_paths if write else self.read_paths
        if not any(p.fullmatch(path) for p in patterns):
            self._log.warning("connector.path.refused", path=path, write=write)
            raise connector_error(
                ErrorKind.NOT_ALLOWED,
                f"{self._id}: {'write' if write else 'read'} path {path!r} is not on the allowlist",
            )

    async def _get_json(self, ctx: ConnectorContext, path: str, params: dict[str, str] | None = None) -> Any:
        """A read through the allowlist, breaker, retries and deadline."""
        return await self._call(ctx, HttpRequest(method="GET", path=path, params=params or {}), write=False)

    async def _call(
        self, ctx: ConnectorContext, request: HttpRequest, *, write: bool, retry: bool = True
    ) -> Any:
        self._require_path(request.path, write=write)
        deadline = time.monotonic() + ctx.timeout_seconds
        self._breaker.before_call()
        try:
            if write or not retry or self._policy.read_attempts <= 1:
                payload = await self._attempt(ctx, request, deadline)
            else:
                payload = await self._with_retries(ctx, request, deadline)
        except ConnectorError as err:
            self._breaker.record_failure(error_kind(err))
            raise
        except BaseException:
            self._breaker.release_trial()
            raise
        self._breaker.record_success()
        return payload

    async def _with_retries(self, ctx: ConnectorContext, request: HttpRequest, deadline: float) -> Any:
        def retryable(exc: Exception) -> bool:
            return isinstance(exc, ConnectorError) and exc.retryable and deadline - time.monotonic() > 0.01

        async for attempt in stamina.retry_context(
            on=retryable,
            attempts=self._policy.read_attempts,
            timeout=max(0.0, deadline - time.monotonic()),
            wait_initial=self._policy.retry_wait_initial_seconds,
            wait_max=self._policy.retry_wait_max_seconds,
            wait_jitter=self._policy.retry_wait_initial_seconds,
        ):
            with attempt:
                if attempt.num > 1:
                    self._log.info("connector.read.retry", path=request.path, attempt=attempt.num)
                return await self._attempt(ctx, request, deadline)
        raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover

    async def _attempt(self, ctx: ConnectorContext, request: HttpRequest, deadline: float) -> Any:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise connector_error(
                ErrorKind.TIMEOUT,
                f"{self._id}: the {ctx.timeout_seconds:.2f}s budget ran out before {request.path}",
                sent=False,
            )
        per_attempt = min(self._policy.attempt_timeout_seconds, remaining)
        params, headers = self._authorise(request)
        if ctx.idempotency_key is not None and request.method != "GET":
            headers = {**headers, "Idempotency-Key": ctx.idempotency_key}
        started = time.perf_counter()
        try:
            async with asyncio.timeout(per_attempt):
                response = await self._send(request, params=params, headers=headers, seconds=per_attempt)
        except (httpx.ConnectError, httpx.ConnectTimeout) as err:
            # issue 13: nothing reached the device, so even a write provably did not act
            self._log.info("connector.request.failed", path=request.path, error=type(err).__name__)
            raise connector_error(
                ErrorKind.UNAVAILABLE,
                f"{self._id}: {request.method} {request.path} could not connect ({type(err).__name__})",
                sent=False,
            ) from err
        except TimeoutError as err:
            raise self._timeout(request, per_attempt) from err
        except httpx.TimeoutException as err:
            raise self._timeout(request, per_attempt) from err
        except (httpx.NetworkError, httpx.RemoteProtocolError) as err:
            self._log.info("connector.request.failed", path=request.path, error=type(err).__name__)
            raise connector_error(
                ErrorKind.UNAVAILABLE,
                f"{self._id}: {request.method} {request.path} failed ({type(err).__name__})",
            ) from err
        except httpx.HTTPError as err:
            raise connector_error(
                ErrorKind.UNKNOWN,
                f"{self._id}: {request.method} {request.path} failed ({type(err).__name__})",
            ) from err
        latency_ms = (time.perf_counter() - started) * 1000.0
        self._log.debug(
            "connector.request",
            path=request.path,
            method=request.method,
            status=response.status_code,
            latency_ms=round(latency_ms, 2),
        )
        try:
            payload = self._decode(request, response)
            self._check_payload(payload, request)
        except ConnectorError as err:
            err.sent = True  # the device answered: it received the request (and a write may have acted)
            raise
        return payload

    async def _send(
        self, request: HttpRequest, *, params: dict[str, str], headers: dict[str, str], seconds: float
    ) -> httpx.Response:
        # One short-lived client per call: no pooled connection outlives a hub restart, and connectors
        # need no lifecycle of their own (device calls are rare; loopback/LAN connects are cheap).
        async with httpx.AsyncClient(
            base_url=self._base_url,
            timeout=httpx.Timeout(seconds, connect=min(seconds, self._policy.connect_timeout_seconds)),
            verify=self._verify,
            follow_redirects=False,
            trust_env=False,
        ) as client:
            return await client.request(
                request.method,
                request.path,
                params={**request.params, **params},
                headers=headers,
                json=request.body,
            )

    def _timeout(self, request: HttpRequest, seconds: float) -> ConnectorError:
        self._log.info("connector.request.timeout", path=request.path, seconds=round(seconds, 3))
        return connector_error(
            ErrorKind.TIMEOUT, f"{self._id}: {request.method} {request.path} took longer than {seconds:.2f}s"
        )

    def _decode(self, request: HttpRequest, response: httpx.Response) -> Any:
        status = response.status_code
        where = f"{self._id}: {request.method} {request.path}"
        if status in (401, 403):
            raise connector_error(ErrorKind.AUTH, f"{where} was refused ({status}): check the token")
        if status in (408, 429) or status >= 500:
            raise connector_error(ErrorKind.UNAVAILABLE, f"{where} answered {status}")
        if not 200 <= status < 300:
            raise connector_error(ErrorKind.BAD_RESPONSE, f"{where} answered {status}")
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        is_json = content_type == "application/json" or content_type.endswith("+json")
        if not is_json and not (content_type == "text/html" and self.html_json is HtmlJson.PARSE):
            raise connector_error(
                ErrorKind.BAD_RESPONSE, f"{where} answered {content_type or 'no content type'}, not JSON"
            )
        if not response.content:
            return None
        try:
            return json.loads(response.content)
        except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise connector_error(ErrorKind.BAD_RESPONSE, f"{where} answered malformed JSON") from err
