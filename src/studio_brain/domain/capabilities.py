"""The capability registry as data: parsing, validation (lint), input schemas and the registry's version hash.

The registry is a TOML document (``capabilities.toml`` ships with the package). Parsing never raises on a
bad capability: it collects every :class:`Violation`, so ``capabilities lint`` can list them all and the
app can refuse to start with the full list. The registry's version is the SHA-256 of its canonical JSON;
proposals record it and approvals bind to it, so editing the registry invalidates pending approvals.

This module parses and lints; the values it builds are in ``capability_values`` and the input-schema subset
in ``capability_schemas`` (every name stays importable from here).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from studio_brain.domain.capability_schemas import schema_problems, validate_input
from studio_brain.domain.capability_values import (
    CLOUD_TARGETS,
    DEFAULT_APPROVAL_TTL_SECONDS,
    HIGH_RISK_CLASSES,
    PHYSICAL_TARGETS,
    Capability,
    ExemptionPolicy,
    Mode,
    RateLimit,
    Registry,
    Risk,
    RiskClass,
    Target,
    Violation,
)
from studio_brain.domain.connectors import DryRunSupport
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.write_policy import HourWindow, WritePolicy

#: the registry's public names; the values and input schemas live in their own modules
__all__ = [
    "CLOUD_TARGETS",
    "DEFAULT_APPROVAL_TTL_SECONDS",
    "HIGH_RISK_CLASSES",
    "PHYSICAL_TARGETS",
    "Capability",
    "ExemptionPolicy",
    "Mode",
    "RateLimit",
    "Registry",
    "Risk",
    "RiskClass",
    "Target",
    "Violation",
    "parse_registry",
    "parse_registry_toml",
    "schema_problems",
    "validate_input",
]

_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_CAPABILITY_KEYS = {
    "id",
    "description",
    "target",
    "mode",
    "risk",
    "riskClass",
    "requiresApproval",
    "approvalsRequired",
    "approvalTtlSeconds",
    "rateLimit",
    "cooldownSeconds",
    "timeoutBudgetSeconds",
    "dryRun",
    "input",
    "action",
    "deviceField",
    "commandField",
    "exclusive",
    "exemptionPolicy",
    "allowedHours",
}
_WRITE_POLICY_KEYS = {"dailyCloudWriteBudget", "twoPersonRisks"}


def parse_registry_toml(text: str) -> Registry:
    """Parse registry TOML text; a syntax error becomes one violation (never an exception)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        return Registry(
            capabilities={},
            version=sha256_hex({"unparseable": text}),
            violations=(Violation(capability_id="*", code="TOML_INVALID", message=str(err)),),
        )
    return parse_registry(document)


def parse_registry(document: Mapping[str, Any]) -> Registry:
    """Validate a registry document; returns every capability that parsed and every violation found."""
    violations: list[Violation] = []
    ttl_defaults = dict(DEFAULT_APPROVAL_TTL_SECONDS)
    raw_ttls = document.get("approvalTtlSeconds", {})
    if not isinstance(raw_ttls, Mapping):
        violations.append(
            Violation(capability_id="*", code="FIELD_INVALID", message="approvalTtlSeconds must be a table")
        )
        raw_ttls = {}
    for tier, seconds in raw_ttls.items():
        if tier not in {r.value for r in Risk} or not _positive_int(seconds):
            violations.append(
                Violation(
                    capability_id="*",
                    code="FIELD_INVALID",
                    message=f"approvalTtlSeconds.{tier} must be a risk tier with a positive integer",
                )
            )
        else:
            ttl_defaults[Risk(tier)] = int(seconds)
    write_policy = _parse_write_policy(document.get("writePolicy", {}), violations)
    entries = document.get("capability", [])
    if not isinstance(entries, list) or not entries:
        violations.append(
            Violation(capability_id="*", code="REGISTRY_EMPTY", message="no [[capability]] entries")
        )
        entries = []
    capabilities: dict[str, Capability] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            violations.append(
                Violation(
                    capability_id=f"#{index}", code="FIELD_INVALID", message="capability is not a table"
                )
            )
            continue
        capability, problems = _parse_capability(entry, index, ttl_defaults, write_policy)
        violations.extend(problems)
        if capability is None:
            continue
        if capability.id in capabilities:
            violations.append(
                Violation(capability_id=capability.id, code="DUPLICATE_ID", message="id declared twice")
            )
            continue
        capabilities[capability.id] = capability
    return Registry(
        capabilities=capabilities,
        version=sha256_hex(dict(document)),
        violations=tuple(violations),
        write_policy=write_policy,
    )


