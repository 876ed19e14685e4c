"""Audit of refused HTTP requests, aggregated per caller and window so refusals cannot flood the log.

A verified caller's refused request (no role or scope, a secret or a NUL in the input, ...) is evidence
the audit log must keep — but one row per request let any holder of a claim-less Firebase token write
rows as fast as it could send requests. So per (caller, reason code) and window:

* the **first** refusal of a window is written at once (``http.request.refused``, ``count`` 1): a lone
  refusal is never delayed;
* the **rest** of that window are counted in memory and written as **one** row (``aggregated``: true,
  ``count``, the window's bounds and a few sample paths) when the window closes — at the caller's next
  refusal after it, at any later refusal of anyone (expired windows are flushed first), or at shutdown.

Every text that goes into a row is :func:`~studio_brain.domain.text.sanitise`-d (NULs escaped, secrets
redacted), so a refusal *about* a NUL or a key is itself storable. Anonymous refusals are logged only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft
from studio_brain.domain.errors import StudioBrainError
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.identity import Principal
from studio_brain.domain.reasons import ReasonCode
from studio_brain.domain.text import sanitise
from studio_brain.logging import get_logger
from studio_brain.ports.audit import EventStore
from studio_brain.ports.clock import Clock

log = get_logger(__name__)

ACTION = "http.request.refused"
#: how many sample paths an aggregated row keeps
SAMPLE_PATHS = 5


@dataclass(kw_only=True)
class _Window:
    started_at: datetime
    tenant_id: str
    actor_type: ActorType
    actor_id: str
    via: str
    reason_code: ReasonCode
    message: str
    request_id: str
    #: refusals after the first (already written) one
    more: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class RefusalRecorder:
    """One per app. ``window`` is the aggregation window; ``events`` may be None (nothing is audited)."""

    events: EventStore | None
    clock: Clock
    window: timedelta = timedelta(minutes=1)
    _open: dict[tuple[str, str, str, ReasonCode], _Window] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def record(
        self,
        principal: Principal,
        *,
        reason_code: ReasonCode,
        message: str,
        method: str,
        path: str,
        request_id: str,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Count one refusal of a verified caller; write what the windows say is due."""
        now = self.clock.now()
        key = (principal.tenant_id, principal.actor_type.value, principal.actor_id, reason_code)
        due: list[tuple[_Window, bool]] = []
        async with self._lock:
            for other_key, open_window in list(self._open.items()):
                if now - open_window.started_at >= self.window:
                    del self._open[other_key]
                    if open_window.more:
                        due.append((open_window, True))
            current = self._open.get(key)
            if current is None:
                current = _Window(
                    started_at=now,
                    tenant_id=principal.tenant_id,
                    actor_type=principal.actor_type,
                    actor_id=principal.actor_id,
                    via=principal.via.value,
                    reason_code=reason_code,
                    message=message,
                    request_id=request_id,
                    paths=[sanitise(path, limit=300)],
                    extra=dict(metadata or {}),
                )
                self._open[key] = current
                due.append((current, False))
            else:
                current.more += 1
                if len(current.paths) < SAMPLE_PATHS:
                    current.paths.append(sanitise(path, limit=300))
        for window, aggregated in due:
            await self._write(window, method=method, aggregated=aggregated, until=now)

    async def flush(self) -> None:
        """Write every open window's uncounted refusals now (at shutdown, and in tests)."""
        now = self.clock.now()
        async with self._lock:
            pending = [w for w in self._open.values() if w.more]
            self._open.clear()
        for window in pending:
            await self._write(window, method="*", aggregated=True, until=now)

    async def _write(self, window: _Window, *, method: str, aggregated: bool, until: datetime) -> None:
        if self.events is None:
            return
        attempt: dict[str, Any] = {"method": sanitise(method, limit=16), "path": window.paths[0]}
        metadata: dict[str, Any] = {
            **window.extra,
            **attempt,
            "reasonCode": window.reason_code.value,
            "via": window.via,
            "count": window.more if aggregated else 1,
            "windowStart": window.started_at.isoformat(),
        }
        if aggregated:
            metadata.update(aggregated=True, windowEnd=until.isoformat(), samplePaths=window.paths)
        try:
            await self.events.append(
                AuditDraft(
                    tenant_id=window.tenant_id,
                    actor_type=window.actor_type,
                    actor_id=window.actor_id,
                    action=ACTION,
                    target="http",
                    rationale=sanitise(
                        f"{window.message} (and {window.more} more like it in this window)"
                        if aggregated
                        else window.message
                    ),
                    approval_state=ApprovalState.NOT_APPLICABLE,
                    input_hash=sha256_hex(attempt),
                    request_id=window.request_id,
                    correlation_id=window.request_id,
                    metadata=metadata,
                )
            )
        except StudioBrainError as err:  # the refusal stands even if the log cannot take it
            log.warning("http.refusal.not_audited", error=err.message, reason_code=window.reason_code)


def refusals_for(app: Any) -> RefusalRecorder:
    """The app's recorder (made on first use from its Brain's audit log and clock)."""
    recorder = getattr(app.state, "refusals", None)
    if isinstance(recorder, RefusalRecorder):
        return recorder
    brain = getattr(app.state, "brain", None)
    recorder = RefusalRecorder(events=getattr(brain, "events", None), clock=_clock_of(brain))
    app.state.refusals = recorder
    return recorder


def _clock_of(brain: Any) -> Clock:
    clock = getattr(brain, "clock", None)
    if clock is None:
        from studio_brain.adapters.clock import SystemClock

        return SystemClock()
    found: Clock = clock
    return found
