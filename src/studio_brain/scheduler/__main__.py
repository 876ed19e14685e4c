"""``python -m studio_brain.scheduler``: open the brain, run the leader-elected scheduler until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys

from studio_brain.bootstrap import open_brain
from studio_brain.domain.errors import StudioBrainError
from studio_brain.logging import configure_logging, redact_text
from studio_brain.services.scheduling import scheduler_running
from studio_brain.settings import load_settings


async def _main() -> None:
    settings = load_settings()
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with (
        open_brain(settings, migrate=True) as brain,
        scheduler_running(
            brain.jobs,
            brain.leader_lock,
            brain.clock,
            leader_check_seconds=settings.scheduler_leader_check_seconds,
        ),
    ):
        print("scheduler running; stop with Ctrl-C", flush=True)  # the readiness line tests wait for
        await stop.wait()


def main() -> int:
    try:
        asyncio.run(_main())
    except StudioBrainError as err:
        print(f"studio-brain scheduler: {redact_text(err.message)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
