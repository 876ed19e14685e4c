"""Audit files on a full disk and after crashes (issue 13).

Faults: a checkpoint append that hit ENOSPC left a torn line, and from then on ``audit verify`` and
``audit checkpoint`` exited 1 ("line 12 … has been damaged") even after space was freed; a killed export
left its ``.partial`` file behind. A full disk is a child process under ``RLIMIT_FSIZE`` (the kernel
stops the write part-way exactly like ENOSPC does, without needing a tiny filesystem); a crash is a
``kill -9`` of a real process, or the bytes such a crash leaves.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from studio_brain.adapters.audit_files import CheckpointFile, JsonlExportWriter
from studio_brain.domain.audit import AuditCheckpoint, checkpoint_to_json
from studio_brain.domain.errors import DataCorrupted
from tests.integration.test_audit_cli import T, audit, populated  # noqa: F401 - the populated fixture

HEX = "ab" * 32


def checkpoint(seq: int) -> AuditCheckpoint:
    return AuditCheckpoint(
        tenant_id=T,
        seq=seq,
        hash=f"{seq:064x}",
        at=datetime(2026, 12, 1, 12, seq % 60, tzinfo=UTC),
        signature="cd" * 64,
        public_key=HEX,
    )


def append_in_a_full_disk(path: Path, seq: int, room: int) -> subprocess.CompletedProcess[str]:
    """Append checkpoint ``seq`` in a child that may grow the file by only ``room`` bytes."""
    code = textwrap.dedent(
        f"""
        import asyncio, resource, signal, sys
        from pathlib import Path
        from studio_brain.adapters.audit_files import CheckpointFile
        from studio_brain.domain.errors import StorageError
        from tests.faults.test_audit_files import checkpoint
        path = Path({str(path)!r})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write then fails with EFBIG, like ENOSPC
        limit = path.stat().st_size + {room}
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        try:
            asyncio.run(CheckpointFile(path).save(checkpoint({seq})))
        except StorageError as err:
            print(err.message)
            sys.exit(3)
        """
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False, cwd=os.getcwd()
    )


async def test_an_append_cut_by_a_full_disk_is_taken_back_and_the_file_stays_whole(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.jsonl"
    store = CheckpointFile(path)
    for seq in (1, 2):
        await store.save(checkpoint(seq))
    before = path.read_bytes()

    child = append_in_a_full_disk(path, 3, room=40)
    assert child.returncode == 3, child.stderr
    assert "cannot append to the checkpoint file" in child.stdout
    assert path.read_bytes() == before  # not half a line

    # space freed: the next checkpoint appends, and nothing reads as damage
    await store.save(checkpoint(3))
    assert [c.seq for c in await store.checkpoints(T)] == [1, 2, 3]
    assert store.inspect() is None


async def test_a_torn_last_line_from_a_crash_is_reported_not_called_tampering(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.jsonl"
    store = CheckpointFile(path)
    for seq in (1, 2):
        await store.save(checkpoint(seq))
    whole = path.read_bytes()
    torn_line = json.dumps(checkpoint_to_json(checkpoint(3)))[:57]  # a power cut mid-write
    path.write_bytes(whole + torn_line.encode())

    assert [c.seq for c in await store.checkpoints(T)] == [1, 2]
    torn = store.inspect()
    assert torn is not None
    assert (torn.line, torn.size, torn.offset) == (3, 57, len(whole))
    assert "not tampering" in torn.describe()

    assert store.repair() == torn
    assert path.read_bytes() == whole
    assert store.repair() is None


async def test_the_next_append_removes_a_torn_tail_instead_of_gluing_two_lines(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.jsonl"
    store = CheckpointFile(path)
    await store.save(checkpoint(1))
    with open(path, "ab") as handle:
        handle.write(b'{"tenantId": "monsoonfire-main", "se')
    await store.save(checkpoint(2))
    assert [c.seq for c in await store.checkpoints(T)] == [1, 2]
    assert store.inspect() is None


async def test_damage_inside_the_file_is_still_reported_as_damage(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.jsonl"
    store = CheckpointFile(path)
    for seq in (1, 2):
        await store.save(checkpoint(seq))
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0][:-20] + b"\n" + lines[1])  # a complete line that is not a checkpoint
    with pytest.raises(DataCorrupted, match="line 1"):
        await store.checkpoints(T)
    assert store.repair() is None  # nothing torn: repair does not paper over damage


@pytest.mark.postgres
async def test_verify_and_checkpoint_survive_a_torn_line_and_repair_removes_it(
    populated: None,  # noqa: F811 - the fixture imported above
    database_url: str,
    tmp_path: Path,
) -> None:
    assert audit("checkpoint", home=tmp_path, url=database_url).returncode == 0
    path = tmp_path / "audit" / "checkpoints.jsonl"
    path.write_bytes(path.read_bytes() + b'{"at": "2026-12-01T')

    verified = audit("verify", home=tmp_path, url=database_url)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "incomplete line 2" in verified.stderr
    assert "not tampering" in verified.stderr
    assert "damaged" not in verified.stdout + verified.stderr

    repaired = audit("checkpoint", "--repair", home=tmp_path, url=database_url)
    assert repaired.returncode == 0, repaired.stderr
    assert "removed the incomplete line 2" in repaired.stderr
    assert path.read_bytes().endswith(b"\n")
    assert "incomplete" not in audit("verify", home=tmp_path, url=database_url).stderr


def test_an_export_starting_while_another_creates_its_partial_file_leaves_that_file_alone(
    tmp_path: Path,
) -> None:
    # A writer creates its partial file, then locks it: two steps. The child is held between them (its
    # lock call waits on a signal file); an export starting in that moment must not take the unlocked
    # file for a killed export's and delete it (it did, under load, once in a full run).
    exports = tmp_path / "exports"
    release = tmp_path / "release"
    code = textwrap.dedent(
        f"""
        import fcntl, time
        from pathlib import Path
        from studio_brain.adapters import audit_files

        class HeldBeforeLocking:
            def __getattr__(self, name):
                return getattr(fcntl, name)

            def flock(self, fd, operation):
                if operation & fcntl.LOCK_NB:  # the partial file's lock, not the directory's
                    print("between creating and locking", flush=True)
                    while not Path({str(release)!r}).exists():
                        time.sleep(0.01)
                return fcntl.flock(fd, operation)

        audit_files.fcntl = HeldBeforeLocking()
        writer = audit_files.JsonlExportWriter(Path({str(exports / "live.jsonl")!r}))
        writer._open().write(b'{{"seq": 1}}\\n')
        writer._open().flush()
        print("writing", flush=True)
        time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "between creating and locking"
        assert (exports / ".live.jsonl.partial").exists()

        starting = threading.Thread(target=lambda: JsonlExportWriter(exports / "next.jsonl")._open().close())
        starting.start()
        time.sleep(0.3)  # the other export's sweep would have run by now
        release.touch()
        assert child.stdout.readline().strip() == "writing"
        starting.join(timeout=10)
        assert not starting.is_alive()
        assert (exports / ".live.jsonl.partial").exists()  # still the live export's
    finally:
        release.touch()
        child.kill()
        child.wait(timeout=10)
        assert child.stdout is not None
        child.stdout.close()


def test_a_killed_export_leaves_no_partial_file_behind(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    code = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from studio_brain.adapters.audit_files import JsonlExportWriter
        writer = JsonlExportWriter(Path({str(exports / "big.jsonl")!r}))
        writer._open().write(b'{{"seq": 1}}\\n')
        writer._open().flush()
        print("writing", flush=True)
        time.sleep(60)
        """
    )
    killed = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    live = subprocess.Popen(
        [sys.executable, "-c", code.replace("big.jsonl", "live.jsonl")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.getcwd(),
    )
    try:
        for child in (killed, live):
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "writing"
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=10)
        assert (exports / ".big.jsonl.partial").exists()

        writer = JsonlExportWriter(exports / "next.jsonl")
        writer._open()  # the next export starts in the same directory
        writer.abort()
        assert not (exports / ".big.jsonl.partial").exists()
        assert (exports / ".live.jsonl.partial").exists()  # another export, still running: left alone
    finally:
        for child in (killed, live):
            child.kill()
            child.wait(timeout=10)
            assert child.stdout is not None
            child.stdout.close()
