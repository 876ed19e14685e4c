"""The Hubitat connector against the fake Maker API over real HTTP: reads, the path allowlist, writes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from studio_brain.adapters.connectors.breaker import CircuitBreaker
from studio_brain.adapters.connectors.fakes import FakeMakerApi
from studio_brain.adapters.connectors.hubitat import HubitatConnector
from studio_brain.domain.connectors import ConnectorCommand, ConnectorMode, ErrorKind, WriteAllowlist
from studio_brain.domain.errors import ConnectorError, InputInvalid
from tests.contract.connector_contract import FAST, ctx
from tests.fakes import FakeClock

TOKEN = "maker-token-abc123"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def hub(clock: FakeClock) -> Iterator[FakeMakerApi]:
    server = FakeMakerApi(token=TOKEN, now=clock.now)
    server.start()
    yield server
    server.stop()


def connect(hub: FakeMakerApi, clock: FakeClock, **kw: object) -> HubitatConnector:
    return HubitatConnector(
        hub_url=hub.hub_url,
        app_id=hub.app_id,
        token=SecretStr(TOKEN),
        clock=clock,
        breaker=CircuitBreaker(name="hubitat", clock=clock),
        policy=FAST,
        **kw,  # type: ignore[arg-type]
    )


async def test_reading_one_device_uses_the_typed_detail_shape(hub: FakeMakerApi, clock: FakeClock) -> None:
    device = (await connect(hub, clock).read_status(ctx(), {"deviceId": "21"})).data["device"]
    assert device["label"] == "Kiln Room Outlet"
    assert device["attributes"]["power"] == 1520.4
    assert device["attributes"]["switch"] == "on"


async def test_the_kiln_outlet_reads_the_same_from_the_list_and_the_detail(
    hub: FakeMakerApi, clock: FakeClock
) -> None:
    connector = connect(hub, clock)
    listed = {d["id"]: d for d in (await connector.read_status(ctx(), {})).data["devices"]}
    detail = (await connector.read_status(ctx(), {"deviceId": "21"})).data["device"]
    assert listed["21"] == detail


async def test_events_modes_and_hsm_are_read(hub: FakeMakerApi, clock: FakeClock) -> None:
    hub.set_attribute("21", "power", 1490.0)
    connector = connect(hub, clock)
    events = (await connector.read_status(ctx(), {"action": "events.read", "deviceId": "21"})).data["events"]
    assert events[0]["name"] == "power"
    assert events[0]["value"] == 1490
    assert (await connector.read_status(ctx(), {"action": "modes.read"})).data["active"] == "Day"
    assert (await connector.read_status(ctx(), {"action": "hsm.read"})).data == {"hsm": "disarmed"}


async def test_an_unknown_device_answered_with_200_error_true_is_a_bad_response(
    hub: FakeMakerApi, clock: FakeClock
) -> None:
    with pytest.raises(ConnectorError) as caught:
        await connect(hub, clock).read_status(ctx(), {"deviceId": "999"})
    assert caught.value.kind == ErrorKind.BAD_RESPONSE


@pytest.mark.parametrize(
    "device_id", ["21/off", "21/unlock/1234", "../../hsm/disarm", "21?x=1", "21/events/../off"]
)
async def test_a_read_cannot_be_smuggled_into_a_command_path(
    hub: FakeMakerApi, clock: FakeClock, device_id: str
) -> None:
    with pytest.raises(ConnectorError) as caught:
        await connect(hub, clock).read_status(ctx(), {"deviceId": device_id})
    assert caught.value.kind == ErrorKind.NOT_ALLOWED
    assert hub.request_count == 0
    assert hub.writes == []


async def test_an_approved_switch_off_reaches_the_outlet_and_returns_its_new_state(
    hub: FakeMakerApi, clock: FakeClock
) -> None:
    connector = connect(hub, clock, mode=ConnectorMode.READ_WRITE, allowlist=WriteAllowlist.parse(["21:off"]))
    response = await connector.execute(
        ctx(), ConnectorCommand(action="switch.set", device_id="21", command="off")
    )
    assert response.data["device"]["attributes"]["switch"] == "off"
    assert response.data["device"]["online"] is True  # off is not offline
    assert [w.path for w in hub.writes] == ["/apps/api/7/devices/21/off"]


@pytest.mark.parametrize(
    "command",
    [
        ConnectorCommand(
            action="switch.set", device_id="21", command="unlock"
        ),  # wrong command for the action
        ConnectorCommand(action="device.command", device_id="21", command="events"),  # a read path as command
        ConnectorCommand(action="switch.set", device_id="22", command="off"),  # another device
        ConnectorCommand(action="switch.set", device_id=None, command="off"),
    ],
)
async def test_writes_outside_the_strict_pairs_are_not_allowed(
    hub: FakeMakerApi, clock: FakeClock, command: ConnectorCommand
) -> None:
    allow = WriteAllowlist.parse(["21:off", "21:unlock", "21:events"])
    connector = connect(hub, clock, mode=ConnectorMode.READ_WRITE, allowlist=allow)
    with pytest.raises(ConnectorError) as caught:
        await connector.execute(ctx(), command)
    assert caught.value.kind == ErrorKind.NOT_ALLOWED
    assert hub.writes == []


async def test_a_non_write_command_is_a_parametrised_read(hub: FakeMakerApi, clock: FakeClock) -> None:
    response = await connect(hub, clock).execute(
        ctx(), ConnectorCommand(action="devices.read", device_id="14", write=False)
    )
    assert response.data["device"]["attributes"]["lock"] == "locked"
    assert hub.writes == []


def test_an_app_id_that_is_not_digits_is_refused(clock: FakeClock) -> None:
    with pytest.raises(InputInvalid):
        HubitatConnector(
            hub_url="http://127.0.0.1:1",
            app_id="7/../8",
            token=SecretStr("t"),
            clock=clock,
            breaker=CircuitBreaker(name="h", clock=clock),
            policy=FAST,
        )


async def test_the_fake_records_an_unauthorised_write_attempt_too(hub: FakeMakerApi) -> None:
    import httpx

    async with httpx.AsyncClient() as client:
        response = await client.get(f"{hub.url}/apps/api/7/devices/21/off", params={"access_token": "wrong"})
    assert response.status_code == 401
    assert [(w.path, w.authorised) for w in hub.writes] == [("/apps/api/7/devices/21/off", False)]
    assert hub.devices["21"].attributes["switch"][0] == "on"


async def test_commands_shaped_as_the_gateway_builds_them_work(hub: FakeMakerApi, clock: FakeClock) -> None:
    # the gateway passes the capability input as args and maps deviceField/commandField
    writer = connect(hub, clock, mode=ConnectorMode.READ_WRITE, allowlist=WriteAllowlist.parse(["21:off"]))
    switch = ConnectorCommand(
        action="switch.set", device_id="21", command="off", args={"deviceId": "21", "state": "off"}
    )
    assert (await writer.execute(ctx(), switch)).data["device"]["attributes"]["switch"] == "off"
    read = ConnectorCommand(action="devices.read", args={"deviceId": "14"}, write=False)
    assert (await writer.execute(ctx(), read)).data["device"]["label"] == "Front Door Lock"
    assert len(hub.writes) == 1
