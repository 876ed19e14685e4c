"""The optional Cloud Functions finance read endpoint, called with a Firebase ID token (never a Stripe key).

The ID token comes from :class:`~studio_brain.adapters.firebase_id_token.IdTokenSource` — the refresh
token from settings exchanged at the Secure Token endpoint, cached, re-exchanged 5 minutes before it expires
(or at once if the endpoint answers 401) — the same source the cloud-write connector uses. Neither token
ever appears in a log line, an error or a repr.
"""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from studio_brain.adapters.firebase_id_token import DEFAULT_TOKEN_URL, REFRESH_MARGIN, IdTokenSource
from studio_brain.domain.errors import CloudReadError, Unauthenticated
from studio_brain.domain.snapshot import FinanceSummary
from studio_brain.logging import get_logger
from studio_brain.ports.clock import Clock

log = get_logger(__name__)

__all__ = ["DEFAULT_TOKEN_URL", "REFRESH_MARGIN", "FunctionsFinanceReader"]


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
        self._clock = clock
        self._timeout = timeout_seconds
        self._transport = transport
        self._tokens = IdTokenSource(
            refresh_token=refresh_token,
            clock=clock,
            api_key=api_key,
            token_url=token_url,
            timeout_seconds=timeout_seconds,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"FunctionsFinanceReader(endpoint={self._endpoint!r})"

    @property
    def exchanges(self) -> int:
        """How many times a refresh token was exchanged (observable for tests and diagnostics)."""
        return self._tokens.exchanges

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

    async def _token(self, http: httpx.AsyncClient, *, force: bool = False) -> SecretStr:
        try:
            return (await self._tokens.token(http, force=force)).value
        except Unauthenticated as err:
            # a refused exchange is a failed cloud read here (the state service reports it as such)
            raise CloudReadError(err.message) from err

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
