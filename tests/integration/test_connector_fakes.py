"""The fake device servers themselves: tokens, the write recorder, faults, restart on the same port."""

from __future__ import annotations

import httpx
import pytest

from studio_brain.adapters.connectors.fakes import FakeHomeAssistant, FakeMakerApi


def test_the_maker_api_fake_checks_the_token_and_the_app_id() -> None:
    with FakeMakerApi(token="t-1", app_id="7") as hub:
        base = f"{hub.url}/apps/api"
        assert httpx.get(f"{base}/7/devices", params={"access_token": "t-1"}).status_code == 200
        assert httpx.get(f"{base}/7/devices", params={"access_token": "nope"}).status_code == 401
        assert httpx.get(f"{base}/8/devices", params={"access_token": "t-1"}).status_code == 404
        hub.rotate_token("t-2")
        assert httpx.get(f"{base}/7/devices", params={"access_token": "t-1"}).status_code == 401
        assert httpx.get(f"{base}/7/devices", params={"access_token": "t-2"}).status_code == 200
        assert hub.writes == []


def test_the_maker_api_fake_serves_both_attribute_shapes_and_the_duplicate_quirks() -> None:
    with FakeMakerApi(token="t") as hub:
        listed = httpx.get(f"{hub.url}/apps/api/7/devices/all", params={"access_token": "t"}).json()
        kiln = next(d for d in listed if d["id"] == "21")
        assert kiln["attributes"]["power"] == "1520.4"  # a flat dict of strings
        assert [c["command"] for c in kiln["commands"]].count("on") == 2
        detail = httpx.get(f"{hub.url}/apps/api/7/devices/21", params={"access_token": "t"}).json()
        names = [a["name"] for a in detail["attributes"]]
        assert names.count("switch") == 2
        assert {"name": "power", "currentValue": 1520.4, "dataType": "NUMBER"} in detail["attributes"]
        assert any(isinstance(c, dict) for c in detail["capabilities"])


def test_the_maker_api_fake_records_hub_changing_paths_as_writes() -> None:
    with FakeMakerApi(token="t") as hub:
        for path in ("modes/2", "hsm/armAway", "postURL/http%3A%2F%2Fevil", "devices/21/off"):
            httpx.get(f"{hub.url}/apps/api/7/{path}", params={"access_token": "t"})
        assert len(hub.writes) == 4


def test_the_home_assistant_fake_needs_the_bearer_token() -> None:
    with FakeHomeAssistant(token="ha") as ha:
        assert httpx.get(f"{ha.url}/api/").status_code == 401
        ok = httpx.get(f"{ha.url}/api/", headers={"Authorization": "Bearer ha"})
        assert ok.json() == {"message": "API running."}
        states = httpx.get(f"{ha.url}/api/states", headers={"Authorization": "Bearer ha"}).json()
        assert "battery" not in next(s for s in states if s["entity_id"] == ha.entity_id)["attributes"]


def test_injected_faults_are_served_in_order_then_cleared() -> None:
    with FakeHomeAssistant(token="ha") as ha:
        headers = {"Authorization": "Bearer ha"}
        ha.fail_next(503, 500)
        assert [httpx.get(f"{ha.url}/api/", headers=headers).status_code for _ in range(3)] == [503, 500, 200]
        ha.serve_html_json()
        assert httpx.get(f"{ha.url}/api/", headers=headers).headers["content-type"].startswith("text/html")
        ha.clear_faults()
        ha.serve_bad_json()
        with pytest.raises(ValueError):  # noqa: PT011 - json's own error type
            httpx.get(f"{ha.url}/api/", headers=headers).json()
        ha.drop_next()
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(f"{ha.url}/api/", headers=headers)


def test_a_stopped_fake_refuses_connections_and_returns_on_the_same_port() -> None:
    ha = FakeHomeAssistant(token="ha").start()
    url = ha.url
    try:
        ha.stop()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/api/")
        ha.start()
        assert ha.url == url
        assert httpx.get(f"{url}/api/", headers={"Authorization": "Bearer ha"}).status_code == 200
    finally:
        ha.stop()
