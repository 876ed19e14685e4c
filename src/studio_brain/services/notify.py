"""Notifications: route each alert (by severity) and the morning brief to targets, hold non-high alerts
through quiet hours, deliver with retries and back-off, and audit every sent and failed attempt.

Messages go through an outbox (the NotificationStore): enqueueing is idempotent per (finding or brief
day, target), so a finding alerts each target exactly once however often the watch sees it; delivery is
a separate step (:meth:`NotificationService.deliver_due`) run by the watch every minute. Audit rows name
the target and its masked URL, never the URL itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta, tzinfo
from typing import Any

from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft
from studio_brain.domain.drafts import Severity
from studio_brain.domain.errors import ConfigError, StudioBrainError
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.notify import (
    DeliveryStatus,
    Notification,
    NotificationKind,
    QuietHours,
    RetryPolicy,
    Routes,
    not_before,
)
from studio_brain.logging import get_logger, redact_text
from studio_brain.ports import Clock, EventStore, IdFactory
from studio_brain.ports.safety import NotificationStore, Notifier

log = get_logger(__name__)

NOTIFY_ACTOR = "notify"


@dataclass(frozen=True, kw_only=True, slots=True)
class NotifyPolicy:
    routes: Routes
    quiet: QuietHours | None
    retry: RetryPolicy


class NotificationService:
    def __init__(
        self,
        *,
        tenant_id: str,
        store: NotificationStore,
        notifier: Notifier,
        policy: NotifyPolicy,
        clock: Clock,
        ids: IdFactory,
        zone: tzinfo,
        events: EventStore | None = None,
        lease_seconds: float = 120.0,
    ) -> None:
        self._lease_seconds = lease_seconds
        unknown = policy.routes.unknown_targets(list(notifier.targets()))
        if unknown:
            raise ConfigError(
                f"STUDIO_BRAIN_NOTIFY_ROUTES names target(s) {', '.join(unknown)} that "
                "STUDIO_BRAIN_NOTIFY_TARGETS does not define"
            )
        self._tenant = tenant_id
        self._store = store
        self._notifier = notifier
        self._policy = policy
        self._clock = clock
        self._ids = ids
        self._zone = zone
        self._events = events

    @property
    def policy(self) -> NotifyPolicy:
        return self._policy

    def use_notifier(self, notifier: Notifier) -> None:
        """Swap the delivery adapter (the demo points it at its loopback inbox)."""
        self._notifier = notifier

    def targets(self) -> list[dict[str, Any]]:
        """Every configured target with its masked URL and the route keys that reach it (for the cockpit)."""
        names = list(self._notifier.targets())
        keys = ("high", "medium", "low", "info", "brief")
        return [
            {
                "name": name,
                "display": self._notifier.display(name),
                "routes": [k for k in keys if name in self._policy.routes.targets_for(k, names)],
            }
            for name in names
        ]

    async def enqueue(
        self,
        *,
        kind: NotificationKind,
        severity: Severity,
        dedupe: str,
        title: str,
        body: str,
        finding_id: str | None = None,
    ) -> int:
        """Queue one message per routed target; returns how many were new (0 when already queued)."""
        now = self._clock.now()
        route_key = NotificationKind.BRIEF.value if kind is NotificationKind.BRIEF else severity.value
        targets = self._policy.routes.targets_for(route_key, list(self._notifier.targets()))
        first = not_before(severity=severity, kind=kind, now=now, quiet=self._policy.quiet, zone=self._zone)
        queued = 0
        for target in targets:
            notification = Notification(
                id=self._ids.new_id(),
                tenant_id=self._tenant,
                dedupe_key=f"{dedupe}:{target}",
                kind=kind,
                severity=severity,
                target=target,
                target_display=self._notifier.display(target),
                title=title[:200],
                body=body[:8000],
                finding_id=finding_id,
                status=DeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=first,
                last_error=None,
                created_at=now,
            )
            if await self._store.enqueue(notification):
                queued += 1
                log.info(
                    "notification.queued",
                    notification_id=notification.id,
                    target=target,
                    kind=kind.value,
                    severity=severity.value,
                    held=first > now,
                )
        if not targets:
            log.info("notification.unrouted", kind=kind.value, severity=severity.value)
        return queued

    async def enqueue_alert(self, *, finding_id: str, severity: Severity, title: str, body: str) -> int:
        return await self.enqueue(
            kind=NotificationKind.ALERT,
            severity=severity,
            dedupe=f"alert:{finding_id}",
            title=title,
            body=body,
            finding_id=finding_id,
        )

    async def enqueue_brief(self, *, day: date, title: str, body: str) -> int:
        return await self.enqueue(
            kind=NotificationKind.BRIEF,
            severity=Severity.INFO,
            dedupe=f"brief:{day.isoformat()}",
            title=title,
            body=body,
        )

    async def deliver_due(self) -> dict[str, int]:
        """Try every pending notification whose time has come, once; returns counts by outcome."""
        counts = {"sent": 0, "retrying": 0, "failed": 0}
        now = self._clock.now()
        # the lease outlasts one attempt (the adapter's timeout) with room to record the outcome
        lease = now + timedelta(seconds=self._lease_seconds)
        for n in await self._store.due(self._tenant, now, lease_until=lease):
            outcome = await self._attempt(n)
            counts[outcome] += 1
        return counts

    async def _attempt(self, n: Notification) -> str:
        attempts = n.attempts + 1
        try:
            await self._notifier.send(n.target, title=n.title, body=n.body)
        except StudioBrainError as err:
            error = redact_text(err.message)[:500]
            now = self._clock.now()
            retry_at = self._policy.retry.next_attempt(attempts, now)
            status = DeliveryStatus.PENDING if retry_at is not None else DeliveryStatus.FAILED
            await self._store.record_attempt(
                n, status=status.value, attempts=attempts, next_attempt_at=retry_at, error=error, at=now
            )
            await self._audit(n, "notification.failed", attempts, error=error, final=retry_at is None)
            log.warning(
                "notification.failed",
                notification_id=n.id,
                target=n.target,
                attempts=attempts,
                retry_at=None if retry_at is None else retry_at.isoformat(),
                error=error,
            )
            return "retrying" if retry_at is not None else "failed"
        now = self._clock.now()
        await self._store.record_attempt(
            n, status=DeliveryStatus.SENT.value, attempts=attempts, next_attempt_at=None, error=None, at=now
        )
        await self._audit(n, "notification.sent", attempts)
        log.info("notification.sent", notification_id=n.id, target=n.target, attempts=attempts)
        return "sent"

    async def _audit(
        self, n: Notification, action: str, attempts: int, *, error: str | None = None, final: bool = True
    ) -> None:
        if self._events is None:
            return
        metadata: dict[str, Any] = {
            "notificationId": n.id,
            "kind": n.kind.value,
            "severity": n.severity.value,
            "target": n.target,
            "targetUrl": n.target_display,
            "attempts": attempts,
            "findingId": n.finding_id,
        }
        if error is not None:
            metadata |= {"error": error, "final": final}
        await self._events.append(
            AuditDraft(
                tenant_id=self._tenant,
                actor_type=ActorType.SYSTEM,
                actor_id=NOTIFY_ACTOR,
                action=action,
                target="notify",
                rationale=f"{n.kind.value} to {n.target}: {n.title}"[:500],
                approval_state=ApprovalState.NOT_APPLICABLE,
                input_hash=sha256_hex({"title": n.title, "body": n.body, "target": n.target}),
                output_hash=sha256_hex({"status": action, "attempts": attempts, "error": error}),
                request_id=n.id,
                correlation_id=n.finding_id or n.id,
                metadata=metadata,
            )
        )

    async def recent(self, *, limit: int = 50) -> list[Notification]:
        return await self._store.list(self._tenant, limit=limit)
