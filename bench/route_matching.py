"""Benchmark: CPU FastAPI spends choosing the route of a request (issue 18), per path.

Run: .venv/bin/python bench/route_matching.py [--repeat 2000]

Builds the app as ``serve`` does (no database: routing needs none) and times, with the process clock, the
walk Starlette's router makes over ``app.router.routes`` until one matches in full — the walk FastAPI does
once to choose a route (and, for routes inside included routers, once more to dispatch). No network, no
database, one process: the figure is the routing walk alone.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any

from starlette.routing import Match

PATHS = [
    ("POST", "/api/v1/proposals"),
    ("POST", "/api/v1/proposals/0190/approve"),
    ("POST", "/api/v1/proposals/0190/execute"),
    ("GET", "/api/v1/state/latest"),
    ("GET", "/api/v1/capabilities"),
    ("GET", "/api/capabilities"),
    ("GET", "/api/capabilities/audit"),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    os.environ["STUDIO_BRAIN_HOME"] = tempfile.mkdtemp(prefix="sb-route-bench-")
    from studio_brain.settings import load_settings
    from studio_brain.web.app import create_app

    app = create_app(settings=load_settings())
    for method, path in PATHS:
        tried = 0
        started = time.process_time()
        for _ in range(args.repeat):
            scope: dict[str, Any] = {
                "type": "http",
                "path": path,
                "method": method,
                "root_path": "",
                "headers": [],
                "query_string": b"",
                "app": app,
            }
            for tried, route in enumerate(app.router.routes, 1):  # noqa: B007 - the count is reported
                if route.matches(scope)[0] is Match.FULL:
                    break
        per = (time.process_time() - started) / args.repeat * 1e6
        print(
            f"{method:<5}{path:<36} {per:7.1f} µs per match (top-level router {tried} of {len(app.router.routes)})"
        )


if __name__ == "__main__":
    main()
