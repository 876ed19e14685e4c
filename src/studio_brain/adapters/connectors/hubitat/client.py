"""The Hubitat connector: a thin async Maker API client behind the shared HTTP machinery.

Actions (docs/connectors.md): reads ``devices.read`` (all, or one with ``deviceId``), ``events.read``,
``modes.read``, ``hsm.read``; writes ``switch.set`` (on/off), ``lock.set`` (lock/unlock) and
``device.command`` — each only in read_write mode and only for allowlisted (device, command) pairs.
Every Maker API call is a GET, commands included, so read-only is enforced by full-match path regexes.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from pydantic import SecretStr

from studio_brain.adapters.connectors.base import HtmlJson, HttpConnector, HttpPolicy, HttpRequest
from studio_brain.adapters.connectors.breaker import CircuitBreaker
from studio_brain.adapters.connectors.hubitat import normalise
from studio_brain.domain.connectors import (
    ConnectorCommand,
    ConnectorContext,
    ConnectorMode,
    DryRunSupport,
    ErrorKind,
    WriteAllowlist,
    connector_error,
)
from studio_brain.domain.errors import InputInvalid
from studio_brain.domain.outcomes import Observed
from studio_brain.ports import Clock

_ID = r"\d{1,10}"
READ_PATHS = tuple(
    re.compile(p)
    for p in (
        r"devices",
        r"devices/all",
        rf"devices/{_ID}",
        rf"devices/{_ID}/events",
        rf"devices/{_ID}/capabilities",
        rf"devices/{_ID}/attribute/[A-Za-z][A-Za-z0-9]{{0,63}}",
        r"modes",
        r"hsm",
    )
)
#: device commands only (never modes/{id}, hsm/{state}, hubvariables or postURL, which change the hub)
WRITE_PATHS = (
    re.compile(
        rf"devices/{_ID}/(?!events$|capabilities$|attribute$)[A-Za-z][A-Za-z0-9]{{0,63}}(/[A-Za-z0-9._-]{{1,64}})?"
    ),
)
_COMMAND = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")
_SECONDARY = re.compile(r"[A-Za-z0-9._-]{1,64}")
_WRITE_ACTIONS: dict[str, frozenset[str] | None] = {
    "switch.set": frozenset({"on", "off"}),
    "lock.set": frozenset({"lock", "unlock"}),
    "device.command": None,  # any command, still only allowlisted pairs
}
READ_ACTIONS = ("devices.read", "events.read", "modes.read", "hsm.read")
#: issue 13: the attribute value a write leaves in place, read back to settle an unknown outcome
_READ_BACK: dict[tuple[str, str], tuple[str, str]] = {
    ("switch.set", "on"): ("switch", "on"),
    ("switch.set", "off"): ("switch", "off"),
    ("lock.set", "lock"): ("lock", "locked"),
    ("lock.set", "unlock"): ("lock", "unlocked"),
}


class HubitatConnector(HttpConnector):
    read_paths = READ_PATHS
    write_paths = WRITE_PATHS
    #: Hubitat serves real JSON as text/html on some firmware: parse it (malformed JSON is still refused)
    html_json = HtmlJson.PARSE
    #: the Maker API has no dry run; a dry run validates and reports the request without sending it
    dry_run_support = DryRunSupport.SIMULATED
    version = "maker-api-1"

    def __init__(
        self,
        *,
        hub_url: str,
        app_id: str,
        token: SecretStr,
        clock: Clock,
        breaker: CircuitBreaker,
        policy: HttpPolicy,
        mode: ConnectorMode = ConnectorMode.READ_ONLY,
        allowlist: WriteAllowlist | None = None,
        stale_after: timedelta = timedelta(hours=24),
        connector_id: str = "hubitat",
    ) -> None:
        if not re.fullmatch(r"\d{1,10}", app_id):
            raise InputInvalid(f"Hubitat app id must be digits, got {app_id!r}")
        super().__init__(
            connector_id=connector_id,
            target="hubitat",
            base_url=f"{hub_url.rstrip('/')}/apps/api/{app_id}",
            mode=mode,
            allowlist=allowlist or WriteAllowlist(),
            clock=clock,
            breaker=breaker,
            policy=policy,
        )
        self._token = token
        self._stale_after = stale_after

    def _authorise(self, request: HttpRequest) -> tuple[dict[str, str], dict[str, str]]:
        return {"access_token": self._token.get_secret_value()}, {"Accept": "application/json"}

    def _health_request(self) -> HttpRequest:
        return HttpRequest(method="GET", path="devices")

    def _check_payload(self, payload: Any, request: HttpRequest) -> None:
        # the Maker API answers some failures with 200 {"error": true, "type": ..., "message": ...}
        if isinstance(payload, dict) and payload.get("error") is True:
            kind = str(payload.get("type") or "error")[:64]
            raise connector_error(
                ErrorKind.BAD_RESPONSE, f"{self.id}: {request.path} answered an error ({kind})"
            )

    async def _read(self, ctx: ConnectorContext, input: dict[str, Any]) -> dict[str, Any]:
        action = str(input.get("action") or "devices.read")
        device_id = input.get("deviceId")
        now = self._clock.now()
        if action == "devices.read":
            if device_id is None:
                raw = await self._get_json(ctx, "devices/all")
                return {"devices": normalise.devices(raw, now=now, stale_after=self._stale_after)}
            raw = await self._get_json(ctx, f"devices/{device_id}")
            return {"device": normalise.device(raw, now=now, stale_after=self._stale_after)}
        if action == "events.read":
            if device_id is None:
                raise InputInvalid("events.read needs a deviceId")
            return {
                "deviceId": str(device_id),
                "events": normalise.events(await self._get_json(ctx, f"devices/{device_id}/events")),
            }
        if action == "modes.read":
            return normalise.modes(await self._get_json(ctx, "modes"))
        if action == "hsm.read":
            return normalise.hsm(await self._get_json(ctx, "hsm"))
        raise InputInvalid(f"unknown hubitat read action {action!r}; known: {', '.join(READ_ACTIONS)}")

    async def verify_outcome(self, ctx: ConnectorContext, command: ConnectorCommand) -> Observed | None:
        """Read back whether ``command``'s effect is in place (a read; nothing is sent again). None when
        this command's effect cannot be read (then the outcome stays unknown for a person)."""
        effect = _READ_BACK.get((command.action, command.command or ""))
        if effect is None or not command.device_id or not re.fullmatch(_ID, command.device_id):
            return None
        attribute, expected = effect
        raw = await self._get_json(ctx, f"devices/{command.device_id}")
        device = normalise.device(raw, now=self._clock.now(), stale_after=self._stale_after)
        current = device["attributes"].get(attribute)
        if current is None:
            return None
        return Observed(
            done=str(current) == expected,
            data={"deviceId": command.device_id, "attribute": attribute, "value": current},
        )

    def _write_request(self, command: ConnectorCommand) -> HttpRequest:
        if command.action not in _WRITE_ACTIONS:
            raise connector_error(
                ErrorKind.NOT_ALLOWED,
                f"{self.id}: {command.action!r} is not a write action of this connector",
            )
        device_id, name = command.device_id or "", command.command or ""
        allowed_commands = _WRITE_ACTIONS[command.action]
        if allowed_commands is not None and name not in allowed_commands:
            raise connector_error(
                ErrorKind.NOT_ALLOWED, f"{self.id}: {command.action} does not take command {name!r}"
            )
        if not self.allowlist.allows(device_id, name):
            self._log.warning(
                "connector.write.refused", reason=ErrorKind.NOT_ALLOWED.value, action=command.action
            )
            raise connector_error(
                ErrorKind.NOT_ALLOWED, f"{self.id}: ({device_id!r}, {name!r}) is not on the write allowlist"
            )
        if not re.fullmatch(_ID, device_id) or not _COMMAND.fullmatch(name):
            raise connector_error(ErrorKind.NOT_ALLOWED, f"{self.id}: malformed device id or command")
        path = f"devices/{device_id}/{name}"
        secondary = command.args.get("value")
        if secondary is not None:
            text = str(secondary)
            if not _SECONDARY.fullmatch(text):
                raise InputInvalid(f"{self.id}: command value {text!r} is not a plain token")
            path = f"{path}/{text}"
        return HttpRequest(method="GET", path=path)

    def _write_result(self, command: ConnectorCommand, payload: Any) -> dict[str, Any]:
        result: dict[str, Any] = {"ok": True, "deviceId": command.device_id, "command": command.command}
        if isinstance(payload, dict) and payload.get("id") is not None:
            result["device"] = normalise.device(payload, now=self._clock.now(), stale_after=self._stale_after)
        return result
