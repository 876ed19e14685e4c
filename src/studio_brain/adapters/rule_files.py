"""Loading the studio's data files: the count-rule table (packaged default or the studio's own) and the
studio calendar."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from studio_brain.domain.calendar import EMPTY_CALENDAR, StudioCalendar, parse_calendar_toml
from studio_brain.domain.errors import ConfigError
from studio_brain.domain.rules import RuleTable, parse_rule_table_toml
from studio_brain.domain.safety_rules import SafetyRuleTable, parse_safety_rules_toml

DEFAULT_RULES = "default_rules.toml"


def default_rules_text() -> str:
    return resources.files("studio_brain").joinpath("rules", DEFAULT_RULES).read_text(encoding="utf-8")


def load_rule_table(path: Path | None = None) -> RuleTable:
    """The table in ``path``, or the default one; a missing or invalid file is a ConfigError."""
    if path is None:
        return parse_rule_table_toml(default_rules_text(), source=f"(built-in {DEFAULT_RULES})")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(
            f"rule table {path}: cannot be read ({err.strerror}); fix STUDIO_BRAIN_STATE_RULES_FILE"
        ) from err
    return parse_rule_table_toml(text, source=str(path))


def load_calendar(path: Path | None) -> StudioCalendar:
    """The studio calendar in ``path`` (settings ``STUDIO_BRAIN_CALENDAR_FILE``), or an empty one."""
    if path is None:
        return EMPTY_CALENDAR
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(
            f"studio calendar {path}: cannot be read ({err.strerror}); fix STUDIO_BRAIN_CALENDAR_FILE"
        ) from err
    return parse_calendar_toml(text, source=str(path))


DEFAULT_SAFETY_RULES = "safety_rules.toml"


def load_safety_rules(path: Path | None = None) -> SafetyRuleTable:
    """The safety-rule table in ``path``, or the packaged one (issue 17); a bad file is a ConfigError."""
    if path is None:
        text = (
            resources.files("studio_brain")
            .joinpath("rules", DEFAULT_SAFETY_RULES)
            .read_text(encoding="utf-8")
        )
        return parse_safety_rules_toml(text, source=f"(built-in {DEFAULT_SAFETY_RULES})")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(
            f"safety rules {path}: cannot be read ({err.strerror}); fix STUDIO_BRAIN_SAFETY_RULES_FILE"
        ) from err
    return parse_safety_rules_toml(text, source=str(path))
