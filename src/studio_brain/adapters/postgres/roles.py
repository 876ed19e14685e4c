"""The database roles: the owner that migrates, and ``studio_brain_app`` the running brain acts as.

Migration ``0015_rls_roles`` creates ``studio_brain_app`` (NOLOGIN, owns nothing, no superuser, no
BYPASSRLS) and grants it DML — audit tables append-only. Forced row-level security applies to it, it
cannot alter a table, drop a policy or disable a trigger, so a stolen app connection cannot undo the
database's own defences.

* **Embedded default**: the cluster is ours, so after migrating the brain gives ``studio_brain_app``
  LOGIN and connects as it (:func:`app_url`); the owner (``postgres``) is used only to migrate.
* **External server** (``STUDIO_BRAIN_DATABASE_URL``): the URL's role is used as given. The operator
  creates a login role for the app and grants it ``studio_brain_app`` (docs/operations.md), and runs
  ``studio-brain migrate`` as the owner. ``doctor`` fails while the app's role can bypass RLS.

Every connection of the app role carries the brain's tenant as the session default of
``studio_brain.tenant_id`` (:func:`session_options`), so the forced policies see it even where a store
does not set it per transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

from studio_brain.adapters.postgres.database import libpq_url
from studio_brain.logging import get_logger

log = get_logger(__name__)

APP_ROLE = "studio_brain_app"


def with_user(url: str, user: str) -> str:
    """``url`` logging in as ``user`` (no password: the embedded server trusts its loopback)."""
    parts = urlsplit(libpq_url(url))
    host = parts.hostname or ""
    netloc = f"{quote(user)}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def session_options(tenant_id: str) -> str:
    """libpq ``options`` giving every connection the brain's tenant as the RLS default."""
    return f"-c studio_brain.tenant_id={tenant_id}"


def app_url(owner_url: str) -> str:
    """The embedded cluster: let ``studio_brain_app`` log in and return its URL; ``owner_url`` (with a
    warning) while the role does not exist yet (a database not migrated to 0015)."""
    with psycopg.connect(libpq_url(owner_url), connect_timeout=5, autocommit=True) as conn:
        row = conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone()
        if row is None:
            log.warning("database.app_role.missing", role=APP_ROLE)
            return owner_url
        if not row[0]:
            conn.execute(f"ALTER ROLE {APP_ROLE} WITH LOGIN")
    return with_user(owner_url, APP_ROLE)


@dataclass(frozen=True, kw_only=True, slots=True)
class RoleReport:
    """What the role a URL logs in as may do that would bypass row-level security."""

    role: str
    superuser: bool
    bypass_rls: bool
    owned_tables: int

    @property
    def can_bypass_rls(self) -> bool:
        return self.superuser or self.bypass_rls or self.owned_tables > 0

    def problems(self) -> list[str]:
        found = []
        if self.superuser:
            found.append("is a superuser")
        if self.bypass_rls:
            found.append("has BYPASSRLS")
        if self.owned_tables:
            found.append(f"owns (or is a member of the owner of) {self.owned_tables} table(s)")
        return found


def role_report(url: str) -> RoleReport:
    """Inspect the role ``url`` logs in as (``doctor``)."""
    with psycopg.connect(libpq_url(url), connect_timeout=5) as conn:
        row = conn.execute(
            """
            SELECT current_user, r.rolsuper, r.rolbypassrls,
                   (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
                       AND pg_has_role(current_user, c.relowner, 'USAGE'))
              FROM pg_roles r WHERE r.rolname = current_user
            """
        ).fetchone()
    assert row is not None
    return RoleReport(
        role=str(row[0]), superuser=bool(row[1]), bypass_rls=bool(row[2]), owned_tables=int(row[3])
    )
