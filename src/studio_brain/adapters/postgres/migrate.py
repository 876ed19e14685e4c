"""Schema migrations with Alembic: upgrade to head (idempotent, serialised by an advisory lock), inspect.

Alembic (and SQLAlchemy under it, ~39 MB resident) is imported only when a migration has to run or be
inspected: a server starting on a database already at head learns that from one query and the
revisions named in the migration files, and never loads it (issue 18: idle memory).
"""

from __future__ import annotations

import ast
from importlib.resources import files
from typing import TYPE_CHECKING

import psycopg

from studio_brain.adapters.postgres.database import libpq_url
from studio_brain.domain.errors import DatabaseUnavailable
from studio_brain.settings import redact_url

if TYPE_CHECKING:
    from alembic.config import Config


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(files("studio_brain.adapters.postgres") / "migrations"))
    config.attributes["url"] = url
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("postgresql://unused"))
    head = script.get_current_head()
    assert head is not None
    return head


def declared_head() -> str | None:
    """The head revision as the migration files declare it (``revision`` / ``down_revision``), read
    without importing them or Alembic; None when that is not one unambiguous head (Alembic decides)."""
    revisions: dict[str, str | None] = {}
    for path in (files("studio_brain.adapters.postgres") / "migrations" / "versions").iterdir():
        if not path.name.endswith(".py"):
            continue
        names: dict[str, object] = {}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            targets: list[ast.expr] = []
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
            elif isinstance(node, ast.Assign):
                targets = node.targets
            value = getattr(node, "value", None)
            if len(targets) == 1 and isinstance(targets[0], ast.Name) and isinstance(value, ast.Constant):
                names[targets[0].id] = value.value
        revision, down = names.get("revision"), names.get("down_revision", "missing")
        if not isinstance(revision, str) or not (down is None or isinstance(down, str)):
            return None  # a merge point (a tuple) or a computed name: not for this shortcut
        revisions[revision] = down
    heads = set(revisions) - {down for down in revisions.values() if down is not None}
    return next(iter(heads)) if len(heads) == 1 else None


def current_revision(url: str) -> str | None:
    """The database's migration level, or None for an empty database."""
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=5) as conn:
            has_table = conn.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL").fetchone()
            if not has_table or not has_table[0]:
                return None
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            return None if row is None else str(row[0])
    except psycopg.OperationalError as err:
        raise DatabaseUnavailable(f"cannot reach PostgreSQL at {redact_url(url)}") from err


def upgrade_to_head(url: str) -> tuple[str | None, str]:
    """Migrate to head; returns (revision before, revision after). Safe to run concurrently.

    A database already at the declared head is left as it is without Alembic: the revision row is
    written in the migration's own transaction, so reading the head means every step is committed."""
    before = current_revision(url)
    if before is not None and before == declared_head():
        return before, before
    from alembic import command

    command.upgrade(alembic_config(url), "head")
    return before, head_revision()


def check_models_match(url: str) -> None:
    """``alembic check``: raises alembic.util.CommandError when the models and the schema differ."""
    from alembic import command

    command.check(alembic_config(url))
