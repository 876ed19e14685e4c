"""Agents through MCP (issue 16), with the official SDK's own client: over streamable HTTP against a
running server (uvicorn on loopback, a real PostgreSQL) and over stdio by spawning ``studio-brain mcp``.

An agent lists its tools, reads state and proposes; staff see the proposal in their queue; a wrong or
revoked token gets nothing; a scope for one capability cannot propose another; the kill switch refuses
proposals; and no tool — with any scope — approves, executes or changes policy, exemptions, the kill
switch or tokens.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
import uvicorn
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from studio_brain.bootstrap import Brain, DatabaseTarget, open_brain
from studio_brain.cli.mcp import demo_agent_lines
from studio_brain.domain.audit import ActorType, AuditQuery
from studio_brain.domain.proposals import Status
from studio_brain.mcp.tools import CANCEL_TOOL, PROPOSE_PREFIX, READ_TOOLS
from studio_brain.settings import load_settings
from studio_brain.web.app import create_app
from tests.fixtures.identity import TestPerson, enrol_person

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ADMIN_TOKEN = "mcp-admin-token-0123456789abcdef"
NOTE_INPUT = {"text": "Kiln 2 shelf cracked; a replacement is on order.", "topic": "kilns"}
WHY = "the kiln log should say the shelf is on order"


@dataclass
class Served:
    url: str
    brain: Brain
    owner: TestPerson

    async def token(self, *scopes: str, agent_id: str = "desk-assistant") -> str:
        issued = await self.brain.gateway.issue_agent_token(
            self.owner.principal,
            agent_id=agent_id,
            scopes=list(scopes),
            lifetime=timedelta(days=1),
            reason="an assistant drafts kiln notes",
        )
        return issued.raw


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
async def served(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Served]:
    monkeypatch.setenv("STUDIO_BRAIN_DATABASE_URL", database_url)
    monkeypatch.setenv("STUDIO_BRAIN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STUDIO_BRAIN_ADMIN_TOKEN", ADMIN_TOKEN)
    sock = _free_socket()
    port = sock.getsockname()[1]
    monkeypatch.setenv("STUDIO_BRAIN_PUBLIC_URL", f"http://localhost:{port}")
    settings = load_settings()
    async with open_brain(settings, target=DatabaseTarget(url=database_url, embedded=None)) as brain:
        owner = await enrol_person(brain, "Olive Owner", owner=True)
        server = uvicorn.Server(
            uvicorn.Config(create_app(brain=brain), log_config=None, access_log=False, lifespan="on")
        )
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            assert not serving.done(), "the server stopped while starting"
            await asyncio.sleep(0.02)
        try:
            yield Served(url=f"http://127.0.0.1:{port}/mcp", brain=brain, owner=owner)
        finally:
            server.should_exit = True
            await serving
            sock.close()


@asynccontextmanager
async def http_client(url: str, token: str) -> AsyncIterator[Client]:
    """The SDK's client over streamable HTTP, sending the agent token as a Bearer header."""
    async with (
        httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


def payload(result: Any) -> dict[str, Any]:
    assert result.structured_content is not None, result
    return dict(result.structured_content)


async def test_an_agent_lists_its_tools_reads_state_and_proposes_over_http(served: Served) -> None:
    token = await served.token("state:read", "capabilities:read", "capability:studio.note.append:propose")
    async with http_client(served.url, token) as client:
        names = [t.name for t in (await client.list_tools()).tools]
        assert f"{PROPOSE_PREFIX}studio.note.append" in names
        assert {t.name for t in READ_TOOLS} <= set(names)
        propose = next(t for t in (await client.list_tools()).tools if t.name.startswith(PROPOSE_PREFIX))
        # the capability's own input schema is the tool's schema for "input"
        registry = served.brain.gateway.registry.get("studio.note.append")
        assert registry is not None
        assert propose.input_schema["properties"]["input"] == registry.input_schema

        state = payload(await client.call_tool("state.latest", {}))
        assert "snapshot" in state
        capabilities = payload(await client.call_tool("capabilities.list", {}))
        listed = {c["id"]: c for c in capabilities["capabilities"]}
        assert listed["studio.note.append"]["youMayPropose"] is True
        assert listed["hubitat.switch.set"]["youMayPropose"] is False

        created = payload(
            await client.call_tool(
                f"{PROPOSE_PREFIX}studio.note.append", {"input": NOTE_INPUT, "rationale": WHY}
            )
        )
        proposal_id = created["proposal"]["id"]
        assert created["proposal"]["status"] == Status.PENDING_APPROVAL.value
        draft = payload(
            await client.call_tool(
                f"{PROPOSE_PREFIX}studio.note.append", {"input": NOTE_INPUT, "rationale": WHY, "draft": True}
            )
        )
        assert draft["proposal"]["status"] == Status.DRAFT.value
        mine = payload(await client.call_tool("proposals.mine", {}))
        assert {p["id"] for p in mine["proposals"]} == {proposal_id, draft["proposal"]["id"]}
        timeline = payload(await client.call_tool("proposals.timeline", {"proposalId": proposal_id}))
        assert timeline["events"][0]["action"] == "capability.proposal.created"
        cancelled = payload(
            await client.call_tool(
                "draft.cancel", {"proposalId": draft["proposal"]["id"], "reason": "a duplicate of the other"}
            )
        )
        assert cancelled["proposal"]["status"] == Status.CANCELLED.value

    # staff see the agent's proposal in their queue, waiting for a person
    queue = await served.brain.gateway.list_proposals(served.owner.principal)
    waiting = next(p for p in queue if p.id == proposal_id)
    assert waiting.requester_type is ActorType.AGENT
    assert waiting.status is Status.PENDING_APPROVAL
    async with httpx.AsyncClient(base_url=served.url.removesuffix("/mcp")) as web:
        page = await web.get("/proposals", headers=served.owner.cookies)
    assert page.status_code == 200
    assert proposal_id in page.text

    # every call was audited as the agent, correlated to the MCP request
    events = await served.brain.events.query(
        served.brain.tenant_id, AuditQuery(actor_id="desk-assistant", limit=200)
    )
    actions = [e.action for e in events.events]
    # the four reads audited by the desk, the writes by the gateway's own decisions
    assert actions.count("agent.tool.called") == 4
    assert actions.count("capability.proposal.created") == 2
    assert "capability.proposal.cancelled" in actions
    assert all(e.actor_type is ActorType.AGENT for e in events.events)
    assert all(e.correlation_id.startswith("agent:desk-assistant/mcp:http-") for e in events.events)
    # one correlation per MCP request: the timeline of one call never mixes in another
    called = [e.correlation_id for e in events.events if e.action == "agent.tool.called"]
    assert len(set(called)) == len(called)


async def test_no_token_or_a_wrong_or_revoked_token_gets_no_tools(served: Served) -> None:
    async with httpx.AsyncClient() as raw:
        answer = await raw.post(served.url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    with pytest.raises(Exception):  # noqa: B017, PT011 - the SDK raises its transport error on a 401
        async with http_client(served.url, "sbat_nothing_like_a_token") as client:
            await client.list_tools()

    token = await served.token("state:read")
    async with http_client(served.url, token) as client:
        assert (await client.list_tools()).tools
    token_id = token.removeprefix("sbat_").split("_")[0]
    await served.brain.gateway.revoke_agent_token(served.owner.principal, token_id, "the laptop was lost")
    async with httpx.AsyncClient() as raw:
        answer = await raw.post(
            served.url,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 401


async def test_a_scope_for_one_capability_cannot_propose_another(served: Served) -> None:
    token = await served.token("capability:studio.note.append:propose")
    async with http_client(served.url, token) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert f"{PROPOSE_PREFIX}hubitat.switch.set" not in names
        refused = await client.call_tool(
            f"{PROPOSE_PREFIX}hubitat.switch.set",
            {"input": {"deviceId": "21", "state": "off"}, "rationale": "turn the kiln outlet off now"},
        )
        assert refused.is_error
        assert payload(refused)["reasonCode"] == "DELEGATION_SCOPE_MISSING"
        # and a read it holds no scope for
        state = await client.call_tool("state.latest", {})
        assert state.is_error
        assert payload(state)["reasonCode"] == "DELEGATION_SCOPE_MISSING"
    assert not [
        p
        for p in await served.brain.gateway.list_proposals(served.owner.principal)
        if p.capability_id == "hubitat.switch.set"
    ]
    refusals = await served.brain.events.query(
        served.brain.tenant_id, AuditQuery(actor_id="desk-assistant", limit=100)
    )
    assert any(
        e.metadata.get("decision", {}).get("reasonCode") == "DELEGATION_SCOPE_MISSING"
        and e.capability_id == "hubitat.switch.set"
        for e in refusals.events
    )


async def test_the_kill_switch_refuses_proposals_from_agents(served: Served) -> None:
    token = await served.token("capability:studio.note.append:propose")
    await served.brain.gateway.set_kill_switch(
        served.owner.principal, enabled=True, rationale="kiln room flooded: nothing runs"
    )
    async with http_client(served.url, token) as client:
        refused = await client.call_tool(
            f"{PROPOSE_PREFIX}studio.note.append", {"input": NOTE_INPUT, "rationale": WHY}
        )
    assert refused.is_error
    assert payload(refused)["reasonCode"] == "KILL_SWITCH_ACTIVE"


async def test_bad_input_and_secrets_come_back_as_tool_errors_with_reason_codes(served: Served) -> None:
    token = await served.token("state:read", "capability:studio.note.append:propose")
    async with http_client(served.url, token) as client:
        invalid = await client.call_tool(
            f"{PROPOSE_PREFIX}studio.note.append", {"input": {"text": 3}, "rationale": WHY}
        )
        assert invalid.is_error
        assert payload(invalid)["reasonCode"] == "INPUT_INVALID"
        secret = await client.call_tool(
            f"{PROPOSE_PREFIX}studio.note.append",
            {
                "input": {"text": "use sk_live_51HqLyjWDarjtT1zdp7dcXYZabcdefghij", "topic": "x"},
                "rationale": WHY,
            },
        )
        assert secret.is_error
        assert payload(secret)["reasonCode"] == "SECRET_IN_PAYLOAD"
        assert "sk_live_51HqLyjWDarjtT1zdp7dc" not in json.dumps(payload(secret))
        nul = await client.call_tool("state.history", {"metric": "counts.batches\x00Active"})
        assert nul.is_error
        assert payload(nul)["reasonCode"] == "INPUT_TEXT_INVALID"
        unknown = await client.call_tool("gateway.approve", {"proposalId": "x"})
        assert unknown.is_error
        assert payload(unknown)["reasonCode"] == "NOT_FOUND"
    rows = await served.brain.events.query(
        served.brain.tenant_id, AuditQuery(actor_id="desk-assistant", limit=100)
    )
    assert "sk_live_51HqLyjWDarjtT1zdp7dc" not in json.dumps(
        [e.metadata for e in rows.events] + [e.rationale for e in rows.events]
    )


async def test_per_token_rate_limits_apply(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    token = await served.token("capabilities:read")
    async with http_client(served.url, token) as client:
        answers = [await client.call_tool("capabilities.list", {}) for _ in range(62)]
    limited = [a for a in answers if a.is_error]
    assert len(limited) == 2
    assert all(payload(a)["reasonCode"] == "RATE_LIMITED" for a in limited)


ALL_SCOPES = (
    "state:read",
    "audit:read",
    "proposals:read",
    "capabilities:read",
    "capability:studio.note.append:propose",
    "capability:hubitat.switch.set:propose",
    "capability:roborock.clean.start:propose",
    "capability:hubitat.devices.read:read",
)
FORBIDDEN_WORDS = ("approve", "execute", "kill", "exemption", "policy", "token", "reject", "submit")


async def test_no_tool_with_any_scope_approves_executes_or_changes_policy(served: Served) -> None:
    token = await served.token(*ALL_SCOPES, agent_id="all-scopes-agent")
    async with http_client(served.url, token) as client:
        tools = (await client.list_tools()).tools
        names = [t.name for t in tools]
        for name in names:
            assert not any(word in name for word in FORBIDDEN_WORDS), name
        assert set(names) == {t.name for t in READ_TOOLS} | {CANCEL_TOOL.name} | {
            f"{PROPOSE_PREFIX}{c}"
            for c in ("studio.note.append", "hubitat.switch.set", "roborock.clean.start")
            if served.brain.gateway.registry.get(c) is not None
        }
        # call every tool with what it needs: none of them moves a proposal past "pending approval"
        created = payload(
            await client.call_tool(
                f"{PROPOSE_PREFIX}studio.note.append", {"input": NOTE_INPUT, "rationale": WHY}
            )
        )
        proposal_id = created["proposal"]["id"]
        for tool in tools:
            arguments: dict[str, Any] = {}
            if tool.name.startswith(PROPOSE_PREFIX):
                continue  # proposing is what agents may do; covered above
            if "proposalId" in tool.input_schema.get("properties", {}):
                arguments["proposalId"] = proposal_id
            if "metric" in tool.input_schema.get("properties", {}):
                arguments["metric"] = "counts.batchesActive"
            if "reason" in tool.input_schema.get("properties", {}):
                arguments["reason"] = "checking what this tool does"
            await client.call_tool(tool.name, arguments)
    proposal = await served.brain.gateway.get(served.owner.principal, proposal_id)
    assert proposal.status is Status.PENDING_APPROVAL
    assert proposal.approvals == ()
    assert (await served.brain.gateway.kill_switch_state(served.owner.principal)).global_on is False
    assert await served.brain.gateway.exemptions(served.owner.principal) == []


async def test_the_demo_prints_an_agent_token_and_how_to_connect(served: Served) -> None:
    lines = await demo_agent_lines(served.brain, served.owner.name)
    text = "\n".join(lines)
    assert "/mcp" in text
    assert "studio-brain mcp --token-file" in text
    token_file = served.brain.settings.home / "demo-agent-token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    assert token in text
    async with http_client(served.url, token) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert f"{PROPOSE_PREFIX}hubitat.switch.set" in names


def test_stdio_serves_the_same_tools_to_a_spawned_studio_brain_mcp(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("STUDIO_BRAIN_DATABASE_URL", database_url)
    monkeypatch.setenv("STUDIO_BRAIN_HOME", str(home))
    monkeypatch.setenv("STUDIO_BRAIN_ADMIN_TOKEN", ADMIN_TOKEN)
    settings = load_settings()

    async def issue() -> str:
        async with open_brain(settings, target=DatabaseTarget(url=database_url, embedded=None)) as brain:
            owner = await enrol_person(brain, "Olive Owner", owner=True)
            issued = await brain.gateway.issue_agent_token(
                owner.principal,
                agent_id="desktop-assistant",
                scopes=["state:read", "capability:studio.note.append:propose"],
                lifetime=timedelta(days=1),
                reason="a desktop assistant over stdio",
            )
            return issued.raw

    token = asyncio.run(issue())
    env = {
        **os.environ,
        "STUDIO_BRAIN_DATABASE_URL": database_url,
        "STUDIO_BRAIN_HOME": str(home),
        "STUDIO_BRAIN_ADMIN_TOKEN": ADMIN_TOKEN,
        "STUDIO_BRAIN_AGENT_TOKEN": token,
        "STUDIO_BRAIN_LOG_FORMAT": "json",
    }
    command = str(Path(sys.executable).with_name("studio-brain"))

    async def talk() -> tuple[list[str], dict[str, Any], dict[str, Any]]:
        params = StdioServerParameters(command=command, args=["mcp"], env=env)
        async with Client(params) as client:
            names = [t.name for t in (await client.list_tools()).tools]
            created = payload(
                await client.call_tool(
                    f"{PROPOSE_PREFIX}studio.note.append", {"input": NOTE_INPUT, "rationale": WHY}
                )
            )
            resource = await client.read_resource("studio://capabilities")
            return names, created, json.loads(resource.contents[0].text)  # type: ignore[union-attr]

    names, created, registry = asyncio.run(talk())
    assert f"{PROPOSE_PREFIX}studio.note.append" in names
    assert created["proposal"]["status"] == Status.PENDING_APPROVAL.value
    assert any(c["id"] == "studio.note.append" for c in registry["capabilities"])

    # a revoked (here: unknown) token ends the process with one line and exit 1, before any protocol
    import subprocess

    done = subprocess.run(
        [command, "mcp"],
        env={**env, "STUDIO_BRAIN_AGENT_TOKEN": "sbat_unknown_secretpart"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert "agent token is not valid" in done.stderr
