"""Every error class of the tree has one deliberate HTTP status and a reason code; none is a 500 by accident."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

import pytest

import studio_brain
from studio_brain.domain.errors import (
    CloudReadError,
    ConnectorError,
    DatabaseUnavailable,
    PermissionDenied,
    PolicyRefused,
    StorageError,
    StudioBrainError,
    Unauthenticated,
)
from studio_brain.domain.reasons import ABOUT_CALLER, ReasonCode, reason
from studio_brain.domain.secrets import SecretInPayload, find_secrets
from studio_brain.web.errors import reason_code_for, status_for

#: what each class of domain/errors.py answers; a class added elsewhere must still avoid 500 (below)
EXPECTED = {
    "ConfigError": 503,
    "InputInvalid": 400,
    "CanonicalisationError": 400,
    "SecretInPayload": 400,
    "NotFound": 404,
    "Conflict": 409,
    "Unauthenticated": 401,
    "PermissionDenied": 403,
    "StorageError": 503,
    "DatabaseUnavailable": 503,
    "DataCorrupted": 503,
    "CloudReadError": 502,
    "ConnectorError": 502,
}


def _all_error_classes() -> list[type[StudioBrainError]]:
    # import every module so subclasses defined outside domain/errors.py are found too
    for module in pkgutil.walk_packages(studio_brain.__path__, "studio_brain."):
        if module.name.endswith("__main__") or ".migrations" in module.name:
            continue
        importlib.import_module(module.name)
    found: list[type[StudioBrainError]] = []
    todo = list(StudioBrainError.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: c.__qualname__)


def _instance(cls: type[StudioBrainError]) -> StudioBrainError:
    if issubclass(cls, SecretInPayload):
        return cls(find_secrets("sk_live_" + "a1" * 12, location="body.note"))
    if issubclass(cls, ConnectorError):
        return cls("TIMEOUT", "the hub did not answer", retryable=True)
    attempts: list[tuple[Any, ...]] = [("something went wrong",)]
    if issubclass(cls, PolicyRefused):
        attempts.insert(0, (ReasonCode.KILL_SWITCH_ACTIVE, "stopped"))
    # subclasses with their own positional fields (e.g. RecordTampered(kind, id, why)): strings for each
    required = [
        p
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self" and p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD
    ]
    attempts.append(tuple(f"value-{i}" for i in range(len(required))))
    for args in attempts:
        try:
            return cls(*args)
        except TypeError:
            continue
    pytest.fail(f"{cls.__qualname__}: add a way to build it to _instance in this test")


ERROR_CLASSES = _all_error_classes()


def test_the_walk_finds_the_whole_tree() -> None:
    names = {c.__name__ for c in ERROR_CLASSES}
    assert set(EXPECTED) - {"SecretInPayload"} <= names
    assert "PolicyRefused" in names


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__qualname__)
def test_every_error_class_maps_to_a_deliberate_status_never_500(cls: type[StudioBrainError]) -> None:
    err = _instance(cls)
    status = status_for(err)
    assert status != 500, f"{cls.__qualname__} falls through to HTTP 500"
    if cls.__name__ in EXPECTED:
        assert status == EXPECTED[cls.__name__]
    assert 400 <= status < 600


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__qualname__)
def test_every_error_class_carries_a_reason_code_of_its_own(cls: type[StudioBrainError]) -> None:
    err = _instance(cls)
    assert isinstance(err.reason_code, ReasonCode)
    assert reason_code_for(err) == err.reason_code.value
    assert cls.code is not StudioBrainError.code, f"{cls.__qualname__} needs its own code"


@pytest.mark.parametrize("code", sorted(ReasonCode), ids=str)
def test_a_policy_refusal_is_403_when_about_the_caller_and_409_otherwise(code: ReasonCode) -> None:
    refused = PolicyRefused(code, "no")
    assert refused.about_caller is (code in ABOUT_CALLER)
    assert status_for(refused) == (403 if code.about_caller else 409)
    assert reason_code_for(refused) == code.value


def test_who_is_asking_errors_are_about_the_caller() -> None:
    assert Unauthenticated("no token").about_caller
    assert PermissionDenied("no role").about_caller
    assert PolicyRefused(ReasonCode.TENANT_MISMATCH, "another studio").about_caller
    assert not PolicyRefused(ReasonCode.RATE_LIMITED, "slow down").about_caller


def test_an_unknown_reason_code_string_is_a_programming_error() -> None:
    assert reason("RATE_LIMITED") is ReasonCode.RATE_LIMITED
    with pytest.raises(ValueError, match="unknown reason code"):
        reason("NOT_A_CODE")


def test_only_the_bare_base_class_is_a_500() -> None:
    assert status_for(StudioBrainError("raised by nobody on purpose")) == 500


@pytest.mark.parametrize(
    "err",
    [
        DatabaseUnavailable("cannot reach PostgreSQL at postgresql://brain:***@db.internal:6543/studio"),
        StorageError("could not write to postgresql://brain@db.internal:6543/studio"),
        CloudReadError("firestore at https://firestore.internal/v1 refused the service account"),
    ],
)
def test_no_error_body_names_the_database_or_a_service_url(err: StudioBrainError) -> None:
    # issue 12: authenticated 503 bodies carried the database URL (password masked)
    from starlette.requests import Request

    from studio_brain.web.errors import error_response

    response = error_response(err, Request({"type": "http", "path": "/api/v1/x", "headers": [], "state": {}}))
    body = bytes(response.body).decode()
    assert response.status_code in {502, 503}
    for leak in ("db.internal", "6543", "postgresql", "firestore.internal"):
        assert leak not in body
