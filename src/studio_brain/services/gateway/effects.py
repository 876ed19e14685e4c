"""How the gateway talks to a connector about a capability: the command a capability's input becomes,
and predicted effects from the connector's dry run (never a real action). Shared by proposing and
dry-running."""

from __future__ import annotations

import asyncio
from typing import Any

from studio_brain.domain.attestation import ApprovalClaims, claims_for
from studio_brain.domain.capabilities import Capability
from studio_brain.domain.connectors import ConnectorCommand, ConnectorContext, DryRunSupport
from studio_brain.domain.errors import ConnectorError
from studio_brain.domain.proposals import Proposal
from studio_brain.ports.gateway import ConnectorDirectory


def command_for(
    capability: Capability, input: dict[str, Any], *, approval: ApprovalClaims | None = None
) -> ConnectorCommand:
    """The connector command ``input`` asks of ``capability`` (device and command read from its fields);
    ``approval``: who approved it, for connectors that send an attestation (cloud writes)."""
    device = input.get(capability.device_field) if capability.device_field else None
    command = input.get(capability.command_field) if capability.command_field else None
    return ConnectorCommand(
        action=capability.action,
        device_id=str(device) if device is not None else None,
        command=str(command) if command is not None else None,
        args=dict(input),
        write=capability.is_write,
        approval=approval,
    )


async def predict_effects(
    connectors: ConnectorDirectory,
    tenant_id: str,
    capability: Capability,
    input: dict[str, Any],
    request_id: str,
) -> tuple[list[Any], dict[str, Any]]:
    """Predicted effects from the connector's dry-run where supported, and extra facts for the proposal
    (``dryRun``: unavailable or failed)."""
    if not capability.is_write:
        return [f"read {capability.target.value} ({capability.action})"], {}
    connector = connectors.connector_for(tenant_id, capability.target.value)
    if connector is None or capability.dry_run is DryRunSupport.UNSUPPORTED:
        return [], {"dryRun": "unavailable"}
    ctx = ConnectorContext(
        request_id=request_id, timeout_seconds=capability.timeout_budget_seconds, dry_run=True
    )
    try:
        response = await asyncio.wait_for(
            connector.execute(ctx, command_for(capability, input)),
            timeout=capability.timeout_budget_seconds,
        )
    except (ConnectorError, TimeoutError) as err:
        kind = err.kind if isinstance(err, ConnectorError) else "TIMEOUT"
        return [], {"dryRun": f"failed: {kind}"}
    effects = response.data.get("effects", [response.data])
    return list(effects) if isinstance(effects, list) else [effects], {}


def approval_claims(proposal: Proposal) -> ApprovalClaims | None:
    """What the proposal's approval says, as attestation claims: None when it was not approved by people
    (reads, exemptions)."""
    approvers = [a.approver_id for a in proposal.approvals if a.approver_id != proposal.requested_by]
    if not approvers or proposal.approved_at is None or proposal.approval_expires_at is None:
        return None
    return claims_for(
        proposal_id=proposal.id,
        capability_id=proposal.capability_id,
        tenant_id=proposal.tenant_id,
        input_hash=proposal.input_hash,
        approvers=approvers,
        approved_at=proposal.approved_at,
        expires_at=proposal.approval_expires_at,
    )
