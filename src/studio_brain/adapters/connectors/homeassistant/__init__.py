"""Roborock through the Home Assistant REST API (vacuum entity + the integration's sibling sensors)."""

from studio_brain.adapters.connectors.homeassistant.roborock import RoborockConnector

__all__ = ["RoborockConnector"]
