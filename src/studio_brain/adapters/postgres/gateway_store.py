"""GatewayStore on PostgreSQL: one transaction per use case, scoped to a tenant (RLS), audit in the same
transaction through the EventStore's ``append_on``.

Concurrency comes from the database, not from Python: proposals are locked with ``SELECT … FOR UPDATE``,
an exclusive target with a transaction-level advisory lock, and rate buckets are counted with one atomic
``INSERT … ON CONFLICT DO UPDATE … WHERE count < limit``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Protocol

import psycopg
from psycopg import pq
from psycopg.types.json import Jsonb

from studio_brain.adapters.postgres.database import Database, translate
from studio_brain.adapters.postgres.event_store import Guard, Prelude, PreludeFailed
from studio_brain.adapters.postgres.gateway_records import (
    EXEMPTION_COLUMNS,
    EXEMPTION_KIND,
    KILL_SWITCH_KIND,
    RECORD_COLUMNS,
    TOKEN_COLUMNS,
    TOKEN_KIND,
    Connection,
    RecordSeals,
    RecordTampered,
    exemption_body,
    kill_switch_body,
    token_body,
    token_of,
)
from studio_brain.adapters.postgres.overview import HEAD_SEQ, mark_of, mark_statement, row_mark
from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft, AuditEvent
from studio_brain.domain.errors import Conflict
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.policy import AgentToken, Exemption, KillSwitchEntry, RateBucket
from studio_brain.domain.proposals import Proposal, from_record, to_record
from studio_brain.domain.reasons import ReasonCode
from studio_brain.domain.record_ledger import LedgerMark
from studio_brain.domain.records import Keyring
from studio_brain.ports.gateway import PolicyOverview, ProposalFilter, ProposalKey, TargetFacts
from studio_brain.ports.record_ledger import RecordLedger


class TransactionalEventStore(Protocol):
    async def append_on(self, conn: Connection, draft: AuditDraft, *, commit: bool = False) -> AuditEvent:
        """Append ``draft`` using the caller's connection and transaction (``commit``: and commit it)."""
        ...

    async def append_guarded_on(
        self, conn: Connection, draft: AuditDraft, guard: Guard, *, commit: bool = False
    ) -> AuditEvent | None:
        """Append ``draft`` (and commit, with ``commit``) only if ``guard``, run under the chain lock, accepts."""
        ...

    async def append_preceded_on(
        self, conn: Connection, draft: AuditDraft, prelude: Prelude, *, commit: bool = False
    ) -> AuditEvent | None:
        """Send ``prelude`` in the chain lock's round trip, then append (and commit) if it accepts."""
        ...


_BY_KEY: dict[ProposalKey, str] = {
    "idempotency_key": "SELECT record FROM gateway_proposals WHERE tenant_id = %s AND idempotency_key = %s",
    "execution_key": "SELECT record FROM gateway_proposals WHERE tenant_id = %s AND execution_key = %s",
}


_KILL_SWITCH_COLUMNS = "SELECT scope, enabled, rationale, updated_by, updated_at, " + RECORD_COLUMNS
_KILL_SWITCH_FROM = " FROM gateway_kill_switch WHERE tenant_id = %s ORDER BY scope"
_KILL_SWITCH_ROWS = _KILL_SWITCH_COLUMNS + _KILL_SWITCH_FROM
#: the same rows with each one's version, for an overview's mark
_KILL_SWITCH_MARKED_ROWS = _KILL_SWITCH_COLUMNS + ", " + row_mark("k") + _KILL_SWITCH_FROM


def proposals_where(tenant_id: str, where: ProposalFilter) -> tuple[str, list[Any]]:
    """The WHERE clauses, order and limit of ``list_proposals(where)``, with their parameters."""
    clauses = ["tenant_id = %s"]
    params: list[Any] = [tenant_id]
    if where.status is not None:
        clauses.append("status = %s")
        params.append(where.status.value)
    if where.capability_id is not None:
        clauses.append("capability_id = %s")
        params.append(where.capability_id)
    if where.requested_by is not None:
        clauses.append("requested_by = %s")
        params.append(where.requested_by)
    if where.before is not None:
        clauses.append("(created_at, id) < (%s, %s)")
        params.extend(where.before)
    params.append(where.limit)
    return " AND ".join(clauses) + " ORDER BY created_at DESC, id DESC LIMIT %s", params


