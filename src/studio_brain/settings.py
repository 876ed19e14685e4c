"""Settings: every knob of Studio Brain, read from ``STUDIO_BRAIN_*`` variables and an optional .env.

Validated once at start-up. A bad value stops the program with one line naming the variable and what is
expected (see :func:`load_settings`). Secrets are ``SecretStr`` and never printed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from studio_brain.domain.errors import ConfigError

ENV_PREFIX = "STUDIO_BRAIN_"


def default_home() -> Path:
    return Path(platformdirs.user_data_dir("studio-brain", appauthor=False))


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (user and host stay, for diagnosis)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


class Settings(BaseSettings):
    """Effective configuration. Field ``x`` is read from ``STUDIO_BRAIN_X``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    # --- foundation ---------------------------------------------------------------------------
    home: Path = Field(
        default_factory=default_home,
        description="Where Studio Brain keeps its data: embedded database, keys, checkpoints, exports.",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="postgresql://user:pass@host:port/db of an external server. Unset: embedded PostgreSQL.",
    )
    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(default=8787, ge=1, le=65535, description="Port of the HTTP server and cockpit.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Lowest level logged."
    )
    log_format: Literal["auto", "console", "json"] = Field(
        default="auto", description="auto: console on a terminal, JSON otherwise."
    )
    tenant_id: str = Field(
        default="monsoonfire-main",
        pattern=r"^[a-z0-9][a-z0-9_-]{1,62}$",
        description="The studio this brain serves (lowercase letters, digits, - and _).",
    )
    timezone: str = Field(default="America/Phoenix", description="The studio's IANA timezone.")
    db_pool_max: int = Field(default=10, ge=1, le=200, description="Most database connections held.")
    snapshot_max_age_minutes: int = Field(
        default=26 * 60, ge=1, description="/readyz: a snapshot older than this is not fresh."
    )
    readyz_require_fresh_snapshot: bool = Field(
        default=False, description="/readyz answers 503 when the latest snapshot is missing or stale."
    )

    # --- audit log (issue 3) --------------------------------------------------------------------

    # --- StudioState / cloud reads (issue 4) ----------------------------------------------------
    firestore_project_id: str = Field(default="monsoonfire-demo", description="Firestore project to read.")

    # --- capability gateway (issue 5) -----------------------------------------------------------

    # --- connectors (issue 6) -------------------------------------------------------------------

    # --- HTTP API and cockpit (issue 7) ---------------------------------------------------------
    admin_token: SecretStr | None = Field(
        default=None, description="Local admin token; generated at first run and stored 0600 when unset."
    )
    firebase_project_id: str | None = Field(
        default=None,
        description="Firebase project whose ID tokens are accepted (issuer and audience). "
        "Unset: STUDIO_BRAIN_FIRESTORE_PROJECT_ID.",
    )
    firebase_certs_file: Path | None = Field(
        default=None,
        description="JSON map of key id -> PEM certificate used instead of Google's certificate URL "
        "(tests, air-gapped sites). Signatures are always checked.",
    )
    cors_origins: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:5173", "http://localhost:5173"],
        description="Browser origins allowed to call the API (JSON list). Default: the Portal dev origins.",
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        le=64 * 1_048_576,
        description="Largest request body accepted (413 above).",
    )
    session_minutes: int = Field(
        default=12 * 60, ge=1, le=30 * 24 * 60, description="Lifetime of a cockpit session cookie."
    )
    login_link_minutes: int = Field(
        default=15, ge=1, le=24 * 60, description="Lifetime of a one-time cockpit login link."
    )

    # --- scheduler and swarms (issue 8) ---------------------------------------------------------

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown IANA timezone {value!r} (e.g. America/Phoenix)") from err
        return value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        raw = value.get_secret_value().strip()
        scheme = urlsplit(raw).scheme
        if scheme not in {"postgresql", "postgres", "postgresql+psycopg"}:
            raise ValueError("expected a postgresql://user:password@host:port/database URL")
        return SecretStr(raw)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None

    def redacted(self) -> dict[str, Any]:
        """Every setting as ``{STUDIO_BRAIN_NAME: value}``, secrets shown as ``***``."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name == "database_url" and value is not None:
                value = redact_url(value.get_secret_value())
            elif isinstance(value, SecretStr):
                value = "***"
            elif isinstance(value, Path):
                value = str(value)
            shown[ENV_PREFIX + name.upper()] = value
        return shown


def reference_markdown() -> str:
    """docs/configuration.md, generated from the fields' descriptions (``studio-brain config reference``)."""
    lines = [
        "# Configuration reference",
        "",
        "Generated by `studio-brain config reference`; do not edit by hand. Every setting is an environment",
        "variable (or a line in `.env` in the working directory). Secrets are never printed.",
        "",
        "| Variable | Default | Meaning |",
        "|---|---|---|",
    ]
    for name, info in Settings.model_fields.items():
        if info.default_factory is not None:
            default = (
                "(computed)"
                if name != "home"
                else "platform user-data dir, e.g. `~/.local/share/studio-brain`"
            )
        elif info.default is None:
            default = "unset"
        else:
            default = f"`{info.default}`"
        if isinstance(info.default, SecretStr):
            default = "(secret)"
        description = (info.description or "").replace("|", "\\|")
        lines.append(f"| `{ENV_PREFIX}{name.upper()}` | {default} | {description} |")
    return "\n".join(lines) + "\n"


def _describe(error: dict[str, Any]) -> str:
    field = ".".join(str(p) for p in error.get("loc", ())) or "settings"
    variable = ENV_PREFIX + field.upper()
    message = str(error.get("msg", "invalid value"))
    message = message.removeprefix("Value error, ")
    raw = error.get("input")
    shown = (
        "" if "secret" in field or "token" in field or "url" in field or raw is None else f" (got {raw!r})"
    )
    return f"{variable}: {message}{shown}"


def load_settings(**overrides: Any) -> Settings:
    """Read and validate settings; a bad value raises ConfigError with one readable line per problem."""
    try:
        settings = Settings(**overrides)
    except ValidationError as err:
        lines = [_describe(dict(e)) for e in err.errors()]
        raise ConfigError("; ".join(lines)) from None
    _refuse_stripe_secrets(settings)
    return settings


def _refuse_stripe_secrets(settings: Settings) -> None:
    """The brain never holds a Stripe secret (seed §8): refuse any sk_/rk_ value in settings or env."""
    suspects: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and text.strip().startswith(
            ("sk_live_", "sk_test_", "rk_live_", "rk_test_")
        ):
            suspects.append(ENV_PREFIX + name.upper())
    for key, value in os.environ.items():
        if (
            key.startswith(ENV_PREFIX)
            and value.strip().startswith(("sk_live_", "sk_test_", "rk_live_", "rk_test_"))
            and key not in suspects
        ):
            suspects.append(key)
    if suspects:
        raise ConfigError(
            f"{', '.join(sorted(suspects))}: looks like a Stripe secret key; Studio Brain never holds Stripe "
            "secrets — finance figures come from Firestore or a Functions read endpoint. Remove it."
        )
