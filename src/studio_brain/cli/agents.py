"""CLI: ``agents issue / list / revoke`` — scoped, expiring agent tokens (stored hashed)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import typer

from studio_brain.cli.common import print_json, settings_or_exit
from studio_brain.cli.gateway_common import JsonOption, ReasonOption, with_gateway
from studio_brain.domain.policy import AgentToken

agents_app = typer.Typer(help="Scoped, expiring agent tokens (stored hashed).", no_args_is_help=True)


def _token_json(t: AgentToken) -> dict[str, Any]:
    return {
        "id": t.id,
        "agentId": t.agent_id,
        "scopes": sorted(t.scopes),
        "createdBy": t.created_by,
        "createdAt": t.created_at,
        "expiresAt": t.expires_at,
        "revokedAt": t.revoked_at,
    }


@agents_app.command("issue")
def agents_issue(
    agent_id: str,
    scope: Annotated[
        list[str], typer.Option("--scope", help="capability:<id>:propose|read, state:read, ... (repeat).")
    ],
    reason: ReasonOption,
    days: Annotated[float, typer.Option("--days", help="Lifetime in days (at most 90).")] = 30,
) -> None:
    """Mint a token for AGENT_ID; it is printed once and stored only as a hash."""
    settings = settings_or_exit()
    issued = with_gateway(
        settings,
        lambda g, principal: g.issue_agent_token(
            principal, agent_id=agent_id, scopes=scope, lifetime=timedelta(days=days), reason=reason
        ),
    )
    typer.echo(
        f"token {issued.token.id} for {agent_id} (expires {issued.token.expires_at:%Y-%m-%d}); shown once:"
    )
    typer.echo(issued.raw)


@agents_app.command("list")
def agents_list(as_json: JsonOption = False) -> None:
    """Every agent token (never the secrets)."""
    settings = settings_or_exit()
    found = with_gateway(settings, lambda g, principal: g.agent_tokens(principal))
    if as_json:
        print_json([_token_json(t) for t in found])
        return
    if not found:
        typer.echo("no agent tokens")
    for t in found:
        state = "revoked" if t.revoked_at else f"until {t.expires_at:%Y-%m-%d}"
        typer.echo(f"{t.id}  {t.agent_id:<20} {state:<18} {' '.join(sorted(t.scopes))}")


@agents_app.command("revoke")
def agents_revoke(token_id: str, reason: ReasonOption) -> None:
    """Revoke an agent token now."""
    settings = settings_or_exit()
    revoked = with_gateway(settings, lambda g, principal: g.revoke_agent_token(principal, token_id, reason))
    typer.echo(f"token {revoked.id} of {revoked.agent_id} revoked")
