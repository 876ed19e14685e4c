"""Reading the audit log: the filters (:class:`AuditQuery`), a page of results, and the match rules every
store shares (a dotted action prefix matches whole segments)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from studio_brain.domain.audit.event import ApprovalState, AuditEvent
from studio_brain.domain.errors import InputInvalid


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditQuery:
    """Filters for reading the log; pages by keyset on (tenant, seq). No hidden caps: ``limit`` is honoured.

    ``action_prefix`` matches whole dotted segments: ``capability.proposal`` matches
    ``capability.proposal`` and ``capability.proposal.approved`` but not ``capability.proposals``.
    The time range is half-open: ``since <= at < until``.
    """

    action_prefix: str | None = None
    actor_id: str | None = None
    capability_id: str | None = None
    approval_state: ApprovalState | None = None
    since: datetime | None = None
    until: datetime | None = None
    correlation_id: str | None = None
    #: return events with seq > after_seq (ascending) ...
    after_seq: int | None = None
    #: ... or, when newest_first, events with seq < before_seq (descending)
    before_seq: int | None = None
    newest_first: bool = False
    limit: int = 100


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The newest event of a tenant's chain, by its seq and hash.

    The log is append-only and grows in seq order (appends to a chain are serialised, the database
    refuses UPDATE, DELETE and TRUNCATE), so a page of a tenant's log can change only when its head moves:
    what a cache of encoded pages keys on (issue 18, ``web/audit_pages.py``). The hash tells a chain apart
    from another that reached the same seq (a database restored and written again)."""

    seq: int
    hash: str


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditPage:
    events: list[AuditEvent]
    #: pass as after_seq (or before_seq when newest_first) to get the next page; None at the end
    next_cursor: int | None


def check_query(query: AuditQuery) -> None:
    """Refuse a query no store can answer sensibly (InputInvalid)."""
    if isinstance(query.limit, bool) or not isinstance(query.limit, int) or query.limit < 1:
        raise InputInvalid(f"audit query limit must be a positive integer, got {query.limit!r}")
    for name in ("after_seq", "before_seq"):
        value = getattr(query, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise InputInvalid(f"audit query {name} must be a non-negative integer, got {value!r}")
    if query.after_seq is not None and query.newest_first:
        raise InputInvalid("audit query: after_seq pages oldest-first; use before_seq with newest_first")
    if query.before_seq is not None and not query.newest_first:
        raise InputInvalid("audit query: before_seq pages newest-first; set newest_first")
    for name in ("since", "until"):
        value = getattr(query, name)
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise InputInvalid(f"audit query {name} must be timezone-aware")
    if query.approval_state is not None:
        try:
            ApprovalState(query.approval_state)
        except ValueError:
            raise InputInvalid(f"audit query approval_state {query.approval_state!r} is unknown") from None


def action_matches(action: str, prefix: str) -> bool:
    """Dotted-segment prefix match (see :class:`AuditQuery`); a trailing ``.`` means children only."""
    if prefix.endswith("."):
        return action.startswith(prefix)
    return action == prefix or action.startswith(prefix + ".")


def matches(event: AuditEvent, query: AuditQuery) -> bool:
    """True when ``event`` passes every filter of ``query`` (cursor fields excluded)."""
    return (
        (query.action_prefix is None or action_matches(event.action, query.action_prefix))
        and (query.actor_id is None or event.actor_id == query.actor_id)
        and (query.capability_id is None or event.capability_id == query.capability_id)
        and (query.approval_state is None or event.approval_state == query.approval_state)
        and (query.since is None or event.at >= query.since)
        and (query.until is None or event.at < query.until)
        and (query.correlation_id is None or event.correlation_id == query.correlation_id)
    )
