"""CLI: ``capabilities list / show / lint`` — the capability registry (issue 5)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from studio_brain.adapters.capability_registry import load_registry
from studio_brain.cli.common import EXIT_FAILURE, EXIT_USAGE, fail, print_json, settings_or_exit
from studio_brain.cli.gateway_common import JsonOption
from studio_brain.domain.capabilities import Capability
from studio_brain.domain.errors import ConfigError

capabilities_app = typer.Typer(help="The capability registry: list and lint.", no_args_is_help=True)


def _capability_json(c: Capability) -> dict[str, Any]:
    return {
        "id": c.id,
        "description": c.description,
        "target": c.target.value,
        "mode": c.mode.value,
        "risk": c.risk.value,
        "riskClass": c.risk_class.value,
        "requiresApproval": c.requires_approval,
        "approvalsRequired": c.approvals_required,
        "approvalTtlSeconds": c.approval_ttl_seconds,
        "rateLimit": {"perHour": c.rate_limit.per_hour, "burst": c.rate_limit.burst},
        "cooldownSeconds": c.cooldown_seconds,
        "timeoutBudgetSeconds": c.timeout_budget_seconds,
        "dryRun": c.dry_run.value,
        "exemptable": c.exemptable,
    }


@capabilities_app.command("list")
def capabilities_list(as_json: JsonOption = False) -> None:
    """Every capability in the registry."""
    settings = settings_or_exit()
    try:
        registry = load_registry(settings.gateway_registry_file)
    except ConfigError as err:
        fail(err.message)
    if as_json:
        print_json(
            {
                "version": registry.version,
                "capabilities": [_capability_json(c) for c in registry.capabilities.values()],
            }
        )
        return
    typer.echo(f"registry version {registry.version[:16]}…")
    for c in sorted(registry.capabilities.values(), key=lambda c: c.id):
        approval = f"{c.approvals_required} approval(s)" if c.requires_approval else "no approval"
        typer.echo(
            f"  {c.id:<28} {c.target.value:<9} {c.mode.value:<5} {c.risk.value:<8} {c.risk_class.value:<8} {approval}"
        )


@capabilities_app.command("show")
def capabilities_show(
    capability_id: Annotated[str, typer.Argument(help="The capability's id, e.g. studio.note.append.")],
    as_json: JsonOption = False,
) -> None:
    """One capability: its policy and the JSON Schema its input must satisfy (issue 14)."""
    settings = settings_or_exit()
    try:
        registry = load_registry(settings.gateway_registry_file)
    except ConfigError as err:
        fail(err.message)
    c = registry.capabilities.get(capability_id)
    if c is None:
        known = ", ".join(sorted(registry.capabilities))
        fail(f"no capability {capability_id!r} (known: {known})", code=EXIT_USAGE)
    shown = {**_capability_json(c), "inputSchema": c.input_schema}
    if as_json:
        print_json(shown)
        return
    for key, value in shown.items():
        if key != "inputSchema":
            typer.echo(f"{key:<22} {value}")
    typer.echo("input schema:")
    typer.echo(json.dumps(c.input_schema, indent=2, sort_keys=True))


@capabilities_app.command("lint")
def capabilities_lint(
    file: Annotated[
        Path | None, typer.Option("--file", help="Registry to check [default: the configured one].")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Validate the registry and list every violation (exit 1 when there is one)."""
    settings = settings_or_exit()
    try:
        registry = load_registry(file or settings.gateway_registry_file, strict=False)
    except ConfigError as err:
        fail(err.message)
    violations = registry.violations
    if as_json:
        print_json(
            {
                "ok": not violations,
                "capabilitiesChecked": len(registry.capabilities),
                "violations": [
                    {"capabilityId": v.capability_id, "code": v.code, "message": v.message}
                    for v in violations
                ],
            }
        )
    else:
        for v in violations:
            typer.echo(f"{v.capability_id}: {v.code}: {v.message}")
        typer.echo(f"{len(registry.capabilities)} capabilities checked, {len(violations)} violation(s)")
    if violations:
        raise typer.Exit(EXIT_FAILURE)
