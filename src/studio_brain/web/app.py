"""The FastAPI application factory: one app serving health, the JSON API, Portal paths and the cockpit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Route

from studio_brain import __version__
from studio_brain.bootstrap import Brain, open_brain
from studio_brain.logging import configure_logging
from studio_brain.mcp.http import MCP_PATH, McpEndpoint
from studio_brain.settings import Settings, load_settings
from studio_brain.web import attestations, health, pages, pages_cloud_writes, pages_staff, portal, signin
from studio_brain.web.api import router as api_router
from studio_brain.web.audit_pages import AuditPageCache
from studio_brain.web.auth import (
    AUTHENTICATING,
    OPENAPI_SECURITY,
    OPENAPI_SECURITY_SCHEMES,
    Authenticator,
    require_principal,
)
from studio_brain.web.conditional import EncodedByVersion
from studio_brain.web.errors import install_error_handlers
from studio_brain.web.fast_lane import install_fast_lane
from studio_brain.web.frozen_routes import freeze_routes
from studio_brain.web.middleware import install_middleware
from studio_brain.web.refusals import refusals_for

OPENAPI_PATH = "/api/v1/openapi.json"


async def _flush_refusals(app: FastAPI, brain: Brain) -> None:
    """At shutdown: the open refusal windows' counts reach the audit log (issue 12 item 8)."""
    await refusals_for(app).flush()
    await brain.gateway.flush_refusals()
    await brain.drafts.flush_refusals()


def _authenticates(dependant: Dependant) -> bool:
    return any(d.call in AUTHENTICATING or _authenticates(d) for d in dependant.dependencies)


class StudioBrainApp(FastAPI):
    """FastAPI, whose OpenAPI document names the ways to authenticate for every operation that does.

    The routes' auth dependencies read the credentials from the request themselves (issue 18,
    ``web/auth.py`` ``authenticating``) instead of through FastAPI's Security() parameters, so FastAPI no
    longer sees the schemes; they are added here, as FastAPI wrote them."""

    def openapi(self) -> dict[str, Any]:
        document = super().openapi()  # FastAPI's own, cached until the routes change
        schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
        for name, scheme in OPENAPI_SECURITY_SCHEMES.items():
            schemes.setdefault(name, jsonable_encoder(scheme, by_alias=True, exclude_none=True))
        paths = document.get("paths", {})
        for route in iter_route_contexts(self.routes):
            dependant = getattr(route, "dependant", None)
            if not (
                isinstance(route.original_route, APIRoute)
                and isinstance(dependant, Dependant)
                and _authenticates(dependant)
            ):
                continue
            for method in getattr(route, "methods", None) or ():
                operation = paths.get(route.path_format, {}).get(method.lower())
                if operation is not None and "security" not in operation:
                    operation["security"] = [dict(requirement) for requirement in OPENAPI_SECURITY]
        return document


def create_app(
    *, brain: Brain | None = None, settings: Settings | None = None, fast_lane: bool = True
) -> FastAPI:
    """An app bound to ``brain`` (tests, ``demo``) or one that opens its own from ``settings`` (``serve``).

    ``fast_lane=False`` leaves every request to FastAPI's routing (the tests compare both, web/fast_lane.py)."""
    if brain is None and settings is None:
        raise ValueError("create_app needs a brain or settings")
    effective = brain.settings if brain is not None else settings
    assert effective is not None

    mcp = McpEndpoint()  # issue 16: agents over MCP at /mcp, authenticated with agent tokens

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if brain is not None:
            async with mcp.running(brain):
                yield
            await _flush_refusals(app, brain)
            return
        assert settings is not None
        async with open_brain(settings, migrate=True) as opened:
            _bind(app, opened)
            async with mcp.running(opened):
                yield
            await _flush_refusals(app, opened)

    app = StudioBrainApp(
        title="Studio Brain",
        version=__version__,
        summary="Local studio brain: daily state, audit log, gated capability proposals, connectors.",
        lifespan=lifespan,
        openapi_url=None,  # served below, behind authentication
        docs_url=None,
        redoc_url=None,
    )
    if brain is not None:
        _bind(app, brain)
    install_error_handlers(app)
    install_middleware(app, effective)
    # FastAPI tries routes one by one, twice per request (once to choose, once to dispatch), at a few
    # microseconds each: the busiest paths come first (issue 18; the native API and the Portal's paths
    # were behind 27 others). No two routers share a path, so the order changes no request's route
    # (tests/unit/test_route_order.py resolves every declared route to itself).
    app.include_router(api_router)
    app.include_router(portal.router)  # the Portal's paths (docs/portal.md)
    app.include_router(health.router)
    app.include_router(attestations.router)  # issue 15: public JWKS of the attestation key
    app.include_router(pages_cloud_writes.router)  # issue 15: propose a cloud write in the cockpit
    app.include_router(signin.router)
    app.include_router(pages_staff.router)
    app.include_router(pages.router)
    pages.install(app)  # static files and the page gate's refusals
    app.router.routes.append(Route(MCP_PATH, endpoint=mcp, methods=["GET", "POST", "DELETE"]))

    @app.get(OPENAPI_PATH, include_in_schema=False, dependencies=[Depends(require_principal)])
    async def openapi_document(request: Request) -> JSONResponse:
        document: dict[str, Any] = request.app.openapi()
        return JSONResponse(document)

    freeze_routes(app)  # every route is declared by now: FastAPI need not re-derive their version per request
    if fast_lane:
        install_fast_lane(app)  # after every route: the lanes are built from the routes FastAPI resolves
    return app


def _bind(app: FastAPI, brain: Brain) -> None:
    app.state.brain = brain
    app.state.auth = Authenticator.for_brain(brain)
    app.state.audit_pages = AuditPageCache()  # with its brain: another brain's chain has other events
    app.state.capability_cards = EncodedByVersion(max_keys=64)  # the Portal's card, one per tenant


def app_from_environment() -> FastAPI:
    """For ``uvicorn studio_brain.web.app:app_from_environment --factory``."""
    settings = load_settings()
    # as `serve` does (cli/common.py): the configured level and the secret-redacting renderer, not
    # structlog's unconfigured default (console rendering of every info line, no redaction)
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    return create_app(settings=settings)
