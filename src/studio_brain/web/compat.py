"""The paths the Monsoon Fire Portal's staff cockpit calls, in its shapes (``docs/api.md``, "Portal paths").

Every path needs a staff identity. The cockpit loads fifteen GETs at once and one failure blanks it, so
each GET answers 200 on the happy path; features this brain does not have (intake, support ops, memory)
answer empty. Our richer proposal statuses map onto the Portal's five; refusals come back as the Portal
expects (``409 {ok:false, proposal, decision:{reasonCode…}}``) carrying our reason codes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from studio_brain.bootstrap import Brain
from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft, AuditEvent, AuditQuery
from studio_brain.domain.drafts import DraftKind
from studio_brain.domain.errors import NotFound, PolicyRefused, ReasonCode
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.identity import Principal
from studio_brain.domain.proposals import Proposal, Status
from studio_brain.ports.gateway import ProposalFilter
from studio_brain.web.api.policy import exemption_lifetime
from studio_brain.web.api.shapes import (
    bucket_json,
    capability_json,
    event_json,
    exemption_json,
    kill_switch_json,
    proposal_json,
    violation_json,
)
from studio_brain.web.auth import require_staff
from studio_brain.web.deps import Caller, get_brain, iso, staff_caller
from studio_brain.web.errors import ERROR_RESPONSES, status_for

router = APIRouter(
    prefix="/api", tags=["portal"], dependencies=[Depends(require_staff)], responses=ERROR_RESPONSES
)

Limit = Query(default=50, ge=1, le=10_000, description="most rows to return (no hidden cap)")


def portal_event(event: AuditEvent) -> dict[str, Any]:
    """An audit row as the Portal reads it: its approvalState set has no ``not_applicable`` (shown as
    ``exempt``: no approval was needed); ``brainApprovalState`` keeps ours."""
    row = event_json(event)
    row["brainApprovalState"] = row["approvalState"]
    if row["approvalState"] == ApprovalState.NOT_APPLICABLE.value:
        row["approvalState"] = ApprovalState.EXEMPT.value
    return row


class RowsResponse(BaseModel):
    ok: bool = True
    rows: list[dict[str, Any]]


# --- features this brain does not have: empty, as the Portal contract allows ------------------------


class SupportQueueResponse(BaseModel):
    ok: bool = True
    summary: dict[str, Any]
    recentCases: list[dict[str, Any]]


class MemoryCasesResponse(BaseModel):
    ok: bool = True
    rows: list[dict[str, Any]]
    latestVerificationRuns: list[dict[str, Any]]


@router.get("/intake/review-queue", response_model=RowsResponse, summary="Intake review queue (none here)")
async def intake_queue(limit: int = Limit) -> RowsResponse:
    return RowsResponse(rows=[])


class IntakeOverride(BaseModel):
    decision: str = Field(max_length=100)
    reasonCode: str = Field(max_length=100)
    rationale: str = Field(max_length=5000)


@router.post(
    "/intake/review-queue/{intake_id}/override",
    responses={404: {"description": "this brain has no intake queue"}},
    summary="Override an intake decision (no intake queue here: always 404)",
)
async def intake_override(intake_id: str, body: IntakeOverride) -> dict[str, Any]:
    raise NotFound("this brain has no intake review queue; intake cases live in the Portal")


@router.get("/support-ops/queue", response_model=SupportQueueResponse, summary="Support ops (none here)")
async def support_queue(limit: int = Query(default=20, ge=1, le=1000)) -> SupportQueueResponse:
    return SupportQueueResponse(summary={"open": 0, "total": 0}, recentCases=[])


@router.get("/support-ops/dead-letters", response_model=RowsResponse, summary="Support ops (none here)")
async def support_dead_letters(limit: int = Query(default=10, ge=1, le=1000)) -> RowsResponse:
    return RowsResponse(rows=[])


@router.get("/memory/review-cases", response_model=MemoryCasesResponse, summary="Memory review (none here)")
async def memory_cases(limit: int = Query(default=20, ge=1, le=1000)) -> MemoryCasesResponse:
    return MemoryCasesResponse(rows=[], latestVerificationRuns=[])


# --- ops: audit, degraded mode, scorecard ------------------------------------------------------------


@router.get("/ops/audit", response_model=RowsResponse, summary="Operations audit events (action ops.*)")
async def ops_audit(
    caller: Caller = Depends(staff_caller), brain: Brain = Depends(get_brain), limit: int = Limit
) -> RowsResponse:
    page = await brain.events.query(
        caller.tenant_id, AuditQuery(action_prefix="ops", newest_first=True, limit=limit)
    )
    return RowsResponse(rows=[portal_event(e) for e in page.events])


class DegradedBody(BaseModel):
    status: Literal["entered", "exited"]
    mode: str = Field(min_length=1, max_length=100)
    reason: str | None = Field(default=None, max_length=2000)
    rationale: str | None = Field(default=None, max_length=5000)


class OkResponse(BaseModel):
    ok: bool = True


@router.post("/ops/degraded", response_model=OkResponse, summary="Record entering or leaving a degraded mode")
async def ops_degraded(
    body: DegradedBody, caller: Caller = Depends(staff_caller), brain: Brain = Depends(get_brain)
) -> OkResponse:
    payload = body.model_dump()
    await brain.events.append(
        AuditDraft(
            tenant_id=caller.tenant_id,
            actor_type=caller.principal.actor_type,
            actor_id=caller.principal.actor_id,
            action=f"ops.degraded.{body.status}",
            target="local",
            rationale=body.rationale or body.reason or f"degraded mode {body.mode} {body.status}",
            approval_state=ApprovalState.NOT_APPLICABLE,
            input_hash=sha256_hex(payload),
            request_id=caller.request_id,
            correlation_id=caller.request_id,
            metadata={"mode": body.mode, "reason": body.reason, "via": "portal"},
        )
    )
    return OkResponse()


class ScorecardResponse(BaseModel):
    ok: bool = True
    scorecard: dict[str, Any]


@router.get("/ops/scorecard", response_model=ScorecardResponse, summary="Operational scorecard")
async def ops_scorecard(
    caller: Caller = Depends(staff_caller), brain: Brain = Depends(get_brain)
) -> ScorecardResponse:
    now = brain.clock.now()
    metrics: list[dict[str, Any]] = []
    latest = await brain.state_store.latest_snapshot(caller.tenant_id)
    max_age = brain.settings.snapshot_max_age_minutes
    age = None if latest is None else round((now - latest.generated_at).total_seconds() / 60.0, 1)
    fresh = age is not None and age <= max_age
    metrics.append(
        {
            "key": "snapshot_freshness",
            "label": "Latest snapshot age (minutes)",
            "value": age,
            "target": max_age,
            "status": "ok" if fresh else "breach",
        }
    )
    breaches: list[datetime] = []
    degraded = await brain.events.query(
        caller.tenant_id, AuditQuery(action_prefix="ops.degraded", newest_first=True, limit=1)
    )
    in_degraded = bool(degraded.events) and degraded.events[0].action == "ops.degraded.entered"
    metrics.append(
        {
            "key": "degraded_mode",
            "label": "Degraded mode",
            "value": degraded.events[0].metadata.get("mode") if in_degraded else None,
            "target": None,
            "status": "breach" if in_degraded else "ok",
        }
    )
    if in_degraded:
        breaches.append(degraded.events[0].at)
    overall = "ok" if all(m["status"] == "ok" for m in metrics) else "degraded"
    return ScorecardResponse(
        scorecard={
            "computedAt": iso(now),
            "overallStatus": overall,
            "lastBreachAt": iso(max(breaches)) if breaches else None,
            "metrics": metrics,
        }
    )


# --- capabilities, proposals, policy (the gateway) --------------------------------------------------


class CapabilitiesOverview(BaseModel):
    ok: bool = True
    capabilities: list[dict[str, Any]]
    proposals: list[dict[str, Any]]
    policy: dict[str, Any]
    connectors: list[dict[str, Any]]


#: the Portal shows this many recent proposals on its capabilities card
PORTAL_RECENT_PROPOSALS = 25


@router.get(
    "/capabilities", response_model=CapabilitiesOverview, summary="Registry, recent proposals, policy"
)
async def capabilities(
    caller: Caller = Depends(staff_caller), brain: Brain = Depends(get_brain)
) -> CapabilitiesOverview:
    service = brain.gateway
    principal = caller.principal
    recent = await service.list_proposals(principal, ProposalFilter(limit=PORTAL_RECENT_PROPOSALS))
    connectors: list[dict[str, Any]] = []
    health = getattr(brain, "connector_health", None)
    if health is not None:
        for h in await health.latest():
            connectors.append(
                {
                    "id": h.connector_id,
                    "ok": h.status.value == "ok",
                    "latencyMs": None if h.latency_ms is None else round(h.latency_ms, 2),
                    "status": h.status.value,
                    "breaker": h.breaker.value,
                }
            )
    return CapabilitiesOverview(
        capabilities=[capability_json(c) for c in service.capabilities()],
        proposals=[proposal_json(p) for p in recent],
        policy={
            "killSwitch": kill_switch_json(await service.kill_switch(principal)),
            "exemptions": [exemption_json(e) for e in await service.exemptions(principal)],
        },
        connectors=connectors,
    )


class BucketsResponse(BaseModel):
    ok: bool = True
    buckets: list[dict[str, Any]]


@router.get("/capabilities/quotas", response_model=BucketsResponse, summary="Rate-limit buckets")
async def quotas(
    caller: Caller = Depends(staff_caller),
    brain: Brain = Depends(get_brain),
    limit: int = Query(default=50, ge=1, le=500),
) -> BucketsResponse:
    rows = await brain.gateway.rate_buckets(caller.principal, limit=limit)
    return BucketsResponse(buckets=[bucket_json(b) for b in rows])


class ReasonBody(BaseModel):
    reason: str = Field(max_length=20_000)


class BucketResetResponse(BaseModel):
    ok: bool = True
    bucket: str


@router.post(
    "/capabilities/quotas/{bucket}/reset", response_model=BucketResetResponse, summary="Reset a bucket"
)
async def reset_quota(
    bucket: str, body: ReasonBody, caller: Caller = Depends(staff_caller), brain: Brain = Depends(get_brain)
) -> BucketResetResponse:
    await brain.gateway.reset_rate_bucket(caller.principal, bucket, body.reason)
    return BucketResetResponse(bucket=bucket)


@router.get("/capabilities/audit", response_model=RowsResponse, summary="Audit events, newest first")
async def capabilities_audit(
    caller: Caller = Depends(staff_caller),
    brain: Brain = Depends(get_brain),
    limit: int = Query(default=100, ge=1, le=10_000, description="honoured exactly (no hidden cap)"),
    action_prefix: str | None = Query(default=None, alias="actionPrefix", max_length=200),
    actor_id: str | None = Query(default=None, alias="actorId", max_length=512),
    approval_state: ApprovalState | None = Query(default=None, alias="approvalState"),
) -> RowsResponse:
    rows = await _newest_events(
        brain,
        caller.tenant_id,
        AuditQuery(
            action_prefix=action_prefix, actor_id=actor_id, approval_state=approval_state, newest_first=True
        ),
        limit,
    )
    return RowsResponse(rows=[portal_event(e) for e in rows])


async def _newest_events(
    brain: Brain,
    tenant_id: str,
    query: AuditQuery,
    limit: int,
    keep: Callable[[AuditEvent], bool] | None = None,
) -> list[AuditEvent]:
    """``limit`` newest matching events (``keep`` filters further), read in keyset pages so no single query
    is unbounded. With ``keep``, at most :data:`AUDIT_SCAN_LIMIT` events are examined."""
    store = brain.events
    out: list[AuditEvent] = []
    before: int | None = None
    scanned = 0
    while len(out) < limit and (keep is None or scanned < AUDIT_SCAN_LIMIT):
        size = AUDIT_READ_PAGE if keep is not None else min(AUDIT_READ_PAGE, limit - len(out))
        page = await store.query(tenant_id, replace(query, before_seq=before, limit=size))
        scanned += len(page.events)
        out.extend(e for e in page.events if keep is None or keep(e))
        if page.next_cursor is None or not page.events:
            break
        before = page.next_cursor
    return out[:limit]


#: how many events the filtered Portal views (delegation traces, rate-limit events) look back through
AUDIT_SCAN_LIMIT = 20_000
#: page size of the keyset reads behind the Portal's audit paths
AUDIT_READ_PAGE = 1000


class ExportResponse(BaseModel):
    ok: bool = True
    bundle: dict[str, Any]


@router.get("/capabilities/audit/export", response_model=ExportResponse, summary="Audit export bundle")
async def capabilities_audit_export(
    caller: Caller = Depends(staff_caller),
    brain: Brain = Depends(get_brain),
    limit: int = Query(default=500, ge=1, le=10_000, description="newest events; honoured exactly"),
) -> ExportResponse:
    newest = await _newest_events(brain, caller.tenant_id, AuditQuery(newest_first=True), limit)
    rows = [portal_event(e) for e in reversed(newest)]  # oldest first, as a chain reads
    audit = getattr(brain, "audit", None)
    public_key: str | None = audit.public_key if audit is not None else None
    manifest = {
        "rowCount": len(rows),
        "payloadHash": sha256_hex([r["hash"] for r in rows]),
        "rowHashes": [r["hash"] for r in rows],
        "firstAt": rows[0]["at"] if rows else None,
        "lastAt": rows[-1]["at"] if rows else None,
        "firstSeq": rows[0]["seq"] if rows else None,
        "lastSeq": rows[-1]["seq"] if rows else None,
        # each row carries its chain hash; the chain's own Ed25519 checkpoints sign it (see audit verify)
        "signature": None,
        "signatureAlgorithm": "sha256-hash-chain+ed25519-checkpoints",
        "publicKey": public_key,
    }
    return ExportResponse(bundle={"generatedAt": iso(brain.clock.now()), "manifest": manifest, "rows": rows})


@router.get("/capabilities/delegation/traces", response_model=RowsResponse, summary="What agents did")
async def delegation_traces(
    caller: Caller = Depends(staff_caller), brain: Brain = Depends(get_brain), limit: int = Limit
) -> RowsResponse:
    rows = await _newest_events(
        brain,
        caller.tenant_id,
        AuditQuery(action_prefix="capability", newest_first=True),
        limit,
        keep=lambda e: e.actor_type is ActorType.AGENT,
    )
    return RowsResponse(rows=[portal_event(e) for e in rows])


@router.get("/capabilities/rate-limits/events", response_model=RowsResponse, summary="Rate-limit refusals")
async def rate_limit_events(
    caller: Caller = Depends(staff_caller), brain: Brain = Depends(get_brain), limit: int = Limit
) -> RowsResponse:
    rows = await _newest_events(
        brain,
        caller.tenant_id,
        AuditQuery(action_prefix="capability.decision.refused", newest_first=True),
        limit,
        keep=_rate_limited,
    )
    return RowsResponse(rows=[portal_event(e) for e in rows])


def _rate_limited(event: AuditEvent) -> bool:
    decision = event.metadata.get("decision")
    return isinstance(decision, dict) and decision.get("reasonCode") in {"RATE_LIMITED", "COOLDOWN_ACTIVE"}


class LintResponse(BaseModel):
    ok: bool = True
    checkedAt: str | None
    capabilitiesChecked: int
    violations: list[dict[str, Any]]


@router.get("/capabilities/policy-lint", response_model=LintResponse, summary="Registry policy problems")
async def policy_lint(brain: Brain = Depends(get_brain)) -> LintResponse:
    service = brain.gateway
    return LintResponse(
        checkedAt=iso(brain.clock.now()),
        capabilitiesChecked=len(service.capabilities()),
        violations=[violation_json(v) for v in service.lint()],
    )


class PortalCreateBody(BaseModel):
    """The Portal's payload. Identity and tenant fields are accepted but ignored: they come from the token."""

    capabilityId: str = Field(min_length=1, max_length=200)
    rationale: str = Field(default="", max_length=20_000)
    previewSummary: str | None = Field(default=None, max_length=2000)
    requestInput: dict[str, Any] = Field(default_factory=dict)
    expectedEffects: list[Any] | None = Field(default=None, max_length=200)
    actorType: str | None = Field(default=None, max_length=50)
    actorId: str | None = Field(default=None, max_length=512)
    ownerUid: str | None = Field(default=None, max_length=512)
    tenantId: str | None = Field(default=None, max_length=200)
    requestedBy: str | None = Field(default=None, max_length=512)


