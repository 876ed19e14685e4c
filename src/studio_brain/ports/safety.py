"""Ports of the safety watch and notifications: where findings and the outbox live, where firings come
from, and what actually delivers a message."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from studio_brain.domain.notify import Notification
from studio_brain.domain.safety import FindingRecord, Firing


class FiringReader(Protocol):
    """The studio's kiln firings that matter now (every status but completed/cancelled).
    Raises ``CloudReadError`` when the cloud cannot be read."""

    async def current_firings(self) -> Sequence[Firing]: ...


class SafetyStore(Protocol):
    async def onsets(self, tenant_id: str) -> dict[str, datetime]: ...

    async def save_onsets(self, tenant_id: str, onsets: Mapping[str, datetime], now: datetime) -> None:
        """Replace the tracked conditions with ``onsets`` (conditions absent from it are forgotten)."""
        ...

    async def latest_for(self, tenant_id: str, dedupe_key: str) -> FindingRecord | None:
        """The newest finding with this dedupe key (open or resolved)."""
        ...

    async def add(self, record: FindingRecord) -> None: ...

    async def touch(self, tenant_id: str, finding_id: str, seen_at: datetime) -> None: ...

    async def link(
        self, tenant_id: str, finding_id: str, *, draft_id: str | None, proposal_id: str | None
    ) -> None: ...

    async def resolve_absent(
        self, tenant_id: str, holding: Sequence[str], now: datetime
    ) -> list[FindingRecord]:
        """Resolve every open finding whose dedupe key is not in ``holding``; returns them."""
        ...

    async def list(
        self, tenant_id: str, *, status: str | None = None, limit: int = 50
    ) -> list[FindingRecord]:
        """Newest first."""
        ...


class NotificationStore(Protocol):
    async def enqueue(self, notification: Notification) -> bool:
        """Insert unless one with the same dedupe key exists; True when inserted."""
        ...

    async def due(
        self, tenant_id: str, now: datetime, *, lease_until: datetime, limit: int = 50
    ) -> list[Notification]:
        """Claim the pending notifications whose next attempt time has come (oldest first): their next
        attempt moves to ``lease_until``, so a concurrent deliverer skips them and a crash mid-send only
        delays them."""
        ...

    async def record_attempt(
        self,
        notification: Notification,
        *,
        status: str,
        attempts: int,
        next_attempt_at: datetime | None,
        error: str | None,
        at: datetime,
    ) -> None: ...

    async def list(self, tenant_id: str, *, limit: int = 50) -> list[Notification]:
        """Newest first."""
        ...


class Notifier(Protocol):
    """Delivers one message to one named target. Raises a ``StudioBrainError`` whose message holds no secret
    when the target refused the message or could not be reached."""

    def targets(self) -> Sequence[str]:
        """The configured target names."""
        ...

    def display(self, target: str) -> str:
        """The target's URL with its secret parts masked."""
        ...

    async def send(self, target: str, *, title: str, body: str) -> None: ...
