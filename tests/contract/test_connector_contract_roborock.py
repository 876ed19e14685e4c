"""The Roborock connector (through Home Assistant) and the fake Home Assistant pass the connector contract."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pytest
from pydantic import SecretStr

from studio_brain.adapters.connectors.base import HttpConnector, HttpPolicy
from studio_brain.adapters.connectors.breaker import CircuitBreaker
from studio_brain.adapters.connectors.fakes import FakeHomeAssistant
from studio_brain.adapters.connectors.homeassistant import RoborockConnector
from studio_brain.domain.connectors import ConnectorCommand, ConnectorMode, WriteAllowlist
from tests.contract.connector_contract import (
    BREAKER_FAILURES,
    BREAKER_WINDOW,
    FAST,
    ConnectorContract,
    MakeConnector,
)
from tests.fakes import FakeClock

TOKEN = "eyJhbGciOiJIUzI1NiJ9.ha-long-lived-token.c2VjcmV0"
VACUUM = "vacuum.roborock_s7"


class TestRoborockContract(ConnectorContract):
    secret = TOKEN
    write_commands: ClassVar[list[ConnectorCommand]] = [
        ConnectorCommand(action="clean.start", device_id=VACUUM, command="start"),
        ConnectorCommand(action="vacuum.start", device_id=VACUUM),
        ConnectorCommand(
            action="clean.segments",
            device_id=VACUUM,
            command="app_segment_clean",
            args={"segments": [16, 17]},
        ),
        ConnectorCommand(action="dock.return", device_id=VACUUM, command="return_to_base"),
    ]
    allowed_write = ConnectorCommand(action="clean.start", device_id=VACUUM, command="start")
    disallowed_write = ConnectorCommand(
        action="clean.segments", device_id=VACUUM, command="app_segment_clean", args={"segments": [16]}
    )
    allowlist = WriteAllowlist.parse([f"{VACUUM}:start"])
    html_json_is_parsed = False

    @pytest.fixture
    def fake(self, clock: FakeClock) -> Iterator[FakeHomeAssistant]:
        with FakeHomeAssistant(token=TOKEN, now=clock.now) as server:
            yield server  # type: ignore[misc]

    @pytest.fixture
    def make_connector(self, fake: FakeHomeAssistant, clock: FakeClock) -> MakeConnector:
        def make(
            *,
            mode: ConnectorMode = ConnectorMode.READ_ONLY,
            allowlist: WriteAllowlist | None = None,
            token: str | None = None,
            policy: HttpPolicy = FAST,
        ) -> HttpConnector:
            return RoborockConnector(
                base_url=fake.url,
                token=SecretStr(token or TOKEN),
                entity_id=VACUUM,
                clock=clock,
                breaker=CircuitBreaker(
                    name="roborock",
                    clock=clock,
                    failure_threshold=BREAKER_FAILURES,
                    window_seconds=BREAKER_WINDOW,
                ),
                policy=policy,
                mode=mode,
                allowlist=allowlist,
            )

        return make
