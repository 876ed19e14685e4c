"""``python bench/profiled_uvicorn.py STATS_FILE <uvicorn arguments…>``: uvicorn under cProfile (bench/server_cpu.py).

The profiler starts on SIGUSR1 (the benchmark sends it after its warm-up, so start-up and imports stay
out of the figures). uvicorn re-raises the SIGTERM it stopped on once it has shut down, so the stats are written from a
SIGTERM handler installed before it starts (it restores that handler before re-raising), not at exit.
"""

from __future__ import annotations

import cProfile
import os
import signal
import sys
import time
from types import FrameType

import uvicorn.main


def main() -> None:
    stats_file, arguments = sys.argv[1], sys.argv[2:]
    # CPU time, not wall-clock: time spent waiting on the database or for a core is not the server's cost
    profiler = cProfile.Profile(time.process_time)

    def dump(signum: int, frame: FrameType | None) -> None:
        profiler.disable()
        profiler.dump_stats(stats_file)
        os._exit(0)

    signal.signal(signal.SIGTERM, dump)
    signal.signal(signal.SIGUSR1, lambda signum, frame: profiler.enable())
    try:
        uvicorn.main.main(arguments)
    finally:
        dump(signal.SIGTERM, None)


if __name__ == "__main__":
    main()
