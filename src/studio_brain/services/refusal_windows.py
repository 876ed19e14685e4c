"""Refusal windows: every refusal counted, but no caller can flood the audit log with them (issue 12 item 8).

Per key (who was refused, for what, with which reason code) and window: the **first** refusal of a window
is audited at once (``count`` 1) — a lone refusal is never delayed or lost; the **rest** are counted in
memory and audited as **one** row when the window closes (``aggregated``: true, ``count``, the window's
bounds, a few samples) — at the next refusal of anyone after it, or at :meth:`RefusalWindows.drain`
(shutdown). A crash loses at most the open windows' counts, never a first row.

Used by the HTTP layer (``web/refusals.py``), the gateway's policy refusals, the drafts service and the
identity services, each with its own windows.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from studio_brain.domain.audit import AuditDraft
from studio_brain.domain.text import sanitise
from studio_brain.ports.clock import Clock

#: how many samples (paths, capability or proposal ids) an aggregated row keeps
SAMPLES = 5
DEFAULT_WINDOW = timedelta(minutes=1)


@dataclass(kw_only=True)
class RefusalWindow:
    """One open window: the first refusal's draft (already audited) and how many followed it."""

    first: AuditDraft
    started_at: datetime
    more: int = 0
    samples: list[str] = field(default_factory=list)

    def aggregated(self, until: datetime, *, samples_key: str = "samples") -> AuditDraft:
        """The one row for the refusals after the first: the first's draft, counted."""
        return replace(
            self.first,
            rationale=sanitise(f"{self.first.rationale} (and {self.more} more like it in this window)"),
            metadata={
                **self.first.metadata,
                "count": self.more,
                "aggregated": True,
                "windowStart": self.started_at.isoformat(),
                "windowEnd": until.isoformat(),
                samples_key: list(self.samples),
            },
        )


def first_of_window(draft: AuditDraft, started_at: datetime) -> AuditDraft:
    """The row written at once for a window's first refusal."""
    return replace(draft, metadata={**draft.metadata, "count": 1, "windowStart": started_at.isoformat()})


class RefusalWindows:
    """Decides which refusals to audit now; keeps the counts of the rest. Not thread-safe: one event loop."""

    def __init__(
        self, clock: Clock, window: timedelta = DEFAULT_WINDOW, *, samples_key: str = "samples"
    ) -> None:
        self._clock = clock
        self.window = window
        #: the metadata key of an aggregated row's samples (the HTTP layer's are ``samplePaths``)
        self._samples_key = samples_key
        self._open: dict[Hashable, RefusalWindow] = {}

    def admit(
        self, key: Hashable, draft: AuditDraft, *, sample: str = ""
    ) -> tuple[AuditDraft | None, list[AuditDraft]]:
        """Count one refusal: (its row if it opens a window — else None, it is counted), and the rows of
        windows that closed since (aggregated), to be audited now."""
        now = self._clock.now()
        due = self._close_expired(now)
        current = self._open.get(key)
        if current is None:
            self._open[key] = RefusalWindow(
                first=draft, started_at=now, samples=[sanitise(sample, limit=300)] if sample else []
            )
            return first_of_window(draft, now), due
        current.more += 1
        if sample and len(current.samples) < SAMPLES:
            current.samples.append(sanitise(sample, limit=300))
        return None, due

    def _close_expired(self, now: datetime) -> list[AuditDraft]:
        due = []
        for key, window in list(self._open.items()):
            if now - window.started_at >= self.window:
                del self._open[key]
                if window.more:
                    due.append(window.aggregated(now, samples_key=self._samples_key))
        return due

    def drain(self) -> list[AuditDraft]:
        """Close every window now: the aggregated rows of those with uncounted refusals."""
        now = self._clock.now()
        due = [w.aggregated(now, samples_key=self._samples_key) for w in self._open.values() if w.more]
        self._open.clear()
        return due
