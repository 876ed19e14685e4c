"""The pure audit rules: sealing, the fast canonical form, and the chain verifier's verdicts."""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from studio_brain.domain.audit import (
    GENESIS_HASH,
    ActorType,
    ApprovalState,
    AuditCheckpoint,
    AuditDraft,
    AuditEvent,
    BreakKind,
    ChainBreak,
    ChainVerifier,
    canonical_event_bytes,
    event_from_json,
    event_hash,
    event_to_json,
    hash_payload,
    seal,
)
from studio_brain.domain.errors import InputInvalid
from studio_brain.domain.hashing import MAX_SAFE_INTEGER, canonical_json, sha256_hex, to_json_value
from studio_brain.domain.records import Keyring, MacKey

T = "tenant-a"
START = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def draft(n: int, **changes: Any) -> AuditDraft:
    return replace(
        AuditDraft(
            tenant_id=T,
            actor_type=ActorType.AGENT,
            actor_id="finance-swarm",
            action="swarm.finance.drafted",
            target="stripe",
            rationale=f"draft {n}",
            approval_state=ApprovalState.REQUIRED,
            input_hash=sha256_hex(n),
            request_id=f"req-{n}",
            correlation_id="corr",
            metadata={"n": n},
        ),
        **changes,
    )


def build_chain(length: int) -> list[AuditEvent]:
    chain: list[AuditEvent] = []
    prev = GENESIS_HASH
    for n in range(1, length + 1):
        event = seal(draft(n), event_id=f"id-{n}", seq=n, at=START + timedelta(seconds=n), prev_hash=prev)
        chain.append(event)
        prev = event.hash
    return chain


def judge(events: list[AuditEvent], **options: Any) -> ChainBreak | None:
    verifier = ChainVerifier(T, **options)
    for event in events:
        if verifier.feed(event) is not None:
            break
    return verifier.finish()


def at(events: list[AuditEvent], seq: int, **changes: Any) -> list[AuditEvent]:
    return [replace(e, **changes) if e.seq == seq else e for e in events]


def resealed(event: AuditEvent, **changes: Any) -> AuditEvent:
    changed = replace(event, **changes)
    return replace(changed, hash=event_hash(changed))


def verdict(found: ChainBreak | None) -> tuple[BreakKind, int] | None:
    return None if found is None else (found.kind, found.seq)


# --- sealing -------------------------------------------------------------------------------------


def test_sealing_is_deterministic_and_the_hash_covers_every_field() -> None:
    event = build_chain(1)[0]
    assert event.hash == sha256_hex(hash_payload(event))
    assert (
        event.hash
        == seal(
            draft(1), event_id="id-1", seq=1, at=START + timedelta(seconds=1), prev_hash=GENESIS_HASH
        ).hash
    )
    for name, value in [
        ("id", "other"),
        ("seq", 2),
        ("tenant_id", "tenant-b"),
        ("at", START),
        ("actor_type", ActorType.HUMAN),
        ("actor_id", "x"),
        ("action", "a.b"),
        ("capability_id", "cap"),
        ("target", "local"),
        ("rationale", "r"),
        ("approval_state", ApprovalState.APPROVED),
        ("input_hash", sha256_hex("x")),
        ("output_hash", sha256_hex("y")),
        ("request_id", "q"),
        ("correlation_id", "c"),
        ("metadata", {"n": 2}),
        ("prev_hash", sha256_hex("p")),
    ]:
        assert event_hash(replace(event, **{name: value})) != event.hash, name


def test_sealing_refuses_a_naive_time_and_a_bad_position() -> None:
    with pytest.raises(InputInvalid, match="timezone"):
        seal(
            draft(1), event_id="i", seq=1, at=datetime(2026, 1, 1), prev_hash=GENESIS_HASH
        )  # naive on purpose
    with pytest.raises(InputInvalid, match="seq"):
        seal(draft(1), event_id="i", seq=0, at=START, prev_hash=GENESIS_HASH)
    with pytest.raises(InputInvalid, match="prev_hash"):
        seal(draft(1), event_id="i", seq=1, at=START, prev_hash="genesis")


