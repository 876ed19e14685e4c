"""Where the Portal's body and answer are the native API's, one handler serves both paths (issue 20.4):
the same endpoint function is routed twice, and the Portal path answers with the native superset."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute

from studio_brain.web.portal import capabilities as portal_capabilities
from studio_brain.web.portal import drafts as portal_drafts
from studio_brain.web.portal import policy as portal_policy
from studio_brain.web.portal import proposals as portal_proposals
from tests.fixtures.auth import TEST_ADMIN_TOKEN, TokenMinter

pytestmark = pytest.mark.postgres

#: (method, Portal path, native path)
SHARED = [
    ("POST", "/api/capabilities/policy/kill-switch", "/api/v1/policy/kill-switch"),
    ("POST", "/api/capabilities/policy/exemptions", "/api/v1/policy/exemptions"),
    (
        "POST",
        "/api/capabilities/policy/exemptions/{exemption_id}/revoke",
        "/api/v1/policy/exemptions/{exemption_id}/revoke",
    ),
    ("GET", "/api/capabilities/quotas", "/api/v1/policy/rate-buckets"),
    ("GET", "/api/capabilities/policy-lint", "/api/v1/capabilities/lint"),
    ("POST", "/api/capabilities/proposals/{proposal_id}/approve", "/api/v1/proposals/{proposal_id}/approve"),
    ("GET", "/api/capabilities/proposals/{proposal_id}/dry-run", "/api/v1/proposals/{proposal_id}/dry-run"),
    ("POST", "/api/capabilities/quotas/{bucket}/reset", "/api/v1/policy/rate-buckets/{bucket}/reset"),
    ("POST", "/api/marketing/drafts/{draft_id}/review", "/api/v1/drafts/marketing/{draft_id}/review"),
]


def _endpoints(router: APIRouter, prefix: str = "") -> dict[tuple[str, str], Any]:
    """(method, full path) -> endpoint function of every route under ``router``."""
    return {
        (method, prefix + route.path): route.endpoint
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }


def test_the_portal_and_native_paths_of_one_operation_are_served_by_the_same_handler() -> None:
    from studio_brain.web.api import drafts, policy, proposals

    native = (
        _endpoints(policy.policy_router, "/api/v1")
        | _endpoints(policy.capabilities_router, "/api/v1")
        | _endpoints(drafts.router, "/api/v1")
        | _endpoints(proposals.router, "/api/v1")
    )
    served: dict[tuple[str, str], Any] = {}
    for module in (portal_policy, portal_capabilities, portal_drafts, portal_proposals):
        served |= _endpoints(module.router)
    served |= _endpoints(portal_proposals.shared)
    for method, portal_path, native_path in SHARED:
        assert (method, portal_path) in served, portal_path
        assert (method, native_path) in native, native_path
        assert served[(method, portal_path)] is native[(method, native_path)], portal_path


async def test_a_quota_reset_on_the_portal_path_answers_the_portal_shape_and_is_staff_only(
    api_client: httpx.AsyncClient, tokens: TokenMinter
) -> None:
    staff = {**tokens.headers("staff-1", staff=True), "x-studio-brain-admin-token": TEST_ADMIN_TOKEN}
    member = tokens.headers("member-1", roles=["member"])
    body = {"reason": "a test burst filled the bucket"}
    refused = await api_client.post(
        "/api/capabilities/quotas/studio.note.append/reset", json=body, headers=member
    )
    assert refused.status_code == 403
    answer = await api_client.post(
        "/api/capabilities/quotas/studio.note.append/reset", json=body, headers=staff
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["ok"] is True
    assert answer.json()["bucket"] == "studio.note.append"
    buckets = await api_client.get("/api/capabilities/quotas?limit=50", headers=staff)
    assert buckets.status_code == 200
    assert isinstance(buckets.json()["buckets"], list)
