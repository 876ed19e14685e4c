"""The execution decision as things stand now, shared by execute and dry-run (one place that re-hashes the
input and recomputes the approval binding against the registry in force)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from studio_brain.domain.capabilities import Capability
from studio_brain.domain.connectors import ConnectorMode
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.identity import Principal
from studio_brain.domain.policy import ConnectorFacts, Decision, Exemption, KillSwitch, decide_execute
from studio_brain.domain.proposals import Proposal
from studio_brain.ports.connectors import Connector
from studio_brain.services.gateway.context import GatewayContext


def execute_decision(
    ctx: GatewayContext,
    principal: Principal,
    proposal: Proposal,
    capability: Capability | None,
    kill: KillSwitch,
    exemption: Exemption | None,
    connector: Connector | None,
    now: datetime,
) -> Decision:
    """The execution policy for ``proposal`` as things stand now (shared by execute and dry-run):
    the input is re-hashed and the binding recomputed against the registry in force, so a changed
    input or registry fails the approval binding."""
    current_input_hash = sha256_hex(proposal.input)
    return decide_execute(
        principal=principal,
        proposal=proposal,
        capability=capability,
        kill=kill,
        current_input_hash=current_input_hash,
        current_binding=ctx.binding_to_check(
            replace(proposal, registry_version=ctx.registry.version, input_hash=current_input_hash),
            proposal.approvals,
        ),
        exemption=exemption,
        connector=ConnectorFacts(
            present=connector is not None, mode=connector.mode if connector else ConnectorMode.READ_ONLY
        ),
        now=now,
        local_now=now.astimezone(ctx.zone),
    )
