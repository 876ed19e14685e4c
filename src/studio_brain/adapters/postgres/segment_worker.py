"""The worker process of :class:`~.segment_verifier.ProcessSegmentVerifier`: ``python -m`` this module.

Reads one :class:`~.segment_verifier.SegmentJob` as JSON from stdin, verifies its segment and writes lines
of JSON (progress, then the verdict or the error's type) to stdout. Nothing else may write to stdout:
``print`` and stray output go to stderr.
"""

from __future__ import annotations

import json
import sys

from studio_brain.adapters.postgres.segment_verifier import frame, job_from_json, run_segment


def main() -> int:
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # the protocol owns stdout
    try:
        job = job_from_json(json.load(sys.stdin.buffer))
    except (ValueError, KeyError, TypeError) as err:
        out.write(frame("failed", f"not a segment job: {type(err).__name__}"))
        return 2

    def send(kind: str, value: object) -> None:
        out.write(frame(kind, value))
        out.flush()

    run_segment(job, send)
    return 0


if __name__ == "__main__":
    sys.exit(main())
