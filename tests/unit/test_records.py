"""Keyed records (domain/records.py): the MAC is HMAC-SHA256, and a record's MAC binds its kind, id,
version and body — so an edited, moved or restored row no longer verifies."""

from __future__ import annotations

import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studio_brain.domain.errors import InputInvalid
from studio_brain.domain.records import Keyring, MacKey, check_record, key_id_for, seal_record

KEY = MacKey(key_id="mk-one", secret=bytes(range(32)))
OTHER = MacKey(key_id="mk-two", secret=bytes(range(1, 33)))
BODY = {"agentId": "ops-swarm", "scopes": ["state:read"], "revokedAt": None}


@given(secret=st.binary(min_size=32, max_size=200), message=st.binary(max_size=300))
def test_the_mac_is_hmac_sha256_for_any_key_and_message(secret: bytes, message: bytes) -> None:
    assert MacKey(key_id="mk-x", secret=secret).mac(message) == hmac.digest(secret, message, "sha256").hex()


def test_a_sealed_record_checks_and_any_change_of_kind_id_version_or_body_does_not() -> None:
    keyring = Keyring(current=KEY)
    seal = seal_record(KEY, kind="token", record_id="t-1", version=2, body=BODY)
    assert check_record(keyring, seal, kind="token", record_id="t-1", version=2, body=BODY)
    assert not check_record(keyring, seal, kind="proposal", record_id="t-1", version=2, body=BODY)
    assert not check_record(keyring, seal, kind="token", record_id="t-2", version=2, body=BODY)
    assert not check_record(keyring, seal, kind="token", record_id="t-1", version=1, body=BODY)
    assert not check_record(
        keyring, seal, kind="token", record_id="t-1", version=2, body={**BODY, "revokedAt": "x"}
    )
    assert not check_record(keyring, None, kind="token", record_id="t-1", version=2, body=BODY)


def test_after_a_rotation_old_seals_check_with_their_key_and_a_made_up_key_never_does() -> None:
    old = seal_record(KEY, kind="token", record_id="t-1", version=1, body=BODY)
    rotated = Keyring(current=OTHER, keys={KEY.key_id: KEY})
    assert check_record(rotated, old, kind="token", record_id="t-1", version=1, body=BODY)
    assert not check_record(Keyring(current=OTHER), old, kind="token", record_id="t-1", version=1, body=BODY)
    forged = seal_record(
        MacKey(key_id=KEY.key_id, secret=b"\xff" * 32), kind="token", record_id="t-1", version=1, body=BODY
    )
    assert not check_record(rotated, forged, kind="token", record_id="t-1", version=1, body=BODY)


def test_keys_are_refused_when_short_or_badly_named_and_never_shown() -> None:
    with pytest.raises(InputInvalid, match="at least 32 bytes"):
        MacKey(key_id="mk-short", secret=b"x" * 16)
    with pytest.raises(InputInvalid, match="key id"):
        MacKey(key_id="Not Valid", secret=bytes(32))
    assert KEY.secret.hex() not in repr(KEY) + repr(Keyring(current=KEY))
    assert key_id_for(bytes(32)).startswith("mk-")
    assert key_id_for(bytes(32)) != key_id_for(bytes(range(32)))
