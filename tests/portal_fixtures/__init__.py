"""The reference's sample payloads (``shared/reference/control-tower.md``), kept as contract fixtures, and
the Portal's reading of a Control Tower state written down in Python (what its UI dereferences)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def load(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((HERE / name).read_text(encoding="utf-8"))
    body.pop("_source", None)
    return body


def sse_events(text: str) -> list[dict[str, Any]]:
    """The Portal's SSE parsing (CT L673-692): split on blank lines, join the ``data:`` lines, JSON-parse
    each; unparsable chunks are skipped."""
    out: list[dict[str, Any]] = []
    for chunk in text.replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(line[5:].lstrip() for line in chunk.split("\n") if line.startswith("data:"))
        if not data:
            continue
        try:
            parsed = json.loads(data)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            out.append(parsed)
    return out


def render_state(state: dict[str, Any]) -> dict[str, Any]:
    """What the Control Tower UI reads without a guard (§1b); a missing field raises as the UI would crash.
    Returns whether it renders the quiet standing-by view (§1c)."""
    overview = state["overview"]
    attention, active, moves = overview["needsAttention"], overview["activeRooms"], overview["goodNextMoves"]
    memory = state["memoryBrief"]
    continuity = memory["continuityState"]
    consolidation = memory["consolidation"]
    assert isinstance(consolidation, dict)
    for layer in ("coreBlocks", "workingMemory", "episodicMemory", "canonicalMemory"):
        assert isinstance(memory["layers"][layer], list)
    if continuity != "ready":
        assert isinstance(memory["recommendedNextActions"], list)
    card = state.get("startupScorecard")
    if card is not None:
        _ = (card["latest"]["sample"]["status"], card["metrics"], card["rubric"]["overallScore"])
    partner = state.get("partner")
    if partner is not None:
        _ = (partner["openLoops"], partner["verifiedContext"], partner["programs"])
    for host in state.get("hosts") or []:
        assert isinstance(host["metrics"], dict)
    lists = {
        k: state.get(k) or []
        for k in (
            "board",
            "services",
            "channels",
            "events",
            "hosts",
            "approvals",
            "pinnedItems",
            "recentChanges",
        )
    }
    runtime = state.get("agentRuntime")
    quiet = (
        not any(lists.values())
        and (runtime is None or runtime.get("status") not in ("queued", "running", "blocked", "failed"))
        and not attention
        and not active
        and not moves
        and partner is None
        and continuity in ("ready", "missing")
        and not consolidation.get("lastError")
    )
    return {"quiet": quiet, "status": state["ops"]["overallStatus"], "approvals": lists["approvals"]}
