"""The brain's own Firebase ID token: a refresh token from settings exchanged at the Secure Token endpoint
(``grant_type=refresh_token``), cached in memory and re-exchanged 5 minutes before it expires (or when a
Function answers 401). Used by every Functions caller (finance read, cloud writes) — never an admin key.

Neither token ever appears in a log line, an error or a repr.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from pydantic import SecretStr

from studio_brain.domain.errors import CloudReadError, Unauthenticated
from studio_brain.logging import get_logger
from studio_brain.ports.clock import Clock

log = get_logger(__name__)

#: an ID token is re-exchanged this long before it expires
REFRESH_MARGIN = timedelta(minutes=5)
DEFAULT_TOKEN_URL = "https://securetoken.googleapis.com/v1/token"  # noqa: S105 - a URL, not a secret


@dataclass(frozen=True, kw_only=True, slots=True)
class IdToken:
    value: SecretStr
    #: the Firebase uid the token belongs to (the brain's own staff user)
    uid: str
    expires_at: datetime

    def __repr__(self) -> str:
        return f"IdToken(uid={self.uid!r}, expires_at={self.expires_at.isoformat()})"


class IdTokenSource:
    """Exchanges the refresh token for ID tokens; concurrent callers share one exchange."""

    def __init__(
        self,
        *,
        refresh_token: SecretStr,
        clock: Clock,
        api_key: SecretStr | None = None,
        token_url: str = DEFAULT_TOKEN_URL,
        timeout_seconds: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._refresh_token = refresh_token
        self._api_key = api_key
        self._token_url = token_url
        self._clock = clock
        self._timeout = timeout_seconds
        self._transport = transport
        # built once: loading the CA bundle per exchange costs more than the exchange on loopback, and it
        # runs on the event loop where no deadline can interrupt it
        self._verify = ssl.create_default_context()
        self._current: IdToken | None = None
        self._lock = asyncio.Lock()
        #: how many times the refresh token was exchanged (observable for tests and diagnostics)
        self.exchanges = 0

    def __repr__(self) -> str:
        return f"IdTokenSource(token_url={self._token_url!r})"

    async def token(self, http: httpx.AsyncClient | None = None, *, force: bool = False) -> IdToken:
        """A valid ID token (cached unless ``force``). Raises Unauthenticated when the exchange is refused
        (revoked or wrong refresh token) and CloudReadError when the endpoint cannot be used."""
        async with self._lock:
            now = self._clock.now()
            current = self._current
            if not force and current is not None and now < current.expires_at - REFRESH_MARGIN:
                return current
            if http is not None:
                self._current = await self._exchange(http, now)
            else:
                async with httpx.AsyncClient(
                    timeout=self._timeout, transport=self._transport, trust_env=False, verify=self._verify
                ) as own:
                    self._current = await self._exchange(own, now)
            return self._current

    def forget(self) -> None:
        """Drop the cached token (a Function answered 401: it was revoked early)."""
        self._current = None

    async def _exchange(self, http: httpx.AsyncClient, now: datetime) -> IdToken:
        params = {"key": self._api_key.get_secret_value()} if self._api_key else None
        try:
            response = await http.post(
                self._token_url,
                params=params,
                data={"grant_type": "refresh_token", "refresh_token": self._refresh_token.get_secret_value()},
            )
        except httpx.HTTPError as err:
            raise CloudReadError(f"token exchange endpoint unreachable ({type(err).__name__})") from err
        self.exchanges += 1
        if response.status_code != httpx.codes.OK:
            message = (
                f"token exchange refused (HTTP {response.status_code}): renew "
                "STUDIO_BRAIN_FUNCTIONS_REFRESH_TOKEN (and check STUDIO_BRAIN_FUNCTIONS_API_KEY)"
            )
            if response.status_code in (400, 401, 403):
                raise Unauthenticated(message)
            raise CloudReadError(message)
        try:
            body: dict[str, Any] = response.json()
            id_token = str(body["id_token"])
            lifetime = int(body["expires_in"])
        except (ValueError, KeyError, TypeError) as err:
            raise CloudReadError("token exchange returned no id_token/expires_in") from err
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated:
            self._refresh_token = SecretStr(rotated)
        uid = body.get("user_id") if isinstance(body.get("user_id"), str) else _uid_of(id_token)
        log.info("functions.token_exchanged", expires_in=lifetime)
        return IdToken(
            value=SecretStr(id_token), uid=str(uid or ""), expires_at=now + timedelta(seconds=lifetime)
        )


def _uid_of(id_token: str) -> str | None:
    """The ``user_id``/``sub`` of our own token (read, not verified: it came from Google's endpoint)."""
    try:
        payload = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    uid = claims.get("user_id") or claims.get("sub") if isinstance(claims, dict) else None
    return str(uid) if uid else None
