"""Gateway administration: the kill switch, exemptions and rate-limit buckets. Every change is decided
by the pure policy (staff only, with a reason) and audited with the change in one transaction."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from studio_brain.domain.errors import NotFound
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.identity import Principal
from studio_brain.domain.policy import (
    Exemption,
    KillSwitch,
    KillSwitchEntry,
    RateBucket,
    ReasonCode,
    decide_exemption,
    decide_kill_switch,
    decide_staff_action,
    refuse,
)
from studio_brain.ports.gateway import PolicyOverview, ProposalFilter
from studio_brain.services.gateway.context import GatewayContext, Subject, check_page, log


class Admin:
    """Kill switch, exemptions, rate-limit buckets."""

    def __init__(self, ctx: GatewayContext) -> None:
        self._ctx = ctx

    async def kill_switch(self, principal: Principal) -> list[KillSwitchEntry]:
        async with self._ctx.store.transaction(principal.tenant_id) as tx:
            return await tx.kill_switch_entries()

    async def overview(self, principal: Principal, where: ProposalFilter) -> PolicyOverview:
        """The newest proposals, the kill switch's entries and the exemptions, read in **one** transaction
        (issue 18: the Portal's capabilities card asked for them in three, each a pool checkout, a scope
        and a COMMIT of its own), each with its own read's checks, and the mark of what was read."""
        check_page(where.limit)
        async with self._ctx.store.transaction(principal.tenant_id) as tx:
            return await tx.overview(where)

    async def overview_mark(self, principal: Principal, where: ProposalFilter) -> object:
        """What :meth:`overview` would be marked with now, in one cheap read: the card's cache asks first
        (issue 18) and reads the overview only when the mark moved."""
        check_page(where.limit)
        return await self._ctx.store.overview_mark(principal.tenant_id, where)

    async def kill_switch_state(self, principal: Principal) -> KillSwitch:
        async with self._ctx.store.transaction(principal.tenant_id) as tx:
            return await self._ctx.kill(tx)

    async def set_kill_switch(
        self, principal: Principal, *, enabled: bool, rationale: str, capability_id: str | None = None
    ) -> KillSwitchEntry:
        """Turn the global switch (``capability_id=None``) or one capability's switch on or off. Audited."""
        scope = capability_id or "*"
        subject = self._ctx.staff_subject(
            "capability.killswitch.set",
            {"scope": scope, "enabled": enabled},
            rationale,
            capability_id=capability_id,
        )
        # issue 11: the break-glass admin token may turn a switch ON, never off
        decision = decide_kill_switch(principal=principal, enabled=enabled, rationale=rationale)
        if decision.allowed and capability_id is not None and self._ctx.registry.get(capability_id) is None:
            decision = refuse(ReasonCode.CAPABILITY_UNKNOWN, f"no capability {capability_id}")
        if not decision.allowed:
            await self._ctx.audit_refusal(principal, subject, decision)
        entry = KillSwitchEntry(
            scope=scope,
            enabled=enabled,
            rationale=rationale.strip(),
            updated_by=principal.actor_id,
            updated_at=self._ctx.clock.now(),
        )
        async with self._ctx.store.transaction(principal.tenant_id) as tx:
            await tx.set_kill_switch(entry)
            await tx.audit(
                self._ctx.draft(principal, subject, decision, extra={"scope": scope, "enabled": enabled})
            )
        log.warning("capability.killswitch.set", scope=scope, enabled=enabled, actor_id=principal.actor_id)
        return entry

    # --- exemptions -------------------------------------------------------------------------------------

    async def exemptions(self, principal: Principal) -> list[Exemption]:
        async with self._ctx.store.transaction(principal.tenant_id) as tx:
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
        capability = self._ctx.registry.get(capability_id)
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
            correlation_id=self._ctx.ids.new_id(),
            request_id=self._ctx.ids.new_id(),
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
            await self._ctx.audit_refusal(principal, subject, decision)
        now = self._ctx.clock.now()
        exemption = Exemption(
            id=self._ctx.ids.new_id(),
            tenant_id=principal.tenant_id,
            capability_id=capability_id,
            target=target,
            actor_id=actor_id,
            justification=justification.strip(),
            created_by=principal.actor_id,
            created_at=now,
            expires_at=now + lifetime,
        )
        async with self._ctx.store.transaction(principal.tenant_id) as tx:
            await tx.save_exemption(exemption)
            await tx.audit(
                self._ctx.draft(
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
        async with self._ctx.store.transaction(principal.tenant_id) as tx:
            current = await tx.get_exemption(exemption_id)
        if current is None:
            raise NotFound(f"no exemption {exemption_id}")
        subject = Subject(
            action="capability.exemption.revoke",
            capability_id=current.capability_id,
            target=current.target or "gateway",
            input_hash=sha256_hex({"exemptionId": exemption_id}),
            correlation_id=self._ctx.ids.new_id(),
            request_id=self._ctx.ids.new_id(),
            rationale=reason,
        )
        if decision.allowed and current.revoked_at is not None:
            decision = refuse(ReasonCode.INVALID_TRANSITION, "the exemption is already revoked")
        if not decision.allowed:
            await self._ctx.audit_refusal(principal, subject, decision)
        revoked = replace(
            current,
            revoked_at=self._ctx.clock.now(),
            revoked_by=principal.actor_id,
            revoke_reason=reason.strip(),
        )
        async with self._ctx.store.transaction(principal.tenant_id) as tx:
            await tx.save_exemption(revoked)
            await tx.audit(
                self._ctx.draft(
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
        check_page(limit)
        async with self._ctx.store.transaction(principal.tenant_id) as tx:
            return await tx.rate_buckets(limit=limit)

    async def reset_rate_bucket(self, principal: Principal, bucket: str, reason: str) -> int:
        subject = self._ctx.staff_subject(
            "capability.ratelimit.reset",
            {"bucket": bucket},
            reason,
            capability_id=bucket.rsplit(":", 1)[0] or None,
        )
        decision = decide_staff_action(principal=principal, rationale=reason)
        if not decision.allowed:
            await self._ctx.audit_refusal(principal, subject, decision)
        async with self._ctx.store.transaction(principal.tenant_id) as tx:
            removed = await tx.reset_rate_bucket(bucket)
            await tx.audit(
                self._ctx.draft(
                    principal, subject, decision, extra={"bucket": bucket, "windowsRemoved": removed}
                )
            )
        return removed
