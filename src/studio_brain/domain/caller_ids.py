"""Ids a caller supplies (``x-request-id``, ``correlationId``) are scoped to that caller.

The audit timeline of a proposal is every event sharing its correlation id. Taken verbatim, a caller's
id let an agent put its own events into a victim's timeline by reusing the victim's id. Prefixed with
the verified caller's identity, two callers' ids can never be equal, whatever either sends.
"""

from __future__ import annotations

from studio_brain.domain.identity import Principal


def scoped_id(principal: Principal, supplied: str) -> str:
    """``supplied`` in ``principal``'s namespace: ``<actor type>:<actor id>/<supplied>``."""
    return f"{principal.actor_type.value}:{principal.actor_id}/{supplied}"
