"""Firebase ID token verification: signature, issuer, audience, expiry, with certificates cached by max-age.

Certificates come from Google's public URL, or — for tests and air-gapped sites — from a local JSON file
(key id → PEM certificate). There is no mode that skips the signature check.

A verified token's Principal is remembered until the token's own ``exp`` (issue 18: the Portal sends the
same token on every request for up to an hour, and an RS256 check plus a certificate parse is most of what
authenticating it costs). The cache is keyed by the SHA-256 of the token — the token itself is not kept —
holds at most ``cache_size`` entries, and a hit is honoured only while the signing key is still among the
current certificates (a key withdrawn from the certificate document stops its cached tokens too). What the
token *means* (which person, active or removed) is still looked up on every request by the identity service.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from google.auth import exceptions as google_exceptions
from google.auth import jwt as google_jwt

from studio_brain.domain.audit import ActorType
from studio_brain.domain.errors import ConfigError, ReasonCode, Unauthenticated
from studio_brain.domain.identity import AuthMethod, Principal
from studio_brain.logging import get_logger
from studio_brain.ports.clock import Clock

log = get_logger(__name__)

#: Google's public certificates for Firebase ID tokens (key id → PEM)
GOOGLE_CERTS_URL = "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
_MAX_AGE = re.compile(r"max-age=(\d+)")
#: used when Google answers without a max-age (it normally sends ~6 hours)
_DEFAULT_MAX_AGE_SECONDS = 3600
#: tolerance for a clock that is a little behind the token issuer
_CLOCK_SKEW_SECONDS = 30
#: verified tokens remembered at once (a studio has a handful of staff, each with one live token)
DEFAULT_CACHE_SIZE = 1024


@dataclass(frozen=True, kw_only=True, slots=True)
class _CachedCerts:
    certs: Mapping[str, str]
    expires_at: float


@dataclass(frozen=True, kw_only=True, slots=True)
class _Verified:
    principal: Principal
    key_id: str
    expires_at: float  # the token's exp (epoch seconds)


def _key_id(raw: str) -> str | None:
    """The ``kid`` of a JWT's (unverified) header: only used to look a *verified* token's key up again."""
    head = raw.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, binascii.Error):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


def _roles(claims: Mapping[str, Any]) -> frozenset[str]:
    """staff = ``staff == true`` or ``roles`` ∋ "staff"; admin likewise (the Portal's rule)."""
    listed = claims.get("roles")
    names = {str(r) for r in listed} if isinstance(listed, list) else set()
    roles = {role for role in ("staff", "admin") if claims.get(role) is True or role in names}
    return frozenset(roles)


def principal_from_claims(claims: Mapping[str, Any], *, tenant_id: str) -> Principal:
    """A verified token's claims as a Principal. The tenant is the brain's configured one, never a claim."""
    uid = claims.get("user_id") or claims.get("sub")
    if not isinstance(uid, str) or not uid:
        raise Unauthenticated("the ID token has no subject", reason_code=ReasonCode.AUTH_TOKEN_INVALID)
    roles = _roles(claims)
    name = claims.get("name") or claims.get("email")
    return Principal(
        tenant_id=tenant_id,
        actor_type=ActorType.STAFF if roles else ActorType.HUMAN,
        actor_id=uid,
        via=AuthMethod.FIREBASE,
        roles=roles,
        display_name=str(name) if name else None,
    )


class FirebaseTokenVerifier:
    """Verifies Firebase ID tokens for one project and turns them into Principals of one tenant."""

    def __init__(
        self,
        *,
        project_id: str,
        tenant_id: str,
        clock: Clock,
        certs_file: Path | None = None,
        certs_url: str = GOOGLE_CERTS_URL,
        http: httpx.AsyncClient | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self._project_id = project_id
        self._tenant_id = tenant_id
        self._clock = clock
        self._certs_file = certs_file
        self._certs_url = certs_url
        self._http = http
        self._cache: _CachedCerts | None = None
        self._lock = asyncio.Lock()
        self._verified: OrderedDict[bytes, _Verified] = OrderedDict()
        self._cache_size = cache_size

    @property
    def issuer(self) -> str:
        return f"https://securetoken.google.com/{self._project_id}"

    async def verify(self, raw: str) -> Principal:
        """The Principal of a valid token; Unauthenticated (with a reason code) for anything else."""
        certs = await self._certs()
        digest = hashlib.sha256(raw.encode()).digest()
        hit = self._verified.get(digest)
        if hit is not None:
            if self._clock.now().timestamp() < hit.expires_at and hit.key_id in certs:
                self._verified.move_to_end(digest)
                return hit.principal
            del self._verified[digest]  # expired, or its key was withdrawn: verify afresh (and refuse)
        principal, expires_at = self._verify_signed(raw, certs)
        key_id = _key_id(raw)
        if key_id is not None and key_id in certs and expires_at is not None:
            self._remember(digest, _Verified(principal=principal, key_id=key_id, expires_at=expires_at))
        return principal

    def _remember(self, digest: bytes, verified: _Verified) -> None:
        if self._cache_size <= 0:
            return
        self._verified[digest] = verified
        if len(self._verified) > self._cache_size:
            now = self._clock.now().timestamp()
            for stale in [d for d, v in self._verified.items() if v.expires_at <= now]:
                del self._verified[stale]
            while len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)  # the least recently used

    def _verify_signed(self, raw: str, certs: Mapping[str, str]) -> tuple[Principal, float | None]:
        try:
            claims: Mapping[str, Any] = google_jwt.decode(  # type: ignore[no-untyped-call]
                raw, certs=dict(certs), audience=self._project_id, clock_skew_in_seconds=_CLOCK_SKEW_SECONDS
            )
        except (google_exceptions.GoogleAuthError, ValueError) as err:
            # google-auth says "expired" and "wrong audience" only in message text; we do not parse it,
            # the caller gets one reason code and the log keeps the error type.
            log.info("auth.firebase.rejected", error_type=type(err).__name__)
            raise Unauthenticated(
                "the ID token could not be verified (signature, audience or expiry)",
                reason_code=ReasonCode.AUTH_TOKEN_INVALID,
            ) from err
        if claims.get("iss") != self.issuer:
            log.info("auth.firebase.rejected", error_type="wrong_issuer")
            raise Unauthenticated(
                "the ID token was issued for another project", reason_code=ReasonCode.AUTH_TOKEN_INVALID
            )
        auth_time = claims.get("auth_time")
        if (
            isinstance(auth_time, int | float)
            and auth_time > self._clock.now().timestamp() + _CLOCK_SKEW_SECONDS
        ):
            raise Unauthenticated(
                "the ID token's auth_time is in the future", reason_code=ReasonCode.AUTH_TOKEN_INVALID
            )
        exp = claims.get("exp")
        expires_at = float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None
        return principal_from_claims(claims, tenant_id=self._tenant_id), expires_at

    async def _certs(self) -> Mapping[str, str]:
        now = self._clock.monotonic()
        cached = self._cache
        if cached is not None and now < cached.expires_at:
            return cached.certs
        async with self._lock:
            cached = self._cache
            if cached is not None and now < cached.expires_at:
                return cached.certs
            if self._certs_file is not None:
                certs = await asyncio.to_thread(_read_certs_file, self._certs_file)
                # a local file is re-read at most once a minute, so rotating it needs no restart
                self._cache = _CachedCerts(certs=certs, expires_at=now + 60)
            else:
                certs, max_age = await self._fetch_google_certs()
                self._cache = _CachedCerts(certs=certs, expires_at=now + max_age)
            return certs

    async def _fetch_google_certs(self) -> tuple[Mapping[str, str], int]:
        client = self._http or httpx.AsyncClient(timeout=10.0)
        try:
            response = await client.get(self._certs_url)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as err:
            log.warning("auth.firebase.certs_unavailable", error_type=type(err).__name__)
            raise Unauthenticated(
                "cannot fetch Google's token certificates to verify the ID token",
                reason_code=ReasonCode.AUTH_CERTS_UNAVAILABLE,
            ) from err
        finally:
            if self._http is None:
                await client.aclose()
        if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
            raise Unauthenticated(
                "Google's certificate document is malformed", reason_code=ReasonCode.AUTH_CERTS_UNAVAILABLE
            )
        match = _MAX_AGE.search(response.headers.get("cache-control", ""))
        max_age = int(match.group(1)) if match else _DEFAULT_MAX_AGE_SECONDS
        return body, max_age


def _read_certs_file(path: Path) -> Mapping[str, str]:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"STUDIO_BRAIN_FIREBASE_CERTS_FILE: cannot read {path} as JSON ({type(err).__name__})"
        ) from err
    if not isinstance(body, dict) or not body or not all(isinstance(v, str) for v in body.values()):
        raise ConfigError(
            f"STUDIO_BRAIN_FIREBASE_CERTS_FILE: {path} must be a JSON object of key id -> PEM certificate"
        )
    return {str(k): v for k, v in body.items()}