texts = st.text(min_size=1, max_size=10).filter(lambda s: s.strip() and "\x00" not in s)
plain_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15)
    | st.text(max_size=8).filter(lambda s: "\x00" not in s),
    lambda kids: (
        st.lists(kids, max_size=3)
        | st.dictionaries(st.text(max_size=6).filter(lambda s: "\x00" not in s), kids, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=100, deadline=None)
@given(
    rationale=texts,
    actor=texts,
    metadata=st.dictionaries(st.text(max_size=6).filter(lambda s: "\x00" not in s), plain_json, max_size=4),
    seq=st.integers(1, MAX_SAFE_INTEGER),
    when=st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()
    ),
)
def test_the_fast_canonical_form_equals_the_general_one(
    rationale: str, actor: str, metadata: dict[str, Any], seq: int, when: datetime
) -> None:
    try:
        event = seal(
            draft(1, rationale=rationale, actor_id=actor, metadata=metadata),
            event_id=f"é-{seq}",
            seq=seq,
            at=when,
            prev_hash=GENESIS_HASH,
        )
    except InputInvalid:
        return  # e.g. two keys that collide after NFC: refused, nothing to compare
    decomposed = replace(
        event,
        rationale=unicodedata.normalize("NFD", event.rationale),
        actor_id=unicodedata.normalize("NFD", actor),
    )
    assert canonical_event_bytes(event) == canonical_json(hash_payload(event))
    assert canonical_event_bytes(event) == bytes(rfc8785.dumps(to_json_value(hash_payload(event))))
    assert canonical_event_bytes(decomposed) == canonical_event_bytes(event)


def test_an_event_survives_its_json_form_unchanged() -> None:
    event = build_chain(1)[0]
    assert event_from_json(event_to_json(event)) == event


@pytest.mark.parametrize(
    "broken",
    [
        [],
        {"id": "x"},
        {**event_to_json(build_chain(1)[0]), "seq": "1"},
        {**event_to_json(build_chain(1)[0]), "at": "x"},
    ],
)
def test_a_malformed_json_event_is_refused(broken: Any) -> None:
    with pytest.raises(InputInvalid):
        event_from_json(broken)


# --- the verifier --------------------------------------------------------------------------------


def test_an_intact_chain_has_no_break() -> None:
    chain = build_chain(10)
    verifier = ChainVerifier(T)
    assert all(verifier.feed(e) is None for e in chain)
    assert verifier.finish() is None
    assert (verifier.checked, verifier.last_seq, verifier.last_hash) == (10, 10, chain[-1].hash)


def test_an_empty_chain_without_checkpoints_is_intact() -> None:
    assert judge([]) is None


def test_a_changed_field_is_modified_at_its_row() -> None:
    assert verdict(judge(at(build_chain(10), 4, rationale="edited"))) == (BreakKind.MODIFIED, 4)


def test_a_changed_stored_hash_is_modified_at_its_row() -> None:
    assert verdict(judge(at(build_chain(10), 4, hash=sha256_hex("forged")))) == (BreakKind.MODIFIED, 4)


def test_a_row_resealed_after_an_edit_is_modified_at_that_row() -> None:
    chain = build_chain(10)
    chain[5] = resealed(chain[5], rationale="edited")
    assert verdict(judge(chain)) == (BreakKind.MODIFIED, 6)


def test_the_last_row_changed_is_modified() -> None:
    assert verdict(judge(at(build_chain(10), 10, actor_id="someone"))) == (BreakKind.MODIFIED, 10)


def test_a_value_outside_the_enums_is_modified_not_a_crash() -> None:
    tampered = at(build_chain(5), 3, actor_type=cast(ActorType, "robot"))
    assert verdict(judge(tampered)) == (BreakKind.MODIFIED, 3)


