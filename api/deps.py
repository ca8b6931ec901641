"""What the routes depend on, as ``Annotated`` aliases (FastAPI's full-stack template):
the brain (:data:`Client`), the caller (:data:`Who`; :data:`Reader`, :data:`Reporter`,
:data:`Dispatcher`, :data:`Planner`, :data:`Admin` refuse other roles with a 403), the
request's idempotency key (:data:`Idem`), and what the app shares (the report coalescer,
the streams, the district, road units), all kept on ``app.state`` by :func:`install_state`.

The bearer token and the ``Idempotency-Key`` are read from the request rather than
declared as FastAPI ``Header`` parameters: those cost ~0.1 ms of validation each per
request (a quarter of the API's time per report). The OpenAPI schema documents both all the
same (:mod:`api.openapi`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Request

from actors.brain_api import IdemKey
from actors.client import BrainClient, Coalescer
from actors.host import AreaShards
from api.access import ADMINS, DISPATCHERS, PLANNERS, READERS, REPORTERS, Principal, require
from api.errors import ApiError
from api.idempotency import idem_key, key_ok
from api.streams import Streams
from twin.district import District

if TYPE_CHECKING:
    from actors.cameras import CameraShard
    from actors.forks import ForkRunner

#: Seconds a token's principal (or its absence) is remembered.
TOKEN_TTL_S = 5.0
#: Tokens remembered at most (then the cache starts afresh).
TOKEN_CACHE_MAX = 10_000
_BEARER = {"WWW-Authenticate": "Bearer"}


class TokenCache:
    """Principals of bearer tokens seen lately (the route and the fast report path share it)."""

    def __init__(self) -> None:
        self._hits: dict[str, tuple[float, Principal | None]] = {}

    def cached(self, token: str) -> Principal | None:
        """The principal of a token seen within :data:`TOKEN_TTL_S`, or ``None`` (not seen,
        expired, or unknown to the brain)."""
        hit = self._hits.get(token)
        return hit[1] if hit is not None and hit[0] >= time.monotonic() else None

    async def lookup(self, token: str, client: BrainClient) -> Principal | None:
        """The principal of a token, asked of the brain unless seen lately; ``None``: unknown
        or revoked."""
        hit = self._hits.get(token)
        if hit is None or hit[0] < time.monotonic():
            view = await client.principal(token)
            hit = (time.monotonic() + TOKEN_TTL_S, None if view is None else Principal.from_view(view))
            self._hits[token] = hit
            if len(self._hits) > TOKEN_CACHE_MAX:
                self._hits.clear()
        return hit[1]


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value (``None``: not that form)."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def install_state(app: FastAPI, client: BrainClient, *, district: District | None = None,
                  scenario: str | None = None, cameras: CameraShard | AreaShards | None = None,
                  roads: AreaShards | None = None) -> None:
    """Keep on ``app.state`` what the routes share.

    Args:
        app: The app.
        client: The brain.
        district: Its district (``None``: loaded by the name the brain reports, on first use).
        scenario: The scenario ``district`` was loaded from (name or folder), for the what-if
            worker to load itself; default: ``district`` is shipped to it.
        cameras: Frigate mapping for camera ingest (``None``: that route answers 503).
        roads: Shards holding road units (``None``: one in this process, made on first use).
    """
    state = app.state
    state.client = client
    state.tokens = TokenCache()
    # Concurrent reports go to the brain together (one call, one locate pass, one group commit).
    state.creates = Coalescer(lambda items: client.create_events(items, as_json=True))
    state.streams = Streams(client)
    state.district, state.cameras, state.roads = district, cameras, roads
    state.eyes = None  # camera actors running City Eye (set by ``streetbrain serve --cameras``)
    state.scenario = scenario if district is not None else None  # (else the worker is sent the district)
    state.forks = None
    state.staffing = None  # staffing jobs (actors.forks.StaffingJobs), made on first use
    state.fork_slot = asyncio.Semaphore(1)  # one what-if fork at a time
    state.loading = asyncio.Lock()


# --- the brain and the caller ------------------------------------------------------------------------------
async def get_client(request: Request) -> BrainClient:
    """The brain."""
    return request.app.state.client  # type: ignore[no-any-return]


Client = Annotated[BrainClient, Depends(get_client)]


async def principal(request: Request) -> Principal:
    """Who is calling (the bearer token); 401 without a known token."""
    authorization = request.headers.get("authorization")
    if not authorization:
        raise ApiError(401, "Authorization", "a bearer token is required", _BEARER)
    token = bearer_token(authorization)
    if token is None:
        raise ApiError(401, "Authorization", "must be 'Bearer <token>'", _BEARER)
    state = request.app.state
    who = await state.tokens.lookup(token, state.client)
    if who is None:
        raise ApiError(401, "Authorization", "unknown or revoked token", _BEARER)
    return who  # type: ignore[no-any-return]


Who = Annotated[Principal, Depends(principal)]


def role(roles: frozenset[str]) -> Callable[[Request, Principal], Awaitable[Principal]]:
    """A dependency: the caller, if their role is one of ``roles`` (else 403, naming the
    route and the roles allowed)."""
    async def allowed(request: Request, who: Who) -> Principal:
        route = request.scope.get("route")
        require(who, roles, f"{request.method} {getattr(route, 'path', request.url.path)}")
        return who
    return allowed


Reader = Annotated[Principal, Depends(role(READERS))]
Reporter = Annotated[Principal, Depends(role(REPORTERS))]
Dispatcher = Annotated[Principal, Depends(role(DISPATCHERS))]
Planner = Annotated[Principal, Depends(role(PLANNERS))]
Admin = Annotated[Principal, Depends(role(ADMINS))]


async def idem(request: Request, who: Who) -> IdemKey | None:
    """The request's ``Idempotency-Key`` as the brain keeps it (``None``: no key); 400 for a
    key of the wrong length."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not key_ok(key):
        raise ApiError(400, "Idempotency-Key", "must be 1-200 characters")
    return idem_key(key, who.id, request.method, request.scope["path"], await request.body())


