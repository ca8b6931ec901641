"""Plain-ASGI middleware in front of the app: :class:`SizeLimit` (bodies over the limit are
refused before they are read) and :class:`FastReports` (the hottest route, ``POST
/api/v1/events``, without FastAPI's machinery).

Both are plain ASGI: Starlette's ``BaseHTTPMiddleware`` costs ~1 ms of CPU per request.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import ValidationError as PydanticValidationError

from actors.brain_api import ReportItem
from api.access import REPORTERS, Principal
from api.deps import bearer_token
from api.errors import error_body, error_response
from api.idempotency import idem_key, key_ok
from api.models import MAX_JSON_BYTES, MAX_UPLOAD_BYTES, NewEvent
from api.routes.events import report_item
from api.routes.ingest import ingest_frigate


class SizeLimit:
    """Refuses bodies over the limit: from their Content-Length, before reading them; a body
    sent without one (chunked) is read here up to the limit and handed on, or refused once
    it passes it."""

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
                    receive = replay_body(b"".join(chunks), receive)
            if answer is not None:
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)


class FastReports:
    """``POST /api/v1/events`` and ``POST /api/v1/ingest/frigate``, the hottest routes, as plain
    ASGI: FastAPI's routing, request objects, dependency solving and response machinery were
    about half of the API's CPU per report (``benchmarks/bench_live.py``). Only the plain case
    is served here: a bearer token of a reporting role that the full route has seen lately
    (its cache), a JSON body, a well-formed ``Idempotency-Key``; a report is validated by the
    same :class:`NewEvent` model and becomes the same brain item
    (:func:`api.routes.events.report_item`), a Frigate message takes the route's own path
    (:func:`api.routes.ingest.ingest_frigate`, with the app's camera shards). Everything
    else goes on to the FastAPI route (with the body it read), so its errors and its OpenAPI
    documentation are that route's; errors are answered as the route's exception handlers
    answer them (:func:`api.errors.error_response`).

    Args:
        app: The app behind.
        principal_of: The principal of a token the route has seen lately, else ``None``.
        submit: Sends one report to the brain (the route's coalescer); its JSON answer.
        counts: Counts ``served`` here and ``routed`` to the route.
    """

    PATH = "/api/v1/events"
    FRIGATE = "/api/v1/ingest/frigate"

    def __init__(self, app: Any, *, principal_of: Callable[[str], Principal | None],
                 submit: Callable[[ReportItem], Awaitable[bytes]], counts: dict[str, int]) -> None:
        self.app, self.principal_of, self.submit, self.counts = app, principal_of, submit, counts

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] not in (self.PATH, self.FRIGATE) or scope["method"] != "POST":
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
        if who is None or who.role not in REPORTERS or (key is not None and not key_ok(key)):
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
        if scope["path"] == self.FRIGATE:
            await self._frigate(scope, receive, send, who, key, body)
            return
        try:
            parsed = json.loads(body)
            event = NewEvent.model_validate(parsed) if isinstance(parsed, dict) else None
        except (ValueError, PydanticValidationError):  # (malformed JSON is a ValueError)
            event = None
        if event is None:  # the route says what is wrong, as it always does
            self.counts["routed"] += 1
            await self.app(scope, replay_body(body, receive), send)
            return
        self.counts["served"] += 1
        item = report_item(who, event, None if key is None else idem_key(key, who.id, "POST", self.PATH, body))

        async def created() -> tuple[int, bytes]:
            return 201, await self.submit(item)

        await _answered(scope, receive, send, created)

    async def _frigate(self, scope: dict[str, Any], receive: Any, send: Any, who: Principal, key: str | None,
                       body: bytes) -> None:
        """A Frigate message through the route's own path; a body that is not a JSON object, or
        an app without camera shards, goes on to the route, which says what is wrong."""
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        state: Any = scope["app"].state if "app" in scope else None
        cameras = getattr(state, "cameras", None)
        if not isinstance(payload, dict) or cameras is None:
            self.counts["routed"] += 1
            await self.app(scope, replay_body(body, receive), send)
            return
        self.counts["served"] += 1
        idem = None if key is None else idem_key(key, who.id, "POST", self.FRIGATE, body)
        await _answered(scope, receive, send,
                        lambda: ingest_frigate(cameras, state.creates, payload, idem=idem))


async def _answered(scope: dict[str, Any], receive: Any, send: Any,
                    work: Callable[[], Awaitable[tuple[int, bytes]]]) -> None:
    """``work``'s status and JSON body as the answer; an error it raises answered as the route
    would answer it (anything unforeseen raised on, to the app's handler)."""
    try:
        status, answer = await work()
    except Exception as exc:
        response = error_response(exc)
        if response is None:
            raise
        await response(scope, receive, send)
        return
    await _answer(send, status, answer)


async def _answer(send: Any, status: int, body: bytes) -> None:
    """A JSON answer, sent as plain ASGI."""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def replay_body(body: bytes, receive: Any) -> Any:
    """An ASGI ``receive`` that hands out ``body`` (already read) first, then the real one."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Any:
        return pending.pop() if pending else await receive()
    return replay


__all__ = ["FastReports", "SizeLimit", "replay_body"]