def _has_rows(cursor: psycopg.AsyncCursor[Any]) -> bool:
    """True when ``cursor``'s statement ran (its result is a row set, not an error or an aborted one)."""
    result = cursor.pgresult
    return result is not None and result.status == pq.ExecStatus.TUPLES_OK


def _proposal_exists() -> Conflict:
    return Conflict("a proposal with this id or idempotency key already exists")


def _key_taken() -> Conflict:
    return Conflict("this execution idempotency key is already used by another proposal")


def _changed_underneath(proposal: Proposal) -> Conflict:
    return Conflict(f"proposal {proposal.id} changed underneath this update; try again")


class PostgresGatewayTransaction:
    def __init__(
        self,
        conn: Connection,
        tenant_id: str,
        events: TransactionalEventStore,
        keyring: Keyring | None = None,
        ledger: RecordLedger | None = None,
    ) -> None:
        self._conn = conn
        self._tenant = tenant_id
        self._events = events
        #: seals and checks the keyed rows (issue 12 item 2); composed, not inherited
        self._seals = RecordSeals(conn, tenant_id, keyring)
        #: floors outside the database: a kill-switch row deleted or written back older is caught
        self._ledger = ledger if keyring is not None else None
        #: ledger marks of this transaction's writes, written by the store once it has committed
        self.pending_marks: list[LedgerMark] = []
        #: the kill switch's rows (or its read's error) read with a locked proposal, not yet used
        self._switch_rows: list[dict[str, Any]] | psycopg.Error | None = None
        #: the row versions of an overview's reads, while it reads (``overview``)
        self._read_marks: list[str] | None = None

    async def _one(self, query: str, params: Sequence[Any]) -> dict[str, Any] | None:
        cursor = await self._conn.execute(query, params)
        return await cursor.fetchone()

    async def _all(self, query: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        cursor = await self._conn.execute(query, params)
        return await cursor.fetchall()

    # --- proposals ---------------------------------------------------------------------------------

    async def get_proposal(
        self, proposal_id: str, *, lock: bool = False, with_kill_switch: bool = False
    ) -> Proposal | None:
        query = (
            "SELECT record, record_key_id, record_mac FROM gateway_proposals WHERE tenant_id = %s AND id = %s"
            + (" FOR UPDATE" if lock else "")
        )
        checked = lock and self._seals.keyed
        if not (checked or with_kill_switch):
            row = await self._one(query, (self._tenant, proposal_id))
            return None if row is None else self._seals.checked_proposal(row)
        # About to change it (approve, execute, …): it must be the newest version audited. The lock, the
        # audit log's newest version and the kill switch go in one round trip (issue 18); the server runs
        # them in order, so it reads the log and the switch only once the lock is held, each statement
        # with a snapshot of its own (as separate round trips would).
        async with (
            self._conn.cursor() as locked,
            self._conn.cursor() as audited,
            self._conn.cursor() as switches,
        ):
            try:
                async with self._conn.pipeline():
                    await locked.execute(query, (self._tenant, proposal_id))
                    if checked:
                        check_sql, check_params = self._seals.rollback_query(proposal_id)
                        await audited.execute(check_sql, check_params)
                    if with_kill_switch:
                        await switches.execute(_KILL_SWITCH_ROWS, (self._tenant,))
            except psycopg.Error as err:
                # sent last, the switch's read is the one that failed when the others have their rows:
                # kill_switch_entries reports it, so the caller fails closed exactly as before
                answered = [locked, audited] if checked else [locked]
                if not (with_kill_switch and all(_has_rows(c) for c in answered)):
                    raise
                self._switch_rows = err
            else:
                if with_kill_switch:
                    self._switch_rows = await switches.fetchall()
            row = await locked.fetchone()
            newest = await audited.fetchone() if checked else None
        if row is None:
            return None
        proposal = self._seals.checked_proposal(row)
        if checked:
            self._seals.check_newest(proposal, None if newest is None else newest["newest"])
        return proposal

    async def proposal_by_key(self, kind: ProposalKey, key: str) -> Proposal | None:
        row = await self._one(
            _BY_KEY[kind].replace("SELECT record ", "SELECT record, record_key_id, record_mac "),
            (self._tenant, key),
        )
        return None if row is None else self._seals.checked_proposal(row)

    def _params(self, p: Proposal) -> tuple[Any, ...]:
        return (
            p.id,
            p.tenant_id,
            p.capability_id,
            p.target,
            p.status.value,
            p.requested_by,
            p.idempotency_key,
            p.execution_key,
            p.created_at,
            p.updated_at,
            p.version,
            Jsonb(to_record(p)),
            *self._seals.proposal_seal(p),
        )

    _INSERT = (
        "INSERT INTO gateway_proposals (id, tenant_id, capability_id, target, status, requested_by,"
        " idempotency_key, execution_key, created_at, updated_at, version, record, record_key_id, record_mac)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    )

    #: one statement writes the proposal and its content-free owner index row
    _INSERT_WITH_OWNER = (
        "WITH p AS (" + _INSERT + " RETURNING id, tenant_id)"
        " INSERT INTO gateway_proposal_tenants (id, tenant_id) SELECT id, tenant_id FROM p"
    )

    async def insert_proposal(self, proposal: Proposal) -> None:
        try:
            await self._conn.execute(self._INSERT_WITH_OWNER, self._params(proposal))
        except psycopg.errors.UniqueViolation as err:
            # no savepoint on purpose (two round trips saved): the caller leaves the transaction
            raise _proposal_exists() from err

    async def insert_and_audit(self, proposal: Proposal, draft: AuditDraft) -> None:
        # as update_and_audit: the insert goes in the round trip that takes the audit chain's lock
        prelude = Prelude(self._INSERT_WITH_OWNER, self._params(proposal), lambda rowcount: rowcount == 1)
        try:
            event = await self._events.append_preceded_on(self._conn, draft, prelude, commit=True)
        except PreludeFailed as failed:
            if isinstance(failed.error, psycopg.errors.UniqueViolation):
                raise _proposal_exists() from failed.error
            raise failed.error from None
        if event is None:  # pragma: no cover - an insert that did not fail wrote its one owner row
            raise _proposal_exists()

    _UPDATE = (
        "UPDATE gateway_proposals SET status = %s, execution_key = %s, updated_at = %s,"
        " version = %s, record = %s, record_key_id = %s, record_mac = %s"
        " WHERE tenant_id = %s AND id = %s AND version = %s"
    )

    def _update_params(self, proposal: Proposal) -> tuple[Any, ...]:
        return (
            proposal.status.value,
            proposal.execution_key,
            proposal.updated_at,
            proposal.version,
            Jsonb(to_record(proposal)),
            *self._seals.proposal_seal(proposal),
            self._tenant,
            proposal.id,
            proposal.version - 1,
        )

    async def update_proposal(self, proposal: Proposal) -> None:
        try:
            cursor = await self._conn.execute(self._UPDATE, self._update_params(proposal))
        except psycopg.errors.UniqueViolation as err:
            raise _key_taken() from err
        if cursor.rowcount != 1:
            raise _changed_underneath(proposal)

    #: the update over exactly the record expected (jsonb equality: the whole stored content)
    _UPDATE_EXPECTED = _UPDATE + " AND record = %s"

    async def update_and_audit(
        self, proposal: Proposal, draft: AuditDraft, *, expected: Proposal | None = None
    ) -> None:
        # The update goes in the round trip that takes the audit chain's lock and reads its head (issue 18:
        # one round trip fewer per step); the server runs it first, as before, and nothing is appended
        # unless it changed the one row. The same Conflicts as update_proposal, then the same append.
        if expected is None:
            statement, params = self._UPDATE, self._update_params(proposal)
        elif expected.id != proposal.id or expected.version != proposal.version - 1:
            raise _changed_underneath(proposal)
        else:
            # a row whose content differs from ``expected`` in any way (edited by hand, MAC kept or not) is
            # not updated: the caller re-reads it, and the read's seal check names the tampering
            statement = self._UPDATE_EXPECTED
            params = (*self._update_params(proposal), Jsonb(to_record(expected)))
        prelude = Prelude(statement, params, lambda rowcount: rowcount == 1)
        try:
            event = await self._events.append_preceded_on(self._conn, draft, prelude, commit=True)
        except PreludeFailed as failed:
            if isinstance(failed.error, psycopg.errors.UniqueViolation):
                raise _key_taken() from failed.error
            raise failed.error from None
        if event is None:
            raise _changed_underneath(proposal)

    async def replace_proposals(self, proposals: Sequence[Proposal]) -> None:
        await self._conn.execute("DELETE FROM gateway_proposals WHERE tenant_id = %s", (self._tenant,))
        for proposal in proposals:
            await self._conn.execute(
                self._INSERT + " ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status,"
                " execution_key = EXCLUDED.execution_key, updated_at = EXCLUDED.updated_at,"
                " version = EXCLUDED.version, record = EXCLUDED.record,"
                " record_key_id = EXCLUDED.record_key_id, record_mac = EXCLUDED.record_mac",
                self._params(proposal),
            )
            await self._conn.execute(
                "INSERT INTO gateway_proposal_tenants (id, tenant_id) VALUES (%s, %s)"
                " ON CONFLICT (id) DO NOTHING",
                (proposal.id, proposal.tenant_id),
            )

    async def list_proposals(self, where: ProposalFilter) -> list[Proposal]:
        clauses, params = proposals_where(self._tenant, where)
        rows = await self._all(
            f"SELECT record{self._mark_column('p')} FROM gateway_proposals WHERE {clauses}", params
        )
        self._note_marks(rows)
        return [from_record(r["record"]) for r in rows]

    async def overview(self, where: ProposalFilter) -> PolicyOverview:
        head = await self._one(HEAD_SEQ, (self._tenant,))
        assert head is not None  # an aggregate always answers one row
        marks: list[str] = []
        self._read_marks = marks
        try:
            proposals = await self.list_proposals(where)
            entries = await self.kill_switch_entries()
            exemptions = await self.exemptions()
        finally:
            self._read_marks = None
        return PolicyOverview(
            proposals=proposals, kill_switch=entries, exemptions=exemptions, mark=mark_of(head["head"], marks)
        )

    def _mark_column(self, kind: str) -> str:
        """The row-version column while an overview reads (``overview``); nothing otherwise: the hot
        reads of proposals, switches and exemptions outside the card do not pay for it."""
        return "" if self._read_marks is None else ", " + row_mark(kind)

    def _note_marks(self, rows: Sequence[dict[str, Any]]) -> None:
        if self._read_marks is not None:
            self._read_marks.extend(r["record_mark"] for r in rows)

    # --- kill switch -------------------------------------------------------------------------------

    async def kill_switch_entries(self) -> list[KillSwitchEntry]:
        # read with the locked proposal (get_proposal(with_kill_switch=True)), at most once
        prefetched, self._switch_rows = self._switch_rows, None
        try:
            if isinstance(prefetched, psycopg.Error):
                raise prefetched
            if self._read_marks is not None:  # an overview: the rows with their versions, read now
                rows = await self._all(_KILL_SWITCH_MARKED_ROWS, (self._tenant,))
            else:
                rows = (
                    prefetched
                    if prefetched is not None
                    else await self._all(_KILL_SWITCH_ROWS, (self._tenant,))
                )
        except psycopg.Error as err:
            # the transaction is aborted now; the caller fails closed and leaves it
            raise translate(err, "reading the kill switch") from err
        self._note_marks(rows)
        entries = []
        versions: dict[str, int] = {}
        for r in rows:
            entry = KillSwitchEntry(**{k: v for k, v in r.items() if not k.startswith("record_")})
            # a switch row changed outside the brain refuses every action (RECORD_TAMPERED) until reset
            self._seals.check_row(r, KILL_SWITCH_KIND, entry.scope, kill_switch_body(self._tenant, entry))
            entries.append(entry)
            versions[entry.scope] = int(r["record_version"])
        if self._ledger is not None:
            # A switch row with a valid MAC may still be an older copy (off, before it was turned on) or
            # be gone (no row reads as off): the ledger knows the version each scope reached.
            for scope, floor in self._ledger.view().versions(self._tenant, KILL_SWITCH_KIND).items():
                found = versions.get(scope)
                if found is None or found < floor:
                    raise RecordTampered(
                        KILL_SWITCH_KIND,
                        scope,
                        f"the ledger records version {floor} of this switch but the row "
                        + ("is gone (deleted)" if found is None else f"is version {found} (an older copy)")
                        + "; set the switch again to restore it",
                    )
        return entries

    async def set_kill_switch(self, entry: KillSwitchEntry) -> None:
        self._switch_rows = None  # a read made along with a locked proposal is stale from now on
        floor = 0
        if self._ledger is not None:
            floor = self._ledger.view().versions(self._tenant, KILL_SWITCH_KIND).get(entry.scope, 0)
        version, key_id, mac = await self._seals.next_seal(
            "gateway_kill_switch",
            "scope = %s",
            (entry.scope,),
            KILL_SWITCH_KIND,
            entry.scope,
            kill_switch_body(self._tenant, entry),
            # above the ledger's floor: setting the switch again restores a deleted or older row
            at_least=floor + 1,
        )
        if self._ledger is not None:
            self.pending_marks.append(
                LedgerMark(
                    tenant_id=self._tenant, kind=KILL_SWITCH_KIND, record_id=entry.scope, version=version
                )
            )
        await self._conn.execute(
            "INSERT INTO gateway_kill_switch (tenant_id, scope, enabled, rationale, updated_by, updated_at, "
            + RECORD_COLUMNS
            + ") VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (tenant_id, scope) DO UPDATE SET"
            " enabled = EXCLUDED.enabled, rationale = EXCLUDED.rationale, updated_by = EXCLUDED.updated_by,"
            " updated_at = EXCLUDED.updated_at, record_version = EXCLUDED.record_version,"
            " record_key_id = EXCLUDED.record_key_id, record_mac = EXCLUDED.record_mac",
            (
                self._tenant,
                entry.scope,
                entry.enabled,
                entry.rationale,
                entry.updated_by,
                entry.updated_at,
                version,
                key_id,
                mac,
            ),
        )

    # --- exemptions --------------------------------------------------------------------------------

    async def exemptions(self, *, capability_id: str | None = None) -> list[Exemption]:
        rows = await self._all(
            f"SELECT {EXEMPTION_COLUMNS}, {RECORD_COLUMNS}{self._mark_column('e')} FROM gateway_exemptions"
            " WHERE tenant_id = %s AND (%s::text IS NULL OR capability_id = %s) ORDER BY created_at DESC, id DESC",
            (self._tenant, capability_id, capability_id),
        )
        self._note_marks(rows)
        return [await self._seals.checked_exemption(r) for r in rows]

    async def get_exemption(self, exemption_id: str) -> Exemption | None:
        row = await self._one(
            f"SELECT {EXEMPTION_COLUMNS}, {RECORD_COLUMNS} FROM gateway_exemptions"
            " WHERE tenant_id = %s AND id = %s",
            (self._tenant, exemption_id),
        )
        return None if row is None else await self._seals.checked_exemption(row)

    async def save_exemption(self, exemption: Exemption) -> None:
        e = exemption
        version, key_id, mac = await self._seals.next_seal(
            "gateway_exemptions", "id = %s", (e.id,), EXEMPTION_KIND, e.id, exemption_body(e)
        )
        # only the revocation of a stored exemption may change
        await self._conn.execute(
            f"INSERT INTO gateway_exemptions ({EXEMPTION_COLUMNS}, {RECORD_COLUMNS}) VALUES (%s, %s, %s, %s,"
            " %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET"
            " revoked_at = EXCLUDED.revoked_at, revoked_by = EXCLUDED.revoked_by,"
            " revoke_reason = EXCLUDED.revoke_reason, record_version = EXCLUDED.record_version,"
            " record_key_id = EXCLUDED.record_key_id, record_mac = EXCLUDED.record_mac"
            " WHERE gateway_exemptions.tenant_id = EXCLUDED.tenant_id",
            (
                e.id,
                e.tenant_id,
                e.capability_id,
                e.target,
                e.actor_id,
                e.justification,
                e.created_by,
                e.created_at,
                e.expires_at,
                e.revoked_at,
                e.revoked_by,
                e.revoke_reason,
                version,
                key_id,
                mac,
            ),
        )

    # --- throttles ---------------------------------------------------------------------------------

    async def target_facts(
        self, target: str, *, exclusive: bool, cooldown: bool, started_after: datetime
    ) -> TargetFacts:
        if exclusive:
            await self._conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('studio_brain.gateway.target:' || %s || ':' || %s, 0))",
                (self._tenant, target),
            )
        if not exclusive and not cooldown:
            return TargetFacts()
        # read after the lock (a statement of its own, so its snapshot sees every run the lock waited for);
        # an executing proposal's updated_at is the moment it started executing
        row = await self._one(
            "SELECT (SELECT last_started_at FROM gateway_targets WHERE tenant_id = %s AND target = %s"
            "        AND %s) AS last_started_at,"
            " (SELECT count(*) FROM gateway_proposals WHERE tenant_id = %s AND target = %s"
            "  AND status = 'executing' AND updated_at > %s AND %s) AS in_flight",
            (self._tenant, target, cooldown, self._tenant, target, started_after, exclusive),
        )
        assert row is not None
        return TargetFacts(last_started_at=row["last_started_at"], in_flight=int(row["in_flight"]))

    def _rate_statement(self, takes: Sequence[tuple[str, datetime, int]]) -> tuple[str, list[Any]]:
        # one statement: every bucket counts one use unless it is at its limit; all must count
        values = ", ".join(["(%s, %s::timestamptz, %s::int)"] * len(takes))
        params: list[Any] = [v for take in takes for v in take]
        return (
            f"WITH t(bucket, window_start, lim) AS (VALUES {values})"
            " INSERT INTO gateway_rate_buckets AS b (tenant_id, bucket, window_start, count)"
            " SELECT %s, bucket, window_start, 1 FROM t WHERE lim > 0"
            " ON CONFLICT (tenant_id, bucket, window_start) DO UPDATE SET count = b.count + 1"
            " WHERE b.count < (SELECT lim FROM t WHERE t.bucket = EXCLUDED.bucket)"
            " RETURNING bucket",
            [*params, self._tenant],
        )

    async def take_rate_tokens(
        self, takes: Sequence[tuple[str, datetime, int]], *, then_audit: AuditDraft | None = None
    ) -> bool:
        if then_audit is not None:
            if not takes:
                await self._events.append_on(self._conn, then_audit, commit=True)
                return True
            # Counted right after the audit chain's lock is taken, in the head read's round trip; the
            # event is appended and the transaction committed in one more round trip, only if all counted.
            query, params = self._rate_statement(takes)
            want = len(takes)
            event = await self._events.append_guarded_on(
                self._conn, then_audit, Guard(query, params, lambda rows: len(rows) == want), commit=True
            )
            return event is not None
        if not takes:
            return True
        rows = await self._all(*self._rate_statement(takes))
        return len(rows) == len(takes)

    async def rate_buckets(self, *, limit: int) -> list[RateBucket]:
        rows = await self._all(
            "SELECT bucket, window_start, count FROM gateway_rate_buckets WHERE tenant_id = %s"
            " ORDER BY window_start DESC, bucket LIMIT %s",
            (self._tenant, limit),
        )
        return [RateBucket(**r) for r in rows]

    async def reset_rate_bucket(self, bucket: str) -> int:
        cursor = await self._conn.execute(
            "DELETE FROM gateway_rate_buckets WHERE tenant_id = %s AND bucket = %s", (self._tenant, bucket)
        )
        return cursor.rowcount

    async def mark_target_started(self, target: str, at: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO gateway_targets (tenant_id, target, last_started_at) VALUES (%s, %s, %s)"
            " ON CONFLICT (tenant_id, target) DO UPDATE SET"
            " last_started_at = GREATEST(gateway_targets.last_started_at, EXCLUDED.last_started_at)",
            (self._tenant, target, at),
        )

    # --- agent tokens ------------------------------------------------------------------------------

    async def save_agent_token(self, token: AgentToken) -> None:
        t = token
        # every write bumps the row's version, so a restored older row is an older version
        version, key_id, mac = await self._seals.next_seal(
            "agent_tokens", "id = %s", (t.id,), TOKEN_KIND, t.id, token_body(t)
        )
        # only the revocation of a stored token may change
        await self._conn.execute(
            f"INSERT INTO agent_tokens ({TOKEN_COLUMNS}, record_version, record_key_id, record_mac)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET revoked_at = EXCLUDED.revoked_at, revoked_by = EXCLUDED.revoked_by,"
            " record_version = EXCLUDED.record_version, record_key_id = EXCLUDED.record_key_id,"
            " record_mac = EXCLUDED.record_mac"
            " WHERE agent_tokens.tenant_id = EXCLUDED.tenant_id",
            (
                t.id,
                t.tenant_id,
                t.agent_id,
                t.token_hash,
                Jsonb(sorted(t.scopes)),
                t.created_by,
                t.created_at,
                t.expires_at,
                t.revoked_at,
                t.revoked_by,
                version,
                key_id,
                mac,
            ),
        )

    async def get_agent_token(self, token_id: str) -> AgentToken | None:
        row = await self._one(
            f"SELECT {TOKEN_COLUMNS}, record_version, record_key_id, record_mac FROM agent_tokens"
            " WHERE tenant_id = %s AND id = %s",
            (self._tenant, token_id),
        )
        return None if row is None else await self._seals.checked_token(row)

    async def agent_tokens(self) -> list[AgentToken]:
        rows = await self._all(
            f"SELECT {TOKEN_COLUMNS} FROM agent_tokens WHERE tenant_id = %s ORDER BY created_at DESC, id DESC",
            (self._tenant,),
        )
        return [token_of(r) for r in rows]

    # --- audit -------------------------------------------------------------------------------------

    async def audit(self, draft: AuditDraft, *, commit: bool = False) -> None:
        await self._events.append_on(self._conn, draft, commit=commit)


