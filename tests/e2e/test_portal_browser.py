"""The Portal's Control Tower and Reports requests from a real browser (Debian's chromium) against a real
server: our own small page (``portal_page.html``, served at the Portal's dev origin) sends them with the
Portal's headers and reads the answers as the reference says the Portal does. Also the event stream over
real HTTP: a live event, and a client that goes away is cleaned up (issue 21)."""

from __future__ import annotations

import functools
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from studio_brain.bootstrap import Brain
from studio_brain.web.portal import control_tower
from tests.e2e.conftest import ADMIN_TOKEN, CockpitServer, start_server
from tests.fixtures.auth import TEST_PROJECT_ID, TokenMinter
from tests.portal_fixtures import sse_events

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.slow]

PAGE = Path(__file__).with_name("portal_page.html")


@pytest.fixture
def page_origin() -> Iterator[str]:
    """Our page served over loopback HTTP, as Vite serves the Portal in development."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(PAGE.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="portal-page", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def brain_server(
    database_url: str,
    tmp_path: Path,
    firebase_certs_file: Path,
    page_origin: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[CockpitServer]:
    monkeypatch.setenv("STUDIO_BRAIN_CORS_ORIGINS", json.dumps([page_origin]))
    monkeypatch.setenv("STUDIO_BRAIN_FIREBASE_PROJECT_ID", TEST_PROJECT_ID)
    monkeypatch.setenv("STUDIO_BRAIN_FIREBASE_CERTS_FILE", str(firebase_certs_file))
    # the stream polls the audit log every 5 s in production; a test need not wait that long
    monkeypatch.setattr(control_tower, "STREAM_POLL_SECONDS", 0.2)

    async def prepare(_brain: Brain) -> None:
        return None

    yield from start_server(database_url, tmp_path / "home", prepare, monkeypatch)


def _wait_until(check: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_the_event_stream_sends_new_audit_events_and_forgets_a_client_that_went_away(
    brain_server: CockpitServer, tokens: TokenMinter
) -> None:
    headers = {
        **tokens.headers("staff-1", staff=True),
        "x-studio-brain-admin-token": ADMIN_TOKEN,
        "accept": "text/event-stream",
    }
    base = brain_server.base_url
    before = control_tower.STREAMS.open
    with httpx.Client(base_url=base, timeout=10.0) as client:
        anonymous = client.get("/api/control-tower/events?stream=1", headers={"accept": "text/event-stream"})
        assert anonymous.status_code == 401
        with client.stream("GET", "/api/control-tower/events?stream=1", headers=headers) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            chunks = stream.iter_text()
            text = next(chunks)
            assert text.startswith("retry: 3000")
            assert control_tower.STREAMS.open == before + 1
            ack = client.post(
                "/api/control-tower/overseer/ack",
                json={"note": "watching the stream"},
                headers={k: v for k, v in headers.items() if k != "accept"},
            )
            assert ack.status_code == 200
            events: list[dict[str, Any]] = []
            deadline = time.monotonic() + 10
            while not events and time.monotonic() < deadline:
                text += next(chunks)
                events = sse_events(text)
            (event,) = events
            assert event["sourceAction"] == "control_tower.overseer.acknowledged"
            assert event["summary"] == "watching the stream"
            assert f"event: {event['type']}" in text
        # the client closed its connection: the server's generator ends and is counted out
        assert _wait_until(lambda: control_tower.STREAMS.open == before)


def test_once_closes_the_stream_after_the_first_event(
    brain_server: CockpitServer, tokens: TokenMinter
) -> None:
    headers = {**tokens.headers("staff-1", staff=True), "x-studio-brain-admin-token": ADMIN_TOKEN}
    path = "/api/control-tower/events?stream=1&once=1"
    with (
        httpx.Client(base_url=brain_server.base_url, timeout=10.0) as client,
        client.stream("GET", path, headers=headers) as stream,
    ):
        chunks = stream.iter_text()
        text = next(chunks)
        client.post("/api/control-tower/overseer/ack", json={"note": "once"}, headers=headers)
        text += "".join(chunks)  # ends: the server closed the stream after one event
    (event,) = sse_events(text)
    assert event["summary"] == "once"


def test_our_page_reads_the_control_tower_and_reports_like_the_portal_in_chromium(
    browser: Any, brain_server: CockpitServer, page_origin: str, tokens: TokenMinter
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{page_origin}/{PAGE.name}")
    token = tokens.token("staff-1", staff=True)
    result = page.evaluate(
        "([base, token, admin]) => window.runPortal(base, token, admin)",
        [brain_server.base_url, token, ADMIN_TOKEN],
    )
    context.close()
    assert result["state"]["hosts"] == ["studio-brain"]
    assert result["state"]["status"] in {"healthy", "waiting", "error", "neutral"}
    assert result["partner"] == {"ok": True, "partner": None, "checkins": []}
    assert result["run"] == "No runtime detail found for run-1."
    assert result["stats"] == [0, 0, 0]
    assert result["suggestion"]["suggestionOnly"] is True
    assert result["suggestion"]["category"] == "spam"
    assert result["feedback"] is True
    assert result["stream"]["status"] == "live"
    assert result["stream"]["event"]["sourceAction"] == "control_tower.overseer.acknowledged"
