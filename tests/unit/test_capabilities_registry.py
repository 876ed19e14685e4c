"""The capability registry: the shipped file is valid, and every rule of the registry is enforced by lint."""

from __future__ import annotations

from typing import Any

import pytest

from studio_brain.adapters.capability_registry import load_registry, registry_text
from studio_brain.domain.capabilities import Registry, parse_registry, parse_registry_toml, validate_input
from studio_brain.domain.errors import ConfigError

BASE: dict[str, Any] = {
    "id": "studio.test.write",
    "description": "a test capability",
    "target": "local",
    "mode": "write",
    "risk": "low",
    "riskClass": "none",
    "action": "note.append",
    "timeoutBudgetSeconds": 5,
    "rateLimit": {"perHour": 100, "burst": 100},
    "input": {
        "type": "object",
        "required": ["text"],
        "properties": {"text": {"type": "string", "minLength": 1}},
    },
}


def registry_with(**changes: Any) -> Registry:
    """A registry with ``studio.test.write`` (changed by ``changes``) beside the shipped capabilities."""
    import tomllib

    _, text = registry_text(None)
    document = tomllib.loads(text)
    entry = {**BASE, **changes}
    document["capability"] = [*document["capability"], {k: v for k, v in entry.items() if v is not None}]
    registry = parse_registry(document)
    assert registry.valid, registry.violations
    return registry


def codes(**changes: Any) -> set[str]:
    entry = {k: v for k, v in {**BASE, **changes}.items() if v is not None}
    return {v.code for v in parse_registry({"capability": [entry]}).violations}


def test_the_shipped_registry_is_valid_and_has_the_required_capabilities() -> None:
    registry = load_registry(None)
    assert registry.valid
    assert set(registry.capabilities) >= {
        "studio.note.append",
        "hubitat.devices.read",
        "roborock.status.read",
        "hubitat.switch.set",
        "roborock.clean.start",
        "firestore.ops_note.append",
    }
    assert len(registry.version) == 64


def test_the_registry_version_changes_when_the_registry_changes() -> None:
    _, text = registry_text(None)
    assert parse_registry_toml(text).version == parse_registry_toml(text).version
    assert (
        parse_registry_toml(text.replace("burst = 120", "burst = 121")).version
        != parse_registry_toml(text).version
    )


def test_a_valid_capability_has_no_violations() -> None:
    assert codes() == set()


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"risk": "high", "requiresApproval": False}, "APPROVAL_CANNOT_BE_WAIVED"),
        ({"riskClass": "lock", "requiresApproval": False}, "APPROVAL_CANNOT_BE_WAIVED"),
        ({"risk": "critical", "approvalsRequired": 1}, "CRITICAL_NEEDS_TWO_APPROVERS"),
        ({"riskClass": "power", "exemptionPolicy": {"maxLifetimeHours": 1}}, "EXEMPTION_NOT_ALLOWED"),
        ({"target": "hubitat", "exclusive": False}, "MUST_BE_EXCLUSIVE"),
        ({"mode": "read", "riskClass": "door"}, "READ_IN_HIGH_RISK_CLASS"),
        ({"target": "mainframe"}, "FIELD_INVALID"),
        ({"risk": None}, "FIELD_MISSING"),
        ({"description": None}, "FIELD_MISSING"),
        ({"rateLimit": {"perHour": 5, "burst": 10}}, "FIELD_INVALID"),
        ({"timeoutBudgetSeconds": 0}, "FIELD_INVALID"),
        ({"input": {"type": "object", "properties": {"a": {"type": "blob"}}}}, "SCHEMA_INVALID"),
        ({"input": {"type": "object", "oneOf": []}}, "SCHEMA_INVALID"),
        ({"surprise": 1}, "FIELD_UNKNOWN"),
        ({"id": "NotDotted"}, "FIELD_INVALID"),
    ],
)
def test_lint_names_each_rule_a_capability_breaks(changes: dict[str, Any], code: str) -> None:
    assert code in codes(**changes)


def test_critical_capabilities_default_to_two_approvers_and_writes_to_requiring_approval() -> None:
    registry = parse_registry({"capability": [{**BASE, "risk": "critical", "riskClass": "money"}]})
    cap = registry.capabilities["studio.test.write"]
    assert cap.approvals_required == 2
    assert cap.requires_approval


def test_duplicate_ids_and_bad_toml_are_violations_not_crashes() -> None:
    assert {v.code for v in parse_registry({"capability": [BASE, BASE]}).violations} == {"DUPLICATE_ID"}
    assert [v.code for v in parse_registry_toml("[[capability]\nid=").violations] == ["TOML_INVALID"]


def test_an_invalid_registry_file_stops_start_up_listing_every_problem(tmp_path: Any) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[capability]]\nid = "a.b"\nrisk = "extreme"\n')
    with pytest.raises(ConfigError) as caught:
        load_registry(path)
    assert "FIELD_INVALID" in caught.value.message
    assert "FIELD_MISSING" in caught.value.message
    with pytest.raises(ConfigError):
        load_registry(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ({"text": "hi"}, True),
        ({}, False),
        ({"text": ""}, False),
        ({"text": 3}, False),
        ({"text": "hi", "other": 1}, False),
        ("not an object", False),
    ],
)
def test_input_is_validated_against_the_schema(value: Any, ok: bool) -> None:
    assert (validate_input(BASE["input"], value) == []) is ok
