"""Who is asking: the verified principal every service call carries (tenant from identity, never a body)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from studio_brain.domain.audit import ActorType


class AuthMethod(StrEnum):
    FIREBASE = "firebase"
    ADMIN_TOKEN = "admin_token"  # noqa: S105 - a method name, not a secret
    SESSION = "session"
    AGENT_TOKEN = "agent_token"  # noqa: S105 - a method name, not a secret
    CLI = "cli"
    SYSTEM = "system"


@dataclass(frozen=True, kw_only=True, slots=True)
class Principal:
    """A verified identity. Built only by authentication adapters or configuration, never from input."""

    tenant_id: str
    actor_type: ActorType
    actor_id: str
    via: AuthMethod
    #: "staff", "admin"
    roles: frozenset[str] = field(default_factory=frozenset)
    #: agent scopes, e.g. "capability:studio.note.append:propose", "state:read"
    scopes: frozenset[str] = field(default_factory=frozenset)
    display_name: str | None = None

    @property
    def is_staff(self) -> bool:
        return "staff" in self.roles or "admin" in self.roles

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def is_agent(self) -> bool:
        return self.actor_type is ActorType.AGENT

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


def system_principal(tenant_id: str, actor_id: str = "studio-brain") -> Principal:
    """The brain itself (scheduler, swarms): may read and draft, never approve."""
    return Principal(
        tenant_id=tenant_id, actor_type=ActorType.SYSTEM, actor_id=actor_id, via=AuthMethod.SYSTEM
    )