class PortalDecisionResponse(BaseModel):
    ok: bool = True
    decision: dict[str, Any]
    proposal: dict[str, Any] | None


@router.post(
    "/capabilities/proposals",
    status_code=201,
    response_model=PortalDecisionResponse,
    summary="Create a proposal (Portal payload)",
)
async def create_proposal(
    body: PortalCreateBody, caller: Caller = Depends(staff_caller), brain: Brain = Depends(get_brain)
) -> JSONResponse:
    service = brain.gateway
    try:
        created = await service.create_proposal(
            caller.principal,
            body.capabilityId,
            body.requestInput,
            body.rationale,
            predicted_effects=body.expectedEffects,
            request_id=caller.request_id,
        )
    except PolicyRefused as refused:
        return _refusal(refused, None)
    payload = PortalDecisionResponse(
        decision=_decision(created.decision.as_json()), proposal=proposal_json(created.proposal)
    )
    return JSONResponse(payload.model_dump(mode="json"), status_code=201)


def _decision(decision: dict[str, Any]) -> dict[str, Any]:
    """Our decision, with the Portal's approvalState set (it has no ``not_applicable``)."""
    state = decision.get("approvalState")
    return {**decision, "approvalState": "exempt" if state == "not_applicable" else state}


def _refusal(refused: PolicyRefused, proposal: Proposal | None) -> JSONResponse:
    """The Portal's refusal shape: 409 (403 for who-is-asking refusals) with decision.reasonCode."""
    body = {
        "ok": False,
        "message": refused.message,
        "reasonCode": refused.reason_code,
        "proposal": proposal_json(proposal) if proposal is not None else None,
        "decision": {
            "allowed": False,
            "reasonCode": refused.reason_code,
            "approvalState": _decision({"approvalState": proposal.approval_state.value})["approvalState"]
            if proposal is not None
            else "required",
            "detail": refused.message,
        },
    }
    return JSONResponse(body, status_code=status_for(refused))


