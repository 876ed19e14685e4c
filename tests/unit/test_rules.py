"""Count rules: the default table, Firestore-faithful matching, validation at load, version and hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio_brain.adapters.rule_files import default_rules_text, load_rule_table
from studio_brain.domain.errors import ConfigError
from studio_brain.domain.rules import (
    SNAPSHOT_FIELDS,
    CountRule,
    Filter,
    Op,
    parse_rule_table,
    parse_rule_table_toml,
    rule_table_from_definition,
)


def test_the_default_table_defines_every_snapshot_field_exactly_once() -> None:
    table = load_rule_table()
    assert [r.target for r in table.rules] == list(SNAPSHOT_FIELDS)
    assert table.collections == (
        "agentRequests",
        "batches",
        "communityReports",
        "kilnFirings",
        "materialsOrders",
        "payments",
        "reservations",
        "supportRequests",
    )


def test_the_default_table_matches_the_reference_rules() -> None:
    table = load_rule_table()
    high = table.rule("ops.highSeverityReports")
    assert high.collection == "communityReports"
    assert high.matches({"severity": "high", "status": "triaged"})
    assert not high.matches({"severity": "high", "status": "resolved"})
    assert not high.matches({"severity": "medium", "status": "open"})
    assert table.rule("finance.unsettledPayments").matches({"status": "charge_disputed"})
    assert not table.rule("finance.unsettledPayments").matches({"status": "payment_succeeded"})


def test_equality_follows_firestore_so_false_is_not_zero_and_one_is_one_point_zero() -> None:
    closed_false = Filter(field="isClosed", op=Op.EQ, value=False)
    assert closed_false.matches({"isClosed": False})
    assert not closed_false.matches({"isClosed": 0})
    assert not closed_false.matches({"isClosed": None})
    assert not closed_false.matches({})
    one = Filter(field="n", op=Op.EQ, value=1)
    assert one.matches({"n": 1.0})
    assert not one.matches({"n": True})
    assert not one.matches({"n": "1"})


def test_a_document_without_the_field_matches_no_rule() -> None:
    table = load_rule_table()
    legacy_batch = {"state": "CLOSED_PICKED_UP"}
    assert not any(r.matches(legacy_batch) for r in table.rules_for("batches"))


def test_the_hash_is_stable_and_changes_with_the_version_or_any_rule() -> None:
    text = default_rules_text()
    first = parse_rule_table_toml(text, source="a")
    again = parse_rule_table_toml(text, source="b")
    assert first.hash == again.hash
    assert len(first.hash) == 64
    bumped = parse_rule_table_toml(
        text.replace('version = "2026-11-25.1"', 'version = "2026-11-25.2"'), source="c"
    )
    assert bumped.hash != first.hash
    narrowed = parse_rule_table_toml(text.replace('"blocked", "on_hold", "waiting"', '"blocked"'), source="d")
    assert narrowed.hash != first.hash


def test_the_order_of_rules_in_the_file_does_not_change_the_table() -> None:
    definition = load_rule_table().definition()
    reversed_rules = {"version": definition["version"], "rules": list(reversed(definition["rules"]))}
    assert parse_rule_table(reversed_rules).hash == load_rule_table().hash


def test_a_table_round_trips_through_its_recorded_definition() -> None:
    table = load_rule_table()
    assert rule_table_from_definition(table.definition()) == table


def _with_rules(*replacements: tuple[str, str]) -> str:
    text = default_rules_text()
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new, 1)
    return text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            _with_rules(('target = "ops.blockedTickets"', 'target = "ops.blockedTikets"')),
            "unknown snapshot field",
        ),
        (
            _with_rules(('target = "ops.blockedTickets"', 'target = "ops.agentRequestsPending"')),
            "duplicate rule for ops.agentRequestsPending",
        ),
        (
            _with_rules(
                (
                    '"blocked", "on_hold", "waiting"',
                    ", ".join(f'"s{i}"' for i in range(31)),
                )
            ),
            "'in' has 31 values; Firestore allows at most 30",
        ),
        (_with_rules(('op = "==", value = false', 'op = "!=", value = false')), "op '!=' is not supported"),
        (_with_rules(('collection = "payments"', 'collection = "pay/ments"')), "is not a collection id"),
        (_with_rules(('field = "isClosed"', 'field = "is.Closed"')), "must be a top-level field name"),
        (
            _with_rules(('target = "ops.blockedTickets"', 'target = "ops.blockedTickets"\ncolour = "red"')),
            "unknown key",
        ),
        (_with_rules(('version = "2026-11-25.1"', "")), "'version' must be a non-empty string"),
        ("rules = [", "not valid TOML"),
    ],
)
def test_an_invalid_table_is_refused_at_load_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match="rule table") as caught:
        parse_rule_table_toml(text, source="studio.toml")
    assert message in caught.value.message
    assert "studio.toml" in caught.value.message


def test_a_table_missing_a_field_names_what_is_missing() -> None:
    data = load_rule_table().definition()
    data["rules"] = [r for r in data["rules"] if r["target"] != "counts.reportsOpen"]
    with pytest.raises(ConfigError, match=r"no rule for counts\.reportsOpen"):
        parse_rule_table(data)


def test_a_studio_file_overrides_the_default_table(tmp_path: Path) -> None:
    custom = tmp_path / "rules.toml"
    custom.write_text(
        _with_rules(
            ('version = "2026-11-25.1"', 'version = "studio-2"'),
            ('"blocked", "on_hold", "waiting"', '"blocked", "on_hold", "waiting", "escalated"'),
        ),
        encoding="utf-8",
    )
    table = load_rule_table(custom)
    assert table.version == "studio-2"
    assert table.rule("ops.blockedTickets").matches({"status": "escalated"})


def test_a_missing_rules_file_is_a_config_error_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="STUDIO_BRAIN_STATE_RULES_FILE"):
        load_rule_table(tmp_path / "absent.toml")


def test_unclassified_is_knowable_for_disjoint_or_nested_rules_only() -> None:
    table = load_rule_table()
    batches = table.unclassified_basis("batches")
    assert batches is not None
    assert {r.target for r in batches} == {"counts.batchesActive", "counts.batchesClosed"}
    reports = table.unclassified_basis("communityReports")
    assert reports is not None
    assert [r.target for r in reports] == ["counts.reportsOpen"], "high severity lies inside open reports"

    a = CountRule(
        target="counts.reportsOpen", collection="c", filters=(Filter(field="x", op=Op.EQ, value=1),)
    )
    b = CountRule(
        target="ops.highSeverityReports", collection="c", filters=(Filter(field="y", op=Op.EQ, value=1),)
    )
    overlapping = parse_rule_table(
        {
            "version": "v",
            "rules": [
                *(r.definition() for r in table.rules if r.target not in {a.target, b.target}),
                a.definition(),
                b.definition(),
            ],
        }
    )
    assert overlapping.unclassified_basis("c") is None
