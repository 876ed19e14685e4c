"""The app's routers are ordered busiest first (issue 18: FastAPI tries routes one by one). That is only
safe while no route shadows another: every declared route must be the one a request for its own path and
method reaches, whatever the order of the routers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.routing import Match

from studio_brain.settings import load_settings
from studio_brain.web.app import create_app


def _sample_path(path_format: str) -> str:
    # a value each convertor accepts ("str", "int", "path", dates as text): digits suit all of them
    return re.sub(r"{[^}]+}", "7", path_format)


def _leaves(app: FastAPI) -> list[tuple[str, str, Any]]:
    """(sample path, method, the declared endpoint) of every HTTP route, routers included, in no order."""
    found: list[tuple[str, str, Any]] = []

    def walk(candidates: list[Any]) -> None:
        for candidate in candidates:
            if hasattr(candidate, "effective_candidates"):
                walk(candidate.effective_candidates())
                continue
            route = getattr(candidate, "original_route", candidate)
            path = getattr(candidate, "path_format", None) or getattr(route, "path_format", None)
            methods = getattr(route, "methods", None)
            endpoint = getattr(route, "endpoint", None)
            if path is None or not methods or endpoint is None:
                continue  # mounts (static files) have no methods of their own
            for method in sorted(methods - {"HEAD"}):
                found.append((_sample_path(path), method, endpoint))

    walk(list(app.router.routes))
    return found


def _resolve(app: FastAPI, path: str, method: str) -> Any:
    scope: dict[str, Any] = {
        "type": "http",
        "path": path,
        "method": method,
        "root_path": "",
        "headers": [],
        "query_string": b"",
        "app": app,
    }
    for route in app.router.routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            if hasattr(route, "_match"):  # an included router: the route inside it that matched
                _, child, inner, _ = route._match(scope)
                while hasattr(inner, "_match"):
                    _, child, inner, _ = inner._match(scope)
                return getattr(inner, "endpoint", None)
            return child.get("endpoint", getattr(route, "endpoint", None))
    return None


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    monkeypatch.setenv("STUDIO_BRAIN_HOME", str(tmp_path))
    return create_app(settings=load_settings())


def test_every_declared_route_is_the_one_its_path_reaches(app: FastAPI) -> None:
    leaves = _leaves(app)
    assert len(leaves) > 100  # the walk found the routers' routes, not only the top level
    shadowed = [
        (method, path)
        for path, method, endpoint in leaves
        if _resolve(app, path, method) is not endpoint
        # a literal segment declared beside a parameter (/audit/export beside /audit/{seq}) is sampled
        # as the parameter's path; such pairs live in one router, where the order is the author's
        and not _same_router_literal(leaves, path, method, endpoint)
    ]
    assert shadowed == []


def _same_router_literal(leaves: list[tuple[str, str, Any]], path: str, method: str, endpoint: Any) -> bool:
    return any(p == path and m == method and e is not endpoint for p, m, e in leaves)


def test_the_lifecycle_paths_come_before_the_cockpit_pages(app: FastAPI) -> None:
    first = app.router.routes[0]
    assert getattr(getattr(first, "original_router", None), "prefix", None) == "/api/v1"
