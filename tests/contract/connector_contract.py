"""The connector contract: ONE abstract suite every connector and every fake device server must pass.

A new connector is one subclass (``class TestXContract(ConnectorContract)``) providing the fixtures
``fake`` (a started fake server) and ``make_connector`` (a factory aimed at it), plus the class attributes
below. Everything runs over real HTTP on 127.0.0.1; time for the breaker is a FakeClock.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Protocol

import pytest

from studio_brain.adapters.connectors.base import HttpConnector, HttpPolicy
from studio_brain.adapters.connectors.fakes import FakeDeviceServer
from studio_brain.adapters.connectors.normalise import DEVICE_KEYS
from studio_brain.domain.connectors import (
    BreakerState,
    ConnectorCommand,
    ConnectorContext,
    ConnectorMode,
    DryRunSupport,
    ErrorKind,
    HealthStatus,
    WriteAllowlist,
)
from studio_brain.domain.errors import Conflict, ConnectorError
from studio_brain.domain.hashing import is_sha256_hex, sha256_hex
from studio_brain.logging import configure_logging
from tests.fakes import FakeClock

#: a policy that keeps the suite fast: short waits between read retries, 3 attempts
FAST = HttpPolicy(
    attempt_timeout_seconds=2.0,
    connect_timeout_seconds=1.0,
    read_attempts=3,
    retry_wait_initial_seconds=0.01,
    retry_wait_max_seconds=0.05,
    degraded_after_ms=1500.0,
)
BREAKER_FAILURES = 3
BREAKER_WINDOW = 30.0


class MakeConnector(Protocol):
    def __call__(
        self,
        *,
        mode: ConnectorMode = ConnectorMode.READ_ONLY,
        allowlist: WriteAllowlist | None = None,
        token: str | None = None,
        policy: HttpPolicy = FAST,
    ) -> HttpConnector: ...


def ctx(
    request_id: str = "req-1", *, timeout: float = 5.0, dry_run: bool = False, key: str | None = None
) -> ConnectorContext:
    return ConnectorContext(
        request_id=request_id, timeout_seconds=timeout, dry_run=dry_run, idempotency_key=key
    )


async def kind_of(call: Any) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        await call
    return caught.value


class ConnectorContract:
    """Abstract: not collected itself (no ``Test`` prefix); subclasses fill in the blanks below."""

    #: the secret the connector is configured with (must never leak anywhere)
    secret: ClassVar[str]
    #: every write action the connector knows, each valid and allowlistable
    write_commands: ClassVar[list[ConnectorCommand]]
    #: a valid write that the ``allowlist`` below permits
    allowed_write: ClassVar[ConnectorCommand]
    #: a well-formed write that is *not* on that allowlist
    disallowed_write: ClassVar[ConnectorCommand]
    allowlist: ClassVar[WriteAllowlist]
    #: the documented behaviour for JSON served as text/html: parsed (True) or BAD_RESPONSE (False)
    html_json_is_parsed: ClassVar[bool]
    #: device requests a rotated credential costs before AUTH: 1 when the token rides on the request;
    #: 0 when it is exchanged first (the Functions connector learns of a revoked refresh token at the
    #: Secure Token exchange, before any Function call)
    requests_for_a_rejected_credential: ClassVar[int] = 1

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def fake(self, clock: FakeClock) -> Iterator[FakeDeviceServer]:
        raise NotImplementedError

    @pytest.fixture
    def make_connector(self, fake: FakeDeviceServer, clock: FakeClock) -> MakeConnector:
        raise NotImplementedError

    @pytest.fixture
    def connector(self, make_connector: MakeConnector) -> HttpConnector:
        return make_connector()

    @pytest.fixture
    def writer(self, make_connector: MakeConnector) -> HttpConnector:
        return make_connector(mode=ConnectorMode.READ_WRITE, allowlist=self.allowlist)

    # --- identity, health ----------------------------------------------------------------------------
    async def test_a_connector_is_read_only_unless_configured_otherwise(
        self, connector: HttpConnector
    ) -> None:
        assert connector.mode is ConnectorMode.READ_ONLY
        assert connector.id
        assert connector.target
        assert connector.version
        assert connector.dry_run_support in set(DryRunSupport)

    async def test_health_has_the_contract_shape_and_echoes_the_request_id(
        self, connector: HttpConnector, clock: FakeClock
    ) -> None:
        health = await connector.health(ctx("health-42"))
        assert health.request_id == "health-42"
        assert health.connector_id == connector.id
        assert health.status is HealthStatus.HEALTHY
        assert health.breaker is BreakerState.CLOSED
        assert health.latency_ms is not None
        assert health.latency_ms > 0
        assert health.checked_at == clock.now()
        assert health.mode is ConnectorMode.READ_ONLY
        assert health.to_dict()["status"] == "healthy"

    async def test_a_slow_but_answering_device_is_degraded(
        self, make_connector: MakeConnector, fake: FakeDeviceServer
    ) -> None:
        connector = make_connector(policy=HttpPolicy(degraded_after_ms=50.0, attempt_timeout_seconds=2.0))
        fake.inject_latency(0.15)
        health = await connector.health(ctx())
        assert health.status is HealthStatus.DEGRADED
        assert health.latency_ms is not None
        assert health.latency_ms >= 150

    # --- reads -----------------------------------------------------------------------------------------
    async def test_a_read_echoes_the_request_id_and_carries_real_digests(
        self, connector: HttpConnector
    ) -> None:
        response = await connector.read_status(ctx("read-7"), {})
        assert response.request_id == "read-7"
        assert is_sha256_hex(response.input_hash)
        assert is_sha256_hex(response.output_hash)
        assert response.output_hash == sha256_hex(response.data)
        assert response.input_hash == sha256_hex({"connector": connector.id, "input": {}})
        assert response.input_hash != response.output_hash
        assert response.dry_run is False

    async def test_reads_normalise_devices_to_the_common_shape(self, connector: HttpConnector) -> None:
        devices = (await connector.read_status(ctx(), {})).data["devices"]
        assert devices
        for device in devices:
            assert set(DEVICE_KEYS) <= set(device), device
            assert isinstance(device["id"], str)
            assert device["id"]
            assert device["online"] in (True, False, None)
            assert device["battery"] is None or 0 <= device["battery"] <= 100
            assert isinstance(device["attributes"], dict)
            assert device["lastEventAt"] is None or device["lastEventAt"].endswith("Z")

    async def test_the_same_reading_hashes_the_same(self, connector: HttpConnector) -> None:
        first = await connector.read_status(ctx("a"), {})
        second = await connector.read_status(ctx("b"), {})
        assert first.output_hash == second.output_hash

    # --- writes ----------------------------------------------------------------------------------------
    @pytest.mark.parametrize("dry_run", [False, True])
    async def test_every_write_intent_is_refused_in_read_only_mode_and_the_fake_records_zero_writes(
        self, make_connector: MakeConnector, fake: FakeDeviceServer, dry_run: bool
    ) -> None:
        # even with every pair allowlisted, read-only wins, before any I/O
        connector = make_connector(
            allowlist=WriteAllowlist.parse(
                f"{c.device_id}:{c.command}" for c in self.write_commands if c.device_id and c.command
            )
        )
        for command in self.write_commands:
            err = await kind_of(connector.execute(ctx(dry_run=dry_run), command))
            assert err.kind == ErrorKind.READ_ONLY_VIOLATION
            assert err.retryable is False
        assert fake.writes == []
        assert fake.request_count == 0

    async def test_a_command_outside_the_allowlist_is_not_allowed_and_never_sent(
        self, writer: HttpConnector, fake: FakeDeviceServer
    ) -> None:
        err = await kind_of(writer.execute(ctx(), self.disallowed_write))
        assert err.kind == ErrorKind.NOT_ALLOWED
        assert err.retryable is False
        assert fake.writes == []

    async def test_an_unknown_write_action_is_not_allowed(
        self, writer: HttpConnector, fake: FakeDeviceServer
    ) -> None:
        err = await kind_of(
            writer.execute(ctx(), ConnectorCommand(action="firmware.update", device_id="1", command="go"))
        )
        assert err.kind == ErrorKind.NOT_ALLOWED
        assert fake.writes == []

    async def test_an_allowlisted_write_in_read_write_mode_reaches_the_device_exactly_once(
        self, writer: HttpConnector, fake: FakeDeviceServer
    ) -> None:
        response = await writer.execute(ctx("w-1", key="idem-1"), self.allowed_write)
        assert response.request_id == "w-1"
        assert response.data["ok"] is True
        assert response.output_hash == sha256_hex(response.data)
        # the same idempotency key again is answered from memory, not sent twice
        again = await writer.execute(ctx("w-2", key="idem-1"), self.allowed_write)
        assert again == response
        assert len(fake.writes) == 1
        assert fake.writes[0].authorised

    async def test_an_idempotency_key_reused_for_another_command_is_refused_and_nothing_is_sent(
        self, make_connector: MakeConnector, fake: FakeDeviceServer
    ) -> None:
        both = WriteAllowlist(
            pairs=self.allowlist.pairs
            | {(self.disallowed_write.device_id or "", self.disallowed_write.command or "")}
        )
        writer = make_connector(mode=ConnectorMode.READ_WRITE, allowlist=both)
        await writer.execute(ctx(key="idem-2"), self.allowed_write)
        with pytest.raises(Conflict):
            await writer.execute(ctx(key="idem-2"), self.disallowed_write)
        assert len(fake.writes) == 1

    async def test_a_dry_run_validates_and_sends_nothing(
        self, writer: HttpConnector, fake: FakeDeviceServer
    ) -> None:
        response = await writer.execute(ctx(dry_run=True), self.allowed_write)
        assert response.dry_run is True
        assert response.data["dryRun"] is True
        assert self.secret not in repr(response)
        assert fake.writes == []
        assert fake.request_count == 0
        err = await kind_of(writer.execute(ctx(dry_run=True), self.disallowed_write))
        assert err.kind == ErrorKind.NOT_ALLOWED

    async def test_writes_are_never_retried(self, writer: HttpConnector, fake: FakeDeviceServer) -> None:
        fake.fail_next(503)
        err = await kind_of(writer.execute(ctx(), self.allowed_write))
        assert err.kind == ErrorKind.UNAVAILABLE
        assert len(fake.writes) == 1

    # --- the error taxonomy ----------------------------------------------------------------------------
    async def test_a_rejected_token_is_auth_and_is_not_retried(
        self, connector: HttpConnector, fake: FakeDeviceServer
    ) -> None:
        fake.rotate_token("rotated-token-value")
        err = await kind_of(connector.read_status(ctx(), {}))
        assert err.kind == ErrorKind.AUTH
        assert err.retryable is False
        assert fake.request_count == self.requests_for_a_rejected_credential
        health = await connector.health(ctx())
        assert health.status is HealthStatus.DOWN
        assert health.error_kind is ErrorKind.AUTH

    async def test_a_slow_device_times_out_within_the_budget(
        self, connector: HttpConnector, fake: FakeDeviceServer
    ) -> None:
        fake.inject_latency(3.0)
        started = time.perf_counter()
        err = await kind_of(connector.read_status(ctx(timeout=0.4), {}))
        elapsed = time.perf_counter() - started
        assert err.kind == ErrorKind.TIMEOUT
        assert err.retryable is True
        assert elapsed < 0.4 + 0.35, elapsed

    async def test_5xx_is_unavailable_and_reads_are_retried(
        self, connector: HttpConnector, fake: FakeDeviceServer
    ) -> None:
        fake.fail_next(503, 502)
        response = await connector.read_status(ctx(), {})
        assert response.data["devices"]
        assert fake.request_count == 3

    async def test_persistent_5xx_is_unavailable_once_the_attempts_are_spent(
        self, connector: HttpConnector, fake: FakeDeviceServer
    ) -> None:
        fake.fail_next(500, 503, 504, 503)
        err = await kind_of(connector.read_status(ctx(), {}))
        assert err.kind == ErrorKind.UNAVAILABLE
        assert err.retryable is True
        assert fake.request_count == FAST.read_attempts

    async def test_a_dropped_connection_is_unavailable_and_retried(
        self, connector: HttpConnector, fake: FakeDeviceServer
    ) -> None:
        fake.drop_next(1)
        assert (await connector.read_status(ctx(), {})).data["devices"]
        fake.drop_next(5)
        err = await kind_of(connector.read_status(ctx(), {}))
        assert err.kind == ErrorKind.UNAVAILABLE

    async def test_malformed_json_is_a_bad_response(
        self, connector: HttpConnector, fake: FakeDeviceServer
    ) -> None:
        fake.serve_bad_json(1)
        err = await kind_of(connector.read_status(ctx(), {}))
        assert err.kind == ErrorKind.BAD_RESPONSE
        assert err.retryable is False
        assert fake.request_count == 1

    async def test_json_served_as_text_html_is_handled_as_documented(
        self, connector: HttpConnector, fake: FakeDeviceServer
    ) -> None:
        fake.serve_html_json(True)
        if self.html_json_is_parsed:
            assert (await connector.read_status(ctx(), {})).data["devices"]
            fake.serve_bad_json(1)
            assert (await kind_of(connector.read_status(ctx(), {}))).kind == ErrorKind.BAD_RESPONSE
        else:
            assert (await kind_of(connector.read_status(ctx(), {}))).kind == ErrorKind.BAD_RESPONSE

    # --- the breaker -------------------------------------------------------------------------------------
    async def test_the_breaker_opens_after_n_failures_and_half_opens_after_its_window(
        self, make_connector: MakeConnector, fake: FakeDeviceServer, clock: FakeClock
    ) -> None:
        connector = make_connector(policy=HttpPolicy(read_attempts=1, attempt_timeout_seconds=2.0))
        fake.fail_next(*[503] * BREAKER_FAILURES)
        for _ in range(BREAKER_FAILURES):
            assert (await kind_of(connector.read_status(ctx(), {}))).kind == ErrorKind.UNAVAILABLE
        assert connector.breaker.state is BreakerState.OPEN
        before = fake.request_count
        err = await kind_of(connector.read_status(ctx(), {}))
        assert err.kind == ErrorKind.CIRCUIT_OPEN
        health = await connector.health(ctx())
        assert (health.status, health.breaker) == (HealthStatus.DOWN, BreakerState.OPEN)
        assert fake.request_count == before  # an open breaker sends nothing

        clock.advance(BREAKER_WINDOW)
        assert connector.breaker.state is BreakerState.HALF_OPEN
        assert (await connector.read_status(ctx(), {})).data["devices"]
        assert connector.breaker.state is BreakerState.CLOSED

    async def test_a_failed_half_open_trial_reopens_the_breaker_for_twice_as_long(
        self, make_connector: MakeConnector, fake: FakeDeviceServer, clock: FakeClock
    ) -> None:
        connector = make_connector(policy=HttpPolicy(read_attempts=1, attempt_timeout_seconds=2.0))
        fake.fail_next(*[503] * (BREAKER_FAILURES + 1))
        for _ in range(BREAKER_FAILURES):
            await kind_of(connector.read_status(ctx(), {}))
        clock.advance(BREAKER_WINDOW)
        assert (await kind_of(connector.read_status(ctx(), {}))).kind == ErrorKind.UNAVAILABLE
        assert connector.breaker.state is BreakerState.OPEN
        clock.advance(BREAKER_WINDOW)
        assert connector.breaker.state is BreakerState.OPEN
        clock.advance(BREAKER_WINDOW)
        assert connector.breaker.state is BreakerState.HALF_OPEN

    async def test_health_of_a_stopped_device_turns_down_opens_the_breaker_and_recovers_when_it_returns(
        self, connector: HttpConnector, fake: FakeDeviceServer, clock: FakeClock
    ) -> None:
        fake.stop()
        for _ in range(BREAKER_FAILURES):
            health = await connector.health(ctx())
            assert health.status is HealthStatus.DOWN
            assert health.error_kind is ErrorKind.UNAVAILABLE
        health = await connector.health(ctx())
        assert (health.status, health.breaker) == (HealthStatus.DOWN, BreakerState.OPEN)
        fake.start()
        clock.advance(BREAKER_WINDOW)
        health = await connector.health(ctx())
        assert (health.status, health.breaker) == (HealthStatus.HEALTHY, BreakerState.CLOSED)

    # --- secrets -------------------------------------------------------------------------------------------
    async def test_no_secret_reaches_a_log_line_an_error_or_a_repr(
        self,
        make_connector: MakeConnector,
        fake: FakeDeviceServer,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        stream = io.StringIO()
        configure_logging(level="debug", fmt="json", stream=stream)
        # someone turns the chatty HTTP loggers up: the token must still not show
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.DEBUG)
        # configure_logging replaced the root handlers: plug pytest's raw capture back in, so a line is
        # seen both through the structlog pipeline and as a plain stdlib record (no redaction processor)
        logging.getLogger().addHandler(caplog.handler)
        caplog.set_level(logging.DEBUG)
        texts: list[str] = []
        try:
            connector = make_connector(mode=ConnectorMode.READ_WRITE, allowlist=self.allowlist)
            texts.append(repr(connector))
            texts.append(repr(await connector.read_status(ctx(), {})))
            texts.append(repr(await connector.execute(ctx(dry_run=True), self.allowed_write)))
            faults: list[Callable[[], None]] = [
                lambda: fake.fail_next(401),
                lambda: fake.serve_bad_json(1),
                lambda: fake.drop_next(5),
                lambda: fake.fail_next(503, 503, 503),
                lambda: fake.inject_latency(1.0),
            ]
            for inject in faults:
                inject()
                try:
                    await connector.read_status(ctx(timeout=0.3), {})
                except ConnectorError as err:
                    texts += [str(err), repr(err), "".join(traceback.format_exception(err))]
                fake.clear_faults()
                await asyncio.sleep(0)
            fake.stop()
            try:
                await connector.execute(ctx(), self.allowed_write)
            except ConnectorError as err:
                texts += [str(err), repr(err), "".join(traceback.format_exception(err))]
        finally:
            logging.getLogger().removeHandler(caplog.handler)
            for name in ("httpx", "httpcore"):
                logging.getLogger(name).setLevel(logging.WARNING)
        logged = stream.getvalue() + caplog.text
        assert "connector.request" in stream.getvalue()  # the capture really saw the connector's lines...
        assert "HTTP Request" in caplog.text  # ...and httpx's own request-URL lines, raw
        for text in [logged, *texts]:
            assert self.secret not in text
