"""Loading the capability registry file: the packaged ``capabilities.toml`` or the configured path."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from studio_brain.domain.capabilities import Registry, parse_registry_toml
from studio_brain.domain.errors import ConfigError

PACKAGED = "capabilities.toml"


def registry_text(path: Path | None) -> tuple[str, str]:
    """(source name, TOML text) of the registry at ``path``, or of the packaged one when ``path`` is None."""
    if path is None:
        return f"packaged {PACKAGED}", resources.files("studio_brain").joinpath(PACKAGED).read_text("utf-8")
    try:
        return str(path), path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"STUDIO_BRAIN_GATEWAY_REGISTRY_FILE: cannot read {path}: {err.strerror}") from err


def load_registry(path: Path | None, *, strict: bool = True) -> Registry:
    """Parse the registry; with ``strict`` an invalid one raises ConfigError listing every violation."""
    source, text = registry_text(path)
    registry = parse_registry_toml(text)
    if strict and not registry.valid:
        problems = "; ".join(f"{v.capability_id}: {v.code} {v.message}" for v in registry.violations)
        raise ConfigError(
            f"capability registry {source} is invalid ({len(registry.violations)} problems; run "
            f"`studio-brain capabilities lint`): {problems}"
        )
    return registry
