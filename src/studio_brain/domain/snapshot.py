"""The StudioState snapshot (schema v3.0 + tenantId + diagnostics): built from one cloud read, hashed, diffed.

Pure: the read results, the times and the tenant are passed in. Hashes cover only what was read (rule
definitions, counts, totals) — never read times or durations — so the same cloud data always gives the
same ``sourceHashes``. A failed or timed-out query is ``null`` and makes the snapshot partial; it is
never reported as 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from enum import StrEnum
from typing import Any

from studio_brain.domain.hashing import sha256_hex, to_json_value
from studio_brain.domain.rules import FINANCE_FIELDS, SNAPSHOT_FIELDS, RuleTable
from studio_brain.domain.state import Completeness

SCHEMA_VERSION = "v3.0"
#: the sections a diff compares, key by key
DIFF_SECTIONS: tuple[str, ...] = ("counts", "ops", "finance", "sourceHashes")


class QueryStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    TIMED_OUT = "timed_out"


@dataclass(frozen=True, kw_only=True, slots=True)
class QueryResult:
    """One count query: a rule's count (``key`` = its target) or a collection total (``key`` = collection)."""

    key: str
    collection: str
    count: int | None
    status: QueryStatus
    duration_ms: float
    #: a short, secret-free reason when the query did not succeed
    error: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class CloudRead:
    """Everything one read of the cloud returned, as a source (Firestore, demo) reports it."""

    source: str
    read_at: datetime
    rule_counts: tuple[QueryResult, ...]
    totals: tuple[QueryResult, ...]
    duration_ms: float

    def rule(self, target: str) -> QueryResult | None:
        return next((r for r in self.rule_counts if r.key == target), None)

    def total(self, collection: str) -> QueryResult | None:
        return next((r for r in self.totals if r.key == collection), None)


@dataclass(frozen=True, kw_only=True, slots=True)
class FinanceSummary:
    """The finance figures from a Cloud Functions read endpoint (optional; replaces the finance rules)."""

    pending_orders: int
    unsettled_payments: int
    read_at: datetime
    source: str = "functions"


@dataclass(frozen=True, kw_only=True, slots=True)
class Snapshot:
    document: dict[str, Any]
    completeness: Completeness
    #: SHA-256 of the canonical document (what the store and the audit event record)
    snapshot_hash: str


def snapshot_date_at(moment: datetime, zone: tzinfo) -> date:
    """The studio's calendar date at ``moment`` (a snapshot at 23:30 in Phoenix belongs to that day)."""
    return moment.astimezone(zone).date()


def _iso(moment: datetime) -> str:
    text = to_json_value(moment)
    assert isinstance(text, str)
    return text


def _missing(key: str, collection: str) -> QueryResult:
    return QueryResult(
        key=key,
        collection=collection,
        count=None,
        status=QueryStatus.FAILED,
        duration_ms=0.0,
        error="the source returned no result for this query",
    )


def firestore_source_hash(table: RuleTable, read: CloudRead) -> str:
    """SHA-256 over the rule table version, each rule's definition and count, and every total."""
    rules = []
    for rule in table.rules:
        result = read.rule(rule.target)
        rules.append({**rule.definition(), "count": result.count if result else None})
    totals = {}
    for collection in table.collections:
        total = read.total(collection)
        totals[collection] = total.count if total else None
    return sha256_hex({"ruleTableVersion": table.version, "rules": rules, "totals": totals})


def stripe_source_hash(table: RuleTable, read: CloudRead, finance: FinanceSummary | None) -> str | None:
    """SHA-256 over the finance figures as read, or None when nothing finance-related was read."""
    if finance is not None:
        return sha256_hex(
            {
                "source": finance.source,
                "pendingOrders": finance.pending_orders,
                "unsettledPayments": finance.unsettled_payments,
            }
        )
    results = [read.rule(t) for t in FINANCE_FIELDS]
    if all(r is None or r.count is None for r in results):
        return None
    rules = [
        {**table.rule(t).definition(), "count": r.count if r else None}
        for t, r in zip(FINANCE_FIELDS, results, strict=True)
    ]
    return sha256_hex({"source": "firestore-rules", "ruleTableVersion": table.version, "rules": rules})


