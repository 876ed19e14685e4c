"""Benchmark: what the HTTP input guard costs per request (issue 12): the request line and a JSON body
checked for unstorable text, out-of-range numbers and credential shapes.

Run: .venv/bin/python bench/input_guard.py [--seconds 3]
No I/O: the guard's own functions on a typical proposal create (about 0.5 KB) and a large body (a 200-item
list of effects, about 20 KB), plus a query string of four filters.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from studio_brain.web.middleware import _check_body, _check_request_line

SMALL = json.dumps(
    {
        "capabilityId": "hubitat.switch.set",
        "input": {"deviceId": "21", "state": "off"},
        "rationale": "Kiln 2 vent fan off after the glaze firing cooled below 150 °F; checked by Grace.",
        "predictedEffects": ["the vent fan on outlet 21 switches off"],
        "idempotencyKey": "portal-7f3a9c2e",
        "correlationId": "portal-req-1",
    }
).encode()
LARGE = json.dumps(
    {
        "capabilityId": "studio.note.append",
        "input": {"text": "Kiln log. " * 200, "topic": "kilns"},
        "rationale": "Weekly kiln log for the team; nothing to switch.",
        "predictedEffects": [
            f"note line {n}: shelf {n % 7} checked, cone {n % 10} witness ok" for n in range(200)
        ],
    }
).encode()
SCOPE = {
    "type": "http",
    "path": "/api/v1/proposals",
    "query_string": b"status=pending_approval&capabilityId=hubitat.switch.set&requestedBy=grace&limit=50",
    "headers": [(b"x-request-id", b"portal-req-1"), (b"content-type", b"application/json")],
}


def rate(work: Callable[[], None], seconds: float) -> float:
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            work()
        done += 100
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    for name, work in (
        ("request line (path, 4 query params, id header)", lambda: _check_request_line(SCOPE)),
        (f"small JSON body ({len(SMALL)} B)", lambda: _check_body("application/json", SMALL)),
        (f"large JSON body ({len(LARGE)} B)", lambda: _check_body("application/json", LARGE)),
    ):
        per_second = rate(work, args.seconds)
        print(f"{name}: {per_second:,.0f}/s ({1e6 / per_second:.1f} µs each)")


if __name__ == "__main__":
    main()
