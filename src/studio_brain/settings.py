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
from studio_brain.settings_groups import NotifySettings, ScheduleSettings, SessionSettings, SwarmOpsSettings
from studio_brain.settings_reference import reference_table

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
    workers: int = Field(
        default=1,
        ge=1,
        le=16,
        description="HTTP processes of `serve` (one listening socket shared; the first also runs the "
        "scheduler). More than one uses more cores, at about 100 MB each.",
    )
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
    audit_verify_workers: int = Field(
        default=0,
        ge=0,
        le=16,
        description="Worker processes `audit verify` uses on a chain of 100,000 events or more, each checking "
        "one segment. 0: one per CPU core, at most 4; 1: always one pass.",
    )
    snapshot_max_age_minutes: int = Field(
        default=26 * 60, ge=1, description="/readyz: a snapshot older than this is not fresh."
    )
    readyz_require_fresh_snapshot: bool = Field(
        default=False, description="/readyz answers 503 when the latest snapshot is missing or stale."
    )

    # --- audit log (issue 3) --------------------------------------------------------------------
    audit_signing_key: SecretStr | None = Field(
        default=None,
        description="The checkpoint signing key itself: 64 hex characters (raw Ed25519 private key). "
        "Unset: the key file is used (created at first run).",
    )
    audit_signing_key_file: Path | None = Field(
        default=None,
        description="Ed25519 key file for audit checkpoints (mode 0600). Unset: <home>/keys/audit-signing.key.",
    )
    audit_checkpoint_file: Path | None = Field(
        default=None,
        description="Append-only JSONL copy of every signed audit checkpoint, kept outside the database. "
        "Unset: <home>/audit/checkpoints.jsonl. Put it on other storage than the database for best effect.",
    )
    audit_mac_key_file: Path | None = Field(
        default=None,
        description="HMAC keys of the keyed audit chain and keyed records (mode 0600, created at first run, "
        "never in the database; `studio-brain audit rotate-key` adds a key). Unset: <home>/keys/audit-mac.json.",
    )

    @property
    def audit_mac_key_path(self) -> Path:
        return self.audit_mac_key_file or self.home / "keys" / "audit-mac.json"

    @property
    def record_ledger_path(self) -> Path:
        """Issue 12: the record ledger (adapters/record_ledger.py), beside the keys it partners."""
        return self.home / "keys" / "record-ledger.jsonl"

    @property
    def audit_key_path(self) -> Path:
        return self.audit_signing_key_file or self.home / "keys" / "audit-signing.key"

    @property
    def audit_checkpoint_path(self) -> Path:
        return self.audit_checkpoint_file or self.home / "audit" / "checkpoints.jsonl"

    # --- StudioState / cloud reads (issue 4) ----------------------------------------------------
    firestore_project_id: str = Field(
        default="monsoonfire-demo",
        description="Firestore project to read (credentials: Application Default Credentials, read-only; "
        "set FIRESTORE_EMULATOR_HOST to read the emulator instead).",
    )
    state_source: Literal["firestore", "demo"] = Field(
        default="firestore",
        description="Where `snapshot` reads by default: the studio's Firestore or the demo.",
    )
    state_rules_file: Path | None = Field(
        default=None,
        description="TOML count-rule table replacing the built-in one (see docs/studio-state.md).",
    )
    firestore_query_deadline_seconds: float = Field(
        default=60.0,
        gt=0,
        le=600,
        description="Deadline of each count() query, retries included; the query is cancelled when it passes.",
    )
    firestore_max_concurrency: int = Field(
        default=8, ge=1, le=64, description="Most count() queries in flight at once."
    )
    firestore_query_attempts: int = Field(
        default=3, ge=1, le=10, description="Attempts per query; only transient errors are retried."
    )
    demo_seed: int = Field(default=20261125, description="Seed of the generated demo studio.")
    demo_history_days: int = Field(
        default=60, ge=0, le=400, description="Days of daily history `studio-brain demo` computes."
    )
    functions_finance_url: str | None = Field(
        default=None,
        description="Optional Cloud Functions finance read endpoint (HTTPS); unset: finance from Firestore rules.",
    )
    functions_refresh_token: SecretStr | None = Field(
        default=None, description="Firebase refresh token exchanged for the ID token the endpoint requires."
    )
    functions_api_key: SecretStr | None = Field(
        default=None, description="Firebase Web API key used for the token exchange."
    )
    functions_token_url: str = Field(
        default="https://securetoken.googleapis.com/v1/token",
        description="Where the refresh token is exchanged for an ID token.",
    )
    functions_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="HTTP timeout of the finance endpoint and token exchange."
    )

    @field_validator("functions_finance_url", "functions_token_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if urlsplit(value.strip()).scheme not in {"https", "http"} or not urlsplit(value.strip()).netloc:
            raise ValueError("expected an https:// URL")
        return value.strip()

    # --- cloud writes through the studio's Functions (issue 15) -----------------------------------
    functions_base_url: str | None = Field(
        default=None,
        description="Base URL of the studio's Cloud Functions, e.g. https://us-central1-<project>.cloudfunctions.net "
        "(executeStudioBrainPilotAction, rollbackStudioBrainPilotAction, pickedUpAndClose). Unset: cloud writes "
        "have no connector (ADAPTER_MISSING). Called with the ID token of STUDIO_BRAIN_FUNCTIONS_REFRESH_TOKEN.",
    )
    functions_mode: Literal["read_only", "read_write"] = Field(
        default="read_only", description="read_write lets approved cloud writes through the allowlist."
    )
    functions_write_allowlist: str = Field(
        default="",
        description="Comma-separated function:command pairs the brain may send, e.g. "
        "executeStudioBrainPilotAction:ops_note_append,rollbackStudioBrainPilotAction:rollback,pickedUpAndClose:close.",
    )
    functions_write_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        le=60,
        description="Most one Function call may take (also capped by the capability's budget).",
    )
    attestation_key_file: Path | None = Field(
        default=None,
        description="Ed25519 key signing approval attestations (mode 0600, created at first use); its public half "
        "is published at /.well-known/jwks.json. Unset: <home>/keys/attestation-ed25519.pem.",
    )
    public_base_url: str | None = Field(
        default=None,
        description="This brain's URL as the studio reaches it; names the JWKS in each cloud write's approvedBy. "
        "Unset: the JWKS URL is left out (the studio uses the published copy in docs).",
    )

    @property
    def attestation_key_path(self) -> Path:
        return self.attestation_key_file or self.home / "keys" / "attestation-ed25519.pem"

    @field_validator("functions_base_url", "public_base_url")
    @classmethod
    def _optional_http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if urlsplit(value.strip()).scheme not in {"https", "http"} or not urlsplit(value.strip()).netloc:
            raise ValueError("expected an https:// URL")
        return value.strip().rstrip("/")

    # --- capability gateway (issue 5) -----------------------------------------------------------
    gateway_registry_file: Path | None = Field(
        default=None,
        description="Capability registry TOML (validated at start-up). Unset: the packaged capabilities.toml.",
    )

    # --- connectors (issue 6) -------------------------------------------------------------------
    hubitat_url: str | None = Field(
        default=None,
        description="Hubitat hub base URL, e.g. http://192.168.1.20 (LAN). Unset: the connector is not_configured.",
    )
    hubitat_app_id: str | None = Field(default=None, description="Maker API app id (digits).")
    hubitat_token: SecretStr | None = Field(default=None, description="Maker API access token.")
    hubitat_mode: Literal["read_only", "read_write"] = Field(
        default="read_only", description="read_write lets approved gateway writes through the allowlist."
    )
    hubitat_write_allowlist: str = Field(
        default="",
        description="Comma-separated device:command pairs the gateway may send, e.g. 21:on,21:off.",
    )
    hubitat_ca_file: Path | None = Field(
        default=None, description="CA bundle pinning the hub's self-signed HTTPS certificate."
    )
    hubitat_stale_after_minutes: int = Field(
        default=24 * 60, ge=1, description="A device without healthStatus is offline after this long silent."
    )
    roborock_ha_url: str | None = Field(
        default=None, description="Home Assistant base URL, e.g. http://homeassistant.local:8123."
    )
    roborock_ha_token: SecretStr | None = Field(
        default=None, description="Long-lived token of a dedicated non-admin Home Assistant user."
    )
    roborock_entity_id: str = Field(
        default="vacuum.roborock_s7", pattern=r"^vacuum\.[a-z0-9_]{1,64}$", description="The vacuum entity."
    )
    roborock_mode: Literal["read_only", "read_write"] = Field(
        default="read_only", description="read_write lets approved gateway writes through the allowlist."
    )
    roborock_write_allowlist: str = Field(
        default="", description="Comma-separated entity:command pairs, e.g. vacuum.roborock_s7:start."
    )
    roborock_stale_after_minutes: int = Field(
        default=30, ge=1, description="The vacuum reading is stale when HA last heard from it longer ago."
    )
    connector_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="Budget of one connector call, retries included."
    )
    connector_attempt_timeout_seconds: float = Field(
        default=3.0, gt=0, le=60, description="Most one HTTP attempt may take."
    )
    connector_read_attempts: int = Field(default=3, ge=1, le=10, description="Attempts per read (writes: 1).")
    connector_breaker_failures: int = Field(
        default=3, ge=1, le=100, description="Consecutive failures that open a connector's circuit."
    )
    connector_breaker_window_seconds: float = Field(
        default=30.0, gt=0, description="First open window; doubles on each re-open."
    )
    connector_breaker_max_window_seconds: float = Field(default=600.0, gt=0, description="Open window cap.")
    connector_degraded_after_ms: float = Field(
        default=1500.0, gt=0, description="A health probe slower than this reports degraded."
    )

    @field_validator("hubitat_url", "roborock_ha_url")
    @classmethod
    def _device_base_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("expected an http:// or https:// base URL, e.g. http://192.168.1.20")
        if parts.username or parts.password or parts.query:
            raise ValueError("put no credentials or query in the URL; the token has its own setting")
        return value.strip().rstrip("/")

    @field_validator("hubitat_app_id")
    @classmethod
    def _maker_app_id(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.strip().isdigit():
            raise ValueError("the Maker API app id is digits (the number in /apps/api/<id>/)")
        return value.strip()

    @field_validator("hubitat_token", "roborock_ha_token")
    @classmethod
    def _blank_token_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return SecretStr(value.get_secret_value().strip())

    @field_validator("hubitat_write_allowlist", "roborock_write_allowlist")
    @classmethod
    def _allowlist_pairs(cls, value: str) -> str:
        from studio_brain.domain.connectors import WriteAllowlist  # the one parser of device:command pairs
        from studio_brain.domain.errors import InputInvalid

        try:
            WriteAllowlist.parse(value.split(","))
        except InputInvalid as err:
            raise ValueError(err.message) from None
        return value

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
    firebase_auth_emulator: bool = Field(
        default=False,
        description="Local development only: also accept the Firebase Auth emulator's unsigned ID tokens "
        "(alg none) for the configured project, as the Firebase Admin SDK does. Refused at start unless "
        "STUDIO_BRAIN_HOST is loopback and FIREBASE_AUTH_EMULATOR_HOST is set; logged as a warning at start "
        "and shown in /readyz details.",
    )
    cors_origins: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:5173", "http://localhost:5173"],
        description="Browser origins allowed to call the API (JSON list). Default: the Portal dev origins.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Extra host names the HTTP server answers to (JSON list; 400 for any other Host header, "
        "against DNS rebinding). Always allowed: localhost, 127.0.0.1, ::1, STUDIO_BRAIN_HOST and the host "
        'of STUDIO_BRAIN_PUBLIC_URL. ["*"] turns the check off.',
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

    # --- personal identities (issue 11) ---------------------------------------------------------
    public_url: str | None = Field(
        default=None,
        description="The URL people open the cockpit at: printed in links and the only origin passkeys "
        "accept. Unset: http://localhost:<port> (passkeys need a host name, not an IP address).",
    )
    webauthn_rp_id: str | None = Field(
        default=None,
        description="WebAuthn relying-party id (a host name; passkeys are bound to it). Unset: the host of "
        "STUDIO_BRAIN_PUBLIC_URL. Changing it makes every enrolled passkey unusable.",
    )

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in {"https", "http"} or not parts.hostname or parts.path not in {"", "/"}:
            raise ValueError("expected http(s)://host[:port] with no path")
        return value.strip().rstrip("/")

    session_idle_minutes: int = Field(
        default=60, ge=1, le=30 * 24 * 60, description="A cockpit session ends after this long without use."
    )
    invite_minutes: int = Field(
        default=60, ge=5, le=7 * 24 * 60, description="Lifetime of a one-time staff enrolment invite."
    )
    cli_code_minutes: int = Field(
        default=5, ge=1, le=60, description="Lifetime of a one-time `studio-brain login` code."
    )

    # --- scheduler and swarms (issue 8) ---------------------------------------------------------
    scheduler_enabled: bool = Field(
        default=True, description="Run the in-process scheduler under `serve`/`demo` (leader-elected)."
    )
    schedule_snapshot: str = Field(default="every 1h", description="StudioState snapshot ('every 1h').")
    schedule_daily_close: str = Field(
        default="daily 00:05", description="Daily close snapshot, studio local time ('daily 00:05')."
    )
    daily_close_grace_minutes: int = Field(
        default=30,
        ge=0,
        le=720,
        description="A daily close read from the cloud this long after local midnight still counts as on time; "
        "later, the day's last snapshot is taken instead (marked late).",
    )
    firestore_version_retention_hours: float = Field(
        default=1.0,
        ge=0,
        le=168,
        description="How far back Firestore keeps versions for read_time (1 h by default; 168 with point-in-time "
        "recovery): a missed daily close is read at the day boundary within this window; 0 never tries.",
    )
    schedule_connector_health: str = Field(default="every 5m", description="Connector health checks.")
    schedule_audit_checkpoint: str = Field(
        default="daily 00:15", description="Signed audit checkpoint, studio local time."
    )
    schedule_swarms: str = Field(
        default="", description="Extra swarm schedule; empty: swarms run only after each snapshot."
    )
    job_backoff_base_seconds: float = Field(
        default=60.0, gt=0, description="A failing job waits base·2^(failures-1) seconds before retrying."
    )
    job_backoff_cap_seconds: float = Field(default=3600.0, gt=0, description="The longest back-off.")
    scheduler_leader_check_seconds: float = Field(
        default=5.0, gt=0, le=300, description="How often the leader verifies it still holds its lock."
    )
    scheduler_overdue_grace_seconds: float = Field(
        default=600.0,
        gt=0,
        description="`/readyz` answers 503 when a job's due time (or retry) passed this long ago unstarted.",
    )
    schedule_execution_recovery: str = Field(
        default="every 1m",
        description="Execution recovery: journalled outcomes recorded, stale executions marked, states read back.",
    )
    gateway_outcome_retry_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How long an execution retries recording its outcome while the database is away.",
    )
    swarm_ops_z_threshold: float = Field(
        default=3.5,
        ge=2.0,
        le=20.0,
        description="Robust z (biweight SD of residuals) at which a metric is unusual.",
    )
    swarm_ops_min_history_days: int = Field(
        default=14, ge=14, le=365, description="Earlier usable days needed before a metric is judged."
    )
    swarm_ops_window_days: int = Field(default=56, ge=14, le=365, description="Baseline window in days.")
    mcp_rate_per_minute: int = Field(
        default=60,
        ge=1,
        le=10_000,
        description="MCP: the most tool calls one agent may make in any 60 seconds (over stdio and HTTP).",
    )
    calendar_file: Path | None = Field(
        default=None,
        description=(
            "TOML studio calendar of closures, holidays and maintenance days (see docs/swarms.md): "
            "the ops swarm never judges those days nor uses them in a baseline; the morning brief names them."
        ),
    )
    swarm_ops_backlog_ratio: float = Field(
        default=12.0, gt=0, description="Firing backlog rule: active batches per scheduled firing."
    )
    swarm_ops_backlog_min_active: int = Field(default=40, ge=1, description="Firing backlog rule: minimum.")
    swarm_ops_agent_queue_min: int = Field(default=8, ge=1, description="Agent-queue spike rule: minimum.")
    swarm_ops_blocked_tickets_min: int = Field(default=5, ge=1, description="Blocked tickets rule.")
    swarm_cooldown_hours: float = Field(
        default=72.0, ge=0, le=24 * 90, description="A finding is not drafted again within this cooldown."
    )
    swarm_finance_max_read_age_hours: float = Field(
        default=24.0, gt=0, description="Finance figures older than this are flagged stale."
    )

    # --- safety watch and notifications (issue 17) ----------------------------------------------
    safety_enabled: bool = Field(
        default=True, description="Run the safety-watch job (kiln, doors, silent devices; docs/safety.md)."
    )
    schedule_safety_watch: str = Field(
        default="every 1m", description="How often the safety watch reads the devices and firings."
    )
    safety_rules_file: Path | None = Field(
        default=None,
        description="TOML safety-rule table replacing the built-in rules/safety_rules.toml (docs/safety.md).",
    )
    safety_kiln_outlet: str = Field(
        default="Kiln Room Outlet",
        description="The kiln outlet: a Hubitat device id or label (a power-metering switch).",
    )
    safety_kiln_id: str = Field(
        default="",
        description="The kilnId (in kilnFirings) the kiln outlet serves; empty: any kiln's firing counts.",
    )
    safety_door_devices: str = Field(
        default="",
        description="Comma-separated door contacts and locks (ids or labels); empty: every device with a "
        "contact or lock attribute.",
    )
    safety_watched_devices: str = Field(
        default="",
        description="Comma-separated further devices (ids or labels) whose silence is a finding, e.g. a leak "
        "sensor; connector:device reads another connector (roborock:vacuum.roborock_s7).",
    )
    studio_hours: str = Field(
        default="mon-fri 09:00-21:00; sat-sun 10:00-18:00",
        description="Studio opening hours, local time: 'mon-fri 09:00-21:00; sat 10:00-17:00; sun closed'. "
        "Doors open or unlocked outside them are a finding.",
    )
    notify_targets: SecretStr | None = Field(
        default=None,
        description="Notification targets as whitespace-separated name=apprise-url entries, e.g. "
        "'staff=mailtos://user:pass@mail.example.com owner=ntfy://token@ntfy.sh/studio'. Secret: shown "
        "masked everywhere.",
    )
    notify_routes: str = Field(
        default="high=*; medium=*; low=*; brief=*",
        description="Which targets get which severity (and the morning brief): 'high=*; medium=staff; "
        "brief=owner,staff' (* = every target; a key left out goes nowhere).",
    )
    notify_quiet_hours: str = Field(
        default="",
        description="Local quiet hours, e.g. 22:00-07:00: alerts below high wait until they end. Empty: none.",
    )
    notify_attempts: int = Field(default=5, ge=1, le=20, description="Delivery attempts per notification.")
    notify_backoff_base_seconds: float = Field(
        default=30.0, gt=0, description="A failed delivery is retried after base·2^(failures-1) seconds."
    )
    notify_backoff_cap_seconds: float = Field(default=900.0, gt=0, description="The longest retry wait.")
    notify_timeout_seconds: float = Field(
        default=20.0, gt=0, le=300, description="Most one delivery attempt may take."
    )
    schedule_morning_brief: str = Field(
        default="daily 07:30",
        description="When the morning brief is sent, studio local time ('daily 07:30').",
    )

    @field_validator("studio_hours")
    @classmethod
    def _studio_hours(cls, value: str) -> str:
        from studio_brain.domain.errors import InputInvalid
        from studio_brain.domain.studio_hours import parse_studio_hours

        try:
            parse_studio_hours(value)
        except InputInvalid as err:
            raise ValueError(err.message) from None
        return value

    @field_validator("notify_routes")
    @classmethod
    def _notify_routes(cls, value: str) -> str:
        from studio_brain.domain.errors import InputInvalid
        from studio_brain.domain.notify import parse_routes

        try:
            parse_routes(value)
        except InputInvalid as err:
            raise ValueError(err.message) from None
        return value

    @field_validator("notify_quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str) -> str:
        from studio_brain.domain.errors import InputInvalid
        from studio_brain.domain.notify import parse_quiet_hours

        try:
            parse_quiet_hours(value)
        except InputInvalid as err:
            raise ValueError(err.message) from None
        return value

    @field_validator("notify_targets")
    @classmethod
    def _blank_targets_are_unset(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return value

    @field_validator(
        "schedule_snapshot",
        "schedule_daily_close",
        "schedule_connector_health",
        "schedule_audit_checkpoint",
        "schedule_execution_recovery",
        "schedule_safety_watch",
        "schedule_morning_brief",
    )
    @classmethod
    def _schedule(cls, value: str) -> str:
        from studio_brain.domain.errors import InputInvalid
        from studio_brain.domain.schedule import parse_schedule

        try:
            parse_schedule(value)
        except InputInvalid as err:
            raise ValueError(str(err)) from None
        return value

    @field_validator("schedule_swarms")
    @classmethod
    def _optional_schedule(cls, value: str) -> str:
        return cls._schedule(value) if value.strip() else ""

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
    def cockpit_url(self) -> str:
        """Where people open the cockpit (links, the passkey origin)."""
        return (self.public_url or f"http://localhost:{self.port}").rstrip("/")

    @property
    def passkey_rp_id(self) -> str:
        return self.webauthn_rp_id or (urlsplit(self.cockpit_url).hostname or "localhost")

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None

    # --- groups: typed frozen views of related fields (settings_groups.py); variable names unchanged ---

    @property
    def swarm_ops(self) -> SwarmOpsSettings:
        return SwarmOpsSettings(
            backlog_min_active=self.swarm_ops_backlog_min_active,
            backlog_ratio=self.swarm_ops_backlog_ratio,
            agent_queue_min=self.swarm_ops_agent_queue_min,
            blocked_tickets_min=self.swarm_ops_blocked_tickets_min,
            cooldown_hours=self.swarm_cooldown_hours,
            z_threshold=self.swarm_ops_z_threshold,
            min_history_days=self.swarm_ops_min_history_days,
            window_days=self.swarm_ops_window_days,
        )

    @property
    def notify(self) -> NotifySettings:
        return NotifySettings(
            routes=self.notify_routes,
            quiet_hours=self.notify_quiet_hours,
            attempts=self.notify_attempts,
            backoff_base_seconds=self.notify_backoff_base_seconds,
            backoff_cap_seconds=self.notify_backoff_cap_seconds,
            timeout_seconds=self.notify_timeout_seconds,
        )

    @property
    def sessions(self) -> SessionSettings:
        return SessionSettings(
            session_minutes=self.session_minutes,
            session_idle_minutes=self.session_idle_minutes,
            login_link_minutes=self.login_link_minutes,
            cli_code_minutes=self.cli_code_minutes,
            invite_minutes=self.invite_minutes,
        )

    @property
    def schedules(self) -> ScheduleSettings:
        return ScheduleSettings(
            snapshot=self.schedule_snapshot,
            daily_close=self.schedule_daily_close,
            connector_health=self.schedule_connector_health,
            audit_checkpoint=self.schedule_audit_checkpoint,
            swarms=self.schedule_swarms,
            safety_watch=self.schedule_safety_watch,
            morning_brief=self.schedule_morning_brief,
            execution_recovery=self.schedule_execution_recovery,
        )

    def redacted(self) -> dict[str, Any]:
        """Every setting as ``{STUDIO_BRAIN_NAME: value}``, secrets shown as ``***``."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name == "database_url" and value is not None:
                value = redact_url(value.get_secret_value())
            elif name == "notify_targets" and value is not None:
                # names and schemes only: the rest of an Apprise URL may be a token (Telegram's host is one)
                value = " ".join(
                    f"{entry.partition('=')[0]}={entry.partition('=')[2].split('://', 1)[0]}://***"
                    for entry in value.get_secret_value().split()
                )
            elif isinstance(value, SecretStr):
                value = "***"
            elif isinstance(value, Path):
                value = str(value)
            shown[ENV_PREFIX + name.upper()] = value
        return shown


def reference_markdown() -> str:
    """docs/configuration.md, generated from the fields' descriptions (``studio-brain config reference``)."""
    return reference_table(Settings.model_fields, ENV_PREFIX)


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
