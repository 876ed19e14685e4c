"""Connectors benchmark: read latency through the real connectors to the fake device servers, and the
circuit breaker's behaviour over time when a device goes away and comes back.

Run: .venv/bin/python bench/connectors_latency.py [--reads 300] [--json]
- latency: sequential reads over loopback HTTP (one short-lived httpx client per call, as in production):
  Hubitat ``devices/all`` (8 devices, normalised), Hubitat health probe, Roborock ``status.read``
  (``/api/states`` + sibling sensors), Roborock health probe; then the same Hubitat read with 5 concurrent
  callers. p50/p95/p99 in milliseconds.
- breaker timeline: real clock, 3 failures to open, 0.5 s first window; the Maker API fake is stopped at
  t=0, health is probed every 100 ms, the fake returns at t=1.2 s; every change of (status, breaker) is
  printed with its time. Bounded: about 20 s on a loaded 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from secrets import token_urlsafe
from typing import Any

from pydantic import SecretStr

from studio_brain.adapters.clock import SystemClock
from studio_brain.adapters.connectors.base import HttpConnector, HttpPolicy
from studio_brain.adapters.connectors.breaker import CircuitBreaker
from studio_brain.adapters.connectors.fakes import FakeHomeAssistant, FakeMakerApi
from studio_brain.adapters.connectors.homeassistant import RoborockConnector
from studio_brain.adapters.connectors.hubitat import HubitatConnector
from studio_brain.domain.connectors import ConnectorContext
from studio_brain.domain.errors import ConnectorError
from studio_brain.logging import configure_logging

CLOCK = SystemClock()


def ctx(i: int = 0) -> ConnectorContext:
    return ConnectorContext(request_id=f"bench-{i}", timeout_seconds=5.0)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "n": len(ordered),
        "p50": round(q[49], 2),
        "p95": round(q[94], 2),
        "p99": round(q[98], 2),
        "max": round(ordered[-1], 2),
    }


async def timed(calls: int, call: Callable[[int], Awaitable[Any]]) -> list[float]:
    samples = []
    for i in range(calls):
        started = time.perf_counter()
        await call(i)
        samples.append((time.perf_counter() - started) * 1000.0)
    return samples


async def concurrent(calls: int, workers: int, call: Callable[[int], Awaitable[Any]]) -> list[float]:
    per_worker = calls // workers
    results = await asyncio.gather(*(timed(per_worker, call) for _ in range(workers)))
    return [s for r in results for s in r]


def hubitat(
    hub: FakeMakerApi, *, breaker: CircuitBreaker | None = None, policy: HttpPolicy | None = None
) -> HubitatConnector:
    return HubitatConnector(
        hub_url=hub.hub_url,
        app_id=hub.app_id,
        token=SecretStr(hub.token),
        clock=CLOCK,
        breaker=breaker or CircuitBreaker(name="hubitat", clock=CLOCK),
        policy=policy or HttpPolicy(),
    )


async def latency(reads: int) -> dict[str, Any]:
    with FakeMakerApi(token=token_urlsafe(16)) as hub, FakeHomeAssistant(token=token_urlsafe(16)) as ha:
        assert isinstance(hub, FakeMakerApi)
        assert isinstance(ha, FakeHomeAssistant)
        h = hubitat(hub)
        r = RoborockConnector(
            base_url=ha.url,
            token=SecretStr(ha.token),
            entity_id=ha.entity_id,
            clock=CLOCK,
            breaker=CircuitBreaker(name="roborock", clock=CLOCK),
            policy=HttpPolicy(),
        )
        connectors: list[HttpConnector] = [h, r]
        for c in connectors:  # warm-up
            await c.read_status(ctx(), {})
        out = {
            "hubitat devices/all (read_status)": percentiles(
                await timed(reads, lambda i: h.read_status(ctx(i), {}))
            ),
            "hubitat health": percentiles(await timed(reads, lambda i: h.health(ctx(i)))),
            "roborock status.read": percentiles(await timed(reads, lambda i: r.read_status(ctx(i), {}))),
            "roborock health": percentiles(await timed(reads, lambda i: r.health(ctx(i)))),
            "hubitat devices/all, 5 concurrent callers": percentiles(
                await concurrent(reads, 5, lambda i: h.read_status(ctx(i), {}))
            ),
        }
        assert hub.writes == []
        assert ha.writes == []
        return out


async def breaker_timeline() -> list[dict[str, Any]]:
    hub = FakeMakerApi(token=token_urlsafe(16)).start()
    breaker = CircuitBreaker(
        name="hubitat", clock=CLOCK, failure_threshold=3, window_seconds=0.5, max_window_seconds=4
    )
    connector = hubitat(hub, breaker=breaker, policy=HttpPolicy(read_attempts=1, attempt_timeout_seconds=0.5))
    events: list[dict[str, Any]] = []
    last: tuple[str, str] | None = None
    hub.stop()
    t0 = time.perf_counter()
    returned = False
    try:
        while (elapsed := time.perf_counter() - t0) < 3.0:
            if not returned and elapsed >= 1.2:
                hub.start()
                returned = True
                events.append({"t_s": round(elapsed, 2), "event": "fake returns"})
            before = connector.breaker.state  # reading it applies an elapsed window (open -> half_open)
            if last is not None and before.value != last[1]:
                events.append(
                    {
                        "t_s": round(time.perf_counter() - t0, 2),
                        "status": last[0],
                        "breaker": before.value,
                        "latency_ms": None,
                        "detail": "(window elapsed; the next probe is the trial)",
                    }
                )
                last = (last[0], before.value)
            health = await connector.health(ctx())
            now = (health.status.value, health.breaker.value)
            if now != last:
                events.append(
                    {
                        "t_s": round(time.perf_counter() - t0, 2),
                        "status": now[0],
                        "breaker": now[1],
                        "latency_ms": None if health.latency_ms is None else round(health.latency_ms, 1),
                        "detail": health.detail,
                    }
                )
                last = now
            await asyncio.sleep(0.1)
    finally:
        hub.stop()
    return events


async def main(reads: int) -> dict[str, Any]:
    started = time.perf_counter()
    result = {"latency_ms": await latency(reads), "breaker_timeline": await breaker_timeline()}
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    configure_logging(level="warning", fmt="console", stream=sys.stderr)
    try:
        result = asyncio.run(main(args.reads))
    except ConnectorError as err:
        raise SystemExit(f"benchmark failed: {err.kind}: {err.message}") from None
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{'read':<45} {'n':>5} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}   (ms)")
        for name, p in result["latency_ms"].items():
            print(f"{name:<45} {p['n']:>5} {p['p50']:>8} {p['p95']:>8} {p['p99']:>8} {p['max']:>8}")
        print("\nbreaker timeline (Maker API fake stopped at t=0):")
        for e in result["breaker_timeline"]:
            if "event" in e:
                print(f"  t={e['t_s']:>5.2f}s  -- {e['event']}")
            else:
                print(f"  t={e['t_s']:>5.2f}s  {e['status']:<9} breaker={e['breaker']:<9} {e['detail']}")
        print(f"\ntotal {result['seconds']} s")