async def _proposal_or_none(brain: Brain, principal: Principal, proposal_id: str) -> Proposal | None:
    try:
        found: Proposal = await brain.gateway.get(principal, proposal_id)
    except NotFound:
        return None
    return found


class ProposalResponse(BaseModel):
    ok: bool = True
    proposal: dict[str, Any]


class ApproveBody(BaseModel):
    approvedBy: str | None = Field(default=None, max_length=512, description="ignored: the token says who")
    rationale: str = Field(default="", max_length=20_000)


@router.post(
    "/capabilities/proposals/{proposal_id}/approve", response_model=ProposalResponse, summary="Approve"
)
async def approve(
    proposal_id: str,
    body: ApproveBody,
    caller: Caller = Depends(staff_caller),
    brain: Brain = Depends(get_brain),
) -> JSONResponse:
    try:
        proposal = await brain.gateway.approve(
            caller.principal, proposal_id, body.rationale, request_id=caller.request_id
        )
    except PolicyRefused as refused:
        return _refusal(refused, await _proposal_or_none(brain, caller.principal, proposal_id))
    return JSONResponse({"ok": True, "proposal": proposal_json(proposal)})


@router.post(
    "/capabilities/proposals/{proposal_id}/reject", response_model=ProposalResponse, summary="Reject"
)
async def reject(
    proposal_id: str,
    body: ReasonBody,
    caller: Caller = Depends(staff_caller),
    brain: Brain = Depends(get_brain),
) -> JSONResponse:
    try:
        proposal = await brain.gateway.reject(
            caller.principal, proposal_id, body.reason, request_id=caller.request_id
        )
    except PolicyRefused as refused:
        return _refusal(refused, await _proposal_or_none(brain, caller.principal, proposal_id))
    return JSONResponse({"ok": True, "proposal": proposal_json(proposal)})


