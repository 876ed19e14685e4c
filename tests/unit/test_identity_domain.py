"""The pure identity rules: who manages staff, who may approve, what a personal token may do, session life."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from studio_brain.domain.audit import ActorType
from studio_brain.domain.identity import (
    AuthMethod,
    CredentialKind,
    Person,
    PersonStatus,
    Role,
    SessionTimes,
    break_glass_principal,
    clean_display_name,
    credential_allows,
    may_approve,
    may_manage_staff,
    parse_roles,
    person_id_for,
    system_principal,
)
from studio_brain.domain.reasons import ReasonCode

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def person(*roles: Role) -> Person:
    return Person(
        id="p-ada-000001",
        tenant_id="t1",
        display_name="Ada",
        roles=frozenset(roles),
        status=PersonStatus.ACTIVE,
        created_by="local-admin",
        created_at=NOW,
    )


OWNER = person(Role.OWNER, Role.STAFF).principal(
    via=AuthMethod.SESSION, kind=CredentialKind.PASSKEY, credential_id="key-1"
)
STAFF = person(Role.STAFF).principal(
    via=AuthMethod.SESSION, kind=CredentialKind.PASSKEY, credential_id="key-2"
)
ADMIN = break_glass_principal("t1")


@pytest.mark.parametrize(
    ("principal", "action", "owners_exist", "expected"),
    [
        (ADMIN, "create_first_owner", False, None),
        (ADMIN, "create_first_owner", True, ReasonCode.FIRST_OWNER_EXISTS),
        (ADMIN, "invite", True, None),
        (ADMIN, "remove", True, ReasonCode.BREAK_GLASS_NOT_ALLOWED),
        (ADMIN, "set_roles", True, ReasonCode.BREAK_GLASS_NOT_ALLOWED),
        (OWNER, "invite", True, None),
        (OWNER, "remove", True, None),
        (OWNER, "create_first_owner", True, ReasonCode.FIRST_OWNER_EXISTS),
        (STAFF, "invite", True, ReasonCode.OWNER_REQUIRED),
        # an owner's personal token without the admin scope manages nobody
        (
            replace(
                OWNER, credential_kind=CredentialKind.PERSONAL_TOKEN, scopes=frozenset({"read", "approve"})
            ),
            "remove",
            True,
            ReasonCode.PERSONAL_TOKEN_SCOPE_MISSING,
        ),
        (system_principal("t1"), "invite", True, ReasonCode.OWNER_REQUIRED),
    ],
)
def test_who_manages_staff(
    principal: object, action: str, owners_exist: bool, expected: ReasonCode | None
) -> None:
    assert may_manage_staff(principal, action=action, owners_exist=owners_exist) is expected  # type: ignore[arg-type]


def test_only_a_person_approves_never_the_break_glass_token_an_agent_or_the_system() -> None:
    assert may_approve(STAFF)
    assert not may_approve(ADMIN)
    assert not may_approve(replace(ADMIN, via=AuthMethod.SESSION))  # a break-glass cockpit session
    assert not may_approve(system_principal("t1"))
    assert not may_approve(replace(STAFF, actor_type=ActorType.AGENT))


def test_every_credential_of_a_person_is_the_same_person() -> None:
    passkey = person(Role.STAFF).principal(
        via=AuthMethod.SESSION, kind=CredentialKind.PASSKEY, credential_id="a"
    )
    token = person(Role.STAFF).principal(
        via=AuthMethod.CLI, kind=CredentialKind.PERSONAL_TOKEN, credential_id="b"
    )
    assert passkey.person == token.person == "p-ada-000001"
    assert passkey.credential()["id"] != token.credential()["id"]
    assert token.credential() == {
        "kind": "personal_token",
        "id": "b",
        "personId": "p-ada-000001",
        "via": "cli",
    }


def test_a_personal_token_acts_only_within_its_scopes() -> None:
    reader = replace(STAFF, credential_kind=CredentialKind.PERSONAL_TOKEN, scopes=frozenset({"read"}))
    assert credential_allows(reader, "read")
    assert not credential_allows(reader, "approve")
    assert credential_allows(STAFF, "approve")  # a passkey session carries every scope


def test_an_owner_is_admin_and_staff_a_staff_member_only_staff() -> None:
    assert OWNER.roles == frozenset({"staff", "owner", "admin"})
    assert STAFF.roles == frozenset({"staff"})
    assert parse_roles(["owner"]) == frozenset({Role.OWNER, Role.STAFF})
    with pytest.raises(ValueError, match="unknown role"):
        parse_roles(["emperor"])


def test_names_and_ids_are_readable_and_checked() -> None:
    assert person_id_for("Ada Lovelace!", "3f9a1c") == "p-ada-lovelace-3f9a1c"
    assert person_id_for("日本", "000000") == "p-person-000000"
    assert clean_display_name("  Grace   Hopper ") == "Grace Hopper"
    for bad in ("", "   ", "x" * 81, "bell\x07"):
        with pytest.raises(ValueError, match="name"):
            clean_display_name(bad)


def test_a_session_ends_at_its_lifetime_or_after_idling() -> None:
    times = SessionTimes(lifetime=timedelta(hours=12), idle=timedelta(hours=1))
    assert times.alive(created_at=NOW, last_seen_at=NOW, now=NOW + timedelta(minutes=59))
    assert not times.alive(created_at=NOW, last_seen_at=NOW, now=NOW + timedelta(minutes=61))
    late = NOW + timedelta(hours=12)
    assert not times.alive(created_at=NOW, last_seen_at=late - timedelta(minutes=1), now=late)
