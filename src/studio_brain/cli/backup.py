"""CLI of backup and restore (issue 14): ``studio-brain backup`` and ``studio-brain restore DIR``.

The files and tools are in ``adapters.backup``; this module decides the order and reports. A restore goes
into an empty home only, then verifies the audit chain and compares the restored counts and audit head
with the backup's manifest (exit 1 on any difference).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from studio_brain import __version__
from studio_brain.adapters import backup as files
from studio_brain.adapters.admin_token import ADMIN_TOKEN_FILE
from studio_brain.adapters.audit_files import JsonlExportWriter
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.migrate import current_revision
from studio_brain.bootstrap import DatabaseTarget, open_brain, provision_database, release_database
from studio_brain.cli.common import EXIT_FAILURE, EXIT_USAGE, fail, print_json, run, settings_or_exit
from studio_brain.domain.errors import InputInvalid
from studio_brain.settings import Settings


def _files(settings: Settings) -> files.BackupFiles:
    return files.BackupFiles(
        home=settings.home,
        checkpoint_file=settings.audit_checkpoint_path,
        signing_key_file=settings.audit_key_path,
        admin_token_file=settings.home / ADMIN_TOKEN_FILE,
    )


async def table_counts(database: Database, tenant_id: str) -> dict[str, int]:
    """Rows per table of the brain's schema, as this tenant sees them (row-level security applies)."""
    async with database.connection() as conn:
        await conn.execute("SELECT set_config('studio_brain.tenant_id', %s, true)", (tenant_id,))
        cursor = await conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            " AND table_type = 'BASE TABLE' AND table_name <> 'alembic_version' ORDER BY table_name"
        )
        names = [row["table_name"] for row in await cursor.fetchall()]
        counts = {}
        for name in names:
            cursor = await conn.execute(f'SELECT count(*) AS n FROM "{name}"')
            row = await cursor.fetchone()
            counts[name] = int(row["n"]) if row else 0
        return counts


