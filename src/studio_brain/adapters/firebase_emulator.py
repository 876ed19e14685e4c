"""Local development against the Firebase Auth emulator: its ID tokens are unsigned (``alg: none``), and
the Firebase Admin SDK accepts them only while ``FIREBASE_AUTH_EMULATOR_HOST`` is set. This verifier does
the same, behind an explicit setting (``STUDIO_BRAIN_FIREBASE_AUTH_EMULATOR``, off by default) that is
refused unless the brain listens on loopback and the variable is set. The claims are still checked as the
Admin SDK checks them (audience and issuer of the configured project, expiry, issued-at, subject); a
signed token is verified as always.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from studio_brain.adapters.firebase_auth import FirebaseTokenVerifier, principal_from_claims
from studio_brain.domain.errors import ConfigError, ReasonCode, Unauthenticated
from studio_brain.domain.identity import Principal
from studio_brain.logging import get_logger
from studio_brain.ports.clock import Clock

log = get_logger(__name__)

EMULATOR_ENV = "FIREBASE_AUTH_EMULATOR_HOST"
#: what the warning line at start and ``/readyz`` details say
EMULATOR_WARNING = (
    "Firebase Auth emulator tokens are accepted (unsigned, alg none): local development only; "
    "never run a studio's brain like this"
)
_SKEW_SECONDS = 30
_MAX_SUBJECT = 128


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def emulator_refusal(*, host: str, emulator_host: str | None) -> str | None:
    """Why the emulator setting may not be used here, or None when it may."""
    if not emulator_host:
        return (
            f"STUDIO_BRAIN_FIREBASE_AUTH_EMULATOR=true needs {EMULATOR_ENV} set (e.g. 127.0.0.1:9099), "
            "as the Firebase Admin SDK does"
        )
    if not is_loopback(host):
        return (
            "STUDIO_BRAIN_FIREBASE_AUTH_EMULATOR=true is refused: the brain listens on "
            f"{host!r}, not loopback (127.0.0.1, ::1 or localhost)"
        )
    return None


def _segment(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def unsigned_claims(raw: str) -> Mapping[str, Any] | None:
    """The claims of an ``alg: none`` JWT (the emulator's), or None for anything else."""
    parts = raw.split(".")
    if len(parts) != 3:
        return None
    try:
        header, claims = _segment(parts[0]), _segment(parts[1])
    except (ValueError, binascii.Error):
        return None
    if not isinstance(header, dict) or header.get("alg") != "none" or not isinstance(claims, dict):
        return None
    return claims


class EmulatorTokenVerifier(FirebaseTokenVerifier):
    """A FirebaseTokenVerifier that also accepts the Auth emulator's unsigned tokens for its project."""

    def __init__(self, *, emulator_host: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.emulator_host = emulator_host

    async def verify(self, raw: str) -> Principal:
        claims = unsigned_claims(raw)
        if claims is None:
            return await super().verify(raw)
        problem = self._claims_problem(claims)
        if problem is not None:
            log.info("auth.firebase_emulator.rejected", problem=problem)
            raise Unauthenticated(
                f"the emulator ID token is not valid: {problem}", reason_code=ReasonCode.AUTH_TOKEN_INVALID
            )
        return principal_from_claims(claims, tenant_id=self._tenant_id)

    def _claims_problem(self, claims: Mapping[str, Any]) -> str | None:
        """The Admin SDK's checks of an emulator token, except the signature."""
        now = self._clock.now().timestamp()
        if claims.get("aud") != self._project_id:
            return "it was issued for another project (aud)"
        if claims.get("iss") != self.issuer:
            return "it was issued for another project (iss)"
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int | float) or isinstance(exp, bool) or exp + _SKEW_SECONDS < now:
            return "it has expired"
        if not isinstance(iat, int | float) or isinstance(iat, bool) or iat > now + _SKEW_SECONDS:
            return "it is issued in the future"
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > _MAX_SUBJECT:
            return "it has no valid subject"
        return None


def checked_emulator_host(*, enabled: bool, host: str, environ: Mapping[str, str]) -> str | None:
    """The emulator host when the setting is on and allowed; None when off; ConfigError when refused."""
    if not enabled:
        return None
    emulator_host = environ.get(EMULATOR_ENV)
    refusal = emulator_refusal(host=host, emulator_host=emulator_host)
    if refusal is not None:
        raise ConfigError(refusal)
    assert emulator_host is not None
    log.warning("auth.firebase_emulator.enabled", emulator_host=emulator_host, warning=EMULATOR_WARNING)
    return emulator_host


def token_verifier(
    *, emulator_host: str | None, project_id: str, tenant_id: str, clock: Clock, certs_file: Path | None
) -> FirebaseTokenVerifier:
    """The verifier the settings ask for: emulator-aware only with a checked emulator host."""
    if emulator_host is None:
        return FirebaseTokenVerifier(
            project_id=project_id, tenant_id=tenant_id, clock=clock, certs_file=certs_file
        )
    return EmulatorTokenVerifier(
        emulator_host=emulator_host,
        project_id=project_id,
        tenant_id=tenant_id,
        clock=clock,
        certs_file=certs_file,
    )
