"""Count rules: the versioned, hashed table that defines every StudioState number (collection + filters).

A rule is data, not code (ADR 0005): the Firestore adapter turns each rule into one server-side
``count()`` query, and any other source (the demo studio) evaluates the *same* rule objects in memory
with :meth:`CountRule.matches`, whose comparison follows Firestore's own equality (``false`` never
equals ``0``; ``1`` equals ``1.0``; a missing field matches nothing).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeAlias

from studio_brain.domain.errors import ConfigError
from studio_brain.domain.hashing import sha256_hex

Scalar: TypeAlias = str | int | float | bool

#: the ten numbers of snapshot schema v3.0, each defined by exactly one rule
SNAPSHOT_FIELDS: tuple[str, ...] = (
    "counts.batchesActive",
    "counts.batchesClosed",
    "counts.reservationsOpen",
    "counts.firingsScheduled",
    "counts.reportsOpen",
    "ops.blockedTickets",
    "ops.agentRequestsPending",
    "ops.highSeverityReports",
    "finance.pendingOrders",
    "finance.unsettledPayments",
)
#: the fields whose rules are the brain's read-only view of Stripe (sourceHashes.stripe covers them)
FINANCE_FIELDS: tuple[str, ...] = tuple(f for f in SNAPSHOT_FIELDS if f.startswith("finance."))

#: Firestore refuses an ``in`` filter with more values than this
MAX_IN_VALUES = 30

_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_RULE_KEYS = frozenset({"target", "collection", "where"})
_FILTER_KEYS = frozenset({"field", "op", "value"})


class Op(StrEnum):
    EQ = "=="
    IN = "in"


def firestore_equal(stored: Any, wanted: Scalar) -> bool:
    """Equality the way Firestore compares values: booleans are their own type, numbers compare by value."""
    if isinstance(stored, bool) or isinstance(wanted, bool):
        return isinstance(stored, bool) and isinstance(wanted, bool) and stored is wanted
    if isinstance(stored, int | float) and isinstance(wanted, int | float):
        return stored == wanted
    return type(stored) is type(wanted) and bool(stored == wanted)


@dataclass(frozen=True, kw_only=True, slots=True)
class Filter:
    """``field == value`` or ``field in values`` on a top-level document field."""

    field: str
    op: Op
    #: a scalar for ``==``; a non-empty tuple of scalars for ``in``
    value: Scalar | tuple[Scalar, ...]

    @property
    def values(self) -> tuple[Scalar, ...]:
        return self.value if isinstance(self.value, tuple) else (self.value,)

    def matches(self, document: Mapping[str, Any]) -> bool:
        if self.field not in document:
            return False
        stored = document[self.field]
        return any(firestore_equal(stored, wanted) for wanted in self.values)

    def definition(self) -> dict[str, Any]:
        value: Any = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"field": self.field, "op": self.op.value, "value": value}


@dataclass(frozen=True, kw_only=True, slots=True)
class CountRule:
    """One snapshot number: how many documents of ``collection`` match every filter."""

    target: str
    collection: str
    filters: tuple[Filter, ...]

    def matches(self, document: Mapping[str, Any]) -> bool:
        return all(f.matches(document) for f in self.filters)

    def definition(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "collection": self.collection,
            "where": [f.definition() for f in self.filters],
        }

    def implies(self, other: CountRule) -> bool:
        """True when every document this rule counts is also counted by ``other`` (decided statically)."""
        if self.collection != other.collection:
            return False
        mine = {f.field: f.values for f in self.filters}
        return all(
            f.field in mine and all(any(firestore_equal(v, w) for w in f.values) for v in mine[f.field])
            for f in other.filters
        )

    def disjoint_from(self, other: CountRule) -> bool:
        """True when no document can match both rules (some shared field wants non-overlapping values)."""
        if self.collection != other.collection:
            return True
        theirs = {f.field: f.values for f in other.filters}
        return any(
            f.field in theirs and not any(firestore_equal(v, w) for v in f.values for w in theirs[f.field])
            for f in self.filters
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class RuleTable:
    """The full, validated rule table. Build it with :func:`parse_rule_table`."""

    version: str
    rules: tuple[CountRule, ...]

    def definition(self) -> dict[str, Any]:
        return {"version": self.version, "rules": [r.definition() for r in self.rules]}

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical definition: recorded by every snapshot and audit event."""
        return sha256_hex(self.definition())

    @property
    def collections(self) -> tuple[str, ...]:
        """Every collection some rule reads, sorted (each also gets a total count)."""
        return tuple(sorted({r.collection for r in self.rules}))

    def rule(self, target: str) -> CountRule:
        for r in self.rules:
            if r.target == target:
                return r
        raise KeyError(target)

    def rules_for(self, collection: str) -> tuple[CountRule, ...]:
        return tuple(r for r in self.rules if r.collection == collection)

    def unclassified_basis(self, collection: str) -> tuple[CountRule, ...] | None:
        """The rules whose counts add up to "documents some rule counted", or None when that is unknowable.

        Rules implied by another rule of the collection are dropped (``highSeverityReports`` lies inside
        ``reportsOpen``); when the rest are pairwise disjoint, ``total - sum(their counts)`` is exactly
        the number of documents no rule counted. Overlapping rules leave it unknowable without a scan.
        """
        rules = self.rules_for(collection)
        basis = [
            r
            for i, r in enumerate(rules)
            if not any(j != i and r.implies(o) and (not o.implies(r) or j < i) for j, o in enumerate(rules))
        ]
        for i, a in enumerate(basis):
            for b in basis[i + 1 :]:
                if not a.disjoint_from(b):
                    return None
        return tuple(basis)