class PostgresGatewayStore:
    def __init__(
        self,
        database: Database,
        events: TransactionalEventStore,
        keyring: Keyring | None = None,
        *,
        ledger: RecordLedger | None = None,
    ) -> None:
        self._db = database
        self._events = events
        #: with the brain's keyring, proposal and agent-token rows are keyed records (checked at use)
        self._keyring = keyring
        #: issue 12: the kill switch's version floors, outside the database
        self._ledger = ledger

    @asynccontextmanager
    async def transaction(self, tenant_id: str) -> AsyncIterator[PostgresGatewayTransaction]:
        try:
            # RLS: every statement of this transaction sees only this tenant's rows (the scope statement
            # is also the connection's liveness check: one round trip, issue 18)
            async with self._db.tenant_connection(tenant_id) as conn:
                tx = PostgresGatewayTransaction(conn, tenant_id, self._events, self._keyring, self._ledger)
                yield tx
            # committed: only now may the ledger ask every later read for what this transaction wrote
            if tx.pending_marks and self._ledger is not None:
                await self._ledger.mark(tx.pending_marks)
        except psycopg.Error as err:
            raise translate(err, "running a gateway transaction") from err
        except RecordTampered as tampered:
            # the use case's transaction is rolled back; the refusal is audited in one of its own
            await self._audit_tampered(tenant_id, tampered)
            raise

    async def overview_mark(self, tenant_id: str, where: ProposalFilter) -> object:
        clauses, params = proposals_where(tenant_id, where)
        try:
            # one query message (ADR 0018): the card's mark costs one round trip and no record decoded
            rows = await self._db.tenant_statement(
                tenant_id, mark_statement(clauses), [tenant_id, *params, tenant_id, tenant_id]
            )
        except psycopg.Error as err:
            raise translate(err, "reading the capabilities overview's mark") from err
        return mark_of(rows[0]["head"], rows[0]["marks"].split())

    async def _audit_tampered(self, tenant_id: str, tampered: RecordTampered) -> None:
        draft = AuditDraft(
            tenant_id=tenant_id,
            actor_type=ActorType.SYSTEM,
            actor_id="studio-brain",
            action="gateway.record.tampered",
            target="gateway",
            rationale=str(tampered),
            approval_state=ApprovalState.NOT_APPLICABLE,
            input_hash=sha256_hex({"kind": tampered.kind, "id": tampered.record_id}),
            request_id=f"record-check:{tampered.record_id}",
            correlation_id=tampered.record_id,
            metadata={
                "reasonCode": str(ReasonCode.RECORD_TAMPERED),
                "recordKind": tampered.kind,
                "recordId": tampered.record_id,
            },
        )
        try:
            async with self._db.connection() as conn:
                await self._events.append_on(conn, draft, commit=True)
        except psycopg.Error as err:
            raise translate(err, "auditing a tampered record") from err

    async def proposal_tenant(self, proposal_id: str) -> str | None:
        try:
            async with self._db.connection() as conn:
                cursor = await conn.execute(
                    "SELECT tenant_id FROM gateway_proposal_tenants WHERE id = %s", (proposal_id,)
                )
                row = await cursor.fetchone()
        except psycopg.Error as err:
            raise translate(err, "locating a proposal") from err
        return None if row is None else str(row["tenant_id"])