@router.post(
    "/capabilities/proposals/{proposal_id}/reopen",
    response_model=ProposalResponse,
    summary="Reopen (not supported: decisions are final here; always a 409 refusal, audited)",
)
async def reopen(
    proposal_id: str,
    body: ReasonBody,
    caller: Caller = Depends(staff_caller),
    brain: Brain = Depends(get_brain),
) -> JSONResponse:
    proposal = await brain.gateway.get(caller.principal, proposal_id)
    refused = PolicyRefused(
        ReasonCode.INVALID_TRANSITION,
        f"a {proposal.status.value} proposal cannot be reopened: decisions are final; create a new proposal",
    )
    await _audit_refusal(brain, caller, "capability.proposal.reopen", proposal, refused, body.reason)
    return _refusal(refused, proposal)


class RollbackBody(BaseModel):
    idempotencyKey: str | None = Field(default=None, max_length=200)
    reason: str = Field(default="", max_length=20_000)


@router.post(
    "/capabilities/proposals/{proposal_id}/rollback",
    summary="Roll back (not supported: propose the reverse action instead; always a 409 refusal, audited)",
)
async def rollback(
    proposal_id: str,
    body: RollbackBody,
    caller: Caller = Depends(staff_caller),
    brain: Brain = Depends(get_brain),
) -> JSONResponse:
    proposal = await brain.gateway.get(caller.principal, proposal_id)
    refused = PolicyRefused(
        ReasonCode.INVALID_TRANSITION,
        "this brain does not roll executions back automatically; propose the reverse action for approval",
    )
    await _audit_refusal(brain, caller, "capability.proposal.rollback", proposal, refused, body.reason)
    return _refusal(refused, proposal)


