"""Portal capability paths: the registry overview card, quota buckets, the audit views (rows, export,
delegation traces, rate-limit refusals) and the policy lint. Reads only, through the gateway and
``services/portal.py``."""

from __future__ import annotations

from typing import Any

from fastapi import Query, Request, Response
from pydantic import BaseModel

from studio_brain.domain.audit import ApprovalState, AuditQuery
from studio_brain.ports.gateway import ProposalFilter
from studio_brain.services.portal import is_agent_call, is_rate_limit_refusal
from studio_brain.web.api import policy as native_policy
from studio_brain.web.api.shapes import (
    capability_json,
    exemption_json,
    kill_switch_json,
    proposal_json,
)
from studio_brain.web.audit_pages import PAGE_ETAG, PAGE_NOT_MODIFIED, audit_pages_of
from studio_brain.web.conditional import EncodedByVersion, json_bytes
from studio_brain.web.deps import Audit, ConnectorHealth, Gateway, StaffCaller, iso
from studio_brain.web.encoding import dumps
from studio_brain.web.portal.common import Desk, Limit, RowsResponse, portal_event, portal_router

router = portal_router()

#: the Portal shows this many recent proposals on its capabilities card
PORTAL_RECENT_PROPOSALS = 25


class CapabilitiesOverview(BaseModel):
    ok: bool = True
    capabilities: list[dict[str, Any]]
    proposals: list[dict[str, Any]]
    policy: dict[str, Any]
    connectors: list[dict[str, Any]]


@router.get(
    "/capabilities", response_model=CapabilitiesOverview, summary="Registry, recent proposals, policy"
)
async def capabilities(
    request: Request, caller: StaffCaller, gateway: Gateway, health: ConnectorHealth
) -> Response:
    principal = caller.principal
    where = ProposalFilter(limit=PORTAL_RECENT_PROPOSALS)
    # issue 18: the card is encoded once per version — the registry's, the overview's mark (which row
    # versions it shows, and the audit chain's head) and the connectors' health as listed now — and read
    # and encoded again only when one of them moved
    mark = await gateway.overview_mark(principal, where)
    connectors = [
        {
            "id": h.connector_id,
            "ok": h.status.value == "ok",
            "latencyMs": None if h.latency_ms is None else round(h.latency_ms, 2),
            "status": h.status.value,
            "breaker": h.breaker.value,
        }
        for h in await health.latest()
    ]
    cards = cards_of(request)
    body = cards.get(principal.tenant_id, (gateway.registry.version, mark, connectors))
    if body is None:
        overview = await gateway.overview(principal, where)
        # plain JSON built here, encoded once (web/encoding.py); CapabilitiesOverview documents the shape
        body = dumps(
            {
                "ok": True,
                "capabilities": [capability_json(c) for c in gateway.capabilities()],
                "proposals": [proposal_json(p) for p in overview.proposals],
                "policy": {
                    "killSwitch": kill_switch_json(overview.kill_switch),
                    "exemptions": [exemption_json(e) for e in overview.exemptions],
                },
                "connectors": connectors,
            }
        )
        # kept under what was read (a change between the two reads is named by the newer mark)
        cards.put(principal.tenant_id, (gateway.registry.version, overview.mark, connectors), body)
    return json_bytes(body, {})


def cards_of(request: Request) -> EncodedByVersion:
    """The app's encoded cards, one version per tenant (``create_app`` binds them with its brain)."""
    cards: EncodedByVersion = request.app.state.capability_cards
    return cards


# quota buckets: the Portal's shapes are the native API's ({ok, buckets} and {ok, bucket, reset}), so the
# native handlers serve both paths
router.add_api_route(
    "/capabilities/quotas",
    native_policy.rate_buckets,
    methods=["GET"],
    response_model=native_policy.BucketsResponse,
    summary="Rate-limit buckets (the native handler)",
)
router.add_api_route(
    "/capabilities/quotas/{bucket}/reset",
    native_policy.reset_rate_bucket,
    methods=["POST"],
    response_model=native_policy.ResetResponse,
    summary="Reset a bucket (the native handler)",
)


