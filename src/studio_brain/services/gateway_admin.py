"""Gateway administration: the kill switch, exemptions, rate-limit buckets, agent tokens, and the rebuild
of the proposals table from the audit log. Every change is decided by the pure policy and audited."""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from studio_brain.domain.audit import ActorType, ApprovalState
from studio_brain.domain.errors import (
    InputInvalid,
    NotFound,
    StorageError,
)
from studio_brain.domain.hashing import sha256_bytes_hex, sha256_hex
from studio_brain.domain.identity import AuthMethod, Principal
from studio_brain.domain.policy import (
    AgentToken,
    Decision,
    Exemption,
    KillSwitch,
    KillSwitchEntry,
    RateBucket,
    ReasonCode,
    decide_exemption,
    decide_staff_action,
    refuse,
)
from studio_brain.domain.proposals import (
    from_record,
)
from studio_brain.services.gateway_core import MAX_PAGE, GatewayCore, Subject, log

AGENT_TOKEN_PREFIX = "sbat_"  # noqa: S105 - a prefix, not a secret
_SCOPE = re.compile(r"^(capability:[a-z0-9_.]+:(propose|read)|(state|audit|proposals|capabilities):read)$")
MAX_AGENT_TOKEN_LIFETIME = timedelta(days=90)


@dataclass(frozen=True, kw_only=True, slots=True)
class IssuedToken:
    token: AgentToken
    #: shown once; only its hash is stored
    raw: str

    def __repr__(self) -> str:
        return f"IssuedToken(token_id={self.token.id!r}, agent_id={self.token.agent_id!r}, raw='***')"


