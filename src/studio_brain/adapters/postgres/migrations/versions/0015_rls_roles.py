"""Row-level security on every tenant table and a non-owner app role (issue 12).

Revision ID: 0015_rls_roles
Revises: 0014_mcp
Create Date: 2026-12-01

Two things, both about what the *running* brain can do to its own database:

1. ``ENABLE`` + ``FORCE ROW LEVEL SECURITY`` with the ``tenant_isolation`` policy of ``0004_gateway`` on
   the seven tables that lacked it (named below), and on any other table with a ``tenant_id`` column
   that still lacks it (the test ``test_every_tenant_table_forces_row_level_security`` walks
   ``pg_class`` so a new table cannot slip through).
2. The role ``studio_brain_app`` (NOLOGIN, NOSUPERUSER, NOBYPASSRLS, owns nothing): DML on the tables,
   but only SELECT/INSERT on the audit tables, and no DDL — so it cannot ALTER a table, drop a policy
   or disable the append-only triggers. Migrations keep running as the role that owns the tables.
   The embedded default logs the app in as this role (``adapters/postgres/roles.py``); on an external
   server the operator grants it to the login role the app uses (docs/operations.md).

Roles are cluster-wide and test runs migrate templates concurrently: the role is created under a
cluster-wide advisory lock and a duplicate is ignored, so this migration is idempotent and race-free.
The downgrade leaves the role (other databases of the cluster may use it) and revokes its grants.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015_rls_roles"
down_revision: str | None = "0014_mcp"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "studio_brain_app"
#: the tables issue 12 found without row-level security
NEWLY_ISOLATED = (
    "audit_events",
    "audit_checkpoints",
    "snapshot_runs",
    "snapshot_diffs",
    "job_runs",
    "swarm_drafts",
    "gateway_proposal_tenants",
)
#: append-only: the app may read and add, never change (their triggers refuse it too)
APPEND_ONLY = ("audit_events", "audit_checkpoints")
#: any number so long as every migration of this project uses the same one for the role
ROLE_LOCK_KEY = 0x5B_0015

_POLICY = (
    "CREATE POLICY tenant_isolation ON {table}"
    " USING (tenant_id = current_setting('studio_brain.tenant_id', true))"
    " WITH CHECK (tenant_id = current_setting('studio_brain.tenant_id', true))"
)


def upgrade() -> None:
    for table in NEWLY_ISOLATED:
        _isolate(table)
    # any other table holding tenant data that a later slot added without a policy
    op.execute(
        f"""
        DO $$
        DECLARE t text;
        BEGIN
          FOR t IN
            SELECT c.relname FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
            WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
              AND NOT (c.relrowsecurity AND c.relforcerowsecurity)
          LOOP
            EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
            EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
            IF NOT EXISTS (SELECT 1 FROM pg_policy p JOIN pg_class pc ON pc.oid = p.polrelid
                           WHERE pc.relname = t AND p.polname = 'tenant_isolation') THEN
              EXECUTE format({_sql_literal(_POLICY.replace("{table}", "%I"))}, t);
            END IF;
          END LOOP;
        END $$
        """
    )
    create_app_role()
    grant_app_role()


def _isolate(table: str) -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
    op.execute(_POLICY.format(table=table))


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def create_app_role() -> None:
    """``studio_brain_app`` if absent; safe when several migrations of several databases race. An owner
    that may not create roles (an external server's non-superuser owner) gets a warning instead of a
    failed upgrade: an administrator creates the role (docs/operations.md) and ``doctor`` says so."""
    op.execute(
        f"""
        DO $$
        BEGIN
          PERFORM pg_advisory_xact_lock({ROLE_LOCK_KEY});
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
            IF (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) THEN
              CREATE ROLE {APP_ROLE} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS INHERIT;
            ELSE
              RAISE WARNING 'role {APP_ROLE} does not exist and % may not create it: '
                'an administrator runs CREATE ROLE {APP_ROLE} NOLOGIN, then studio-brain migrate', current_user;
            END IF;
          END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
          NULL;  -- created meanwhile by a migration of another database
        END $$
        """
    )


def grant_app_role() -> None:
    """Privileges on this database's objects (per database, so no race): DML, audit append-only."""
    statements = [
        f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}",
        *(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM {APP_ROLE}" for table in APPEND_ONLY),
        f"REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {APP_ROLE}",
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}",
        # tables later migrations create (as the same owner) are usable by the app too
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {APP_ROLE}",
    ]
    body = "\n".join(f"    EXECUTE {_sql_literal(statement)};" for statement in statements)
    op.execute(
        f"""
        DO $$
        BEGIN
          IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
{body}
          END IF;
        END $$
        """
    )


def downgrade() -> None:
    for table in NEWLY_ISOLATED:
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    if not op.get_bind().exec_driver_sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}'").first():
        return
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM {APP_ROLE}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM {APP_ROLE}")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {APP_ROLE}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {APP_ROLE}")
    op.execute(f"REVOKE ALL ON SCHEMA public FROM {APP_ROLE}")
