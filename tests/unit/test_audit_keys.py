"""Checkpoint signing keys: created once with mode 0600, never overwritten, never shown."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from studio_brain.adapters.keys import (
    Ed25519Signer,
    Ed25519Verifier,
    LazySigner,
    load_signing_key,
    public_key_if_present,
)
from studio_brain.domain.errors import ConfigError


def test_the_key_is_created_at_first_use_private_to_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "audit-signing.key"
    signer = load_signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_signing_key(path).public_key == signer.public_key
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_racing_first_runs_end_up_with_one_key(tmp_path: Path) -> None:
    path = tmp_path / "audit-signing.key"
    keys: list[str] = []
    threads = [
        threading.Thread(target=lambda: keys.append(load_signing_key(path).public_key)) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1
    assert load_signing_key(path).public_key == keys[0]


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit-signing.key"
    load_signing_key(path)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_signing_key(path)


def test_a_key_file_that_is_not_an_ed25519_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit-signing.key"
    path.write_text("not a key")
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError, match="PEM"):
        load_signing_key(path)


def test_a_key_given_in_settings_is_used_instead_of_a_file(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()
    signer = load_signing_key(tmp_path / "unused.key", secret_hex=raw)
    assert signer.public_key == Ed25519Signer(key).public_key
    assert not (tmp_path / "unused.key").exists()


def test_a_malformed_key_in_settings_names_the_variable_but_not_the_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_signing_key(tmp_path / "k", secret_hex="deadbeef-secret")
    assert "STUDIO_BRAIN_AUDIT_SIGNING_KEY" in caught.value.message
    assert "deadbeef" not in caught.value.message


def test_the_private_key_never_shows_in_a_repr(tmp_path: Path) -> None:
    signer = load_signing_key(tmp_path / "k")
    secret = (tmp_path / "k").read_text()
    assert secret not in repr(signer)
    assert "PRIVATE" not in repr(signer) + repr(LazySigner(lambda: signer))


def test_the_lazy_signer_touches_nothing_until_used(tmp_path: Path) -> None:
    path = tmp_path / "k"
    lazy = LazySigner(lambda: load_signing_key(path))
    assert not path.exists()
    signature = lazy.sign(b"message")
    assert path.exists()
    assert Ed25519Verifier().verify(lazy.public_key, b"message", signature)


def test_looking_up_the_public_key_creates_nothing(tmp_path: Path) -> None:
    assert public_key_if_present(tmp_path / "k") is None
    assert not (tmp_path / "k").exists()


@pytest.mark.parametrize(
    ("public_key", "signature"), [("zz", "00"), ("00" * 32, "not hex"), ("00" * 31, "00" * 64), ("", "")]
)
def test_the_verifier_says_no_to_garbage_instead_of_raising(public_key: str, signature: str) -> None:
    assert Ed25519Verifier().verify(public_key, b"m", signature) is False


def test_a_signature_over_other_bytes_does_not_verify(tmp_path: Path) -> None:
    signer = load_signing_key(tmp_path / "k")
    assert not Ed25519Verifier().verify(signer.public_key, b"other", signer.sign(b"message"))
