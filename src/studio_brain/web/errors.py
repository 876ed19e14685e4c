"""Every error an HTTP caller can see, mapped in one place to a status and ``{ok:false, message, reasonCode?}``.

Domain errors map by type (never by message text); FastAPI's 422 becomes 400; malformed JSON is a 400;
anything unexpected is a 500 with a request id and no internals.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from studio_brain.domain.errors import (
    CloudReadError,
    ConfigError,
    Conflict,
    ConnectorError,
    DatabaseUnavailable,
    InputInvalid,
    NotFound,
    PermissionDenied,
    PolicyRefused,
    ReasonCode,
    StorageError,
    StudioBrainError,
    Unauthenticated,
)
from studio_brain.logging import get_logger
from studio_brain.web.quiet_paths import unknown_paths_of

log = get_logger(__name__)


class ErrorResponse(BaseModel):
    """Every error body: the Portal shows ``message``; ``reasonCode`` is stable and machine-readable."""

    ok: bool = False
    message: str
    reasonCode: str | None = None
    requestId: str | None = None
    errors: list[dict[str, Any]] | None = None


def _documented(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


#: the error statuses every API route may answer (documented in the OpenAPI document)
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _documented("malformed JSON, an invalid field or parameter"),
    401: _documented("no credential, or one that failed verification"),
    403: _documented("the caller lacks the role or scope"),
    404: _documented("no such thing"),
    409: _documented("clashes with current state, or refused by policy (reasonCode)"),
    413: _documented("the request body is over the limit"),
    502: _documented("a device connector or a cloud read failed"),
    503: _documented("the database or a service is unavailable"),
}


def error_body(message: str, reason_code: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "message": message}
    if reason_code is not None:
        body["reasonCode"] = reason_code
    body.update(extra)
    return body


def status_for(err: StudioBrainError) -> int:
    """The HTTP status of a domain error: by its class, and for refusals by whether it is about the caller.

    Total over the tree: the base class itself (raised by nobody on purpose) is the only 500.
    """
    match err:
        case Unauthenticated():
            return 401
        case PermissionDenied():
            return 403
        case InputInvalid():
            return 400
        case NotFound():
            return 404
        case PolicyRefused():
            return 403 if err.about_caller else 409
        case Conflict():
            return 409
        case ConnectorError() | CloudReadError():
            return 502
        case DatabaseUnavailable() | ConfigError() | StorageError():
            return 503
        case _:
            return 500


def reason_code_for(err: StudioBrainError) -> str:
    return err.reason_code.value


def error_response(err: StudioBrainError, request: Request) -> JSONResponse:
    status = status_for(err)
    headers = {"www-authenticate": 'Bearer realm="studio-brain"'} if status == 401 else None
    message = err.message
    if isinstance(err, DatabaseUnavailable):
        # its message names the database (host, user): that stays in the log
        message = "the database is unavailable; the brain's log and `studio-brain doctor` say why"
        # issue 13: a read is run once more (web/retry.py) before this reaches the caller
        headers = {"x-studio-brain-retry": "database"}
    elif status >= 500 and not isinstance(err, ConnectorError):
        # storage, configuration and cloud details stay in the log
        message = "the brain cannot serve this right now; see its log"
    if status >= 500:
        log.warning("http.error", status=status, code=err.code, error=err.message, path=request.url.path)
    return JSONResponse(
        error_body(message, reason_code_for(err), requestId=_request_id(request)),
        status_code=status,
        headers=headers,
    )


def _request_id(request: Request) -> str | None:
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else None


def _describe_validation(errors: list[Any]) -> str:
    if not errors:
        return "the request is not valid"
    first = errors[0]
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON"
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body",)]
    where = ".".join(loc) if loc else "request"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid value')}{more}"


def _validation_details(errors: list[Any]) -> list[dict[str, Any]]:
    # only location, type and message: never echo the input back (it may hold a secret)
    return [
        {
            "loc": [str(p) for p in e.get("loc", ())],
            "type": str(e.get("type", "")),
            "msg": str(e.get("msg", "")),
        }
        for e in errors[:20]
    ]


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``; the one place HTTP statuses for errors are decided."""

    @app.exception_handler(StudioBrainError)
    async def _domain(request: Request, err: StudioBrainError) -> JSONResponse:
        return error_response(err, request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        errors = list(err.errors())
        reason = (
            "INPUT_MALFORMED_JSON" if errors and errors[0].get("type") == "json_invalid" else "INPUT_INVALID"
        )
        return JSONResponse(
            error_body(
                _describe_validation(errors),
                reason,
                errors=_validation_details(errors),
                requestId=_request_id(request),
            ),
            status_code=400,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        message = err.detail if isinstance(err.detail, str) else "request failed"
        if err.status_code == 404:
            message = f"no such path: {request.url.path}"
            unknown_paths_of(request).note(request.method, request.url.path)  # issue 21: once an hour
        elif err.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        return JSONResponse(
            error_body(message, requestId=_request_id(request)),
            status_code=err.status_code,
            headers=dict(err.headers) if err.headers else None,
        )

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, err: OverflowError) -> JSONResponse:
        # date arithmetic at the edge of the calendar (end=0001-01-01 minus 29 days) and the like
        return JSONResponse(
            error_body(
                "a date or number in the request is out of range",
                ReasonCode.INPUT_OUT_OF_RANGE.value,
                requestId=_request_id(request),
            ),
            status_code=400,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception) -> JSONResponse:
        log.error("http.unexpected_error", path=request.url.path, error_type=type(err).__name__, exc_info=err)
        return JSONResponse(
            error_body(
                "internal error; the request id is in the brain's log", requestId=_request_id(request)
            ),
            status_code=500,
        )