async def _audit_refusal(
    brain: Brain, caller: Caller, attempted: str, proposal: Proposal, refused: PolicyRefused, rationale: str
) -> None:
    decision = {
        "allowed": False,
        "reasonCode": refused.reason_code,
        "approvalState": proposal.approval_state.value,
        "detail": refused.message,
    }
    await brain.events.append(
        AuditDraft(
            tenant_id=caller.tenant_id,
            actor_type=caller.principal.actor_type,
            actor_id=caller.principal.actor_id,
            action="capability.decision.refused",
            target=proposal.target,
            capability_id=proposal.capability_id,
            rationale=rationale or refused.message,
            approval_state=proposal.approval_state,
            input_hash=proposal.input_hash,
            request_id=caller.request_id,
            correlation_id=proposal.correlation_id,
            metadata={
                "attempted": attempted,
                "decision": decision,
                "proposalId": proposal.id,
                "via": "portal",
            },
        )
    )


class DryRunResponse(BaseModel):
    ok: bool = True
    proposalId: str
    dryRun: dict[str, Any]


@router.get("/capabilities/proposals/{proposal_id}/dry-run", response_model=DryRunResponse, summary="Dry run")
async def dry_run(
    proposal_id: str, caller: Caller = Depends(staff_caller), brain: Brain = Depends(get_brain)
) -> DryRunResponse:
    result = await brain.gateway.dry_run(caller.principal, proposal_id, request_id=caller.request_id)
    return DryRunResponse(proposalId=proposal_id, dryRun=result)