class GatewayAdmin(GatewayCore):
    # --- kill switch ------------------------------------------------------------------------------------

    async def kill_switch(self, principal: Principal) -> list[KillSwitchEntry]:
        async with self._store.transaction(principal.tenant_id) as tx:
            return await tx.kill_switch_entries()

    async def kill_switch_state(self, principal: Principal) -> KillSwitch:
        async with self._store.transaction(principal.tenant_id) as tx:
            return await self._kill(tx)

    async def set_kill_switch(
        self, principal: Principal, *, enabled: bool, rationale: str, capability_id: str | None = None
    ) -> KillSwitchEntry:
        """Turn the global switch (``capability_id=None``) or one capability's switch on or off. Audited."""
        scope = capability_id or "*"
        subject = Subject(
            action="capability.killswitch.set",
            capability_id=capability_id,
            target="gateway",
            input_hash=sha256_hex({"scope": scope, "enabled": enabled}),
            correlation_id=self._ids.new_id(),
            request_id=self._ids.new_id(),
            rationale=rationale,
        )
        decision = decide_staff_action(principal=principal, rationale=rationale)
        if decision.allowed and capability_id is not None and self._registry.get(capability_id) is None:
            decision = refuse(ReasonCode.CAPABILITY_UNKNOWN, f"no capability {capability_id}")
        if not decision.allowed:
            await self._audit_refusal(principal, subject, decision)
        entry = KillSwitchEntry(
            scope=scope,
            enabled=enabled,
            rationale=rationale.strip(),
            updated_by=principal.actor_id,
            updated_at=self._clock.now(),
        )
        async with self._store.transaction(principal.tenant_id) as tx:
            await tx.set_kill_switch(entry)
            await tx.audit(
                self._draft(principal, subject, decision, extra={"scope": scope, "enabled": enabled})
            )
        log.warning("capability.killswitch.set", scope=scope, enabled=enabled, actor_id=principal.actor_id)
        return entry

    # --- exemptions -------------------------------------------------------------------------------------

    async def exemptions(self, principal: Principal) -> list[Exemption]:
        async with self._store.transaction(principal.tenant_id) as tx:
            return await tx.exemptions()

    async def create_exemption(
        self,
        principal: Principal,
        *,
        capability_id: str,
        justification: str,
        lifetime: timedelta,
        target: str | None = None,
        actor_id: str | None = None,
    ) -> Exemption:
        """A narrow waiver of approval. Refused with EXEMPTION_FORBIDDEN for high/critical risk and the
        door/lock/power/mobility classes, and for capabilities whose registry entry allows none."""
        capability = self._registry.get(capability_id)
        subject = Subject(
            action="capability.exemption.create",
            capability_id=capability_id if capability else None,
            target=capability.target.value if capability else "gateway",
            input_hash=sha256_hex(
                {
                    "capabilityId": capability_id,
                    "target": target,
                    "actorId": actor_id,
                    "seconds": lifetime.total_seconds(),
                }
            ),
            correlation_id=self._ids.new_id(),
            request_id=self._ids.new_id(),
            rationale=justification,
        )
        decision = decide_exemption(
            principal=principal, capability=capability, justification=justification, lifetime=lifetime
        )
        if (
            decision.allowed
            and capability is not None
            and target is not None
            and target != capability.target.value
        ):
            decision = refuse(
                ReasonCode.INPUT_INVALID, f"{capability_id} acts on {capability.target.value}, not {target}"
            )
        if not decision.allowed:
            await self._audit_refusal(principal, subject, decision)
        now = self._clock.now()
        exemption = Exemption(
            id=self._ids.new_id(),
            tenant_id=principal.tenant_id,
            capability_id=capability_id,
            target=target,
            actor_id=actor_id,
            justification=justification.strip(),
            created_by=principal.actor_id,
            created_at=now,
            expires_at=now + lifetime,
        )
        async with self._store.transaction(principal.tenant_id) as tx:
            await tx.insert_exemption(exemption)
            await tx.audit(
                self._draft(
                    principal,
                    subject,
                    decision,
                    action="capability.exemption.created",
                    extra={"exemptionId": exemption.id, "expiresAt": exemption.expires_at},
                )
            )
        return exemption

    async def revoke_exemption(self, principal: Principal, exemption_id: str, reason: str) -> Exemption:
        decision = decide_staff_action(principal=principal, rationale=reason)
        async with self._store.transaction(principal.tenant_id) as tx:
            current = await tx.get_exemption(exemption_id, lock=True)
        if current is None:
            raise NotFound(f"no exemption {exemption_id}")
        subject = Subject(
            action="capability.exemption.revoke",
            capability_id=current.capability_id,
            target=current.target or "gateway",
            input_hash=sha256_hex({"exemptionId": exemption_id}),
            correlation_id=self._ids.new_id(),
            request_id=self._ids.new_id(),
            rationale=reason,
        )
        if decision.allowed and current.revoked_at is not None:
            decision = refuse(ReasonCode.INVALID_TRANSITION, "the exemption is already revoked")
        if not decision.allowed:
            await self._audit_refusal(principal, subject, decision)
        revoked = replace(
            current, revoked_at=self._clock.now(), revoked_by=principal.actor_id, revoke_reason=reason.strip()
        )
        async with self._store.transaction(principal.tenant_id) as tx:
            await tx.update_exemption(revoked)
            await tx.audit(
                self._draft(
                    principal,
                    subject,
                    decision,
                    action="capability.exemption.revoked",
                    extra={"exemptionId": exemption_id},
                )
            )
        return revoked

    # --- rate limit buckets ------------------------------------------------------------------------------

    async def rate_buckets(self, principal: Principal, *, limit: int = 50) -> list[RateBucket]:
        if not 1 <= limit <= MAX_PAGE:
            raise InputInvalid(f"limit must be between 1 and {MAX_PAGE}")
        async with self._store.transaction(principal.tenant_id) as tx:
            return await tx.rate_buckets(limit=limit)

    async def reset_rate_bucket(self, principal: Principal, bucket: str, reason: str) -> int:
        subject = Subject(
            action="capability.ratelimit.reset",
            capability_id=bucket.rsplit(":", 1)[0] or None,
            target="gateway",
            input_hash=sha256_hex({"bucket": bucket}),
            correlation_id=self._ids.new_id(),
            request_id=self._ids.new_id(),
            rationale=reason,
        )
        decision = decide_staff_action(principal=principal, rationale=reason)
        if not decision.allowed:
            await self._audit_refusal(principal, subject, decision)
        async with self._store.transaction(principal.tenant_id) as tx:
            removed = await tx.reset_rate_bucket(bucket)
            await tx.audit(
                self._draft(principal, subject, decision, extra={"bucket": bucket, "windowsRemoved": removed})
            )
        return removed

    # --- agent tokens -----------------------------------------------------------------------------------

    async def issue_agent_token(
        self, principal: Principal, *, agent_id: str, scopes: Sequence[str], lifetime: timedelta, reason: str
    ) -> IssuedToken:
        """Mint a scoped, expiring token for an agent. The raw token is returned once; only its hash is kept."""
        subject = Subject(
            action="agent.token.issue",
            capability_id=None,
            target="gateway",
            input_hash=sha256_hex({"agentId": agent_id, "scopes": sorted(scopes)}),
            correlation_id=self._ids.new_id(),
            request_id=self._ids.new_id(),
            rationale=reason,
        )
        decision = decide_staff_action(principal=principal, rationale=reason)
        if decision.allowed:
            decision = self._check_token_request(agent_id, scopes, lifetime)
        if not decision.allowed:
            await self._audit_refusal(principal, subject, decision)
        now = self._clock.now()
        secret = self._token_source()
        token = AgentToken(
            id=self._ids.new_id(),
            tenant_id=principal.tenant_id,
            agent_id=agent_id,
            token_hash=sha256_bytes_hex(secret.encode()),
            scopes=frozenset(scopes),
            created_by=principal.actor_id,
            created_at=now,
            expires_at=now + lifetime,
        )
        async with self._store.transaction(principal.tenant_id) as tx:
            await tx.insert_agent_token(token)
            await tx.audit(
                self._draft(
                    principal,
                    subject,
                    decision,
                    action="agent.token.issued",
                    extra={
                        "tokenId": token.id,
                        "agentId": agent_id,
                        "scopes": sorted(scopes),
                        "expiresAt": token.expires_at,
                    },
                )
            )
        return IssuedToken(token=token, raw=f"{AGENT_TOKEN_PREFIX}{token.id}_{secret}")

    def _check_token_request(self, agent_id: str, scopes: Sequence[str], lifetime: timedelta) -> Decision:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}", agent_id):
            return refuse(ReasonCode.INPUT_INVALID, "agent id: letters, digits and _ . : - (at most 64)")
        if not scopes:
            return refuse(ReasonCode.INPUT_INVALID, "an agent token needs at least one scope")
        for scope in scopes:
            if not _SCOPE.match(scope):
                return refuse(
                    ReasonCode.INPUT_INVALID,
                    f"scope {scope!r} is not grantable (capability:<id>:propose|read, state:read, audit:read, ...)",
                )
            if scope.startswith("capability:") and self._registry.get(scope.split(":")[1]) is None:
                return refuse(ReasonCode.CAPABILITY_UNKNOWN, f"scope {scope!r} names no capability")
        if not timedelta(0) < lifetime <= MAX_AGENT_TOKEN_LIFETIME:
            return refuse(ReasonCode.INPUT_INVALID, "a token lives more than 0 and at most 90 days")
        return Decision(
            allowed=True, reason_code=ReasonCode.ALLOWED, approval_state=ApprovalState.NOT_APPLICABLE
        )

    async def verify_agent_token(self, raw: str) -> Principal | None:
        """The agent behind ``raw``, or None when it is malformed, unknown, expired or revoked."""
        if not isinstance(raw, str) or not raw.startswith(AGENT_TOKEN_PREFIX):
            return None
        token_id, _, secret = raw.removeprefix(AGENT_TOKEN_PREFIX).partition("_")
        if not token_id or not secret or len(raw) > 512:
            return None
        try:
            async with self._store.transaction(self._tenant_id) as tx:
                token = await tx.get_agent_token(token_id)
        except StorageError:
            return None
        if token is None or not token.usable(self._clock.now()):
            return None
        if not hmac.compare_digest(token.token_hash, sha256_bytes_hex(secret.encode())):
            return None
        return Principal(
            tenant_id=token.tenant_id,
            actor_type=ActorType.AGENT,
            actor_id=token.agent_id,
            via=AuthMethod.AGENT_TOKEN,
            scopes=token.scopes,
        )

    async def agent_tokens(self, principal: Principal) -> list[AgentToken]:
        async with self._store.transaction(principal.tenant_id) as tx:
            return await tx.agent_tokens()

    async def revoke_agent_token(self, principal: Principal, token_id: str, reason: str) -> AgentToken:
        decision = decide_staff_action(principal=principal, rationale=reason)
        subject = Subject(
            action="agent.token.revoke",
            capability_id=None,
            target="gateway",
            input_hash=sha256_hex({"tokenId": token_id}),
            correlation_id=self._ids.new_id(),
            request_id=self._ids.new_id(),
            rationale=reason,
        )
        if not decision.allowed:
            await self._audit_refusal(principal, subject, decision)
        async with self._store.transaction(principal.tenant_id) as tx:
            token = await tx.get_agent_token(token_id)
            if token is None:
                raise NotFound(f"no agent token {token_id}")
            revoked = replace(
                token,
                revoked_at=token.revoked_at or self._clock.now(),
                revoked_by=token.revoked_by or principal.actor_id,
            )
            await tx.update_agent_token(revoked)
            await tx.audit(
                self._draft(
                    principal,
                    subject,
                    decision,
                    action="agent.token.revoked",
                    extra={"tokenId": token_id, "agentId": token.agent_id},
                )
            )
        return revoked

    # --- rebuild -----------------------------------------------------------------------------------------

    async def rebuild_proposals(self, principal: Principal, reason: str) -> int:
        """Wipe the tenant's proposals table and rebuild it from the audit log alone (each proposal's
        newest record travels in the metadata of the audit events about it). Returns the count."""
        decision = decide_staff_action(principal=principal, rationale=reason)
        subject = Subject(
            action="capability.proposals.rebuild",
            capability_id=None,
            target="gateway",
            input_hash=sha256_hex({"rebuild": principal.tenant_id}),
            correlation_id=self._ids.new_id(),
            request_id=self._ids.new_id(),
            rationale=reason,
        )
        if not decision.allowed:
            await self._audit_refusal(principal, subject, decision)
        if self._events is None:
            raise StorageError("no event store is wired; cannot rebuild from the audit log")
        latest: dict[str, dict[str, Any]] = {}
        async for event in self._events.stream(principal.tenant_id):
            record = event.metadata.get("proposal")
            if event.action.startswith("capability.proposal.") and isinstance(record, dict):
                latest[str(record["id"])] = record
        async with self._store.transaction(principal.tenant_id) as tx:
            await tx.delete_all_proposals()
            for record in latest.values():
                await tx.upsert_proposal(from_record(record))
            await tx.audit(
                self._draft(
                    principal,
                    subject,
                    decision,
                    action="capability.proposals.rebuilt",
                    extra={"proposals": len(latest)},
                )
            )
        return len(latest)
