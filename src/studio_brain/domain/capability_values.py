"""Capabilities as values: targets, modes, risk tiers and classes, a :class:`Capability` and the
:class:`Registry` of them (with its violations and write policy). Built only by the parser in
:mod:`studio_brain.domain.capabilities`, which re-exports every name here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from studio_brain.domain.connectors import DryRunSupport
from studio_brain.domain.write_policy import HourWindow, WritePolicy


class Target(StrEnum):
    FIRESTORE = "firestore"
    STRIPE = "stripe"
    HUBITAT = "hubitat"
    ROBOROCK = "roborock"
    LOCAL = "local"


class Mode(StrEnum):
    READ = "read"
    WRITE = "write"


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class RiskClass(StrEnum):
    NONE = "none"
    DOOR = "door"
    LOCK = "lock"
    POWER = "power"
    MOBILITY = "mobility"
    MONEY = "money"
    DATA = "data"
    NOTIFY = "notify"


#: classes that are never exempt and always need approval (seed §5 "Safety constraints")
HIGH_RISK_CLASSES = frozenset({RiskClass.DOOR, RiskClass.LOCK, RiskClass.POWER, RiskClass.MOBILITY})
#: targets that move things in the physical world: executions on them are always serialised
PHYSICAL_TARGETS = frozenset({Target.HUBITAT, Target.ROBOROCK})
#: targets in the studio's cloud: their writes count towards the tenant's daily cloud-write budget
CLOUD_TARGETS = frozenset({Target.FIRESTORE, Target.STRIPE})

DEFAULT_APPROVAL_TTL_SECONDS: Mapping[Risk, int] = {
    Risk.LOW: 24 * 3600,
    Risk.MEDIUM: 8 * 3600,
    Risk.HIGH: 3600,
    Risk.CRITICAL: 900,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Violation:
    """One problem in the registry, as ``capabilities lint`` and ``/api/capabilities/policy-lint`` show it."""

    capability_id: str
    code: str
    message: str


@dataclass(frozen=True, kw_only=True, slots=True)
class RateLimit:
    per_hour: int
    #: most executions within any one minute window
    burst: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ExemptionPolicy:
    max_lifetime_seconds: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Capability:
    """One operation the gateway can perform. Built only by :func:`parse_registry`."""

    id: str
    description: str
    target: Target
    mode: Mode
    risk: Risk
    risk_class: RiskClass
    requires_approval: bool
    approvals_required: int
    approval_ttl_seconds: int
    rate_limit: RateLimit
    cooldown_seconds: int
    timeout_budget_seconds: float
    dry_run: DryRunSupport
    #: a JSON-Schema subset (see :func:`validate_input`)
    input_schema: dict[str, Any]
    #: the connector action it maps to, e.g. ``switch.set``
    action: str
    device_field: str | None = None
    command_field: str | None = None
    #: one in-flight execution per target (always true for physical targets and high-risk classes)
    exclusive: bool = True
    exemption_policy: ExemptionPolicy | None = None
    #: local hours in which it may execute (``allowedHours``; empty = any time) — WRITE_WINDOW_CLOSED
    allowed_hours: tuple[HourWindow, ...] = ()
    #: its risk tier is in ``[writePolicy] twoPersonRisks``: two distinct people behind every execution
    two_person: bool = False

    @property
    def is_write(self) -> bool:
        return self.mode is Mode.WRITE

    @property
    def is_cloud_write(self) -> bool:
        """A write to the studio's cloud: counted in the tenant's daily cloud-write budget."""
        return self.is_write and self.target in CLOUD_TARGETS

    @property
    def is_high_risk(self) -> bool:
        return self.risk in (Risk.HIGH, Risk.CRITICAL) or self.risk_class in HIGH_RISK_CLASSES

    @property
    def exemptable(self) -> bool:
        return self.exemption_policy is not None and not self.is_high_risk

    def propose_scope(self) -> str:
        return f"capability:{self.id}:propose"

    def read_scope(self) -> str:
        return f"capability:{self.id}:read"


@dataclass(frozen=True, kw_only=True, slots=True)
class Registry:
    capabilities: Mapping[str, Capability]
    #: sha256 of the canonical registry document
    version: str
    violations: tuple[Violation, ...] = field(default_factory=tuple)
    write_policy: WritePolicy = field(default_factory=WritePolicy)

    def get(self, capability_id: str) -> Capability | None:
        return self.capabilities.get(capability_id)

    @property
    def valid(self) -> bool:
        return not self.violations
