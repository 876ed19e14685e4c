"""Hubitat Elevation through the Maker API (every call a GET; read-only enforced by a path allowlist)."""

from studio_brain.adapters.connectors.hubitat.client import HubitatConnector

__all__ = ["HubitatConnector"]
