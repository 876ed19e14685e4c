"""The one exception tree of Studio Brain; every foreign error is translated into one of these.

    StudioBrainError
    ├── ConfigError                 a setting is missing or malformed (startup stops with one line)
    ├── InputInvalid                caller-supplied data failed validation (HTTP 400, CLI exit 2)
    ├── CanonicalisationError       a value cannot be hashed canonically (subclass of InputInvalid)
    ├── NotFound                    the thing asked for does not exist (HTTP 404)
    ├── Conflict                    the request clashes with current state (HTTP 409)
    ├── PolicyRefused               the gateway said no; carries a reason code (HTTP 409/403)
    ├── Unauthenticated             no credential, or one that failed verification (HTTP 401)
    ├── PermissionDenied            a verified identity lacks the role or scope needed (HTTP 403)
    ├── StorageError                the local database failed
    │   ├── DatabaseUnavailable     it cannot be reached at all
    │   └── DataCorrupted           a stored or exported record cannot even be read (audit files)
    ├── CloudReadError              reading Firestore / Functions failed
    └── ConnectorError              a device connector failed; carries kind + retryable

Foreign exceptions (psycopg, httpx, google.api_core, ...) are caught at the adapter boundary and
re-raised as one of these with ``raise ... from err``, so callers never match on library types.
"""

from __future__ import annotations


class StudioBrainError(Exception):
    """Base of every error Studio Brain raises on purpose."""

    #: a stable, machine-readable code; subclasses override it
    code: str = "STUDIO_BRAIN_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(StudioBrainError):
    code = "CONFIG_INVALID"


class InputInvalid(StudioBrainError):
    code = "INPUT_INVALID"


class CanonicalisationError(InputInvalid):
    code = "INPUT_NOT_CANONICALISABLE"


class NotFound(StudioBrainError):
    code = "NOT_FOUND"


class Conflict(StudioBrainError):
    code = "CONFLICT"


class PolicyRefused(StudioBrainError):
    """The gateway refused an action; ``reason_code`` is one of the policy's closed set."""

    code = "POLICY_REFUSED"

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(message)
        self.reason_code = reason_code


class Unauthenticated(StudioBrainError):
    """No credential, or one that failed verification. ``reason_code`` says which check failed."""

    code = "UNAUTHENTICATED"

    def __init__(self, message: str, *, reason_code: str = "AUTH_REQUIRED") -> None:
        super().__init__(message)
        self.reason_code = reason_code


class PermissionDenied(StudioBrainError):
    """A verified identity lacks the role or scope the action needs."""

    code = "PERMISSION_DENIED"

    def __init__(self, message: str, *, reason_code: str = "ROLE_REQUIRED") -> None:
        super().__init__(message)
        self.reason_code = reason_code


class StorageError(StudioBrainError):
    code = "STORAGE_ERROR"


class DatabaseUnavailable(StorageError):
    code = "DATABASE_UNAVAILABLE"


class DataCorrupted(StorageError):
    """A record that should be there cannot be parsed (e.g. a damaged line of an audit export)."""

    code = "DATA_CORRUPTED"


class CloudReadError(StudioBrainError):
    code = "CLOUD_READ_FAILED"


class ConnectorError(StudioBrainError):
    """A device connector failed. ``kind`` is one of the connector taxonomy (AUTH, TIMEOUT, ...)."""

    code = "CONNECTOR_ERROR"

    def __init__(self, kind: str, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable
