"""The dispatch API: FastAPI over the brain (in this process or in a Ray actor).

Native API under ``/api/v1`` (events and their actions, evidence, members, teams, roster,
positions, KPIs, tokens, camera ingest, a server-sent-event stream), Open311 GeoReport v2
under ``/open311/v2``, ``GET /health`` without a token, OpenAPI docs at ``/docs``.

Access: ``Authorization: Bearer <token>``; roles admin, dispatcher, handler (bound to one
member: acts only on their own assignments), ingest (cameras, sensors, citizen apps),
viewer. Every POST honours an ``Idempotency-Key`` header. Bad input is a 4xx whose body
names the field and the reason: ``{"error": {"field", "reason", "message"}}``.
"""

import asyncio
import contextlib
import inspect
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from actors.brain import Conflict
from actors.client import BrainClient, BrainUnavailable, Coalescer
from actors.forks import ForkFailed
from actors.heap import Refreeze, freeze
from api.idempotency import request_hash
from twin.errors import IllegalTransition, NotFound, TwinError, ValidationError

if TYPE_CHECKING:
    from actors.cameras import CameraShard
    from actors.forks import ForkRunner
    from actors.host import AreaShards

log = logging.getLogger("streetbrain.api")

MAX_JSON_BYTES = 64 * 1024
MAX_TIME = 4_102_444_800.0  # 2100-01-01: later times are typing errors
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
EVIDENCE_TYPES = ("image/jpeg", "image/png", "image/webp", "video/mp4")


#: FastAPI >= 0.16x opens OpenTelemetry spans for every request as soon as any library (Ray
#: does) installs a global provider: ~0.1 ms of CPU per request that nobody reads, and an
#: exporter may be configured from the environment. The twin exports nothing: off.
_NO_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False, "auto_configure": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters else {})


