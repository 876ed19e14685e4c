"""The safety-rule table as data: rule kinds, device roles, each rule's thresholds, hold time and cooldown,
and their validation. Versioned and hashed like the count rules (ADR 0005); the packaged table is
``rules/safety_rules.toml``. Evaluation lives in :mod:`studio_brain.domain.safety`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from studio_brain.domain.drafts import Severity
from studio_brain.domain.errors import ConfigError
from studio_brain.domain.hashing import sha256_hex

_RULE_ID = re.compile(r"^safety\.[a-z0-9_]{1,64}$")


class RuleKind(StrEnum):
    #: the kiln outlet draws power and no firing is in progress (or about to start)
    KILN_POWER_WITHOUT_FIRING = "kiln_power_without_firing"
    #: a firing is in progress and the kiln outlet draws (almost) nothing
    FIRING_WITHOUT_POWER = "firing_without_power"
    #: a door contact is open or a lock unlocked outside studio hours
    DOOR_OPEN_AFTER_HOURS = "door_open_after_hours"
    #: a safety device is silent, offline, missing or unreadable
    DEVICE_STALE = "device_stale"


class DeviceRole(StrEnum):
    KILN_OUTLET = "kiln_outlet"
    DOOR = "door"
    #: any other device the watch keeps an eye on (leak sensor ...): only the stale rule applies
    WATCHED = "watched"


_KIND_KEYS: dict[RuleKind, frozenset[str]] = {
    RuleKind.KILN_POWER_WITHOUT_FIRING: frozenset(
        {"threshold_watts", "expected_statuses", "scheduled_statuses", "scheduled_grace_minutes"}
    ),
    RuleKind.FIRING_WITHOUT_POWER: frozenset({"near_zero_watts", "firing_statuses"}),
    RuleKind.DOOR_OPEN_AFTER_HOURS: frozenset(),
    RuleKind.DEVICE_STALE: frozenset({"roles"}),
}
_COMMON_KEYS = frozenset(
    {"id", "kind", "severity", "title", "for_minutes", "cooldown_minutes", "propose_switch_off", "enabled"}
)


@dataclass(frozen=True, kw_only=True, slots=True)
class SafetyRule:
    id: str
    kind: RuleKind
    severity: Severity
    title: str
    #: the condition must hold this long before it is a finding (0: at once)
    for_minutes: float = 0.0
    #: after a finding opens, the same rule and device give no new finding for this long
    cooldown_minutes: float = 60.0
    #: draft a ``hubitat.switch.set`` off proposal for the outlet (still needing a person's approval)
    propose_switch_off: bool = False
    threshold_watts: float = 50.0
    near_zero_watts: float = 10.0
    expected_statuses: tuple[str, ...] = ("loading", "firing", "in-progress")
    scheduled_statuses: tuple[str, ...] = ("scheduled",)
    scheduled_grace_minutes: float = 30.0
    firing_statuses: tuple[str, ...] = ("firing", "in-progress")
    roles: tuple[DeviceRole, ...] = (DeviceRole.KILN_OUTLET, DeviceRole.DOOR, DeviceRole.WATCHED)

    def definition(self) -> dict[str, Any]:
        common: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind.value,
            "severity": self.severity.value,
            "title": self.title,
            "for_minutes": self.for_minutes,
            "cooldown_minutes": self.cooldown_minutes,
            "propose_switch_off": self.propose_switch_off,
        }
        extra: dict[str, Any] = {
            "threshold_watts": self.threshold_watts,
            "expected_statuses": list(self.expected_statuses),
            "scheduled_statuses": list(self.scheduled_statuses),
            "scheduled_grace_minutes": self.scheduled_grace_minutes,
            "near_zero_watts": self.near_zero_watts,
            "firing_statuses": list(self.firing_statuses),
            "roles": [r.value for r in self.roles],
        }
        return common | {k: v for k, v in extra.items() if k in _KIND_KEYS[self.kind]}


@dataclass(frozen=True, kw_only=True, slots=True)
class SafetyRuleTable:
    version: str
    #: a reading older than this (by its device's last event) is stale: never trusted
    reading_max_age_minutes: float
    rules: tuple[SafetyRule, ...]

    def definition(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "readings": {"max_age_minutes": self.reading_max_age_minutes},
            "rules": [r.definition() for r in self.rules],
        }

    @property
    def hash(self) -> str:
        return sha256_hex(self.definition())

    def rule(self, rule_id: str) -> SafetyRule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)


# --- parsing ---------------------------------------------------------------------------------------


def _invalid(source: str, message: str) -> ConfigError:
    return ConfigError(f"safety rules {source}: {message}")


def _number(raw: Any, where: str, source: str, *, minimum: float = 0.0) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < minimum:
        raise _invalid(source, f"{where} must be a number >= {minimum:g}, got {raw!r}")
    return float(raw)


def _strings(raw: Any, where: str, source: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(v, str) and v for v in raw):
        raise _invalid(source, f"{where} must be a non-empty list of strings")
    return tuple(raw)


def _parse_rule(raw: Any, index: int, source: str) -> SafetyRule | None:
    where = f"rules[{index}]"
    if not isinstance(raw, Mapping):
        raise _invalid(source, f"{where}: each rule is a [[rules]] table")
    try:
        kind = RuleKind(str(raw.get("kind")))
    except ValueError:
        known = ", ".join(k.value for k in RuleKind)
        raise _invalid(source, f"{where}: kind {raw.get('kind')!r} is unknown (known: {known})") from None
    unknown = sorted(set(raw) - _COMMON_KEYS - _KIND_KEYS[kind])
    if unknown:
        raise _invalid(source, f"{where}: unknown key(s) {', '.join(unknown)} for a {kind.value} rule")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not _RULE_ID.match(rule_id):
        raise _invalid(source, f"{where}: id {rule_id!r} must look like safety.kiln_left_on")
    where = f"rules[{index}] ({rule_id})"
    try:
        severity = Severity(str(raw.get("severity")))
    except ValueError:
        raise _invalid(source, f"{where}: severity must be one of info, low, medium, high") from None
    title = raw.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > 200:
        raise _invalid(source, f"{where}: title must be 1-200 characters")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise _invalid(source, f"{where}: enabled must be true or false")
    propose = raw.get("propose_switch_off", False)
    if not isinstance(propose, bool):
        raise _invalid(source, f"{where}: propose_switch_off must be true or false")
    if propose and kind is not RuleKind.KILN_POWER_WITHOUT_FIRING:
        raise _invalid(source, f"{where}: only a kiln_power_without_firing rule may propose a switch-off")
    values: dict[str, Any] = {
        "id": rule_id,
        "kind": kind,
        "severity": severity,
        "title": title.strip(),
        "for_minutes": _number(raw.get("for_minutes", 0), f"{where}: for_minutes", source),
        "cooldown_minutes": _number(raw.get("cooldown_minutes", 60), f"{where}: cooldown_minutes", source),
        "propose_switch_off": propose,
    }
    for key in ("threshold_watts", "near_zero_watts", "scheduled_grace_minutes"):
        if key in raw:
            values[key] = _number(raw[key], f"{where}: {key}", source)
    for key in ("expected_statuses", "scheduled_statuses", "firing_statuses"):
        if key in raw:
            values[key] = _strings(raw[key], f"{where}: {key}", source)
    if "roles" in raw:
        try:
            values["roles"] = tuple(DeviceRole(r) for r in _strings(raw["roles"], f"{where}: roles", source))
        except ValueError:
            roles = ", ".join(r.value for r in DeviceRole)
            raise _invalid(source, f"{where}: roles must be among {roles}") from None
    rule = SafetyRule(**values)
    if kind is RuleKind.FIRING_WITHOUT_POWER and rule.for_minutes <= 0:
        # a kiln element cycles off for a moment during every firing: an instant reading proves nothing
        raise _invalid(source, f"{where}: a firing_without_power rule needs for_minutes > 0")
    return rule if enabled else None


def parse_safety_rules(data: Mapping[str, Any], *, source: str = "(inline)") -> SafetyRuleTable:
    """Validate a safety rule table given as plain data; every problem is a ConfigError naming the rule."""
    unknown = sorted(set(data) - {"version", "readings", "rules"})
    if unknown:
        raise _invalid(
            source, f"unknown top-level key(s) {', '.join(unknown)} (expected version, readings, rules)"
        )
    version = data.get("version")
    if not isinstance(version, str) or not version.strip():
        raise _invalid(source, "'version' must be a non-empty string (bump it on every change)")
    readings = data.get("readings", {})
    if not isinstance(readings, Mapping) or set(readings) - {"max_age_minutes"}:
        raise _invalid(source, "[readings] takes only max_age_minutes")
    max_age = _number(readings.get("max_age_minutes", 15), "readings.max_age_minutes", source, minimum=1)
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise _invalid(source, "'rules' must be a non-empty list of [[rules]] tables")
    parsed = [_parse_rule(r, i, source) for i, r in enumerate(raw_rules)]
    rules = tuple(r for r in parsed if r is not None)
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise _invalid(source, "two rules share an id")
    return SafetyRuleTable(version=version.strip(), reading_max_age_minutes=max_age, rules=rules)


def parse_safety_rules_toml(text: str, *, source: str) -> SafetyRuleTable:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise _invalid(source, f"not valid TOML: {err}") from err
    return parse_safety_rules(data, source=source)
