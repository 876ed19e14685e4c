"""Staff accounts and passkeys on real PostgreSQL with the real WebAuthn verifier (a software authenticator
plays the browser): enrolment from one-time invites, sign-in, and every ceremony attack refused and audited."""

from __future__ import annotations

import json
import stat
from typing import Any

import pytest

from studio_brain.bootstrap import Brain
from studio_brain.domain.errors import InputInvalid, PermissionDenied, ReasonCode, Unauthenticated
from studio_brain.domain.identity import PersonStatus, break_glass_principal
from tests.fixtures.identity import SoftAuthenticator, audit_rows, enrol_person, identity_of, sign_in


async def refusals(brain: Brain) -> list[dict[str, Any]]:
    return [dict(e.metadata) for e in await audit_rows(brain, "identity.credential.refused")]


async def test_an_owner_and_a_second_person_enrol_from_one_time_invites_and_sign_in(api_brain: Brain) -> None:
    ada = await enrol_person(api_brain, "Ada Owner", owner=True)
    grace = await enrol_person(api_brain, "Grace Manager", by=ada.principal)
    identity = identity_of(api_brain)
    people = {p.id: p for p in await identity.persons()}
    assert people[ada.person_id].is_owner
    assert people[ada.person_id].status is PersonStatus.ACTIVE
    assert not people[grace.person_id].is_owner
    assert ada.principal.person_id != grace.principal.person_id
    cookie = await sign_in(api_brain, grace)
    principal = await identity.credentials.principal_for_session(cookie)
    assert principal is not None
    assert principal.person_id == grace.person_id
    assert principal.credential_kind is not None
    assert principal.credential_kind.value == "passkey"


async def test_an_invite_works_once(api_brain: Brain) -> None:
    identity = identity_of(api_brain)
    invitation = await identity.create_first_owner(break_glass_principal(api_brain.tenant_id), "Ada")
    soft = SoftAuthenticator()
    ceremony = await identity.begin_enrolment(invitation.raw)
    _p, response = soft.register(json.loads(ceremony.options))
    await identity.finish_registration(ceremony.challenge_id, json.dumps(response))
    with pytest.raises(Unauthenticated) as refused:
        await identity.begin_enrolment(invitation.raw)
    assert refused.value.reason_code is ReasonCode.INVITE_INVALID
    assert await identity.invited_person(invitation.raw) is None


async def test_the_break_glass_token_creates_only_the_first_owner(api_brain: Brain) -> None:
    identity = identity_of(api_brain)
    admin = break_glass_principal(api_brain.tenant_id)
    await enrol_person(api_brain, "Ada", owner=True)
    with pytest.raises(PermissionDenied) as refused:
        await identity.create_first_owner(admin, "Mallory")
    assert refused.value.reason_code is ReasonCode.FIRST_OWNER_EXISTS
    with pytest.raises(PermissionDenied) as owner_invite:
        await identity.invite(admin, "Mallory", ["owner"])
    assert owner_invite.value.reason_code is ReasonCode.OWNER_REQUIRED
    with pytest.raises(PermissionDenied) as removal:
        await identity.remove(admin, (await identity.persons())[0].id, "break glass removes")
    assert removal.value.reason_code is ReasonCode.BREAK_GLASS_NOT_ALLOWED


async def test_a_staff_member_cannot_manage_staff_and_the_last_owner_stays(api_brain: Brain) -> None:
    ada = await enrol_person(api_brain, "Ada", owner=True)
    grace = await enrol_person(api_brain, "Grace")
    identity = identity_of(api_brain)
    with pytest.raises(PermissionDenied) as refused:
        await identity.invite(grace.principal, "Eve", ["staff"])
    assert refused.value.reason_code is ReasonCode.OWNER_REQUIRED
    with pytest.raises(PermissionDenied) as last:
        await identity.set_roles(ada.principal, ada.person_id, ["staff"])
    assert last.value.reason_code is ReasonCode.LAST_OWNER
    with pytest.raises(InputInvalid):
        await identity.invite(ada.principal, "Eve", ["emperor"])


