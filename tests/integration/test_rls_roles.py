"""Row-level security on every tenant table, and a running brain that cannot bypass it (issue 12, item 3).

Attack replayed: seven tables had no RLS and the default deployment connected as a superuser, which
bypasses RLS everywhere. Now every table with a ``tenant_id`` forces its policy, and the app's role
(``studio_brain_app``) is no superuser, owns nothing and cannot alter tables, policies or triggers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest

from studio_brain.adapters.postgres.database import libpq_url
from studio_brain.adapters.postgres.roles import APP_ROLE, role_report, with_user
from studio_brain.bootstrap import DatabaseTarget, open_brain
from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft, AuditQuery
from studio_brain.domain.errors import StorageError
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.state import Completeness, SnapshotRun
from studio_brain.settings import load_settings

pytestmark = pytest.mark.postgres

SEVEN = (
    "audit_events",
    "audit_checkpoints",
    "snapshot_runs",
    "snapshot_diffs",
    "job_runs",
    "swarm_drafts",
    "gateway_proposal_tenants",
)


def connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(libpq_url(url), connect_timeout=5, autocommit=True)


@pytest.fixture
def app_login(database_url: str) -> Iterator[str]:
    """A login role that is a member of ``studio_brain_app`` (what an operator creates), as a URL."""
    name = f"sb_app_login_{uuid.uuid4().hex[:10]}"
    with connect(database_url) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN IN ROLE {APP_ROLE}")
    try:
        yield with_user(database_url, name)
    finally:
        with connect(database_url) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {name}")


def test_every_tenant_table_forces_row_level_security_with_a_tenant_policy(database_url: str) -> None:
    # walks pg_class: a table added later with tenant data and no forced RLS fails here
    with connect(database_url) as conn:
        rows = conn.execute(
            """
            SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid) AS has_policy
              FROM pg_class c
              JOIN pg_namespace n ON n.oid = c.relnamespace
              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
            """
        ).fetchall()
    tables = {str(r[0]) for r in rows}
    assert set(SEVEN) <= tables
    unprotected = sorted(str(r[0]) for r in rows if not (r[1] and r[2] and r[3]))
    assert unprotected == []


def test_the_app_role_is_no_superuser_owns_nothing_and_cannot_bypass_rls(app_login: str) -> None:
    report = role_report(app_login)
    assert not report.superuser
    assert not report.bypass_rls
    assert report.owned_tables == 0
    assert not report.can_bypass_rls


def test_a_superuser_connection_is_reported_as_bypassing_rls(database_url: str) -> None:
    report = role_report(database_url)
    assert report.can_bypass_rls
    assert "is a superuser" in report.problems()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET rationale = 'forged'",
        "DELETE FROM audit_events",
        "UPDATE audit_checkpoints SET tenant_id = tenant_id",
        "ALTER TABLE audit_events DISABLE TRIGGER ALL",
        "ALTER TABLE snapshot_runs NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON swarm_drafts",
        "ALTER TABLE job_runs DISABLE ROW LEVEL SECURITY",
        "TRUNCATE audit_events",
        "UPDATE alembic_version SET version_num = '0001_foundation'",
    ],
)
def test_the_app_role_cannot_change_history_or_lift_its_own_restrictions(
    app_login: str, statement: str
) -> None:
    with connect(app_login) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)


async def test_a_brain_running_as_the_app_role_serves_and_sees_only_its_own_tenant(
    app_login: str, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUDIO_BRAIN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STUDIO_BRAIN_DATABASE_URL", app_login)
    settings = load_settings()
    # another studio's rows, written by the owner: the app must never see them
    with connect(database_url) as conn:
        conn.execute(
            "INSERT INTO snapshot_runs (id, tenant_id, snapshot_date, generated_at, completeness, source,"
            " document, snapshot_hash) VALUES ('other-run', 'other-studio', '2026-11-20', now(), 'full', 'demo',"
            " '{}'::jsonb, %s)",
            (sha256_hex({}),),
        )
    async with open_brain(settings, target=DatabaseTarget(url=app_login, embedded=None)) as brain:
        document = {"schemaVersion": "v3.0"}
        await brain.state_store.save_run(
            SnapshotRun(
                id="mine",
                tenant_id=brain.tenant_id,
                snapshot_date=date(2026, 11, 25),
                generated_at=datetime(2026, 11, 25, 12, tzinfo=UTC),
                completeness=Completeness.FULL,
                source="demo",
                document=document,
                snapshot_hash=sha256_hex(document),
            )
        )
        latest = await brain.state_store.latest_snapshot(brain.tenant_id)
        assert latest is not None
        assert latest.id == "mine"
        assert await brain.state_store.latest_snapshot("other-studio") is None
        await brain.events.append(
            AuditDraft(
                tenant_id=brain.tenant_id,
                actor_type=ActorType.SYSTEM,
                actor_id="scheduler",
                action="job.snapshot.finished",
                target="local",
                rationale="ran as the app role",
                approval_state=ApprovalState.NOT_APPLICABLE,
                input_hash=sha256_hex({}),
                request_id="r",
                correlation_id="c",
            )
        )
        page = await brain.events.query(brain.tenant_id, AuditQuery())
        assert [e.rationale for e in page.events][-1] == "ran as the app role"
        # a row for another tenant is refused by the policy's WITH CHECK
        with pytest.raises(StorageError):
            await brain.events.append(
                AuditDraft(
                    tenant_id="other-studio",
                    actor_type=ActorType.SYSTEM,
                    actor_id="scheduler",
                    action="job.snapshot.finished",
                    target="local",
                    rationale="cross-tenant write",
                    approval_state=ApprovalState.NOT_APPLICABLE,
                    input_hash=sha256_hex({}),
                    request_id="r",
                    correlation_id="c",
                )
            )
    with connect(database_url) as conn:
        count = conn.execute("SELECT count(*) FROM audit_events WHERE tenant_id = 'other-studio'").fetchone()
    assert count == (0,)


def test_doctor_fails_while_the_app_role_can_bypass_rls_and_passes_for_the_app_role(
    database_url: str, app_login: str, tmp_path: Path
) -> None:
    from tests.integration.test_cli import cli

    as_superuser = cli(
        "doctor", env={"STUDIO_BRAIN_DATABASE_URL": database_url, "STUDIO_BRAIN_HOME": str(tmp_path)}
    )
    assert as_superuser.returncode == 1
    assert "✗ app role" in as_superuser.stdout
    assert "is a superuser" in as_superuser.stdout
    assert f"GRANT {APP_ROLE}" in as_superuser.stdout
    as_app = cli("doctor", env={"STUDIO_BRAIN_DATABASE_URL": app_login, "STUDIO_BRAIN_HOME": str(tmp_path)})
    assert "✓ app role" in as_app.stdout, as_app.stdout


async def test_the_embedded_default_migrates_as_the_owner_and_serves_as_the_app_role(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("STUDIO_BRAIN_DATABASE_URL", "STUDIO_BRAIN_TEST_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STUDIO_BRAIN_HOME", str(tmp_path / "home"))
    settings = load_settings()
    assert settings.uses_embedded_database
    async with open_brain(settings, migrate=True) as brain:
        async with brain.database.connection() as conn:
            cursor = await conn.execute(
                "SELECT current_user AS who, current_setting('studio_brain.tenant_id', true) AS tenant"
            )
            row = await cursor.fetchone()
        assert row == {"who": APP_ROLE, "tenant": brain.tenant_id}
        report = role_report(brain.database.url)
        assert not report.can_bypass_rls
