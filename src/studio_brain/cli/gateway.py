"""CLI of the capability gateway (issue 5): ``capabilities``, ``proposals``, ``killswitch``, ``exemptions``,
``agents``. The CLI acts as the person signed in with ``studio-brain login`` (their personal token), or
with the break-glass admin token on the studio machine — never as an identity a setting or flag names."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from studio_brain.adapters.capability_registry import load_registry
from studio_brain.bootstrap import Brain, open_brain
from studio_brain.cli.common import (
    EXIT_FAILURE,
    EXIT_USAGE,
    fail,
    print_json,
    run,
    settings_or_exit,
    studio_time,
)
from studio_brain.cli.login import cli_principal
from studio_brain.domain.capabilities import Capability
from studio_brain.domain.errors import ConfigError
from studio_brain.domain.identity import Principal
from studio_brain.domain.policy import AgentToken, Exemption
from studio_brain.domain.proposals import Proposal, Status, to_record
from studio_brain.domain.text import value_problem
from studio_brain.ports.gateway import ProposalFilter
from studio_brain.services.gateway import GatewayService
from studio_brain.settings import Settings

T = TypeVar("T")

capabilities_app = typer.Typer(help="The capability registry: list and lint.", no_args_is_help=True)
proposals_app = typer.Typer(help="Proposals: create, approve, reject, execute, ...", no_args_is_help=True)
killswitch_app = typer.Typer(
    help="The kill switch: blocks every write (or one capability's).", no_args_is_help=True
)
exemptions_app = typer.Typer(
    help="Narrow, expiring waivers of approval for low-risk writes.", no_args_is_help=True
)
agents_app = typer.Typer(help="Scoped, expiring agent tokens (stored hashed).", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ReasonOption = Annotated[str, typer.Option("--reason", "--rationale", help="Why (at least 10 characters).")]


def _with_gateway(settings: Settings, use: Callable[[GatewayService, Principal], Awaitable[T]]) -> T:
    async def _main() -> T:
        async with open_brain(settings, migrate=True) as brain:
            return await use(_gateway(brain), await cli_principal(brain))

    return run(_main())


def _gateway(brain: Brain) -> GatewayService:
    return brain.gateway


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


def _print_proposal(p: Proposal) -> None:
    typer.echo(
        f"{p.id}  {p.status.value:<16} {p.capability_id:<28} by {p.requested_by}  {studio_time(p.created_at)}"
    )


def _show_proposal(p: Proposal, as_json: bool) -> None:
    if as_json:
        print_json(to_record(p))
        return
    _print_proposal(p)
    typer.echo(f"  rationale  : {p.rationale}")
    typer.echo(f"  input      : {json.dumps(p.input, sort_keys=True)}")
    typer.echo(f"  inputHash  : {p.input_hash}")
    typer.echo(f"  effects    : {json.dumps(p.predicted_effects)}")
    typer.echo(
        f"  approval   : {p.approval_state.value}"
        + "".join(f"  {a.approver_id}@{studio_time(a.at, '%H:%M %Z')}" for a in p.approvals)
    )
    if p.output_hash or p.error:
        typer.echo(f"  outcome    : {p.output_hash or p.error}")


# --- capabilities ---------------------------------------------------------------------------------


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


# --- proposals ------------------------------------------------------------------------------------


@proposals_app.command("list")
def proposals_list(
    status: Annotated[str | None, typer.Option("--status", help="Only this status.")] = None,
    capability: Annotated[str | None, typer.Option("--capability", help="Only this capability.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="How many, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Proposals, newest first."""
    settings = settings_or_exit()
    try:
        wanted = Status(status) if status else None
    except ValueError:
        fail(f"--status must be one of {', '.join(s.value for s in Status)}", code=EXIT_USAGE)
    found = _with_gateway(
        settings,
        lambda g, principal: g.list_proposals(
            principal, ProposalFilter(status=wanted, capability_id=capability, limit=limit)
        ),
    )
    if as_json:
        print_json([to_record(p) for p in found])
    elif not found:
        typer.echo("no proposals")
    for p in found if not as_json else []:
        _print_proposal(p)


@proposals_app.command("show")
def proposals_show(proposal_id: str, as_json: JsonOption = False) -> None:
    """One proposal in full."""
    settings = settings_or_exit()
    _show_proposal(_with_gateway(settings, lambda g, principal: g.get(principal, proposal_id)), as_json)


@proposals_app.command("create")
def proposals_create(
    capability: str,
    input_json: Annotated[str, typer.Option("--input", help="The input as a JSON object.")],
    rationale: Annotated[str, typer.Option("--rationale", help="Why (at least 10 characters).")],
    draft: Annotated[bool, typer.Option("--draft", help="Create as a draft (submit later).")] = False,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key")] = None,
    as_json: JsonOption = False,
) -> None:
    """Propose running CAPABILITY with --input."""
    settings = settings_or_exit()
    try:
        data = json.loads(input_json)
    except json.JSONDecodeError as err:
        fail(f"--input is not valid JSON: {err.msg} at character {err.pos}", code=EXIT_USAGE)
    if not isinstance(data, dict):
        fail("--input must be a JSON object", code=EXIT_USAGE)
    problem = value_problem(data, location="--input")  # "\u0000" escapes decode to unstorable text
    if problem:
        fail(problem, code=EXIT_USAGE)
    created = _with_gateway(
        settings,
        lambda g, principal: g.create_proposal(
            principal, capability, data, rationale, idempotency_key=idempotency_key, as_draft=draft
        ),
    )
    _show_proposal(created.proposal, as_json)


