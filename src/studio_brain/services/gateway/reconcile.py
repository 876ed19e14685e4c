"""Reconciliation: settling an ``outcome_unknown`` execution once the target can prove what happened.

A write whose reply was lost (timeout, 5xx, a crash between send and reply) is ``outcome_unknown`` — never
assumed executed. A staff person (or a job acting for one) asks the connector to prove the outcome: the
Functions connector reads the pilot action doc or sends the same request again with the SAME execution key
(the Function writes at most once and answers ``replayed: true``). Proven → ``executed`` (with the output
hash, the resource pointer and ``replayed``) or ``failed`` (the target refused); still unknown → the
proposal stays as it is and the attempt is audited. Connectors offer this with an optional
``reconcile(ctx, command)`` method (None: not proven).
"""

from __future__ import annotations

import asyncio
from typing import Any

from studio_brain.domain.connectors import ConnectorContext, error_kind
from studio_brain.domain.errors import ConnectorError, InputInvalid
from studio_brain.domain.hashing import is_sha256_hex, sha256_hex
from studio_brain.domain.identity import Principal
from studio_brain.domain.outcomes import Outcome, outcome_after_error
from studio_brain.domain.policy import ConnectorFacts, Decision, decide_reconcile
from studio_brain.domain.proposals import Event, Proposal, Status
from studio_brain.services.gateway.context import GatewayContext, NotVisible, Refusal, Subject, log
from studio_brain.services.gateway.effects import approval_claims, command_for
from studio_brain.services.gateway.execution import Execution, Executions


class Reconciliation:
    def __init__(self, ctx: GatewayContext, executions: Executions) -> None:
        self._ctx = ctx
        self._executions = executions

    async def reconcile(
        self, principal: Principal, proposal_id: str, reason: str, *, request_id: str | None = None
    ) -> Execution:
        """Prove the outcome of an ``outcome_unknown`` proposal. Refusals: KILL_SWITCH_ACTIVE,
        TENANT_MISMATCH, ACTOR_NOT_ELIGIBLE, RATIONALE_REQUIRED, INVALID_TRANSITION,
        APPROVAL_PAYLOAD_MISMATCH, ADAPTER_MISSING, CONNECTOR_READ_ONLY."""
        subject: Subject | None = None
        try:
            async with self._ctx.store.transaction(principal.tenant_id) as tx:
                proposal = await tx.get_proposal(proposal_id, lock=True)
                if proposal is None:
                    raise NotVisible
                subject = self._ctx.subject(
                    "capability.proposal.reconcile", proposal, request_id=request_id, rationale=reason
                )
                capability = self._ctx.registry.get(proposal.capability_id)
                kill = await self._ctx.kill(tx)
                connector = (
                    self._ctx.connectors.connector_for(proposal.tenant_id, capability.target.value)
                    if capability
                    else None
                )
                decision = decide_reconcile(
                    principal=principal,
                    proposal=proposal,
                    capability=capability,
                    kill=kill,
                    current_input_hash=sha256_hex(proposal.input),
                    connector=ConnectorFacts(present=connector is not None, mode=connector.mode)
                    if connector is not None
                    else ConnectorFacts(present=False),
                    can_reconcile=callable(getattr(connector, "reconcile", None)),
                    rationale=reason if isinstance(reason, str) else "",
                )
                if not decision.allowed or capability is None or connector is None:
                    raise Refusal(decision)
        except NotVisible:
            await self._ctx.missing(principal, proposal_id, "capability.proposal.reconcile", request_id)
        except Refusal as refused:
            assert subject is not None
            await self._ctx.audit_refusal(principal, subject, refused.decision)
        assert subject is not None
        ctx = ConnectorContext(
            request_id=subject.request_id,
            timeout_seconds=capability.timeout_budget_seconds,
            # the SAME key as the first attempt: the target recognises the request and never acts twice
            idempotency_key=proposal.execution_key,
        )
        command = command_for(capability, proposal.input, approval=approval_claims(proposal))
        event: Event | None
        changes: dict[str, Any]
        try:
            response = await asyncio.wait_for(
                getattr(connector, "reconcile")(ctx, command),  # noqa: B009 - optional capability
                timeout=capability.timeout_budget_seconds,
            )
        except TimeoutError:
            event, changes = None, {"error": "TIMEOUT: the target did not answer; outcome still unknown"}
        except ConnectorError as err:
            # the same table as execution (domain/outcomes.py): only a proven refusal is `failed`
            if outcome_after_error(error_kind(err), sent=err.sent, write=True) is Outcome.FAILED:
                event, changes = Event.RECONCILE_FAILED, {"error": f"{err.kind}: {err.message}"}
            else:
                event, changes = None, {"error": f"{err.kind}: {err.message}; outcome still unknown"}
        except InputInvalid as err:
            event, changes = Event.RECONCILE_FAILED, {"error": f"{err.code}: {err.message}"}
        else:
            if response is None:
                event, changes = None, {"error": "the target shows no sign of the write yet; outcome unknown"}
            else:
                output_hash = (
                    response.output_hash if is_sha256_hex(response.output_hash) else sha256_hex(response.data)
                )
                event = Event.RECONCILE_EXECUTED
                changes = {"output_hash": output_hash, "result": response.data, "error": None}
        return await self._settle(principal, proposal, event, changes, decision, subject)

    async def _settle(
        self,
        principal: Principal,
        proposal: Proposal,
        event: Event | None,
        changes: dict[str, Any],
        decision: Decision,
        subject: Subject,
    ) -> Execution:
        now = self._ctx.clock.now()
        async with self._ctx.store.transaction(proposal.tenant_id) as tx:
            current = await tx.get_proposal(proposal.id, lock=True)
            assert current is not None
            if current.status is not Status.OUTCOME_UNKNOWN:
                # another reconciliation settled it meanwhile: report that result, change nothing
                return Execution(proposal=current, decision=decision, replayed=True)
            if event is None:
                await tx.audit(
                    self._ctx.draft(
                        principal,
                        subject,
                        decision,
                        action="capability.proposal.reconcile_inconclusive",
                        extra={"detail": changes["error"]},
                    ),
                    commit=True,
                )
                log.info("capability.proposal.reconcile_inconclusive", proposal_id=proposal.id)
                return Execution(proposal=current, decision=decision)
            settled = current.transition(event, at=now, execution_finished_at=now, **changes)
            await tx.update_proposal(settled)
            await tx.audit(
                self._ctx.draft(
                    principal,
                    subject,
                    decision,
                    action="capability.proposal.reconciled",
                    proposal=settled,
                    output_hash=settled.output_hash,
                ),
                commit=True,
            )
        log.info(
            "capability.proposal.reconciled",
            proposal_id=proposal.id,
            status=settled.status.value,
            replayed=bool((settled.result or {}).get("replayed")),
        )
        return Execution(proposal=settled, decision=decision)