def build_snapshot(
    *,
    table: RuleTable,
    read: CloudRead,
    tenant_id: str,
    snapshot_date: date,
    generated_at: datetime,
    finance: FinanceSummary | None = None,
    warnings: tuple[str, ...] = (),
) -> Snapshot:
    """The snapshot document of one read. ``finance`` (from Functions) replaces the finance rules' numbers."""
    values: dict[str, int | None] = {}
    rule_diag: dict[str, Any] = {}
    failed: set[str] = set()
    timed_out: set[str] = set()
    for rule in table.rules:
        result = read.rule(rule.target) or _missing(rule.target, rule.collection)
        values[rule.target] = result.count if result.status is QueryStatus.OK else None
        rule_diag[rule.target] = _query_diag(result)
        _note_failure(result, failed, timed_out)

    collections: dict[str, Any] = {}
    notes = list(warnings)
    for collection in table.collections:
        total = read.total(collection) or _missing(collection, collection)
        _note_failure(total, failed, timed_out)
        count = total.count if total.status is QueryStatus.OK else None
        collections[collection] = {
            "total": count,
            "unclassified": _unclassified(table, collection, count, values),
            "status": total.status.value,
            "durationMs": round(total.duration_ms, 3),
            **({"error": total.error} if total.error else {}),
        }
        if count == 0:
            notes.append(f"collection {collection!r} has no documents (missing or empty): its rules count 0")

    stripe_read_at: datetime | None = None
    finance_source = "firestore-rules"
    if finance is not None:
        values["finance.pendingOrders"] = finance.pending_orders
        values["finance.unsettledPayments"] = finance.unsettled_payments
        stripe_read_at = finance.read_at
        finance_source = finance.source
    elif any(values[t] is not None for t in FINANCE_FIELDS):
        stripe_read_at = read.read_at

    completeness = Completeness.PARTIAL if failed or timed_out else Completeness.FULL
    sections: dict[str, dict[str, int | None]] = {"counts": {}, "ops": {}, "finance": {}}
    for target in SNAPSHOT_FIELDS:
        section, name = target.split(".", 1)
        sections[section][name] = values[target]

    document: dict[str, Any] = {
        "schemaVersion": SCHEMA_VERSION,
        "tenantId": tenant_id,
        "snapshotDate": snapshot_date.isoformat(),
        "generatedAt": _iso(generated_at),
        "cloudSync": {
            "firestoreReadAt": _iso(read.read_at),
            "stripeReadAt": _iso(stripe_read_at) if stripe_read_at else None,
        },
        **sections,
        "sourceHashes": {
            "firestore": firestore_source_hash(table, read),
            "stripe": stripe_source_hash(table, read, finance),
        },
        "diagnostics": {
            "source": read.source,
            "completeness": completeness.value,
            "failedCollections": sorted(failed),
            "timedOutCollections": sorted(timed_out),
            "collections": collections,
            "rules": rule_diag,
            "durationMs": round(read.duration_ms, 3),
            "ruleTable": {"version": table.version, "hash": table.hash},
            "financeSource": finance_source,
            "warnings": notes,
        },
    }
    return Snapshot(document=document, completeness=completeness, snapshot_hash=sha256_hex(document))


def _query_diag(result: QueryResult) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "collection": result.collection,
        "status": result.status.value,
        "durationMs": round(result.duration_ms, 3),
    }
    if result.error:
        shown["error"] = result.error
    return shown


def _note_failure(result: QueryResult, failed: set[str], timed_out: set[str]) -> None:
    if result.status is QueryStatus.FAILED:
        failed.add(result.collection)
    elif result.status is QueryStatus.TIMED_OUT:
        timed_out.add(result.collection)


def _unclassified(
    table: RuleTable, collection: str, total: int | None, values: Mapping[str, int | None]
) -> int | None:
    """Documents of the collection that no rule counted, when the rules make that knowable."""
    basis = table.unclassified_basis(collection)
    if total is None or basis is None:
        return None
    counted = [values[r.target] for r in basis]
    if any(c is None for c in counted):
        return None
    return total - sum(c for c in counted if c is not None)


def diff_documents(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Key-level changes ``{"counts.batchesActive": {"from": 3, "to": 5}}`` between two snapshots."""
    changes: dict[str, dict[str, Any]] = {}
    for section in DIFF_SECTIONS:
        before = old.get(section) or {}
        after = new.get(section) or {}
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                changes[f"{section}.{key}"] = {"from": before.get(key), "to": after.get(key)}
    return changes


def metric(document: Mapping[str, Any], target: str) -> int | None:
    """The value of a dotted snapshot field (``counts.batchesActive``) in a stored document."""
    section, name = target.split(".", 1)
    value = (document.get(section) or {}).get(name)
    return value if isinstance(value, int) else None