Idem = Annotated[IdemKey | None, Depends(idem)]


# --- what the app shares --------------------------------------------------------------------------------
async def get_creates(request: Request) -> Coalescer:
    """The coalescer that batches concurrent reports into few brain calls."""
    return request.app.state.creates  # type: ignore[no-any-return]


Creates = Annotated[Coalescer, Depends(get_creates)]


async def get_streams(request: Request) -> Streams:
    """The log's fan-out to stream subscribers."""
    return request.app.state.streams  # type: ignore[no-any-return]


StreamHub = Annotated[Streams, Depends(get_streams)]


async def district_name(request: Request) -> str:
    """The name of the brain's district (a built-in scenario), as the brain reports it."""
    return str((await request.app.state.client.health())["district"])


async def load_district(request: Request, name: str | None = None) -> District:
    """The brain's district: the one the app was given, else loaded (once) by its name
    (``name``, or asked of the brain)."""
    state = request.app.state
    if state.district is None:
        async with state.loading:
            if state.district is None:
                from scenarios.loader import load_cached

                name = name or await district_name(request)
                state.district = await asyncio.to_thread(load_cached, name)
    return state.district  # type: ignore[no-any-return]


async def get_roads(request: Request) -> AreaShards:
    """The shards holding road units (one in this process over the brain, made on first use,
    unless the app was given some)."""
    state = request.app.state
    if state.roads is None:
        state.roads = AreaShards(await load_district(request), 1, kinds=("roads",), client=state.client)
    return state.roads  # type: ignore[no-any-return]


Roads = Annotated[AreaShards, Depends(get_roads)]


async def fork_runner(request: Request) -> ForkRunner:
    """The what-if runner: a worker process of its own at low priority (:mod:`actors.forks`),
    started on first use."""
    state = request.app.state
    if state.forks is None:
        from actors.forks import ForkRunner

        state.forks = ForkRunner(await load_district(request), source=state.scenario)
    return state.forks  # type: ignore[no-any-return]


def cameras_of(request: Request) -> Any:
    """The Frigate mapping (a camera shard, or area shards holding cameras), or ``None``."""
    return request.app.state.cameras


__all__ = ["Admin", "Client", "Creates", "Dispatcher", "Idem", "Planner", "Reader", "Reporter", "Roads",
           "StreamHub", "TokenCache", "Who", "bearer_token", "district_name", "fork_runner", "get_client",
           "install_state", "load_district", "principal", "role"]
