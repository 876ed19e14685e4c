"""Root CLI: --version, demo, serve, migrate, config show, doctor; areas register their own groups."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import sys
from typing import Annotated

import typer
import uvicorn

from studio_brain import __version__
from studio_brain.adapters.postgres.migrate import current_revision, head_revision, upgrade_to_head
from studio_brain.bootstrap import Brain, open_brain, provision_database, release_database
from studio_brain.cli import (
    attestations,
    audit,
    backup,
    cloud_writes,
    connectors,
    gateway,
    jobs,
    login,
    mcp,
    safety,
    staff,
    state,
)
from studio_brain.cli.common import EXIT_FAILURE, EXIT_USAGE, fail, print_json, run, settings_or_exit
from studio_brain.cli.doctor import run_doctor
from studio_brain.cli.input_guard import argument_problem
from studio_brain.cli.workers import GracefulServer, listening_socket, worker_environment, workers_running
from studio_brain.logging import get_logger
from studio_brain.settings import Settings, redact_url, reference_markdown
from studio_brain.web.app import create_app

app = typer.Typer(
    name="studio-brain",
    help="Studio Brain: reads the studio's cloud, computes daily state, drafts proposals, gates every action.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

log = get_logger(__name__)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"studio-brain {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Studio Brain command line. Configure with STUDIO_BRAIN_* variables; see `config show`."""
    problem = argument_problem(sys.argv[1:])
    if problem:  # no secret or NUL enters through the command line (issue 12)
        fail(problem, code=EXIT_USAGE)