async def test_a_replayed_sign_in_challenge_is_refused_and_audited(api_brain: Brain) -> None:
    grace = await enrol_person(api_brain, "Grace", owner=True)
    identity = identity_of(api_brain)
    ceremony = await identity.begin_sign_in()
    response = grace.authenticator.answer(grace.passkey, json.loads(ceremony.options))
    await identity.finish_sign_in(ceremony.challenge_id, json.dumps(response))
    replay = grace.authenticator.answer(grace.passkey, json.loads(ceremony.options))
    with pytest.raises(Unauthenticated) as refused:
        await identity.finish_sign_in(ceremony.challenge_id, json.dumps(replay))
    assert refused.value.reason_code is ReasonCode.WEBAUTHN_CHALLENGE_REPLAYED
    assert any(r["reasonCode"] == "WEBAUTHN_CHALLENGE_REPLAYED" for r in await refusals(api_brain))


async def test_a_sign_counter_that_goes_back_is_refused_and_audited(api_brain: Brain) -> None:
    grace = await enrol_person(api_brain, "Grace", owner=True)
    await sign_in(api_brain, grace)  # counter 1
    await sign_in(api_brain, grace)  # counter 2
    with pytest.raises(Unauthenticated) as refused:
        await sign_in(api_brain, grace, sign_count=1)  # a cloned authenticator's counter
    assert refused.value.reason_code is ReasonCode.PASSKEY_SIGN_COUNT_REGRESSED
    row = next(r for r in await refusals(api_brain) if r["reasonCode"] == "PASSKEY_SIGN_COUNT_REGRESSED")
    assert row["personId"] == grace.person_id
    assert row["storedSignCount"] == 2


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        ({"origin": "http://evil.test:8787"}, ReasonCode.WEBAUTHN_ORIGIN_MISMATCH),
        ({"rp_id": "evil.test"}, ReasonCode.WEBAUTHN_RP_ID_MISMATCH),
    ],
)
async def test_a_passkey_answer_for_another_origin_or_rp_id_is_refused_and_audited(
    api_brain: Brain, tamper: dict[str, str], code: ReasonCode
) -> None:
    grace = await enrol_person(api_brain, "Grace", owner=True)
    with pytest.raises(Unauthenticated) as refused:
        await sign_in(api_brain, grace, **tamper)
    assert refused.value.reason_code is code
    assert any(r["reasonCode"] == code.value for r in await refusals(api_brain))


async def test_enrolling_from_another_origin_is_refused_and_the_invite_stays_unused(api_brain: Brain) -> None:
    identity = identity_of(api_brain)
    invitation = await identity.create_first_owner(break_glass_principal(api_brain.tenant_id), "Ada")
    ceremony = await identity.begin_enrolment(invitation.raw)
    _p, response = SoftAuthenticator(origin="http://phish.test").register(json.loads(ceremony.options))
    with pytest.raises(Unauthenticated) as refused:
        await identity.finish_registration(ceremony.challenge_id, json.dumps(response))
    assert refused.value.reason_code is ReasonCode.WEBAUTHN_ORIGIN_MISMATCH
    assert await identity.invited_person(invitation.raw) is not None  # the real person can still enrol


async def test_a_removed_passkey_no_longer_signs_in(api_brain: Brain) -> None:
    grace = await enrol_person(api_brain, "Grace", owner=True)
    identity = identity_of(api_brain)
    await identity.remove_passkey(grace.principal, json_id(grace), "lost the laptop")
    with pytest.raises(Unauthenticated) as refused:
        await sign_in(api_brain, grace)
    assert refused.value.reason_code is ReasonCode.PASSKEY_UNKNOWN


def json_id(who: Any) -> str:
    from tests.fixtures.identity import b64url

    return b64url(who.passkey.credential_id)


async def test_a_person_may_hold_several_passkeys(api_brain: Brain) -> None:
    grace = await enrol_person(api_brain, "Grace", owner=True)
    identity = identity_of(api_brain)
    ceremony = await identity.begin_adding_passkey(grace.principal)
    second, response = grace.authenticator.register(json.loads(ceremony.options))
    await identity.finish_registration(
        ceremony.challenge_id, json.dumps(response), label="phone", principal=grace.principal
    )
    assert len(await identity.passkeys_of(grace.person_id)) == 2
    grace.passkey = second
    cookie = await sign_in(api_brain, grace)
    principal = await identity.credentials.principal_for_session(cookie)
    assert principal is not None
    assert principal.person_id == grace.person_id


