"""The paths the Monsoon Fire Portal's staff area calls, in its shapes (``docs/portal.md``, ``docs/api.md``
"Portal paths"), one module per concept. Every path needs a staff identity. Handlers only translate
between the Portal's shapes and the services; nothing here decides or audits.

- ``capabilities``, ``proposals``, ``policy``, ``drafts``, ``ops``, ``absent``: the older Studio Brain
  module (fifteen GETs in one ``Promise.all``, one failure blanks it, so each answers 200).
- ``control_tower``, ``tower_absent``, ``triage``: the staff area's current Control Tower and Reports
  (issue 21).
"""

from __future__ import annotations

from fastapi import APIRouter

from studio_brain.web.portal import (
    absent,
    capabilities,
    control_tower,
    drafts,
    ops,
    policy,
    proposals,
    tower_absent,
    triage,
)

router = APIRouter()
for _module in (capabilities, proposals, policy, drafts, ops, absent, control_tower, tower_absent, triage):
    router.include_router(_module.router)
router.include_router(proposals.shared)  # native handlers whose refusals answer in the Portal's shape

__all__ = ["router"]
