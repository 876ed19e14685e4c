"""The gateway's keyed rows on PostgreSQL: row codecs, the bodies each row's MAC covers, and the seal/check
of those MACs (issue 12 item 2) — composed into :class:`~studio_brain.adapters.postgres.gateway_store.PostgresGatewayTransaction`,
which keeps the queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from studio_brain.domain.errors import PolicyRefused
from studio_brain.domain.policy import AgentToken, Exemption, KillSwitchEntry
from studio_brain.domain.proposals import Proposal, from_record, to_record
from studio_brain.domain.reasons import ReasonCode
from studio_brain.domain.records import Keyring, RecordSeal, check_record, seal_record

Connection = psycopg.AsyncConnection[dict[str, Any]]


EXEMPTION_COLUMNS = (
    "id, tenant_id, capability_id, target, actor_id, justification, created_by, created_at, expires_at,"
    " revoked_at, revoked_by, revoke_reason"
)
TOKEN_COLUMNS = (
    "id, tenant_id, agent_id, token_hash, scopes, created_by, created_at, expires_at, revoked_at, revoked_by"  # noqa: S105
)


def exemption_of(row: dict[str, Any]) -> Exemption:
    return Exemption(**{k: v for k, v in row.items() if not k.startswith("record_")})


def token_of(row: dict[str, Any]) -> AgentToken:
    fields = {k: v for k, v in row.items() if not k.startswith("record_")}
    return AgentToken(**{**fields, "scopes": frozenset(row["scopes"])})


# --- keyed records (issue 12 item 2) ----------------------------------------------------------------
# With the brain's keyring every proposal row and agent-token row carries a MAC over its content and a
# version (domain/records.py), made with a key kept outside the database. A row changed by a database
# writer (approvals added, input swapped, a revocation undone, scopes widened) no longer matches its MAC
# and is refused at use with RECORD_TAMPERED — and audited.

PROPOSAL_KIND = "gateway.proposal"
EXEMPTION_KIND = "gateway.exemption"
KILL_SWITCH_KIND = "gateway.kill_switch"
RECORD_COLUMNS = "record_version, record_key_id, record_mac"


def exemption_body(e: Exemption) -> dict[str, Any]:
    return {
        "id": e.id,
        "tenantId": e.tenant_id,
        "capabilityId": e.capability_id,
        "target": e.target,
        "actorId": e.actor_id,
        "justification": e.justification,
        "createdBy": e.created_by,
        "createdAt": e.created_at,
        "expiresAt": e.expires_at,
        "revokedAt": e.revoked_at,
        "revokedBy": e.revoked_by,
        "revokeReason": e.revoke_reason,
    }


def kill_switch_body(tenant_id: str, e: KillSwitchEntry) -> dict[str, Any]:
    return {
        "tenantId": tenant_id,
        "scope": e.scope,
        "enabled": e.enabled,
        "rationale": e.rationale,
        "updatedBy": e.updated_by,
        "updatedAt": e.updated_at,
    }


TOKEN_KIND = "gateway.agent_token"  # noqa: S105 - a record kind, not a secret


def token_body(t: AgentToken) -> dict[str, Any]:
    return {
        "id": t.id,
        "tenantId": t.tenant_id,
        "agentId": t.agent_id,
        "tokenHash": t.token_hash,
        "scopes": sorted(t.scopes),
        "createdBy": t.created_by,
        "createdAt": t.created_at,
        "expiresAt": t.expires_at,
        "revokedAt": t.revoked_at,
        "revokedBy": t.revoked_by,
    }


class RecordTampered(PolicyRefused):
    """A row of security state does not match its MAC: changed outside the brain (HTTP 409)."""

    def __init__(self, kind: str, record_id: str, why: str) -> None:
        super().__init__(ReasonCode.RECORD_TAMPERED, f"{kind} {record_id}: {why}; refused")
        self.kind = kind
        self.record_id = record_id


def _seal_of(row: dict[str, Any]) -> RecordSeal | None:
    key_id, mac = row.get("record_key_id"), row.get("record_mac")
    return None if key_id is None or mac is None else RecordSeal(key_id=key_id, mac=mac)


class RecordSeals:
    """Seals and checks the keyed rows of one tenant's transaction; without a keyring it does nothing."""

    def __init__(self, conn: Connection, tenant_id: str, keyring: Keyring | None) -> None:
        self._conn = conn
        self._tenant = tenant_id
        self._keyring = keyring

    @property
    def keyed(self) -> bool:
        return self._keyring is not None

    async def _one(self, query: str, params: Sequence[Any]) -> dict[str, Any] | None:
        cursor = await self._conn.execute(query, params)
        return await cursor.fetchone()

    async def next_seal(
        self,
        table: str,
        key_sql: str,
        key: Sequence[Any],
        kind: str,
        record_id: str,
        body: dict[str, Any],
        *,
        at_least: int = 1,
    ) -> tuple[int, str | None, str | None]:
        """(version, key id, MAC) for the next write of a keyed row: every write bumps its version (to
        ``at_least`` or more: the record ledger's floor, when a row was deleted or written back)."""
        if self._keyring is None:
            return 1, None, None
        current = await self._one(
            f"SELECT record_version FROM {table} WHERE tenant_id = %s AND {key_sql} FOR UPDATE",
            (self._tenant, *key),
        )
        version = max(at_least, 1 if current is None else int(current["record_version"]) + 1)
        seal = seal_record(self._keyring.current, kind=kind, record_id=record_id, version=version, body=body)
        return version, seal.key_id, seal.mac

    def check_row(self, row: dict[str, Any], kind: str, record_id: str, body: dict[str, Any]) -> None:
        if self._keyring is None:
            return
        seal = _seal_of(row)
        if seal is None or not check_record(
            self._keyring, seal, kind=kind, record_id=record_id, version=int(row["record_version"]), body=body
        ):
            raise RecordTampered(
                kind, record_id, "the row does not match its MAC (changed outside the brain)"
            )

    async def revoked_in_audit(self, action: str, id_key: str, record_id: str) -> bool:
        """Whether the keyed audit log records ``action`` for this record (a restored older row hides it)."""
        row = await self._one(
            "SELECT 1 AS revoked FROM audit_events WHERE tenant_id = %s AND action = %s"
            f" AND metadata->>'{id_key}' = %s LIMIT 1",
            (self._tenant, action, record_id),
        )
        return row is not None

    def proposal_seal(self, p: Proposal) -> tuple[str | None, str | None]:
        if self._keyring is None:
            return None, None
        seal = seal_record(
            self._keyring.current, kind=PROPOSAL_KIND, record_id=p.id, version=p.version, body=to_record(p)
        )
        return seal.key_id, seal.mac

    def checked_proposal(self, row: dict[str, Any]) -> Proposal:
        proposal = from_record(row["record"])
        if self._keyring is None:
            return proposal
        seal = _seal_of(row)
        if seal is None:
            raise RecordTampered(
                PROPOSAL_KIND, proposal.id, "the row carries no MAC (written outside the brain)"
            )
        if not check_record(
            self._keyring,
            seal,
            kind=PROPOSAL_KIND,
            record_id=proposal.id,
            version=proposal.version,
            body=to_record(proposal),
        ):
            raise RecordTampered(
                PROPOSAL_KIND, proposal.id, "the row does not match its MAC (changed outside the brain)"
            )
        return proposal

    async def check_not_rolled_back(self, proposal: Proposal) -> None:
        """Refuse a proposal row older than the newest version the keyed audit log recorded for it: a
        whole earlier row (valid MAC, older version) written back, e.g. to run an executed proposal again.

        The proposal's events share its correlation id (indexed); each carries the proposal's record."""
        if self._keyring is None:
            return
        row = await self._one(
            "SELECT max((metadata->'proposal'->>'version')::int) AS newest FROM audit_events"
            " WHERE tenant_id = %s AND correlation_id = %s AND metadata->>'proposalId' = %s",
            (self._tenant, proposal.correlation_id, proposal.id),
        )
        self.check_newest(proposal, None if row is None else row["newest"])

    def rollback_query(self, proposal_id: str) -> tuple[str, tuple[str, ...]]:
        """:meth:`check_not_rolled_back`'s read for the row ``proposal_id`` as it is in the database, to be
        sent in the same round trip right after the statement that locks it (issue 18). The server runs it
        once the lock is held, with a snapshot of its own, so it sees what the separate read saw; the
        correlation id is the row's, which is the checked record's whenever the row's MAC holds."""
        return (
            "SELECT max((metadata->'proposal'->>'version')::int) AS newest FROM audit_events"
            " WHERE tenant_id = %s AND metadata->>'proposalId' = %s AND correlation_id ="
            " (SELECT record->>'correlationId' FROM gateway_proposals WHERE tenant_id = %s AND id = %s)",
            (self._tenant, proposal_id, self._tenant, proposal_id),
        )

    def check_newest(self, proposal: Proposal, newest: int | None) -> None:
        """Refuse ``proposal`` when the audit log records a newer version of it (see above)."""
        if self._keyring is None:
            return
        if newest is not None and proposal.version < int(newest):
            raise RecordTampered(
                PROPOSAL_KIND,
                proposal.id,
                f"the row is version {proposal.version} but the audit log records version {newest}"
                " (an older row restored)",
            )

    async def checked_exemption(self, row: dict[str, Any]) -> Exemption:
        exemption = exemption_of(row)
        if self._keyring is None:
            return exemption
        self.check_row(row, EXEMPTION_KIND, exemption.id, exemption_body(exemption))
        if exemption.revoked_at is None and await self.revoked_in_audit(
            "capability.exemption.revoked", "exemptionId", exemption.id
        ):
            raise RecordTampered(
                EXEMPTION_KIND, exemption.id, "the audit log records its revocation but the row does not"
            )
        return exemption

    async def checked_token(self, row: dict[str, Any]) -> AgentToken:
        token = token_of(row)
        if self._keyring is None:
            return token
        self.check_row(row, TOKEN_KIND, token.id, token_body(token))
        # the keyed audit log says it was revoked: an older (unrevoked) row was restored
        if token.revoked_at is None and await self.revoked_in_audit(
            "agent.token.revoked", "tokenId", token.id
        ):
            raise RecordTampered(
                TOKEN_KIND, token.id, "the audit log records its revocation but the row does not"
            )
        return token
