"""Wiring of personal identities (issue 11): the identity core, credentials and passkeys."""

from __future__ import annotations

from datetime import timedelta

from studio_brain.services.identity import IdentityService
from studio_brain.wiring.brain import BrainParts


def wire_identity(brain: BrainParts) -> IdentityService:
    """Issue 11: staff accounts, passkeys (for the configured RP and origin), sessions and tokens."""

    from studio_brain.adapters.identity_key import IDENTITY_KEY_FILE, IdentityKey
    from studio_brain.adapters.postgres.identity_store import PostgresIdentityStore
    from studio_brain.adapters.webauthn import WebAuthnPasskeys
    from studio_brain.domain.identity import SessionTimes
    from studio_brain.services.credentials import CredentialService
    from studio_brain.services.identity_core import IdentityCore

    s = brain.settings
    times = s.sessions
    core = IdentityCore(
        tenant_id=s.tenant_id,
        store=PostgresIdentityStore(brain.database),
        # beside the audit keys, so `studio-brain backup` keeps it with them
        key=IdentityKey(s.home / "keys" / IDENTITY_KEY_FILE),
        events=brain.events,
        clock=brain.clock,
        ids=brain.ids,
        # issue 12: what no copy of a credential row may fall below, kept beside the keys
        ledger=brain.record_ledger,
    )
    credentials = CredentialService(
        core,
        times=SessionTimes(
            lifetime=timedelta(minutes=times.session_minutes),
            idle=timedelta(minutes=times.session_idle_minutes),
        ),
        login_link_ttl=timedelta(minutes=times.login_link_minutes),
        cli_code_ttl=timedelta(minutes=times.cli_code_minutes),
    )
    return IdentityService(
        core,
        credentials=credentials,
        passkeys=WebAuthnPasskeys(rp_id=s.passkey_rp_id, rp_name="Studio Brain", origins=[s.cockpit_url]),
        invite_ttl=timedelta(minutes=times.invite_minutes),
    )
