"""A fake device server: stdlib ``ThreadingHTTPServer`` on a free loopback port, in a background thread.

Subclasses (Maker API, Home Assistant) answer routes; this base adds what every fake shares: a request
log, a write recorder (every write-shaped request that reached the server, authorised or not), token
rotation, and fault injection — latency, 5xx sequences, malformed JSON, JSON served as ``text/html``,
dropped connections. It can be stopped and started again on the same port (a hub reboot).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True, kw_only=True, slots=True)
class Reply:
    status: int = 200
    body: Any = None
    content_type: str = "application/json"


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordedWrite:
    method: str
    path: str
    body: Any
    authorised: bool
    at: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class Incoming:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass(kw_only=True)
class _Faults:
    latency_seconds: float = 0.0
    statuses: deque[int] = field(default_factory=deque)
    bad_json: int = 0
    html_json: bool = False
    drop: int = 0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that gave up (timeout test) leaves a broken pipe behind: expected, not worth a traceback
        return


class FakeDeviceServer:
    """Base of the fakes. Thread-safe: the test thread injects faults while handler threads serve."""

    name = "fake"

    def __init__(self, *, token: str, now: Callable[[], datetime] | None = None) -> None:
        self._token = token
        self._now = now or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._faults = _Faults()
        self._requests: list[tuple[str, str]] = []
        self._writes: list[RecordedWrite] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> FakeDeviceServer:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", self._port), self._handler_class())
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.name}-{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> FakeDeviceServer:
        return self.start()

    def __exit__(
        self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    # --- tokens, recorder ------------------------------------------------------------------------
    @property
    def token(self) -> str:
        return self._token

    def rotate_token(self, new_token: str) -> None:
        """The hub got a new token: the old one now gets 401."""
        with self._lock:
            self._token = new_token

    @property
    def writes(self) -> list[RecordedWrite]:
        with self._lock:
            return list(self._writes)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def requests(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._requests)

    def reset_log(self) -> None:
        with self._lock:
            self._requests.clear()
            self._writes.clear()

    # --- faults --------------------------------------------------------------------------------------
    def inject_latency(self, seconds: float) -> None:
        with self._lock:
            self._faults.latency_seconds = seconds

    def fail_next(self, *statuses: int) -> None:
        """Answer the next requests with these statuses, in order (e.g. ``503, 503``)."""
        with self._lock:
            self._faults.statuses.extend(statuses)

    def serve_bad_json(self, count: int = 1) -> None:
        with self._lock:
            self._faults.bad_json += count

    def serve_html_json(self, enabled: bool = True) -> None:
        with self._lock:
            self._faults.html_json = enabled

    def drop_next(self, count: int = 1) -> None:
        """Close the next ``count`` connections without answering."""
        with self._lock:
            self._faults.drop += count

    def clear_faults(self) -> None:
        with self._lock:
            self._faults = _Faults()

    # --- for subclasses --------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self._now()

    def is_write(self, incoming: Incoming) -> bool:
        raise NotImplementedError

    def authorised(self, incoming: Incoming) -> bool:
        raise NotImplementedError

    def route(self, incoming: Incoming) -> Reply:
        raise NotImplementedError

    def unauthorised(self) -> Reply:
        return Reply(status=401, body={"message": "Unauthorized"})

    # --- the request path ------------------------------------------------------------------------------
    def _serve(self, incoming: Incoming) -> Reply | None:
        """The reply, or None to drop the connection."""
        with self._lock:
            self._requests.append((incoming.method, incoming.path))
            authorised = self.authorised(incoming)
            if self.is_write(incoming):
                self._writes.append(
                    RecordedWrite(
                        method=incoming.method,
                        path=incoming.path,
                        body=incoming.body,
                        authorised=authorised,
                        at=self._now(),
                    )
                )
            faults = self._faults
            if faults.drop > 0:
                faults.drop -= 1
                return None
            latency = faults.latency_seconds
            status = faults.statuses.popleft() if faults.statuses else None
        if latency > 0:
            time.sleep(latency)
        if status is not None:
            return Reply(status=status, body={"message": f"injected {status}"})
        if not authorised:
            return self.unauthorised()
        with self._lock:
            reply = self.route(incoming)
            if self._faults.bad_json > 0 and reply.status == 200:
                self._faults.bad_json -= 1
                return Reply(
                    status=200, body=b'{"devices": [{"id": "21", "label": ', content_type=reply.content_type
                )
            if self._faults.html_json and reply.content_type == "application/json":
                return Reply(status=reply.status, body=reply.body, content_type="text/html; charset=utf-8")
        return reply

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "StudioBrainFake/1"

            def log_message(self, format: str, *args: Any) -> None:
                # silent: the Hubitat token is in the request line
                return

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                incoming = Incoming(
                    method=self.command,
                    path=parts.path,
                    query={k: v[-1] for k, v in parse_qs(parts.query).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                reply = fake._serve(incoming)
                if reply is None:
                    self.close_connection = True
                    return
                if isinstance(reply.body, bytes):
                    payload = reply.body
                elif isinstance(reply.body, str) and not reply.content_type.startswith("application/json"):
                    payload = reply.body.encode()
                else:
                    payload = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _handle
            do_POST = _handle
            do_PUT = _handle
            do_DELETE = _handle

        return Handler
