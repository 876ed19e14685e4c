"""The gateway's policy state as values: the kill switch, exemptions (and which one applies to a run), the
stored kill-switch rows, rate buckets and agent tokens.

Part of the gateway policy (:mod:`studio_brain.domain.policy` re-exports it); pure values, no decisions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from studio_brain.domain.capabilities import Capability
from studio_brain.domain.proposals import Proposal, Status


@dataclass(frozen=True, kw_only=True, slots=True)
class KillSwitch:
    """Global and per-capability switches. ``unreadable``: the state could not be read — treat as on."""

    global_on: bool = False
    capabilities: frozenset[str] = frozenset()
    unreadable: bool = False

    def blocks(self, capability: Capability) -> bool:
        if not capability.is_write:
            return False
        return self.unreadable or self.global_on or capability.id in self.capabilities


@dataclass(frozen=True, kw_only=True, slots=True)
class Exemption:
    """A narrow, reasoned, expiring waiver of approval for one capability in one tenant."""

    id: str
    tenant_id: str
    capability_id: str
    justification: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    target: str | None = None
    actor_id: str | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at

    def covers(self, *, tenant_id: str, capability: Capability, actor_id: str, now: datetime) -> bool:
        return (
            self.active(now)
            and self.tenant_id == tenant_id
            and self.capability_id == capability.id
            and (self.target is None or self.target == capability.target.value)
            and (self.actor_id is None or self.actor_id == actor_id)
        )


def exemption_may_apply(*, proposal: Proposal, capability: Capability | None, now: datetime) -> bool:
    """Whether an exemption could matter to executing ``proposal`` now: the capability allows them and
    no current approval already covers the run (callers skip reading exemptions otherwise)."""
    if capability is None or not capability.exemptable:
        return False
    approval_current = (
        proposal.status is Status.APPROVED
        and proposal.approval_expires_at is not None
        and now < proposal.approval_expires_at
    )
    return not approval_current


def applicable_exemption(
    candidates: Iterable[Exemption], *, proposal: Proposal, capability: Capability | None, now: datetime
) -> Exemption | None:
    """The exemption execute and dry-run both hand to :func:`decide_execute`: the first of ``candidates``
    covering the proposal's tenant, capability, target and requester now — or None when none may apply."""
    if capability is None or not exemption_may_apply(proposal=proposal, capability=capability, now=now):
        return None
    return next(
        (
            e
            for e in candidates
            if e.covers(
                tenant_id=proposal.tenant_id, capability=capability, actor_id=proposal.requested_by, now=now
            )
        ),
        None,
    )


def kill_switch_from(rows: Mapping[str, bool]) -> KillSwitch:
    """Build the switch from stored scope → enabled rows (``*`` is the global switch)."""
    return KillSwitch(
        global_on=rows.get("*", False),
        capabilities=frozenset(scope for scope, on in rows.items() if on and scope != "*"),
    )


# --- stored policy records ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class KillSwitchEntry:
    scope: str
    enabled: bool
    rationale: str
    updated_by: str
    updated_at: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class RateBucket:
    bucket: str
    window_start: datetime
    count: int


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentToken:
    """A stored agent token: only the hash of its secret is kept. ``repr`` shows no secret."""

    id: str
    tenant_id: str
    agent_id: str
    token_hash: str
    scopes: frozenset[str]
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at
