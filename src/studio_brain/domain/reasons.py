"""The closed set of reason codes: why something was refused or failed, stable and machine-readable.

Every :class:`~studio_brain.domain.errors.StudioBrainError` carries one of these, and every gateway
:class:`~studio_brain.domain.policy.Decision` too (``ALLOWED`` is the only code that permits). A code also
says whether it is *about the caller* (who is asking: HTTP 403) or about *what is asked* (the state of
things: 409 for refusals) — so the web layer decides statuses from the code, never from a list of strings
of its own. A new code is added here, with its group; the test ``test_error_statuses`` walks them all.
"""

from __future__ import annotations

from enum import StrEnum


class ReasonCode(StrEnum):
    """Why: one value per distinct cause a caller (or operator) may act on."""

    # --- gateway policy decisions (domain/policy.py) -------------------------------------------
    ALLOWED = "ALLOWED"
    CAPABILITY_UNKNOWN = "CAPABILITY_UNKNOWN"
    INPUT_INVALID = "INPUT_INVALID"
    RATIONALE_REQUIRED = "RATIONALE_REQUIRED"
    DELEGATION_SCOPE_MISSING = "DELEGATION_SCOPE_MISSING"
    ACTOR_NOT_ELIGIBLE = "ACTOR_NOT_ELIGIBLE"
    SELF_APPROVAL_FORBIDDEN = "SELF_APPROVAL_FORBIDDEN"
    APPROVER_NOT_ELIGIBLE = "APPROVER_NOT_ELIGIBLE"
    APPROVAL_REQUIRED = "APPROVAL_REQUIRED"
    APPROVAL_EXPIRED = "APPROVAL_EXPIRED"
    APPROVAL_PAYLOAD_MISMATCH = "APPROVAL_PAYLOAD_MISMATCH"
    ALREADY_EXECUTED = "ALREADY_EXECUTED"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    KILL_SWITCH_ACTIVE = "KILL_SWITCH_ACTIVE"
    TENANT_MISMATCH = "TENANT_MISMATCH"
    RATE_LIMITED = "RATE_LIMITED"
    COOLDOWN_ACTIVE = "COOLDOWN_ACTIVE"
    TARGET_BUSY = "TARGET_BUSY"
    EXEMPTION_FORBIDDEN = "EXEMPTION_FORBIDDEN"
    CONNECTOR_READ_ONLY = "CONNECTOR_READ_ONLY"
    ADAPTER_MISSING = "ADAPTER_MISSING"

    # --- the gateway, beyond the policy's decisions (cloud writes, keyed records) --------------
    WRITE_WINDOW_CLOSED = "WRITE_WINDOW_CLOSED"
    WRITE_BUDGET_EXHAUSTED = "WRITE_BUDGET_EXHAUSTED"
    RECORD_TAMPERED = "RECORD_TAMPERED"

    # --- swarm drafts (services/swarms/drafts.py) -----------------------------------------------
    SCOPE_MISSING = "SCOPE_MISSING"
    COPY_NOT_PUBLIC = "COPY_NOT_PUBLIC"

    # --- authentication: who is calling (HTTP 401) ----------------------------------------------
    AUTH_REQUIRED = "AUTH_REQUIRED"
    AUTH_TOKEN_INVALID = "AUTH_TOKEN_INVALID"  # noqa: S105 - a code, not a token
    AUTH_ADMIN_TOKEN_INVALID = "AUTH_ADMIN_TOKEN_INVALID"  # noqa: S105 - a code
    AUTH_SESSION_INVALID = "AUTH_SESSION_INVALID"
    AUTH_TENANT_MISMATCH = "AUTH_TENANT_MISMATCH"
    AUTH_CERTS_UNAVAILABLE = "AUTH_CERTS_UNAVAILABLE"
    AUTH_CREDENTIAL_INVALID = "AUTH_CREDENTIAL_INVALID"

    # --- authorisation: what the caller may do (HTTP 403) ---------------------------------------
    ROLE_REQUIRED = "ROLE_REQUIRED"
    STAFF_REQUIRED = "STAFF_REQUIRED"
    ADMIN_REQUIRED = "ADMIN_REQUIRED"
    SCOPE_REQUIRED = "SCOPE_REQUIRED"
    AGENT_NOT_ALLOWED = "AGENT_NOT_ALLOWED"
    CROSS_ORIGIN_REFUSED = "CROSS_ORIGIN_REFUSED"

    # --- personal identities (issue 11: services/identity.py, services/credentials.py) ----------
    WEBAUTHN_CHALLENGE_REPLAYED = "WEBAUTHN_CHALLENGE_REPLAYED"
    WEBAUTHN_CHALLENGE_MISMATCH = "WEBAUTHN_CHALLENGE_MISMATCH"
    WEBAUTHN_ORIGIN_MISMATCH = "WEBAUTHN_ORIGIN_MISMATCH"
    WEBAUTHN_RP_ID_MISMATCH = "WEBAUTHN_RP_ID_MISMATCH"
    PASSKEY_SIGN_COUNT_REGRESSED = "PASSKEY_SIGN_COUNT_REGRESSED"
    PASSKEY_INVALID = "PASSKEY_INVALID"
    PASSKEY_UNKNOWN = "PASSKEY_UNKNOWN"
    PASSKEY_ALREADY_REGISTERED = "PASSKEY_ALREADY_REGISTERED"
    PERSON_REMOVED = "PERSON_REMOVED"
    INVITE_INVALID = "INVITE_INVALID"
    LINK_USED = "LINK_USED"
    LINK_EXPIRED = "LINK_EXPIRED"
    LOGIN_CODE_INVALID = "LOGIN_CODE_INVALID"
    OWNER_REQUIRED = "OWNER_REQUIRED"
    PERSON_REQUIRED = "PERSON_REQUIRED"
    BREAK_GLASS_NOT_ALLOWED = "BREAK_GLASS_NOT_ALLOWED"
    BREAK_GLASS_REQUIRED = "BREAK_GLASS_REQUIRED"
    ADMIN_TOKEN_CANNOT_APPROVE = "ADMIN_TOKEN_CANNOT_APPROVE"  # noqa: S105 - a code
    PERSONAL_TOKEN_SCOPE_MISSING = "PERSONAL_TOKEN_SCOPE_MISSING"  # noqa: S105 - a code
    FIRST_OWNER_EXISTS = "FIRST_OWNER_EXISTS"
    LAST_OWNER = "LAST_OWNER"

    # --- the request itself (HTTP 400 / 413) ----------------------------------------------------
    INPUT_MALFORMED_JSON = "INPUT_MALFORMED_JSON"
    INPUT_NOT_CANONICALISABLE = "INPUT_NOT_CANONICALISABLE"
    INPUT_TEXT_INVALID = "INPUT_TEXT_INVALID"
    INPUT_OUT_OF_RANGE = "INPUT_OUT_OF_RANGE"
    SECRET_IN_PAYLOAD = "SECRET_IN_PAYLOAD"  # noqa: S105 - a code, not a secret
    BODY_TOO_LARGE = "BODY_TOO_LARGE"
    HOST_NOT_ALLOWED = "HOST_NOT_ALLOWED"

    # --- the generic codes of the error classes (domain/errors.py) ------------------------------
    STUDIO_BRAIN_ERROR = "STUDIO_BRAIN_ERROR"
    CONFIG_INVALID = "CONFIG_INVALID"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    POLICY_REFUSED = "POLICY_REFUSED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    STORAGE_ERROR = "STORAGE_ERROR"
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
    DATA_CORRUPTED = "DATA_CORRUPTED"
    BACKUP_FAILED = "BACKUP_FAILED"
    CLOUD_READ_FAILED = "CLOUD_READ_FAILED"
    CONNECTOR_ERROR = "CONNECTOR_ERROR"

    @property
    def about_caller(self) -> bool:
        """True when the code is about *who* asks (their identity, role, scope, tenant), not the request."""
        return self in ABOUT_CALLER


