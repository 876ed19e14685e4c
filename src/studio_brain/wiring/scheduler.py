"""Wiring of the scheduler and swarms (issue 8): drafts, swarms, the leader lock and every job whose
service is present."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from studio_brain.adapters.memory import InMemoryDraftStore
from studio_brain.adapters.postgres.drafts_store import PostgresDraftStore
from studio_brain.adapters.postgres.leader import PostgresJobLocks, PostgresLeaderLock
from studio_brain.adapters.rule_files import load_calendar
from studio_brain.services.jobs import JobService
from studio_brain.services.swarms.drafts import DraftService, GatewayProposalDrafter
from studio_brain.services.swarms.runner import SwarmService
from studio_brain.wiring.brain import BrainParts


def wire_scheduler_and_swarms(brain: BrainParts) -> None:
    """Issue 8: drafts, swarms, the leader lock, and every job whose service is present."""
    import os
    import socket

    from studio_brain.domain.anomaly import DetectorConfig
    from studio_brain.domain.schedule import parse_schedule
    from studio_brain.services import job_catalogue as catalogue
    from studio_brain.services import jobs as j
    from studio_brain.services.swarms.finance import FinanceRules, FinanceSwarm
    from studio_brain.services.swarms.marketing import MarketingSwarm
    from studio_brain.services.swarms.ops import OpsRules, OpsSwarm

    s = brain.settings
    brain.drafts = DraftService(
        tenant_id=s.tenant_id,
        store=PostgresDraftStore(brain.database, zone=s.zone)
        if brain.adapters == "postgres"
        else InMemoryDraftStore(zone=s.zone),
        clock=brain.clock,
        ids=brain.ids,
        events=brain.events,
        state_store=brain.state_store,
        proposals=GatewayProposalDrafter(brain.gateway) if brain.gateway is not None else None,
    )
    swarm_ops = s.swarm_ops
    ops = OpsSwarm(
        rules=OpsRules(
            backlog_min_active=swarm_ops.backlog_min_active,
            backlog_ratio=swarm_ops.backlog_ratio,
            agent_queue_min=swarm_ops.agent_queue_min,
            blocked_tickets_min=swarm_ops.blocked_tickets_min,
            cooldown_hours=swarm_ops.cooldown_hours,
        ),
        detector=DetectorConfig(
            threshold=swarm_ops.z_threshold,
            min_history_days=swarm_ops.min_history_days,
            window_days=swarm_ops.window_days,
        ),
        calendar=load_calendar(s.calendar_file),
    )
    finance = FinanceSwarm(
        rules=FinanceRules(
            max_read_age=timedelta(hours=s.swarm_finance_max_read_age_hours),
            cooldown_hours=s.swarm_cooldown_hours,
        )
    )
    brain.swarms = SwarmService(
        tenant_id=s.tenant_id,
        state_store=brain.state_store,
        drafts=brain.drafts,
        clock=brain.clock,
        zone=s.zone,
        swarms=(ops, finance, MarketingSwarm()),
        history_days=ops.detector.walk_days,
    )
    brain.leader_lock = PostgresLeaderLock(brain.database_target.url, tenant_id=s.tenant_id)
    brain.jobs = JobService(
        tenant_id=s.tenant_id,
        state_store=brain.state_store,
        locks=PostgresJobLocks(brain.database),
        clock=brain.clock,
        ids=brain.ids,
        zone=s.zone,
        events=brain.events,
        backoff_base_seconds=s.job_backoff_base_seconds,
        backoff_cap_seconds=s.job_backoff_cap_seconds,
        runner=f"{socket.gethostname()}:{os.getpid()}",
    )
    when = s.schedules
    schedules = catalogue.JobSchedules(
        snapshot=parse_schedule(when.snapshot),
        daily_close=parse_schedule(when.daily_close),
        connector_health=parse_schedule(when.connector_health),
        audit_checkpoint=parse_schedule(when.audit_checkpoint),
        swarms=parse_schedule(when.swarms) if when.swarms else None,
    )
    for job in catalogue.standard_jobs(
        schedules,
        snapshot=catalogue.snapshot_job(brain.state) if brain.state is not None else None,
        daily_close=catalogue.daily_close_job(brain.state, s.zone) if brain.state is not None else None,
        connector_health=catalogue.connector_health_job(brain.connector_health)
        if brain.connector_health
        else None,
        audit_checkpoint=catalogue.audit_checkpoint_job(brain.audit, s.tenant_id) if brain.audit else None,
        swarms=catalogue.swarms_job(brain.swarms),
    ):
        brain.jobs.register(job)
    if brain.gateway is not None:
        # issue 13: journalled outcomes recorded, stale executions marked, unknown outcomes read back
        gateway = brain.gateway

        async def recover_executions(_ctx: j.JobContext) -> dict[str, Any]:
            return (await gateway.recover_executions(s.tenant_id)).as_json()

        brain.jobs.register(
            j.JobDefinition(
                name=catalogue.EXECUTION_RECOVERY,
                description="Record journalled device outcomes, mark stale executions, read back unknown ones",
                action=recover_executions,
                schedule=parse_schedule(when.execution_recovery),
            )
        )
