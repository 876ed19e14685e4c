"""JSON shapes of gateway objects, shared by the native API and the Portal paths.

Proposals carry the Portal's ``ActionProposal`` fields (with the Portal's five statuses in ``status``)
plus our richer ones (``brainStatus``, approvals, hashes…), so one shape serves both surfaces.
"""

from __future__ import annotations

from typing import Any

from studio_brain.domain.audit import AuditEvent
from studio_brain.domain.capabilities import Capability, Violation
from studio_brain.domain.policy import Exemption, KillSwitchEntry, RateBucket
from studio_brain.domain.proposals import Proposal
from studio_brain.web.deps import iso


def proposal_json(p: Proposal, *, binding: str | None = None) -> dict[str, Any]:
    """``binding`` is ``bindingHash`` (what approvals bind to, ``GatewayService.binding``: keyed with the
    brain's key), worth it on a detail view, not on every row of a list."""
    last = p.approvals[-1] if p.approvals else None
    summary = p.extra.get("previewSummary") if isinstance(p.extra.get("previewSummary"), str) else None
    return {
        "id": p.id,
        "createdAt": iso(p.created_at),
        "updatedAt": iso(p.updated_at),
        "requestedBy": p.requested_by,
        "requesterType": p.requester_type.value,
        "tenantId": p.tenant_id,
        "capabilityId": p.capability_id,
        "registryVersion": p.registry_version,
        "target": p.target,
        "rationale": p.rationale,
        "inputHash": p.input_hash,
        "predictedEffectsHash": p.predicted_effects_hash,
        "bindingHash": binding,
        "preview": {
            "summary": summary or p.rationale,
            "input": p.input,
            "expectedEffects": p.predicted_effects,
            "statusNote": p.status.portal_note,
        },
        # predictedEffects are the server's (the connector's dry run; approvals bind to them). What the
        # requester claimed is kept apart, labelled as a claim; effectsPrediction says when none exists.
        "predictedEffects": p.predicted_effects,
        "effectsPrediction": effects_prediction(p),
        "claimedEffects": p.extra.get("claimedEffects"),
        # the Portal knows draft|pending_approval|approved|rejected|executed; brainStatus is ours, and
        # statusReason says in words what the nearest Portal status leaves out (executing, failed, unknown)
        "status": p.status.portal_status,
        "statusReason": p.status.portal_note,
        "brainStatus": p.status.value,
        "approvalState": p.approval_state.value,
        "approvedBy": last.approver_id if last is not None and p.approved_at is not None else None,
        "approvedAt": iso(p.approved_at),
        "approvalExpiresAt": iso(p.approval_expires_at),
        "approvals": [
            {
                "approverId": a.approver_id,
                "approverType": a.approver_type.value,
                "at": iso(a.at),
                "rationale": a.rationale,
            }
            for a in p.approvals
        ],
        "decidedBy": p.decided_by,
        "decisionRationale": p.decision_rationale,
        "exemptionId": p.exemption_id,
        "executedBy": p.executed_by,
        "executionStartedAt": iso(p.execution_started_at),
        "executionFinishedAt": iso(p.execution_finished_at),
        "outputHash": p.output_hash,
        "result": p.result,
        "error": p.error,
        "correlationId": p.correlation_id,
        "version": p.version,
    }


def effects_prediction(p: Proposal) -> str:
    """``server`` (a dry run computed the effects), or why there is no prediction (``unavailable`` /
    ``failed: <kind>``: the connector has no dry run, or it failed)."""
    dry_run = p.extra.get("dryRun")
    if isinstance(dry_run, str):
        return dry_run
    return "server" if p.predicted_effects else "unavailable"


def capability_json(c: Capability) -> dict[str, Any]:
    return {
        "id": c.id,
        "target": c.target.value,
        "description": c.description,
        "readOnly": not c.is_write,
        "requiresApproval": c.requires_approval,
        "maxCallsPerHour": c.rate_limit.per_hour,
        "risk": c.risk.value,
        "policyMetadata": {
            "riskClass": c.risk_class.value,
            "approvalsRequired": c.approvals_required,
            "approvalTtlSeconds": c.approval_ttl_seconds,
            "burstPerMinute": c.rate_limit.burst,
            "cooldownSeconds": c.cooldown_seconds,
            "timeoutBudgetSeconds": c.timeout_budget_seconds,
            "dryRun": c.dry_run.value,
            "exclusive": c.exclusive,
            "exemptable": c.exemptable,
            "action": c.action,
            "inputSchema": c.input_schema,
            # issue 15: write policies as data
            "allowedHours": [str(w) for w in c.allowed_hours],
            "twoPerson": c.two_person,
            "cloudWrite": c.is_cloud_write,
        },
    }


def violation_json(v: Violation) -> dict[str, Any]:
    return {"capabilityId": v.capability_id, "code": v.code, "message": v.message}


