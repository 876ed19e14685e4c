"""CLI of the capability gateway (issue 5): ``capabilities``, ``proposals``, ``killswitch``, ``exemptions``,
``agents``. The CLI acts as the person signed in with ``studio-brain login`` (their personal token), or
with the break-glass admin token on the studio machine — never as an identity a setting or flag names.

This module holds ``proposals`` and registers every group; the others are one module each
(``cli/capabilities.py``, ``cli/killswitch.py``, ``cli/exemptions.py``, ``cli/agents.py``)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from studio_brain.cli.agents import agents_app
from studio_brain.cli.capabilities import capabilities_app
from studio_brain.cli.common import EXIT_FAILURE, EXIT_USAGE, fail, print_json, settings_or_exit, studio_time
from studio_brain.cli.exemptions import exemptions_app
from studio_brain.cli.gateway_common import JsonOption, ReasonOption, with_gateway
from studio_brain.cli.killswitch import killswitch_app
from studio_brain.domain.identity import Principal
from studio_brain.domain.proposals import Proposal, Status, to_record
from studio_brain.domain.text import value_problem
from studio_brain.ports.gateway import ProposalFilter
from studio_brain.services.gateway import GatewayService

proposals_app = typer.Typer(help="Proposals: create, approve, reject, execute, ...", no_args_is_help=True)


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
    found = with_gateway(
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
    _show_proposal(with_gateway(settings, lambda g, principal: g.get(principal, proposal_id)), as_json)


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
    created = with_gateway(
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

    _show_proposal(with_gateway(settings, use), as_json)


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
    result = with_gateway(
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
    print_json(with_gateway(settings, lambda g, principal: g.dry_run(principal, proposal_id)))


@proposals_app.command("recover")
def proposals_recover(reason: ReasonOption) -> None:
    """Mark executions abandoned by a crashed process as outcome_unknown (they never run again)."""
    settings = settings_or_exit()
    recovered = with_gateway(settings, lambda g, principal: g.recover_stale_executions(principal, reason))
    for p in recovered:
        _print_proposal(p)
    typer.echo(f"{len(recovered)} stale execution(s) marked outcome_unknown")


@proposals_app.command("reconcile")
def proposals_reconcile(proposal_id: str, reason: ReasonOption) -> None:
    """Prove what an outcome_unknown write did: executed (with its output hash) or failed (issue 15)."""
    settings = settings_or_exit()
    done = with_gateway(settings, lambda g, principal: g.reconcile(principal, proposal_id, reason))
    _print_proposal(done.proposal)
    if done.proposal.status is Status.OUTCOME_UNKNOWN:
        typer.echo(f"  still unknown: {done.proposal.error or 'the target shows no sign of the write yet'}")
    elif done.proposal.result is not None and "replayed" in done.proposal.result:
        typer.echo(f"  replayed   : {done.proposal.result['replayed']}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.add_typer(capabilities_app, name="capabilities")
    app.add_typer(proposals_app, name="proposals")
    app.add_typer(killswitch_app, name="killswitch")
    app.add_typer(exemptions_app, name="exemptions")
    app.add_typer(agents_app, name="agents")
