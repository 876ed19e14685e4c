"""Pinned vectors (issue 20 item 6): hashes, MACs and signatures checked against literal values computed
once and committed — not against the implementation itself.

If one of these fails, a hashed format changed: every stored audit chain, export, checkpoint, approval
and snapshot source hash written before would stop verifying. Do not update a literal to make the test
pass; add a new format version instead (docs/audit.md "Formats") and pin its vector beside the old one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from studio_brain.adapters.keys import Ed25519Signer, Ed25519Verifier
from studio_brain.domain.audit import (
    FORMAT_KEYED,
    FORMAT_UNKEYED,
    ActorType,
    ApprovalState,
    AuditDraft,
    ChainVerifier,
    canonical_event_bytes,
    checkpoint_message,
    event_from_json,
    event_to_json,
    seal,
)
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.proposals import binding_hash
from studio_brain.domain.records import Keyring, MacKey
from studio_brain.domain.rules import parse_rule_table
from studio_brain.domain.snapshot import (
    CloudRead,
    FinanceSummary,
    QueryResult,
    QueryStatus,
    firestore_source_hash,
    stripe_source_hash,
)

AT = datetime(2026, 11, 25, 9, 30, 15, 123456, tzinfo=UTC)
EVENT_ID = "01937a2e-0000-7000-8000-000000000001"
PREV = "ab" * 32
#: a fixed test key (never a real one): 32 bytes 00..1f
MAC_KEY = MacKey(key_id="mk-pinned", secret=bytes(range(32)))
#: a fixed Ed25519 test key: the raw private key 01..20
SIGNER = Ed25519Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33))))

DRAFT = AuditDraft(
    tenant_id="monsoonfire-main",
    actor_type=ActorType.STAFF,
    actor_id="staff-b",
    action="capability.proposal.approved",
    target="hubitat",
    rationale="Approved in the cockpit: kiln room fan on — cafe\u0301",  # NFD on purpose: hashed as NFC
    approval_state=ApprovalState.APPROVED,
    input_hash=sha256_hex({"deviceId": 21, "command": "on"}),
    request_id="req-0001",
    correlation_id="prop-0001",
    capability_id="hubitat.switch.set",
    metadata={"proposalId": "prop-0001", "device": {"id": 21, "label": "Kiln room fan"}, "ratio": 0.5},
)

V1_BYTES = (
    '{"action":"capability.proposal.approved","actorId":"staff-b","actorType":"staff","approvalState":"approved",'
    '"at":"2026-11-25T09:30:15.123456Z","capabilityId":"hubitat.switch.set","correlationId":"prop-0001",'
    '"id":"01937a2e-0000-7000-8000-000000000001",'
    '"inputHash":"f9837e152e093938340ee57e6dc0efe807abeff74da771f8b7159fe254c37444",'
    '"metadata":{"device":{"id":21,"label":"Kiln room fan"},"proposalId":"prop-0001","ratio":0.5},'
    '"outputHash":null,"prevHash":"abababababababababababababababababababababababababababababababab",'
    '"rationale":"Approved in the cockpit: kiln room fan on — café","requestId":"req-0001","seq":42,'
    '"target":"hubitat","tenantId":"monsoonfire-main"}'
)
V1_HASH = "4542d0f537c1de763f45d2b17af2c376f20e6dedbe7cba265ec0fadcfad300ed"
V2_HASH = "29b3e0b760a0f23ef7ab716a663bc9ca3437a943a64765822a572cb9e64bafd6"
V2_MAC = "cc9d40ae9baf66de81dc39844a4e780658534c8a31c12e38964f5523ff9daac0"


def test_an_unkeyed_event_hashes_to_its_pinned_value_over_its_pinned_bytes() -> None:
    event = seal(DRAFT, event_id=EVENT_ID, seq=42, at=AT, prev_hash=PREV)
    assert event.format_version == FORMAT_UNKEYED
    assert canonical_event_bytes(event) == V1_BYTES.encode("utf-8")
    assert event.hash == V1_HASH
    assert (event.key_id, event.mac) == (None, None)


def test_a_keyed_event_hashes_and_macs_to_its_pinned_values() -> None:
    event = seal(DRAFT, event_id=EVENT_ID, seq=42, at=AT, prev_hash=PREV, key=MAC_KEY)
    assert (event.format_version, event.key_id) == (FORMAT_KEYED, "mk-pinned")
    assert event.hash == V2_HASH
    assert event.mac == V2_MAC


def test_both_formats_coexist_in_one_chain_and_survive_their_export_form() -> None:
    first = seal(DRAFT, event_id=EVENT_ID, seq=1, at=AT, prev_hash="0" * 64)
    second = seal(DRAFT, event_id=EVENT_ID + "2", seq=2, at=AT, prev_hash=first.hash, key=MAC_KEY)
    verifier = ChainVerifier("monsoonfire-main", keyring=Keyring(current=MAC_KEY))
    for event in (first, second):
        assert verifier.feed(event_from_json(event_to_json(event))) is None
    assert verifier.finish() is None
    assert (verifier.unkeyed, verifier.keyed, verifier.unkeyed_sealed_by) == (1, 1, 2)
    assert "hashFormat" not in event_to_json(first)  # a format-1 export line is what it always was
    assert event_to_json(second)["hashFormat"] == FORMAT_KEYED


def test_a_checkpoint_signature_is_pinned() -> None:
    message = checkpoint_message(tenant_id="monsoonfire-main", seq=42, hash=V2_HASH, at=AT)
    assert message == (
        b'{"at":"2026-11-25T09:30:15.123456Z",'
        b'"hash":"29b3e0b760a0f23ef7ab716a663bc9ca3437a943a64765822a572cb9e64bafd6",'
        b'"seq":42,"tenantId":"monsoonfire-main"}'
    )
    assert SIGNER.public_key == "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664"
    signature = SIGNER.sign(message)
    assert signature == (
        "ad7fa2fa67bb949943804f9797258a7d04a02a3dbc230ccbfd2775d16359e513"
        "398bfef1af2ff3faa3a0be3154c47846ec93dbdfede2cea19f824f51c2a28e09"
    )
    assert Ed25519Verifier().verify(SIGNER.public_key, message, signature)


def test_an_approval_binding_is_pinned_plain_and_keyed() -> None:
    fields: dict[str, Any] = {
        "input_hash": DRAFT.input_hash,
        "capability_id": "hubitat.switch.set",
        "registry_version": "2026.11.1",
        "tenant_id": "monsoonfire-main",
        "predicted_effects_hash": sha256_hex({"effects": ["devices/21/on"]}),
    }
    assert binding_hash(**fields) == "d179e81690ffcbf618dcbd2046125e019a670e3089bcd46a3d952135dd15e001"
    # what the brain binds approvals to (issue 12): an HMAC a database writer cannot recompute
    assert binding_hash(**fields, key=MAC_KEY) == (
        "b1694e431364ca2057d37706de448f42c67de1e00fd78d5cae592bc934b6cf1e"
    )


#: the rule table shipped on 2026-11-25 (inlined, so editing the shipped file cannot move this vector)
RULE_TABLE: dict[str, Any] = {
    "version": "2026-11-25.1",
    "rules": [
        {
            "target": "counts.batchesActive",
            "collection": "batches",
            "where": [{"field": "isClosed", "op": "==", "value": False}],
        },
        {
            "target": "counts.batchesClosed",
            "collection": "batches",
            "where": [{"field": "isClosed", "op": "==", "value": True}],
        },
        {
            "target": "counts.reservationsOpen",
            "collection": "reservations",
            "where": [{"field": "status", "op": "in", "value": ["REQUESTED", "CONFIRMED", "WAITLISTED"]}],
        },
        {
            "target": "counts.firingsScheduled",
            "collection": "kilnFirings",
            "where": [
                {
                    "field": "status",
                    "op": "in",
                    "value": ["scheduled", "loading", "in-progress", "firing", "cooling", "unloading"],
                }
            ],
        },
        {
            "target": "counts.reportsOpen",
            "collection": "communityReports",
            "where": [{"field": "status", "op": "in", "value": ["open", "triaged", "actioned"]}],
        },
        {
            "target": "ops.blockedTickets",
            "collection": "supportRequests",
            "where": [{"field": "status", "op": "in", "value": ["blocked", "on_hold", "waiting"]}],
        },
        {
            "target": "ops.agentRequestsPending",
            "collection": "agentRequests",
            "where": [
                {
                    "field": "status",
                    "op": "in",
                    "value": ["new", "triaged", "accepted", "in_progress", "ready"],
                }
            ],
        },
        {
            "target": "ops.highSeverityReports",
            "collection": "communityReports",
            "where": [
                {"field": "severity", "op": "==", "value": "high"},
                {"field": "status", "op": "in", "value": ["open", "triaged", "actioned"]},
            ],
        },
        {
            "target": "finance.pendingOrders",
            "collection": "materialsOrders",
            "where": [
                {
                    "field": "status",
                    "op": "in",
                    "value": ["checkout_created", "checkout_pending", "payment_failed"],
                }
            ],
        },
        {
            "target": "finance.unsettledPayments",
            "collection": "payments",
            "where": [
                {
                    "field": "status",
                    "op": "in",
                    "value": [
                        "checkout_created",
                        "checkout_completed",
                        "payment_failed",
                        "invoice_payment_failed",
                        "charge_disputed",
                    ],
                }
            ],
        },
    ],
}


def test_studio_state_source_hashes_are_pinned() -> None:
    table = parse_rule_table(RULE_TABLE)
    read = CloudRead(
        source="firestore",
        read_at=AT,
        rule_counts=tuple(
            QueryResult(
                key=r.target, collection=r.collection, count=i * 3 + 1, status=QueryStatus.OK, duration_ms=1.0
            )
            for i, r in enumerate(table.rules)
        ),
        totals=tuple(
            QueryResult(key=c, collection=c, count=100 + i, status=QueryStatus.OK, duration_ms=1.0)
            for i, c in enumerate(table.collections)
        ),
        duration_ms=5.0,
    )
    assert (
        firestore_source_hash(table, read)
        == "19fc32ebc7d10ef3867f2f9c4c33ed7f275dfb01b111fe9f4b04c70577f0427c"
    )
    assert stripe_source_hash(table, read, None) == (
        "2adc4aef09651d0c8e9e1d73d8d63418eade6a767acdce6cfb6594ca7e0a2749"
    )
    finance = FinanceSummary(pending_orders=3, unsettled_payments=2, read_at=AT)
    assert stripe_source_hash(table, read, finance) == (
        "8b8fda14599ced697df8e12e7d33722b358b7743a3e1b336a560a03fa3d0a27d"
    )