class PortalExecuteBody(BaseModel):
    """The Portal's payload; identity, tenant and ``output`` are ignored (the connector produces output)."""

    idempotencyKey: str | None = Field(default=None, min_length=1, max_length=200)
    actorType: str | None = Field(default=None, max_length=50)
    actorId: str | None = Field(default=None, max_length=512)
    ownerUid: str | None = Field(default=None, max_length=512)
    tenantId: str | None = Field(default=None, max_length=200)
    output: Any = None


@router.post(
    "/capabilities/proposals/{proposal_id}/execute",
    response_model=PortalDecisionResponse,
    summary="Execute an approved proposal (409 refusal with decision.reasonCode; 502 when the device call failed)",
)
async def execute(
    proposal_id: str,
    body: PortalExecuteBody,
    caller: Caller = Depends(staff_caller),
    brain: Brain = Depends(get_brain),
) -> JSONResponse:
    try:
        done = await brain.gateway.execute(
            caller.principal, proposal_id, idempotency_key=body.idempotencyKey, request_id=caller.request_id
        )
    except PolicyRefused as refused:
        return _refusal(refused, await _proposal_or_none(brain, caller.principal, proposal_id))
    payload: dict[str, Any] = {
        "ok": done.proposal.status is Status.EXECUTED,
        "proposal": proposal_json(done.proposal),
        "decision": _decision(done.decision.as_json()),
        "replayed": done.replayed,
    }
    if done.proposal.status is Status.EXECUTED:
        return JSONResponse(payload)
    # the policy allowed it but the device call did not succeed: the Portal must show why, not "executed"
    payload["message"] = (
        f"the device call failed: {done.proposal.error}"
        if done.proposal.status is Status.FAILED
        else "the device call's outcome is unknown; check the device before retrying"
    )
    payload["reasonCode"] = "EXECUTION_FAILED" if done.proposal.status is Status.FAILED else "OUTCOME_UNKNOWN"
    return JSONResponse(payload, status_code=502)


class KillSwitchBody(BaseModel):
    enabled: bool
    rationale: str = Field(default="", max_length=20_000)


