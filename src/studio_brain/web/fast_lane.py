"""The fast lane: the busiest GET routes, answered without FastAPI's per-request routing and dependency solving.

Why (issue 18): for the latest state, FastAPI's route walk and its dependency solver were about a third of
the server's Python per request (bench/api_load.py --profile), for three dependencies that each take only
the request. The lane does what FastAPI would do for such a route, and nothing else:

- the route is chosen by its exact method and path (``HOT_ROUTES``), once its lane was built at start-up
  from the route FastAPI itself resolves, with the router's dependencies first and then the route's, in
  FastAPI's order;
- each dependency is awaited with the request, once per request per callable (FastAPI's ``use_cache``);
- then the endpoint's query parameters are validated by FastAPI's own function (``request_params_to_args``),
  and any error is raised as FastAPI raises it (``RequestValidationError``, after authentication, as there);
  a query string validated before is not validated again: its values are kept per lane (the last
  :data:`KEPT_QUERIES` strings) when every one is immutable — the Portal repeats the same few URLs;
- the endpoint is awaited with all of them and the request; it is declared to answer a ``Response``, so
  there is no response model to serialise;
- exceptions take the app's handlers exactly as on FastAPI's path (Starlette's ``request_response``
  wrapper, which FastAPI's own route uses too).

A route is laned only when that is all it needs: no path, header, cookie or body parameter, no query
parameter on a dependency, no sub-dependency, no generator dependency, no security scopes, no ``Response`` or
background-task parameter, and a declared ``Response`` answer (:func:`lane_refusal` says why not). Anything else — another method, a trailing slash, a ``root_path``,
dependency overrides (tests) — goes to FastAPI unchanged. The OpenAPI document is FastAPI's: the lane
changes no declaration. ``tests/integration/test_fast_lane.py`` compares both paths answer for answer.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import Enum
from typing import Any, get_type_hints

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import request_response
from starlette.types import ASGIApp, Receive, Scope, Send

#: (method, path) of the routes the lane answers: the cockpit's and the Portal's most frequent reads
HOT_ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", "/api/v1/state/latest"),
    ("GET", "/api/v1/capabilities"),
    ("GET", "/api/capabilities"),
    ("GET", "/api/capabilities/audit"),
    ("GET", "/api/v1/audit"),
)

_Dependency = Callable[[Request], Awaitable[Any]]

#: validated query strings kept per lane (the least recently used goes)
KEPT_QUERIES = 256
#: the value types a kept query may hold: an endpoint cannot change them for the next request
_IMMUTABLE = (str, int, float, bool, type(None), datetime, date, time, timedelta, Enum, bytes)


def keepable(values: Mapping[str, Any]) -> bool:
    """True when every validated value is immutable, so one request's values can serve the next."""
    return all(isinstance(v, _IMMUTABLE) for v in values.values())


class LaneRefused(Exception):
    """A hot route needs more than the lane does (the reason is the message)."""


def lane_refusal(dependant: Dependant) -> str | None:
    """Why ``dependant`` (an endpoint's) cannot take the lane, or None when it can."""
    if not _coroutine(dependant.call):
        return "the endpoint is not a coroutine function"
    own = _params_refusal(dependant, "the endpoint", query=True)
    if own is not None:
        return own
    try:
        answer = get_type_hints(dependant.call).get("return")
    except (NameError, TypeError) as err:
        return f"the endpoint's annotations cannot be resolved ({err})"
    if not (isinstance(answer, type) and issubclass(answer, Response)):
        return "the endpoint does not declare a Response answer (FastAPI serialises its model)"
    for sub in dependant.dependencies:
        name = getattr(sub.call, "__qualname__", repr(sub.call))
        if not _coroutine(sub.call):
            return f"dependency {name} is not a coroutine function"
        if sub.dependencies:
            return f"dependency {name} has dependencies of its own"
        if sub.request_param_name is None:
            return f"dependency {name} does not take the request"
        if not sub.use_cache:
            return f"dependency {name} asks not to be cached"
        if sub.own_oauth_scopes or sub.parent_oauth_scopes:
            return f"dependency {name} has security scopes"
        refused = _params_refusal(sub, f"dependency {name}")
        if refused is not None:
            return refused
        if len(inspect.signature(sub.call).parameters) != 1:  # type: ignore[arg-type]
            return f"dependency {name} takes more than the request"
    return None


def _coroutine(call: object) -> bool:
    return inspect.iscoroutinefunction(call) and not inspect.isasyncgenfunction(call)


def _params_refusal(dependant: Dependant, what: str, *, query: bool = False) -> str | None:
    kinds = ["path_params", "header_params", "cookie_params", "body_params"]
    if not query:
        kinds.insert(1, "query_params")
    for kind in kinds:
        if getattr(dependant, kind):
            return f"{what} has {kind.replace('_', ' ')}"
    for special in (
        "websocket_param_name",
        "http_connection_param_name",
        "response_param_name",
        "background_tasks_param_name",
        "security_scopes_param_name",
    ):
        if getattr(dependant, special) is not None:
            return f"{what} takes a {special.removesuffix('_param_name').replace('_', ' ')}"
    return None


