"""Signed checkpoints, exports and verifying an export with no database (real files; in-memory log)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from studio_brain.adapters.audit_files import (
    CheckpointFile,
    JsonlExportReader,
    JsonlExportWriter,
    manifest_path,
)
from studio_brain.adapters.clock import UUID7Factory
from studio_brain.adapters.keys import Ed25519Signer, Ed25519Verifier
from studio_brain.adapters.memory import InMemoryCheckpointStore, InMemoryEventStore
from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft, BreakKind, checkpoint_message
from studio_brain.domain.errors import DataCorrupted, InputInvalid
from studio_brain.domain.hashing import sha256_hex
from studio_brain.services.audit import AuditService, VerifyReport, verify_export
from tests.fakes import FakeClock

T = "tenant-a"


def draft(n: int, tenant: str = T) -> AuditDraft:
    return AuditDraft(
        tenant_id=tenant,
        actor_type=ActorType.HUMAN,
        actor_id="owner",
        action="gateway.killswitch.toggled",
        target="local",
        rationale=f"toggle {n} — café",
        approval_state=ApprovalState.EXEMPT,
        input_hash=sha256_hex(n),
        request_id=f"req-{n}",
        correlation_id="corr",
        metadata={"n": n, "note": "ünïcode"},
    )


@pytest.fixture
def signer() -> Ed25519Signer:
    return Ed25519Signer(Ed25519PrivateKey.generate())


@pytest.fixture
def service(tmp_path: Path, signer: Ed25519Signer) -> AuditService:
    clock = FakeClock()
    return AuditService(
        events=InMemoryEventStore(clock, UUID7Factory()),
        checkpoint_stores=[
            InMemoryCheckpointStore("database"),
            CheckpointFile(tmp_path / "cp" / "checkpoints.jsonl"),
        ],
        signer=signer,
        verifier=Ed25519Verifier(),
        clock=clock,
    )


async def export(service: AuditService, path: Path, **bounds: Any) -> dict[str, Any]:
    return await service.export(JsonlExportWriter(path), T, **bounds)


async def verify_file(path: Path, keys: set[str] | None = None) -> VerifyReport:
    return await verify_export(JsonlExportReader(path), Ed25519Verifier(), trusted_keys=keys)


def rewrite_lines(path: Path, change: Any) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(change(lines)) + "\n", encoding="utf-8")


async def test_checkpointing_an_empty_chain_signs_nothing(service: AuditService) -> None:
    assert await service.checkpoint(T) is None
    assert await service.all_checkpoints() == []


async def test_a_checkpoint_signs_the_head_and_is_kept_in_the_database_and_the_file(
    service: AuditService, signer: Ed25519Signer, tmp_path: Path
) -> None:
    events = await service.append_many([draft(n) for n in range(5)])
    signed = await service.checkpoint(T)
    assert signed is not None
    assert (signed.seq, signed.hash, signed.public_key) == (5, events[-1].hash, signer.public_key)
    message = checkpoint_message(tenant_id=T, seq=5, hash=signed.hash, at=signed.at)
    assert Ed25519Verifier().verify(signer.public_key, message, signed.signature)
    assert await CheckpointFile(tmp_path / "cp" / "checkpoints.jsonl").checkpoints(T) == [signed]
    assert await service.all_checkpoints(T) == [signed]


async def test_checkpointing_an_unchanged_head_again_returns_the_same_checkpoint(
    service: AuditService,
) -> None:
    await service.append(draft(1))
    first = await service.checkpoint(T)
    assert await service.checkpoint(T) == first
    await service.append(draft(2))
    second = await service.checkpoint(T)
    assert second is not None
    assert second.seq == 2
    assert [c.seq for c in await service.all_checkpoints(T)] == [1, 2]


async def test_verify_covers_every_tenant(service: AuditService) -> None:
    await service.append_many([draft(1), draft(2, tenant="tenant-b")])
    reports = await service.verify()
    assert [(r.tenant_id, r.intact, r.checked) for r in reports] == [(T, True, 1), ("tenant-b", True, 1)]


async def test_an_export_verifies_with_no_database(
    service: AuditService, tmp_path: Path, signer: Ed25519Signer
) -> None:
    events = await service.append_many([draft(n) for n in range(12)])
    await service.checkpoint(T)
    out = tmp_path / "export.jsonl"
    manifest = await export(service, out)
    assert manifest["rowCount"] == 12
    assert manifest["first"] == {"seq": 1, "hash": events[0].hash, "prevHash": events[0].prev_hash}
    assert manifest["last"] == {"seq": 12, "hash": events[-1].hash}
    assert manifest["publicKey"] == signer.public_key
    assert [c["seq"] for c in manifest["checkpoints"]] == [12]
    assert json.loads(manifest_path(out).read_text()) == manifest
    assert len(out.read_text(encoding="utf-8").splitlines()) == 12
    report = await verify_file(out, {signer.public_key})
    assert report.intact, report.problem
    assert (report.checked, report.checkpoints_trusted) == (12, 1)


async def test_a_partial_export_verifies_from_its_anchor(service: AuditService, tmp_path: Path) -> None:
    await service.append_many([draft(n) for n in range(12)])
    await service.checkpoint(T)
    out = tmp_path / "part.jsonl"
    manifest = await export(service, out, from_seq=4, to_seq=9)
    assert (manifest["rowCount"], manifest["checkpoints"]) == (6, [])
    report = await verify_file(out)
    assert report.intact, report.problem
    assert report.last_seq == 9


async def test_an_edited_line_of_an_export_is_modified(service: AuditService, tmp_path: Path) -> None:
    await service.append_many([draft(n) for n in range(8)])
    out = tmp_path / "x.jsonl"
    await export(service, out)
    rewrite_lines(out, lambda lines: [line.replace("toggle 3", "toggle 30") for line in lines])
    report = await verify_file(out)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == (BreakKind.MODIFIED, 4)


async def test_a_deleted_line_of_an_export_is_missing(service: AuditService, tmp_path: Path) -> None:
    await service.append_many([draft(n) for n in range(8)])
    out = tmp_path / "x.jsonl"
    await export(service, out)
    rewrite_lines(out, lambda lines: lines[:2] + lines[3:])
    report = await verify_file(out)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == (BreakKind.MISSING, 3)


async def test_cutting_the_end_off_a_checkpointed_export_is_truncation(
    service: AuditService, tmp_path: Path
) -> None:
    await service.append_many([draft(n) for n in range(8)])
    await service.checkpoint(T)
    out = tmp_path / "x.jsonl"
    await export(service, out)
    rewrite_lines(out, lambda lines: lines[:5])
    report = await verify_file(out)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == (BreakKind.TRUNCATED_AFTER_CHECKPOINT, 6)


async def test_cutting_the_end_off_an_export_without_checkpoints_still_disagrees_with_the_manifest(
    service: AuditService, tmp_path: Path
) -> None:
    await service.append_many([draft(n) for n in range(8)])
    out = tmp_path / "x.jsonl"
    await export(service, out)
    rewrite_lines(out, lambda lines: lines[:5])
    report = await verify_file(out)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == (BreakKind.MISSING, 6)


async def test_a_garbled_line_is_reported_as_modified_not_a_crash(
    service: AuditService, tmp_path: Path
) -> None:
    await service.append_many([draft(n) for n in range(5)])
    out = tmp_path / "x.jsonl"
    await export(service, out)
    rewrite_lines(out, lambda lines: [*lines[:2], "{not json", *lines[3:]])
    report = await verify_file(out)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == (BreakKind.MODIFIED, 3)


async def test_an_export_resigned_with_another_key_fails_against_the_pinned_key(
    service: AuditService, tmp_path: Path, signer: Ed25519Signer
) -> None:
    await service.append_many([draft(n) for n in range(3)])
    await service.checkpoint(T)
    out = tmp_path / "x.jsonl"
    await export(service, out)
    manifest = json.loads(manifest_path(out).read_text())
    impostor = Ed25519Signer(Ed25519PrivateKey.generate())
    for c in manifest["checkpoints"]:
        c["publicKey"] = impostor.public_key
        c["signature"] = "00" * 64
    manifest["publicKey"] = impostor.public_key
    manifest_path(out).write_text(json.dumps(manifest))
    report = await verify_file(out, {signer.public_key})
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == (BreakKind.BAD_SIGNATURE, 3)


async def test_an_export_without_its_manifest_is_a_usage_error(tmp_path: Path) -> None:
    lonely = tmp_path / "lonely.jsonl"
    lonely.write_text("")
    with pytest.raises(InputInvalid, match="manifest"):
        await verify_file(lonely)


async def test_an_export_range_backwards_is_refused(service: AuditService, tmp_path: Path) -> None:
    with pytest.raises(InputInvalid):
        await export(service, tmp_path / "x.jsonl", from_seq=5, to_seq=2)


async def test_a_damaged_checkpoint_file_is_reported_not_ignored(
    service: AuditService, tmp_path: Path
) -> None:
    await service.append(draft(1))
    await service.checkpoint(T)
    with open(tmp_path / "cp" / "checkpoints.jsonl", "a", encoding="utf-8") as handle:
        handle.write("{garbage\n")
    with pytest.raises(DataCorrupted, match="line 2"):
        await service.verify(T)


async def test_a_checkpoint_file_created_later_is_filled_on_the_next_checkpoint(
    service: AuditService, tmp_path: Path
) -> None:
    await service.append(draft(1))
    signed = await service.checkpoint(T)
    (tmp_path / "cp" / "checkpoints.jsonl").unlink()
    assert await service.checkpoint(T) == signed
    assert await CheckpointFile(tmp_path / "cp" / "checkpoints.jsonl").checkpoints() == [signed]
