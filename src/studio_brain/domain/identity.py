"""Who is asking: persons, their credentials and roles, the verified Principal, and who may approve what.

A *person* is one human staff member of one tenant (a staff account). A person authenticates with a
*credential* — a passkey, a linked Firebase account, a personal API token, a cockpit session opened by
one of those — and every credential of one person yields the same ``person_id``. Separation of duties
compares persons, never credentials: two passkeys of one person are still one approver.

The local admin token is a *break-glass credential*, not a person: it may create the first owner, issue
invites, read, and turn the kill switch ON; it never approves, never counts as an approver and never
turns the kill switch off (``BREAK_GLASS_ALLOWED``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from studio_brain.domain.audit import ActorType
from studio_brain.domain.reasons import ReasonCode


class AuthMethod(StrEnum):
    """How a request reached us (kept for existing callers; :class:`CredentialKind` is the precise one)."""

    FIREBASE = "firebase"
    ADMIN_TOKEN = "admin_token"  # noqa: S105 - a method name, not a secret
    SESSION = "session"
    AGENT_TOKEN = "agent_token"  # noqa: S105 - a method name, not a secret
    CLI = "cli"
    SYSTEM = "system"


class CredentialKind(StrEnum):
    """What proved the identity; recorded (with the credential's id, never its secret) in audit rows."""

    PASSKEY = "passkey"
    FIREBASE = "firebase"
    PERSONAL_TOKEN = "personal_token"  # noqa: S105 - a kind, not a secret
    AGENT_TOKEN = "agent_token"  # noqa: S105 - a kind, not a secret
    ADMIN_TOKEN = "admin_token"  # noqa: S105 - a kind, not a secret
    SYSTEM = "system"


class Role(StrEnum):
    STAFF = "staff"
    OWNER = "owner"


class PersonStatus(StrEnum):
    #: created by an invite; no passkey yet
    INVITED = "invited"
    ACTIVE = "active"
    #: removed by an owner: every session and token ended, never signs in again
    REMOVED = "removed"


#: what the break-glass admin token may do, by action name
BREAK_GLASS_ALLOWED = frozenset({"read", "create_first_owner", "invite", "kill_switch_on", "login_link"})

#: the principal id of the break-glass credential (never a person id: person ids start with ``p-``)
BREAK_GLASS_ID = "local-admin"

PERSON_ID_PREFIX = "p-"
#: ids the brain itself acts under; no outside identity (e.g. a Firebase uid) may take one
RESERVED_ACTOR_IDS = frozenset({BREAK_GLASS_ID, "studio-brain", "anonymous"})
MAX_DISPLAY_NAME = 80
_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, kw_only=True, slots=True)
class Principal:
    """A verified identity. Built only by authentication adapters or configuration, never from input."""

    tenant_id: str
    actor_type: ActorType
    #: who the audit log names; for a person this is the person id (the same for all their credentials)
    actor_id: str
    via: AuthMethod
    #: "staff", "owner", "admin"
    roles: frozenset[str] = field(default_factory=frozenset)
    #: agent (or personal token) scopes, e.g. "capability:studio.note.append:propose", "state:read"
    scopes: frozenset[str] = field(default_factory=frozenset)
    display_name: str | None = None
    #: the person behind the credential; None for agents, the system and the break-glass admin token
    person_id: str | None = None
    credential_kind: CredentialKind | None = None
    #: the credential's public id (passkey id, token id, Firebase uid, session id hash prefix); never a secret
    credential_id: str | None = None

    @property
    def is_staff(self) -> bool:
        return bool({"staff", "admin", "owner"} & self.roles)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles or "owner" in self.roles

    @property
    def is_owner(self) -> bool:
        return "owner" in self.roles

    @property
    def is_agent(self) -> bool:
        return self.actor_type is ActorType.AGENT

    @property
    def is_break_glass(self) -> bool:
        """The local admin token (directly, or a cockpit session it opened): not a person."""
        return self.credential_kind is CredentialKind.ADMIN_TOKEN or self.via is AuthMethod.ADMIN_TOKEN

    @property
    def person(self) -> str:
        """The id separation of duties compares: the person, else (agents, system) the actor."""
        return self.person_id or self.actor_id

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def credential(self) -> dict[str, Any]:
        """What audit rows record about how this caller authenticated (never a secret)."""
        kind = self.credential_kind or _kind_from_method(self.via)
        return {
            "kind": kind.value,
            "id": self.credential_id,
            "personId": self.person_id,
            "via": self.via.value,
        }


def _kind_from_method(via: AuthMethod) -> CredentialKind:
    return {
        AuthMethod.FIREBASE: CredentialKind.FIREBASE,
        AuthMethod.ADMIN_TOKEN: CredentialKind.ADMIN_TOKEN,
        AuthMethod.AGENT_TOKEN: CredentialKind.AGENT_TOKEN,
        AuthMethod.CLI: CredentialKind.PERSONAL_TOKEN,
        AuthMethod.SESSION: CredentialKind.PASSKEY,
        AuthMethod.SYSTEM: CredentialKind.SYSTEM,
    }[via]


def system_principal(tenant_id: str, actor_id: str = "studio-brain") -> Principal:
    """The brain itself (scheduler, swarms): may read and draft, never approve."""
    return Principal(
        tenant_id=tenant_id,
        actor_type=ActorType.SYSTEM,
        actor_id=actor_id,
        via=AuthMethod.SYSTEM,
        credential_kind=CredentialKind.SYSTEM,
    )


