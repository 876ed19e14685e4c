"""Benchmark: pure gateway policy decisions per second (decide_create + decide_execute + decide_throttle).

Run: .venv/bin/python bench/gateway_policy.py [--seconds 3]
No I/O: the decisions take facts the service would have read; the target is ≥ 50,000 decisions/s.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from studio_brain.adapters.capability_registry import load_registry
from studio_brain.domain.audit import ActorType, ApprovalState
from studio_brain.domain.connectors import ConnectorMode
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.identity import AuthMethod, Principal
from studio_brain.domain.policy import (
    ConnectorFacts,
    KillSwitch,
    Throttle,
    decide_approve,
    decide_create,
    decide_execute,
    decide_throttle,
)
from studio_brain.domain.proposals import Approval, Proposal, Status


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    registry = load_registry(None)
    note = registry.capabilities["studio.note.append"]
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    alice = Principal(
        tenant_id="t",
        actor_type=ActorType.STAFF,
        actor_id="alice",
        via=AuthMethod.CLI,
        roles=frozenset({"staff"}),
    )
    bob = replace(alice, actor_id="bob")
    data = {"text": "a note for the benchmark"}
    pending = Proposal(
        id="p",
        tenant_id="t",
        capability_id=note.id,
        registry_version=registry.version,
        target="local",
        mode="write",
        status=Status.PENDING_APPROVAL,
        requested_by="alice",
        requester_type=ActorType.STAFF,
        input=data,
        input_hash=sha256_hex(data),
        predicted_effects=[],
        predicted_effects_hash=sha256_hex([]),
        rationale="benchmarking",
        correlation_id="c",
        request_id="r",
        created_at=now,
        updated_at=now,
    )
    binding = pending.binding()
    approved = replace(
        pending,
        status=Status.APPROVED,
        approval_state=ApprovalState.APPROVED,
        approved_at=now,
        approval_expires_at=now + timedelta(hours=1),
        approvals=(
            Approval(
                approver_id="bob", approver_type=ActorType.STAFF, at=now, rationale="ok", binding=binding
            ),
        ),
    )
    kill = KillSwitch()
    connector = ConnectorFacts(present=True, mode=ConnectorMode.READ_WRITE)
    throttle = Throttle(rate_token_taken=True, last_started_at=None, in_flight=0)
    decisions = 0
    deadline = time.perf_counter() + args.seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        for _ in range(1000):
            assert decide_create(
                principal=alice, capability=note, input=data, rationale="benchmarking", kill=kill
            ).allowed
            assert decide_approve(
                principal=bob,
                proposal=pending,
                capability=note,
                registry_version=registry.version,
                kill=kill,
                rationale="fine by me here",
            ).allowed
            assert decide_execute(
                principal=bob,
                proposal=approved,
                capability=note,
                kill=kill,
                current_input_hash=approved.input_hash,
                current_binding=binding,
                exemption=None,
                connector=connector,
                now=now,
            ).allowed
            assert decide_throttle(
                capability=note, throttle=throttle, now=now, state=ApprovalState.APPROVED
            ).allowed
            decisions += 4
    elapsed = time.perf_counter() - started
    print(
        f"pure policy decisions: {decisions} in {elapsed:.2f}s = {decisions / elapsed:,.0f}/s (target ≥ 50,000/s)"
    )


if __name__ == "__main__":
    main()
