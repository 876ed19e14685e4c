"""Domain errors map to HTTP statuses in one table: by type, and for policy refusals by reason code."""

from __future__ import annotations

import pytest

from studio_brain.domain.errors import (
    CanonicalisationError,
    CloudReadError,
    ConfigError,
    Conflict,
    ConnectorError,
    DatabaseUnavailable,
    DataCorrupted,
    InputInvalid,
    NotFound,
    PermissionDenied,
    PolicyRefused,
    ReasonCode,
    StorageError,
    StudioBrainError,
    Unauthenticated,
)
from studio_brain.web.errors import reason_code_for, status_for


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (Unauthenticated("no"), 401),
        (PermissionDenied("no"), 403),
        (InputInvalid("bad"), 400),
        (CanonicalisationError("bad float"), 400),
        (NotFound("gone"), 404),
        (Conflict("busy"), 409),
        (PolicyRefused(ReasonCode.SELF_APPROVAL_FORBIDDEN, "not yours to approve"), 409),
        (PolicyRefused(ReasonCode.KILL_SWITCH_ACTIVE, "stopped"), 409),
        (PolicyRefused(ReasonCode.TENANT_MISMATCH, "another studio"), 403),
        (PolicyRefused(ReasonCode.ACTOR_NOT_ELIGIBLE, "agents propose only"), 403),
        (DatabaseUnavailable("down"), 503),
        (StorageError("disk"), 503),
        (DataCorrupted("line 3 of the export is not JSON"), 503),
        (CloudReadError("firestore timed out"), 502),
        (ConfigError("bad setting"), 503),
        (ConnectorError("TIMEOUT", "hub slow", retryable=True), 502),
        (StudioBrainError("other"), 500),
    ],
)
def test_each_domain_error_has_one_status(error: StudioBrainError, status: int) -> None:
    assert status_for(error) == status


def test_a_policy_refusal_reports_its_reason_code_and_others_their_error_code() -> None:
    assert reason_code_for(PolicyRefused(ReasonCode.RATE_LIMITED, "slow down")) == "RATE_LIMITED"
    assert reason_code_for(NotFound("gone")) == "NOT_FOUND"
    assert (
        reason_code_for(Unauthenticated("x", reason_code=ReasonCode.AUTH_TOKEN_INVALID))
        == "AUTH_TOKEN_INVALID"
    )