def break_glass_principal(tenant_id: str, *, via: AuthMethod = AuthMethod.ADMIN_TOKEN) -> Principal:
    """The holder of the local admin token. Staff-like for reading; never a person, never an approver."""
    return Principal(
        tenant_id=tenant_id,
        actor_type=ActorType.STAFF,
        actor_id=BREAK_GLASS_ID,
        via=via,
        roles=frozenset({"staff", "admin"}),
        display_name="Local admin (break-glass)",
        credential_kind=CredentialKind.ADMIN_TOKEN,
        credential_id="admin-token",
    )


# --- persons ----------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Person:
    """A staff account of one tenant."""

    id: str
    tenant_id: str
    display_name: str
    roles: frozenset[Role]
    status: PersonStatus
    created_by: str
    created_at: datetime
    firebase_uid: str | None = None
    removed_at: datetime | None = None
    removed_by: str | None = None
    #: a MAC over id, roles, status and Firebase link (domain.credentials.person_sealed_fields)
    seal: str = ""
    #: bumped by every change (issue 12: the record ledger refuses an older copy written back)
    version: int = 1

    @property
    def is_owner(self) -> bool:
        return Role.OWNER in self.roles

    @property
    def active(self) -> bool:
        return self.status is PersonStatus.ACTIVE

    def principal_roles(self) -> frozenset[str]:
        """Roles as the gateway's checks read them: every person is staff; an owner is also admin."""
        roles = {"staff"}
        if self.is_owner:
            roles |= {"owner", "admin"}
        return frozenset(roles)

    def principal(
        self,
        *,
        via: AuthMethod,
        kind: CredentialKind,
        credential_id: str,
        scopes: frozenset[str] = frozenset(),
    ) -> Principal:
        return Principal(
            tenant_id=self.tenant_id,
            actor_type=ActorType.STAFF,
            actor_id=self.id,
            via=via,
            roles=self.principal_roles(),
            scopes=scopes,
            display_name=self.display_name,
            person_id=self.id,
            credential_kind=kind,
            credential_id=credential_id,
        )


def clean_display_name(raw: str) -> str:
    """A display name: trimmed, 1..80 printable characters. Raises ValueError with the reason."""
    name = " ".join(raw.split())
    if not name:
        raise ValueError("a name is required")
    if len(name) > MAX_DISPLAY_NAME:
        raise ValueError(f"a name has at most {MAX_DISPLAY_NAME} characters")
    if any(not ch.isprintable() for ch in name):
        raise ValueError("a name cannot contain control characters")
    return name


def person_id_for(display_name: str, suffix: str) -> str:
    """``p-<slug>-<suffix>``: readable in the audit log, unique by the random suffix, never reused."""
    slug = _SLUG.sub("-", display_name.lower()).strip("-")[:24] or "person"
    return f"{PERSON_ID_PREFIX}{slug}-{suffix}"


def parse_roles(raw: list[str] | tuple[str, ...] | frozenset[str]) -> frozenset[Role]:
    """Roles from names; ``owner`` implies ``staff``. Raises ValueError naming an unknown role."""
    roles: set[Role] = set()
    for name in raw:
        try:
            roles.add(Role(name.strip().lower()))
        except ValueError:
            raise ValueError(f"unknown role {name!r}: choose staff or owner") from None
    roles.add(Role.STAFF)
    return frozenset(roles)


# --- who may do what ---------------------------------------------------------------------------------


def may_manage_staff(principal: Principal, *, action: str, owners_exist: bool) -> ReasonCode | None:
    """Owners manage staff. The break-glass token may create the *first* owner and issue invites."""
    if principal.is_break_glass:
        if action == "create_first_owner":
            return None if not owners_exist else ReasonCode.FIRST_OWNER_EXISTS
        return None if action in BREAK_GLASS_ALLOWED else ReasonCode.BREAK_GLASS_NOT_ALLOWED
    if action == "create_first_owner" and owners_exist:
        return ReasonCode.FIRST_OWNER_EXISTS
    if principal.person_id is None or not principal.is_owner:
        return ReasonCode.OWNER_REQUIRED
    if not credential_allows(principal, "admin"):
        return ReasonCode.PERSONAL_TOKEN_SCOPE_MISSING
    return None


def credential_allows(principal: Principal, need: str) -> bool:
    """A personal token acts only within its scopes (read, propose, approve, execute, admin);
    every other credential of a person carries all of them."""
    return principal.credential_kind is not CredentialKind.PERSONAL_TOKEN or need in principal.scopes


def may_approve(principal: Principal) -> bool:
    """Only a person approves: never the break-glass token, an agent or the system."""
    return (
        not principal.is_break_glass
        and principal.actor_type in (ActorType.STAFF, ActorType.HUMAN)
        and principal.is_staff
    )


# --- time-limited secrets -----------------------------------------------------------------------------


class GrantKind(StrEnum):
    """One-time secrets handed to a human: each works once, for minutes, and is stored only as a MAC."""

    INVITE = "invite"
    LOGIN_LINK = "login_link"
    CLI_CODE = "cli_code"


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionTimes:
    """A session's lifetime rule: an absolute expiry and an idle timeout."""

    lifetime: timedelta
    idle: timedelta

    def alive(self, *, created_at: datetime, last_seen_at: datetime, now: datetime) -> bool:
        return now < created_at + self.lifetime and now < last_seen_at + self.idle


#: personal token scopes: what a CLI token may be limited to
PERSONAL_SCOPES = frozenset({"read", "propose", "approve", "execute", "admin"})
DEFAULT_PERSONAL_SCOPES = frozenset({"read", "propose", "approve", "execute", "admin"})
