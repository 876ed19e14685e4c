"""Settings are validated at start-up and explain themselves in one line."""

import pytest

from studio_brain.domain.errors import ConfigError
from studio_brain.settings import load_settings, redact_url


def test_defaults_are_valid_and_point_at_the_embedded_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STUDIO_BRAIN_DATABASE_URL", raising=False)
    settings = load_settings()
    assert settings.port == 8787
    assert settings.uses_embedded_database
    assert settings.tenant_id == "monsoonfire-main"


def test_a_bad_port_names_the_variable_and_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_BRAIN_PORT", "eighty")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "STUDIO_BRAIN_PORT" in caught.value.message
    assert "'eighty'" in caught.value.message
    assert "\n" not in caught.value.message


def test_an_out_of_range_port_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_BRAIN_PORT", "70000")
    with pytest.raises(ConfigError, match="STUDIO_BRAIN_PORT"):
        load_settings()


def test_an_unknown_timezone_is_refused_with_an_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_BRAIN_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ConfigError, match=r"STUDIO_BRAIN_TIMEZONE: unknown IANA timezone 'Mars/Olympus'"):
        load_settings()


def test_a_database_url_must_be_postgres_and_its_password_is_never_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STUDIO_BRAIN_DATABASE_URL", "mysql://root:hunter2@db/x")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "STUDIO_BRAIN_DATABASE_URL" in caught.value.message
    assert "hunter2" not in caught.value.message


def test_a_stripe_secret_anywhere_in_settings_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_BRAIN_ADMIN_TOKEN", "sk_live_abcdef123456")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "STUDIO_BRAIN_ADMIN_TOKEN" in caught.value.message
    assert "Stripe" in caught.value.message
    assert "abcdef123456" not in caught.value.message


def test_a_stripe_secret_in_an_unknown_variable_is_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_BRAIN_STRIPE_KEY", "rk_test_abcdef")
    with pytest.raises(ConfigError, match="STUDIO_BRAIN_STRIPE_KEY"):
        load_settings()


def test_the_redacted_view_hides_secrets_and_url_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_BRAIN_DATABASE_URL", "postgresql://brain:s3cret@db.local:5432/brain")
    monkeypatch.setenv("STUDIO_BRAIN_ADMIN_TOKEN", "local-admin-token-xyz")
    shown = load_settings().redacted()
    assert shown["STUDIO_BRAIN_DATABASE_URL"] == "postgresql://brain:***@db.local:5432/brain"
    assert shown["STUDIO_BRAIN_ADMIN_TOKEN"] == "***"
    assert "s3cret" not in repr(shown)
    assert "local-admin-token-xyz" not in repr(load_settings())


def test_redact_url_leaves_urls_without_a_password_alone() -> None:
    assert (
        redact_url("postgresql://postgres@127.0.0.1:5432/test") == "postgresql://postgres@127.0.0.1:5432/test"
    )
