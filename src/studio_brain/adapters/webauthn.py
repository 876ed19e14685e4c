"""WebAuthn ceremonies with the PyPI ``webauthn`` library: options out, responses verified, errors translated.

The library checks the challenge, origin, RP id, signature and sign counter; this adapter fixes the RP
and origins from configuration (never from the request) and turns every library error into
``Unauthenticated`` with a reason code the service audits.

The library (and cbor2 and its crypto under it) is imported by the first ceremony, not when the brain
is wired: a server that nobody signs in to with a passkey does not hold it in memory (issue 18).
"""

from __future__ import annotations

import json
from typing import Any

from studio_brain.domain.errors import Unauthenticated
from studio_brain.domain.reasons import ReasonCode
from studio_brain.ports.identity import AssertedPasskey, RegisteredPasskey

#: how long the browser may take for a ceremony (the stored challenge expires too)
CEREMONY_TIMEOUT_MS = 120_000


def _reason(message: str) -> ReasonCode:
    text = message.lower()
    if "sign count" in text:
        return ReasonCode.PASSKEY_SIGN_COUNT_REGRESSED
    if "origin" in text:
        return ReasonCode.WEBAUTHN_ORIGIN_MISMATCH
    if "rp id" in text:
        return ReasonCode.WEBAUTHN_RP_ID_MISMATCH
    if "challenge" in text:
        return ReasonCode.WEBAUTHN_CHALLENGE_MISMATCH
    return ReasonCode.PASSKEY_INVALID


def _refused(err: Exception) -> Unauthenticated:
    reason = _reason(str(err))
    return Unauthenticated(f"the passkey response was refused ({reason.value})", reason_code=reason)


def _parsed(response: str) -> dict[str, Any]:
    try:
        value = json.loads(response)
    except ValueError as err:
        raise Unauthenticated(
            "the passkey response is not JSON", reason_code=ReasonCode.PASSKEY_INVALID
        ) from err
    if not isinstance(value, dict):
        raise Unauthenticated("the passkey response is not an object", reason_code=ReasonCode.PASSKEY_INVALID)
    return value


class WebAuthnPasskeys:
    """The PasskeyVerifier port for one relying party (RP id + the cockpit's allowed origins)."""

    def __init__(self, *, rp_id: str, rp_name: str, origins: list[str]) -> None:
        self.rp_id = rp_id
        self.rp_name = rp_name
        self.origins = origins

    def __repr__(self) -> str:
        return f"WebAuthnPasskeys(rp_id={self.rp_id!r}, origins={self.origins!r})"

    def registration_options(
        self, *, challenge: bytes, user_id: str, user_name: str, exclude: list[str]
    ) -> str:
        from webauthn import generate_registration_options, options_to_json
        from webauthn.helpers import base64url_to_bytes
        from webauthn.helpers.structs import (
            AuthenticatorSelectionCriteria,
            PublicKeyCredentialDescriptor,
            ResidentKeyRequirement,
            UserVerificationRequirement,
        )

        options = generate_registration_options(
            rp_id=self.rp_id,
            rp_name=self.rp_name,
            user_id=user_id.encode("utf-8"),
            user_name=user_name,
            user_display_name=user_name,
            challenge=challenge,
            timeout=CEREMONY_TIMEOUT_MS,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.PREFERRED,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            exclude_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(c)) for c in exclude],
        )
        return options_to_json(options)

    def verify_registration(self, *, response: str, challenge: bytes) -> RegisteredPasskey:
        from webauthn import verify_registration_response
        from webauthn.helpers import bytes_to_base64url
        from webauthn.helpers.exceptions import WebAuthnException

        _parsed(response)
        try:
            verified = verify_registration_response(
                credential=response,
                expected_challenge=challenge,
                expected_rp_id=self.rp_id,
                expected_origin=self.origins,
            )
        except (WebAuthnException, ValueError, KeyError, TypeError) as err:
            raise _refused(err) from err
        return RegisteredPasskey(
            credential_id=bytes_to_base64url(verified.credential_id),
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
        )

    def authentication_options(self, *, challenge: bytes, allow: list[str]) -> str:
        from webauthn import generate_authentication_options, options_to_json
        from webauthn.helpers import base64url_to_bytes
        from webauthn.helpers.structs import PublicKeyCredentialDescriptor, UserVerificationRequirement

        options = generate_authentication_options(
            rp_id=self.rp_id,
            challenge=challenge,
            timeout=CEREMONY_TIMEOUT_MS,
            allow_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(c)) for c in allow],
            user_verification=UserVerificationRequirement.PREFERRED,
        )
        return options_to_json(options)

    def credential_id_of(self, response: str) -> str:
        from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

        raw = _parsed(response).get("rawId") or _parsed(response).get("id")
        if not isinstance(raw, str) or not raw or len(raw) > 1400:
            raise Unauthenticated(
                "the passkey response names no credential", reason_code=ReasonCode.PASSKEY_INVALID
            )
        try:
            return bytes_to_base64url(base64url_to_bytes(raw))
        except ValueError as err:
            raise Unauthenticated(
                "the credential id is not base64url", reason_code=ReasonCode.PASSKEY_INVALID
            ) from err

    def verify_authentication(
        self, *, response: str, challenge: bytes, public_key: bytes, sign_count: int
    ) -> AssertedPasskey:
        from webauthn import verify_authentication_response
        from webauthn.helpers import bytes_to_base64url
        from webauthn.helpers.exceptions import WebAuthnException

        _parsed(response)
        try:
            verified = verify_authentication_response(
                credential=response,
                expected_challenge=challenge,
                expected_rp_id=self.rp_id,
                expected_origin=self.origins,
                credential_public_key=public_key,
                credential_current_sign_count=sign_count,
            )
        except (WebAuthnException, ValueError, KeyError, TypeError) as err:
            raise _refused(err) from err
        return AssertedPasskey(
            credential_id=bytes_to_base64url(verified.credential_id), new_sign_count=verified.new_sign_count
        )
