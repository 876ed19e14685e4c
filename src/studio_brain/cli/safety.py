"""CLI of the safety watch (issue 17): ``safety findings|check|brief|notifications``, ``demo-scenario NAME``,
and the demo step that points the watch at the demo's fake hub, firings and a loopback notification inbox."""

from __future__ import annotations

import atexit
import urllib.error
import urllib.request
from typing import Annotated, Any

import typer
from pydantic import SecretStr

from studio_brain.adapters.connectors.fakes.demo import DemoDevices
from studio_brain.adapters.demo_safety import (
    DEMO_DOOR,
    DEMO_KILN,
    DEMO_LOCK,
    DEMO_OUTLET,
    DemoFiringReader,
    DemoScenarios,
    read_scenario_file,
    write_scenario_file,
)
from studio_brain.adapters.demo_source import DemoCloud
from studio_brain.adapters.notify_apprise import AppriseNotifier
from studio_brain.adapters.notify_inbox import WebhookInbox
from studio_brain.bootstrap import Brain, open_brain
from studio_brain.cli.common import fail, print_json, run, settings_or_exit
from studio_brain.services.safety import SafetyWatch

safety_app = typer.Typer(
    help="Safety watch: findings, a watch pass, the morning brief.", no_args_is_help=True
)

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _watch(brain: Brain) -> SafetyWatch:
    return brain.safety


