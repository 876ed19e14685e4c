"""Browser tests: a real Studio Brain server (uvicorn, its own thread and loop, a per-test database) and
Debian's Chromium driven by Playwright. Never ``playwright install``: the browser is the system package.

Without Chromium the tests skip with the reason — except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn

from studio_brain.bootstrap import Brain, DatabaseTarget, open_brain
from studio_brain.settings import load_settings
from studio_brain.web.app import create_app
from studio_brain.web.auth import Authenticator

T = TypeVar("T")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
ADMIN_TOKEN = "e2e-admin-token-0123456789abcdef"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "Debian's chromium is not installed (apt-get install -y chromium); browser tests need it"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    # module scope, not session: sync Playwright holds an event loop on this thread while it runs, and
    # the asyncio tests of later modules need the thread free again
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class CockpitServer:
    """A running server: its base URL, the Brain behind it, and a way to run coroutines on its loop."""

    base_url: str
    brain: Brain
    auth: Authenticator
    loop: asyncio.AbstractEventLoop

    def call(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        return asyncio.run_coroutine_threadsafe(make(), self.loop).result(timeout=30)

    def login_url(self) -> str:
        """A one-time break-glass login link (persons sign in with passkeys; tests/fixtures/identity.py)."""
        return self.call(lambda: self.auth.login_url(self.base_url))


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def start_server(
    database_url: str,
    home: Path,
    prepare: Callable[[Brain], Awaitable[None]],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[CockpitServer]:
    """Serve the cockpit over ``database_url`` from a thread until the generator is closed."""
    monkeypatch.setenv("STUDIO_BRAIN_DATABASE_URL", database_url)
    monkeypatch.setenv("STUDIO_BRAIN_HOME", str(home))
    monkeypatch.setenv("STUDIO_BRAIN_ADMIN_TOKEN", ADMIN_TOKEN)
    sock = _free_socket()
    port = sock.getsockname()[1]
    # passkeys need a host name (never an IP address) and are bound to the configured origin
    monkeypatch.setenv("STUDIO_BRAIN_PUBLIC_URL", f"http://localhost:{port}")
    settings = load_settings()
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        async with open_brain(settings, target=DatabaseTarget(url=database_url, embedded=None)) as brain:
            await prepare(brain)
            app = create_app(brain=brain)
            config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
            server = uvicorn.Server(config)
            box.update(brain=brain, app=app, server=server, loop=asyncio.get_running_loop())
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            while not server.started and not serving.done():
                await asyncio.sleep(0.02)
            ready.set()
            await serving

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as err:  # surfaced to the test below
            box["error"] = err
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="cockpit-server", daemon=True)
    thread.start()
    if not ready.wait(60) or "error" in box:
        raise RuntimeError(f"cockpit server did not start: {box.get('error')!r}")
    try:
        yield CockpitServer(
            base_url=settings.cockpit_url,
            brain=box["brain"],
            auth=box["app"].state.auth,
            loop=box["loop"],
        )
    finally:
        box["server"].should_exit = True
        thread.join(30)
        sock.close()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under artifacts/screenshots (kept by CI as a test artifact)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
