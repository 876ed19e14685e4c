"""Builds the connector registry from settings: a real connector where configured, otherwise a
stand-in that reports ``not_configured`` and names the settings to fill in."""

from __future__ import annotations

from datetime import timedelta

from studio_brain.adapters.attestation_keys import AttestationSigner
from studio_brain.adapters.connectors.base import HttpPolicy
from studio_brain.adapters.connectors.breaker import CircuitBreaker
from studio_brain.adapters.connectors.functions import CloudDocuments, FirestoreDocuments, FunctionsConnector
from studio_brain.adapters.connectors.homeassistant import RoborockConnector
from studio_brain.adapters.connectors.hubitat import HubitatConnector
from studio_brain.adapters.firebase_id_token import IdTokenSource
from studio_brain.domain.connectors import ConnectorMode, WriteAllowlist
from studio_brain.domain.errors import ConfigError, InputInvalid
from studio_brain.ports import Clock, Connector
from studio_brain.services.connectors import ConnectorRegistry, UnconfiguredConnector
from studio_brain.settings import Settings


def http_policy(settings: Settings, *, ca_file: str | None = None) -> HttpPolicy:
    return HttpPolicy(
        attempt_timeout_seconds=settings.connector_attempt_timeout_seconds,
        read_attempts=settings.connector_read_attempts,
        degraded_after_ms=settings.connector_degraded_after_ms,
        ca_file=ca_file,
    )


def _breaker(settings: Settings, name: str, clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(
        name=name,
        clock=clock,
        failure_threshold=settings.connector_breaker_failures,
        window_seconds=settings.connector_breaker_window_seconds,
        max_window_seconds=settings.connector_breaker_max_window_seconds,
    )


def _allowlist(raw: str, variable: str) -> WriteAllowlist:
    try:
        return WriteAllowlist.parse(raw.split(","))
    except InputInvalid as err:
        raise ConfigError(f"{variable}: {err.message}") from err


def hubitat_from_settings(settings: Settings, clock: Clock) -> Connector:
    if not (settings.hubitat_url and settings.hubitat_app_id and settings.hubitat_token):
        return UnconfiguredConnector(
            connector_id="hubitat",
            target="hubitat",
            hint="set STUDIO_BRAIN_HUBITAT_URL, STUDIO_BRAIN_HUBITAT_APP_ID and STUDIO_BRAIN_HUBITAT_TOKEN",
            clock=clock,
        )
    return HubitatConnector(
        hub_url=settings.hubitat_url,
        app_id=settings.hubitat_app_id,
        token=settings.hubitat_token,
        clock=clock,
        breaker=_breaker(settings, "hubitat", clock),
        policy=http_policy(
            settings, ca_file=str(settings.hubitat_ca_file) if settings.hubitat_ca_file else None
        ),
        mode=ConnectorMode(settings.hubitat_mode),
        allowlist=_allowlist(settings.hubitat_write_allowlist, "STUDIO_BRAIN_HUBITAT_WRITE_ALLOWLIST"),
        stale_after=timedelta(minutes=settings.hubitat_stale_after_minutes),
    )


def roborock_from_settings(settings: Settings, clock: Clock) -> Connector:
    if not (settings.roborock_ha_url and settings.roborock_ha_token):
        return UnconfiguredConnector(
            connector_id="roborock",
            target="roborock",
            hint="set STUDIO_BRAIN_ROBOROCK_HA_URL and STUDIO_BRAIN_ROBOROCK_HA_TOKEN",
            clock=clock,
        )
    return RoborockConnector(
        base_url=settings.roborock_ha_url,
        token=settings.roborock_ha_token,
        entity_id=settings.roborock_entity_id,
        clock=clock,
        breaker=_breaker(settings, "roborock", clock),
        policy=http_policy(settings),
        mode=ConnectorMode(settings.roborock_mode),
        allowlist=_allowlist(settings.roborock_write_allowlist, "STUDIO_BRAIN_ROBOROCK_WRITE_ALLOWLIST"),
        stale_after=timedelta(minutes=settings.roborock_stale_after_minutes),
    )


def functions_from_settings(
    settings: Settings, clock: Clock, *, documents: CloudDocuments | None = None
) -> Connector:
    """The studio's Functions write connector (target ``firestore``): needs the Functions base URL and the
    refresh token of the brain's own Firebase staff user; reads batches and action docs from Firestore
    (``documents`` replaces that reader: the demo's cloud)."""
    if not (settings.functions_base_url and settings.functions_refresh_token):
        return UnconfiguredConnector(
            connector_id="functions",
            target="firestore",
            hint="set STUDIO_BRAIN_FUNCTIONS_BASE_URL and STUDIO_BRAIN_FUNCTIONS_REFRESH_TOKEN",
            clock=clock,
        )
    return FunctionsConnector(
        base_url=settings.functions_base_url,
        tokens=IdTokenSource(
            refresh_token=settings.functions_refresh_token,
            api_key=settings.functions_api_key,
            token_url=settings.functions_token_url,
            timeout_seconds=settings.functions_timeout_seconds,
            clock=clock,
        ),
        documents=documents
        or FirestoreDocuments(
            project_id=settings.firestore_project_id,
            deadline_seconds=settings.functions_write_timeout_seconds,
        ),
        attester=AttestationSigner(settings.attestation_key_path),
        clock=clock,
        breaker=_breaker(settings, "functions", clock),
        policy=HttpPolicy(
            attempt_timeout_seconds=settings.functions_write_timeout_seconds,
            read_attempts=settings.connector_read_attempts,
            degraded_after_ms=settings.connector_degraded_after_ms,
        ),
        mode=ConnectorMode(settings.functions_mode),
        allowlist=_allowlist(settings.functions_write_allowlist, "STUDIO_BRAIN_FUNCTIONS_WRITE_ALLOWLIST"),
        jwks_url=f"{settings.public_base_url}/.well-known/jwks.json" if settings.public_base_url else None,
    )


def build_connectors(
    settings: Settings, *, clock: Clock, documents: CloudDocuments | None = None
) -> ConnectorRegistry:
    """Every connector Studio Brain knows, configured or not (the cockpit lists them all)."""
    return ConnectorRegistry(
        [
            hubitat_from_settings(settings, clock),
            roborock_from_settings(settings, clock),
            functions_from_settings(settings, clock, documents=documents),
        ]
    )
