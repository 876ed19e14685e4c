"""Safety rules as data: the packaged table validates, each rule joins readings with firings and studio
hours, a stale or failed reading is never taken as "off" (or "on"), and conditions become findings only
after holding their rule's time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from studio_brain.adapters.rule_files import load_safety_rules
from studio_brain.domain.drafts import Severity
from studio_brain.domain.errors import ConfigError, InputInvalid
from studio_brain.domain.safety import (
    DeviceReading,
    DeviceRole,
    Firing,
    Observation,
    RuleKind,
    SafetyRuleTable,
    due_findings,
    evaluate,
    parse_safety_rules,
    parse_safety_rules_toml,
    parse_studio_hours,
    track_onsets,
)

PHOENIX = ZoneInfo("America/Phoenix")
# Tuesday 2026-12-01 23:30 in Phoenix: the studio is closed
NIGHT = datetime(2026, 12, 2, 6, 30, tzinfo=UTC)
# Tuesday 2026-12-01 14:00 in Phoenix: open
AFTERNOON = datetime(2026, 12, 1, 21, 0, tzinfo=UTC)
HOURS = parse_studio_hours("mon-fri 09:00-21:00; sat-sun 10:00-18:00")


@pytest.fixture(scope="module")
def table() -> SafetyRuleTable:
    return load_safety_rules()


def outlet(
    now: datetime,
    *,
    power: float,
    age_minutes: float = 1,
    online: bool | None = True,
    error: str | None = None,
) -> DeviceReading:
    return DeviceReading(
        device_id="21",
        label="Kiln Room Outlet",
        role=DeviceRole.KILN_OUTLET,
        connector="hubitat",
        read_at=now,
        online=online,
        last_event_at=now - timedelta(minutes=age_minutes),
        attributes={"power": power, "switch": "on" if power > 1 else "off"},
        error=error,
    )


def door(now: datetime, *, contact: str = "closed", age_minutes: float = 1) -> DeviceReading:
    return DeviceReading(
        device_id="31",
        label="Back Door Contact",
        role=DeviceRole.DOOR,
        connector="hubitat",
        read_at=now,
        online=None,
        last_event_at=now - timedelta(minutes=age_minutes),
        attributes={"contact": contact, "battery": 92},
    )


def observe(now: datetime, *readings: DeviceReading, firings: tuple[Firing, ...] | None = ()) -> Observation:
    return Observation(
        at=now, zone=PHOENIX, readings=readings, firings=firings, hours=HOURS, kiln_id="kiln-1"
    )


def kinds(table: SafetyRuleTable, obs: Observation) -> list[str]:
    return [c.rule.kind.value for c in evaluate(table, obs)]


def test_the_packaged_table_holds_the_four_shipped_rules_with_a_version_and_hash(
    table: SafetyRuleTable,
) -> None:
    assert {r.kind for r in table.rules} == set(RuleKind)
    assert table.version
    assert len(table.hash) == 64
    assert table.rule("safety.kiln_power_without_firing").severity is Severity.HIGH
    assert table.rule("safety.kiln_power_without_firing").propose_switch_off
    assert table.rule("safety.firing_without_power").severity is Severity.MEDIUM
    assert table.rule("safety.door_open_after_hours").severity is Severity.HIGH
    assert table.rule("safety.device_stale").severity is Severity.MEDIUM


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {
                "id": "safety.x",
                "kind": "kiln_power_without_firing",
                "severity": "high",
                "title": "t",
                "colour": 1,
            },
            "unknown key",
        ),
        (
            {"id": "safety.x", "kind": "melting", "severity": "high", "title": "t"},
            "kind 'melting' is unknown",
        ),
        ({"id": "safety.x", "kind": "device_stale", "severity": "urgent", "title": "t"}, "severity"),
        ({"id": "kiln", "kind": "device_stale", "severity": "high", "title": "t"}, "must look like"),
        (
            {"id": "safety.x", "kind": "firing_without_power", "severity": "medium", "title": "t"},
            "for_minutes > 0",
        ),
        (
            {
                "id": "safety.x",
                "kind": "device_stale",
                "severity": "high",
                "title": "t",
                "propose_switch_off": True,
            },
            "only a kiln",
        ),
        (
            {
                "id": "safety.x",
                "kind": "kiln_power_without_firing",
                "severity": "high",
                "title": "t",
                "threshold_watts": -5,
            },
            "threshold_watts",
        ),
    ],
)
def test_a_bad_rule_is_refused_with_a_message_naming_it(rule: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_safety_rules({"version": "1", "rules": [rule]}, source="test.toml")


def test_a_table_without_version_or_with_a_duplicate_id_is_refused() -> None:
    rule = {"id": "safety.x", "kind": "device_stale", "severity": "high", "title": "t"}
    with pytest.raises(ConfigError, match="version"):
        parse_safety_rules({"rules": [rule]})
    with pytest.raises(ConfigError, match="share an id"):
        parse_safety_rules({"version": "1", "rules": [rule, rule]})
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_safety_rules_toml("version = ", source="x")


def test_a_disabled_rule_is_left_out_of_the_table() -> None:
    t = parse_safety_rules(
        {
            "version": "1",
            "rules": [
                {"id": "safety.x", "kind": "device_stale", "severity": "high", "title": "t", "enabled": False}
            ],
        }
    )
    assert t.rules == ()


def test_the_kiln_drawing_power_with_no_firing_is_a_condition(table: SafetyRuleTable) -> None:
    assert kinds(table, observe(NIGHT, outlet(NIGHT, power=1520))) == ["kiln_power_without_firing"]


def test_no_condition_while_a_firing_of_that_kiln_is_in_progress_or_loading(table: SafetyRuleTable) -> None:
    for status in ("firing", "in-progress", "loading"):
        firings = (Firing(id="f1", status=status, kiln_id="kiln-1"),)
        assert kinds(table, observe(NIGHT, outlet(NIGHT, power=1520), firings=firings)) == []


def test_a_firing_of_another_kiln_does_not_explain_this_outlet(table: SafetyRuleTable) -> None:
    firings = (Firing(id="f1", status="firing", kiln_id="gas-reduction"),)
    assert kinds(table, observe(NIGHT, outlet(NIGHT, power=1520), firings=firings)) == [
        "kiln_power_without_firing"
    ]


def test_a_firing_scheduled_about_now_explains_the_power_but_one_tomorrow_does_not(
    table: SafetyRuleTable,
) -> None:
    soon = (
        Firing(id="f1", status="scheduled", kiln_id="kiln-1", scheduled_for=NIGHT + timedelta(minutes=10)),
    )
    later = (Firing(id="f1", status="scheduled", kiln_id="kiln-1", scheduled_for=NIGHT + timedelta(days=1)),)
    assert kinds(table, observe(NIGHT, outlet(NIGHT, power=1520), firings=soon)) == []
    assert kinds(table, observe(NIGHT, outlet(NIGHT, power=1520), firings=later)) == [
        "kiln_power_without_firing"
    ]


def test_a_stale_offline_or_failed_outlet_reading_is_never_used_for_the_kiln_rules(
    table: SafetyRuleTable,
) -> None:
    firing = (Firing(id="f1", status="firing", kiln_id="kiln-1"),)
    for reading in (
        outlet(NIGHT, power=1520, age_minutes=120),
        outlet(NIGHT, power=1520, online=False),
        outlet(NIGHT, power=0, age_minutes=120),
        outlet(NIGHT, power=0, error="hubitat: UNAVAILABLE"),
    ):
        found = kinds(table, observe(NIGHT, reading, firings=firing)) + kinds(table, observe(NIGHT, reading))
        assert "kiln_power_without_firing" not in found
        assert "firing_without_power" not in found, "a stale zero must never count as off"
        assert "device_stale" in found


def test_unknown_firings_decide_nothing_about_the_kiln(table: SafetyRuleTable) -> None:
    assert kinds(table, observe(NIGHT, outlet(NIGHT, power=1520), firings=None)) == []


def test_a_firing_with_a_fresh_zero_reading_is_a_condition(table: SafetyRuleTable) -> None:
    firing = (Firing(id="f1", status="firing", kiln_id="kiln-1"),)
    assert kinds(table, observe(NIGHT, outlet(NIGHT, power=3), firings=firing)) == ["firing_without_power"]
    assert kinds(table, observe(NIGHT, outlet(NIGHT, power=1400), firings=firing)) == []


def test_a_door_open_is_a_condition_only_outside_studio_hours(table: SafetyRuleTable) -> None:
    assert kinds(table, observe(NIGHT, door(NIGHT, contact="open"))) == ["door_open_after_hours"]
    assert kinds(table, observe(AFTERNOON, door(AFTERNOON, contact="open"))) == []
    assert kinds(table, observe(NIGHT, door(NIGHT, contact="closed"))) == []
    lock = DeviceReading(
        device_id="14",
        label="Front Door Lock",
        role=DeviceRole.DOOR,
        connector="hubitat",
        read_at=NIGHT,
        last_event_at=NIGHT,
        attributes={"lock": "unlocked"},
    )
    assert kinds(table, observe(NIGHT, lock)) == ["door_open_after_hours"]


def test_a_condition_becomes_a_finding_only_after_its_rule_time(table: SafetyRuleTable) -> None:
    firing = (Firing(id="f1", status="firing", kiln_id="kiln-1"),)
    conditions = evaluate(table, observe(NIGHT, outlet(NIGHT, power=0), firings=firing))
    onsets = track_onsets(conditions, {}, NIGHT)
    assert due_findings(conditions, onsets, NIGHT) == []
    later = NIGHT + timedelta(minutes=15)
    conditions = evaluate(table, observe(later, outlet(later, power=0), firings=firing))
    onsets = track_onsets(conditions, onsets, later)
    [finding] = due_findings(conditions, onsets, later)
    assert finding.onset_at == NIGHT
    assert finding.severity is Severity.MEDIUM
    assert finding.dedupe_key == "safety.firing_without_power:21"
    assert finding.evidence["firings"] == [
        {"id": "f1", "status": "firing", "kilnId": "kiln-1", "scheduledFor": None}
    ]


def test_a_silent_device_dates_its_condition_from_its_last_event(table: SafetyRuleTable) -> None:
    conditions = evaluate(table, observe(NIGHT, door(NIGHT, age_minutes=90)))
    onsets = track_onsets(conditions, {}, NIGHT)
    [finding] = due_findings(conditions, onsets, NIGHT)
    assert finding.rule_kind is RuleKind.DEVICE_STALE
    assert finding.onset_at == NIGHT - timedelta(minutes=90)


def test_the_kiln_finding_carries_evidence_and_names_the_outlet_to_switch_off(table: SafetyRuleTable) -> None:
    conditions = evaluate(table, observe(NIGHT, outlet(NIGHT, power=1520)))
    [finding] = due_findings(conditions, track_onsets(conditions, {}, NIGHT), NIGHT)
    assert finding.switch_off_device == "21"
    assert finding.cooldown == timedelta(minutes=120)
    [reading] = finding.evidence["readings"]
    assert reading["attributes"]["power"] == 1520
    assert reading["lastEventAt"] == "2026-12-02T06:29:00Z"
    assert finding.evidence["ruleId"] == "safety.kiln_power_without_firing"


def test_a_condition_that_stops_holding_forgets_its_onset(table: SafetyRuleTable) -> None:
    conditions = evaluate(table, observe(NIGHT, outlet(NIGHT, power=1520)))
    onsets = track_onsets(conditions, {}, NIGHT)
    assert track_onsets([], onsets, NIGHT + timedelta(minutes=1)) == {}


def test_studio_hours_parse_day_ranges_and_closed_days() -> None:
    hours = parse_studio_hours("mon-fri 09:00-21:00; sat 10:00-17:00; sun closed")
    assert hours.is_open(datetime(2026, 12, 1, 9, 0, tzinfo=PHOENIX))
    assert not hours.is_open(datetime(2026, 12, 1, 21, 0, tzinfo=PHOENIX))
    assert hours.is_open(datetime(2026, 12, 5, 16, 59, tzinfo=PHOENIX))
    assert not hours.is_open(datetime(2026, 12, 6, 12, 0, tzinfo=PHOENIX))
    assert parse_studio_hours("mon-sun 00:00-24:00").is_open(datetime(2026, 12, 6, 23, 59, tzinfo=PHOENIX))


@pytest.mark.parametrize(
    "text", ["", "monday 09:00-17:00", "mon-fri 17:00-09:00", "mon 9-5", "mon-fri 09:00-25:00"]
)
def test_bad_studio_hours_are_refused(text: str) -> None:
    with pytest.raises(InputInvalid):
        parse_studio_hours(text)


def test_on_a_closure_day_a_door_open_during_the_usual_hours_is_a_condition(table: SafetyRuleTable) -> None:
    closed = Observation(
        at=AFTERNOON,
        zone=PHOENIX,
        readings=(door(AFTERNOON, contact="open"),),
        firings=(),
        hours=HOURS,
        closure="closure: Winter break",
    )
    [condition] = evaluate(table, closed)
    assert condition.rule.kind is RuleKind.DOOR_OPEN_AFTER_HOURS
    assert condition.evidence["closure"] == "closure: Winter break"
