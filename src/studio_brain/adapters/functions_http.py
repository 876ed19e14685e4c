"""The optional Cloud Functions finance read endpoint, called with a Firebase ID token (never a Stripe key).

The ID token is obtained by exchanging a refresh token from settings at the Secure Token endpoint
(``grant_type=refresh_token``), cached in memory and re-exchanged 5 minutes before it expires (or at
once if the endpoint answers 401). Neither token ever appears in a log line, an error or a repr.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
from pydantic import SecretStr

from studio_brain.domain.errors import CloudReadError
from studio_brain.domain.snapshot import FinanceSummary
from studio_brain.logging import get_logger
from studio_brain.ports.clock import Clock

log = get_logger("studio_brain.functions_http")

#: an ID token is re-exchanged this long before it expires
REFRESH_MARGIN = timedelta(minutes=5)
DEFAULT_TOKEN_URL = "https://securetoken.googleapis.com/v1/token"  # noqa: S105 - a URL, not a secret


class FunctionsFinanceReader:
    """FinanceReader over HTTPS: ``GET endpoint`` with ``Authorization: Bearer <Firebase ID token>``."""

    def __init__(
        self,
        *,
        endpoint_url: str,
        refresh_token: SecretStr,
        clock: Clock,
        api_key: SecretStr | None = None,
        token_url: str = DEFAULT_TOKEN_URL,
        timeout_seconds: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._endpoint = endpoint_url
        self._refresh_token = refresh_token
        self._api_key = api_key
        self._token_url = token_url
        self._clock = clock
        self._timeout = timeout_seconds
        self._transport = transport
        self._id_token: SecretStr | None = None
        self._expires_at: datetime | None = None
        self._lock = asyncio.Lock()
        #: how many times a refresh token was exchanged (observable for tests and diagnostics)
        self.exchanges = 0

    def __repr__(self) -> str:
        return f"FunctionsFinanceReader(endpoint={self._endpoint!r})"

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self._timeout, transport=self._transport)

    async def finance_summary(self) -> FinanceSummary:
        async with self._client() as http:
            token = await self._token(http)
            response = await self._get(http, token)
            if response.status_code == httpx.codes.UNAUTHORIZED:
                # revoked or expired early: exchange once more, then give up
                token = await self._token(http, force=True)
                response = await self._get(http, token)
        if response.status_code != httpx.codes.OK:
            raise CloudReadError(
                f"finance read endpoint answered HTTP {response.status_code}"
                + (
                    ": check the refresh token's user has the staff claim"
                    if response.status_code in (401, 403)
                    else ""
                )
            )
        return self._summary(response)

    async def _get(self, http: httpx.AsyncClient, token: SecretStr) -> httpx.Response:
        try:
            return await http.get(
                self._endpoint, headers={"Authorization": f"Bearer {token.get_secret_value()}"}
            )
        except httpx.HTTPError as err:
            raise CloudReadError(f"finance read endpoint unreachable ({type(err).__name__})") from err

    def _summary(self, response: httpx.Response) -> FinanceSummary:
        try:
            body = response.json()
            pending, unsettled = body["pendingOrders"], body["unsettledPayments"]
        except (ValueError, KeyError, TypeError) as err:
            raise CloudReadError(
                "finance read endpoint returned no {pendingOrders, unsettledPayments} JSON object"
            ) from err
        for name, value in (("pendingOrders", pending), ("unsettledPayments", unsettled)):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or value < 0
                or value != int(value)
            ):
                raise CloudReadError(f"finance read endpoint returned a non-count {name}")
        return FinanceSummary(
            pending_orders=int(pending), unsettled_payments=int(unsettled), read_at=self._clock.now()
        )

    async def _token(self, http: httpx.AsyncClient, *, force: bool = False) -> SecretStr:
        async with self._lock:
            now = self._clock.now()
            if (
                not force
                and self._id_token is not None
                and self._expires_at is not None
                and now < self._expires_at - REFRESH_MARGIN
            ):
                return self._id_token
            self._id_token, self._expires_at = await self._exchange(http, now)
            return self._id_token

    async def _exchange(self, http: httpx.AsyncClient, now: datetime) -> tuple[SecretStr, datetime]:
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
            raise CloudReadError(
                f"token exchange refused (HTTP {response.status_code}): renew "
                "STUDIO_BRAIN_FUNCTIONS_REFRESH_TOKEN (and check STUDIO_BRAIN_FUNCTIONS_API_KEY)"
            )
        try:
            body: dict[str, Any] = response.json()
            id_token = str(body["id_token"])
            lifetime = int(body["expires_in"])
        except (ValueError, KeyError, TypeError) as err:
            raise CloudReadError("token exchange returned no id_token/expires_in") from err
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated:
            self._refresh_token = SecretStr(rotated)
        log.info("functions.token_exchanged", expires_in=lifetime)
        return SecretStr(id_token), now + timedelta(seconds=lifetime)