@safety_app.command("findings")
def findings(
    all_: Annotated[bool, typer.Option("--all", help="Resolved findings too.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List open safety findings (newest first)."""
    settings = settings_or_exit()

    async def _main() -> list[dict[str, Any]]:
        async with open_brain(settings, migrate=True) as brain:
            records = await _watch(brain).findings(status=None if all_ else "open", limit=100)
            return [
                {
                    "id": r.id,
                    "ruleId": r.rule_id,
                    "subject": r.subject,
                    "severity": r.severity.value,
                    "status": r.status.value,
                    "summary": r.summary,
                    "onsetAt": r.onset_at.isoformat(),
                    "detectedAt": r.detected_at.isoformat(),
                    "draftId": r.draft_id,
                    "proposalId": r.proposal_id,
                }
                for r in records
            ]

    rows = run(_main())
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("no open safety findings")
    for r in rows:
        typer.echo(f"{r['severity']:<6} {r['status']:<8} {r['ruleId']:<36} {r['summary']}")


@safety_app.command("check")
def check(as_json: JsonOption = False) -> None:
    """Run one watch pass now (outside the scheduler) and print its summary."""
    settings = settings_or_exit()

    async def _main() -> dict[str, Any]:
        async with open_brain(settings, migrate=True) as brain:
            return await _watch(brain).run()

    summary = run(_main())
    if as_json:
        print_json(summary)
        return
    typer.echo(
        f"{summary['devices']} devices, {summary['firings']} firings; conditions: "
        f"{', '.join(summary['conditions']) or 'none'}; opened {len(summary['opened'])}, "
        f"resolved {len(summary['resolved'])}"
    )


@safety_app.command("brief")
def brief(
    send: Annotated[
        bool, typer.Option("--send", help="Queue it for the targets and deliver (once a day).")
    ] = False,
) -> None:
    """Print today's morning brief (and send it with --send)."""
    settings = settings_or_exit()

    async def _main() -> tuple[str, dict[str, Any] | None]:
        async with open_brain(settings, migrate=True) as brain:
            composed = await brain.brief.compose()
            sent = await brain.brief.send() if send else None
            return composed.title + "\n\n" + composed.text(), sent

    text, sent = run(_main())
    typer.echo(text)
    if sent is not None:
        typer.echo(f"queued for {sent['queued']} target(s); delivered: {sent['notifications']}")


@safety_app.command("notifications")
def notifications(as_json: JsonOption = False) -> None:
    """Recent notifications and their delivery status (target URLs masked)."""
    settings = settings_or_exit()

    async def _main() -> list[dict[str, Any]]:
        async with open_brain(settings, migrate=True) as brain:
            return [
                {
                    "id": n.id,
                    "kind": n.kind.value,
                    "severity": n.severity.value,
                    "target": n.target,
                    "targetUrl": n.target_display,
                    "status": n.status.value,
                    "attempts": n.attempts,
                    "title": n.title,
                    "lastError": n.last_error,
                    "createdAt": n.created_at.isoformat(),
                }
                for n in await brain.notifications.recent(limit=50)
            ]

    rows = run(_main())
    if as_json:
        print_json(rows)
        return
    for r in rows:
        typer.echo(f"{r['status']:<8} {r['target']:<12} {r['severity']:<6} {r['title']}")


def demo_scenario(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(DemoScenarios.NAMES)}.")],
) -> None:
    """Drive the running `studio-brain demo`: e.g. kiln-left-on leaves the kiln outlet drawing power with
    no firing; the watch finds it within a minute or two (a high finding, a drafted switch-off, an alert)."""
    settings = settings_or_exit()
    if name not in DemoScenarios.NAMES:
        fail(f"unknown scenario {name!r}; choose one of {', '.join(DemoScenarios.NAMES)}", code=2)
    found = read_scenario_file(settings.home)
    if found is None:
        fail(
            f"no running demo found (no {settings.home / 'demo/scenario.json'}); start `studio-brain demo` first"
        )
    url = f"{found['hubUrl']}/_demo/scenario/{name}?access_token={found['token']}"
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - loopback URL we wrote
            answer.read()
    except (urllib.error.URLError, OSError):
        fail("the demo does not answer (stopped?); start `studio-brain demo` again")
    typer.echo(f"scenario {name} applied to the running demo; the safety watch runs every minute")


async def prepare_demo_safety(brain: Brain, devices: DemoDevices) -> WebhookInbox | None:
    """Demo step: the watch reads the fake hub's kiln outlet (device 21, kiln studio-electric-1), its back
    door and lock; scenarios become drivable from `demo-scenario`; without configured targets, alerts go to
    a loopback webhook inbox (shown on the Safety page)."""
    watch = brain.safety
    if watch is None:
        return None
    if not isinstance(watch.firings, DemoFiringReader):
        # in the demo the demo studio *is* the cloud (as for snapshots): its firings are the ones watched
        cloud = brain.state.source("demo") if brain.state is not None else None
        if not isinstance(cloud, DemoCloud):  # pragma: no cover - bootstrap wires DemoCloud
            return None
        watch.firings = DemoFiringReader(cloud, now=brain.clock.now)
    firings = watch.firings
    watch.selection = type(watch.selection)(
        connector=watch.selection.connector,
        kiln_outlet=DEMO_OUTLET,
        doors=(DEMO_DOOR, DEMO_LOCK),
        watched=watch.selection.watched,
        kiln_id=DEMO_KILN,
    )
    scenarios = DemoScenarios(devices.hubitat, firings)
    devices.hubitat.scenario_handler = scenarios.apply
    # start consistent with the demo studio: the outlet draws power only while its kiln fires
    firing = await firings.demo_kiln_firing()
    devices.hubitat.set_power(DEMO_OUTLET, 1500.0 if firing else 0.0)
    write_scenario_file(brain.settings.home, devices.hubitat)
    inbox = None
    if brain.settings.notify_targets is None and brain.notifications is not None:
        inbox = WebhookInbox().start()
        atexit.register(inbox.stop)
        brain.notifications.use_notifier(AppriseNotifier({"demo-inbox": SecretStr(inbox.url())}))
        typer.echo(
            f"  alerts    : loopback webhook inbox {inbox.url('http')} (no STUDIO_BRAIN_NOTIFY_TARGETS)"
        )
    typer.echo("  scenarios : studio-brain demo-scenario kiln-left-on | door-open | outlet-silent | calm")
    return inbox


def register(app: typer.Typer) -> None:
    app.add_typer(safety_app, name="safety")
    app.command("demo-scenario")(demo_scenario)
