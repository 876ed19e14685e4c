"""``studio-brain jobs list|run NAME``: see every scheduled job's state, run one by hand (issue 8)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Annotated, Any

import typer

from studio_brain.bootstrap import Brain, open_brain
from studio_brain.cli.common import EXIT_FAILURE, EXIT_USAGE, fail, print_json, run, settings_or_exit
from studio_brain.domain.errors import NotFound
from studio_brain.domain.state import JobRun, JobStatus
from studio_brain.services.jobs import JobService, health_row

jobs_app = typer.Typer(help="Scheduled jobs: list them, run one now.", no_args_is_help=True)


def _service(brain: Brain) -> JobService:
    return brain.jobs


def local_time(zone: tzinfo) -> Callable[[str], str]:
    """ISO instants as the studio's local time (the cockpit's zone), e.g. ``2026-11-25 09:00 MST``."""

    def shown(value: str) -> str:
        at = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(zone)
        return at.strftime("%Y-%m-%d %H:%M %Z").strip()

    return shown


def _run_row(run: JobRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "job": run.job,
        "status": run.status.value,
        "startedAt": run.started_at.isoformat(),
        "durationMs": None if run.duration_ms is None else round(run.duration_ms, 1),
        "error": run.error,
        "summary": run.summary,
    }


@jobs_app.command("list")
def list_jobs(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Every registered job: schedule, last run, failures, next due time."""
    settings = settings_or_exit()

    async def _list() -> list[dict[str, Any]]:
        async with open_brain(settings, migrate=False) as brain:
            service = _service(brain)
            described = {j.name: j.description for j in service.jobs()}
            return [
                {"name": h.name, "description": described[h.name], **health_row(h)}
                for h in await service.health()
            ]

    rows = run(_list())
    if as_json:
        print_json(rows)
        return
    local = local_time(settings.zone)
    for row in rows:
        status = row["lastStatus"] or "never run"
        when = f" at {local(row['lastStartedAt'])}" if row["lastStartedAt"] else ""
        failing = f", {row['consecutiveFailures']} failure(s) in a row" if row["consecutiveFailures"] else ""
        typer.echo(f"{row['name']:<18} {row['schedule']:<22} last: {status}{when}{failing}")
        typer.echo(f"{'':<18} {row['description']}")
        if row["nextDueAt"]:
            typer.echo(f"{'':<18} next due {local(row['nextDueAt'])}")
        if row["lastError"]:
            typer.echo(f"{'':<18} error: {row['lastError']}")


@jobs_app.command("run")
def run_job(
    name: Annotated[str, typer.Argument(help="The job to run, e.g. snapshot or swarms (see `jobs list`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Run NAME once now (and the jobs that follow it), recorded and audited like a scheduled run.

    A run of the same job going on anywhere (another brain included) makes this one `skipped`.
    """
    settings = settings_or_exit()

    async def _run() -> list[JobRun]:
        async with open_brain(settings, migrate=False) as brain:
            service = _service(brain)
            try:
                service.get(name)
            except NotFound as err:
                fail(err.message, code=EXIT_USAGE)
            return await service.run(name, trigger="manual")

    runs = run(_run())
    if as_json:
        print_json([_run_row(r) for r in runs])
    else:
        for r in runs:
            took = f" in {r.duration_ms:.0f} ms" if r.duration_ms is not None else ""
            detail = f": {r.error}" if r.error else ""
            reason = " (another run of this job is in progress)" if r.status is JobStatus.SKIPPED else ""
            typer.echo(f"{r.job}: {r.status.value}{took}{reason}{detail}")
    if any(r.status is JobStatus.FAILED for r in runs):
        raise typer.Exit(EXIT_FAILURE)


def register(app: typer.Typer) -> None:
    """Add the ``jobs`` group to the root app."""
    app.add_typer(jobs_app, name="jobs")


async def prepare_demo_swarms(brain: Brain) -> dict[str, Any]:
    """``studio-brain demo``: run the swarms over the demo history (each of the last 30 days as it
    happened, then today as a recorded job run), so the queue shows drafts from every swarm."""
    replayed = await brain.swarms.replay(days=30)
    runs = await _service(brain).run("swarms", trigger="demo")
    return {"replayed": replayed, **runs[0].summary}