@config_app.command("show")
def config_show(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Print the effective settings, secrets redacted."""
    settings = settings_or_exit()
    shown = settings.redacted()
    if as_json:
        print_json(shown)
        return
    width = max(len(k) for k in shown)
    for key, value in shown.items():
        typer.echo(f"{key.ljust(width)}  {value}")


@config_app.command("reference")
def config_reference() -> None:
    """Print the reference of every setting as Markdown (the source of docs/configuration.md)."""
    typer.echo(reference_markdown(), nl=False)


@app.command()
def migrate() -> None:
    """Upgrade the database schema to the newest migration (idempotent; safe to run concurrently)."""
    settings = settings_or_exit()

    async def _migrate() -> tuple[str | None, str]:
        target = await asyncio.to_thread(provision_database, settings)
        try:
            return await asyncio.to_thread(upgrade_to_head, target.url)
        finally:
            await asyncio.to_thread(release_database, target)

    before, after = run(_migrate())
    if before == after:
        typer.echo(f"database already at {after}")
    else:
        typer.echo(f"migrated database from {before or 'empty'} to {after}")


@app.command()
def doctor() -> None:
    """Check configuration, database, migration level and Firestore access; print a fix for each failure."""
    code = run_doctor()
    raise typer.Exit(code)


def _ensure_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                fail(
                    f"port {port} on {host} is already in use; stop what holds it or choose another with "
                    "--port or STUDIO_BRAIN_PORT"
                )
            fail(f"cannot listen on {host}:{port}: {err.strerror}")


async def _serve(
    brain: Brain, host: str, port: int, scheduler: object | None = None, *, workers: int = 1
) -> None:
    app = create_app(brain=brain)
    # issue 13: /readyz and the cockpit show whether this process's scheduler loop is alive
    app.state.scheduler = scheduler
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="on")
    server = GracefulServer(config)
    if workers == 1:
        log.info("http.listening", url=f"http://{host}:{port}")
        await server.serve()
        return
    # issue 18: one socket, accepted on by this process and by workers - 1 others (cli/workers.py)
    sock = listening_socket(host, port)
    try:
        env = worker_environment(os.environ, host=host, port=port)
        async with workers_running(sock, workers - 1, env):
            log.info("http.listening", url=f"http://{host}:{port}", processes=workers)
            await server.serve(sockets=[sock])
    finally:
        sock.close()


def _sigterm_as_interrupt() -> None:
    # uvicorn handles SIGTERM itself while serving; before and after, make it unwind like Ctrl-C so
    # the embedded PostgreSQL handle is released and the server stopped.
    def _raise(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _raise)


def _announce(settings: Settings, brain: Brain, host: str, port: int, sign_in: list[str]) -> None:
    target = brain.database_target
    where = (
        f"embedded PostgreSQL in {target.embedded.data_dir}"
        if target.embedded is not None
        else f"external PostgreSQL at {redact_url(target.url)}"
    )
    typer.echo(f"Studio Brain {__version__}")
    typer.echo(f"  data home : {settings.home}")
    typer.echo(f"  database  : {where}")
    typer.echo(f"  tenant    : {settings.tenant_id}")
    typer.echo(f"  listening : http://{host}:{port}  (health: /healthz, readiness: /readyz)")
    if settings.workers > 1:
        typer.echo(f"  processes : {settings.workers} serving HTTP (this one also runs the scheduler)")
    # issue 11: passkey sign-in, the first-owner hint, a break-glass link, the demo's enrolment links
    for line in sign_in:
        typer.echo(line)
    typer.echo("  stop with Ctrl-C")


PortOption = Annotated[int | None, typer.Option("--port", help="Port to listen on [env: STUDIO_BRAIN_PORT].")]
HostOption = Annotated[str | None, typer.Option("--host", help="Address to bind [env: STUDIO_BRAIN_HOST].")]


def _serve_command(*, demo: bool, host: str | None, port: int | None, workers: int | None = None) -> None:
    settings = settings_or_exit()
    host = host or settings.host
    port = port or settings.port
    if not 1 <= port <= 65535:
        fail(f"--port must be between 1 and 65535, got {port}", code=2)
    if workers is not None and not 1 <= workers <= 16:
        fail(f"--workers must be between 1 and 16, got {workers}", code=2)
    # the demo's fake devices and Functions live in its own process: it always serves from one
    workers = 1 if demo else (workers or settings.workers)
    _ensure_port_free(host, port)
    _sigterm_as_interrupt()
    # links and the passkey origin follow the port actually served (issue 11)
    settings = settings.model_copy(update={"host": host, "port": port, "workers": workers})

    async def _main() -> None:
        async with open_brain(settings, migrate=True) as brain:
            if demo:
                await _prepare_demo(brain)
            sign_in = await staff.sign_in_lines(brain, demo=demo)
            if demo:  # issue 16: an agent token and how an MCP client connects
                sign_in += await mcp.demo_agent_lines(brain, staff.DEMO_PEOPLE[0][0])
            _announce(settings, brain, host, port, sign_in)
            # --- scheduler (issue 8): leader-elected jobs run beside the server, stopped when it stops ---
            from studio_brain.services.scheduling import scheduler_running

            async with scheduler_running(
                brain.jobs,
                brain.leader_lock,
                brain.clock,
                enabled=settings.scheduler_enabled,
                leader_check_seconds=settings.scheduler_leader_check_seconds,
            ) as scheduler:
                await _serve(brain, host, port, scheduler, workers=workers)

    try:
        run(_main())
    except KeyboardInterrupt:
        typer.echo("stopped")


async def _prepare_demo(brain: Brain) -> None:
    """Load the demo studio. Later areas add their steps here (demo data, history, fakes, swarms)."""
    # --- StudioState demo studio (issue 4) ---
    computed = await state.prepare_demo_state(brain)
    log.info("demo.state.ready", snapshots_computed=computed)
    # --- connectors fakes (issue 6) ---
    devices = await connectors.prepare_demo_devices(brain)
    # --- cloud writes through the fake Functions (issue 15) ---
    await cloud_writes.prepare_demo_cloud_writes(brain)
    # --- safety watch (issue 17): the fake kiln outlet and doors, scenarios, a loopback alert inbox ---
    await safety.prepare_demo_safety(brain, devices)
    # --- swarms (issue 8) ---
    swarms = await jobs.prepare_demo_swarms(brain)
    log.info("demo.swarms.ran", replayed=swarms["replayed"])


WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help="HTTP processes sharing the port, 1-16; more use more cores [env: STUDIO_BRAIN_WORKERS].",
    ),
]


@app.command()
def serve(host: HostOption = None, port: PortOption = None, workers: WorkersOption = None) -> None:
    """Run the HTTP API and cockpit (migrating the database first)."""
    _serve_command(demo=False, host=host, port=port, workers=workers)


@app.command()
def demo(host: HostOption = None, port: PortOption = None) -> None:
    """Start with the demo studio loaded, then serve the cockpit on http://127.0.0.1:8787."""
    _serve_command(demo=True, host=host, port=port)


for area in (audit, state, gateway, connectors, jobs, safety, backup, staff, login, attestations, mcp):
    area.register(app)


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("PYTHONWARNINGS", "ignore::UserWarning:platformdirs")
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        raise SystemExit(EXIT_FAILURE) from None


__all__ = ["app", "current_revision", "head_revision", "main"]
