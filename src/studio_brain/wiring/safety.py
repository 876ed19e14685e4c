"""Wiring of the safety watch, notifications and the morning brief (issue 17), and their two jobs."""

from __future__ import annotations

from studio_brain.adapters.demo_source import DemoCloud
from studio_brain.adapters.rule_files import load_calendar
from studio_brain.services.brief import MorningBriefService
from studio_brain.services.notify import NotificationService
from studio_brain.services.safety import SafetyWatch
from studio_brain.wiring.brain import BrainParts


def wire_safety(brain: BrainParts, demo_cloud: DemoCloud | None) -> None:
    """Issue 17: notifications (Apprise), the safety watch and the morning brief, and their two jobs."""
    from studio_brain.adapters.demo_safety import DemoFiringReader
    from studio_brain.adapters.firestore_firings import FirestoreFiringReader
    from studio_brain.adapters.notify_apprise import AppriseNotifier
    from studio_brain.adapters.postgres.safety_store import PostgresNotificationStore, PostgresSafetyStore
    from studio_brain.adapters.rule_files import load_safety_rules
    from studio_brain.domain.notify import RetryPolicy, parse_quiet_hours, parse_routes
    from studio_brain.domain.safety import parse_studio_hours
    from studio_brain.domain.schedule import parse_schedule
    from studio_brain.services.brief import MORNING_BRIEF_JOB, morning_brief_job
    from studio_brain.services.jobs import JobDefinition
    from studio_brain.services.notify import NotifyPolicy
    from studio_brain.services.safety import SAFETY_WATCH_JOB, DeviceSelection, safety_watch_job

    s = brain.settings

    def _names(text: str) -> tuple[str, ...]:
        return tuple(n.strip() for n in text.split(",") if n.strip())

    notify = s.notify
    brain.notifications = NotificationService(
        tenant_id=s.tenant_id,
        store=PostgresNotificationStore(brain.database),
        notifier=AppriseNotifier.from_text(s.notify_targets, timeout_seconds=notify.timeout_seconds),
        policy=NotifyPolicy(
            routes=parse_routes(notify.routes),
            quiet=parse_quiet_hours(notify.quiet_hours),
            retry=RetryPolicy(
                attempts=notify.attempts,
                base_seconds=notify.backoff_base_seconds,
                cap_seconds=notify.backoff_cap_seconds,
            ),
        ),
        clock=brain.clock,
        ids=brain.ids,
        zone=s.zone,
        events=brain.events,
        lease_seconds=max(120.0, 3 * notify.timeout_seconds),
    )
    firings: DemoFiringReader | FirestoreFiringReader = (
        DemoFiringReader(demo_cloud, now=brain.clock.now)
        if s.state_source == "demo" and demo_cloud is not None
        else FirestoreFiringReader(project_id=s.firestore_project_id)
    )
    if brain.connector_health is None:  # pragma: no cover - open_brain wires connectors first
        return
    brain.safety = SafetyWatch(
        tenant_id=s.tenant_id,
        table=load_safety_rules(s.safety_rules_file),
        store=PostgresSafetyStore(brain.database),
        devices=brain.connector_health,
        firings=firings,
        selection=DeviceSelection(
            kiln_outlet=s.safety_kiln_outlet.strip(),
            doors=_names(s.safety_door_devices),
            watched=_names(s.safety_watched_devices),
            kiln_id=s.safety_kiln_id.strip() or None,
        ),
        hours=parse_studio_hours(s.studio_hours),
        calendar=load_calendar(s.calendar_file),
        notifications=brain.notifications,
        drafts=brain.drafts,
        clock=brain.clock,
        ids=brain.ids,
        zone=s.zone,
        cockpit_url=s.cockpit_url,
        events=brain.events,
    )
    brain.brief = MorningBriefService(
        tenant_id=s.tenant_id,
        state_store=brain.state_store,
        watch=brain.safety,
        notifications=brain.notifications,
        proposals=brain.gateway,
        jobs=brain.jobs,
        connectors=brain.connector_health,
        clock=brain.clock,
        zone=s.zone,
        cockpit_url=s.cockpit_url,
        calendar=brain.safety.calendar,
    )
    if brain.jobs is None or not s.safety_enabled:
        return
    brain.jobs.register(
        JobDefinition(
            name=SAFETY_WATCH_JOB,
            description="Read the safety devices and kiln firings; open findings, drafts and alerts",
            action=safety_watch_job(brain.safety),
            schedule=parse_schedule(s.schedules.safety_watch),
        )
    )
    brief_schedule = parse_schedule(s.schedules.morning_brief)
    brain.jobs.register(
        JobDefinition(
            name=MORNING_BRIEF_JOB,
            description="Send the morning brief to the notification targets",
            action=morning_brief_job(brain.brief, brief_schedule, s.zone),
            schedule=brief_schedule,
        )
    )
