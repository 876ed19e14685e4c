"""A fake of the studio's Cloud Functions on loopback, implementing the reference contract exactly
(``executeStudioBrainPilotAction``, ``rollbackStudioBrainPilotAction``, ``pickedUpAndClose``) plus the
Secure Token exchange the brain gets its ID token from.

- Auth as the Functions do it: ``verifyIdToken`` on a real RS256 token (signed by this fake's own key,
  checked against its certificate, audience and issuer of the project), then ``requireAdmin`` (claim
  ``staff == true`` or ``roles`` containing ``staff``): 401 / 403. POST only (405).
- zod-equivalent validation (400 ``{ok: false, message}``), the transactional dedupe, the rate limit of
  ``pickedUpAndClose`` (10 per 60 s, 429 with Retry-After), 404 for an unknown batch or action.
- Writes go to a :class:`~studio_brain.adapters.connectors.functions.store.PilotStore`: the Firestore
  emulator (tests read the note back with the official client) or memory (the demo's cloud).
- Fault injection from :class:`FakeDeviceServer` (latency, 5xx, bad JSON, HTML, dropped connections) on
  Function calls, and ``hold_after_commit(s)``: write, then wait before answering — the window in which a
  crash leaves the caller with an unknown outcome. Token exchanges are not Function calls: they are
  counted in ``exchanges`` and never faulted.

Run as a process (the kill -9 test, the demo): ``python -m studio_brain.adapters.connectors.functions.fake``.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt
from google.auth import exceptions as google_exceptions
from google.auth import jwt as google_jwt

from studio_brain.adapters.connectors.fakes.server import FakeDeviceServer, Incoming, RecordedWrite, Reply
from studio_brain.adapters.connectors.functions import contract as fc
from studio_brain.adapters.connectors.functions.store import MemoryPilotStore, PilotStore

TOKEN_PATH = "/v1/token"  # noqa: S105 - a path, not a secret
KEY_ID = "fake-functions-key"


class FakeFunctions(FakeDeviceServer):
    """The studio's Functions and Secure Token endpoint, for one project and one brain user."""

    name = "fake-functions"

    def __init__(
        self,
        *,
        store: PilotStore | None = None,
        project_id: str = "studio-brain-test",
        refresh_token: str | None = None,
        uid: str = "studio-brain-bot",
        staff: bool = True,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(token=refresh_token or secrets.token_urlsafe(32), now=now)
        self.store: PilotStore = store or MemoryPilotStore()
        self.project_id = project_id
        self.uid = uid
        self._staff = staff
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._certs = {KEY_ID: _certificate(self._key)}
        self._signer = crypt.RSASigner.from_string(  # type: ignore[no-untyped-call]
            self._key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode(),
            KEY_ID,
        )
        #: tokens of an earlier generation are revoked (``rotate_token`` starts a new one)
        self._generation = 0
        self._hold_after_commit = 0.0
        self._close_times: deque[float] = deque()
        self._committed = threading.Event()
        self.exchanges = 0
        self.close_calls = 0

    # --- the brain's user ---------------------------------------------------------------------------
    @property
    def token_url(self) -> str:
        return f"{self.url}{TOKEN_PATH}"

    @property
    def functions_url(self) -> str:
        return self.url

    def rotate_token(self, new_token: str) -> None:
        """The user's refresh tokens were revoked and a new one issued: the old refresh token and every ID
        token minted before now are refused (verifyIdToken with checkRevoked)."""
        with self._lock:
            self._token = new_token
            self._generation += 1

    def set_staff(self, staff: bool) -> None:
        """Give or take away the brain user's staff claim (tokens minted from now on)."""
        with self._lock:
            self._staff = staff

    def mint_id_token(self, *, uid: str | None = None, staff: bool | None = None) -> str:
        issued = int(time.time())
        payload: dict[str, Any] = {
            "iss": f"https://securetoken.google.com/{self.project_id}",
            "aud": self.project_id,
            "auth_time": issued,
            "user_id": uid or self.uid,
            "sub": uid or self.uid,
            "iat": issued,
            "exp": issued + 3600,
            # where Firebase compares auth_time with the user's tokensValidAfterTime, the fake counts
            # revocations (a second has room for several in a test)
            "fake_generation": self._generation,
        }
        if self._staff if staff is None else staff:
            payload["staff"] = True
        token: bytes = google_jwt.encode(self._signer, payload)  # type: ignore[no-untyped-call]
        return token.decode()

    # --- faults specific to a write path --------------------------------------------------------------
    def hold_after_commit(self, seconds: float) -> None:
        """Write, then wait ``seconds`` before answering (a crash in that window loses the reply)."""
        with self._lock:
            self._hold_after_commit = seconds
            self._committed.clear()

    def wait_committed(self, timeout: float) -> bool:
        return self._committed.wait(timeout)

    # --- FakeDeviceServer hooks ------------------------------------------------------------------------
    def is_write(self, incoming: Incoming) -> bool:
        return incoming.method == "POST" and incoming.path.strip("/") in fc.FUNCTIONS

    def authorised(self, incoming: Incoming) -> bool:
        # verification happens in route(): 401 and 403 have their own bodies there
        return True

    def _serve(self, incoming: Incoming) -> Reply | None:
        if incoming.path == TOKEN_PATH:
            return self._exchange(incoming)
        # Function calls: recorded and faulted like any device request, but routed OUTSIDE the lock, so
        # concurrent calls really race and the store's transaction is what dedupes them
        with self._lock:
            self._requests.append((incoming.method, incoming.path))
            if self.is_write(incoming):
                self._writes.append(
                    RecordedWrite(
                        method=incoming.method,
                        path=incoming.path,
                        body=incoming.body,
                        authorised=self._verify(incoming)[0] == 200,
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
            return Reply(status=status, body={"ok": False, "message": f"injected {status}"})
        reply = self.route(incoming)
        with self._lock:
            if self._faults.bad_json > 0 and reply.status in (200, 405):
                self._faults.bad_json -= 1
                return Reply(
                    status=reply.status, body=b'{"ok": true, "replayed": ', content_type=reply.content_type
                )
            if self._faults.html_json and reply.content_type == "application/json":
                return Reply(status=reply.status, body=reply.body, content_type="text/html; charset=utf-8")
        return reply

    def route(self, incoming: Incoming) -> Reply:
        name = incoming.path.strip("/")
        if name not in fc.FUNCTIONS:
            return Reply(status=404, body={"ok": False, "message": "Not found"})
        status, claims = self._verify(incoming)
        if status == 401:
            return Reply(status=401, body={"ok": False, "message": "Unauthorized"})
        if status == 403:
            return Reply(status=403, body={"ok": False, "message": "Forbidden"})
        if incoming.method != "POST":
            return Reply(status=405, body={"ok": False, "message": "Method not allowed"})
        try:
            if name == fc.EXECUTE_FUNCTION:
                return self._execute(incoming.body)
            if name == fc.ROLLBACK_FUNCTION:
                return self._rollback(incoming.body)
            return self._close(incoming.body, uid=str(claims.get("user_id") or claims.get("sub")))
        except fc.BodyInvalid as err:
            return Reply(status=400, body={"ok": False, "message": str(err)})

    # --- the Functions -------------------------------------------------------------------------------------
    def _execute(self, body: Any) -> Reply:
        parsed = fc.parse_execute(body)
        replayed, pointer = self.store.execute(parsed, now=self._now())
        self._after_commit()
        return Reply(status=200, body={"ok": True, "replayed": replayed, "resourcePointer": pointer})

    def _rollback(self, body: Any) -> Reply:
        parsed = fc.parse_rollback(body)
        outcome = self.store.rollback(parsed, now=self._now())
        if outcome is None:
            return Reply(status=404, body={"ok": False, "message": "Pilot action not found"})
        self._after_commit()
        return Reply(status=200, body={"ok": True, "replayed": outcome})

    def _close(self, body: Any, *, uid: str) -> Reply:
        parsed = fc.parse_close(body)
        limit, window = fc.CLOSE_RATE_LIMIT
        with self._lock:
            self.close_calls += 1
            now = time.monotonic()
            while self._close_times and now - self._close_times[0] > window:
                self._close_times.popleft()
            if len(self._close_times) >= limit:
                retry = int(window - (now - self._close_times[0])) + 1
                return Reply(
                    status=429, body={"ok": False, "message": f"Too many requests; retry in {retry}s"}
                )
            self._close_times.append(now)
        found = self.store.close_batch(
            parsed["batchId"], parsed["notes"] or fc.DEFAULT_CLOSE_NOTES, uid=uid, now=self._now()
        )
        if not found:
            return Reply(status=404, body={"ok": False, "message": "Batch not found"})
        self._after_commit()
        return Reply(status=200, body={"ok": True, "batchId": parsed["batchId"]})

    def _after_commit(self) -> None:
        self._committed.set()
        with self._lock:
            hold = self._hold_after_commit
        if hold > 0:
            time.sleep(hold)

    # --- auth ---------------------------------------------------------------------------------------------
    def _verify(self, incoming: Incoming) -> tuple[int, dict[str, Any]]:
        header = incoming.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return 401, {}
        try:
            claims: dict[str, Any] = google_jwt.decode(  # type: ignore[no-untyped-call]
                header.removeprefix("Bearer "), certs=self._certs, audience=self.project_id
            )
        except (google_exceptions.GoogleAuthError, ValueError):
            return 401, {}
        if claims.get("iss") != f"https://securetoken.google.com/{self.project_id}":
            return 401, {}
        with self._lock:
            revoked = claims.get("fake_generation") != self._generation
        if revoked:
            return 401, {}
        if not fc.is_staff(claims):
            return 403, claims
        return 200, claims

    def _exchange(self, incoming: Incoming) -> Reply:
        form = incoming.body if isinstance(incoming.body, dict) else {}
        with self._lock:
            current = self._token
            self.exchanges += 1
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != current:
            return Reply(status=400, body={"error": {"message": "INVALID_REFRESH_TOKEN"}})
        return Reply(
            status=200,
            body={
                "id_token": self.mint_id_token(),
                "expires_in": "3600",
                "token_type": "Bearer",
                "refresh_token": current,
                "user_id": self.uid,
                "project_id": self.project_id,
            },
        )

    def _handler_class(self) -> Any:
        handler = super()._handler_class()
        fake = self

        class FormAwareHandler(handler):  # type: ignore[misc, valid-type]
            """The token exchange is form-encoded: keep its raw body for ``_form``."""

            def _handle(self) -> None:
                if self.path.split("?")[0] == TOKEN_PATH:
                    length = int(self.headers.get("Content-Length") or 0)
                    raw = self.rfile.read(length).decode() if length else ""
                    incoming = Incoming(
                        method=self.command, path=TOKEN_PATH, query={}, headers={}, body=_parse_form(raw)
                    )
                    reply = fake._serve(incoming)
                    assert reply is not None
                    payload = json.dumps(reply.body).encode()
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                super()._handle()

            do_GET = _handle
            do_POST = _handle
            do_PUT = _handle
            do_DELETE = _handle

        return FormAwareHandler


def _parse_form(raw: str) -> dict[str, str]:
    from urllib.parse import parse_qs

    return {k: v[-1] for k, v in parse_qs(raw).items()}


def _certificate(key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-securetoken")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def main(argv: list[str] | None = None) -> int:
    """Serve the fake as a process: prints one JSON line ``{"url", "tokenUrl"}`` when ready."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--project", default="studio-brain-test")
    parser.add_argument("--refresh-token", required=True)
    parser.add_argument("--emulator", default=None, help="host:port of the Firestore emulator (else memory)")
    parser.add_argument("--hold-after-commit", type=float, default=0.0)
    args = parser.parse_args(argv)
    store: PilotStore
    if args.emulator:
        from studio_brain.adapters.connectors.functions.store import EmulatorPilotStore

        store = EmulatorPilotStore(project_id=args.project, emulator_host=args.emulator)
    else:
        store = MemoryPilotStore()
    fake = FakeFunctions(store=store, project_id=args.project, refresh_token=args.refresh_token)
    fake._port = args.port
    fake.start()
    fake.hold_after_commit(args.hold_after_commit)
    print(json.dumps({"url": fake.url, "tokenUrl": fake.token_url}), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