def _transition(name: str, proposal_id: str, as_json: bool, rationale: str | None) -> None:
    settings = settings_or_exit()

    async def use(g: GatewayService, principal: Principal) -> Proposal:
        match name:
            case "submit":
                return await g.submit(principal, proposal_id)
            case "approve":
                return await g.approve(principal, proposal_id, rationale or "")
            case "reject":
                return await g.reject(principal, proposal_id, rationale or "")
            case "cancel":
                return await g.cancel(principal, proposal_id, rationale or "")
        raise AssertionError(name)  # pragma: no cover

    _show_proposal(_with_gateway(settings, use), as_json)


@proposals_app.command("submit")
def proposals_submit(proposal_id: str, as_json: JsonOption = False) -> None:
    """Submit a draft for approval."""
    _transition("submit", proposal_id, as_json, None)


@proposals_app.command("approve")
def proposals_approve(proposal_id: str, rationale: ReasonOption, as_json: JsonOption = False) -> None:
    """Approve a proposal (not your own)."""
    _transition("approve", proposal_id, as_json, rationale)


@proposals_app.command("reject")
def proposals_reject(proposal_id: str, rationale: ReasonOption, as_json: JsonOption = False) -> None:
    """Reject a pending proposal."""
    _transition("reject", proposal_id, as_json, rationale)


@proposals_app.command("cancel")
def proposals_cancel(proposal_id: str, rationale: ReasonOption, as_json: JsonOption = False) -> None:
    """Cancel a proposal that has not run."""
    _transition("cancel", proposal_id, as_json, rationale)


@proposals_app.command("execute")
def proposals_execute(
    proposal_id: str,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key")] = None,
    as_json: JsonOption = False,
) -> None:
    """Execute an approved (or exempt) proposal once."""
    settings = settings_or_exit()
    result = _with_gateway(
        settings, lambda g, principal: g.execute(principal, proposal_id, idempotency_key=idempotency_key)
    )
    _show_proposal(result.proposal, as_json)
    if result.replayed and not as_json:
        typer.echo("  (replayed the stored result)")
    if result.proposal.status is not Status.EXECUTED:
        raise typer.Exit(EXIT_FAILURE)


@proposals_app.command("dry-run")
def proposals_dry_run(proposal_id: str) -> None:
    """What executing would do now (never acts)."""
    settings = settings_or_exit()
    print_json(_with_gateway(settings, lambda g, principal: g.dry_run(principal, proposal_id)))


@proposals_app.command("recover")
def proposals_recover(reason: ReasonOption) -> None:
    """Mark executions abandoned by a crashed process as outcome_unknown (they never run again)."""
    settings = settings_or_exit()
    recovered = _with_gateway(settings, lambda g, principal: g.recover_stale_executions(principal, reason))
    for p in recovered:
        _print_proposal(p)
    typer.echo(f"{len(recovered)} stale execution(s) marked outcome_unknown")


@proposals_app.command("reconcile")
def proposals_reconcile(proposal_id: str, reason: ReasonOption) -> None:
    """Prove what an outcome_unknown write did: executed (with its output hash) or failed (issue 15)."""
    settings = settings_or_exit()
    done = _with_gateway(settings, lambda g, principal: g.reconcile(principal, proposal_id, reason))
    _print_proposal(done.proposal)
    if done.proposal.status is Status.OUTCOME_UNKNOWN:
        typer.echo(f"  still unknown: {done.proposal.error or 'the target shows no sign of the write yet'}")
    elif done.proposal.result is not None and "replayed" in done.proposal.result:
        typer.echo(f"  replayed   : {done.proposal.result['replayed']}")


# --- kill switch ------------------------------------------------------------------------------------

CapabilityOption = Annotated[
    str | None, typer.Option("--capability", help="Only this capability (default: all writes).")
]


def _set_switch(enabled: bool, reason: str, capability: str | None) -> None:
    settings = settings_or_exit()
    entry = _with_gateway(
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
    entries = _with_gateway(settings, lambda g, principal: g.kill_switch(principal))
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


# --- exemptions -------------------------------------------------------------------------------------


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
    found = _with_gateway(settings, lambda g, principal: g.exemptions(principal))
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
    made = _with_gateway(
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
    revoked = _with_gateway(
        settings, lambda g, principal: g.revoke_exemption(principal, exemption_id, reason)
    )
    typer.echo(f"exemption {revoked.id} revoked")


# --- agent tokens ------------------------------------------------------------------------------------


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
    issued = _with_gateway(
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
    found = _with_gateway(settings, lambda g, principal: g.agent_tokens(principal))
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
    revoked = _with_gateway(settings, lambda g, principal: g.revoke_agent_token(principal, token_id, reason))
    typer.echo(f"token {revoked.id} of {revoked.agent_id} revoked")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.add_typer(capabilities_app, name="capabilities")
    app.add_typer(proposals_app, name="proposals")
    app.add_typer(killswitch_app, name="killswitch")
    app.add_typer(exemptions_app, name="exemptions")
    app.add_typer(agents_app, name="agents")
