"""The capability gateway: :class:`GatewayService`, a facade composing its parts, each given one shared
:class:`GatewayContext` (collaborators + audit/refusal helpers):

- ``proposals.py``    propose, get, list, submit, approve, reject, cancel
- ``execution.py``    execute, replay, dry-run, recover stale executions
- ``admin.py``        kill switch, exemptions, rate-limit buckets
- ``agent_tokens.py`` issue, verify, list, revoke agent tokens
- ``rebuild.py``      rebuild the proposals table from the audit log
- ``recovery.py``     journal replay, stale executions, read-back of unknown outcomes (issue 13)
- ``effects.py``      connector commands and dry-run predicted effects; ``context.py`` what all share

Every call takes the verified :class:`Principal`; the tenant comes from it, never from input. Every
decision — allowed or refused — is audited with its reason code, actor, tenant, capability, input hash
and correlation id. A state change and its audit event commit in ONE transaction. A refusal rolls the
attempted change back, is audited in its own transaction, and then raises ``PolicyRefused``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, tzinfo

from studio_brain.domain.capabilities import Capability, Registry, Violation
from studio_brain.domain.policy import ConnectorFacts
from studio_brain.domain.records import Keyring
from studio_brain.ports.audit import EventStore
from studio_brain.ports.clock import Clock, IdFactory
from studio_brain.ports.gateway import ConnectorDirectory, GatewayStore
from studio_brain.ports.journal import ExecutionJournal
from studio_brain.services.gateway.admin import Admin
from studio_brain.services.gateway.agent_tokens import (
    AGENT_TOKEN_PREFIX,
    MAX_AGENT_TOKEN_LIFETIME,
    AgentTokens,
    IssuedToken,
)
from studio_brain.services.gateway.context import MAX_PAGE, GatewayContext, NotVisible, Refusal, Subject
from studio_brain.services.gateway.execution import (
    STALE_GRACE_SECONDS,
    DryRunResult,
    Execution,
    Executions,
    stale_after,
)
from studio_brain.services.gateway.proposals import Created, Proposals
from studio_brain.services.gateway.rebuild import ProposalRebuild
from studio_brain.services.gateway.reconcile import Reconciliation
from studio_brain.services.gateway.recovery import ExecutionRecovery, RecoveryReport

__all__ = [
    "AGENT_TOKEN_PREFIX",
    "MAX_AGENT_TOKEN_LIFETIME",
    "MAX_PAGE",
    "STALE_GRACE_SECONDS",
    "Created",
    "DryRunResult",
    "Execution",
    "GatewayContext",
    "GatewayService",
    "IssuedToken",
    "NotVisible",
    "RecoveryReport",
    "Refusal",
    "Subject",
    "stale_after",
]


class GatewayService:
    """The gateway's use cases (see docs/gateway.md), served by its parts; the method names and
    signatures are the parts' own (bound here once), so callers see one object."""

    def __init__(
        self,
        *,
        store: GatewayStore,
        registry: Registry,
        connectors: ConnectorDirectory,
        clock: Clock,
        ids: IdFactory,
        tenant_id: str,
        events: EventStore | None = None,
        token_source: Callable[[], str] = lambda: secrets.token_urlsafe(32),
        zone: tzinfo = UTC,
        journal: ExecutionJournal | None = None,
        outcome_retry_seconds: float = 30.0,
        keyring: Keyring | None = None,
    ) -> None:
        self._ctx = GatewayContext(
            store=store,
            registry=registry,
            connectors=connectors,
            clock=clock,
            ids=ids,
            tenant_id=tenant_id,
            events=events,
            token_source=token_source,
            zone=zone,
            journal=journal,
            outcome_retry_seconds=outcome_retry_seconds,
            keyring=keyring,
        )
        self._proposals = Proposals(self._ctx)
        self._executions = Executions(self._ctx)
        self._admin = Admin(self._ctx)
        self._tokens = AgentTokens(self._ctx)
        self._rebuild = ProposalRebuild(self._ctx)
        # proposals
        self.create_proposal = self._proposals.create_proposal
        self.get = self._proposals.get
        self.list_proposals = self._proposals.list_proposals
        self.submit = self._proposals.submit
        self.approve = self._proposals.approve
        self.reject = self._proposals.reject
        self.cancel = self._proposals.cancel
        # execution
        self.execute = self._executions.execute
        self.dry_run = self._executions.dry_run
        self.recover_stale_executions = self._executions.recover_stale_executions
        # issue 13: journal replay, stale executions, read-back (the execution-recovery job)
        self._recovery = ExecutionRecovery(self._ctx, self._executions)
        self.recover_executions = self._recovery.recover
        self.replay_journal = self._recovery.replay_journal
        self._reconciliation = Reconciliation(self._ctx, self._executions)
        self.reconcile = self._reconciliation.reconcile
        # administration
        self.kill_switch = self._admin.kill_switch
        self.kill_switch_state = self._admin.kill_switch_state
        self.set_kill_switch = self._admin.set_kill_switch
        self.exemptions = self._admin.exemptions
        self.overview = self._admin.overview
        self.overview_mark = self._admin.overview_mark
        self.create_exemption = self._admin.create_exemption
        self.revoke_exemption = self._admin.revoke_exemption
        self.rate_buckets = self._admin.rate_buckets
        self.reset_rate_bucket = self._admin.reset_rate_bucket
        # agent tokens
        self.issue_agent_token = self._tokens.issue_agent_token
        self.verify_agent_token = self._tokens.verify_agent_token
        self.agent_tokens = self._tokens.agent_tokens
        self.revoke_agent_token = self._tokens.revoke_agent_token
        # rebuild
        self.rebuild_proposals = self._rebuild.rebuild_proposals
        # issue 12: what an approval binds to (keyed with the brain's key), for detail views
        self.binding = self._ctx.binding
        # issue 12 item 8: the counts of refusal windows still open (at shutdown)
        self.flush_refusals = self._ctx.flush_refusals
        #: audit a refusal row made elsewhere (the Portal's unsupported steps) through the same windows
        self.audit_refused = self._ctx.audit_refused

    # --- the registry in force -----------------------------------------------------------------------

    @property
    def registry(self) -> Registry:
        return self._ctx.registry

    def capabilities(self) -> list[Capability]:
        return sorted(self._ctx.registry.capabilities.values(), key=lambda c: c.id)

    def lint(self) -> list[Violation]:
        return list(self._ctx.registry.violations)

    def connector_facts(self, tenant_id: str, capability: Capability) -> ConnectorFacts:
        connector = self._ctx.connectors.connector_for(tenant_id, capability.target.value)
        if connector is None:
            return ConnectorFacts(present=False)
        return ConnectorFacts(present=True, mode=connector.mode)
