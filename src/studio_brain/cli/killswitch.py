"""CLI: ``killswitch on / off / status`` — the switch that blocks every write, or one capability's."""

from __future__ import annotations

from typing import Annotated

import typer

from studio_brain.cli.common import print_json, settings_or_exit
from studio_brain.cli.gateway_common import JsonOption, ReasonOption, with_gateway

killswitch_app = typer.Typer(
    help="The kill switch: blocks every write (or one capability's).", no_args_is_help=True
)


CapabilityOption = Annotated[
    str | None, typer.Option("--capability", help="Only this capability (default: all writes).")
]


def _set_switch(enabled: bool, reason: str, capability: str | None) -> None:
    settings = settings_or_exit()
    entry = with_gateway(
        settings,
        lambda g, principal: g.set_kill_switch(
            principal, enabled=enabled, rationale=reason, capability_id=capability
        ),
    )
    scope = "all writes" if entry.scope == "*" else entry.scope
    typer.echo(f"kill switch {'ON' if enabled else 'off'} for {scope} (by {entry.updated_by})")


@killswitch_app.command("on")
def killswitch_on(reason: ReasonOption, capability: CapabilityOption = None) -> None:
    """Block creating, approving and executing writes."""
    _set_switch(True, reason, capability)


@killswitch_app.command("off")
def killswitch_off(reason: ReasonOption, capability: CapabilityOption = None) -> None:
    """Lift the block."""
    _set_switch(False, reason, capability)


@killswitch_app.command("status")
def killswitch_status(as_json: JsonOption = False) -> None:
    """Every switch and who set it."""
    settings = settings_or_exit()
    entries = with_gateway(settings, lambda g, principal: g.kill_switch(principal))
    if as_json:
        print_json(
            [
                {
                    "scope": e.scope,
                    "enabled": e.enabled,
                    "rationale": e.rationale,
                    "updatedBy": e.updated_by,
                    "updatedAt": e.updated_at,
                }
                for e in entries
            ]
        )
        return
    if not entries:
        typer.echo("kill switch never set (off)")
    for e in entries:
        typer.echo(
            f"{e.scope:<28} {'ON ' if e.enabled else 'off'}  {e.updated_by} {e.updated_at:%Y-%m-%d %H:%M}  {e.rationale}"
        )
