"""Running the swarms: load history once, let each swarm judge it, record what they find as drafts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta, tzinfo
from typing import Any

from studio_brain.logging import get_logger
from studio_brain.ports import Clock, StateStore
from studio_brain.services.swarms.base import Freshness, Swarm, SwarmInput, run_swarm
from studio_brain.services.swarms.drafts import DraftService

log = get_logger(__name__)


class SwarmService:
    def __init__(
        self,
        *,
        tenant_id: str,
        state_store: StateStore,
        drafts: DraftService,
        clock: Clock,
        zone: tzinfo,
        swarms: Sequence[Swarm],
        history_days: int = 70,
        freshness: Freshness | None = None,
    ) -> None:
        self._tenant = tenant_id
        self._state = state_store
        self._drafts = drafts
        self._clock = clock
        self._zone = zone
        self._swarms = tuple(swarms)
        self._history_days = history_days
        self._freshness = freshness or Freshness()

    @property
    def names(self) -> list[str]:
        return [s.name for s in self._swarms]

    async def load_input(self) -> SwarmInput:
        now = self._clock.now()
        today = now.astimezone(self._zone).date()
        history = await self._state.history(self._tenant, today - timedelta(days=self._history_days), today)
        todays = await self._state.runs_for_date(self._tenant, today)
        newest = todays[-1] if todays else (history[-1] if history else None)
        return SwarmInput(
            tenant_id=self._tenant,
            now=now,
            today=today,
            zone=self._zone,
            history=list(history),
            newest_run=newest,
            freshness=self._freshness,
        )

    async def replay(self, days: int) -> dict[str, Any]:
        """Run every swarm as it would have run on each of the last ``days`` stored days, oldest first,
        dating each day's drafts at that day's snapshot (dedupe and cooldown apply as if live). Used by
        ``studio-brain demo`` so a fresh cockpit shows what the swarms drafted over the recent history."""
        data = await self.load_input()
        totals: dict[str, dict[str, int]] = {s.name: {"created": 0, "findings": 0} for s in self._swarms}
        judged = [run for run in data.history if run.snapshot_date > data.today - timedelta(days=days)]
        for run in judged:
            past = replace(
                data,
                now=run.generated_at,
                today=run.snapshot_date,
                history=[r for r in data.history if r.snapshot_date <= run.snapshot_date],
                newest_run=run,
            )
            for swarm in self._swarms:
                report = await run_swarm(swarm, past, self._drafts.sink(swarm.name, at=run.generated_at))
                totals[swarm.name]["created"] += report.created
                totals[swarm.name]["findings"] += report.findings
        log.info("swarm.replayed", days=len(judged), **{k: v["created"] for k, v in totals.items()})
        return {"days": len(judged), **totals}

    async def run(self) -> dict[str, Any]:
        """Run every swarm once; the summary (per swarm: findings, created, duplicates, cooling down)."""
        data = await self.load_input()
        summary: dict[str, Any] = {"historyDays": len(data.history)}
        for swarm in self._swarms:
            report = await run_swarm(swarm, data, self._drafts.sink(swarm.name))
            summary[swarm.name] = report.to_json()
            log.info(
                "swarm.ran",
                swarm=swarm.name,
                findings=report.findings,
                created=report.created,
                duplicates=report.duplicates,
                cooling_down=report.cooling_down,
            )
        return summary