def backup(
    to: Annotated[
        Path | None,
        typer.Option(
            "--to", help="Directory to write (must not exist or be empty). Default: <home>/backups/<time>."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Back up this brain: its database, the audit export, the checkpoint file, the keys, and a manifest."""
    settings = settings_or_exit()
    kept = _files(settings)
    out = to or settings.home / "backups" / files.stamp(datetime.now(UTC))
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        fail(f"{out} exists and is not an empty directory; choose another --to", code=EXIT_USAGE)

    async def _main() -> dict[str, Any]:
        async with open_brain(settings, migrate=True) as brain:
            out.mkdir(parents=True, exist_ok=True, mode=0o700)
            url = brain.database_target.url
            await asyncio.to_thread(files.dump_database, url, out / files.DUMP)
            audit: dict[str, Any] | None = None
            head = None
            if brain.audit is not None:
                writer = JsonlExportWriter(out / files.AUDIT)
                try:
                    audit = await brain.audit.export(writer, settings.tenant_id)
                finally:
                    writer.abort()
                head = await brain.audit.events.head(settings.tenant_id)
            copied: list[str] = []
            if kept.checkpoint_file.is_file():
                files.copy_private(kept.checkpoint_file, out / files.CHECKPOINTS)
                copied.append(files.CHECKPOINTS)
            keys_dir = settings.home / files.KEYS_DIR
            secrets = sorted(p for p in keys_dir.iterdir() if p.is_file()) if keys_dir.is_dir() else []
            if kept.signing_key_file.is_file() and kept.signing_key_file.parent != keys_dir:
                secrets.append(kept.signing_key_file)
            if kept.admin_token_file.is_file():
                secrets.append(kept.admin_token_file)
            for source in secrets:
                name = "audit-signing.key" if source == kept.signing_key_file else source.name
                files.copy_private(source, out / files.KEYS_DIR / name)
                copied.append(f"{files.KEYS_DIR}/{name}")
            return files.write_manifest(
                out,
                {
                    "studioBrainVersion": __version__,
                    "createdAt": datetime.now(UTC).isoformat(),
                    "tenantId": settings.tenant_id,
                    "database": "embedded" if brain.database_target.embedded is not None else "external",
                    "revision": await asyncio.to_thread(current_revision, url),
                    "auditHead": None if head is None else {"seq": head.seq, "hash": head.hash},
                    "auditRows": None if audit is None else audit.get("rowCount"),
                    "tables": await table_counts(brain.database, settings.tenant_id),
                    "secrets": copied,
                    "notInBackup": [
                        note
                        for note, missing in (
                            (
                                "the admin token comes from STUDIO_BRAIN_ADMIN_TOKEN",
                                settings.admin_token is not None,
                            ),
                            (
                                "the audit key comes from STUDIO_BRAIN_AUDIT_SIGNING_KEY",
                                settings.audit_signing_key is not None,
                            ),
                        )
                        if missing
                    ],
                },
            )

    manifest = run(_main())
    if as_json:
        print_json(manifest)
        return
    typer.echo(f"backup written to {out}")
    typer.echo(
        f"  database   : {files.DUMP} (revision {manifest['revision']}, {sum(manifest['tables'].values())} rows)"
    )
    head = manifest["auditHead"]
    typer.echo(
        f"  audit log  : {files.AUDIT} ({manifest['auditRows']} events, head {head['seq'] if head else '—'})"
    )
    typer.echo(
        f"  keys       : {', '.join(manifest['secrets']) or 'none'} (mode 0600: keep this directory private)"
    )
    for note in manifest["notInBackup"]:
        typer.echo(f"  ! not in the backup: {note}; keep it with the backup")


async def _database_is_empty(url: str) -> bool:
    return await asyncio.to_thread(current_revision, url) is None


def restore(
    source: Annotated[Path, typer.Argument(help="A directory written by `studio-brain backup`.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable report.")] = False,
) -> None:
    """Restore a backup into an EMPTY home (and empty database), then verify the audit chain and compare."""
    settings = settings_or_exit()
    kept = _files(settings)

    async def _main() -> dict[str, Any]:
        manifest = files.read_manifest(source)
        present = files.home_is_empty(settings.home, kept)
        if present:
            raise InputInvalid(
                f"restore needs an empty home, but {settings.home} already holds {', '.join(present)}; "
                "set STUDIO_BRAIN_HOME to a new directory"
            )
        if manifest.get("tenantId") != settings.tenant_id:
            raise InputInvalid(
                f"the backup is of tenant {manifest.get('tenantId')!r}, this brain serves {settings.tenant_id!r}"
            )
        target = await asyncio.to_thread(provision_database, settings)
        try:
            if not await _database_is_empty(target.url):
                raise InputInvalid("the target database is not empty: restore only into a fresh database")
            await asyncio.to_thread(files.restore_database, target.url, source / files.DUMP)
            places = {
                files.CHECKPOINTS: kept.checkpoint_file,
                f"{files.KEYS_DIR}/audit-signing.key": kept.signing_key_file,
                f"{files.KEYS_DIR}/{ADMIN_TOKEN_FILE}": kept.admin_token_file,
            }
            for name in [*manifest.get("secrets", []), files.CHECKPOINTS]:
                if (source / name).is_file():
                    files.copy_private(source / name, places.get(name, settings.home / name))
            return await _verify(settings, DatabaseTarget(url=target.url, embedded=None), manifest)
        finally:
            await asyncio.to_thread(release_database, target)

    report = run(_main())
    if as_json:
        print_json(report)
    else:
        typer.echo(f"restored {source} into {settings.home}")
        typer.echo(
            f"  audit chain: {'intact' if report['auditIntact'] else 'BROKEN'} ({report['auditChecked']} events)"
        )
        for problem in report["differences"]:
            typer.echo(f"  ! {problem}")
        if not report["differences"]:
            typer.echo("  tables and audit head match the backup's manifest")
    if report["differences"] or not report["auditIntact"]:
        raise typer.Exit(EXIT_FAILURE)


async def _verify(settings: Settings, target: DatabaseTarget, manifest: dict[str, Any]) -> dict[str, Any]:
    async with open_brain(settings, migrate=False, target=target) as brain:
        differences: list[str] = []
        intact, checked = True, 0
        if brain.audit is not None:
            [report] = await brain.audit.verify(settings.tenant_id)
            intact, checked = report.intact, report.checked
            head = await brain.audit.events.head(settings.tenant_id)
            shown = None if head is None else {"seq": head.seq, "hash": head.hash}
            if shown != manifest.get("auditHead"):
                differences.append(
                    f"audit head {shown} differs from the backup's {manifest.get('auditHead')}"
                )
        counts = await table_counts(brain.database, settings.tenant_id)
        for table, expected in (manifest.get("tables") or {}).items():
            if counts.get(table) != expected:
                differences.append(f"{table}: {counts.get(table)} rows restored, {expected} backed up")
        return {"auditIntact": intact, "auditChecked": checked, "tables": counts, "differences": differences}


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore")(restore)
