"""Create a scratch database, migrate it to head, run `alembic check` on it, drop it (used by scripts/test)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import psycopg
from psycopg import sql

from studio_brain.adapters.postgres.database import with_database


def main(server_url: str) -> int:
    name = f"sb_alembic_check_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(server_url, name)
    env = {**os.environ, "STUDIO_BRAIN_DATABASE_URL": url}
    try:
        subprocess.run([sys.executable, "-m", "studio_brain", "migrate"], env=env, check=True)
        return subprocess.run(["alembic", "check"], env=env, check=False).returncode
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
