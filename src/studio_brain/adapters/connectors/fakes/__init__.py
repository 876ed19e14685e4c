"""Fake device servers: real HTTP on 127.0.0.1, for tests, benchmarks and ``studio-brain demo``."""

from studio_brain.adapters.connectors.fakes.homeassistant import FakeHomeAssistant
from studio_brain.adapters.connectors.fakes.maker_api import FakeMakerApi
from studio_brain.adapters.connectors.fakes.server import FakeDeviceServer, RecordedWrite, Reply

__all__ = ["FakeDeviceServer", "FakeHomeAssistant", "FakeMakerApi", "RecordedWrite", "Reply"]
