"""A loopback webhook receiver: the demo's notification target when none is configured, and the tests'
webhook end for Apprise ``json://`` / ``form://`` URLs. Keeps every message it received, in order.

It can be told to refuse the next N messages (HTTP 503) to exercise retries.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass(frozen=True, kw_only=True, slots=True)
class ReceivedMessage:
    path: str
    content_type: str
    #: the decoded body: Apprise's json:// posts {"title", "message", "type", ...}; form:// posts fields
    body: dict[str, Any]
    at: datetime

    @property
    def title(self) -> str:
        return str(self.body.get("title", ""))

    @property
    def message(self) -> str:
        return str(self.body.get("message", ""))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class WebhookInbox:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[ReceivedMessage] = []
        self._refuse = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> WebhookInbox:
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                kind = self.headers.get("Content-Type", "")
                status = inbox._receive(self.path, kind, raw)
                payload = b'{"ok": true}' if status == 200 else b'{"ok": false}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name="webhook-inbox",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start the inbox first"
        return int(self._server.server_address[1])

    def url(self, scheme: str = "json", path: str = "inbox") -> str:
        """The Apprise URL that posts here (``json://`` or ``form://``)."""
        return f"{scheme}://127.0.0.1:{self.port}/{path}"

    def refuse_next(self, count: int) -> None:
        with self._lock:
            self._refuse = count

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self._messages)

    def _receive(self, path: str, kind: str, raw: bytes) -> int:
        with self._lock:
            if self._refuse > 0:
                self._refuse -= 1
                return 503
            text = raw.decode("utf-8", "replace")
            if "json" in kind:
                try:
                    body = json.loads(text) if text else {}
                except ValueError:
                    body = {"raw": text}
            else:
                body = {k: v[-1] for k, v in parse_qs(text).items()}
            self._messages.append(
                ReceivedMessage(
                    path=path,
                    content_type=kind,
                    body=body if isinstance(body, dict) else {},
                    at=datetime.now(UTC),
                )
            )
            return 200
