"""Safety rules as data and the findings they produce: device readings joined with cloud firings and studio hours.

Pure: the caller passes the time, the readings (already normalised by a connector), the firings read from
the cloud and the studio's hours. A rule table is versioned and hashed like the count rules (ADR 0005);
the packaged one is ``rules/safety_rules.toml``.

Two invariants the evaluation keeps:
- a reading from a stale, offline or failed device is never *trusted*: it never counts as "off", never as
  "on"; only the ``device_stale`` rule looks at it (so a silent sensor is a finding of its own);
- a condition becomes a finding only after holding ``for_minutes`` (its onset is tracked by the caller
  between runs, see :func:`track_onsets`); a finding carries its evidence, a dedupe key and a cooldown.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from studio_brain.domain.drafts import Severity
from studio_brain.domain.errors import ConfigError, InputInvalid
from studio_brain.domain.hashing import sha256_hex

_RULE_ID = re.compile(r"^safety\.[a-z0-9_]{1,64}$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


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


# --- studio hours ----------------------------------------------------------------------------------


def _hhmm(text: str, where: str) -> time | None:
    match = _HHMM.match(text)
    if not match or (match.group(1) == "24" and match.group(2) != "00"):
        raise InputInvalid(f"{where}: {text!r} is not a time like 09:00")
    if match.group(1) == "24":
        return None  # end of day
    return time(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True, kw_only=True, slots=True)
class StudioHours:
    """Opening hours per weekday (0 = Monday), local wall-clock time; a day without hours is closed."""

    #: weekday -> (open, close); close None means midnight at the end of the day
    days: Mapping[int, tuple[time, time | None]]
    text: str = ""

    def is_open(self, local: datetime) -> bool:
        hours = self.days.get(local.weekday())
        if hours is None:
            return False
        opens, closes = hours
        now = local.time().replace(tzinfo=None)
        return opens <= now and (closes is None or now < closes)


def parse_studio_hours(text: str) -> StudioHours:
    """``mon-fri 09:00-21:00; sat 10:00-17:00; sun closed`` → StudioHours (InputInvalid on a bad group)."""
    days: dict[int, tuple[time, time | None]] = {}
    groups = [g.strip().lower() for g in text.split(";") if g.strip()]
    if not groups:
        raise InputInvalid("studio hours are empty; e.g. 'mon-fri 09:00-21:00; sat 10:00-17:00'")
    for group in groups:
        parts = group.split()
        if len(parts) != 2:
            raise InputInvalid(f"studio hours {group!r}: expected 'DAYS HH:MM-HH:MM' or 'DAYS closed'")
        day_part, span = parts
        first, _, last = day_part.partition("-")
        if first not in _DAYS or (last and last not in _DAYS):
            raise InputInvalid(f"studio hours {group!r}: days are mon..sun, e.g. mon-fri")
        start, end = _DAYS.index(first), _DAYS.index(last or first)
        selected = list(range(start, end + 1)) if start <= end else [*range(start, 7), *range(0, end + 1)]
        if span == "closed":
            for d in selected:
                days.pop(d, None)
            continue
        opens_text, _, closes_text = span.partition("-")
        opens = _hhmm(opens_text, f"studio hours {group!r}")
        closes = _hhmm(closes_text, f"studio hours {group!r}")
        if opens is None or (closes is not None and closes <= opens):
            raise InputInvalid(f"studio hours {group!r}: closing must come after opening on the same day")
        for d in selected:
            days[d] = (opens, closes)
    return StudioHours(days=days, text=text.strip())


# --- observations ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceReading:
    """One safety device as the watch saw it: a normalised connector reading, or why there is none."""

    device_id: str
    label: str
    role: DeviceRole
    connector: str
    read_at: datetime
    online: bool | None = None
    last_event_at: datetime | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    #: the read failed (connector down, breaker open ...) or the configured device was not found
    error: str | None = None

    def age_minutes(self, now: datetime) -> float | None:
        if self.last_event_at is None:
            return None
        return (now - self.last_event_at).total_seconds() / 60.0

    def untrusted_because(self, now: datetime, max_age_minutes: float) -> str | None:
        """Why this reading may not be used as a fact about the device (None: it may)."""
        if self.error is not None:
            return f"unreadable: {self.error}"
        if self.online is False:
            return "offline"
        age = self.age_minutes(now)
        if age is None:
            return "no last-event time"
        if age > max_age_minutes:
            return f"silent for {age:.0f} min"
        return None

    def power(self) -> float | None:
        value = self.attributes.get("power")
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return float(value)
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "deviceId": self.device_id,
            "label": self.label,
            "role": self.role.value,
            "connector": self.connector,
            "readAt": _iso(self.read_at),
            "online": self.online,
            "lastEventAt": _iso(self.last_event_at),
            "attributes": dict(self.attributes),
            "error": self.error,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Firing:
    """A kilnFirings document, as much of it as the rules read."""

    id: str
    status: str
    kiln_id: str | None = None
    scheduled_for: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "kilnId": self.kiln_id,
            "scheduledFor": _iso(self.scheduled_for),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Observation:
    at: datetime
    zone: tzinfo
    readings: tuple[DeviceReading, ...]
    #: None: the cloud could not be read; rules that need the firings then decide nothing
    firings: tuple[Firing, ...] | None
    hours: StudioHours
    #: the kilnId the kiln outlet serves; None: any firing counts
    kiln_id: str | None = None
    #: today is a closure in the studio calendar (e.g. ``closure: Winter break``): closed all day
    closure: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Condition:
    """A rule holding right now for one device (not yet a finding: it may need to hold longer)."""

    rule: SafetyRule
    subject: str
    summary: str
    evidence: dict[str, Any]
    #: when the condition is known to have begun at the latest (a silent device: its last event)
    since: datetime | None = None

    @property
    def key(self) -> str:
        return condition_key(self.rule.id, self.subject)


def condition_key(rule_id: str, subject: str) -> str:
    return f"{rule_id}:{subject}"


@dataclass(frozen=True, kw_only=True, slots=True)
class SafetyFinding:
    """A condition that held long enough: what is stored, drafted and notified."""

    rule_id: str
    rule_kind: RuleKind
    subject: str
    severity: Severity
    title: str
    summary: str
    dedupe_key: str
    cooldown: timedelta
    onset_at: datetime
    detected_at: datetime
    evidence: dict[str, Any]
    #: the outlet to switch off, when the rule drafts a proposal
    switch_off_device: str | None = None


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _matches_kiln(firing: Firing, kiln_id: str | None) -> bool:
    return kiln_id is None or firing.kiln_id is None or firing.kiln_id == kiln_id


def _firing_expected(rule: SafetyRule, obs: Observation, firings: Sequence[Firing]) -> list[Firing]:
    """The firings that explain the kiln drawing power now (in progress, or scheduled about now)."""
    grace = timedelta(minutes=rule.scheduled_grace_minutes)
    explaining = []
    for f in firings:
        if not _matches_kiln(f, obs.kiln_id):
            continue
        if f.status in rule.expected_statuses or (
            f.status in rule.scheduled_statuses
            and f.scheduled_for is not None
            and abs(f.scheduled_for - obs.at) <= grace
        ):
            explaining.append(f)
    return explaining


def _evidence(
    rule: SafetyRule, readings: Iterable[DeviceReading], firings: Iterable[Firing], **extra: Any
) -> dict[str, Any]:
    return {
        "ruleId": rule.id,
        "readings": [r.to_json() for r in readings],
        "firings": [f.to_json() for f in firings],
        **extra,
    }


def evaluate(table: SafetyRuleTable, obs: Observation) -> list[Condition]:
    """Every rule over the observation: the conditions holding now (ordered by rule, then device)."""
    max_age = table.reading_max_age_minutes
    out: list[Condition] = []
    for rule in table.rules:
        for reading in obs.readings:
            condition = _check(rule, reading, obs, max_age)
            if condition is not None:
                out.append(condition)
    return out


def _check(rule: SafetyRule, reading: DeviceReading, obs: Observation, max_age: float) -> Condition | None:
    distrust = reading.untrusted_because(obs.at, max_age)
    match rule.kind:
        case RuleKind.DEVICE_STALE:
            if reading.role not in rule.roles or distrust is None:
                return None
            # a silent device has been silent since its last event; an offline or unreadable one since
            # the watch first saw it so (the caller's onset)
            silent_since = (
                reading.last_event_at if reading.error is None and reading.online is not False else None
            )
            return Condition(
                rule=rule,
                subject=reading.device_id,
                summary=f"{reading.label} is {distrust}",
                evidence=_evidence(rule, [reading], [], reason=distrust),
                since=silent_since,
            )
        case RuleKind.KILN_POWER_WITHOUT_FIRING:
            if reading.role is not DeviceRole.KILN_OUTLET or distrust is not None or obs.firings is None:
                return None
            power = reading.power()
            if power is None or power <= rule.threshold_watts:
                return None
            if _firing_expected(rule, obs, obs.firings):
                return None
            nearby = [f for f in obs.firings if _matches_kiln(f, obs.kiln_id)]
            return Condition(
                rule=rule,
                subject=reading.device_id,
                summary=f"{reading.label} draws {power:.0f} W and no firing is in progress",
                evidence=_evidence(
                    rule, [reading], nearby, powerWatts=power, thresholdWatts=rule.threshold_watts
                ),
            )
        case RuleKind.FIRING_WITHOUT_POWER:
            if reading.role is not DeviceRole.KILN_OUTLET or distrust is not None or obs.firings is None:
                return None
            firing = [
                f for f in obs.firings if f.status in rule.firing_statuses and _matches_kiln(f, obs.kiln_id)
            ]
            if not firing:
                return None
            power = reading.power()
            if power is None:
                if reading.attributes.get("switch") != "off":
                    return None
                power = 0.0
            if power > rule.near_zero_watts:
                return None
            return Condition(
                rule=rule,
                subject=reading.device_id,
                summary=f"a firing is in progress but {reading.label} draws {power:.0f} W",
                evidence=_evidence(
                    rule, [reading], firing, powerWatts=power, nearZeroWatts=rule.near_zero_watts
                ),
            )
        case RuleKind.DOOR_OPEN_AFTER_HOURS:
            if reading.role is not DeviceRole.DOOR or distrust is not None:
                return None
            local = obs.at.astimezone(obs.zone)
            if obs.closure is None and obs.hours.is_open(local):
                return None
            contact, lock = reading.attributes.get("contact"), reading.attributes.get("lock")
            if contact == "open":
                state = "open"
            elif lock == "unlocked":
                state = "unlocked"
            else:
                return None
            return Condition(
                rule=rule,
                subject=reading.device_id,
                summary=f"{reading.label} is {state} outside studio hours",
                evidence=_evidence(
                    rule,
                    [reading],
                    [],
                    studioHours=obs.hours.text,
                    localTime=local.strftime("%a %H:%M"),
                    closure=obs.closure,
                ),
            )


def track_onsets(
    conditions: Sequence[Condition], onsets: Mapping[str, datetime], now: datetime
) -> dict[str, datetime]:
    """The onset of every condition holding now: kept from before, else its ``since``, else now.
    Conditions that no longer hold drop out (their onset is forgotten: they start afresh)."""
    result: dict[str, datetime] = {}
    for c in conditions:
        known = onsets.get(c.key)
        candidates = [t for t in (known, c.since) if t is not None]
        result[c.key] = min(candidates) if candidates else now
    return result


def due_findings(
    conditions: Sequence[Condition], onsets: Mapping[str, datetime], now: datetime
) -> list[SafetyFinding]:
    """The conditions that have held for their rule's ``for_minutes``, as findings."""
    findings = []
    for c in conditions:
        onset = onsets.get(c.key, now)
        if now - onset < timedelta(minutes=c.rule.for_minutes):
            continue
        findings.append(
            SafetyFinding(
                rule_id=c.rule.id,
                rule_kind=c.rule.kind,
                subject=c.subject,
                severity=c.rule.severity,
                title=c.rule.title,
                summary=c.summary,
                dedupe_key=c.key,
                cooldown=timedelta(minutes=c.rule.cooldown_minutes),
                onset_at=onset,
                detected_at=now,
                evidence={**c.evidence, "onsetAt": _iso(onset), "detectedAt": _iso(now)},
                switch_off_device=c.subject if c.rule.propose_switch_off else None,
            )
        )
    return findings


