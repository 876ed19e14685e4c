"""Loading the count-rule table: the packaged default, or a studio's own TOML file from settings."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from studio_brain.domain.errors import ConfigError
from studio_brain.domain.rules import RuleTable, parse_rule_table_toml

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
