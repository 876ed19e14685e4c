"""An unknown path the Portal polls is logged once per path per hour, with the count of requests not
logged since (issue 21)."""

from __future__ import annotations

import io

from studio_brain.logging import configure_logging
from studio_brain.web.quiet_paths import MAX_PATHS, UnknownPaths


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_polled_unknown_path_is_logged_once_an_hour_with_the_count_not_logged() -> None:
    # the log goes to a stream of our own: other tests (and the CLI) reconfigure logging process-wide
    stream = io.StringIO()
    configure_logging(level="info", fmt="console", stream=stream)
    ticks = Ticks()
    paths = UnknownPaths(ticks)
    logged = []
    for _ in range(1200):  # an hour of polling every 3 s
        logged.append(paths.note("GET", "/api/control-tower/overview"))
        ticks.now += 2.99
    assert logged.count(True) == 1
    ticks.now += 20  # past the hour since the first line
    assert paths.note("GET", "/api/control-tower/overview") is True
    out = stream.getvalue()
    assert out.count("http.path.unknown") == 2
    assert "not_logged_since=1199" in out


def test_each_path_and_method_has_its_own_hour() -> None:
    paths = UnknownPaths(Ticks())
    assert paths.note("GET", "/api/a") is True
    assert paths.note("GET", "/api/b") is True
    assert paths.note("POST", "/api/a") is True
    assert paths.note("GET", "/api/a") is False


def test_a_scan_of_random_paths_keeps_a_bounded_memory() -> None:
    paths = UnknownPaths(Ticks())
    for n in range(MAX_PATHS * 3):
        paths.note("GET", f"/scan/{n}")
    assert len(paths._seen) == MAX_PATHS