@dataclass(frozen=True)
class Lane:
    """One hot route: its dependencies in FastAPI's order, its endpoint, and the ASGI app that runs them."""

    method: str
    path: str
    route: APIRoute
    dependencies: tuple[tuple[str | None, _Dependency], ...]
    #: the endpoint's query parameters, FastAPI's own field objects (validated by FastAPI's function)
    query: tuple[Any, ...]
    request_param: str | None
    endpoint: Callable[..., Awaitable[Any]]

    def asgi(self) -> ASGIApp:
        dependencies, query, request_param, endpoint = (
            self.dependencies,
            self.query,
            self.request_param,
            self.endpoint,
        )

        kept: OrderedDict[bytes, dict[str, Any]] = OrderedDict()

        def validated(request: Request) -> dict[str, Any]:
            raw: bytes = request.scope.get("query_string", b"")
            found = kept.get(raw)
            if found is not None:
                kept.move_to_end(raw)
                return found
            # FastAPI's own validation and error list: the same 400 through the app's handler
            checked, errors = request_params_to_args(query, request.query_params)
            if errors:
                raise RequestValidationError(errors)
            if keepable(checked):
                kept[raw] = checked
                if len(kept) > KEPT_QUERIES:
                    kept.popitem(last=False)
            return checked

        async def handle(request: Request) -> Response:
            solved: dict[_Dependency, Any] = {}
            values: dict[str, Any] = {}
            for name, call in dependencies:
                if call in solved:
                    value = solved[call]
                else:
                    value = solved[call] = await call(request)
                if name is not None:
                    values[name] = value
            if query:
                values.update(validated(request))
            if request_param is not None:
                values[request_param] = request
            answer = await endpoint(**values)
            if not isinstance(answer, Response):  # declared a Response (lane_refusal): a bug, said loudly
                raise TypeError(f"the fast lane's endpoint {endpoint.__qualname__} must answer a Response")
            return answer

        return request_response(handle)


def build_lanes(app: FastAPI, wanted: Iterable[tuple[str, str]] = HOT_ROUTES) -> list[Lane]:
    """The lanes of ``wanted``, from the routes FastAPI resolves; LaneRefused if one is missing or unfit."""
    found: dict[tuple[str, str], Lane] = {}
    wanted = tuple(wanted)
    for context in iter_route_contexts(app.routes):
        original = context.original_route
        if not isinstance(original, APIRoute):
            continue
        for method in context.methods or ():
            key = (method, context.path_format or "")
            if key not in wanted or key in found:
                continue
            dependant = context.dependant
            refused = lane_refusal(dependant)
            if refused is not None:
                raise LaneRefused(f"{method} {key[1]}: {refused}")
            assert dependant.call is not None  # lane_refusal checked it is a coroutine function
            found[key] = Lane(
                method=method,
                path=key[1],
                route=original,
                dependencies=tuple((sub.name, sub.call) for sub in dependant.dependencies),
                query=tuple(dependant.query_params),
                request_param=dependant.request_param_name,
                endpoint=dependant.call,
            )
    missing = [f"{m} {p}" for m, p in wanted if (m, p) not in found]
    if missing:
        raise LaneRefused(f"no such route: {', '.join(missing)}")
    return [found[key] for key in wanted]


class FastLane:
    """ASGI: the router's own app, with the hot routes answered before FastAPI's route walk."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI, lanes: Iterable[Lane]) -> None:
        self._app = app
        self._fastapi = fastapi_app
        self._lanes = {(lane.method, lane.path): (lane, lane.asgi()) for lane in lanes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            hit = self._lanes.get((scope["method"], scope["path"]))
            # overrides are the tests' way to swap a dependency: FastAPI's solver honours them, so it answers
            if hit is not None and not self._fastapi.dependency_overrides:
                lane, asgi = hit
                # what FastAPI's routing puts in the scope for a matched route
                scope["route"] = lane.route
                scope["endpoint"] = lane.route.endpoint
                scope["path_params"] = {}
                await asgi(scope, receive, send)
                return
        await self._app(scope, receive, send)


def install_fast_lane(app: FastAPI, wanted: Iterable[tuple[str, str]] = HOT_ROUTES) -> list[Lane]:
    """Put the lanes of ``wanted`` in front of ``app``'s route walk (inside every middleware); the lanes."""
    lanes = build_lanes(app, wanted)
    router = app.router
    # Starlette's Router calls ``middleware_stack`` (its own app, wrapped by any router middleware)
    router.middleware_stack = FastLane(router.middleware_stack, app, lanes)
    return lanes


__all__ = [
    "HOT_ROUTES",
    "FastLane",
    "Lane",
    "LaneRefused",
    "build_lanes",
    "install_fast_lane",
    "lane_refusal",
]
