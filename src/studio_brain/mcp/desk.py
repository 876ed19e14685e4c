"""The agent desk of a running brain: built once per brain from the services it already holds."""

from __future__ import annotations

from studio_brain.bootstrap import Brain
from studio_brain.services.agent_desk import AgentDesk


def desk_for(brain: Brain) -> AgentDesk:
    return AgentDesk(
        gateway=brain.gateway,
        state=brain.state,
        state_store=brain.state_store,
        connector_health=brain.connector_health,
        events=brain.events,
        clock=brain.clock,
        ids=brain.ids,
        zone=brain.settings.zone,
        rate_per_minute=brain.settings.mcp_rate_per_minute,
    )