class KillSwitchResponse(BaseModel):
    ok: bool = True
    killSwitch: dict[str, Any]


@router.post(
    "/capabilities/policy/kill-switch", response_model=KillSwitchResponse, summary="Global kill switch"
)
async def kill_switch(
    body: KillSwitchBody, caller: Caller = Depends(staff_caller), brain: Brain = Depends(get_brain)
) -> KillSwitchResponse:
    service = brain.gateway
    await service.set_kill_switch(caller.principal, enabled=body.enabled, rationale=body.rationale)
    return KillSwitchResponse(killSwitch=kill_switch_json(await service.kill_switch(caller.principal)))


class PortalExemptionBody(BaseModel):
    capabilityId: str = Field(min_length=1, max_length=200)
    ownerUid: str | None = Field(default=None, min_length=1, max_length=512)
    justification: str = Field(default="", max_length=20_000)
    expiresAt: datetime | None = None


class ExemptionResponse(BaseModel):
    ok: bool = True
    exemption: dict[str, Any]


@router.post(
    "/capabilities/policy/exemptions",
    status_code=201,
    response_model=ExemptionResponse,
    summary="Create exemption",
)
async def create_exemption(
    body: PortalExemptionBody, caller: Caller = Depends(staff_caller), brain: Brain = Depends(get_brain)
) -> ExemptionResponse:
    exemption = await brain.gateway.create_exemption(
        caller.principal,
        capability_id=body.capabilityId,
        justification=body.justification,
        lifetime=exemption_lifetime(body.expiresAt, brain.clock.now()),
        actor_id=body.ownerUid,
    )
    return ExemptionResponse(exemption=exemption_json(exemption))


@router.post(
    "/capabilities/policy/exemptions/{exemption_id}/revoke",
    response_model=ExemptionResponse,
    summary="Revoke",
)
async def revoke_exemption(
    exemption_id: str,
    body: ReasonBody,
    caller: Caller = Depends(staff_caller),
    brain: Brain = Depends(get_brain),
) -> ExemptionResponse:
    exemption = await brain.gateway.revoke_exemption(caller.principal, exemption_id, body.reason)
    return ExemptionResponse(exemption=exemption_json(exemption))


# --- swarm drafts ------------------------------------------------------------------------------------

DraftLimit = Query(default=30, ge=1, le=500)


@router.get("/ops/recommendations/drafts", response_model=RowsResponse, summary="Ops recommendation drafts")
async def ops_drafts(
    caller: Caller = Depends(staff_caller), brain: Brain = Depends(get_brain), limit: int = DraftLimit
) -> RowsResponse:
    return RowsResponse(rows=await brain.drafts.list_rows(caller.principal, DraftKind.OPS, limit=limit))


@router.get("/marketing/drafts", response_model=RowsResponse, summary="Marketing copy drafts")
async def marketing_drafts(
    caller: Caller = Depends(staff_caller), brain: Brain = Depends(get_brain), limit: int = DraftLimit
) -> RowsResponse:
    return RowsResponse(rows=await brain.drafts.list_rows(caller.principal, DraftKind.MARKETING, limit=limit))


@router.get(
    "/finance/reconciliation/drafts", response_model=RowsResponse, summary="Finance reconciliation drafts"
)
async def finance_drafts(
    caller: Caller = Depends(staff_caller), brain: Brain = Depends(get_brain), limit: int = DraftLimit
) -> RowsResponse:
    return RowsResponse(rows=await brain.drafts.list_rows(caller.principal, DraftKind.FINANCE, limit=limit))


class ReviewBody(BaseModel):
    toStatus: str = Field(min_length=1, max_length=50)
    rationale: str = Field(default="", max_length=20_000)


class ReviewResponse(BaseModel):
    ok: bool = True
    draftId: str
    fromStatus: str
    toStatus: str


@router.post(
    "/marketing/drafts/{draft_id}/review", response_model=ReviewResponse, summary="Review marketing copy"
)
async def review_marketing(
    draft_id: str, body: ReviewBody, caller: Caller = Depends(staff_caller), brain: Brain = Depends(get_brain)
) -> ReviewResponse:
    result = await brain.drafts.review_marketing(caller.principal, draft_id, body.toStatus, body.rationale)
    return ReviewResponse(
        draftId=draft_id, fromStatus=str(result["fromStatus"]), toStatus=str(result["toStatus"])
    )
