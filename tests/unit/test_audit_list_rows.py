"""An audit list row (``event_json``) leaves per-event detail to the detail route and never fails on
metadata of an unusual shape: a list must show every row it is given."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from studio_brain.domain.audit import ActorType, ApprovalState, AuditEvent
from studio_brain.web.api.shapes import event_json


def event(metadata: dict[str, Any]) -> AuditEvent:
    return AuditEvent(
        id="0192-00000001",
        seq=1,
        tenant_id="tenant-a",
        at=datetime(2026, 12, 2, 8, 0, tzinfo=UTC),
        actor_type=ActorType.STAFF,
        actor_id="staff-1",
        action="capability.proposal.created",
        capability_id="studio.note.append",
        target="local",
        rationale="a note for the crew",
        approval_state=ApprovalState.REQUIRED,
        input_hash="0" * 64,
        output_hash=None,
        request_id="req-1",
        correlation_id="corr-1",
        metadata=metadata,
        prev_hash="0" * 64,
        hash="1" * 64,
    )


def test_a_proposal_record_without_an_id_or_a_proposal_id_is_still_summarised() -> None:
    row = event_json(event({"proposal": {"status": "draft", "input": {"text": "x"}}}))
    assert row["metadata"] == {"proposal": {"status": "draft", "summarised": True}}


def test_a_proposal_id_other_than_the_records_keeps_the_records_id() -> None:
    row = event_json(event({"proposalId": "p-2", "proposal": {"id": "p-1", "status": "draft"}}))
    assert row["metadata"]["proposal"] == {"id": "p-1", "status": "draft", "summarised": True}


def test_nested_copies_of_the_rows_fields_are_left_out_only_when_they_are_the_same() -> None:
    row = event_json(
        event(
            {
                "decision": {"approvalState": "required", "reasonCode": "ALLOWED"},
                "other": {"approvalState": "approved", "capabilityId": "studio.note.append"},
                "credential": {"kind": "firebase"},
                "note": "kept as it is",
            }
        )
    )
    assert row["metadata"] == {
        "decision": {"reasonCode": "ALLOWED"},
        "other": {"approvalState": "approved"},
        "note": "kept as it is",
    }
    assert not {"tenantId", "requestId", "prevHash", "hash"} & row.keys()
    full = event_json(event({"credential": {"kind": "firebase"}}), full=True)
    assert full["metadata"] == {"credential": {"kind": "firebase"}}
    assert (full["tenantId"], full["requestId"], full["hash"]) == ("tenant-a", "req-1", "1" * 64)
