"""Hashing a stored row as read (`feed_row`) judges every row exactly as building its event and feeding it
does: genuine rows are accepted, and no tampered row is accepted that the full way would refuse."""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from studio_brain.adapters.postgres.event_store import event_from_row, feed_row
from studio_brain.domain.audit import (
    GENESIS_HASH,
    ActorType,
    ApprovalState,
    AuditCheckpoint,
    AuditEvent,
    ChainVerifier,
    event_hash,
)
from studio_brain.domain.audit.mac import event_mac
from studio_brain.domain.records import Keyring, MacKey

KEY = MacKey(key_id="mk-row", secret=bytes(range(7, 39)))
KEYRING = Keyring(current=KEY)
T = "tenant-a"
BASE = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def sealed(n: int, prev: str, *, metadata: dict[str, Any] | None = None, keyed: bool = True) -> AuditEvent:
    unsealed = AuditEvent(
        id=f"0192-{n:08d}",
        seq=n,
        tenant_id=T,
        at=BASE + timedelta(seconds=n, microseconds=n * 7),
        actor_type=(ActorType.AGENT, ActorType.STAFF, ActorType.SYSTEM)[n % 3],
        actor_id=f"actor-{n % 4}",
        action="capability.proposal.approved",
        capability_id="hubitat.switch" if n % 2 else None,
        target="hubitat",
        rationale=f"approved {n} — kiln room ☕",
        approval_state=ApprovalState.APPROVED,
        input_hash=f"{n:064x}",
        output_hash=None if n % 3 else f"{n + 1:064x}",
        request_id=f"req-{n}",
        correlation_id=f"corr-{n // 3}",
        metadata=metadata if metadata is not None else {"n": n, "device": {"id": 21, "label": "Kiln"}},
        prev_hash=prev,
        hash="",
        format_version=2 if keyed else 1,
        key_id=KEY.key_id if keyed else None,
    )
    hash_ = event_hash(unsealed)
    return replace(unsealed, hash=hash_, mac=event_mac(KEY, hash_) if keyed else None)


def row_of(e: AuditEvent) -> tuple[Any, ...]:
    """The event as the store reads it: enums as text, metadata as JSON text (jsonb reorders keys)."""
    metadata = json.dumps(dict(sorted(e.metadata.items(), key=lambda kv: (len(kv[0]), kv[0]))))
    return (
        e.id, e.seq, e.tenant_id, e.at, str(e.actor_type), e.actor_id, e.action, e.capability_id, e.target,
        e.rationale, str(e.approval_state), e.input_hash, e.output_hash, e.request_id, e.correlation_id,
        metadata, e.prev_hash, e.hash, e.format_version, e.key_id, e.mac,
    )  # fmt: skip


def chain_rows(count: int, *, unkeyed_prefix: int = 0) -> list[tuple[Any, ...]]:
    rows, prev = [], GENESIS_HASH
    for n in range(1, count + 1):
        e = sealed(n, prev, keyed=n > unkeyed_prefix)
        rows.append(row_of(e))
        prev = e.hash
    return rows


def judged(rows: list[tuple[Any, ...]], *, fast: bool, checkpoints: tuple[AuditCheckpoint, ...] = ()) -> Any:
    chain = ChainVerifier(T, keyring=KEYRING, checkpoints=checkpoints)
    for row in rows:
        if (feed_row(chain, row) if fast else chain.feed(event_from_row(row))) is not None:
            break
    problem = chain.finish()
    return (problem, chain.checked, chain.keyed, chain.unkeyed, chain.last_seq, chain.last_hash)


#: columns a database writer might change, and values to put there
COLUMN_VALUES: dict[int, st.SearchStrategy[Any]] = {
    0: st.just("forged-id"),
    1: st.integers(min_value=-1, max_value=14),
    4: st.sampled_from(["agent", "staff", "root", None, 3]),
    9: st.text(max_size=8),
    10: st.sampled_from(["approved", "not_applicable", "APPROVED", None]),
    15: st.sampled_from(['{"n": 1}', '{"n": 1.0}', "{}", "[]", '"x"', '{"n": 99999999999999999999}']),
    16: st.sampled_from([GENESIS_HASH, "0" * 63 + "1", "not a hash", None]),
    17: st.sampled_from(["0" * 64, "f" * 64, None, 5]),
    18: st.sampled_from([1, 2, 3, "2", True, None]),
    19: st.sampled_from(["mk-row", "mk-other", None, ""]),
    20: st.sampled_from(["0" * 64, None, 1, ""]),
}


@settings(max_examples=400, deadline=None)
@given(
    edits=st.lists(
        st.tuples(st.integers(min_value=0, max_value=11), st.sampled_from(sorted(COLUMN_VALUES)), st.data()),
        max_size=3,
    ),
    rehash=st.booleans(),
)
def test_a_row_hashed_as_read_is_judged_as_its_event_would_be(
    edits: list[tuple[int, int, st.DataObject]], rehash: bool
) -> None:
    rows = [list(r) for r in chain_rows(12)]
    for index, column, data in edits:
        rows[index][column] = data.draw(COLUMN_VALUES[column])
        if rehash:  # a writer without the key recomputes the hash it can (the MAC stays wrong)
            # a value that cannot even be hashed stays as it is
            with contextlib.suppress(Exception):
                rows[index][17] = event_hash(event_from_row(tuple(rows[index])))
    tampered = [tuple(r) for r in rows]
    assert judged(tampered, fast=True) == judged(tampered, fast=False)


def test_genuine_rows_are_accepted_without_building_an_event() -> None:
    rows = chain_rows(30)
    built = 0

    def counting(row: tuple[Any, ...]) -> AuditEvent:
        nonlocal built
        built += 1
        return event_from_row(row)

    chain = ChainVerifier(T, keyring=KEYRING)
    for row in rows:
        assert chain.feed_stored(
            seq=row[1], prev_hash=row[16], hash_=row[17], computed_hash=row[17], format_version=row[18],
            key_id=row[19], mac=row[20], event=lambda row=row: counting(row),
        ) is None  # fmt: skip
    assert (chain.checked, chain.keyed, built) == (30, 30, 0)
    assert judged(rows, fast=True) == (None, 30, 30, 0, 30, rows[-1][17])


def test_an_unkeyed_prefix_and_a_checkpoint_are_judged_the_full_way() -> None:
    rows = chain_rows(10, unkeyed_prefix=4)
    checkpoint = AuditCheckpoint(tenant_id=T, seq=6, hash="f" * 64, at=BASE, signature="00", public_key="00")
    assert judged(rows, fast=True) == judged(rows, fast=False)
    assert judged(rows, fast=True)[3] == 4
    diverted = judged(rows, fast=True, checkpoints=(checkpoint,))
    assert diverted == judged(rows, fast=False, checkpoints=(checkpoint,))
    assert diverted[0] is not None
    assert (diverted[0].seq, str(diverted[0].kind)) == (6, "modified")


def test_metadata_with_floats_and_non_ascii_text_hashes_alike() -> None:
    rows, prev = [], GENESIS_HASH
    for n, metadata in enumerate(
        [
            {"big": "123456789012345678901234567890"},
            {"f": 0.1, "e": 1e-7, "g": 1e21},
            {"ünï": "cödé", "a": [1, None]},
        ],
        1,
    ):
        e = sealed(n, prev, metadata=metadata)
        rows.append(row_of(e))
        prev = e.hash
    assert judged(rows, fast=True) == (None, 3, 3, 0, 3, prev)
