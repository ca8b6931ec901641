"""Camera ingest: Frigate events become reports once their scenario's dwell rule is met."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api.deps import Creates, Idem, Reporter, cameras_of
from api.errors import ApiError

router = APIRouter(prefix="/api/v1/ingest", tags=["ingest"])


@router.post("/frigate")
async def frigate(request: Request, who: Reporter, key: Idem, creates: Creates) -> Response:
    """A Frigate event (``new``/``update``/``end``); reported once its dwell rule is met."""
    try:
        payload = json.loads(await request.body() or b"null")
    except ValueError as exc:
        raise ApiError(400, "body", f"malformed JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ApiError(422, "body", "must be a JSON object (a Frigate event)")
    shard = cameras_of(request)
    if shard is None:
        raise ApiError(503, None, "no camera shard configured")
    if hasattr(shard, "ingest_async"):  # area shards (maybe actors): do not block the event loop
        body, reason = await shard.ingest_async(payload)
    else:  # a camera shard in this process
        body, reason = shard.ingest_with_reason(payload)
    if body is None:
        return JSONResponse({"reported": False, "reason": reason}, status_code=202)
    out = await creates.submit({"body": body, "actor": f"camera:{payload['after']['camera']}", "idem": key})
    return Response(b'{"reported":true,' + out[1:], status_code=201, media_type="application/json")
