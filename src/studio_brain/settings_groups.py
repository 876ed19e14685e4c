"""Typed, frozen views of related settings (``settings.swarm_ops``, ``settings.notify``, …).

The settings stay flat where they are read — one ``STUDIO_BRAIN_*`` variable per field of
:class:`~studio_brain.settings.Settings`, names unchanged — and a group is a small value built from them, so
the composition root hands a service one object instead of unpacking a dozen fields one by one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class SwarmOpsSettings:
    """``STUDIO_BRAIN_SWARM_OPS_*`` and ``SWARM_COOLDOWN_HOURS``: the ops swarm's rules and its detector."""

    backlog_min_active: int
    backlog_ratio: float
    agent_queue_min: int
    blocked_tickets_min: int
    cooldown_hours: float
    z_threshold: float
    min_history_days: int
    window_days: int


@dataclass(frozen=True, kw_only=True, slots=True)
class NotifySettings:
    """``STUDIO_BRAIN_NOTIFY_*`` except the targets (a secret, handed to the notifier on its own)."""

    routes: str
    quiet_hours: str
    attempts: int
    backoff_base_seconds: float
    backoff_cap_seconds: float
    timeout_seconds: float


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionSettings:
    """How long sessions, login links, CLI codes and invitations last, in minutes (issue 11)."""

    session_minutes: int
    session_idle_minutes: int
    login_link_minutes: int
    cli_code_minutes: int
    invite_minutes: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ScheduleSettings:
    """``STUDIO_BRAIN_SCHEDULE_*``: when each job runs (``swarms`` empty = the swarms are not scheduled)."""

    snapshot: str
    daily_close: str
    connector_health: str
    audit_checkpoint: str
    swarms: str
    safety_watch: str
    morning_brief: str
    execution_recovery: str
