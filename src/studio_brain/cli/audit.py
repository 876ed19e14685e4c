"""CLI of the audit log (issues 3, 12): ``audit verify | checkpoint | export | list | rotate-key``.

``audit verify`` exits 0 when every chain is intact, 1 when one is broken (or cannot be read), 2 on a
usage error. It shows a progress bar on a terminal; ``--json`` prints one machine-readable document.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from studio_brain.adapters.audit_files import (
    CheckpointFile,
    JsonlExportReader,
    JsonlExportWriter,
    manifest_path,
)
from studio_brain.adapters.keys import (
    Ed25519Verifier,
    load_mac_keyring,
    public_key_if_present,
    rotate_mac_key,
)
from studio_brain.bootstrap import Brain, open_brain
from studio_brain.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    fail,
    print_json,
    run,
    settings_or_exit,
    studio_time,
)
from studio_brain.domain.audit import ApprovalState, AuditEvent, AuditQuery, event_to_json
from studio_brain.domain.errors import DataCorrupted
from studio_brain.services.audit import AuditService, VerifyReport, verify_export
from studio_brain.settings import Settings

audit_app = typer.Typer(
    help="The tamper-evident audit log: list events, verify chains, sign checkpoints, export.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
TenantOption = Annotated[
    str | None,
    typer.Option("--tenant", help="Tenant id [default: STUDIO_BRAIN_TENANT_ID].", show_default=False),
]


def _service(brain: Brain) -> AuditService:
    return brain.audit


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    progress = Progress(
        TextColumn("verifying {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        yield progress


def _describe(report: VerifyReport) -> str:
    if report.problem is None and report.checked == 0:
        return f"{report.tenant_id}: no events (and no checkpoint expecting any)"
    if report.problem is None:
        return (
            f"{report.tenant_id}: intact — {report.checked} events, head seq {report.last_seq or 0}, "
            f"{report.checkpoints_trusted} signed checkpoint(s) matched" + _keyed_summary(report)
        )
    p = report.problem
    return f"{report.tenant_id}: BROKEN at seq {p.seq} ({p.kind}): {p.detail}"


def _keyed_summary(report: VerifyReport) -> str:
    parts = []
    if report.keyed:
        parts.append(f"{report.keyed} keyed (MAC verified)")
    if report.keyed_unchecked:
        parts.append(f"{report.keyed_unchecked} keyed (MAC not checked: no keyring here)")
    if report.unkeyed:
        sealed = (
            f"sealed by the keyed event at seq {report.unkeyed_sealed_by}"
            if report.unkeyed_sealed_by is not None
            else "sealed by a signed checkpoint"
        )
        parts.append(f"{report.unkeyed} unkeyed (before upgrade), {sealed}")
    return "; " + "; ".join(parts) if parts else ""


def _finish_verify(reports: list[VerifyReport], as_json: bool, extra: dict[str, Any] | None = None) -> None:
    intact = all(r.intact for r in reports)
    if as_json:
        print_json({"intact": intact, "tenants": [r.to_json() for r in reports], **(extra or {})})
    elif not reports:
        typer.echo("the audit log is empty: nothing to verify")
    else:
        for report in reports:
            typer.echo(_describe(report))
    raise typer.Exit(EXIT_OK if intact else EXIT_FAILURE)


def _trusted_keys(settings: Settings, manifest_key: str, public_key: str | None) -> tuple[set[str], str]:
    """Which key checkpoints of an export must be signed with, and why (pinned, local or manifest)."""
    if public_key is not None:
        return {public_key.strip().lower()}, "pinned"
    secret = settings.audit_signing_key
    local_key = public_key_if_present(
        settings.audit_key_path, secret_hex=None if secret is None else secret.get_secret_value()
    )
    if local_key is not None and local_key == manifest_key:
        return {local_key}, "local"
    return {manifest_key}, "manifest"


def _verify_file(
    settings: Settings, path: Path, public_key: str | None, as_json: bool, show_bar: bool
) -> None:
    reader = JsonlExportReader(path)

    async def _main() -> tuple[VerifyReport, str]:
        manifest = reader.manifest()
        trusted, source = _trusted_keys(settings, str(manifest.get("publicKey")), public_key)
        if source == "manifest" and not as_json:
            typer.echo(
                "note: trusting the export's own public key (it is not this installation's key); "
                "pass --public-key to pin the key you expect",
                err=True,
            )
        with _progress_bar(show_bar) as bar:
            total = manifest.get("rowCount")
            task = bar.add_task(path.name, total=total if isinstance(total, int) else None) if bar else None

            def progress(_tenant: str, checked: int) -> None:
                if bar is not None and task is not None:
                    bar.update(task, completed=checked)

            report = await verify_export(
                reader,
                Ed25519Verifier(),
                trusted_keys=trusted,
                progress=progress,
                keyring=keyring,
                # only this installation's checkpoints signed by the key the export is judged by
                outside_checkpoints=[c for c in outside if c.public_key in trusted],
            )
        return report, source

    # This installation's keyring and checkpoint file, when present: MACs are checked and the file's
    # checkpoints count as well as the manifest's (whoever edits an export can re-sign its manifest).
    keyring = load_mac_keyring(settings.audit_mac_key_path)
    outside_file = CheckpointFile(settings.audit_checkpoint_path)
    outside = run(outside_file.checkpoints()) if settings.audit_checkpoint_path.exists() else []
    report, source = run(_main())
    _finish_verify(
        [report],
        as_json,
        {
            "file": str(path),
            "publicKeyTrust": source,
            "checkpointFile": str(settings.audit_checkpoint_path) if outside else None,
        },
    )


@audit_app.command("verify")
def verify(
    tenant: TenantOption = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="Verify an export (no database needed).",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
    public_key: Annotated[
        str | None, typer.Option("--public-key", help="With --file: the checkpoint key to trust (hex).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute every hash, link and MAC and check the signed checkpoints. Exit 0 intact, 1 broken."""
    settings = settings_or_exit()
    show_bar = not as_json and Console(stderr=True).is_terminal
    if file is not None:
        if tenant is not None:
            fail("--tenant does not apply to --file (an export holds one tenant)", code=EXIT_USAGE)
        _verify_file(settings, file, public_key, as_json, show_bar)
        return
    if public_key is not None:
        fail("--public-key applies only with --file", code=EXIT_USAGE)

    async def _main() -> list[VerifyReport]:
        async with open_brain(settings, migrate=True) as brain:
            service = _service(brain)
            with _progress_bar(show_bar) as bar:
                tasks: dict[str, Any] = {}
                if bar is not None:
                    for name in [tenant] if tenant else await service.events.tenants():
                        tasks[name] = bar.add_task(name, total=await service.count_hint(name))

                def progress(name: str, checked: int) -> None:
                    if bar is not None and name in tasks:
                        bar.update(tasks[name], completed=checked)

                return await service.verify(tenant, progress=progress)

    reports = run(_main())
    _warn_torn_tail(settings)
    _finish_verify(reports, as_json)


