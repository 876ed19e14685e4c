"""The Roborock connector against the fake Home Assistant over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from pydantic import SecretStr

from studio_brain.adapters.connectors.breaker import CircuitBreaker
from studio_brain.adapters.connectors.fakes import FakeHomeAssistant
from studio_brain.adapters.connectors.homeassistant import RoborockConnector
from studio_brain.domain.connectors import ConnectorCommand, ConnectorMode, ErrorKind, WriteAllowlist
from studio_brain.domain.errors import ConnectorError, InputInvalid
from tests.contract.connector_contract import FAST, ctx
from tests.fakes import FakeClock

TOKEN = "ha-token-xyz"
V = "vacuum.roborock_s7"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ha(clock: FakeClock) -> Iterator[FakeHomeAssistant]:
    server = FakeHomeAssistant(token=TOKEN, now=clock.now)
    server.start()
    yield server
    server.stop()


def connect(ha: FakeHomeAssistant, clock: FakeClock, **kw: object) -> RoborockConnector:
    return RoborockConnector(
        base_url=ha.url,
        token=SecretStr(TOKEN),
        entity_id=V,
        clock=clock,
        breaker=CircuitBreaker(name="roborock", clock=clock),
        policy=FAST,
        **kw,  # type: ignore[arg-type]
    )


def writer(ha: FakeHomeAssistant, clock: FakeClock, *pairs: str) -> RoborockConnector:
    return connect(ha, clock, mode=ConnectorMode.READ_WRITE, allowlist=WriteAllowlist.parse(pairs))


async def test_the_vacuum_reads_with_battery_and_consumables_from_sibling_sensors(
    ha: FakeHomeAssistant, clock: FakeClock
) -> None:
    (device,) = (await connect(ha, clock).read_status(ctx(), {})).data["devices"]
    assert device["battery"] == 100
    assert device["attributes"]["consumables"] == {
        "mainBrush": 90.0,
        "sideBrush": 75.0,
        "filter": 50.0,
        "sensors": 10.0,
    }
    assert device["online"] is True
    assert device["stale"] is False


async def test_an_unavailable_vacuum_reads_offline(ha: FakeHomeAssistant, clock: FakeClock) -> None:
    ha.set_state(V, "unavailable")
    (device,) = (await connect(ha, clock).read_status(ctx(), {})).data["devices"]
    assert device["online"] is False


async def test_a_vacuum_silent_since_long_ago_reads_stale(ha: FakeHomeAssistant, clock: FakeClock) -> None:
    ha.set_reported_at(clock.now() - timedelta(hours=3))
    (device,) = (await connect(ha, clock).read_status(ctx(), {})).data["devices"]
    assert device["stale"] is True


async def test_a_room_clean_sends_app_segment_clean_through_send_command(
    ha: FakeHomeAssistant, clock: FakeClock
) -> None:
    connector = writer(ha, clock, f"{V}:app_segment_clean")
    await connector.execute(
        ctx(key="k-1"),
        ConnectorCommand(
            action="clean.segments", device_id=V, command="app_segment_clean", args={"segments": [16, 17]}
        ),
    )
    (write,) = ha.writes
    assert write.path == "/api/services/vacuum/send_command"
    assert write.body == {
        "entity_id": V,
        "command": "app_segment_clean",
        "params": [{"segments": [16, 17], "repeat": 1}],
    }
    assert ha.states[V]["state"] == "cleaning"


async def test_the_registry_action_vacuum_start_with_segments_cleans_those_rooms(
    ha: FakeHomeAssistant, clock: FakeClock
) -> None:
    connector = writer(ha, clock, f"{V}:app_segment_clean")
    await connector.execute(
        ctx(), ConnectorCommand(action="vacuum.start", device_id=V, args={"segments": [18]})
    )
    assert ha.writes[0].path == "/api/services/vacuum/send_command"
    with pytest.raises(ConnectorError) as caught:  # a plain start is a different pair, not allowlisted
        await connector.execute(ctx(), ConnectorCommand(action="vacuum.start", device_id=V))
    assert caught.value.kind == ErrorKind.NOT_ALLOWED


async def test_a_start_posts_vacuum_start_for_the_entity(ha: FakeHomeAssistant, clock: FakeClock) -> None:
    response = await writer(ha, clock, f"{V}:start").execute(
        ctx(), ConnectorCommand(action="clean.start", device_id=V)
    )
    assert [(w.method, w.path, w.body) for w in ha.writes] == [
        ("POST", "/api/services/vacuum/start", {"entity_id": V})
    ]
    assert response.data["changed"] == [V]


@pytest.mark.parametrize(
    "args", [{}, {"segments": []}, {"segments": ["kitchen"]}, {"segments": [16], "repeat": 9}]
)
async def test_bad_room_lists_are_refused_before_anything_is_sent(
    ha: FakeHomeAssistant, clock: FakeClock, args: dict[str, object]
) -> None:
    connector = writer(ha, clock, f"{V}:app_segment_clean")
    with pytest.raises(InputInvalid):
        await connector.execute(ctx(), ConnectorCommand(action="clean.segments", device_id=V, args=args))
    assert ha.writes == []


async def test_another_entity_is_not_allowed(ha: FakeHomeAssistant, clock: FakeClock) -> None:
    connector = writer(ha, clock, f"{V}:start", "vacuum.other:start")
    with pytest.raises(ConnectorError) as caught:
        await connector.execute(ctx(), ConnectorCommand(action="clean.start", device_id="vacuum.other"))
    assert caught.value.kind == ErrorKind.NOT_ALLOWED
    assert ha.writes == []


async def test_the_fake_reports_an_unknown_entity_as_404(ha: FakeHomeAssistant) -> None:
    import httpx

    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        assert (await client.get(f"{ha.url}/api/states/vacuum.nope")).status_code == 404
        assert (await client.get(f"{ha.url}/api/states/{V}")).json()["state"] == "docked"