def test_a_value_that_cannot_even_be_hashed_is_modified() -> None:
    assert verdict(judge(at(build_chain(5), 2, metadata={"n": 2**60}))) == (BreakKind.MODIFIED, 2)


def test_a_deleted_row_is_missing() -> None:
    chain = build_chain(10)
    assert verdict(judge([e for e in chain if e.seq != 5])) == (BreakKind.MISSING, 5)


def test_a_deleted_row_with_the_rest_renumbered_is_missing() -> None:
    chain = build_chain(10)
    shifted = [e if e.seq < 5 else replace(e, seq=e.seq - 1) for e in chain if e.seq != 5]
    assert verdict(judge(shifted)) == (BreakKind.MISSING, 5)


def test_a_deleted_first_row_is_missing() -> None:
    assert verdict(judge(build_chain(4)[1:])) == (BreakKind.MISSING, 1)


def test_a_second_row_with_the_same_seq_is_inserted() -> None:
    chain = build_chain(6)
    forged = replace(chain[2], id="forged", rationale="forged")
    assert verdict(judge([*chain[:3], forged, *chain[3:]])) == (BreakKind.INSERTED, 3)


def test_a_forged_row_linked_in_with_the_rest_renumbered_is_inserted() -> None:
    chain = build_chain(8)
    forged = resealed(replace(chain[4], id="forged", rationale="forged"), seq=5, prev_hash=chain[3].hash)
    later = [replace(e, seq=e.seq + 1) for e in chain[4:]]
    assert verdict(judge([*chain[:4], forged, *later])) == (BreakKind.INSERTED, 5)


def test_a_forged_row_that_does_not_link_is_inserted() -> None:
    chain = build_chain(8)
    forged = resealed(replace(chain[4], id="forged"), prev_hash=sha256_hex("elsewhere"))
    later = [replace(e, seq=e.seq + 1) for e in chain[4:]]
    assert verdict(judge([*chain[:4], forged, *later])) == (BreakKind.INSERTED, 5)


def test_two_adjacent_rows_swapped_are_reordered() -> None:
    chain = build_chain(8)
    swapped = [*chain[:3], replace(chain[4], seq=4), replace(chain[3], seq=5), *chain[5:]]
    assert verdict(judge(swapped)) == (BreakKind.REORDERED, 4)


def test_two_distant_rows_swapped_are_reordered() -> None:
    chain = build_chain(12)
    swapped = list(chain)
    swapped[1], swapped[9] = replace(chain[9], seq=2), replace(chain[1], seq=10)
    assert verdict(judge(swapped)) == (BreakKind.REORDERED, 2)


def test_the_last_two_rows_swapped_are_reordered() -> None:
    chain = build_chain(6)
    swapped = [*chain[:4], replace(chain[5], seq=5), replace(chain[4], seq=6)]
    assert verdict(judge(swapped)) == (BreakKind.REORDERED, 5)


def checkpoint(event: AuditEvent) -> AuditCheckpoint:
    return AuditCheckpoint(
        tenant_id=T, seq=event.seq, hash=event.hash, at=START, signature="s", public_key="k"
    )


def test_rows_gone_after_a_checkpoint_are_truncation() -> None:
    chain = build_chain(10)
    assert verdict(judge(chain[:7], checkpoints=[checkpoint(chain[9])])) == (
        BreakKind.TRUNCATED_AFTER_CHECKPOINT,
        8,
    )


def test_rows_appended_after_the_newest_checkpoint_are_fine() -> None:
    chain = build_chain(10)
    assert judge(chain, checkpoints=[checkpoint(chain[4])]) is None


def test_a_chain_that_differs_from_a_checkpoint_is_modified_there() -> None:
    chain = build_chain(10)
    stale = replace(checkpoint(chain[6]), hash=sha256_hex("other history"))
    assert verdict(judge(chain, checkpoints=[stale])) == (BreakKind.MODIFIED, 7)


def test_checkpoints_of_other_tenants_are_ignored() -> None:
    chain = build_chain(3)
    other = replace(checkpoint(chain[2]), tenant_id="tenant-b", seq=99)
    assert judge(chain, checkpoints=[other]) is None


