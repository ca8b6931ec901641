"""``GET /api/v1/stream``: server-sent events of the log, for the dashboard, a squad or a handler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from actors.client import BrainClient
from api.access import Principal
from api.deps import Client, Reader, StreamHub
from api.errors import ApiError
from api.models import MAX_TIME
from api.streams import Keep

router = APIRouter(prefix="/api/v1", tags=["streams"])

#: Seconds without a record before a keep-alive comment is sent.
KEEP_ALIVE_S = 15.0


@router.get("/stream")
async def stream(who: Reader, client: Client, streams: StreamHub,
                 scope: Annotated[str, Query(description="dashboard | team:<squad id> | handler:<member id>")]
                 = "dashboard") -> StreamingResponse:
    """Server-sent events: every log record in scope as it is written (``data:`` JSON lines)."""
    keep = await scope_filter(scope, who, client)
    q: asyncio.Queue[bytes] = asyncio.Queue()
    entry = (q, keep)
    streams.subscribers.add(entry)

    async def gen() -> AsyncIterator[bytes]:
        try:
            yield b": streetbrain stream " + scope.encode() + b"\n\n"
            while True:
                try:
                    frame = await asyncio.wait_for(q.get(), timeout=KEEP_ALIVE_S)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                yield frame
        finally:
            streams.subscribers.discard(entry)

    return StreamingResponse(gen(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def scope_filter(scope: str, who: Principal, client: BrainClient) -> Keep:
    """Which records a stream of ``scope`` sends (a handler may watch only their own)."""
    kind, _, ident = scope.partition(":")
    if who.role == "handler" and (kind != "handler" or ident != who.member_id):
        raise ApiError(403, "scope", f"a handler may only watch 'handler:{who.member_id}'")
    if kind == "dashboard" and not ident:
        return lambda rec: True
    if kind == "handler" and ident:
        def mine(rec: dict[str, Any]) -> bool:
            d = rec.get("data") or {}
            return ident in (rec.get("actor"), d.get("member"), rec.get("assignee")) or ident in (d.get("members") or ())
        return mine
    if kind == "team" and ident:
        teams = await client.teams()
        areas = next((t["squad"]["area_ids"] for t in teams if "squad" in t and t["squad"]["id"] == ident), None)
        if areas is None:
            raise ApiError(422, "scope", f"no squad '{ident}'")
        return lambda rec: rec.get("area_id") in areas
    raise ApiError(422, "scope", "must be 'dashboard', 'team:<squad id>' or 'handler:<member id>'")


@router.get("/replay")
async def replay_window(who: Reader, client: Client,
                        since: Annotated[float, Query(ge=0, le=MAX_TIME, description="POSIX seconds")],
                        until: Annotated[float, Query(ge=0, le=MAX_TIME, description="POSIX seconds")],
                        limit: Annotated[int, Query(ge=1, le=50_000)] = 20_000) -> dict[str, Any]:
    """Every log record of the events reported in ``[since, until)``, in time order, as the
    stream sends them: what the cockpit's replay draws (``truncated`` when ``limit`` cut it)."""
    return dict(await client.window(since, until, limit))
