"""CLI commands of the connectors area (issue 6): ``connectors health`` and ``connectors devices``,
plus the demo step that starts the fake device servers."""

from __future__ import annotations

import atexit
from typing import Annotated, Any

import typer

from studio_brain.adapters.connectors.fakes.demo import DemoDevices, start_demo_devices
from studio_brain.adapters.connectors.registry import build_connectors
from studio_brain.bootstrap import Brain, open_brain
from studio_brain.cli.common import EXIT_FAILURE, print_json, run, settings_or_exit
from studio_brain.domain.connectors import ConnectorHealth, HealthStatus
from studio_brain.services.connectors import ConnectorHealthService, DeviceReadings

connectors_app = typer.Typer(help="Device connectors: health and device readings.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _service(brain: Brain) -> ConnectorHealthService:
    return brain.connector_health


def _health_line(h: ConnectorHealth) -> str:
    latency = "-" if h.latency_ms is None else f"{h.latency_ms:.0f} ms"
    return f"{h.connector_id:<10} {h.status.value:<15} {latency:>8}  breaker {h.breaker.value:<9} {h.detail}".rstrip()


@connectors_app.command("health")
def health(as_json: JsonOption = False) -> None:
    """Check every connector now, as configured in THIS process (healthy|degraded|down|not_configured),
    and exit 1 when a configured connector is down. The cockpit's stored health is left to the server."""
    settings = settings_or_exit()

    async def _main() -> list[ConnectorHealth]:
        async with open_brain(settings, migrate=True) as brain:
            # record=False: this process sees only its own configuration (the server's fakes, a token in its
            # environment); the stored health is the server's job, never overwritten from here (issue 14)
            return await _service(brain).check_all(record=False)

    results = run(_main())
    if as_json:
        print_json([h.to_dict() for h in results])
    else:
        for h in results:
            typer.echo(_health_line(h))
    if any(h.status is HealthStatus.DOWN for h in results):
        raise typer.Exit(EXIT_FAILURE)


def _device_line(device: dict[str, Any]) -> str:
    online = {True: "online", False: "OFFLINE", None: "unknown"}[device.get("online")]
    battery = "" if device.get("battery") is None else f" battery {device['battery']}%"
    shown = ", ".join(
        f"{k}={v}" for k, v in device.get("attributes", {}).items() if k not in {"battery", "healthStatus"}
    )
    stale = " STALE" if device.get("stale") else ""
    return f"  {device['id']:<20} {device['label']:<24} {online}{stale}{battery}  {shown}"


@connectors_app.command("devices")
def devices(
    connector: Annotated[
        str | None, typer.Option("--connector", "-c", help="Only this connector (hubitat, roborock).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Read every device through the configured connectors (read-only) and print them normalised."""
    settings = settings_or_exit()

    async def _main() -> list[DeviceReadings]:
        async with open_brain(settings, migrate=False) as brain:
            return await _service(brain).read_devices(connector)

    readings = run(_main())
    if as_json:
        print_json([r.to_dict() for r in readings])
    else:
        if not readings:
            typer.echo("no connector is configured (see `studio-brain config show`, STUDIO_BRAIN_HUBITAT_*)")
        for r in readings:
            typer.echo(
                f"{r.connector_id}: "
                + (f"ERROR {r.error_kind}: {r.error}" if r.error else f"{len(r.devices)} devices")
            )
            for device in r.devices:
                typer.echo(_device_line(device))
    if any(r.error for r in readings):
        raise typer.Exit(EXIT_FAILURE)


async def prepare_demo_devices(brain: Brain) -> DemoDevices:
    """Demo step: start both fake device servers on free loopback ports and point the real connectors
    at them, read-only. The fakes stop when the demo process ends."""
    demo = start_demo_devices()
    atexit.register(demo.stop)
    settings = brain.settings.model_copy(update=demo.settings_update())
    fresh = build_connectors(settings, clock=brain.clock)
    if brain.connectors is not None:
        for connector in fresh.values():
            brain.connectors.replace(connector)
    if brain.connector_health is not None:
        await brain.connector_health.check_all()
    typer.echo(
        f"  devices   : fake Hubitat {demo.hubitat.url}, fake Home Assistant {demo.homeassistant.url} (read-only)"
    )
    return demo


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.add_typer(connectors_app, name="connectors")
