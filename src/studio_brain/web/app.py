"""The FastAPI application factory: one app serving health, the JSON API, Portal paths and the cockpit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from studio_brain import __version__
from studio_brain.bootstrap import Brain, open_brain
from studio_brain.settings import Settings
from studio_brain.web import health, pages


def create_app(*, brain: Brain | None = None, settings: Settings | None = None) -> FastAPI:
    """An app bound to ``brain`` (tests, ``demo``) or one that opens its own from ``settings`` (``serve``)."""
    if brain is None and settings is None:
        raise ValueError("create_app needs a brain or settings")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if brain is not None:
            app.state.brain = brain
            yield
            return
        assert settings is not None
        async with open_brain(settings, migrate=True) as opened:
            app.state.brain = opened
            yield

    app = FastAPI(
        title="Studio Brain",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    if brain is not None:
        app.state.brain = brain
    app.include_router(health.router)
    app.include_router(pages.router)
    return app
