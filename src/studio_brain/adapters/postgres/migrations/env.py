"""Alembic environment: runs migrations under a PostgreSQL advisory lock so concurrent runs serialise."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool, text

from studio_brain.adapters.postgres.database import sqlalchemy_url
from studio_brain.adapters.postgres.tables import metadata

#: pg_advisory_lock key for migrations ("sbmigrat" as a 64-bit integer, arbitrary but fixed)
MIGRATION_LOCK_KEY = 0x73626D6967726174

config = context.config


def _url() -> str:
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    url = url or os.environ.get("STUDIO_BRAIN_DATABASE_URL")
    if not url:
        raise SystemExit("alembic: set STUDIO_BRAIN_DATABASE_URL or pass -x url=postgresql://...")
    return sqlalchemy_url(url)


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.commit()
        try:
            context.configure(connection=connection, target_metadata=metadata, compare_type=True)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
