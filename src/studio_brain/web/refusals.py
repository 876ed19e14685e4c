"""Audit of refused HTTP requests, aggregated per caller and window so refusals cannot flood the log.

A verified caller's refused request (no role or scope, a secret or a NUL in the input, ...) is evidence
the audit log must keep — but one row per request let any holder of a claim-less Firebase token write
rows as fast as it could send requests. So per (caller, reason code) and window:

the first refusal of a window is written at once (``http.request.refused``, ``count`` 1) and the rest as
one aggregated row when the window closes (``services/refusal_windows.py``; sample paths in
``samplePaths``).

Every text that goes into a row is :func:`~studio_brain.domain.text.sanitise`-d (NULs escaped, secrets
redacted), so a refusal *about* a NUL or a key is itself storable. Anonymous refusals are logged only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from studio_brain.domain.audit import ApprovalState, AuditDraft
from studio_brain.domain.errors import StudioBrainError
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.identity import Principal
from studio_brain.domain.reasons import ReasonCode
from studio_brain.domain.text import sanitise
from studio_brain.logging import get_logger
from studio_brain.ports.audit import EventStore
from studio_brain.ports.clock import Clock
from studio_brain.services.refusal_windows import RefusalWindows

log = get_logger(__name__)

ACTION = "http.request.refused"


@dataclass(kw_only=True)
class RefusalRecorder:
    """One per app. ``window`` is the aggregation window; ``events`` may be None (nothing is audited)."""

    events: EventStore | None
    clock: Clock
    window: timedelta = timedelta(minutes=1)
    _windows: RefusalWindows = field(init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self._windows = RefusalWindows(self.clock, self.window, samples_key="samplePaths")

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
        attempt: dict[str, Any] = {"method": sanitise(method, limit=16), "path": sanitise(path, limit=300)}
        draft = AuditDraft(
            tenant_id=principal.tenant_id,
            actor_type=principal.actor_type,
            actor_id=principal.actor_id,
            action=ACTION,
            target="http",
            rationale=sanitise(message),
            approval_state=ApprovalState.NOT_APPLICABLE,
            input_hash=sha256_hex(attempt),
            request_id=request_id,
            correlation_id=request_id,
            metadata={
                **dict(metadata or {}),
                **attempt,
                "reasonCode": reason_code.value,
                "via": principal.via.value,
            },
        )
        key = (principal.tenant_id, principal.actor_type.value, principal.actor_id, reason_code)
        async with self._lock:
            first, due = self._windows.admit(key, draft, sample=path)
        for row in [*due, *([first] if first is not None else [])]:
            await self._write(row)

    async def flush(self) -> None:
        """Write every open window's uncounted refusals now (at shutdown, and in tests)."""
        async with self._lock:
            due = self._windows.drain()
        for row in due:
            await self._write(row)

    async def _write(self, draft: AuditDraft) -> None:
        if self.events is None:
            return
        try:
            await self.events.append(draft)
        except StudioBrainError as err:  # the refusal stands even if the log cannot take it
            log.warning(
                "http.refusal.not_audited", error=err.message, reason_code=draft.metadata.get("reasonCode")
            )


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
