"""The safety watch: every minute (under the scheduler's leader) read the safety devices and the kiln
firings, evaluate the safety rules, and turn each new finding into a stored finding, an ops draft (with a
*draft* switch-off proposal for a kiln left on — never executed here) and a notification.

A finding opens once per rule and device and stays open while its condition holds (seen again: no new
alert); when the condition stops it is resolved; within the rule's cooldown after opening, the same
condition coming back opens nothing new. Every opening and resolution is audited.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Protocol

from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft
from studio_brain.domain.calendar import EMPTY_CALENDAR, DayKind, StudioCalendar
from studio_brain.domain.drafts import DraftKind, Evidence, Finding
from studio_brain.domain.errors import CloudReadError, ConfigError, StudioBrainError
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.safety import (
    DeviceReading,
    DeviceRole,
    FindingRecord,
    FindingStatus,
    Firing,
    Observation,
    RuleKind,
    SafetyFinding,
    SafetyRuleTable,
    StudioHours,
    due_findings,
    evaluate,
    track_onsets,
)
from studio_brain.domain.times import parse_iso
from studio_brain.logging import get_logger
from studio_brain.ports import Clock, EventStore, IdFactory
from studio_brain.ports.safety import FiringReader, SafetyStore
from studio_brain.services.notify import NotificationService

log = get_logger(__name__)

WATCH_ACTOR = "safety-watch"


class DeviceSource(Protocol):
    """ConnectorHealthService.read_devices: normalised readings of one connector (errors reported, not raised)."""

    async def read_devices(self, connector_id: str | None = None) -> Sequence[Any]: ...


class SafetyDrafts(Protocol):
    async def add_safety_draft(
        self, finding: Finding, *, actor_id: str, switch_off_device: str | None = None
    ) -> tuple[Any, str | None, str | None]: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceSelection:
    """Which devices are which, by id or by label (case-insensitive), from settings."""

    connector: str = "hubitat"
    kiln_outlet: str = ""
    #: empty: every device with a ``contact`` or ``lock`` attribute is a door
    doors: tuple[str, ...] = ()
    #: more devices whose silence matters; ``connector:device`` reads another connector
    #: (``roborock:vacuum.roborock_s7``), a plain name the main one
    watched: tuple[str, ...] = ()
    #: the main connector only: no auto-detected doors on the others
    auto_doors: bool = True

    def split(self) -> list[DeviceSelection]:
        """One selection per connector read: this one, and one per other connector its watched list names."""
        main: list[str] = []
        others: dict[str, list[str]] = {}
        for name in self.watched:
            prefix, sep, rest = name.partition(":")
            if sep and rest and _CONNECTOR_ID.match(prefix) and prefix != self.connector:
                others.setdefault(prefix, []).append(rest)
            else:
                main.append(rest if sep and prefix == self.connector else name)
        first = DeviceSelection(
            connector=self.connector,
            kiln_outlet=self.kiln_outlet,
            doors=self.doors,
            watched=tuple(main),
            kiln_id=self.kiln_id,
            auto_doors=self.auto_doors,
        )
        return [first] + [
            DeviceSelection(connector=c, watched=tuple(names), auto_doors=False)
            for c, names in others.items()
        ]

    #: the kilnId (in kilnFirings) the kiln outlet serves; None: any firing counts
    kiln_id: str | None = None


_CONNECTOR_ID = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


def _matches(device: Mapping[str, Any], wanted: str) -> bool:
    wanted = wanted.strip().lower()
    return wanted in {str(device.get("id", "")).lower(), str(device.get("label", "")).lower()}


def _parse_time(value: Any) -> datetime | None:
    return parse_iso(value, naive="keep")


def select_readings(
    selection: DeviceSelection, devices: Sequence[Mapping[str, Any]], *, error: str | None, read_at: datetime
) -> list[DeviceReading]:
    """The safety devices among a connector's readings; a configured device that is missing, or a
    connector that failed, gives a reading with an error (never a silent gap)."""
    wanted: list[tuple[str, DeviceRole]] = []
    if selection.kiln_outlet:
        wanted.append((selection.kiln_outlet, DeviceRole.KILN_OUTLET))
    wanted += [(d, DeviceRole.DOOR) for d in selection.doors]
    wanted += [(d, DeviceRole.WATCHED) for d in selection.watched]
    if error is not None:
        names = [w for w, _ in wanted] or (["(all doors)"] if selection.auto_doors else [])
        roles = [r for _, r in wanted] or ([DeviceRole.DOOR] if selection.auto_doors else [])
        return [
            DeviceReading(
                device_id=name,
                label=name,
                role=role,
                connector=selection.connector,
                read_at=read_at,
                error=error,
            )
            for name, role in zip(names, roles, strict=True)
        ]
    out: list[DeviceReading] = []
    seen: set[str] = set()

    def reading(device: Mapping[str, Any], role: DeviceRole) -> DeviceReading:
        attributes = device.get("attributes")
        return DeviceReading(
            device_id=str(device.get("id")),
            label=str(device.get("label") or device.get("id")),
            role=role,
            connector=selection.connector,
            read_at=read_at,
            online=device.get("online") if isinstance(device.get("online"), bool) else None,
            last_event_at=_parse_time(device.get("lastEventAt")),
            attributes=dict(attributes) if isinstance(attributes, Mapping) else {},
        )

    for name, role in wanted:
        found = next((d for d in devices if _matches(d, name)), None)
        if found is None:
            out.append(
                DeviceReading(
                    device_id=name,
                    label=name,
                    role=role,
                    connector=selection.connector,
                    read_at=read_at,
                    error=f"no device {name!r} on {selection.connector}",
                )
            )
            continue
        if str(found.get("id")) in seen:
            continue
        seen.add(str(found.get("id")))
        out.append(reading(found, role))
    if not selection.doors and selection.auto_doors:
        for device in devices:
            attributes = device.get("attributes") or {}
            if str(device.get("id")) not in seen and ("contact" in attributes or "lock" in attributes):
                seen.add(str(device.get("id")))
                out.append(reading(device, DeviceRole.DOOR))
    return out


def _record_finding(
    finding: SafetyFinding, *, tenant_id: str, finding_id: str, table: SafetyRuleTable
) -> FindingRecord:
    return FindingRecord(
        id=finding_id,
        tenant_id=tenant_id,
        rule_id=finding.rule_id,
        rule_kind=finding.rule_kind,
        subject=finding.subject,
        dedupe_key=finding.dedupe_key,
        severity=finding.severity,
        title=finding.title,
        summary=finding.summary,
        status=FindingStatus.OPEN,
        cooldown=finding.cooldown,
        onset_at=finding.onset_at,
        detected_at=finding.detected_at,
        last_seen_at=finding.detected_at,
        resolved_at=None,
        evidence={**finding.evidence, "rulesVersion": table.version, "rulesHash": table.hash},
        rules_version=table.version,
        rules_hash=table.hash,
    )


def alert_text(
    record: FindingRecord, *, cockpit_url: str, proposal_id: str | None, zone: tzinfo
) -> tuple[str, str]:
    """Title and body of the alert for a finding (plain text: every Apprise target can show it)."""
    title = f"[{record.severity.value.upper()}] {record.title}"
    local = record.onset_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
    lines = [record.summary + ".", f"Since {local} (rule {record.rule_id}).", ""]
    for r in record.evidence.get("readings", []):
        attrs = ", ".join(
            f"{k}={v}" for k, v in sorted((r.get("attributes") or {}).items()) if k != "healthStatus"
        )
        lines.append(
            f"- {r.get('label')}: {attrs or r.get('error') or 'no reading'} (last event {r.get('lastEventAt')})"
        )
    firings = record.evidence.get("firings", [])
    if firings:
        lines.append(
            "Firings: "
            + "; ".join(f"{f['id']} {f['status']} {f.get('kilnId') or ''}".strip() for f in firings)
        )
    elif "firings" in record.evidence:
        lines.append("Firings in progress: none.")
    if proposal_id:
        lines += [
            "",
            f"A switch-off proposal is drafted and waits for a person to approve it: {cockpit_url}/proposals/{proposal_id}",
        ]
    lines += ["", f"Cockpit: {cockpit_url}/safety"]
    return title, "\n".join(lines)


class SafetyWatch:
    def __init__(
        self,
        *,
        tenant_id: str,
        table: SafetyRuleTable,
        store: SafetyStore,
        devices: DeviceSource,
        firings: FiringReader,
        selection: DeviceSelection,
        hours: StudioHours,
        notifications: NotificationService | None,
        drafts: SafetyDrafts | None,
        clock: Clock,
        ids: IdFactory,
        zone: tzinfo,
        cockpit_url: str,
        events: EventStore | None = None,
        calendar: StudioCalendar | None = None,
    ) -> None:
        self._tenant = tenant_id
        #: the studio calendar (issue 19): on a closure day the studio is closed all day
        self.calendar = calendar or EMPTY_CALENDAR
        #: connectors the last pass found without settings (nothing to watch on them)
        self.unconfigured: list[str] = []
        self.table = table
        self._store = store
        self._devices = devices
        self.firings = firings
        self.selection = selection
        self.hours = hours
        self._notifications = notifications
        self._drafts = drafts
        self._clock = clock
        self._ids = ids
        self._zone = zone
        self._cockpit = cockpit_url.rstrip("/")
        self._events = events

    @property
    def notifications(self) -> NotificationService | None:
        return self._notifications

    async def observe(self) -> tuple[Observation, str | None]:
        """Read the devices and the firings now; the second value explains a cloud read failure."""
        now = self._clock.now()
        readings: list[DeviceReading] = []
        self.unconfigured = []
        for part in self.selection.split():
            try:
                results = await self._devices.read_devices(part.connector)
            except ConfigError as err:
                # a connector with no settings (a studio without a hub): nothing to watch there, said in the
                # run summary and on the Safety page — not a "device stale" alarm every few hours
                self.unconfigured.append(f"{part.connector}: {err.message}")
                continue
            except StudioBrainError as err:  # an unknown connector id in the watched list
                results, failure = [], err.message
            else:
                failure = "connector not configured"
            result = results[0] if results else None
            devices = list(getattr(result, "devices", []) or [])
            error = getattr(result, "error", None) if result is not None else failure
            readings += select_readings(part, devices, error=error, read_at=now)
        firings: tuple[Firing, ...] | None
        firings_error = None
        try:
            firings = tuple(await self.firings.current_firings())
        except CloudReadError as err:
            firings, firings_error = None, err.message
            log.warning("safety.firings_unreadable", error=err.message)
        obs = Observation(
            at=now,
            zone=self._zone,
            readings=tuple(readings),
            firings=firings,
            hours=self.hours,
            kiln_id=self.selection.kiln_id,
            closure=self._closure(now),
        )
        return obs, firings_error

    def _closure(self, now: datetime) -> str | None:
        day = self.calendar.on(now.astimezone(self._zone).date())
        return day.reason if day is not None and day.kind is DayKind.CLOSURE else None

    async def run(self) -> dict[str, Any]:
        """One watch pass; the summary goes into the job run."""
        obs, firings_error = await self.observe()
        now = obs.at
        conditions = evaluate(self.table, obs)
        onsets = track_onsets(conditions, await self._store.onsets(self._tenant), now)
        await self._store.save_onsets(self._tenant, onsets, now)
        opened: list[str] = []
        for finding in due_findings(conditions, onsets, now):
            record = await self._open(finding, now)
            if record is not None:
                opened.append(record.id)
        resolved = await self._store.resolve_absent(self._tenant, [c.key for c in conditions], now)
        for record in resolved:
            await self._audit("safety.finding.resolved", record, f"{record.title}: condition cleared")
            log.info(
                "safety.finding.resolved",
                finding_id=record.id,
                rule_id=record.rule_id,
                subject=record.subject,
            )
        delivered = await self._notifications.deliver_due() if self._notifications is not None else {}
        return {
            "rulesVersion": self.table.version,
            "devices": len(obs.readings),
            "firings": None if obs.firings is None else len(obs.firings),
            "firingsError": firings_error,
            "unconfigured": list(self.unconfigured),
            "conditions": [c.key for c in conditions],
            "opened": opened,
            "resolved": [r.id for r in resolved],
            "notifications": delivered,
        }

    async def _open(self, finding: SafetyFinding, now: datetime) -> FindingRecord | None:
        latest = await self._store.latest_for(self._tenant, finding.dedupe_key)
        if latest is not None and latest.status is FindingStatus.OPEN:
            await self._store.touch(self._tenant, latest.id, now)
            return None
        if latest is not None and latest.cooling_down(now):
            log.info("safety.finding.cooling_down", rule_id=finding.rule_id, subject=finding.subject)
            return None
        record = _record_finding(
            finding, tenant_id=self._tenant, finding_id=self._ids.new_id(), table=self.table
        )
        await self._store.add(record)
        await self._audit("safety.finding.opened", record, record.summary)
        log.warning(
            "safety.finding.opened",
            finding_id=record.id,
            rule_id=record.rule_id,
            subject=record.subject,
            severity=record.severity.value,
        )
        draft_id = proposal_id = None
        if self._drafts is not None:
            try:
                _, draft_id, proposal_id = await self._drafts.add_safety_draft(
                    self._draft(record), actor_id=WATCH_ACTOR, switch_off_device=finding.switch_off_device
                )
            except StudioBrainError as err:  # the finding and its alert matter more than the draft
                log.warning("safety.draft_failed", finding_id=record.id, error=err.message)
            await self._store.link(self._tenant, record.id, draft_id=draft_id, proposal_id=proposal_id)
        if self._notifications is not None:
            title, body = alert_text(
                record, cockpit_url=self._cockpit, proposal_id=proposal_id, zone=self._zone
            )
            await self._notifications.enqueue_alert(
                finding_id=record.id, severity=record.severity, title=title, body=body
            )
        return record

    def _draft(self, record: FindingRecord) -> Finding:
        readings = record.evidence.get("readings", [])
        metrics: dict[str, Any] = {}
        for r in readings:
            for name, value in (r.get("attributes") or {}).items():
                if isinstance(value, int | float | str) and name in {"power", "switch", "contact", "lock"}:
                    metrics[f"device.{r.get('deviceId')}.{name}"] = {
                        "value": value,
                        "at": r.get("lastEventAt"),
                    }
        recommendation = (
            "Check the kiln now; approve the drafted switch-off proposal if no one is firing it."
            if record.rule_kind is RuleKind.KILN_POWER_WITHOUT_FIRING
            else "Check the device and the room; resolve the cause."
        )
        return Finding(
            kind=DraftKind.OPS,
            rule_id=f"ops.{record.rule_id}",
            # one draft per finding: the watch's own dedupe and cooldown decided this finding is new, so a
            # kiln left on twice in a day gets a second switch-off draft (the drafts' per-day key would not)
            subject=f"{record.subject}@{record.id}",
            severity=record.severity,
            title=record.title,
            rationale=record.summary,
            recommendation=recommendation,
            snapshot_date=None,
            evidence=Evidence(metrics=metrics, rule_ids=(record.rule_id,)),
            confidence=0.9,
            body={"findingId": record.id, "evidence": record.evidence},
            cooldown_hours=record.cooldown.total_seconds() / 3600,
        )

    async def _audit(self, action: str, record: FindingRecord, rationale: str) -> None:
        if self._events is None:
            return
        await self._events.append(
            AuditDraft(
                tenant_id=self._tenant,
                actor_type=ActorType.SYSTEM,
                actor_id=WATCH_ACTOR,
                action=action,
                target="local",
                rationale=rationale[:1000],
                approval_state=ApprovalState.NOT_APPLICABLE,
                input_hash=sha256_hex(record.evidence),
                request_id=record.id,
                correlation_id=record.id,
                metadata={
                    "findingId": record.id,
                    "ruleId": record.rule_id,
                    "subject": record.subject,
                    "severity": record.severity.value,
                    "rulesVersion": record.rules_version,
                },
            )
        )

    async def findings(self, *, status: str | None = None, limit: int = 50) -> list[FindingRecord]:
        return await self._store.list(self._tenant, status=status, limit=limit)


SAFETY_WATCH_JOB = "safety-watch"


def safety_watch_job(watch: SafetyWatch) -> Callable[[Any], Awaitable[Mapping[str, Any]]]:
    """The job body: one watch pass (the scheduler runs it on the leader only)."""

    async def body(_ctx: Any) -> Mapping[str, Any]:
        return await watch.run()

    return body