def test_a_partial_chain_verifies_from_its_anchor() -> None:
    chain = build_chain(10)
    assert judge(chain[4:], first_seq=5, anchor_hash=chain[3].hash) is None
    assert verdict(judge(chain[4:], first_seq=5, anchor_hash=sha256_hex("wrong"))) == (BreakKind.MODIFIED, 5)


def test_the_verifier_keeps_reporting_its_first_break() -> None:
    chain = at(build_chain(6), 2, rationale="x")
    verifier = ChainVerifier(T)
    found = [verifier.feed(e) for e in chain]
    # Row 2 is suspicious at once, but judged only when row 3 shows what kind of break it is.
    assert found[:2] == [None, None]
    assert found[2] is not None
    assert verdict(found[2]) == (BreakKind.MODIFIED, 2)
    assert all(f == found[2] for f in found[2:])
    assert verifier.finish() == found[2]


# --- keyed chains (issue 12) ----------------------------------------------------------------------

KEY = MacKey(key_id="mk-unit", secret=bytes(range(32)))


def keyed_chain(n: int, *, unkeyed_first: int = 0) -> list[AuditEvent]:
    events: list[AuditEvent] = []
    prev = GENESIS_HASH
    for i in range(1, n + 1):
        event = seal(
            draft(i),
            event_id=f"e-{i}",
            seq=i,
            at=START,
            prev_hash=prev,
            key=None if i <= unkeyed_first else KEY,
        )
        events.append(event)
        prev = event.hash
    return events


def keyed_verdict(events: list[AuditEvent], **options: Any) -> tuple[ChainVerifier, ChainBreak | None]:
    verifier = ChainVerifier(T, **options)
    for event in events:
        if verifier.feed(event) is not None:
            break
    return verifier, verifier.finish()


def test_a_keyed_chain_verified_without_the_keyring_is_intact_with_its_macs_unchecked() -> None:
    verifier, problem = keyed_verdict(keyed_chain(5))
    assert problem is None
    assert (verifier.keyed, verifier.keyed_unchecked, verifier.macs_checked) == (0, 5, False)


def test_an_unkeyed_row_after_a_keyed_one_is_unkeyed_even_without_the_keyring() -> None:
    events = keyed_chain(4)
    downgraded = seal(draft(5), event_id="e-5", seq=5, at=START, prev_hash=events[-1].hash)
    _, problem = keyed_verdict([*events, downgraded])
    assert problem is not None
    assert (problem.kind, problem.seq) == (BreakKind.UNKEYED, 5)


def test_an_unkeyed_prefix_is_sealed_by_the_first_keyed_row_and_an_unsealed_one_is_not() -> None:
    keyring = Keyring(current=KEY)
    verifier, problem = keyed_verdict(keyed_chain(6, unkeyed_first=3), keyring=keyring)
    assert problem is None
    assert (verifier.unkeyed, verifier.keyed, verifier.unkeyed_sealed_by) == (3, 3, 4)
    _, problem = keyed_verdict(keyed_chain(3, unkeyed_first=3), keyring=keyring)
    assert problem is not None
    assert (problem.kind, problem.seq) == (BreakKind.UNKEYED, 1)
    _, problem = keyed_verdict(keyed_chain(3, unkeyed_first=3), keyring=keyring, unkeyed_tail_ok=True)
    assert problem is None


def test_a_keyed_row_whose_mac_was_made_with_another_key_is_named() -> None:
    events = keyed_chain(5)
    other = MacKey(key_id=KEY.key_id, secret=b"\xee" * 32)
    forged = seal(draft(6), event_id="e-6", seq=6, at=START, prev_hash=events[-1].hash, key=other)
    _, problem = keyed_verdict([*events, forged], keyring=Keyring(current=KEY))
    assert problem is not None
    assert (problem.kind, problem.seq) == (BreakKind.INSERTED, 6)
