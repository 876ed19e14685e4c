"""The Hubitat connector and the fake Maker API pass the connector contract."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pytest
from pydantic import SecretStr

from studio_brain.adapters.connectors.base import HttpConnector, HttpPolicy
from studio_brain.adapters.connectors.breaker import CircuitBreaker
from studio_brain.adapters.connectors.fakes import FakeMakerApi
from studio_brain.adapters.connectors.hubitat import HubitatConnector
from studio_brain.domain.connectors import ConnectorCommand, ConnectorMode, WriteAllowlist
from tests.contract.connector_contract import (
    BREAKER_FAILURES,
    BREAKER_WINDOW,
    FAST,
    ConnectorContract,
    MakeConnector,
)
from tests.fakes import FakeClock

TOKEN = "hubitat-token-5f0c1d2e-secret"


class TestHubitatContract(ConnectorContract):
    secret = TOKEN
    write_commands: ClassVar[list[ConnectorCommand]] = [
        ConnectorCommand(action="switch.set", device_id="21", command="off"),
        ConnectorCommand(action="switch.set", device_id="21", command="on"),
        ConnectorCommand(action="lock.set", device_id="14", command="unlock"),
        ConnectorCommand(action="device.command", device_id="21", command="refresh"),
    ]
    allowed_write = ConnectorCommand(action="switch.set", device_id="21", command="off")
    disallowed_write = ConnectorCommand(action="lock.set", device_id="14", command="unlock")
    allowlist = WriteAllowlist.parse(["21:off"])
    html_json_is_parsed = True

    @pytest.fixture
    def fake(self, clock: FakeClock) -> Iterator[FakeMakerApi]:
        with FakeMakerApi(token=TOKEN, now=clock.now) as server:
            yield server  # type: ignore[misc]

    @pytest.fixture
    def make_connector(self, fake: FakeMakerApi, clock: FakeClock) -> MakeConnector:
        def make(
            *,
            mode: ConnectorMode = ConnectorMode.READ_ONLY,
            allowlist: WriteAllowlist | None = None,
            token: str | None = None,
            policy: HttpPolicy = FAST,
        ) -> HttpConnector:
            return HubitatConnector(
                hub_url=fake.hub_url,
                app_id=fake.app_id,
                token=SecretStr(token or TOKEN),
                clock=clock,
                breaker=CircuitBreaker(
                    name="hubitat",
                    clock=clock,
                    failure_threshold=BREAKER_FAILURES,
                    window_seconds=BREAKER_WINDOW,
                ),
                policy=policy,
                mode=mode,
                allowlist=allowlist,
            )

        return make