@router.get(
    "/capabilities/audit",
    response_model=RowsResponse,
    summary="Audit events, newest first",
    description=PAGE_ETAG,
    responses=PAGE_NOT_MODIFIED,
)
async def capabilities_audit(
    request: Request,
    caller: StaffCaller,
    desk: Desk,
    limit: int = Query(default=100, ge=1, le=10_000, description="honoured exactly (no hidden cap)"),
    action_prefix: str | None = Query(default=None, alias="actionPrefix", max_length=200),
    actor_id: str | None = Query(default=None, alias="actorId", max_length=512),
    approval_state: ApprovalState | None = Query(default=None, alias="approvalState"),
) -> Response:
    query = AuditQuery(
        action_prefix=action_prefix, actor_id=actor_id, approval_state=approval_state, newest_first=True
    )
    tenant = caller.tenant_id

    async def encode() -> bytes:
        rows = await desk.newest_events(tenant, query, limit)
        return dumps({"ok": True, "rows": [portal_event(e) for e in rows]})  # RowsResponse

    # issue 18: encoded once per chain head (web/audit_pages.py), with the head as its ETag
    return await audit_pages_of(request).respond(request, desk, tenant, ("portal", query, limit), encode)


class ExportResponse(BaseModel):
    ok: bool = True
    bundle: dict[str, Any]


@router.get("/capabilities/audit/export", response_model=ExportResponse, summary="Audit export bundle")
async def capabilities_audit_export(
    caller: StaffCaller,
    desk: Desk,
    audit: Audit,
    limit: int = Query(default=500, ge=1, le=10_000, description="newest events; honoured exactly"),
) -> ExportResponse:
    export = await desk.export(caller.tenant_id, limit, audit.public_key)
    # oldest first, as a chain reads; full rows (hashes, request ids, metadata in full): an export is evidence
    rows = [portal_event(e, full=True) for e in export.rows]
    manifest = {
        "rowCount": len(rows),
        "payloadHash": export.payload_hash,
        "rowHashes": export.row_hashes,
        "firstAt": rows[0]["at"] if rows else None,
        "lastAt": rows[-1]["at"] if rows else None,
        "firstSeq": rows[0]["seq"] if rows else None,
        "lastSeq": rows[-1]["seq"] if rows else None,
        # each row carries its chain hash; the chain's own Ed25519 checkpoints sign it (see audit verify)
        "signature": None,
        "signatureAlgorithm": "sha256-hash-chain+ed25519-checkpoints",
        "publicKey": export.public_key,
    }
    return ExportResponse(bundle={"generatedAt": iso(desk.now()), "manifest": manifest, "rows": rows})


@router.get("/capabilities/delegation/traces", response_model=RowsResponse, summary="What agents did")
async def delegation_traces(caller: StaffCaller, desk: Desk, limit: int = Limit) -> RowsResponse:
    rows = await desk.newest_events(
        caller.tenant_id, AuditQuery(action_prefix="capability", newest_first=True), limit, keep=is_agent_call
    )
    return RowsResponse(rows=[portal_event(e) for e in rows])


@router.get("/capabilities/rate-limits/events", response_model=RowsResponse, summary="Rate-limit refusals")
async def rate_limit_events(caller: StaffCaller, desk: Desk, limit: int = Limit) -> RowsResponse:
    rows = await desk.newest_events(
        caller.tenant_id,
        AuditQuery(action_prefix="capability.decision.refused", newest_first=True),
        limit,
        keep=is_rate_limit_refusal,
    )
    return RowsResponse(rows=[portal_event(e) for e in rows])


# the lint's answer is the native API's: one handler serves both paths
router.add_api_route(
    "/capabilities/policy-lint",
    native_policy.lint,
    methods=["GET"],
    response_model=native_policy.LintResponse,
    summary="Registry policy problems (the native handler)",
)