def _warn_torn_tail(settings: Settings) -> None:
    """Issue 13: a torn last line of the checkpoint file is reported (on stderr), never called tampering."""
    try:
        torn = CheckpointFile(settings.audit_checkpoint_path).inspect()
    except (OSError, DataCorrupted):  # damage is verify's to report; this is only a hint
        return
    if torn is not None:
        typer.echo(f"warning: {torn.describe()}", err=True)


RepairOption = Annotated[
    bool,
    typer.Option(
        "--repair",
        help="First remove a torn last line of the checkpoint file (an append cut by a full disk or crash).",
    ),
]


SealUnkeyedOption = Annotated[
    bool,
    typer.Option(
        "--seal-unkeyed",
        help="Also sign an unkeyed tail not yet sealed (only right after upgrading to the keyed chain, "
        "when the automatic seal at upgrade failed; see docs/audit.md).",
    ),
]


@audit_app.command("checkpoint")
def checkpoint(
    tenant: TenantOption = None,
    as_json: JsonOption = False,
    repair: RepairOption = False,
    seal_unkeyed: SealUnkeyedOption = False,
) -> None:
    """Sign the chain's head with the Ed25519 key; keep it in the database and the checkpoint file.

    The chain is verified first (hashes, links, MACs): a chain that does not verify is never signed."""
    settings = settings_or_exit()
    tenant_id = tenant or settings.tenant_id
    if repair:
        removed = CheckpointFile(settings.audit_checkpoint_path).repair()
        if removed is None:
            typer.echo(f"{settings.audit_checkpoint_path}: whole, nothing to repair", err=True)
        else:
            typer.echo(
                f"repaired {removed.path}: removed the incomplete line {removed.line} ({removed.size} bytes)",
                err=True,
            )

    async def _main() -> dict[str, Any] | None:
        async with open_brain(settings, migrate=True) as brain:
            signed = await _service(brain).checkpoint(tenant_id, seal_unkeyed=seal_unkeyed)
            if signed is None:
                return None
            return {
                "tenantId": signed.tenant_id,
                "seq": signed.seq,
                "hash": signed.hash,
                "at": signed.at.isoformat(),
                "publicKey": signed.public_key,
                "checkpointFile": str(settings.audit_checkpoint_path),
            }

    signed = run(_main())
    if as_json:
        print_json({"checkpoint": signed})
    elif signed is None:
        typer.echo(f"{tenant_id}: the audit log has no events yet; nothing to checkpoint")
    else:
        typer.echo(
            f"{tenant_id}: signed checkpoint at seq {signed['seq']} (hash {signed['hash'][:16]}…), kept in the "
            f"database and {signed['checkpointFile']}"
        )