def _parse_write_policy(raw: Any, violations: list[Violation]) -> WritePolicy:
    """The top-level ``[writePolicy]`` table: ``dailyCloudWriteBudget``, ``twoPersonRisks``."""

    def bad(message: str) -> None:
        violations.append(Violation(capability_id="*", code="FIELD_INVALID", message=message))

    if not isinstance(raw, Mapping):
        bad("writePolicy must be a table")
        return WritePolicy()
    for key in sorted(set(raw) - _WRITE_POLICY_KEYS):
        violations.append(
            Violation(capability_id="*", code="FIELD_UNKNOWN", message=f"unknown field writePolicy.{key}")
        )
    budget = raw.get("dailyCloudWriteBudget")
    if budget is not None and not _positive_int(budget):
        bad("writePolicy.dailyCloudWriteBudget must be a positive integer")
        budget = None
    risks = raw.get("twoPersonRisks", ["high", "critical"])
    tiers = {r.value for r in Risk}
    if not isinstance(risks, list) or any(r not in tiers for r in risks):
        bad(f"writePolicy.twoPersonRisks must list risk tiers ({', '.join(sorted(tiers))})")
        risks = ["high", "critical"]
    return WritePolicy(daily_cloud_write_budget=budget, two_person_risks=frozenset(risks))


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _parse_capability(
    entry: Mapping[str, Any],
    index: int,
    ttl_defaults: Mapping[Risk, int],
    write_policy: WritePolicy | None = None,
) -> tuple[Capability | None, list[Violation]]:
    raw_id = entry.get("id")
    cid = raw_id if isinstance(raw_id, str) and raw_id else f"#{index}"
    problems: list[Violation] = []

    def bad(code: str, message: str) -> None:
        problems.append(Violation(capability_id=cid, code=code, message=message))

    for key in sorted(set(entry) - _CAPABILITY_KEYS):
        bad("FIELD_UNKNOWN", f"unknown field {key!r}")
    if not isinstance(raw_id, str) or not _ID.match(raw_id):
        bad("FIELD_INVALID", "id must be dotted lowercase, e.g. studio.note.append")

    def enum_field(name: str, kind: type[StrEnum], default: str | None = None) -> Any:
        value = entry.get(name, default)
        if value is None:
            bad("FIELD_MISSING", f"{name} is required")
            return None
        try:
            return kind(value)
        except ValueError:
            allowed = "|".join(m.value for m in kind)
            bad("FIELD_INVALID", f"{name} must be one of {allowed}, got {value!r}")
            return None

    target = enum_field("target", Target)
    mode = enum_field("mode", Mode)
    risk = enum_field("risk", Risk)
    risk_class = enum_field("riskClass", RiskClass, "none")
    dry_run = enum_field("dryRun", DryRunSupport, "unsupported")
    description = entry.get("description")
    if not isinstance(description, str) or not description.strip():
        bad("FIELD_MISSING", "description is required")
    action = entry.get("action")
    if not isinstance(action, str) or not action:
        bad("FIELD_MISSING", "action (the connector action) is required")
    requires_approval = entry.get("requiresApproval", mode is Mode.WRITE)
    if not isinstance(requires_approval, bool):
        bad("FIELD_INVALID", "requiresApproval must be true or false")
        requires_approval = True
    approvals = entry.get("approvalsRequired", 2 if risk is Risk.CRITICAL else 1)
    if not _positive_int(approvals):
        bad("FIELD_INVALID", "approvalsRequired must be a positive integer")
        approvals = 1
    ttl = entry.get("approvalTtlSeconds", ttl_defaults.get(risk, 3600) if risk else 3600)
    if not _positive_int(ttl):
        bad("FIELD_INVALID", "approvalTtlSeconds must be a positive integer")
        ttl = 3600
    rate = entry.get("rateLimit")
    rate_limit = RateLimit(per_hour=60, burst=10)
    if (
        not isinstance(rate, Mapping)
        or not _positive_int(rate.get("perHour"))
        or not _positive_int(rate.get("burst"))
    ):
        bad("FIELD_INVALID", "rateLimit = { perHour = N, burst = M } with positive integers is required")
    else:
        rate_limit = RateLimit(per_hour=int(rate["perHour"]), burst=int(rate["burst"]))
        if rate_limit.burst > rate_limit.per_hour:
            bad("FIELD_INVALID", "rateLimit.burst cannot exceed rateLimit.perHour")
    cooldown = entry.get("cooldownSeconds", 0)
    if not isinstance(cooldown, int) or isinstance(cooldown, bool) or cooldown < 0:
        bad("FIELD_INVALID", "cooldownSeconds must be an integer ≥ 0")
        cooldown = 0
    budget = entry.get("timeoutBudgetSeconds")
    if not isinstance(budget, int | float) or isinstance(budget, bool) or not 0 < budget <= 300:
        bad("FIELD_INVALID", "timeoutBudgetSeconds must be a number in (0, 300]")
        budget = 10.0
    schema = entry.get("input")
    if not isinstance(schema, Mapping):
        bad("SCHEMA_INVALID", "input (a JSON-Schema object) is required")
        schema = {"type": "object"}
    else:
        for message in schema_problems(schema):
            bad("SCHEMA_INVALID", message)
        if schema.get("type") != "object":
            bad("SCHEMA_INVALID", "input.type must be object")
    exclusive = entry.get("exclusive", True)
    if not isinstance(exclusive, bool):
        bad("FIELD_INVALID", "exclusive must be true or false")
        exclusive = True
    exemption: ExemptionPolicy | None = None
    raw_exemption = entry.get("exemptionPolicy")
    if raw_exemption is not None:
        if not isinstance(raw_exemption, Mapping) or not _positive_int(raw_exemption.get("maxLifetimeHours")):
            bad("FIELD_INVALID", "exemptionPolicy = { maxLifetimeHours = N } with a positive integer")
        else:
            exemption = ExemptionPolicy(max_lifetime_seconds=int(raw_exemption["maxLifetimeHours"]) * 3600)
    device_field = entry.get("deviceField")
    command_field = entry.get("commandField")
    for name, value in (("deviceField", device_field), ("commandField", command_field)):
        if value is not None and not isinstance(value, str):
            bad("FIELD_INVALID", f"{name} must be a string")
    hours: list[HourWindow] = []
    raw_hours = entry.get("allowedHours", [])
    if not isinstance(raw_hours, list):
        bad("FIELD_INVALID", 'allowedHours must be a list of "HH:MM-HH:MM" local-time windows')
        raw_hours = []
    for window in raw_hours:
        try:
            hours.append(HourWindow.parse(window))
        except ValueError as err:
            bad("FIELD_INVALID", f"allowedHours: {err}")
    policy = write_policy or WritePolicy()

    if (
        None in (target, mode, risk, risk_class, dry_run)
        or not isinstance(raw_id, str)
        or not _ID.match(raw_id)
    ):
        return None, problems
    capability = Capability(
        id=raw_id,
        description=str(description or ""),
        target=target,
        mode=mode,
        risk=risk,
        risk_class=risk_class,
        requires_approval=bool(requires_approval),
        approvals_required=int(approvals),
        approval_ttl_seconds=int(ttl),
        rate_limit=rate_limit,
        cooldown_seconds=int(cooldown),
        timeout_budget_seconds=float(budget),
        dry_run=dry_run,
        input_schema=dict(schema),
        action=str(action or ""),
        device_field=device_field if isinstance(device_field, str) else None,
        command_field=command_field if isinstance(command_field, str) else None,
        exclusive=bool(exclusive),
        exemption_policy=exemption,
        allowed_hours=tuple(hours),
        two_person=risk.value in policy.two_person_risks and mode is Mode.WRITE,
    )
    problems.extend(_policy_problems(capability))
    return capability, problems


