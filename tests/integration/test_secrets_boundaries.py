"""No secret enters through the other doors either: the command line and agent-submitted drafts (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio_brain.domain.audit import AuditQuery
from studio_brain.domain.reasons import ReasonCode
from studio_brain.domain.secrets import SecretInPayload
from tests.integration.test_cli import cli
from tests.integration.test_swarm_drafts import AGENT, STAFF, World, world  # noqa: F401 - the fixture

pytestmark = pytest.mark.postgres

SK_LIVE = "sk_" + "live_" + "51HqLyjWDarjtT1zdp7dcXaBcDeFgHiJk"
RK_LIVE = "rk_" + "live_" + "51HqLyjWDarjtT1zdp7dcXaBcDe"


@pytest.mark.parametrize(
    "args",
    [
        ["killswitch", "on", "--reason", f"stopping; the key was {SK_LIVE}"],
        [
            "proposals",
            "create",
            "studio.note.append",
            "--input",
            json.dumps({"text": RK_LIVE}),
            "--rationale",
            "x" * 12,
        ],
        ["proposals", "approve", "p1", "--rationale", f"fine {SK_LIVE}"],
    ],
    ids=["kill-switch-reason", "proposal-input", "approval-rationale"],
)
def test_a_secret_on_the_command_line_is_refused_before_any_command_runs(
    args: list[str], database_url: str, tmp_path: Path
) -> None:
    result = cli(*args, env={"STUDIO_BRAIN_DATABASE_URL": database_url, "STUDIO_BRAIN_HOME": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    assert "stripe" in result.stderr
    assert SK_LIVE not in result.stderr + result.stdout
    assert RK_LIVE not in result.stderr + result.stdout


def test_a_nul_escaped_in_cli_json_input_is_refused(database_url: str, tmp_path: Path) -> None:
    result = cli(
        "proposals",
        "create",
        "studio.note.append",
        "--input",
        '{"text": "a\\u0000b"}',
        "--rationale",
        "a long enough reason",
        env={"STUDIO_BRAIN_DATABASE_URL": database_url, "STUDIO_BRAIN_HOME": str(tmp_path)},
    )
    assert result.returncode == 2
    assert "NUL" in result.stderr


async def test_an_agent_draft_holding_a_stripe_key_is_refused_and_audited_without_it(world: World) -> None:  # noqa: F811
    with pytest.raises(SecretInPayload) as refused:
        await world.drafts.add_agent_draft(
            AGENT,
            kind="finance",
            rule_id="agent.reconcile",
            title="Reconcile November",
            rationale=f"use {RK_LIVE} to pull the charges",
            recommendation="Compare with Stripe.",
            evidence={"metrics": {"finance.unsettledPayments": 12}, "note": SK_LIVE},
            confidence=0.5,
        )
    assert refused.value.reason_code is ReasonCode.SECRET_IN_PAYLOAD
    assert RK_LIVE not in refused.value.message
    assert await world.drafts.list_finance(STAFF) == []
    page = await world.events.query(AGENT.tenant_id, AuditQuery(limit=100))
    [event] = [e for e in page.events if e.action == "drafts.add.refused"]
    assert event.actor_id == AGENT.actor_id
    stored = json.dumps([[e.rationale, e.metadata] for e in page.events])
    assert SK_LIVE not in stored
    assert RK_LIVE not in stored
    assert "draft.rationale" in event.rationale


async def test_twenty_refused_drafts_from_one_agent_are_one_row_and_one_counted_row(world: World) -> None:  # noqa: F811
    # issue 12 item 8: refusals are counted per window, not written one row each
    for _ in range(20):
        with pytest.raises(SecretInPayload):
            await world.drafts.add_agent_draft(
                AGENT,
                kind="finance",
                rule_id="agent.reconcile",
                title="Reconcile November",
                rationale=f"use {RK_LIVE} to pull the charges",
                recommendation="Compare with Stripe.",
                evidence={"metrics": {"finance.unsettledPayments": 12}},
                confidence=0.5,
            )
    await world.drafts.flush_refusals()
    page = await world.events.query(AGENT.tenant_id, AuditQuery(limit=100))
    refused = sorted((e for e in page.events if e.action == "drafts.add.refused"), key=lambda e: e.seq)
    assert [e.metadata["count"] for e in refused] == [1, 19]
    assert RK_LIVE not in json.dumps([[e.rationale, e.metadata] for e in refused])
