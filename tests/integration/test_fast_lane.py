"""The fast lane (issue 18): the busiest GET routes answer without FastAPI's route walk and dependency solver,
and answer exactly as FastAPI's own path does — for staff, agents with and without the scope, other humans
(refused and audited), anonymous callers and conditional requests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from typing import Any

import fastapi.routing
import httpx
import pytest

from studio_brain.bootstrap import Brain
from studio_brain.domain.audit import ActorType, AuditQuery
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.identity import AuthMethod, Principal
from studio_brain.domain.state import Completeness, SnapshotRun
from studio_brain.web import fast_lane
from studio_brain.web.app import create_app
from studio_brain.web.auth import require_principal
from studio_brain.web.fast_lane import HOT_ROUTES, LaneRefused, build_lanes
from tests.fixtures.auth import TEST_ADMIN_TOKEN, TokenMinter
from tests.integration.test_input_guard_http import agent_headers

pytestmark = pytest.mark.postgres

HOT_PATHS = [path for _, path in HOT_ROUTES]


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000")


@pytest.fixture
async def both(api_brain: Brain) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """The same brain served with the lane and without it (every request through FastAPI's routing)."""
    run = SnapshotRun(
        id="run-lane",
        tenant_id=api_brain.tenant_id,
        snapshot_date=date(2026, 11, 20),
        generated_at=datetime(2026, 11, 20, 6, tzinfo=UTC),
        completeness=Completeness.FULL,
        source="demo",
        document={"counts": {"batchesActive": 3}},
        snapshot_hash=sha256_hex({"counts": {"batchesActive": 3}}),
    )
    await api_brain.state_store.save_run(run)
    async with (
        _client(create_app(brain=api_brain)) as laned,
        _client(create_app(brain=api_brain, fast_lane=False)) as plain,
    ):
        yield laned, plain


@pytest.fixture
def solver_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each time FastAPI's request handler asks its dependency solver for an endpoint (its path)."""
    calls: list[str] = []
    original = fastapi.routing.solve_dependencies

    async def counted(**kwargs: Any) -> Any:
        calls.append(str(kwargs["dependant"].path))
        return await original(**kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    return calls


def _comparable(response: httpx.Response) -> tuple[int, dict[str, str], Any]:
    """Status, headers and body, without what differs between any two requests (ids, dates)."""
    headers = {k: v for k, v in response.headers.items() if k not in {"x-request-id", "date"}}
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "requestId"}
    return response.status_code, headers, body


async def _alike(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient], path: str, headers: dict[str, str], method: str = "GET"
) -> httpx.Response:
    """The same request to the laned app and to FastAPI's path: their answers must be alike; the lane's."""
    laned, plain = both
    first = await laned.request(method, path, headers=headers)
    second = await plain.request(method, path, headers=headers)
    assert _comparable(first) == _comparable(second)
    return first


@pytest.mark.parametrize("path", HOT_PATHS)
async def test_a_hot_read_is_answered_without_fastapis_dependency_solver(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient], tokens: TokenMinter, solver_calls: list[str], path: str
) -> None:
    laned, plain = both
    response = await laned.get(path, headers=tokens.headers("staff-1", staff=True))
    assert response.status_code == 200, response.text
    assert solver_calls == []
    # the same request without the lane goes through the solver (the counter counts)
    assert (await plain.get(path, headers=tokens.headers("staff-1", staff=True))).status_code == 200
    assert solver_calls


@pytest.mark.parametrize("path", HOT_PATHS)
@pytest.mark.parametrize("caller", ["staff", "anonymous", "member", "bad token", "admin"])
async def test_the_lane_answers_as_fastapi_does(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient], tokens: TokenMinter, path: str, caller: str
) -> None:
    headers: Callable[[], dict[str, str]] = {
        "staff": lambda: tokens.headers("staff-1", staff=True),
        "anonymous": dict,
        "member": lambda: tokens.headers("member-1", roles=["member"]),
        "bad token": lambda: {"authorization": "Bearer not-a-token"},
        "admin": lambda: {"x-studio-brain-admin-token": TEST_ADMIN_TOKEN},
    }[caller]
    first = await _alike(both, path, headers())
    assert first.status_code == {"staff": 200, "anonymous": 401, "member": 403, "bad token": 401}.get(
        caller, first.status_code
    )


@pytest.mark.parametrize("path", HOT_PATHS)
async def test_an_agent_needs_its_scope_on_the_lane_as_off_it(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient], api_brain: Brain, path: str
) -> None:
    for scopes in (["proposals:read"], ["state:read", "capabilities:read"]):
        await _alike(both, path, await agent_headers(api_brain, *scopes))


async def test_a_refusal_on_the_lane_is_audited_as_off_it(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient], api_brain: Brain, tokens: TokenMinter
) -> None:
    laned, plain = both
    member = {**tokens.headers("member-1", roles=["member"]), "x-request-id": "lane-refusal"}
    assert (await laned.get("/api/v1/state/latest", headers=member)).status_code == 403
    assert (await plain.get("/api/v1/state/latest", headers=member)).status_code == 403
    page = await api_brain.events.query(api_brain.tenant_id, AuditQuery(action_prefix="http.request.refused"))
    refused = [e for e in page.events if e.request_id.endswith("/lane-refusal")]
    assert len(refused) == 2
    # each app keeps its own window of refusals (its start differs); the rest is the same row
    first, second = ({k: v for k, v in e.metadata.items() if k != "windowStart"} for e in refused)
    assert first == second
    assert (refused[0].action, refused[0].actor_id) == (refused[1].action, refused[1].actor_id)


#: the hot routes that carry an ETag (the Portal card is built per request and carries none)
VERSIONED_PATHS = ["/api/v1/state/latest", "/api/v1/capabilities"]


