"""The Cloud Functions finance read endpoint over real HTTP on loopback: token exchange, caching, failures."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr

from studio_brain.adapters.demo_source import DemoCloud
from studio_brain.adapters.functions_http import FunctionsFinanceReader
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.state_store import PostgresStateStore
from studio_brain.adapters.rule_files import load_rule_table
from studio_brain.domain.errors import CloudReadError
from studio_brain.services.state import StateService
from tests.fakes import FakeClock, SequentialIds
from tests.integration.test_state_service import NOON_25TH, TENANT, DegradedReader

REFRESH = "refresh-token-very-secret"
API_KEY = "web-api-key-123"


@dataclass
class FakeFirebase:
    """The Secure Token exchange and a finance read endpoint that wants a valid ID token."""

    expires_in: int = 3600
    exchange_status: int = 200
    finance_body: Any = field(default_factory=lambda: {"pendingOrders": 6, "unsettledPayments": 2})
    revoke_next: bool = False
    exchanges: list[dict[str, Any]] = field(default_factory=list)
    finance_tokens: list[str] = field(default_factory=list)
    issued: int = 0


@pytest.fixture
def firebase() -> Iterator[tuple[FakeFirebase, str]]:
    state = FakeFirebase()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            form = parse_qs(self.rfile.read(length).decode())
            query = parse_qs(urlsplit(self.path).query)
            state.exchanges.append({"form": form, "query": query})
            if state.exchange_status != 200:
                self._send(state.exchange_status, {"error": {"message": "INVALID_REFRESH_TOKEN"}})
                return
            state.issued += 1
            self._send(
                200,
                {
                    "id_token": f"id-token-{state.issued}",
                    "expires_in": str(state.expires_in),
                    "refresh_token": f"rotated-{state.issued}",
                },
            )

        def do_GET(self) -> None:
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            state.finance_tokens.append(token)
            if state.revoke_next or token != f"id-token-{state.issued}":
                state.revoke_next = False
                self._send(401, {"error": "unauthenticated"})
                return
            self._send(200, state.finance_body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def make_reader(base: str, clock: FakeClock) -> FunctionsFinanceReader:
    return FunctionsFinanceReader(
        endpoint_url=f"{base}/studioFinanceSummary",
        refresh_token=SecretStr(REFRESH),
        api_key=SecretStr(API_KEY),
        token_url=f"{base}/v1/token",
        clock=clock,
        timeout_seconds=5,
    )


async def test_the_summary_is_read_with_an_id_token_exchanged_from_the_refresh_token(
    firebase: tuple[FakeFirebase, str],
) -> None:
    state, base = firebase
    clock = FakeClock()
    summary = await make_reader(base, clock).finance_summary()

    assert (summary.pending_orders, summary.unsettled_payments) == (6, 2)
    assert summary.read_at == clock.now()
    [exchange] = state.exchanges
    assert exchange["form"] == {"grant_type": ["refresh_token"], "refresh_token": [REFRESH]}
    assert exchange["query"] == {"key": [API_KEY]}
    assert state.finance_tokens == ["id-token-1"]


async def test_the_id_token_is_cached_until_five_minutes_before_it_expires(
    firebase: tuple[FakeFirebase, str],
) -> None:
    state, base = firebase
    clock = FakeClock()
    reader = make_reader(base, clock)

    await reader.finance_summary()
    clock.advance(3600 - 301)
    await reader.finance_summary()
    assert reader.exchanges == 1

    clock.advance(2)  # now inside the 5-minute margin
    await reader.finance_summary()
    assert reader.exchanges == 2
    assert state.exchanges[1]["form"]["refresh_token"] == ["rotated-1"], "a rotated refresh token is used"


async def test_a_revoked_id_token_is_exchanged_again_once(firebase: tuple[FakeFirebase, str]) -> None:
    state, base = firebase
    reader = make_reader(base, FakeClock())
    await reader.finance_summary()
    state.revoke_next = True

    summary = await reader.finance_summary()

    assert summary.pending_orders == 6
    assert reader.exchanges == 2


async def test_a_refused_exchange_says_which_setting_to_renew_and_shows_no_token(
    firebase: tuple[FakeFirebase, str],
) -> None:
    state, base = firebase
    state.exchange_status = 400
    with pytest.raises(CloudReadError) as caught:
        await make_reader(base, FakeClock()).finance_summary()
    assert "STUDIO_BRAIN_FUNCTIONS_REFRESH_TOKEN" in caught.value.message
    assert REFRESH not in caught.value.message
    assert REFRESH not in repr(make_reader(base, FakeClock()))


@pytest.mark.parametrize(
    "body", [{"pendingOrders": 1}, {"pendingOrders": -1, "unsettledPayments": 0}, ["not", "an", "object"]]
)
async def test_a_malformed_summary_is_refused(firebase: tuple[FakeFirebase, str], body: Any) -> None:
    state, base = firebase
    state.finance_body = body
    with pytest.raises(CloudReadError, match="finance read endpoint"):
        await make_reader(base, FakeClock()).finance_summary()


async def test_an_unreachable_endpoint_is_a_cloud_read_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(CloudReadError, match="unreachable"):
        await make_reader(dead, FakeClock()).finance_summary()


def _service(database: Database, base: str) -> StateService:
    clock = FakeClock(NOON_25TH)
    demo = DemoCloud(seed=3, clock=clock, zone=ZoneInfo("America/Phoenix"))
    return StateService(
        tenant_id=TENANT,
        table=load_rule_table(),
        store=PostgresStateStore(database),
        events=None,
        clock=clock,
        ids=SequentialIds(),
        zone=ZoneInfo("America/Phoenix"),
        sources={"firestore": DegradedReader(demo, failing="none"), "demo": demo},
        default_source="firestore",
        finance=make_reader(base, clock),
    )


@pytest.mark.postgres
async def test_a_configured_endpoint_supplies_the_snapshots_finance_figures(
    database: Database, firebase: tuple[FakeFirebase, str]
) -> None:
    _, base = firebase
    run = await _service(database, base).compute()
    assert run.document["finance"] == {"pendingOrders": 6, "unsettledPayments": 2}
    assert run.document["diagnostics"]["financeSource"] == "functions"
    assert run.snapshot_date == date(2026, 11, 25)


@pytest.mark.postgres
async def test_a_failing_endpoint_falls_back_to_the_firestore_rules_with_a_warning(
    database: Database, firebase: tuple[FakeFirebase, str]
) -> None:
    state, base = firebase
    state.exchange_status = 500
    run = await _service(database, base).compute()
    assert run.document["diagnostics"]["financeSource"] == "firestore-rules"
    assert run.document["finance"]["pendingOrders"] is not None
    assert run.document["cloudSync"]["stripeReadAt"] is not None
    assert any("finance read endpoint" in w for w in run.document["diagnostics"]["warnings"])
