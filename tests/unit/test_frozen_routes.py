"""The included routers' route tables are frozen once an app is built (issue 18): FastAPI no longer walks every
router's routes on each request to learn whether they changed, and a change after the fact is refused loudly
rather than served stale."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI

from studio_brain.settings import load_settings
from studio_brain.web.api import router as api_router
from studio_brain.web.app import create_app
from studio_brain.web.frozen_routes import RoutesFrozen, freeze_routes, included_routers
from tests.unit.test_route_order import _resolve


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    monkeypatch.setenv("STUDIO_BRAIN_HOME", str(tmp_path))
    return create_app(settings=load_settings())


def test_choosing_a_route_does_not_walk_the_routers_for_their_version(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    walked = 0
    original = APIRouter._get_routes_version

    def counted(self: APIRouter, seen: set[int] | None = None) -> int:
        nonlocal walked
        walked += 1
        return original(self, seen)

    monkeypatch.setattr(APIRouter, "_get_routes_version", counted)
    for method, path in [("POST", "/api/v1/proposals/p-1/approve"), ("GET", "/api/capabilities/audit")]:
        assert _resolve(app, path, method) is not None  # the request found its router, and in it its route
    assert walked == 0


def test_every_included_router_is_frozen_and_a_later_route_is_refused(app: FastAPI) -> None:
    routers = list(included_routers(app.router))
    assert api_router in routers
    assert len(routers) > 10
    assert freeze_routes(app) == 0  # already frozen: building the app did it
    with pytest.raises(RoutesFrozen, match="frozen once an app serving them is built"):
        api_router.add_api_route("/late", lambda: None, methods=["GET"])
    api_router.routes.pop()  # FastAPI appended it before asking for the version: leave the router as it was
