"""The native JSON API under /api/v1: one router per area, all behind authentication."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from studio_brain.web.api import audit, connectors, drafts, policy, proposals, state
from studio_brain.web.auth import require_principal
from studio_brain.web.errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_principal)], responses=ERROR_RESPONSES)
# the busiest paths first, routes are tried in order (see create_app): the latest state (four routes),
# then the gateway's lifecycle
router.include_router(state.router)
router.include_router(proposals.router)
router.include_router(policy.capabilities_router)
router.include_router(audit.router)
router.include_router(connectors.router)
router.include_router(policy.policy_router)
router.include_router(drafts.router)