def kill_switch_json(entries: list[KillSwitchEntry]) -> dict[str, Any]:
    """The Portal's single ``killSwitch`` object (the global switch) plus per-capability switches."""
    global_entry = next((e for e in entries if e.scope == "*"), None)
    return {
        "enabled": bool(global_entry and global_entry.enabled),
        "updatedAt": iso(global_entry.updated_at) if global_entry else None,
        "updatedBy": global_entry.updated_by if global_entry else None,
        "rationale": global_entry.rationale if global_entry else None,
        "capabilities": [
            {
                "capabilityId": e.scope,
                "enabled": e.enabled,
                "updatedAt": iso(e.updated_at),
                "updatedBy": e.updated_by,
                "rationale": e.rationale,
            }
            for e in entries
            if e.scope != "*"
        ],
    }


def exemption_json(e: Exemption) -> dict[str, Any]:
    return {
        "id": e.id,
        "tenantId": e.tenant_id,
        "capabilityId": e.capability_id,
        "ownerUid": e.actor_id,
        "target": e.target,
        "justification": e.justification,
        "createdBy": e.created_by,
        "createdAt": iso(e.created_at),
        "expiresAt": iso(e.expires_at),
        "revokedAt": iso(e.revoked_at),
        "revokedBy": e.revoked_by,
        "revokeReason": e.revoke_reason,
    }


def bucket_json(b: RateBucket) -> dict[str, Any]:
    return {"bucket": b.bucket, "windowStart": iso(b.window_start), "count": b.count}


#: the fields of a proposal record an audit *list* row keeps (issue 18: every gateway event carries the
#: whole record, ~1.7 KB; a page of 100 shipped 240 KB). The detail route has the record in full.
_PROPOSAL_SUMMARY_FIELDS = ("id", "capabilityId", "status", "version", "requestedBy", "approvalState")

#: metadata a list row leaves to the detail route: how the actor authenticated (which credential, via
#: what) is evidence for one event, not something a page of them is scanned for; ``actorId`` says who
_DETAIL_ONLY_METADATA = frozenset({"credential"})


def _list_metadata(metadata: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """A list row's metadata. Nested records repeat row fields (a decision's or a proposal's
    ``capabilityId`` and ``approvalState``): a list row says them once, at the top, when the nested value
    is the same. Plain statements, no comprehensions or helper calls: this runs for every row of a page
    (bench/audit_page_bytes.py counts the calls)."""
    capability, state = row["capabilityId"], row["approvalState"]
    listed: dict[str, Any] = {}
    for key, value in metadata.items():
        if key in _DETAIL_ONLY_METADATA:
            continue
        if type(value) is dict:  # what JSON decoding makes (isinstance would be one more call per value)
            fresh = False
            if key == "proposal":
                summary: dict[str, Any] = {}
                for k in _PROPOSAL_SUMMARY_FIELDS:
                    if k in value:
                        summary[k] = value[k]
                if "id" in summary and "proposalId" in metadata and summary["id"] == metadata["proposalId"]:
                    del summary["id"]  # said once, as metadata.proposalId
                summary["summarised"] = True
                value, fresh = summary, True
            drop_capability = "capabilityId" in value and value["capabilityId"] == capability
            drop_state = "approvalState" in value and value["approvalState"] == state
            if drop_capability or drop_state:
                if not fresh:
                    value = dict(value)  # the event's own metadata is never changed
                if drop_capability:
                    del value["capabilityId"]
                if drop_state:
                    del value["approvalState"]
        listed[key] = value
    return listed


def event_json(event: AuditEvent, *, full: bool = False) -> dict[str, Any]:
    """An audit event for reading: the Portal's ``AuditEvent`` fields plus seq and ids; ``full`` adds the
    per-event detail (tenant, request id, chain hashes, all of the metadata).

    Deliberately not the canonical export form (``event_to_json``): that one is for verification and
    costs several times more CPU per row; downloads use it, pages do not need it. A list row (``full``
    False, issue 18: a page of 100 lifecycle events fits in 80 KB) keeps what a list shows and filters on
    — who, what, when, the outcome, the hashes of input and output, the correlation id — and ``detail``
    names the route with the rest: ``tenantId`` (every row of a page is the caller's), ``requestId``,
    ``prevHash`` and ``hash`` (the detail's ``ETag``), ``metadata.credential``, the proposal record beyond
    its summary (``summarised: true``; its ``id`` too when ``metadata.proposalId`` names it), and nested
    copies of the row's ``capabilityId`` / ``approvalState``. Every other metadata key is kept as it is.
    """
    row: dict[str, Any] = {
        "id": event.id,
        "seq": event.seq,
        "at": iso(event.at),
        "actorType": event.actor_type.value,
        "actorId": event.actor_id,
        "action": event.action,
        "capabilityId": event.capability_id,
        "target": event.target,
        "rationale": event.rationale,
        "approvalState": event.approval_state.value,
        "inputHash": event.input_hash,
        "outputHash": event.output_hash,
        "correlationId": event.correlation_id,
    }
    if not full:
        row["metadata"] = _list_metadata(event.metadata, row)
        row["detail"] = f"/api/v1/audit/{event.seq}"
        return row
    row.update(
        tenantId=event.tenant_id,
        requestId=event.request_id,
        metadata=dict(event.metadata),
        prevHash=event.prev_hash,
        hash=event.hash,
        detail=f"/api/v1/audit/{event.seq}",
    )
    return row