def _invalid(source: str, message: str) -> ConfigError:
    return ConfigError(f"rule table {source}: {message}")


def _scalar(raw: Any, where: str, source: str) -> Scalar:
    if isinstance(raw, bool | int | float | str):
        return raw
    raise _invalid(source, f"{where}: value {raw!r} must be a string, number or boolean")


def _parse_filter(raw: Any, where: str, source: str) -> Filter:
    if not isinstance(raw, Mapping):
        raise _invalid(source, f"{where}: each filter is a table {{field, op, value}}")
    unknown = sorted(set(raw) - _FILTER_KEYS)
    if unknown:
        raise _invalid(source, f"{where}: unknown key(s) {', '.join(unknown)} (expected field, op, value)")
    field, op, value = raw.get("field"), raw.get("op"), raw.get("value")
    if not isinstance(field, str) or not _FIELD_NAME.match(field):
        raise _invalid(source, f"{where}: field {field!r} must be a top-level field name")
    if op not in {o.value for o in Op}:
        raise _invalid(source, f"{where}: op {op!r} is not supported (use '==' or 'in')")
    if op == Op.EQ:
        return Filter(field=field, op=Op.EQ, value=_scalar(value, where, source))
    if not isinstance(value, list) or not value:
        raise _invalid(source, f"{where}: 'in' needs a non-empty list of values")
    if len(value) > MAX_IN_VALUES:
        raise _invalid(
            source, f"{where}: 'in' has {len(value)} values; Firestore allows at most {MAX_IN_VALUES}"
        )
    values = tuple(_scalar(v, where, source) for v in value)
    if len(set(values)) != len(values):
        raise _invalid(source, f"{where}: 'in' lists a value twice")
    return Filter(field=field, op=Op.IN, value=values)


def _parse_rule(raw: Any, index: int, source: str) -> CountRule:
    where = f"rules[{index}]"
    if not isinstance(raw, Mapping):
        raise _invalid(source, f"{where}: each rule is a table {{target, collection, where}}")
    unknown = sorted(set(raw) - _RULE_KEYS)
    if unknown:
        raise _invalid(
            source, f"{where}: unknown key(s) {', '.join(unknown)} (expected target, collection, where)"
        )
    target = raw.get("target")
    if target not in SNAPSHOT_FIELDS:
        raise _invalid(
            source, f"{where}: unknown snapshot field {target!r}; known: {', '.join(SNAPSHOT_FIELDS)}"
        )
    where = f"rules[{index}] ({target})"
    collection = raw.get("collection")
    if not isinstance(collection, str) or not _COLLECTION_NAME.match(collection):
        raise _invalid(source, f"{where}: collection {collection!r} is not a collection id")
    filters_raw = raw.get("where", [])
    if not isinstance(filters_raw, list):
        raise _invalid(source, f"{where}: 'where' must be a list of filters")
    filters = tuple(_parse_filter(f, where, source) for f in filters_raw)
    fields = [f.field for f in filters]
    if len(set(fields)) != len(fields):
        raise _invalid(source, f"{where}: filters a field twice; combine them into one 'in'")
    return CountRule(target=str(target), collection=collection, filters=filters)


def parse_rule_table(data: Mapping[str, Any], *, source: str = "(inline)") -> RuleTable:
    """Validate a rule table given as plain data; every problem is a ConfigError naming the rule."""
    unknown = sorted(set(data) - {"version", "rules"})
    if unknown:
        raise _invalid(source, f"unknown top-level key(s) {', '.join(unknown)} (expected version, rules)")
    version = data.get("version")
    if not isinstance(version, str) or not version.strip():
        raise _invalid(source, "'version' must be a non-empty string (bump it on every change)")
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise _invalid(source, "'rules' must be a non-empty list of [[rules]] tables")
    rules = tuple(_parse_rule(r, i, source) for i, r in enumerate(raw_rules))
    seen: set[str] = set()
    for r in rules:
        if r.target in seen:
            raise _invalid(source, f"duplicate rule for {r.target}; each snapshot field has exactly one")
        seen.add(r.target)
    missing = [f for f in SNAPSHOT_FIELDS if f not in seen]
    if missing:
        raise _invalid(source, f"no rule for {', '.join(missing)}; every snapshot field needs one")
    ordered = tuple(sorted(rules, key=lambda r: SNAPSHOT_FIELDS.index(r.target)))
    return RuleTable(version=version.strip(), rules=ordered)


def parse_rule_table_toml(text: str, *, source: str) -> RuleTable:
    """Parse and validate TOML text (the file format of ``default_rules.toml``)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise _invalid(source, f"not valid TOML: {err}") from err
    return parse_rule_table(data, source=source)


def rule_table_from_definition(definition: Mapping[str, Any]) -> RuleTable:
    """Rebuild a table from :meth:`RuleTable.definition` (e.g. out of an audit event)."""
    return parse_rule_table(definition, source="(recorded definition)")


__all__: Sequence[str] = [
    "FINANCE_FIELDS",
    "MAX_IN_VALUES",
    "SNAPSHOT_FIELDS",
    "CountRule",
    "Filter",
    "Op",
    "RuleTable",
    "firestore_equal",
    "parse_rule_table",
    "parse_rule_table_toml",
    "rule_table_from_definition",
]
