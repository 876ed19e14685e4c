"""The one exception tree of Studio Brain; every foreign error is translated into one of these.

    StudioBrainError
    ├── ConfigError                 a setting is missing or malformed (startup stops with one line)
    ├── InputInvalid                caller-supplied data failed validation (HTTP 400, CLI exit 2)
    ├── CanonicalisationError       a value cannot be hashed canonically (subclass of InputInvalid)
    ├── NotFound                    the thing asked for does not exist (HTTP 404)
    ├── Conflict                    the request clashes with current state (HTTP 409)
    ├── PolicyRefused               the gateway said no (HTTP 403 if the code is about the caller, else 409)
    ├── Unauthenticated             no credential, or one that failed verification (HTTP 401)
    ├── PermissionDenied            a verified identity lacks the role or scope needed (HTTP 403)
    ├── StorageError                the local database failed
    │   ├── DatabaseUnavailable     it cannot be reached at all
    │   └── DataCorrupted           a stored or exported record cannot even be read (audit files)
    ├── CloudReadError              reading Firestore / Functions failed (HTTP 502)
    └── ConnectorError              a device connector failed; carries kind + retryable

Every error carries a :class:`~studio_brain.domain.reasons.ReasonCode` (``reason_code``): its class's
own by default, a more precise one where the raiser knows it. ``about_caller`` says whether the error is
about who asks (403) or about what is asked; the web layer maps statuses from these, never from text.

Foreign exceptions (psycopg, httpx, google.api_core, ...) are caught at the adapter boundary and
re-raised as one of these with ``raise ... from err``, so callers never match on library types.
"""

from __future__ import annotations

from typing import ClassVar

from studio_brain.domain.reasons import ReasonCode, reason

__all__ = [
    "CanonicalisationError",
    "CloudReadError",
    "ConfigError",
    "Conflict",
    "ConnectorError",
    "DataCorrupted",
    "DatabaseUnavailable",
    "InputInvalid",
    "NotFound",
    "PermissionDenied",
    "PolicyRefused",
    "ReasonCode",
    "StorageError",
    "StudioBrainError",
    "Unauthenticated",
]


class StudioBrainError(Exception):
    """Base of every error Studio Brain raises on purpose."""

    #: the class's own reason code (also the ``code`` of older callers)
    code: ClassVar[ReasonCode] = ReasonCode.STUDIO_BRAIN_ERROR

    def __init__(self, message: str, *, reason_code: ReasonCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason_code: ReasonCode = reason(reason_code) if reason_code is not None else type(self).code

    @property
    def about_caller(self) -> bool:
        """About who is asking (identity, role, scope, tenant) rather than what is asked."""
        return self.reason_code.about_caller

    def __str__(self) -> str:
        return self.message


class ConfigError(StudioBrainError):
    code = ReasonCode.CONFIG_INVALID


class InputInvalid(StudioBrainError):
    code = ReasonCode.INPUT_INVALID


class CanonicalisationError(InputInvalid):
    code = ReasonCode.INPUT_NOT_CANONICALISABLE


class NotFound(StudioBrainError):
    code = ReasonCode.NOT_FOUND


class Conflict(StudioBrainError):
    code = ReasonCode.CONFLICT


class PolicyRefused(StudioBrainError):
    """The gateway (or another policy) refused an action, for ``reason_code``."""

    code = ReasonCode.POLICY_REFUSED

    def __init__(self, reason_code: ReasonCode, message: str) -> None:
        super().__init__(message, reason_code=reason_code)


class Unauthenticated(StudioBrainError):
    """No credential, or one that failed verification. ``reason_code`` says which check failed."""

    code = ReasonCode.UNAUTHENTICATED

    def __init__(self, message: str, *, reason_code: ReasonCode = ReasonCode.AUTH_REQUIRED) -> None:
        super().__init__(message, reason_code=reason_code)

    @property
    def about_caller(self) -> bool:
        return True


class PermissionDenied(StudioBrainError):
    """A verified identity lacks the role or scope the action needs."""

    code = ReasonCode.PERMISSION_DENIED

    def __init__(self, message: str, *, reason_code: ReasonCode = ReasonCode.ROLE_REQUIRED) -> None:
        super().__init__(message, reason_code=reason_code)

    @property
    def about_caller(self) -> bool:
        return True


class StorageError(StudioBrainError):
    code = ReasonCode.STORAGE_ERROR


class DatabaseUnavailable(StorageError):
    code = ReasonCode.DATABASE_UNAVAILABLE


class DataCorrupted(StorageError):
    """A record that should be there cannot be parsed (e.g. a damaged line of an audit export)."""

    code = ReasonCode.DATA_CORRUPTED


class CloudReadError(StudioBrainError):
    code = ReasonCode.CLOUD_READ_FAILED


class ConnectorError(StudioBrainError):
    """A device connector failed. ``kind`` is one of the connector taxonomy (AUTH, TIMEOUT, ...)."""

    code = ReasonCode.CONNECTOR_ERROR

    def __init__(self, kind: str, message: str, *, retryable: bool, sent: bool | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable
        #: did the request reach the device? False: provably not sent; None: the connector cannot say.
        #: After a write was sent only a proven refusal is ``failed`` (domain/outcomes.py, issue 13).
        self.sent = sent
