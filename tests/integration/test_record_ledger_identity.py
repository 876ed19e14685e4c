"""Staff credentials a database writer cannot roll back or forge (issue 12 item 2), on real PostgreSQL.

The attacker has the app role's power over the brain's tables but no file of STUDIO_BRAIN_HOME. A row's
seal proves the brain wrote it, not that it is the newest copy: each test keeps a genuine older copy of a
row, lets the brain change it (sign out, revoke, demote, remove, use), writes the old copy back, and
shows the brain refuses it with RECORD_TAMPERED — the record ledger beside the keys knows better. Passkey
rows are sealed too: a key added to an owner's account or moved to it signs no one in.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from studio_brain.bootstrap import Brain
from studio_brain.domain.errors import ReasonCode, Unauthenticated
from studio_brain.domain.identity import break_glass_principal
from tests.fixtures.identity import TestPerson, audit_rows, enrol_person, identity_of, sign_in

pytestmark = pytest.mark.postgres


def snapshot(database_url: str, table: str, **where: str) -> list[dict[str, Any]]:
    """The rows as they are now: what a database writer keeps to write back later."""
    clauses = " AND ".join(f"{column} = %({column})s" for column in where)
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return list(conn.execute(f"SELECT * FROM {table} WHERE {clauses}", where).fetchall())


def write_back(database_url: str, table: str, rows: list[dict[str, Any]]) -> None:
    """Write genuine older copies back over the current rows (the attack)."""
    assert rows, "nothing to write back"
    with psycopg.connect(database_url, autocommit=True) as conn:
        for row in rows:
            columns = [c for c in row if c not in {"tenant_id", "id"}]
            assignments = ", ".join(f"{c} = %({c})s" for c in columns)
            values = {
                **row,
                **{c: Jsonb(v) for c, v in row.items() if isinstance(v, list)},
            }
            conn.execute(
                f"UPDATE {table} SET {assignments} WHERE tenant_id = %(tenant_id)s AND id = %(id)s",
                values,
            )


async def tampered(brain: Brain) -> list[dict[str, Any]]:
    rows = await audit_rows(brain, "identity.credential.refused")
    return [dict(e.metadata) for e in rows if e.metadata.get("reasonCode") == "RECORD_TAMPERED"]


async def two_people(brain: Brain) -> tuple[TestPerson, TestPerson]:
    ada = await enrol_person(brain, "Ada", owner=True)
    grace = await enrol_person(brain, "Grace", by=ada.principal)
    return ada, grace


async def test_a_signed_out_session_written_back_from_its_older_row_stays_signed_out(
    api_brain: Brain, database_url: str
) -> None:
    _ada, grace = await two_people(api_brain)
    credentials = identity_of(api_brain).credentials
    live = snapshot(database_url, "staff_sessions", person_id=grace.person_id)
    assert await credentials.sign_out(grace.session)
    write_back(database_url, "staff_sessions", live)
    assert await credentials.principal_for_session(grace.session) is None
    assert any(r["attempted"] == "identity.session.use" for r in await tampered(api_brain))


async def test_a_revoked_personal_token_written_back_from_its_older_row_stays_revoked(
    api_brain: Brain, database_url: str
) -> None:
    _ada, grace = await two_people(api_brain)
    credentials = identity_of(api_brain).credentials
    (token,) = await credentials.tokens(grace.principal, grace.person_id)
    live = snapshot(database_url, "personal_tokens", id=token.id)
    await credentials.revoke_token(grace.principal, token.id, "laptop lost")
    write_back(database_url, "personal_tokens", live)
    assert await credentials.verify_token(grace.token) is None
    assert {"attempted": "identity.token.use", "tokenId": token.id}.items() <= (await tampered(api_brain))[
        -1
    ].items()


async def test_an_owner_row_written_back_after_demotion_does_not_make_an_owner(
    api_brain: Brain, database_url: str
) -> None:
    ada, grace = await two_people(api_brain)
    identity = identity_of(api_brain)
    await identity.set_roles(ada.principal, grace.person_id, ["owner"])
    as_owner = snapshot(database_url, "staff_persons", id=grace.person_id)
    await identity.set_roles(ada.principal, grace.person_id, ["staff"])
    write_back(database_url, "staff_persons", as_owner)
    # the older copy carries a valid seal of its own, so only the ledger can tell it from the current one
    assert await identity.credentials.principal_for_session(grace.session) is None
    assert await identity.credentials.verify_token(grace.token) is None
    assert any(r.get("personId") == grace.person_id for r in await tampered(api_brain))


async def test_a_removed_person_written_back_with_their_session_token_and_passkey_gets_nothing_back(
    api_brain: Brain, database_url: str
) -> None:
    ada, grace = await two_people(api_brain)
    identity = identity_of(api_brain)
    rows = {
        table: snapshot(database_url, table, **{column: grace.person_id})
        for table, column in (
            ("staff_persons", "id"),
            ("staff_sessions", "person_id"),
            ("personal_tokens", "person_id"),
            ("staff_passkeys", "person_id"),
        )
    }
    await identity.remove(ada.principal, grace.person_id, "left the studio")
    for table, copies in rows.items():
        write_back(database_url, table, copies)
    assert await identity.credentials.principal_for_session(grace.session) is None
    assert await identity.credentials.verify_token(grace.token) is None
    with pytest.raises(Unauthenticated) as refused:
        await sign_in(api_brain, grace)
    assert refused.value.reason_code is ReasonCode.RECORD_TAMPERED


async def test_a_removed_passkey_written_back_signs_no_one_in(api_brain: Brain, database_url: str) -> None:
    ada, grace = await two_people(api_brain)
    identity = identity_of(api_brain)
    (key,) = await identity.passkeys_of(grace.person_id)
    live = snapshot(database_url, "staff_passkeys", id=key.id)
    await identity.remove_passkey(ada.principal, key.id, "phone stolen")
    write_back(database_url, "staff_passkeys", live)
    with pytest.raises(Unauthenticated) as refused:
        await sign_in(api_brain, grace)
    assert refused.value.reason_code is ReasonCode.RECORD_TAMPERED
    assert "ended" in refused.value.message


async def test_a_passkey_moved_to_the_owners_account_signs_no_one_in(
    api_brain: Brain, database_url: str
) -> None:
    ada, grace = await two_people(api_brain)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE staff_passkeys SET person_id = %s WHERE person_id = %s", (ada.person_id, grace.person_id)
        )
    with pytest.raises(Unauthenticated) as refused:
        await sign_in(api_brain, grace)  # Grace's own authenticator, now claiming Ada's account
    assert refused.value.reason_code is ReasonCode.RECORD_TAMPERED
    assert any(r.get("personId") == ada.person_id for r in await tampered(api_brain))


async def test_a_passkey_row_inserted_for_the_owner_without_a_seal_signs_no_one_in(
    api_brain: Brain, database_url: str
) -> None:
    ada, grace = await two_people(api_brain)
    (row,) = snapshot(database_url, "staff_passkeys", person_id=grace.person_id)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM staff_passkeys WHERE id = %s", (row["id"],))
        # the attacker's own public key (Grace's authenticator stands in for theirs) on Ada's account
        conn.execute(
            "INSERT INTO staff_passkeys (tenant_id, id, person_id, public_key, sign_count, label, created_at)"
            " VALUES (%s, %s, %s, %s, 0, 'mallory', now())",
            (row["tenant_id"], row["id"], ada.person_id, row["public_key"]),
        )
    with pytest.raises(Unauthenticated) as refused:
        await sign_in(api_brain, grace)
    assert refused.value.reason_code is ReasonCode.RECORD_TAMPERED


async def test_a_used_login_link_written_back_unused_opens_no_second_session(
    api_brain: Brain, database_url: str
) -> None:
    credentials = identity_of(api_brain).credentials
    raw = await credentials.issue_login_link(break_glass_principal(api_brain.tenant_id))
    unused = snapshot(database_url, "identity_grants", kind="login_link")
    assert await credentials.redeem_login_link(raw) is not None
    write_back(database_url, "identity_grants", unused)
    assert await credentials.redeem_login_link(raw) is None
    assert any(r["attempted"] == "identity.login_link.use" for r in await tampered(api_brain))


async def test_untouched_credentials_keep_working_after_every_change_the_brain_made(
    api_brain: Brain,
) -> None:
    ada, grace = await two_people(api_brain)
    identity = identity_of(api_brain)
    await identity.set_roles(ada.principal, grace.person_id, ["owner"])
    await identity.set_roles(ada.principal, grace.person_id, ["staff"])
    principal = await identity.credentials.principal_for_session(grace.session)
    assert principal is not None
    assert principal.person_id == grace.person_id
    assert await identity.credentials.verify_token(grace.token) is not None
    assert await sign_in(api_brain, grace)
    assert await tampered(api_brain) == []