#: the codes :mod:`studio_brain.domain.policy` decisions return (the cockpit has plain words for each)
POLICY_REASON_CODES: frozenset[ReasonCode] = frozenset(
    {
        ReasonCode.ALLOWED,
        ReasonCode.CAPABILITY_UNKNOWN,
        ReasonCode.INPUT_INVALID,
        ReasonCode.RATIONALE_REQUIRED,
        ReasonCode.DELEGATION_SCOPE_MISSING,
        ReasonCode.ACTOR_NOT_ELIGIBLE,
        ReasonCode.SELF_APPROVAL_FORBIDDEN,
        ReasonCode.APPROVER_NOT_ELIGIBLE,
        ReasonCode.APPROVAL_REQUIRED,
        ReasonCode.APPROVAL_EXPIRED,
        ReasonCode.APPROVAL_PAYLOAD_MISMATCH,
        ReasonCode.ALREADY_EXECUTED,
        ReasonCode.INVALID_TRANSITION,
        ReasonCode.IDEMPOTENCY_KEY_REUSED,
        ReasonCode.KILL_SWITCH_ACTIVE,
        ReasonCode.TENANT_MISMATCH,
        ReasonCode.RATE_LIMITED,
        ReasonCode.COOLDOWN_ACTIVE,
        ReasonCode.TARGET_BUSY,
        ReasonCode.EXEMPTION_FORBIDDEN,
        ReasonCode.CONNECTOR_READ_ONLY,
        ReasonCode.ADAPTER_MISSING,
        ReasonCode.ADMIN_TOKEN_CANNOT_APPROVE,
        ReasonCode.BREAK_GLASS_NOT_ALLOWED,
        ReasonCode.PERSONAL_TOKEN_SCOPE_MISSING,
    }
)

#: codes about who is asking rather than what is asked: a refusal with one of these is a 403, not a 409
ABOUT_CALLER: frozenset[ReasonCode] = frozenset(
    {
        ReasonCode.ACTOR_NOT_ELIGIBLE,
        ReasonCode.APPROVER_NOT_ELIGIBLE,
        ReasonCode.DELEGATION_SCOPE_MISSING,
        ReasonCode.TENANT_MISMATCH,
        ReasonCode.SCOPE_MISSING,
        ReasonCode.ROLE_REQUIRED,
        ReasonCode.STAFF_REQUIRED,
        ReasonCode.ADMIN_REQUIRED,
        ReasonCode.SCOPE_REQUIRED,
        ReasonCode.AGENT_NOT_ALLOWED,
        ReasonCode.CROSS_ORIGIN_REFUSED,
        ReasonCode.PERMISSION_DENIED,
        ReasonCode.OWNER_REQUIRED,
        ReasonCode.PERSON_REQUIRED,
        ReasonCode.BREAK_GLASS_NOT_ALLOWED,
        ReasonCode.BREAK_GLASS_REQUIRED,
        ReasonCode.ADMIN_TOKEN_CANNOT_APPROVE,
        ReasonCode.PERSONAL_TOKEN_SCOPE_MISSING,
    }
)


def reason(value: ReasonCode | str) -> ReasonCode:
    """``value`` as a member; a string that names none is a programming error (add the code above)."""
    if isinstance(value, ReasonCode):
        return value
    try:
        return ReasonCode(value)
    except ValueError:
        raise ValueError(f"unknown reason code {value!r}: add it to studio_brain.domain.reasons") from None
