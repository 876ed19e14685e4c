"""Schema migrations with Alembic: upgrade to head (idempotent, serialised by an advisory lock), inspect."""

from __future__ import annotations

from importlib.resources import files

import psycopg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from studio_brain.adapters.postgres.database import libpq_url
from studio_brain.domain.errors import DatabaseUnavailable
from studio_brain.settings import redact_url


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("studio_brain.adapters.postgres") / "migrations"))
    config.attributes["url"] = url
    return config


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("postgresql://unused"))
    head = script.get_current_head()
    assert head is not None
    return head


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
    """Migrate to head; returns (revision before, revision after). Safe to run concurrently."""
    before = current_revision(url)
    command.upgrade(alembic_config(url), "head")
    return before, head_revision()


def check_models_match(url: str) -> None:
    """``alembic check``: raises alembic.util.CommandError when the models and the schema differ."""
    command.check(alembic_config(url))
