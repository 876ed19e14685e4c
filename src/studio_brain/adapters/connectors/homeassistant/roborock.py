"""The Roborock connector: the vacuum as Home Assistant sees it, over HA's REST API (Bearer token).

Actions (docs/connectors.md): read ``status.read`` (alias ``devices.read``); writes ``clean.start``
(``vacuum/start``), ``clean.segments`` (``vacuum/send_command app_segment_clean``) and ``dock.return``
(``vacuum/return_to_base``) — only in read_write mode and only for allowlisted (entity, command) pairs.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from pydantic import SecretStr

from studio_brain.adapters.connectors.base import HtmlJson, HttpConnector, HttpPolicy, HttpRequest
from studio_brain.adapters.connectors.breaker import CircuitBreaker
from studio_brain.adapters.connectors.homeassistant import normalise
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
from studio_brain.ports import Clock

_ENTITY = re.compile(r"vacuum\.[a-z0-9_]{1,64}")
READ_PATHS = tuple(
    re.compile(p) for p in (r"api/", r"api/states", r"api/states/[a-z_]{1,32}\.[a-z0-9_]{1,96}")
)
WRITE_PATHS = tuple(
    re.compile(p)
    for p in (
        r"api/services/vacuum/start",
        r"api/services/vacuum/send_command",
        r"api/services/vacuum/return_to_base",
    )
)
#: action -> (device command the allowlist names, HA service)
_WRITE_ACTIONS = {
    "clean.start": ("start", "start"),
    # the capability registry's name for roborock.clean.start; with args.segments it cleans those rooms
    "vacuum.start": ("start", "start"),
    "clean.segments": ("app_segment_clean", "send_command"),
    "dock.return": ("return_to_base", "return_to_base"),
}
READ_ACTIONS = ("status.read", "devices.read")


class RoborockConnector(HttpConnector):
    read_paths = READ_PATHS
    write_paths = WRITE_PATHS
    #: Home Assistant always serves application/json; an HTML page is a proxy or login page: BAD_RESPONSE
    html_json = HtmlJson.REFUSE
    dry_run_support = DryRunSupport.SIMULATED
    version = "ha-rest-1"

    def __init__(
        self,
        *,
        base_url: str,
        token: SecretStr,
        entity_id: str,
        clock: Clock,
        breaker: CircuitBreaker,
        policy: HttpPolicy,
        mode: ConnectorMode = ConnectorMode.READ_ONLY,
        allowlist: WriteAllowlist | None = None,
        stale_after: timedelta = timedelta(minutes=30),
        connector_id: str = "roborock",
    ) -> None:
        if not _ENTITY.fullmatch(entity_id):
            raise InputInvalid(f"Roborock entity must look like vacuum.name, got {entity_id!r}")
        super().__init__(
            connector_id=connector_id,
            target="roborock",
            base_url=base_url,
            mode=mode,
            allowlist=allowlist or WriteAllowlist(),
            clock=clock,
            breaker=breaker,
            policy=policy,
        )
        self._token = token
        self._entity_id = entity_id
        self._stale_after = stale_after

    @property
    def entity_id(self) -> str:
        return self._entity_id

    def _authorise(self, request: HttpRequest) -> tuple[dict[str, str], dict[str, str]]:
        return {}, {"Authorization": f"Bearer {self._token.get_secret_value()}", "Accept": "application/json"}

    def _health_request(self) -> HttpRequest:
        return HttpRequest(method="GET", path="api/")

    def _check_payload(self, payload: Any, request: HttpRequest) -> None:
        if request.path == "api/" and not (
            isinstance(payload, dict) and isinstance(payload.get("message"), str)
        ):
            raise connector_error(ErrorKind.BAD_RESPONSE, f"{self.id}: api/ did not say the API is running")

    async def _read(self, ctx: ConnectorContext, input: dict[str, Any]) -> dict[str, Any]:
        action = str(input.get("action") or "status.read")
        if action not in READ_ACTIONS:
            raise InputInvalid(f"unknown roborock read action {action!r}; known: {', '.join(READ_ACTIONS)}")
        states = await self._get_json(ctx, "api/states")
        device = normalise.vacuum(
            states, entity_id=self._entity_id, now=self._clock.now(), stale_after=self._stale_after
        )
        return {"devices": [device]}

    def _write_request(self, command: ConnectorCommand) -> HttpRequest:
        if command.action not in _WRITE_ACTIONS:
            raise connector_error(
                ErrorKind.NOT_ALLOWED,
                f"{self.id}: {command.action!r} is not a write action of this connector",
            )
        action = command.action
        if action == "vacuum.start" and command.args.get("segments"):
            action = "clean.segments"
        device_command, service = _WRITE_ACTIONS[action]
        entity = command.device_id or self._entity_id
        accepted = {None, device_command, *(("start",) if command.action == "vacuum.start" else ())}
        if command.command not in accepted:
            raise connector_error(
                ErrorKind.NOT_ALLOWED,
                f"{self.id}: {command.action} does not take command {command.command!r}",
            )
        if entity != self._entity_id or not self.allowlist.allows(entity, device_command):
            self._log.warning(
                "connector.write.refused", reason=ErrorKind.NOT_ALLOWED.value, action=command.action
            )
            raise connector_error(
                ErrorKind.NOT_ALLOWED,
                f"{self.id}: ({entity!r}, {device_command!r}) is not on the write allowlist",
            )
        body: dict[str, Any] = {"entity_id": entity}
        if action == "clean.segments":
            segments = command.args.get("segments")
            repeat = command.args.get("repeat", 1)
            if (
                not isinstance(segments, list)
                or not segments
                or not all(
                    isinstance(s, int) and not isinstance(s, bool) and 0 < s < 10_000 for s in segments
                )
            ):
                raise InputInvalid(
                    "clean.segments needs args.segments: a non-empty list of room ids (integers)"
                )
            if not isinstance(repeat, int) or isinstance(repeat, bool) or not 1 <= repeat <= 3:
                raise InputInvalid("clean.segments args.repeat must be 1, 2 or 3")
            body |= {"command": "app_segment_clean", "params": [{"segments": segments, "repeat": repeat}]}
        return HttpRequest(method="POST", path=f"api/services/vacuum/{service}", body=body)

    def _write_result(self, command: ConnectorCommand, payload: Any) -> dict[str, Any]:
        changed = (
            sorted(
                s["entity_id"] for s in payload if isinstance(s, dict) and isinstance(s.get("entity_id"), str)
            )
            if isinstance(payload, list)
            else []
        )
        return {"ok": True, "deviceId": self._entity_id, "changed": changed}
