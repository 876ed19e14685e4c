"""Frozen route tables: the included routers' routes are fixed once the app is built, and said so to FastAPI.

Why (issue 18): FastAPI (0.16x) builds an included router's effective routes lazily and keeps them until the
router's "routes version" changes — and it recomputes that version on every request, walking every nested
router and testing every route it holds (``_get_routes_version``: about 95 router visits per request, 6 % of
the latest state's profile). Studio Brain's routers get all their routes when their modules are
imported; none is added at run time. So each included router's version is read once and kept, and any later
attempt to change such a router's routes raises at once instead of being served stale.

FastAPI's private hooks are used only where this FastAPI has them (an older one, without the walk, is left as
it is); ``tests/unit/test_frozen_routes.py`` pins both halves: the walk is gone, and a change is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

from fastapi import APIRouter, FastAPI

_FROZEN = "_studio_brain_routes_frozen"


class RoutesFrozen(RuntimeError):
    """A route was added to a router after its app was built."""


def _frozen_version(version: int, seen: set[int] | None = None) -> int:
    return version


def _refuse_change(router: APIRouter) -> None:
    raise RoutesFrozen(
        f"the routes of router {router.prefix or '/'!r} are frozen once an app serving them is built;"
        " add routes when its module is imported (web/frozen_routes.py)"
    )


def included_routers(router: APIRouter) -> Iterator[APIRouter]:
    """Every router included under ``router``, depth first (each once), not ``router`` itself."""
    seen: set[int] = set()

    def walk(parent: APIRouter) -> Iterator[APIRouter]:
        for route in parent.routes:
            child: Any = getattr(route, "original_router", None)  # FastAPI's included-router node
            if isinstance(child, APIRouter) and id(child) not in seen:
                seen.add(id(child))
                yield child
                yield from walk(child)

    return walk(router)


def freeze_routes(app: FastAPI) -> int:
    """Fix the route version of every router ``app`` includes; how many were frozen now (0 on a FastAPI
    without the per-request walk, or when they already were)."""
    routers = list(included_routers(app.router))
    if not all(callable(getattr(r, "_get_routes_version", None)) for r in routers):
        return 0
    if not all(callable(getattr(r, "_mark_routes_changed", None)) for r in routers):
        return 0
    frozen = 0
    # innermost first does not matter: a version is the sum over a router's subtree, read before any is fixed
    versions = [(r, r._get_routes_version()) for r in routers if not getattr(r, _FROZEN, False)]
    for router, version in versions:
        setattr(router, "_get_routes_version", partial(_frozen_version, version))  # noqa: B010
        setattr(router, "_mark_routes_changed", partial(_refuse_change, router))  # noqa: B010
        setattr(router, _FROZEN, True)
        frozen += 1
    return frozen


__all__ = ["RoutesFrozen", "freeze_routes", "included_routers"]
