"""CLI of StudioState (issues 4, 14): ``snapshot``, ``state show|diff|close|history``, ``rebuild``; the demo history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Annotated, Any

import typer

from studio_brain.adapters.demo_source import DemoCloud
from studio_brain.bootstrap import Brain, open_brain
from studio_brain.cli.common import EXIT_FAILURE, fail, is_terminal, print_json, run, settings_or_exit
from studio_brain.domain.errors import ConfigError
from studio_brain.domain.rules import SNAPSHOT_FIELDS
from studio_brain.domain.snapshot import metric
from studio_brain.domain.state import Completeness, DailyClose, SnapshotDiff, SnapshotRun
from studio_brain.services.rebuild import RebuildReport
from studio_brain.services.state import SinceYesterday, StateService
from studio_brain.settings import Settings

state_app = typer.Typer(
    help="Show stored StudioState: daily snapshots, diffs, history.", no_args_is_help=True
)

#: short column headings of `state history`, in SNAPSHOT_FIELDS order
_HEADINGS = (
    "active",
    "closed",
    "resv",
    "firing",
    "reports",
    "blocked",
    "agentReq",
    "highSev",
    "pendOrd",
    "unsettl",
)


def _parse_date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD", param_hint=option) from None


DateOption = Annotated[
    str | None, typer.Option("--date", help="Day of the snapshot, YYYY-MM-DD (default: the newest).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
SourceOption = Annotated[
    str | None,
    typer.Option(
        "--source", help="demo or firestore [default: STUDIO_BRAIN_STATE_SOURCE].", show_default=False
    ),
]


def _service(brain: Brain) -> StateService:
    return brain.state


def _check_source(source: str | None) -> None:
    if source is not None and source not in {"demo", "firestore"}:
        raise typer.BadParameter(f"{source!r} is not a source; use demo or firestore", param_hint="--source")


def _print_run(run_: SnapshotRun) -> None:
    doc = run_.document
    diag = doc.get("diagnostics", {})
    typer.echo(
        f"StudioState {doc['snapshotDate']} — {run_.completeness.value}, source {run_.source}, "
        f"generated {doc['generatedAt']}, run {run_.id}"
    )
    for target in SNAPSHOT_FIELDS:
        value = metric(doc, target)
        typer.echo(f"  {target:<28} {'—  (failed)' if value is None else value}")
    hashes = doc.get("sourceHashes", {})
    typer.echo(f"  {'sourceHashes.firestore':<28} {hashes.get('firestore')}")
    typer.echo(f"  {'sourceHashes.stripe':<28} {hashes.get('stripe')}")
    table = diag.get("ruleTable", {})
    typer.echo(f"  rule table {table.get('version')} ({str(table.get('hash'))[:12]}…)")
    for collection in diag.get("failedCollections", []):
        typer.echo(f"  ! {collection}: query failed")
    for collection in diag.get("timedOutCollections", []):
        typer.echo(f"  ! {collection}: query timed out")
    for warning in diag.get("warnings", []):
        typer.echo(f"  ! {warning}")


def _run_json(run_: SnapshotRun) -> dict[str, Any]:
    return {
        "runId": run_.id,
        "completeness": run_.completeness.value,
        "source": run_.source,
        "snapshotHash": run_.snapshot_hash,
        "snapshot": run_.document,
    }


def snapshot(source: SourceOption = None, as_json: JsonOption = False) -> None:
    """Read the cloud now, compute today's StudioState, store it, and print it."""
    _check_source(source)
    settings = settings_or_exit()

    async def _main() -> SnapshotRun:
        async with open_brain(settings, migrate=True) as brain:
            return await _service(brain).compute(source)

    stored = run(_main())
    if as_json:
        print_json(_run_json(stored))
    else:
        _print_run(stored)
    if stored.completeness is Completeness.PARTIAL:
        diag = stored.document["diagnostics"]
        missing = ", ".join(diag["failedCollections"] + diag["timedOutCollections"])
        fail(
            f"stored as a PARTIAL run (not the day's snapshot): {missing} could not be counted; "
            "see the diagnostics above",
            code=EXIT_FAILURE,
        )


