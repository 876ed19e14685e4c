"""``studio-brain doctor``: each check says ok / warn / fail, and every problem comes with its fix."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import typer

from studio_brain.adapters.postgres.migrate import current_revision, head_revision
from studio_brain.bootstrap import DatabaseTarget, provision_database, release_database
from studio_brain.domain.errors import ConfigError, StudioBrainError
from studio_brain.settings import Settings, load_settings, redact_url


@dataclass(frozen=True, kw_only=True, slots=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""


def _database(settings: Settings) -> tuple[Check, DatabaseTarget | None]:
    try:
        target = provision_database(settings)
        import psycopg

        from studio_brain.adapters.postgres.database import libpq_url

        with psycopg.connect(libpq_url(target.url), connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except (StudioBrainError, OSError, Exception) as err:  # doctor reports, never crashes
        where = (
            redact_url(settings.database_url.get_secret_value())
            if settings.database_url
            else f"embedded server in {settings.home / 'pgdata'}"
        )
        if settings.database_url:
            fix = "check the host, port, user and password in STUDIO_BRAIN_DATABASE_URL and that the server runs"
        else:
            # issue 13: name the real cause (a stale postmaster.pid, a server left running, the log)
            from studio_brain.adapters.postgres.embedded import embedded_fix

            fix = embedded_fix(settings.home / "pgdata")
        return Check(name="database", status="fail", detail=f"{where}: {err}", fix=fix), None
    where = "embedded PostgreSQL" if target.embedded else f"external PostgreSQL at {redact_url(target.url)}"
    return Check(name="database", status="ok", detail=f"{where} answers"), target


def _migrations(target: DatabaseTarget) -> Check:
    current, head = current_revision(target.url), head_revision()
    if current == head:
        return Check(name="migrations", status="ok", detail=f"schema at {head}")
    return Check(
        name="migrations",
        status="fail",
        detail=f"schema at {current or 'nothing (empty database)'}, code expects {head}",
        fix="run `studio-brain migrate`",
    )


def _app_role(target: DatabaseTarget) -> Check:
    """Fail when the role the running brain uses can bypass row-level security (issue 12)."""
    from studio_brain.adapters.postgres.roles import APP_ROLE, app_url, role_report

    try:
        report = role_report(app_url(target.url) if target.embedded else target.url)
    except Exception as err:
        return Check(name="app role", status="fail", detail=f"cannot inspect the app's role: {err}")
    if not report.can_bypass_rls:
        return Check(
            name="app role",
            status="ok",
            detail=f"the brain runs as {report.role}: row-level security applies",
        )
    return Check(
        name="app role",
        status="fail",
        detail=f"the brain's role {report.role} "
        + " and ".join(report.problems())
        + ": it bypasses row-level "
        "security and could alter the audit tables",
        fix=f"create a login role for the app, `GRANT {APP_ROLE} TO <it>`, point STUDIO_BRAIN_DATABASE_URL "
        "at it and run `studio-brain migrate` as the owner (docs/operations.md, 'Database roles')",
    )


def _staff(settings: Settings, target: DatabaseTarget) -> Check:
    """Issue 11: is there an owner to sign in (an upgraded brain has none yet), and is the key private?"""
    import stat

    import psycopg

    from studio_brain.adapters.postgres.database import libpq_url

    key = settings.home / "keys" / "identity.key"
    if key.exists() and stat.S_IMODE(key.stat().st_mode) & 0o077:
        return Check(
            name="staff", status="fail", detail=f"{key} is readable by others", fix=f"run `chmod 600 {key}`"
        )
    try:
        with psycopg.connect(libpq_url(target.url), connect_timeout=5) as conn:
            conn.execute("SELECT set_config('studio_brain.tenant_id', %s, false)", (settings.tenant_id,))
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'active' AND roles ? 'owner'), count(*)"
                " FILTER (WHERE status = 'active') FROM staff_persons WHERE tenant_id = %s",
                (settings.tenant_id,),
            ).fetchone()
            # issue 12: passkeys enrolled before they were sealed (migration 0016) sign no one in
            unsealed = conn.execute(
                "SELECT count(*) FROM staff_passkeys WHERE tenant_id = %s AND removed_at IS NULL"
                " AND seal IS NULL",
                (settings.tenant_id,),
            ).fetchone()
    except psycopg.Error as err:
        return Check(name="staff", status="warn", detail=f"cannot count staff accounts: {type(err).__name__}")
    owners, active = row or (0, 0)
    if unsealed and unsealed[0]:
        return Check(
            name="staff",
            status="warn",
            detail=f"{unsealed[0]} passkey(s) enrolled before passkeys were sealed: they no longer sign in",
            fix="re-invite each of those people: `studio-brain staff list`, then `studio-brain staff reinvite"
            " PERSON_ID` (the studio machine's admin token may do this) and open the link on their device",
        )
    if not owners:
        return Check(
            name="staff",
            status="warn",
            detail="no owner has enrolled a passkey yet: nobody can approve",
            fix='run `studio-brain staff create-owner "Your Name"` and open the link it prints',
        )
    return Check(name="staff", status="ok", detail=f"{active} active staff account(s), {owners} owner(s)")


def _firestore(settings: Settings) -> Check:
    emulator = os.environ.get("FIRESTORE_EMULATOR_HOST")
    if emulator:
        host, _, port = emulator.rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=2):
                pass
        except (OSError, ValueError) as err:
            return Check(
                name="firestore",
                status="fail",
                detail=f"FIRESTORE_EMULATOR_HOST={emulator} does not answer ({err})",
                fix="start the emulator (./scripts/start-firestore-emulator) or unset FIRESTORE_EMULATOR_HOST",
            )
        return Check(
            name="firestore",
            status="ok",
            detail=f"emulator at {emulator} (project {settings.firestore_project_id})",
        )
    credentials = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if credentials and Path(credentials).is_file():
        return Check(name="firestore", status="ok", detail=f"credentials file {credentials}")
    well_known = Path.home() / ".config" / "gcloud" / "application_default_credentials.json"
    if well_known.is_file():
        return Check(name="firestore", status="ok", detail=f"application default credentials in {well_known}")
    return Check(
        name="firestore",
        status="warn",
        detail="no emulator and no Google credentials: only the demo studio source can be read",
        fix="set GOOGLE_APPLICATION_CREDENTIALS to a read-only service account file, or "
        "FIRESTORE_EMULATOR_HOST=127.0.0.1:PORT for the emulator",
    )


def collect_checks() -> list[Check]:
    try:
        settings = load_settings()
    except ConfigError as err:
        return [
            Check(name="configuration", status="fail", detail=err.message, fix="correct the variable named")
        ]
    checks = [Check(name="configuration", status="ok", detail=f"valid (tenant {settings.tenant_id})")]
    db_check, target = _database(settings)
    checks.append(db_check)
    if target is not None:
        try:
            migrations = _migrations(target)
            checks.append(migrations)
            checks.append(_app_role(target))
            if migrations.status == "ok":
                checks.append(_staff(settings, target))
        finally:
            release_database(target)
    checks.append(_firestore(settings))
    return checks


_MARK = {"ok": "✓", "warn": "!", "fail": "✗"}


def run_doctor() -> int:
    checks = collect_checks()
    for check in checks:
        typer.echo(f"{_MARK[check.status]} {check.name}: {check.detail}")
        if check.fix:
            typer.echo(f"    fix: {check.fix}")
    return 1 if any(c.status == "fail" for c in checks) else 0