@audit_app.command("rotate-key")
def rotate_key(as_json: JsonOption = False) -> None:
    """Add a new MAC key and make it current; old keys stay so old events verify. Restart brains after."""
    settings = settings_or_exit()
    key = rotate_mac_key(settings.audit_mac_key_path)
    if as_json:
        print_json({"keyId": key.key_id, "keyFile": str(settings.audit_mac_key_path)})
    else:
        typer.echo(
            f"new MAC key {key.key_id} is current in {settings.audit_mac_key_path}; old keys are kept for "
            "verification. Restart running brains so they seal with it."
        )


@audit_app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", help="The JSONL file to write; the manifest goes beside it.")],
    tenant: TenantOption = None,
    from_seq: Annotated[int, typer.Option("--from-seq", min=1, help="First seq to export.")] = 1,
    to_seq: Annotated[int | None, typer.Option("--to-seq", min=1, help="Last seq to export.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing export.")] = False,
) -> None:
    """Write the tenant's events as JSONL plus a manifest (counts, first/last hash, checkpoints, key)."""
    settings = settings_or_exit()
    tenant_id = tenant or settings.tenant_id
    if to_seq is not None and to_seq < from_seq:
        fail("--to-seq must not be below --from-seq", code=EXIT_USAGE)
    if not force and (out.exists() or manifest_path(out).exists()):
        fail(f"{out} already exists; pass --force to overwrite it", code=EXIT_USAGE)
    if out.is_dir():
        fail(f"{out} is a directory; give a file name", code=EXIT_USAGE)
    writer = JsonlExportWriter(out)

    async def _main() -> dict[str, Any]:
        async with open_brain(settings, migrate=True) as brain:
            return await _service(brain).export(writer, tenant_id, from_seq=from_seq, to_seq=to_seq)

    try:
        manifest = run(_main())
    finally:
        writer.abort()  # removes partial files only; a finished export was already renamed into place
    typer.echo(
        f"exported {manifest['rowCount']} event(s) of {tenant_id} to {out} (manifest {manifest_path(out)})"
    )


def _parse_time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO-8601 time", param_hint=option) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _line(event: AuditEvent) -> str:
    who = f"{event.actor_type}:{event.actor_id}"
    rationale = event.rationale if len(event.rationale) <= 60 else event.rationale[:59] + "…"
    return (
        f"{event.seq:>7}  {studio_time(event.at, '%Y-%m-%d %H:%M:%S %Z')}  {who:<24} {event.action:<36} "
        f"{event.approval_state!s:<14} {rationale}"
    )


@audit_app.command("list")
def list_events(
    tenant: TenantOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many events (newest first).")] = 20,
    action: Annotated[
        str | None, typer.Option("--action", help="Dotted action prefix, e.g. capability.")
    ] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Actor id.")] = None,
    capability: Annotated[str | None, typer.Option("--capability", help="Capability id.")] = None,
    approval: Annotated[
        ApprovalState | None, typer.Option("--approval", help="Approval state.", case_sensitive=False)
    ] = None,
    correlation: Annotated[str | None, typer.Option("--correlation", help="Correlation id.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="From this time (ISO-8601; UTC if no zone).")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Before this time (ISO-8601).")] = None,
    before_seq: Annotated[
        int | None, typer.Option("--before-seq", min=1, help="Page: events below this seq.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show recent audit events, newest first, with filters."""
    settings = settings_or_exit()
    tenant_id = tenant or settings.tenant_id
    query = AuditQuery(
        action_prefix=action,
        actor_id=actor,
        capability_id=capability,
        approval_state=approval,
        correlation_id=correlation,
        since=_parse_time(since, "--since"),
        until=_parse_time(until, "--until"),
        before_seq=before_seq,
        newest_first=True,
        limit=limit,
    )

    async def _main() -> tuple[list[AuditEvent], int | None]:
        async with open_brain(settings, migrate=True) as brain:
            page = await _service(brain).query(tenant_id, query)
            return page.events, page.next_cursor

    events, cursor = run(_main())
    if as_json:
        print_json({"events": [event_to_json(e) for e in events], "nextBeforeSeq": cursor})
        return
    if not events:
        typer.echo(f"{tenant_id}: no audit events match")
        return
    for event in events:
        typer.echo(_line(event))
    if cursor is not None:
        typer.echo(f"(more: --before-seq {cursor})")


def register(app: typer.Typer) -> None:
    """Add the ``audit`` command group to the root app."""
    app.add_typer(audit_app, name="audit")