@state_app.command("show")
def show(date_: DateOption = None, as_json: JsonOption = False) -> None:
    """Print the daily snapshot of a day (the latest complete run of that date)."""
    day = None if date_ is None else _parse_date(date_, "--date")
    settings = settings_or_exit()

    async def _main() -> SnapshotRun:
        async with open_brain(settings, migrate=True) as brain:
            return await _service(brain).show(day)

    found = run(_main())
    if as_json:
        print_json(_run_json(found))
    else:
        _print_run(found)


@state_app.command("diff")
def diff(
    from_: Annotated[
        str | None, typer.Option("--from", help="Earlier day, YYYY-MM-DD [default: yesterday's close].")
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Later day, YYYY-MM-DD [default: the latest].")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Key-level changes: by default from yesterday's close to the latest snapshot (what Today shows)."""
    if (from_ is None) != (to is None):
        raise typer.BadParameter("give both --from and --to, or neither (yesterday's close → latest)")
    settings = settings_or_exit()
    if from_ is not None and to is not None:
        start, end = _parse_date(from_, "--from"), _parse_date(to, "--to")
        if start >= end:
            raise typer.BadParameter(f"--from ({start}) must be before --to ({end})")

        async def _between() -> SnapshotDiff:
            async with open_brain(settings, migrate=True) as brain:
                return await _service(brain).diff(start, end)

        found = run(_between())
        _print_diff(
            found.from_date.isoformat(),
            found.to_date.isoformat(),
            found.from_run_id,
            found.to_run_id,
            found.changes,
            as_json=as_json,
        )
        return

    async def _since() -> SinceYesterday:
        async with open_brain(settings, migrate=True) as brain:
            return await _service(brain).since_yesterday()

    since = run(_since())
    if since.latest is None:
        fail("no complete snapshot yet: run `studio-brain snapshot` first")
    if since.baseline is None:
        fail(f"nothing to compare with: {since.basis}. Use --from/--to to compare two days.")
    _print_diff(
        f"{since.baseline.snapshot_date.isoformat()} ({since.basis})",
        f"{since.latest.snapshot_date.isoformat()} (latest, {since.latest.generated_at.astimezone(settings.zone):%H:%M %Z})",
        since.baseline.id,
        since.latest.id,
        since.changes,
        as_json=as_json,
    )


def _print_diff(
    from_label: str, to_label: str, from_run: str, to_run: str, changes: dict[str, Any], *, as_json: bool
) -> None:
    if as_json:
        print_json(
            {"from": from_label, "to": to_label, "fromRunId": from_run, "toRunId": to_run, "changes": changes}
        )
        return
    typer.echo(f"StudioState diff {from_label} → {to_label}")
    if not changes:
        typer.echo("  no changes")
    order = {target: i for i, target in enumerate(SNAPSHOT_FIELDS)}
    for key in sorted(changes, key=lambda k: (order.get(k, len(order)), k)):
        change = changes[key]
        typer.echo(f"  {key:<28} {change['from']} → {change['to']}")


@state_app.command("close")
def close(
    date_: Annotated[
        str | None, typer.Option("--date", help="The day to close, YYYY-MM-DD [default: yesterday].")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show a day's close, closing it now if it was never closed (a close is final: never redone)."""
    settings = settings_or_exit()

    async def _main() -> DailyClose:
        async with open_brain(settings, migrate=True) as brain:
            service = _service(brain)
            day = _parse_date(date_, "--date") if date_ else service.today() - timedelta(days=1)
            return await service.close_day(day)

    found = run(_main())
    if as_json:
        print_json(
            {
                "closeDate": found.close_date.isoformat(),
                "kind": found.kind.value,
                "runId": found.run_id,
                "closedAt": found.closed_at.isoformat(),
                "reason": found.reason,
            }
        )
        return
    when = found.closed_at.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M %Z")
    typer.echo(f"{found.close_date}: {found.kind.value.replace('_', ' ')} (recorded {when}) — {found.reason}")
    if found.run_id:
        typer.echo(f"  snapshot run {found.run_id}")


def _arrow(previous: int | None, current: int | None) -> str:
    if previous is None or current is None or previous == current:
        return " "
    return "↑" if current > previous else "↓"


def render_history(runs: Sequence[SnapshotRun], *, arrows: bool) -> list[str]:
    """The history table: one line per day; with ``arrows``, each value marked up/down vs the day before."""
    lines = ["date        " + " ".join(f"{h:>9}" for h in _HEADINGS)]
    previous: SnapshotRun | None = None
    for run_ in runs:
        cells = []
        for target in SNAPSHOT_FIELDS:
            value = metric(run_.document, target)
            shown = "—" if value is None else str(value)
            if arrows:
                before = metric(previous.document, target) if previous else None
                shown += _arrow(before, value)
            cells.append(f"{shown:>9}")
        lines.append(f"{run_.snapshot_date.isoformat()}  " + " ".join(cells))
        previous = run_
    return lines


@state_app.command("history")
def history(
    days: Annotated[int, typer.Option("--days", min=1, max=3660, help="How many days back from today.")] = 30,
    as_json: JsonOption = False,
) -> None:
    """Daily snapshots of the last N days, as a table with trend arrows on a terminal."""
    settings = settings_or_exit()

    async def _main() -> Sequence[SnapshotRun]:
        async with open_brain(settings, migrate=True) as brain:
            return await _service(brain).history(days)

    runs = run(_main())
    if as_json:
        print_json(
            [
                {
                    "snapshotDate": r.snapshot_date.isoformat(),
                    **{t: metric(r.document, t) for t in SNAPSHOT_FIELDS},
                }
                for r in runs
            ]
        )
        return
    if not runs:
        typer.echo(
            f"no daily snapshots in the last {days} days: run `studio-brain snapshot` or `studio-brain demo`"
        )
        return
    for line in render_history(runs, arrows=is_terminal()):
        typer.echo(line)


def rebuild(
    source: SourceOption = None,
    no_cloud: Annotated[
        bool, typer.Option("--no-cloud", help="Replay the audit log only; no fresh read.")
    ] = False,
    proposals: Annotated[
        bool,
        typer.Option(
            "--proposals", help="Rebuild the proposals table from the audit log instead (staff; audited)."
        ),
    ] = False,
    reason: Annotated[
        str, typer.Option("--reason", help="With --proposals: why (at least 10 characters).")
    ] = "rebuild of the proposals table from the audit log",
) -> None:
    """Rebuild local StudioState: wipe it, replay the audit log, then take a fresh snapshot from the cloud."""
    _check_source(source)
    settings = settings_or_exit()
    if proposals:
        _rebuild_proposals(settings, reason)
        return

    async def _main() -> RebuildReport:
        async with open_brain(settings, migrate=True) as brain:
            return await brain.rebuild.rebuild(
                refresh_source=None if no_cloud else (source or settings.state_source)
            )

    report = run(_main())
    typer.echo(
        f"replayed {report.events_replayed} studio_state.computed events: restored {report.runs_restored} runs, "
        f"rebuilt {report.diffs_rebuilt} diffs"
    )
    if report.closes_restored:
        typer.echo(f"restored {report.closes_restored} daily close(s) from studio_state.closed events")
    for reason in report.skipped:
        typer.echo(f"  ! skipped {reason}")
    if report.fresh_run is not None:
        typer.echo(
            f"fresh snapshot {report.fresh_run.snapshot_date} ({report.fresh_run.completeness.value}) "
            f"from {report.fresh_run.source}: run {report.fresh_run.id}"
        )
    if report.cloud_error is not None:
        fail(f"the replay is done, but the fresh cloud read failed: {report.cloud_error}")


def _rebuild_proposals(settings: Settings, reason: str) -> None:
    """Issue 13: ``rebuild --proposals`` reconstructs every proposal from the audit log alone."""
    from studio_brain.cli.login import cli_principal

    async def _main() -> int:
        async with open_brain(settings, migrate=True) as brain:
            return await brain.gateway.rebuild_proposals(await cli_principal(brain), reason)

    count = run(_main())
    typer.echo(f"rebuilt {count} proposal(s) from the audit log")


async def prepare_demo_state(brain: Brain) -> int:
    """`studio-brain demo`: the demo studio's daily history and today's snapshot; idempotent across restarts."""
    service = _service(brain)
    cloud = service.source("demo")
    if not isinstance(cloud, DemoCloud):  # pragma: no cover - bootstrap wires DemoCloud
        raise ConfigError("the demo source is not the demo studio")
    # in the demo the demo studio *is* the cloud: scheduled snapshots and daily close read it too
    service.set_default_source("demo")
    computed = await service.backfill(brain.settings.demo_history_days, cloud.at)
    return len(computed)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("snapshot")(snapshot)
    app.command("rebuild")(rebuild)
    app.add_typer(state_app, name="state")