async def test_the_identity_key_is_random_private_and_never_shown(api_brain: Brain) -> None:
    ada = await enrol_person(api_brain, "Ada", owner=True)
    key_file = api_brain.settings.home / "keys" / "identity.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    raw = key_file.read_bytes()
    assert len(raw) == 32
    identity = identity_of(api_brain)
    for shown in (repr(identity), repr(identity.credentials), repr(identity._core.key)):
        assert raw.hex() not in shown
        assert str(raw) not in shown
    assert ada.session not in repr(identity)
    assert ada.token not in repr(identity.credentials)


@pytest.mark.parametrize(
    ("statement", "what"),
    [
        ("UPDATE staff_sessions SET person_id = %(ada)s WHERE person_id = %(grace)s", "session"),
        ("UPDATE staff_sessions SET expires_at = expires_at + interval '30 days'", "session"),
        ('UPDATE personal_tokens SET scopes = \'["admin", "approve"]\', revoked_at = NULL', "token"),
        ('UPDATE staff_persons SET roles = \'["owner", "staff"]\' WHERE id = %(grace)s', "person"),
    ],
)
async def test_a_database_writer_cannot_reassign_extend_widen_or_promote_a_credential(
    api_brain: Brain, database_url: str, statement: str, what: str
) -> None:
    import psycopg

    ada = await enrol_person(api_brain, "Ada", owner=True)
    grace = await enrol_person(api_brain, "Grace")
    identity = identity_of(api_brain)
    with psycopg.connect(database_url, autocommit=True) as conn:  # the app role's power, not the key's
        conn.execute(statement, {"ada": ada.person_id, "grace": grace.person_id})
    if what in {"session", "person"}:
        assert await identity.credentials.principal_for_session(grace.session) is None
    if what in {"token", "person"}:
        assert await identity.credentials.verify_token(grace.token) is None
    tampered = [r for r in await refusals(api_brain) if r["reasonCode"] == "RECORD_TAMPERED"]
    assert tampered, what


async def test_an_unknown_passkey_or_challenge_is_refused_without_filling_the_audit_log(
    api_brain: Brain,
) -> None:
    identity = identity_of(api_brain)
    stranger = SoftAuthenticator()
    passkey, _ = stranger.register({"challenge": "AAAA", "user": {"id": "AAAA"}})
    for _ in range(5):
        ceremony = await identity.begin_sign_in()
        answer = stranger.answer(passkey, json.loads(ceremony.options))
        with pytest.raises(Unauthenticated) as refused:
            await identity.finish_sign_in(ceremony.challenge_id, json.dumps(answer))
        assert refused.value.reason_code is ReasonCode.PASSKEY_UNKNOWN
    assert await refusals(api_brain) == []


async def test_sessions_and_tokens_survive_a_database_in_another_time_zone(
    database_url: str, auth_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL returns timestamps in the session's time zone (an embedded server takes the host's);
    # the seals are computed over UTC, so a studio in Phoenix still signs in
    import psycopg

    from studio_brain.bootstrap import DatabaseTarget, open_brain
    from studio_brain.settings import load_settings

    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE \"{name}\" SET timezone = 'America/Phoenix'")
    monkeypatch.setenv("STUDIO_BRAIN_DATABASE_URL", database_url)
    async with open_brain(load_settings(), target=DatabaseTarget(url=database_url, embedded=None)) as brain:
        grace = await enrol_person(brain, "Grace", owner=True)
        credentials = identity_of(brain).credentials
        principal = await credentials.principal_for_session(grace.session)
        assert principal is not None
        assert principal.person_id == grace.person_id
        assert await credentials.verify_token(grace.token) is not None
        assert await refusals(brain) == []


async def test_a_personal_token_cannot_mint_a_cli_code_for_a_wider_token(api_brain: Brain) -> None:
    grace = await enrol_person(api_brain, "Grace", owner=True)
    credentials = identity_of(api_brain).credentials
    reader = await credentials.issue_token(
        await identity_of(api_brain).person(grace.person_id), label="read", scopes=frozenset({"read"})
    )
    as_token = await credentials.verify_token(reader.raw)
    assert as_token is not None
    with pytest.raises(PermissionDenied) as refused:
        await credentials.issue_cli_code(as_token)
    assert refused.value.reason_code is ReasonCode.PERSON_REQUIRED
    assert (await credentials.issue_cli_code(grace.principal)).startswith("sbc_")  # her passkey session may