@pytest.mark.parametrize("path", VERSIONED_PATHS)
async def test_a_conditional_request_is_answered_not_modified_on_the_lane(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient], tokens: TokenMinter, path: str
) -> None:
    staff = tokens.headers("staff-1", staff=True)
    etag = (await both[0].get(path, headers=staff)).headers["etag"]
    first = await _alike(both, path, {**staff, "if-none-match": etag})
    assert first.status_code == 304


@pytest.mark.parametrize(
    "path",
    [
        "/api/capabilities/audit?limit=2&actionPrefix=http.request&approvalState=not_applicable",
        "/api/capabilities/audit?limit=0",
        "/api/capabilities/audit?limit=many",
        "/api/capabilities/audit?approvalState=bogus&limit=10001",
        "/api/capabilities/audit?actorId=" + "x" * 513,
        "/api/v1/audit?newestFirst=true&limit=3",
        "/api/v1/audit?before=5",
        "/api/v1/audit?since=2026-11-20T00:00:00&details=full",
        "/api/v1/audit?details=everything&after=-1",
    ],
)
async def test_a_laned_route_validates_its_query_as_fastapi_does(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient], tokens: TokenMinter, path: str
) -> None:
    first = await _alike(both, path, tokens.headers("staff-1", staff=True))
    assert first.status_code in (200, 400)


async def test_authentication_comes_before_the_querys_validation_on_the_lane(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    for path in ("/api/capabilities/audit?limit=0", "/api/v1/audit?limit=many"):
        assert (await _alike(both, path, {})).status_code == 401


@pytest.mark.parametrize(
    "path", ["/api/v1/state/latest/", "/api/v1/state/latest?x=1", "/api/v1/state/history"]
)
async def test_what_is_not_exactly_a_hot_route_goes_to_fastapi(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient], tokens: TokenMinter, path: str
) -> None:
    await _alike(both, path, tokens.headers("staff-1", staff=True))


async def test_another_method_on_a_hot_path_goes_to_fastapi(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient], tokens: TokenMinter
) -> None:
    staff = tokens.headers("staff-1", staff=True)
    for method in ("HEAD", "POST", "DELETE"):
        assert (await _alike(both, "/api/v1/state/latest", staff, method)).status_code == 405


async def test_dependency_overrides_send_a_hot_route_to_fastapi(
    api_brain: Brain, solver_calls: list[str]
) -> None:
    app = create_app(brain=api_brain)
    someone = Principal(
        tenant_id=api_brain.tenant_id,
        actor_type=ActorType.STAFF,
        actor_id="override",
        via=AuthMethod.FIREBASE,
        roles=frozenset({"staff"}),
    )

    async def override() -> Principal:
        return someone

    app.dependency_overrides[require_principal] = override
    async with _client(app) as client:
        response = await client.get("/api/v1/capabilities")
    # FastAPI's solver answered (it honours overrides); the lane did not bypass them
    assert "/api/v1/capabilities" in solver_calls
    assert response.status_code == 401  # the route's own scope check still asks for a credential


async def test_every_hot_route_takes_the_lane_with_the_routers_dependency_first(api_brain: Brain) -> None:
    lanes = build_lanes(create_app(brain=api_brain, fast_lane=False))
    assert [(lane.method, lane.path) for lane in lanes] == list(HOT_ROUTES)
    native = [lane for lane in lanes if lane.path.startswith("/api/v1/")]
    # the /api/v1 router's own dependency runs first, as FastAPI runs it
    assert all(lane.dependencies[0][1] is require_principal for lane in native)


async def test_a_route_that_needs_more_than_the_request_is_not_laned(api_brain: Brain) -> None:
    app = create_app(brain=api_brain, fast_lane=False)
    with pytest.raises(LaneRefused, match="path params"):
        build_lanes(app, [("GET", "/api/v1/proposals/{proposal_id}")])
    with pytest.raises(LaneRefused, match="does not declare a Response answer"):
        build_lanes(app, [("GET", "/api/v1/proposals")])
    with pytest.raises(LaneRefused, match="body params"):
        build_lanes(app, [("POST", "/api/v1/proposals")])
    with pytest.raises(LaneRefused, match="no such route"):
        build_lanes(app, [("GET", "/api/v1/nowhere")])


async def test_a_query_string_validated_once_is_not_validated_again_and_invalid_ones_always_are(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient], tokens: TokenMinter, monkeypatch: pytest.MonkeyPatch
) -> None:
    validations: list[str] = []
    original = fast_lane.request_params_to_args

    def counted(fields: Any, received: Any) -> Any:
        validations.append(str(received))
        return original(fields, received)

    monkeypatch.setattr(fast_lane, "request_params_to_args", counted)
    laned, plain = both
    staff = tokens.headers("staff-1", staff=True)
    path = "/api/v1/audit?newestFirst=true&limit=5&since=2026-11-01T00:00:00Z"
    first = await laned.get(path, headers=staff)
    second = await laned.get(path, headers=staff)
    assert first.status_code == second.status_code == 200
    assert len(validations) == 1
    assert _comparable(second) == _comparable(await plain.get(path, headers=staff))
    assert (await laned.get("/api/v1/audit?limit=6", headers=staff)).status_code == 200
    assert len(validations) == 2
    for _ in range(2):
        refused = await laned.get("/api/v1/audit?limit=0", headers=staff)
        assert refused.status_code == 400
    assert len(validations) == 4  # an error is never kept


def test_only_immutable_query_values_are_kept_for_the_next_request() -> None:
    assert fast_lane.keepable({"limit": 5, "since": datetime(2026, 11, 1, tzinfo=UTC), "prefix": None})
    assert not fast_lane.keepable({"ids": ["a", "b"]})
