"""The drafts API: list drafts in the Portal's row shapes, let agents add drafts, let staff review marketing
copy. Swarms reach this service only through :meth:`DraftService.sink`, which can add and nothing else.

Permissions (every refusal is audited with its reason code):
- read: staff, or an agent with scope ``drafts:read``;
- add: an agent with scope ``drafts:write`` (or ``drafts:<kind>:write``), or staff — same validation,
  dedupe and cooldown as a swarm's drafts;
- review marketing: staff only (an agent can never move a draft towards publishing).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft
from studio_brain.domain.drafts import (
    Draft,
    DraftKind,
    DraftOutcome,
    DraftStatus,
    Evidence,
    Finding,
    Severity,
    copy_leaks,
    review_transition,
)
from studio_brain.domain.errors import (
    Conflict,
    InputInvalid,
    NotFound,
    PolicyRefused,
    ReasonCode,
    StudioBrainError,
)
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.identity import Principal
from studio_brain.domain.secrets import SecretInPayload, describe, scan
from studio_brain.domain.snapshot import metric
from studio_brain.logging import get_logger
from studio_brain.ports import Clock, EventStore, IdFactory, StateStore
from studio_brain.ports.drafts import DraftSink, DraftStore, ProposalDrafter
from studio_brain.services.refusal_windows import RefusalWindows
from studio_brain.services.swarms.draft_rows import ROWS as _ROWS
from studio_brain.services.swarms.draft_rows import finance_row, marketing_row, ops_row
from studio_brain.services.swarms.marketing import PRIVATE_METRICS
from studio_brain.services.swarms.proposal_drafter import GatewayProposalDrafter

#: the row shapes and the gateway drafter live in their own modules; importable from here as before
__all__ = ["MAX_LIMIT", "DraftService", "GatewayProposalDrafter", "finance_row", "marketing_row", "ops_row"]

log = get_logger(__name__)

MAX_LIMIT = 500
READ_SCOPE = "drafts:read"
WRITE_SCOPE = "drafts:write"


class _Sink:
    """Add-only view of the service for one swarm (nothing else is reachable through it)."""

    __slots__ = ("_actor", "_add", "_at")

    def __init__(self, service: DraftService, actor_id: str, at: datetime | None) -> None:
        self._add = service._record
        self._actor = actor_id
        self._at = at

    async def add(self, finding: Finding) -> DraftOutcome:
        outcome, _ = await self._add(finding, actor_type=ActorType.SYSTEM, actor_id=self._actor, at=self._at)
        return outcome


class DraftService:
    def __init__(
        self,
        *,
        tenant_id: str,
        store: DraftStore,
        clock: Clock,
        ids: IdFactory,
        events: EventStore | None = None,
        state_store: StateStore | None = None,
        proposals: ProposalDrafter | None = None,
    ) -> None:
        self._tenant = tenant_id
        self._store = store
        self._clock = clock
        self._ids = ids
        self._events = events
        self._state = state_store
        #: finance drafts from swarms also become draft reconciliation-review proposals when present
        self._proposals = proposals
        #: issue 12 item 8: one caller's repeated refusals become one counted row per window
        self._refusals = RefusalWindows(clock)

    def sink(self, swarm: str, *, at: datetime | None = None) -> DraftSink:
        """The add-only sink a swarm writes through; ``at`` dates its drafts (replaying a past day)."""
        return _Sink(self, f"swarm:{swarm}", at)

    # --- reading ------------------------------------------------------------------------------------
    async def list_rows(
        self, principal: Principal, kind: DraftKind, *, limit: int = 30
    ) -> list[dict[str, Any]]:
        """Newest first, in the Portal's row shape for ``kind``."""
        await self._require_read(principal, f"drafts.{kind.value}.list")
        if not 1 <= limit <= MAX_LIMIT:
            raise InputInvalid(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
        drafts = await self._store.list(principal.tenant_id, kind=kind, limit=limit)
        return [_ROWS[kind](d) for d in drafts]

    async def list_ops(self, principal: Principal, *, limit: int = 30) -> list[dict[str, Any]]:
        return await self.list_rows(principal, DraftKind.OPS, limit=limit)

    async def list_finance(self, principal: Principal, *, limit: int = 30) -> list[dict[str, Any]]:
        return await self.list_rows(principal, DraftKind.FINANCE, limit=limit)

    async def list_marketing(self, principal: Principal, *, limit: int = 30) -> list[dict[str, Any]]:
        return await self.list_rows(principal, DraftKind.MARKETING, limit=limit)

    async def get(self, principal: Principal, draft_id: str) -> Draft:
        await self._require_read(principal, "drafts.get")
        draft = await self._store.get(principal.tenant_id, draft_id)
        if draft is None:
            raise NotFound(f"no draft {draft_id!r}")
        return draft

    # --- agents -------------------------------------------------------------------------------------
    async def add_agent_draft(
        self,
        principal: Principal,
        *,
        kind: DraftKind | str,
        rule_id: str,
        title: str,
        rationale: str,
        recommendation: str,
        evidence: Mapping[str, Any],
        confidence: float,
        severity: Severity | str = Severity.LOW,
        snapshot_date: date | None = None,
        subject: str | None = None,
        channel: str | None = None,
        copy: str | None = None,
    ) -> dict[str, Any]:
        """Add a draft for an agent (or staff): ``{outcome, draftId}``; draftId is None unless created."""
        submitted = {
            "ruleId": rule_id,
            "title": title,
            "rationale": rationale,
            "recommendation": recommendation,
            "evidence": dict(evidence),
            "subject": subject,
            "channel": channel,
            "copy": copy,
        }
        findings = scan(submitted, location="draft")
        if findings:
            # no secret enters (issue 12): refused and audited with the kinds and places, never the value
            await self._audit(
                principal,
                action="drafts.add.refused",
                target="local",
                rationale=f"{ReasonCode.SECRET_IN_PAYLOAD.value}: {describe(findings)}",
                inputs={"action": "drafts.add", "reason": ReasonCode.SECRET_IN_PAYLOAD.value},
                state=ApprovalState.REJECTED,
            )
            raise SecretInPayload(findings)
        try:
            kind = DraftKind(kind)
            severity = Severity(severity)
        except ValueError as err:
            raise InputInvalid(f"unknown kind or severity: {err}") from None
        allowed = (
            principal.is_staff
            or principal.has_scope(WRITE_SCOPE)
            or principal.has_scope(f"drafts:{kind.value}:write")
        )
        if not allowed or principal.actor_type not in (ActorType.AGENT, ActorType.STAFF, ActorType.HUMAN):
            await self._refuse(
                principal, "drafts.add", ReasonCode.SCOPE_MISSING, f"needs scope {WRITE_SCOPE}"
            )
        body: dict[str, Any] = {}
        if kind is DraftKind.MARKETING:
            if not copy or not copy.strip():
                raise InputInvalid("a marketing draft needs copy")
            leaks = copy_leaks(f"{title}\n{copy}", await self._private_figures(principal.tenant_id))
            if leaks:
                await self._refuse(
                    principal,
                    "drafts.add",
                    ReasonCode.COPY_NOT_PUBLIC,
                    "copy may not hold internal figures: " + "; ".join(leaks),
                )
            body = {"channel": channel or "newsletter", "copy": copy, "templateVersion": "agent"}
        finding = Finding(
            kind=kind,
            rule_id=rule_id,
            subject=subject or rule_id,
            severity=severity,
            title=title,
            rationale=rationale,
            recommendation=recommendation,
            snapshot_date=snapshot_date,
            evidence=_evidence(evidence),
            confidence=float(confidence),
            body=body,
        )
        outcome, draft_id = await self._record(
            finding,
            actor_type=principal.actor_type,
            actor_id=principal.actor_id,
            tenant_id=principal.tenant_id,
        )
        return {"outcome": outcome.value, "draftId": draft_id}

    # --- staff review -------------------------------------------------------------------------------
    async def review_marketing(
        self, principal: Principal, draft_id: str, to_status: DraftStatus | str, rationale: str
    ) -> dict[str, Any]:
        """Move a marketing draft along ``draft → needs_review → approved_for_publish`` (staff only)."""
        if not principal.is_staff or principal.is_agent:
            await self._refuse(
                principal, "marketing.draft.review", ReasonCode.STAFF_REQUIRED, "only staff review copy"
            )
        if not rationale or not rationale.strip():
            raise InputInvalid("a review needs a rationale")
        try:
            wanted = DraftStatus(to_status)
        except ValueError:
            raise InputInvalid(
                f"toStatus {to_status!r} is not one of draft, needs_review, approved_for_publish"
            ) from None
        draft = await self._store.get(principal.tenant_id, draft_id)
        if draft is None or draft.kind is not DraftKind.MARKETING:
            raise NotFound(f"no marketing draft {draft_id!r}")
        review_transition(draft.status, wanted)
        now = self._clock.now()
        if not await self._store.set_status(
            principal.tenant_id, draft_id, expected=draft.status, to=wanted, at=now
        ):
            raise Conflict(f"draft {draft_id} changed while it was being reviewed; reload and retry")
        await self._audit(
            principal,
            action="marketing.draft.reviewed",
            target="local",
            rationale=rationale,
            inputs={"draftId": draft_id, "from": draft.status.value, "to": wanted.value},
            state=ApprovalState.APPROVED
            if wanted is DraftStatus.APPROVED_FOR_PUBLISH
            else ApprovalState.NOT_APPLICABLE,
        )
        log.info("marketing.draft.reviewed", draft_id=draft_id, from_status=draft.status, to_status=wanted)
        return {"draftId": draft_id, "fromStatus": draft.status.value, "toStatus": wanted.value}

    # --- the safety watch (issue 17) ---------------------------------------------------------------
    async def add_safety_draft(
        self,
        finding: Finding,
        *,
        actor_id: str,
        switch_off_device: str | None = None,
    ) -> tuple[DraftOutcome, str | None, str | None]:
        """Record a safety finding as an ops draft and, for a kiln left on, a *draft* ``hubitat.switch.set``
        off proposal (never submitted, approved or executed here). Returns (outcome, draftId, proposalId);
        a gateway refusal keeps the draft and is logged (the gateway audits its own refusals)."""
        outcome, draft_id = await self._record(finding, actor_type=ActorType.SYSTEM, actor_id=actor_id)
        if draft_id is None or switch_off_device is None or self._proposals is None:
            return outcome, draft_id, None
        try:
            proposal_id = await self._proposals.draft_capability(
                tenant_id=self._tenant,
                actor_id=actor_id,
                capability_id="hubitat.switch.set",
                input={"deviceId": switch_off_device, "state": "off"},
                rationale=f"Safety watch: {finding.title}. {finding.rationale} (draft {draft_id})",
                idempotency_key=f"safety-draft:{draft_id}",
            )
        except StudioBrainError as err:
            log.warning("draft.proposal_refused", draft_id=draft_id, error=err.message)
            return outcome, draft_id, None
        log.info("draft.proposal_drafted", draft_id=draft_id, proposal_id=proposal_id)
        return outcome, draft_id, proposal_id

    # --- internals ----------------------------------------------------------------------------------
    async def _record(
        self,
        finding: Finding,
        *,
        actor_type: ActorType,
        actor_id: str,
        tenant_id: str | None = None,
        at: datetime | None = None,
    ) -> tuple[DraftOutcome, str | None]:
        tenant = tenant_id or self._tenant
        draft_id = self._ids.new_id()
        outcome = await self._store.add(
            finding,
            tenant_id=tenant,
            draft_id=draft_id,
            actor_type=actor_type.value,
            actor_id=actor_id,
            at=at or self._clock.now(),
        )
        if outcome is not DraftOutcome.CREATED:
            log.debug("draft.suppressed", rule_id=finding.rule_id, outcome=outcome)
            return outcome, None
        if (
            self._proposals is not None
            and finding.kind is DraftKind.FINANCE
            and actor_type is ActorType.SYSTEM
        ):
            await self._draft_review_proposal(tenant, finding, draft_id)
        if self._events is not None:
            await self._events.append(
                AuditDraft(
                    tenant_id=tenant,
                    actor_type=actor_type,
                    actor_id=actor_id,
                    action=f"draft.{finding.kind.value}.created",
                    target="local",
                    rationale=finding.title,
                    approval_state=ApprovalState.NOT_APPLICABLE,
                    input_hash=sha256_hex(
                        {"evidence": finding.evidence.to_json(), "ruleId": finding.rule_id}
                    ),
                    output_hash=sha256_hex({"draftId": draft_id, "outcome": outcome.value}),
                    request_id=draft_id,
                    correlation_id=draft_id,
                    metadata={
                        "draftId": draft_id,
                        "kind": finding.kind.value,
                        "ruleId": finding.rule_id,
                        "severity": finding.severity.value,
                    },
                )
            )
        return outcome, draft_id

    async def _draft_review_proposal(self, tenant_id: str, finding: Finding, draft_id: str) -> None:
        """A draft gateway proposal to record the reconciliation review; a human submits it or not. A
        gateway refusal never loses the draft: it is logged (the gateway audits its own refusals)."""
        assert self._proposals is not None
        try:
            proposal_id = await self._proposals.draft_proposal(
                tenant_id=tenant_id,
                text=f"Reconciliation review: {finding.title}. {finding.recommendation} (draft {draft_id})",
                rationale=f"Finance swarm: {finding.rationale}",
                idempotency_key=f"swarm-draft:{draft_id}",
            )
        except StudioBrainError as err:
            log.warning("draft.proposal_refused", draft_id=draft_id, error=err.message)
            return
        log.info("draft.proposal_drafted", draft_id=draft_id, proposal_id=proposal_id)

    async def _private_figures(self, tenant_id: str) -> set[int]:
        if self._state is None:
            return set()
        latest = await self._state.latest_snapshot(tenant_id)
        if latest is None:
            return set()
        figures = {metric(latest.document, m) for m in PRIVATE_METRICS}
        # 0 and 1 are too common in ordinary copy to count as a disclosure
        return {f for f in figures if f is not None and f > 1}

    async def _require_read(self, principal: Principal, action: str) -> None:
        if not (
            principal.is_staff or principal.has_scope(READ_SCOPE) or principal.actor_type is ActorType.SYSTEM
        ):
            await self._refuse(principal, action, ReasonCode.SCOPE_MISSING, f"needs scope {READ_SCOPE}")

    async def _refuse(self, principal: Principal, action: str, reason: ReasonCode, message: str) -> None:
        await self._audit(
            principal,
            action=f"{action}.refused",
            target="local",
            rationale=f"{reason}: {message}",
            inputs={"action": action, "reason": reason},
            state=ApprovalState.REJECTED,
        )
        log.info("draft.refused", action=action, reason=reason, actor_id=principal.actor_id)
        raise PolicyRefused(reason, message)

    async def _audit(
        self,
        principal: Principal,
        *,
        action: str,
        target: str,
        rationale: str,
        inputs: dict[str, Any],
        state: ApprovalState,
    ) -> None:
        if self._events is None:
            return
        request_id = self._ids.new_id()
        draft = AuditDraft(
            tenant_id=principal.tenant_id,
            actor_type=principal.actor_type,
            actor_id=principal.actor_id,
            action=action,
            target=target,
            rationale=rationale,
            approval_state=state,
            input_hash=sha256_hex(inputs),
            request_id=request_id,
            correlation_id=request_id,
            metadata={**inputs, "credential": principal.credential()},
        )
        rows = [draft]
        if action.endswith(".refused"):
            key = (
                principal.tenant_id,
                principal.actor_type,
                principal.actor_id,
                action,
                str(inputs.get("reason")),
            )
            first, due = self._refusals.admit(key, draft)
            rows = [*due, *([first] if first is not None else [])]
        for row in rows:
            await self._events.append(row)

    async def flush_refusals(self) -> None:
        """Audit the counts of every open refusal window now (at shutdown, and in tests)."""
        if self._events is not None:
            for row in self._refusals.drain():
                await self._events.append(row)


def _evidence(raw: Mapping[str, Any]) -> Evidence:
    """Evidence from an API body: ``{snapshotIds?, snapshotDates?, metrics?, ruleIds?}``."""
    if not isinstance(raw, Mapping):
        raise InputInvalid("evidence must be an object")
    unknown = set(raw) - {"snapshotIds", "snapshotDates", "metrics", "ruleIds"}
    if unknown:
        raise InputInvalid(f"evidence has unknown keys: {', '.join(sorted(unknown))}")
    try:
        ids = tuple(str(x) for x in raw.get("snapshotIds") or ())
        dates = tuple(date.fromisoformat(str(x)) for x in raw.get("snapshotDates") or ())
        metrics = dict(raw.get("metrics") or {})
        rules = tuple(str(x) for x in raw.get("ruleIds") or ())
    except (TypeError, ValueError) as err:
        raise InputInvalid(f"evidence is malformed: {err}") from None
    return Evidence(snapshot_ids=ids, snapshot_dates=dates, metrics=metrics, rule_ids=rules)
