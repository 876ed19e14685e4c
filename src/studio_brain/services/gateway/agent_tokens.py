"""Agent tokens: scoped, expiring credentials for agents, minted and revoked by staff (audited); only a
token's hash is stored, and verification compares in constant time."""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from studio_brain.domain.audit import ActorType, ApprovalState
from studio_brain.domain.errors import NotFound, PolicyRefused, StorageError
from studio_brain.domain.hashing import sha256_bytes_hex
from studio_brain.domain.identity import AuthMethod, Principal
from studio_brain.domain.policy import AgentToken, Decision, ReasonCode, decide_staff_action, refuse
from studio_brain.logging import get_logger
from studio_brain.services.gateway.context import GatewayContext

AGENT_TOKEN_PREFIX = "sbat_"  # noqa: S105 - a prefix, not a secret
_SCOPE = re.compile(r"^(capability:[a-z0-9_.]+:(propose|read)|(state|audit|proposals|capabilities):read)$")
MAX_AGENT_TOKEN_LIFETIME = timedelta(days=90)

log = get_logger(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class IssuedToken:
    token: AgentToken
    #: shown once; only its hash is stored
    raw: str

    def __repr__(self) -> str:
        return f"IssuedToken(token_id={self.token.id!r}, agent_id={self.token.agent_id!r}, raw='***')"


class AgentTokens:
    """Issue, verify, list and revoke agent tokens."""

    def __init__(self, ctx: GatewayContext) -> None:
        self._ctx = ctx

    async def issue_agent_token(
        self, principal: Principal, *, agent_id: str, scopes: Sequence[str], lifetime: timedelta, reason: str
    ) -> IssuedToken:
        """Mint a scoped, expiring token for an agent. The raw token is returned once; only its hash is kept."""
        subject = self._ctx.staff_subject(
            "agent.token.issue", {"agentId": agent_id, "scopes": sorted(scopes)}, reason
        )
        decision = decide_staff_action(principal=principal, rationale=reason)
        if decision.allowed:
            decision = self._check_token_request(agent_id, scopes, lifetime)
        if not decision.allowed:
            await self._ctx.audit_refusal(principal, subject, decision)
        now = self._ctx.clock.now()
        secret = self._ctx.token_source()
        token = AgentToken(
            id=self._ctx.ids.new_id(),
            tenant_id=principal.tenant_id,
            agent_id=agent_id,
            token_hash=sha256_bytes_hex(secret.encode()),
            scopes=frozenset(scopes),
            created_by=principal.actor_id,
            created_at=now,
            expires_at=now + lifetime,
        )
        async with self._ctx.store.transaction(principal.tenant_id) as tx:
            await tx.save_agent_token(token)
            await tx.audit(
                self._ctx.draft(
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
            if scope.startswith("capability:") and self._ctx.registry.get(scope.split(":")[1]) is None:
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
            async with self._ctx.store.transaction(self._ctx.tenant_id) as tx:
                token = await tx.get_agent_token(token_id)
        except StorageError:
            return None
        except PolicyRefused as refused:
            # RECORD_TAMPERED (issue 12): the token's row does not match its MAC; the store audited it
            log.warning("agent_token.refused", token_id=token_id, reason_code=str(refused.reason_code))
            return None
        if token is None or not token.usable(self._ctx.clock.now()):
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
        async with self._ctx.store.transaction(principal.tenant_id) as tx:
            return await tx.agent_tokens()

    async def revoke_agent_token(self, principal: Principal, token_id: str, reason: str) -> AgentToken:
        decision = decide_staff_action(principal=principal, rationale=reason)
        subject = self._ctx.staff_subject("agent.token.revoke", {"tokenId": token_id}, reason)
        if not decision.allowed:
            await self._ctx.audit_refusal(principal, subject, decision)
        async with self._ctx.store.transaction(principal.tenant_id) as tx:
            token = await tx.get_agent_token(token_id)
            if token is None:
                raise NotFound(f"no agent token {token_id}")
            revoked = replace(
                token,
                revoked_at=token.revoked_at or self._ctx.clock.now(),
                revoked_by=token.revoked_by or principal.actor_id,
            )
            await tx.save_agent_token(revoked)
            await tx.audit(
                self._ctx.draft(
                    principal,
                    subject,
                    decision,
                    action="agent.token.revoked",
                    extra={"tokenId": token_id, "agentId": token.agent_id},
                )
            )
        return revoked