class ApiError(Exception):
    """An error answer: status, the field at fault (or ``None``) and the reason."""

    def __init__(self, status: int, field: str | None, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status, self.field, self.reason, self.headers = status, field, reason, headers


def error_body(status: int, field: str | None, reason: str) -> dict[str, Any]:
    """The one error shape of the native API."""
    message = f"{field}: {reason}" if field else reason
    return {"error": {"status": status, "field": field, "reason": reason, "message": message}}


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value (``None``: not that form)."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def error_response(exc: BaseException) -> JSONResponse | None:
    """The answer to an error raised while serving a request (``None``: not one of ours, a bug)."""
    if isinstance(exc, ApiError):
        return JSONResponse(error_body(exc.status, exc.field, exc.reason), status_code=exc.status, headers=exc.headers)
    if isinstance(exc, ValidationError):
        return JSONResponse(error_body(422, exc.field, exc.reason), status_code=422)
    if isinstance(exc, NotFound):
        return JSONResponse(error_body(404, None, str(exc)), status_code=404)
    if isinstance(exc, IllegalTransition):
        return JSONResponse(error_body(409, "action", str(exc)), status_code=409)
    if isinstance(exc, Conflict):
        return JSONResponse(error_body(409, "Idempotency-Key", str(exc)), status_code=409)
    if isinstance(exc, BrainUnavailable | ForkFailed):
        return JSONResponse(error_body(503, None, str(exc)), status_code=503, headers={"Retry-After": "2"})
    if isinstance(exc, TwinError):
        return JSONResponse(error_body(409, None, str(exc)), status_code=409)
    if isinstance(exc, StarletteHTTPException):
        return JSONResponse(error_body(exc.status_code, None, str(exc.detail)), status_code=exc.status_code)
    return None


# --- request bodies (documented in OpenAPI; unknown fields are refused) -----------------------------
class Point(BaseModel):
    """A GeoJSON point."""

    model_config = ConfigDict(extra="forbid")
    type: str = Field(pattern="^Point$")
    coordinates: list[float] = Field(min_length=2, max_length=2)


class NewEvent(BaseModel):
    """A report: a catalog scenario at a place (``lon``/``lat`` or a GeoJSON ``location``)."""

    model_config = ConfigDict(extra="forbid")
    scenario: str = Field(min_length=1, max_length=20, description="Catalog scenario code, e.g. CM01")
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    location: Point | None = None
    source: str = Field(default="citizen", max_length=20)
    description: str = Field(default="", max_length=2000)
    external_id: str | None = Field(default=None, max_length=200)


class ActionBody(BaseModel):
    """Details of an action; which apply depends on the action."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=500)
    member: str | None = Field(default=None, max_length=40, description="dispatch / reassign: who")
    members: list[str] | None = Field(default=None, max_length=10, description="reinforcement: who (default: nearest)")
    into: str | None = Field(default=None, max_length=40, description="merge: the event this one duplicates")
    result: str | None = Field(default=None, max_length=2000, description="result: what was done")
    evidence: list[str] | None = Field(default=None, max_length=20, description="result: evidence ids")
    departments: list[str] | None = Field(default=None, max_length=10, description="consult: departments")
    tier: int | None = Field(default=None, ge=0, le=5)


class ModeBody(BaseModel):
    """Peacetime or wartime."""

    model_config = ConfigDict(extra="forbid")
    mode: str = Field(pattern="^(peacetime|wartime)$")


class SwapBody(BaseModel):
    """A shift swap."""

    model_config = ConfigDict(extra="forbid")
    member_a: str = Field(min_length=1, max_length=40)
    member_b: str = Field(min_length=1, max_length=40)
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="Local date the shifts start, YYYY-MM-DD")


class WhatIfBody(BaseModel):
    """A what-if fork from the live state."""

    model_config = ConfigDict(extra="forbid")
    hours: float = Field(default=8.0, ge=1 / 60, le=168, description="How far ahead to simulate (1 minute to 1 week)")
    change: dict[str, Any] | None = Field(default=None, description='Scenario overrides, e.g. '
                                          '{"staff.co_governance.count": 60} or {"mode": "wartime"}')
    replications: int = Field(default=10, ge=2, le=100)
    seed: int = Field(default=0, ge=0, le=2**31)


class TokenBody(BaseModel):
    """A new bearer token."""

    model_config = ConfigDict(extra="forbid")
    role: str = Field(pattern="^(admin|dispatcher|handler|ingest|viewer)$")
    member_id: str | None = Field(default=None, max_length=40)
    name: str = Field(default="", max_length=100)


#: URL action name → (workflow action, roles allowed; a handler only on their own event).
ACTIONS: dict[str, tuple[str, frozenset[str]]] = {
    "sign": ("sign", frozenset({"admin", "dispatcher", "handler"})),
    "arrive": ("arrive", frozenset({"admin", "dispatcher", "handler"})),
    "result": ("resolve", frozenset({"admin", "dispatcher", "handler"})),
    "verify": ("verify", frozenset({"admin", "dispatcher"})),
    "escalate": ("escalate", frozenset({"admin", "dispatcher", "handler"})),
    "reinforcement": ("request_reinforcement", frozenset({"admin", "dispatcher", "handler"})),
    "reinforce": ("reinforce", frozenset({"admin", "dispatcher", "handler"})),
    "false-alarm": ("false_alarm", frozenset({"admin", "dispatcher", "handler"})),
    "merge": ("merge", frozenset({"admin", "dispatcher"})),
    "dispatch": ("dispatch", frozenset({"admin", "dispatcher"})),
    "reassign": ("reassign", frozenset({"admin", "dispatcher"})),
    "reopen": ("reopen", frozenset({"admin", "dispatcher"})),
    "withdraw": ("withdraw", frozenset({"admin", "dispatcher"})),
    "consult": ("consult", frozenset({"admin", "dispatcher"})),
}
READERS = frozenset({"admin", "dispatcher", "handler", "viewer"})
REPORTERS = frozenset({"admin", "dispatcher", "ingest"})


class SizeLimit:
    """Refuses bodies over the limit: from their Content-Length, before reading them; a body
    sent without one (chunked) is read here up to the limit and handed on, or refused once
    it passes it (plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` costs ~1 ms of
    CPU per request)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
            path = scope.get("path", "")
            limit = MAX_UPLOAD_BYTES + 64 * 1024 if path.endswith(("/evidence", "/result")) else MAX_JSON_BYTES
            answer = None
            if length is not None:
                if not length.isdigit():
                    answer = JSONResponse(error_body(400, "Content-Length", "must be a whole number"), status_code=400)
                elif int(length) > limit:
                    answer = JSONResponse(error_body(413, "body", f"is {length.decode()} bytes; the limit here is "
                                                                  f"{limit}"), status_code=413)
            elif any(k == b"transfer-encoding" for k, _ in scope["headers"]):
                chunks, size, more = [], 0, True
                while more:
                    message = await receive()
                    if message["type"] != "http.request":  # the client went away
                        return
                    chunks.append(message.get("body", b""))
                    size += len(chunks[-1])
                    more = message.get("more_body", False)
                    if size > limit:
                        answer = JSONResponse(error_body(413, "body", f"is over {limit} bytes, the limit here"),
                                              status_code=413)
                        break
                else:
                    receive = _replay_body(b"".join(chunks), receive)
            if answer is not None:
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)


class FastReports:
    """``POST /api/v1/events``, the hottest route, as plain ASGI: FastAPI's routing, request
    objects, dependency solving and response machinery were about half of the API's CPU per
    report (``benchmarks/bench_live.py``). Only the plain case is served here: a bearer token
    of a reporting role that the full route has seen lately (its cache), a JSON body, a
    well-formed ``Idempotency-Key``; the body is validated by the same :class:`NewEvent`
    model. Everything else goes on to the FastAPI route (with the body it read), so its
    errors and its OpenAPI documentation are that route's; errors from the brain are
    answered as the route's exception handlers answer them (:func:`error_response`)."""

    PATH = "/api/v1/events"

    def __init__(self, app: Any, *, principal_of: Callable[[str], dict[str, Any] | None],
                 submit: Callable[[dict[str, Any]], Any], counts: dict[str, int]) -> None:
        self.app, self.principal_of, self.submit, self.counts = app, principal_of, submit, counts

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != self.PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        auth = key = ctype = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value
            elif name == b"idempotency-key":
                key = value.decode("latin-1")
            elif name == b"content-type":
                ctype = value
        who = None
        if auth is not None and ctype is not None and ctype.split(b";")[0].strip().lower() == b"application/json":
            token = bearer_token(auth.decode("latin-1"))
            who = self.principal_of(token) if token is not None else None
        if who is None or who["role"] not in REPORTERS or (key is not None and not 1 <= len(key) <= 200):
            self.counts["routed"] += 1
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            parsed = json.loads(body)
            event = NewEvent.model_validate(parsed) if isinstance(parsed, dict) else None
        except (ValueError, PydanticValidationError):  # (malformed JSON is a ValueError)
            event = None
        if event is None:  # the route says what is wrong, as it always does
            self.counts["routed"] += 1
            await self.app(scope, _replay_body(body, receive), send)
            return
        self.counts["served"] += 1
        item = {"body": event.model_dump(exclude_none=True), "actor": _actor(who),
                "idem": None if key is None else (key, str(who["id"]), request_hash("POST", self.PATH, body))}
        try:
            answer = await self.submit(item)
        except Exception as exc:
            response = error_response(exc)
            if response is None:
                raise
            await response(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 201,
                    "headers": [(b"content-length", str(len(answer)).encode()),
                                (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer})


def _replay_body(body: bytes, receive: Any) -> Any:
    """An ASGI ``receive`` that hands out ``body`` (already read) first, then the real one."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Any:
        return pending.pop() if pending else await receive()
    return replay


def sse_frame(rec: dict[str, Any]) -> bytes:
    """One log record as a server-sent event (``id`` the log sequence, ``event`` the action)."""
    return f"id: {rec['log_seq']}\nevent: {rec['action']}\ndata: {json.dumps(rec, ensure_ascii=False)}\n\n".encode()


class Streams:
    """Fans the log's new records out to stream subscribers (one poll for all of them)."""

    def __init__(self, client: BrainClient, interval_s: float = 0.2) -> None:
        self.client = client
        self.interval_s = interval_s
        self.subscribers: set[tuple[asyncio.Queue[bytes], Callable[[dict[str, Any]], bool]]] = set()
        self._task: asyncio.Task[None] | None = None
        self.seq = 0

    async def start(self) -> None:
        self.seq = int(await self.client.last_seq())
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                if self.subscribers:
                    batch = await self.client.changes(self.seq, 500)
                    for rec in batch:
                        self.seq = max(self.seq, int(rec["log_seq"]))
                        frame = None  # encoded once, for every subscriber that keeps it
                        for q, keep in list(self.subscribers):
                            if keep(rec) and q.qsize() < 10_000:
                                if frame is None:
                                    frame = sse_frame(rec)
                                q.put_nowait(frame)
                    if len(batch) == 500:
                        continue
                else:
                    self.seq = int(await self.client.last_seq())
            except Exception as exc:  # keep streaming through a brain restart
                log.warning("stream poll failed: %s", exc)
            await asyncio.sleep(self.interval_s)


def create_app(client: BrainClient, *, cameras: "CameraShard | AreaShards | None" = None,
               roads: "AreaShards | None" = None,
               title: str = "streetbrain", tick_s: float | None = 0.25, district: Any = None,
               freeze_heap: bool = False, fast_reports: bool = True, scenario: str | None = None) -> FastAPI:
    """The API app over ``client``.

    Args:
        client: The brain (local or Ray).
        cameras: Frigate mapping for ``/api/v1/ingest/frigate`` (none: that route answers 503).
        roads: Shards holding road units for ``/api/v1/roads`` (default: one in this process, over
            ``client``).
        title: OpenAPI title.
        tick_s: Wall seconds between timer ticks (``None``: the host ticks instead).
        district: The district, for the Open311 service list (default: loaded by name).
        freeze_heap: Keep what exists at start-up out of full garbage collections, and
            freeze long-lived survivors every 30 s (:mod:`actors.heap`; a server process).
        fast_reports: Serve plain reports through :class:`FastReports` (off: every report
            goes through the FastAPI route; the answers are the same).
        scenario: The scenario ``district`` was loaded from (name or folder), for processes
            that load it themselves (the what-if worker); default: ``district`` is shipped.
    """
    streams = Streams(client)
    # Concurrent reports go to the brain together (one call, one locate pass, one group commit).
    creates = Coalescer(lambda items: client.create_events(items, as_json=True))
    principals: dict[str, tuple[float, dict[str, Any] | None]] = {}
    cached: dict[str, Any] = {}  # district, road shards, the what-if fork runner: made on first use

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await streams.start()
        tasks = [asyncio.create_task(_ticker())] if tick_s else []
        if freeze_heap:
            freeze()  # the district, FastAPI and Ray are long-lived: keep them out of full GCs
            tasks.append(asyncio.create_task(_refreezer()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await streams.stop()
            if cached.get("forks") is not None:
                cached["forks"].close()

    async def _refreezer() -> None:
        refreeze = Refreeze()
        while True:
            await asyncio.sleep(1.0)
            refreeze()

    async def _ticker() -> None:
        while True:
            try:
                await client.tick()
            except Exception as exc:
                log.warning("timer tick failed: %s", exc)
            await asyncio.sleep(tick_s or 0.25)

    app = FastAPI(title=title, version="1", lifespan=lifespan, **_NO_TELEMETRY,
                  description="Live dispatch of the street brain: events, 1/3/5-minute timers, escalation, "
                              "a durable event log. Errors name the field and the reason.")
    app.state.client = client
    app.state.streams = streams
    app.state.creates = creates

    # --- errors: always a clear 4xx, never a traceback ------------------------------------------------
    async def _known_error(_r: Request, exc: Exception) -> JSONResponse:
        answer = error_response(exc)
        assert answer is not None  # registered only for the types it answers
        return answer

    for _kind in (ApiError, ValidationError, NotFound, IllegalTransition, Conflict, BrainUnavailable, TwinError,
                  StarletteHTTPException):
        app.add_exception_handler(_kind, _known_error)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_r: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        if err.get("type") == "json_invalid":
            return JSONResponse(error_body(400, "body", f"malformed JSON: {err.get('msg')}"), status_code=400)
        field = ".".join(loc) or "body"
        return JSONResponse(error_body(422, field, str(err.get("msg", "invalid"))), status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(_r: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - a bug
        log.exception("unexpected error")
        return JSONResponse(error_body(500, None, f"internal error ({type(exc).__name__}); it has been logged"),
                            status_code=500)


    # --- who is calling ------------------------------------------------------------------------------
    # The headers are read from the request, not declared as FastAPI ``Header`` parameters: those
    # cost ~0.1 ms of validation each per request (a quarter of the API's time per report). The
    # OpenAPI schema documents both all the same (:func:`_document_headers`).
    def _cached_principal(token: str) -> dict[str, Any] | None:
        hit = principals.get(token)
        return hit[1] if hit is not None and hit[0] >= time.monotonic() else None

    async def principal(request: Request) -> dict[str, Any]:
        authorization = request.headers.get("authorization")
        if not authorization:
            raise ApiError(401, "Authorization", "a bearer token is required", {"WWW-Authenticate": "Bearer"})
        token = bearer_token(authorization)
        if token is None:
            raise ApiError(401, "Authorization", "must be 'Bearer <token>'", {"WWW-Authenticate": "Bearer"})
        hit = principals.get(token)
        if hit is None or hit[0] < time.monotonic():
            who = await client.principal(token)
            principals[token] = hit = (time.monotonic() + 5.0, who)
            if len(principals) > 10_000:
                principals.clear()
        if hit[1] is None:
            raise ApiError(401, "Authorization", "unknown or revoked token", {"WWW-Authenticate": "Bearer"})
        return hit[1]

    Who = Annotated[dict[str, Any], Depends(principal)]

    def require(who: dict[str, Any], roles: frozenset[str], what: str) -> None:
        if who["role"] not in roles:
            raise ApiError(403, None, f"role '{who['role']}' may not {what}; allowed: {', '.join(sorted(roles))}")

    async def idem(request: Request, who: dict[str, Any]) -> tuple[str, str, str] | None:
        key = request.headers.get("idempotency-key")
        if key is None:
            return None
        if not 1 <= len(key) <= 200:
            raise ApiError(400, "Idempotency-Key", "must be 1-200 characters")
        body = await request.body()
        return key, str(who["id"]), request_hash(request.method, request.scope["path"], body)

    # --- routes --------------------------------------------------------------------------------------
    @app.get("/health", tags=["meta"])
    async def health() -> dict[str, Any]:
        """Readiness: answers once the brain has recovered its state (no token needed)."""
        return dict(await client.health())

    @app.post("/api/v1/events", status_code=201, tags=["events"], response_model=dict[str, Any])
    async def create_event(body: NewEvent, request: Request, who: Who) -> Response:
        """Report an event; it is located, merged with an open duplicate or dispatched at once."""
        require(who, REPORTERS, "report events")
        item = {"body": body.model_dump(exclude_none=True), "actor": _actor(who), "idem": await idem(request, who)}
        return Response(await creates.submit(item), status_code=201, media_type="application/json")

    @app.get("/api/v1/events", tags=["events"])
    async def list_events(who: Who, state: str | None = None, area_id: str | None = None,
                          category: str | None = None, assignee: str | None = None,
                          since: Annotated[float | None, Query(ge=0, le=MAX_TIME, description="POSIX seconds")] = None,
                          until: Annotated[float | None, Query(ge=0, le=MAX_TIME, description="POSIX seconds")] = None,
                          limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                          offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
        """Events, newest first, filtered by state (or ``open``), area, category, assignee and report time."""
        require(who, READERS, "list events")
        filters = {"state": state, "area_id": area_id, "category": category, "assignee": assignee, "since": since,
                   "until": until, "limit": limit, "offset": offset}
        items = await client.list_events(filters)
        return {"events": items, "count": len(items), "limit": limit, "offset": offset}

    @app.get("/api/v1/events/{event_id}", tags=["events"])
    async def get_event(event_id: str, who: Who) -> dict[str, Any]:
        """One event with its full audit history."""
        require(who, READERS, "read events")
        return dict(await client.get_event(event_id))

    async def _act(event_id: str, name: str, data: dict[str, Any], request: Request,
                   who: dict[str, Any]) -> dict[str, Any]:
        action, roles = ACTIONS[name]
        require(who, roles, f"'{name}' events")
        if who["role"] == "handler":
            ev = await client.event_of(event_id)
            me = who["member_id"]
            mine = ev["assignee"] == me or (name == "reinforce" and me in ev["reinforcements"])
            if not mine:
                raise ApiError(403, None, f"event {event_id} is not assigned to you ({me})")
        return dict(await client.act(event_id, action, data, actor=_actor(who),
                                     idem=await idem(request, who)))

    for _name in ACTIONS:
        if _name == "result":
            continue

        def _route(name: str = _name) -> None:
            @app.post(f"/api/v1/events/{{event_id}}/{name}", tags=["actions"], name=f"event_{name}",
                      summary=f"{name.replace('-', ' ').capitalize()} ({ACTIONS[name][0]})")
            async def _endpoint(event_id: str, request: Request, who: Who,
                                body: ActionBody | None = None) -> dict[str, Any]:
                data = body.model_dump(exclude_none=True, exclude_defaults=True) if body else {}
                return await _act(event_id, name, data, request, who)
        _route()

    @app.post("/api/v1/events/{event_id}/result", tags=["actions"])
    async def report_result(event_id: str, request: Request, who: Who) -> dict[str, Any]:
        """The handler's result (resolve): JSON ``{"result", "evidence": [ids]}``, or a multipart form
        with ``result`` and one or more ``photo`` files stored as evidence first."""
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            form = await request.form()
            result = form.get("result")
            if not isinstance(result, str) or not result.strip():
                raise ApiError(422, "result", "is required (what was done)")
            ids = []
            for f in form.getlist("photo"):
                if isinstance(f, str):
                    raise ApiError(422, "photo", "must be a file")
                ids.append(await _store_evidence(event_id, f, who))
            data: dict[str, Any] = {"result": result[:2000], "evidence": ids}
        else:
            raw = await request.body()
            try:
                parsed = json.loads(raw or b"{}")
            except ValueError as exc:
                raise ApiError(400, "body", f"malformed JSON: {exc}") from None
            body = ActionBody.model_validate(parsed) if isinstance(parsed, dict) else None
            if body is None:
                raise ApiError(422, "body", "must be a JSON object")
            data = body.model_dump(exclude_none=True, exclude_defaults=True)
            if not data.get("result"):
                raise ApiError(422, "result", "is required (what was done)")
        return await _act(event_id, "result", data, request, who)

    async def _store_evidence(event_id: str, f: Any, who: dict[str, Any]) -> str:
        ctype = (f.content_type or "").split(";")[0]
        if ctype not in EVIDENCE_TYPES:
            raise ApiError(415, "photo", f"content type '{ctype}' not accepted; one of {', '.join(EVIDENCE_TYPES)}")
        data = await f.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise ApiError(413, "photo", f"larger than {MAX_UPLOAD_BYTES} bytes")
        if not data:
            raise ApiError(422, "photo", "is empty")
        return str(await client.put_evidence(event_id, ctype, data))

    @app.post("/api/v1/events/{event_id}/evidence", status_code=201, tags=["events"])
    async def upload_evidence(event_id: str, request: Request, who: Who) -> dict[str, Any]:
        """Upload a photo or clip (multipart field ``photo``); returns its id for the result."""
        require(who, ACTIONS["result"][1], "upload evidence")
        if who["role"] == "handler":
            ev = await client.event_of(event_id)
            if who["member_id"] not in (ev["assignee"], *ev["reinforcements"]):
                raise ApiError(403, None, f"event {event_id} is not assigned to you ({who['member_id']})")
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise ApiError(415, "body", "send multipart/form-data with a 'photo' file")
        form = await request.form()
        f = form.get("photo")
        if f is None or isinstance(f, str):
            raise ApiError(422, "photo", "a file field named 'photo' is required")
        return {"evidence_id": await _store_evidence(event_id, f, who)}

    @app.get("/api/v1/evidence/{evidence_id}", tags=["events"])
    async def get_evidence(evidence_id: str, who: Who) -> Response:
        """The stored bytes of a piece of evidence."""
        require(who, READERS, "read evidence")
        found = await client.evidence(evidence_id)
        if found is None:
            raise ApiError(404, None, f"no evidence '{evidence_id}'")
        return Response(content=found[2], media_type=found[1])

    @app.get("/api/v1/members", tags=["staff"])
    async def members(who: Who) -> dict[str, Any]:
        """Every member: role, area, squad, grids, on duty, busy."""
        require(who, READERS, "list members")
        return {"members": await client.members()}

    @app.get("/api/v1/members/positions", tags=["staff"])
    async def positions(who: Who) -> dict[str, Any]:
        """Where every member is now."""
        require(who, READERS, "see positions")
        return {"positions": await client.positions()}

    @app.get("/api/v1/teams", tags=["staff"])
    async def teams(who: Who) -> dict[str, Any]:
        """The three teams and the road squads."""
        require(who, READERS, "list teams")
        return {"teams": await client.teams()}

    @app.get("/api/v1/roster", tags=["staff"])
    async def roster(who: Who) -> dict[str, Any]:
        """The shift in force and who is on duty."""
        require(who, READERS, "read the roster")
        return dict(await client.roster())

    @app.post("/api/v1/roster/mode", tags=["staff"])
    async def set_mode(body: ModeBody, who: Who) -> dict[str, Any]:
        """Switch peacetime/wartime (wartime: 60/180/300 s targets, emergencies straight to the brigade)."""
        require(who, frozenset({"admin", "dispatcher"}), "switch the mode")
        return dict(await client.set_mode(body.mode, actor=_actor(who)))

    @app.post("/api/v1/roster/swaps", tags=["staff"])
    async def swap_shifts(body: SwapBody, who: Who) -> dict[str, Any]:
        """Two members of one role exchange their shifts on a date; open unsigned work follows."""
        require(who, frozenset({"admin", "dispatcher"}), "swap shifts")
        return dict(await client.swap_shifts(body.model_dump(), actor=_actor(who)))

    @app.get("/api/v1/kpis", tags=["kpis"])
    async def kpis(who: Who, since: Annotated[float | None, Query(ge=0, le=MAX_TIME, description="POSIX seconds")] = None,
                   until: Annotated[float | None, Query(ge=0, le=MAX_TIME, description="POSIX seconds")] = None
                   ) -> dict[str, Any]:
        """The 1/3/5-minute KPIs now, or for events reported in a window (POSIX seconds)."""
        require(who, READERS, "read KPIs")
        if since is not None and until is not None and until <= since:
            raise ApiError(422, "until", "must be after since")
        return dict(await client.kpis(since, until))

    forks = asyncio.Semaphore(1)
    cached.update({"district": district, "roads": roads, "forks": None})

    async def _district() -> Any:
        if cached["district"] is None:
            from scenarios.loader import load_cached

            name = (await client.health())["district"]
            cached["district"] = await asyncio.to_thread(load_cached, name)
        return cached["district"]

    @app.post("/api/v1/whatif", tags=["kpis"])
    async def whatif(body: WhatIfBody, who: Who) -> dict[str, Any]:
        """Fork the live state into the SimPy engine and run the next hours as is and with a
        change (same model and policy code, common random numbers); KPIs with 95% CIs."""
        require(who, READERS - {"handler"}, "run what-if forks")
        if forks.locked():
            raise ApiError(429, None, "a what-if fork is already running; try again when it has finished",
                           {"Retry-After": "10"})
        async with forks:
            runner = await _forks()
            snap = await client.snapshot()
            return await runner.run(snap, hours=body.hours, change=body.change, replications=body.replications,
                                    seed=body.seed)

    async def _forks() -> "ForkRunner":
        """The what-if runner: a worker process of its own at low priority (actors.forks)."""
        if cached["forks"] is None:
            from actors.forks import ForkRunner

            cached["forks"] = ForkRunner(await _district(), source=scenario if district is not None else None)
        app.state.forks = cached["forks"]
        return cached["forks"]  # type: ignore[no-any-return]

    @app.post("/api/v1/tokens", status_code=201, tags=["access"])
    async def create_token(body: TokenBody, who: Who) -> dict[str, Any]:
        """A new bearer token (shown once)."""
        require(who, frozenset({"admin"}), "create tokens")
        return dict(await client.create_token(body.role, member_id=body.member_id, name=body.name))

    async def _roads() -> "AreaShards":
        if cached["roads"] is None:
            from actors.host import AreaShards

            cached["roads"] = AreaShards(await _district(), 1, kinds=("roads",), client=client)
        return cached["roads"]  # type: ignore[no-any-return]

    @app.get("/api/v1/roads", tags=["roads"])
    async def hot_roads(who: Who, area_id: str | None = None,
                        limit: Annotated[int, Query(ge=1, le=200)] = 20) -> dict[str, Any]:
        """Road units (the road is the smallest unit of responsibility) with events open on them
        or reported in the last day, busiest first: each with its squad, who of it is on duty,
        its open events and its repeat alarms."""
        require(who, READERS, "read road units")
        return {"roads": await (await _roads()).hot(limit, area_id)}

    @app.get("/api/v1/roads/{road_id}", tags=["roads"])
    async def road_unit(road_id: str, who: Who) -> dict[str, Any]:
        """One road unit: street, squad and who of it is on duty, open events, reports in the
        last day, repeat alarms (the same scenario again within a week)."""
        require(who, READERS, "read road units")
        return await (await _roads()).road(road_id)

    shard = cameras

    @app.post("/api/v1/ingest/frigate", tags=["ingest"])
    async def frigate(request: Request, who: Who) -> JSONResponse:
        """A Frigate event (``new``/``update``/``end``); reported once its dwell rule is met."""
        require(who, REPORTERS, "ingest camera events")
        try:
            payload = json.loads(await request.body() or b"null")
        except ValueError as exc:
            raise ApiError(400, "body", f"malformed JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise ApiError(422, "body", "must be a JSON object (a Frigate event)")
        if shard is None:
            raise ApiError(503, None, "no camera shard configured")
        if hasattr(shard, "ingest_async"):  # camera-shard actors: do not block the event loop
            body, reason = await shard.ingest_async(payload)
        else:
            body, reason = shard.ingest_with_reason(payload)
        if body is None:
            return JSONResponse({"reported": False, "reason": reason}, status_code=202)
        out = await creates.submit({"body": body, "actor": f"camera:{payload['after']['camera']}",
                                    "idem": await idem(request, who)})
        return Response(b'{"reported":true,' + out[1:], status_code=201, media_type="application/json")

    @app.get("/api/v1/stream", tags=["streams"])
    async def stream(request: Request, who: Who,
                     scope: Annotated[str, Query(description="dashboard | team:<squad id> | handler:<member id>")]
                     = "dashboard") -> StreamingResponse:
        """Server-sent events: every log record in scope as it is written (``data:`` JSON lines)."""
        require(who, READERS, "watch streams")
        keep = await _scope_filter(scope, who)
        q: asyncio.Queue[bytes] = asyncio.Queue()
        entry = (q, keep)
        streams.subscribers.add(entry)

        async def gen() -> AsyncIterator[bytes]:
            try:
                yield b": streetbrain stream " + scope.encode() + b"\n\n"
                while True:
                    try:
                        frame = await asyncio.wait_for(q.get(), timeout=15.0)
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    yield frame
            finally:
                streams.subscribers.discard(entry)

        return StreamingResponse(gen(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    async def _scope_filter(scope: str, who: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
        kind, _, ident = scope.partition(":")
        if who["role"] == "handler" and (kind != "handler" or ident != who["member_id"]):
            raise ApiError(403, "scope", f"a handler may only watch 'handler:{who['member_id']}'")
        if kind == "dashboard" and not ident:
            return lambda rec: True
        if kind == "handler" and ident:
            def mine(rec: dict[str, Any]) -> bool:
                d = rec.get("data") or {}
                return ident in (rec.get("actor"), d.get("member"), rec.get("assignee")) or ident in (d.get("members") or ())
            return mine
        if kind == "team" and ident:
            teams_ = await client.teams()
            areas = next((t["squad"]["area_ids"] for t in teams_ if "squad" in t and t["squad"]["id"] == ident), None)
            if areas is None:
                raise ApiError(422, "scope", f"no squad '{ident}'")
            return lambda rec: rec.get("area_id") in areas
        raise ApiError(422, "scope", "must be 'dashboard', 'team:<squad id>' or 'handler:<member id>'")

    from api.open311 import open311_router

    app.include_router(open311_router(lambda: client, district), prefix="/open311/v2", tags=["open311"])
    if fast_reports:
        app.state.fast_reports = {"served": 0, "routed": 0}
        app.add_middleware(FastReports, principal_of=_cached_principal, submit=creates.submit,
                           counts=app.state.fast_reports)
    app.add_middleware(SizeLimit)  # (added last: outermost)
    _document_headers(app)
    return app


def _actor(who: dict[str, Any]) -> str:
    """The audit log's actor for a principal: a handler's member id, else role:name."""
    if who["role"] == "handler" and who.get("member_id"):
        return str(who["member_id"])
    return f"{who['role']}:{who.get('name') or who['id']}"


def _document_headers(app: FastAPI) -> None:
    """Put the bearer token (a security scheme: the docs get an "Authorize" button) and the
    ``Idempotency-Key`` header of every POST into the OpenAPI schema; the handlers read both
    straight from the request."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
            "type": "http", "scheme": "bearer",
            "description": "A token from POST /api/v1/tokens (the first admin token: STREETBRAIN_ADMIN_TOKEN)"}
        for path, ops in schema.get("paths", {}).items():
            if not path.startswith("/api/v1/"):
                continue
            for method, op in ops.items():
                op["security"] = [{"bearer": []}]
                if method == "post":
                    op.setdefault("parameters", []).append({
                        "name": "Idempotency-Key", "in": "header", "required": False,
                        "description": "Send the same key when retrying: the request acts once and the retry "
                                       "gets the first answer back (1-200 characters).",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 200}})
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
