"""Portal policy paths: the global kill switch and exemptions. The Portal's bodies and shapes are the native
API's (``web/api/policy.py``), so one handler per operation serves both paths; the gateway decides and
audits."""

from __future__ import annotations

from studio_brain.web.api import policy as native
from studio_brain.web.portal.common import portal_router

router = portal_router()

# the Portal sends {enabled, rationale}; the global switch (no capabilityId) is what it turns
router.add_api_route(
    "/capabilities/policy/kill-switch",
    native.set_kill_switch,
    methods=["POST"],
    response_model=native.KillSwitchResponse,
    summary="Global kill switch (the native handler)",
)
router.add_api_route(
    "/capabilities/policy/exemptions",
    native.create_exemption,
    methods=["POST"],
    status_code=201,
    response_model=native.ExemptionResponse,
    summary="Create exemption (the native handler)",
)
router.add_api_route(
    "/capabilities/policy/exemptions/{exemption_id}/revoke",
    native.revoke_exemption,
    methods=["POST"],
    response_model=native.ExemptionResponse,
    summary="Revoke (the native handler)",
)
