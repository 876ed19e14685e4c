"""Safety findings: device readings joined with cloud firings and studio hours by the safety rules.

Pure: the caller passes the time, the readings (already normalised by a connector), the firings read from
the cloud and the studio's hours. The rules themselves are data (:mod:`studio_brain.domain.safety_rules`).

Two invariants the evaluation keeps:
- a reading from a stale, offline or failed device is never *trusted*: it never counts as "off", never as
  "on"; only the ``device_stale`` rule looks at it (so a silent sensor is a finding of its own);
- a condition becomes a finding only after holding ``for_minutes`` (its onset is tracked by the caller
  between runs, see :func:`track_onsets`); a finding carries its evidence, a dedupe key and a cooldown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from studio_brain.domain.drafts import Severity
from studio_brain.domain.safety_rules import (
    DeviceRole,
    RuleKind,
    SafetyRule,
    SafetyRuleTable,
    parse_safety_rules,
    parse_safety_rules_toml,
)
from studio_brain.domain.studio_hours import StudioHours, parse_studio_hours
from studio_brain.domain.times import iso

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
    return iso(value, utc=False)


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


__all__: Sequence[str] = [
    "Condition",
    "DeviceReading",
    "DeviceRole",
    "FindingRecord",
    "FindingStatus",
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