def _policy_problems(cap: Capability) -> list[Violation]:
    """The rules a well-formed capability must still obey (seed §4, §5)."""
    found: list[Violation] = []

    def bad(code: str, message: str) -> None:
        found.append(Violation(capability_id=cap.id, code=code, message=message))

    if cap.is_write and not cap.requires_approval and cap.is_high_risk:
        bad(
            "APPROVAL_CANNOT_BE_WAIVED",
            f"a {cap.risk.value}-risk write in class {cap.risk_class.value} must set requiresApproval = true",
        )
    if cap.risk is Risk.CRITICAL and cap.approvals_required < 2:
        bad("CRITICAL_NEEDS_TWO_APPROVERS", "critical capabilities need approvalsRequired ≥ 2")
    if cap.exemption_policy is not None and cap.is_high_risk:
        bad(
            "EXEMPTION_NOT_ALLOWED",
            "high/critical risk and door/lock/power/mobility classes are never exempt",
        )
    if not cap.exclusive and (cap.target in PHYSICAL_TARGETS or cap.is_high_risk):
        bad("MUST_BE_EXCLUSIVE", "physical targets and high-risk capabilities run one execution at a time")
    if cap.mode is Mode.READ and cap.risk_class in HIGH_RISK_CLASSES:
        bad("READ_IN_HIGH_RISK_CLASS", "a read capability cannot carry a high-risk class")
    return found
