"""The entry point of one ``serve --workers N`` HTTP worker process (started by :mod:`.workers`).

Its own module, imported by nothing: ``python -m`` of a module the package already imported would run a
second copy of it.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import socket
import sys

_PR_SET_PDEATHSIG = 1


def _stop_with_parent(parent: int) -> None:
    """Ask the kernel for a SIGTERM when ``serve`` dies (kill -9 included), so no worker is left serving
    alone; then check it had not died already, before the request took effect. (The signal follows the
    *thread* that started this process: serve starts workers from its event loop's thread, its main one.)"""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        sys.exit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="studio_brain.cli.worker_process", description=__doc__)
    parser.add_argument("--fd", type=int, required=True, help="the inherited listening socket")
    parser.add_argument("--parent", type=int, required=True, help="the pid of the serve process")
    parser.add_argument("--number", type=int, required=True, help="this worker's number, for the logs")
    args = parser.parse_args(argv)
    _stop_with_parent(args.parent)

    import click
    import structlog
    import uvicorn

    from studio_brain.cli.common import forget_where_notice, run, settings_or_exit
    from studio_brain.cli.workers import GracefulServer
    from studio_brain.web.app import create_app

    try:  # the CLI's one-line errors (typer.Exit) become this process's exit code, as under `serve`
        settings = settings_or_exit()
        forget_where_notice()  # serve said which home and database; its workers say nothing of their own
        structlog.contextvars.bind_contextvars(worker=args.number)
        sock = socket.socket(fileno=args.fd)
        app = create_app(settings=settings)
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
        run(GracefulServer(config).serve(sockets=[sock]))
    except click.exceptions.Exit as exit_:
        sys.exit(exit_.exit_code)


if __name__ == "__main__":
    main()
