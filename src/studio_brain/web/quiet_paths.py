"""Unknown paths, logged quietly: a client that polls a path this brain does not serve (the Portal polls
every ~3 s per tab, forever) gets its 404 every time, but the log says so once per path per hour, with
how many requests were not logged since."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request

from studio_brain.logging import get_logger

log = get_logger(__name__)

#: one log line per path per this many seconds
WINDOW_SECONDS = 3600.0
#: paths remembered at once (a scan of random paths must not grow memory without bound)
MAX_PATHS = 1000
#: longest path written to the log
MAX_PATH_CHARS = 200


@dataclass(kw_only=True, slots=True)
class _Seen:
    logged_at: float
    suppressed: int = 0


class UnknownPaths:
    """Decides which 404s of unknown paths are logged; the rest are counted."""

    def __init__(self, monotonic: Callable[[], float], *, window: float = WINDOW_SECONDS) -> None:
        self._monotonic = monotonic
        self._window = window
        self._seen: OrderedDict[str, _Seen] = OrderedDict()

    def note(self, method: str, path: str) -> bool:
        """Record one 404 for ``path``; True (and one log line) when it is the first in its window."""
        key = f"{method} {path[:MAX_PATH_CHARS]}"
        now = self._monotonic()
        seen = self._seen.get(key)
        if seen is not None and now - seen.logged_at < self._window:
            seen.suppressed += 1
            return False
        log.info(
            "http.path.unknown",
            method=method,
            path=path[:MAX_PATH_CHARS],
            not_logged_since=seen.suppressed if seen is not None else 0,
            next_line_after_seconds=int(self._window),
        )
        self._seen[key] = _Seen(logged_at=now)
        self._seen.move_to_end(key)
        while len(self._seen) > MAX_PATHS:
            self._seen.popitem(last=False)
        return True


def unknown_paths_of(request: Request) -> UnknownPaths:
    """The app's tracker, created on first use with the Brain's clock (a monotonic reading)."""
    state = request.app.state
    found = getattr(state, "unknown_paths", None)
    if isinstance(found, UnknownPaths):
        return found
    brain = getattr(state, "brain", None)
    clock = getattr(brain, "clock", None)
    tracker = UnknownPaths(time.monotonic if clock is None else clock.monotonic)
    state.unknown_paths = tracker
    return tracker