__all__: Sequence[str] = [
    "Condition",
    "DeviceReading",
    "DeviceRole",
    "Firing",
    "Observation",
    "RuleKind",
    "SafetyFinding",
    "SafetyRule",
    "SafetyRuleTable",
    "StudioHours",
    "condition_key",
    "due_findings",
    "evaluate",
    "parse_safety_rules",
    "parse_safety_rules_toml",
    "parse_studio_hours",
    "track_onsets",
]


class FindingStatus(StrEnum):
    OPEN = "open"
    #: the condition stopped holding
    RESOLVED = "resolved"


@dataclass(frozen=True, kw_only=True, slots=True)
class FindingRecord:
    """A stored finding: open while its condition holds, resolved when it stops."""

    id: str
    tenant_id: str
    rule_id: str
    rule_kind: RuleKind
    subject: str
    dedupe_key: str
    severity: Severity
    title: str
    summary: str
    status: FindingStatus
    cooldown: timedelta
    onset_at: datetime
    detected_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
    evidence: dict[str, Any]
    rules_version: str
    rules_hash: str
    draft_id: str | None = None
    proposal_id: str | None = None

    def cooling_down(self, now: datetime) -> bool:
        """True while a new finding for the same rule and device would repeat this one."""
        return now - self.detected_at < self.cooldown
