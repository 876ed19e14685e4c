"""The MCP tool catalogue: each tool's name, description, JSON Schema, and the agent-desk call it makes.

Read tools map one to one onto :class:`AgentDesk` reads. Writes are one ``propose.<capability id>`` tool
per capability the agent's token may propose (its JSON Schema carries the capability's own input
schema), plus ``draft.cancel``. There is deliberately no tool that approves, executes, or changes policy,
exemptions, the kill switch or tokens: the catalogue is closed, and ``tests/integration/test_mcp.py``
lists it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from studio_brain.domain.capabilities import Capability
from studio_brain.domain.errors import InputInvalid
from studio_brain.domain.identity import Principal
from studio_brain.domain.proposals import MIN_RATIONALE_LENGTH
from studio_brain.services.agent_desk import AgentDesk, CallContext

#: the prefix of the per-capability proposal tools
PROPOSE_PREFIX = "propose."

Handler = Callable[[AgentDesk, CallContext, dict[str, Any]], Awaitable[dict[str, Any]]]

_NO_ARGUMENTS: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolSpec:
    name: str
    title: str
    description: str
    input_schema: dict[str, Any]
    read_only: bool
    handler: Handler


def _text(args: dict[str, Any], name: str, *, max_length: int = 2000) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InputInvalid(f"{name}: required text")
    if len(value) > max_length:
        raise InputInvalid(f"{name}: at most {max_length} characters")
    return value


def _extra(args: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise InputInvalid(f"unknown arguments: {', '.join(unknown)}")


async def _latest(desk: AgentDesk, call: CallContext, args: dict[str, Any]) -> dict[str, Any]:
    _extra(args, set())
    return await desk.latest_state(call)


async def _since(desk: AgentDesk, call: CallContext, args: dict[str, Any]) -> dict[str, Any]:
    _extra(args, set())
    return await desk.since_yesterday(call)


async def _history(desk: AgentDesk, call: CallContext, args: dict[str, Any]) -> dict[str, Any]:
    _extra(args, {"metric", "days"})
    days = args.get("days", 30)
    if not isinstance(days, int) or isinstance(days, bool):
        raise InputInvalid("days: a whole number")
    return await desk.metric_history(call, _text(args, "metric", max_length=64), days)


async def _devices(desk: AgentDesk, call: CallContext, args: dict[str, Any]) -> dict[str, Any]:
    _extra(args, set())
    return await desk.devices(call)


async def _capabilities(desk: AgentDesk, call: CallContext, args: dict[str, Any]) -> dict[str, Any]:
    _extra(args, set())
    return await desk.capabilities(call)


async def _mine(desk: AgentDesk, call: CallContext, args: dict[str, Any]) -> dict[str, Any]:
    _extra(args, {"status"})
    status = args.get("status")
    if status is not None and not isinstance(status, str):
        raise InputInvalid("status: text")
    return await desk.my_proposals(call, status)


async def _timeline(desk: AgentDesk, call: CallContext, args: dict[str, Any]) -> dict[str, Any]:
    _extra(args, {"proposalId"})
    return await desk.timeline(call, _text(args, "proposalId", max_length=100))


async def _cancel(desk: AgentDesk, call: CallContext, args: dict[str, Any]) -> dict[str, Any]:
    _extra(args, {"proposalId", "reason"})
    return await desk.cancel_draft(call, _text(args, "proposalId", max_length=100), _text(args, "reason"))


def _proposer(capability_id: str) -> Handler:
    async def propose(desk: AgentDesk, call: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        _extra(args, {"input", "rationale", "draft"})
        draft = args.get("draft", False)
        if not isinstance(draft, bool):
            raise InputInvalid("draft: true or false")
        rationale = args.get("rationale")
        return await desk.propose(
            call,
            capability_id,
            args.get("input"),
            rationale if isinstance(rationale, str) else "",
            draft=draft,
        )

    return propose


READ_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="state.latest",
        title="Latest StudioState",
        description="The newest complete daily StudioState snapshot (schema v3.0). Needs scope state:read.",
        input_schema=_NO_ARGUMENTS,
        read_only=True,
        handler=_latest,
    ),
    ToolSpec(
        name="state.since_yesterday",
        title="Changes since yesterday's close",
        description="Key-level changes of today's newest snapshot against yesterday's daily close.",
        input_schema=_NO_ARGUMENTS,
        read_only=True,
        handler=_since,
    ),
    ToolSpec(
        name="state.history",
        title="History of one metric",
        description="Daily values of one metric (e.g. counts.batchesActive) over the last N days (1-366).",
        input_schema={
            "type": "object",
            "properties": {
                "metric": {"type": "string", "description": "dotted metric, e.g. counts.firingsScheduled"},
                "days": {"type": "integer", "minimum": 1, "maximum": 366, "default": 30},
            },
            "required": ["metric"],
            "additionalProperties": False,
        },
        read_only=True,
        handler=_history,
    ),
    ToolSpec(
        name="devices.list",
        title="Connectors and devices",
        description="Connector health and device readings (names, rooms, states). Needs scope state:read.",
        input_schema=_NO_ARGUMENTS,
        read_only=True,
        handler=_devices,
    ),
    ToolSpec(
        name="capabilities.list",
        title="Capability registry",
        description="Every capability with its risk, approvals and input schema, and which you may propose.",
        input_schema=_NO_ARGUMENTS,
        read_only=True,
        handler=_capabilities,
    ),
    ToolSpec(
        name="proposals.mine",
        title="My proposals",
        description="The proposals and drafts this agent created, newest first (status filter optional).",
        input_schema={
            "type": "object",
            "properties": {"status": {"type": "string"}},
            "additionalProperties": False,
        },
        read_only=True,
        handler=_mine,
    ),
    ToolSpec(
        name="proposals.timeline",
        title="Timeline of one of my proposals",
        description="The audit events of one of this agent's proposals, oldest first.",
        input_schema={
            "type": "object",
            "properties": {"proposalId": {"type": "string"}},
            "required": ["proposalId"],
            "additionalProperties": False,
        },
        read_only=True,
        handler=_timeline,
    ),
)

CANCEL_TOOL = ToolSpec(
    name="draft.cancel",
    title="Cancel one of my drafts",
    description="Cancel a draft this agent created (submitted proposals are for staff to decide).",
    input_schema={
        "type": "object",
        "properties": {
            "proposalId": {"type": "string"},
            "reason": {"type": "string", "minLength": MIN_RATIONALE_LENGTH},
        },
        "required": ["proposalId", "reason"],
        "additionalProperties": False,
    },
    read_only=False,
    handler=_cancel,
)


def propose_tool(capability: Capability) -> ToolSpec:
    """``propose.<id>``: the capability's own input schema as ``input``, with a rationale and ``draft``."""
    approvals = (
        f"needs {capability.approvals_required} staff approval(s)"
        if capability.requires_approval
        else "may run without approval only under a staff exemption"
    )
    return ToolSpec(
        name=f"{PROPOSE_PREFIX}{capability.id}",
        title=f"Propose: {capability.id}",
        description=(
            f"Propose '{capability.id}' ({capability.description}); risk {capability.risk.value}, "
            f"{approvals}. Nothing runs until a person approves it in the cockpit. "
            "draft=true keeps it as a draft for staff to submit."
        ),
        input_schema={
            "type": "object",
            "properties": {
                "input": capability.input_schema,
                "rationale": {
                    "type": "string",
                    "minLength": MIN_RATIONALE_LENGTH,
                    "description": "why: staff read this before they approve",
                },
                "draft": {"type": "boolean", "default": False},
            },
            "required": ["input", "rationale"],
            "additionalProperties": False,
        },
        read_only=False,
        handler=_proposer(capability.id),
    )


def catalogue(principal: Principal, capabilities: list[Capability]) -> list[ToolSpec]:
    """The tools this agent sees: every read, a propose tool per capability its token may propose, cancel."""
    proposable = [c for c in capabilities if principal.has_scope(c.propose_scope())]
    return [*READ_TOOLS, *(propose_tool(c) for c in proposable), CANCEL_TOOL]
