"""CLI: ``exemptions list / create / revoke`` — narrow, expiring waivers of approval for low-risk writes."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import typer

from studio_brain.cli.common import print_json, settings_or_exit
from studio_brain.cli.gateway_common import JsonOption, ReasonOption, with_gateway
from studio_brain.domain.policy import Exemption

exemptions_app = typer.Typer(
    help="Narrow, expiring waivers of approval for low-risk writes.", no_args_is_help=True
)


def _exemption_json(e: Exemption) -> dict[str, Any]:
    return {
        "id": e.id,
        "capabilityId": e.capability_id,
        "target": e.target,
        "actorId": e.actor_id,
        "justification": e.justification,
        "createdBy": e.created_by,
        "createdAt": e.created_at,
        "expiresAt": e.expires_at,
        "revokedAt": e.revoked_at,
        "revokedBy": e.revoked_by,
        "revokeReason": e.revoke_reason,
    }


@exemptions_app.command("list")
def exemptions_list(as_json: JsonOption = False) -> None:
    """Every exemption, newest first."""
    settings = settings_or_exit()
    found = with_gateway(settings, lambda g, principal: g.exemptions(principal))
    if as_json:
        print_json([_exemption_json(e) for e in found])
        return
    if not found:
        typer.echo("no exemptions")
    for e in found:
        state = "revoked" if e.revoked_at else f"until {e.expires_at:%Y-%m-%d %H:%M}"
        typer.echo(f"{e.id}  {e.capability_id:<28} {state:<24} {e.justification}")


@exemptions_app.command("create")
def exemptions_create(
    capability: str,
    justification: Annotated[str, typer.Option("--justification", help="Why (at least 10 characters).")],
    hours: Annotated[float, typer.Option("--hours", help="Lifetime in hours (capped by the registry).")] = 24,
    only_actor: Annotated[
        str | None, typer.Option("--only-actor", help="Only proposals by this requester.")
    ] = None,
) -> None:
    """Waive approval for CAPABILITY for a while (low-risk capabilities only)."""
    settings = settings_or_exit()
    made = with_gateway(
        settings,
        lambda g, principal: g.create_exemption(
            principal,
            capability_id=capability,
            justification=justification,
            lifetime=timedelta(hours=hours),
            actor_id=only_actor,
        ),
    )
    typer.echo(f"exemption {made.id} for {made.capability_id} until {made.expires_at:%Y-%m-%d %H:%M %Z}")


@exemptions_app.command("revoke")
def exemptions_revoke(exemption_id: str, reason: ReasonOption) -> None:
    """End an exemption now."""
    settings = settings_or_exit()
    revoked = with_gateway(settings, lambda g, principal: g.revoke_exemption(principal, exemption_id, reason))
    typer.echo(f"exemption {revoked.id} revoked")
