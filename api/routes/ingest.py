"""Camera ingest: Frigate events become reports once their scenario's dwell rule is met.

:func:`ingest_frigate` is the one path of a Frigate message into the twin; the HTTP route
here and the MQTT subscriber (:mod:`api.mqtt`) both call it. The body is read by the camera
shards' own checks (:func:`actors.frigate.parse_message`: Frigate's fields as Frigate means
them, every error naming its dotted field); the pydantic models below only document it in the
OpenAPI schema, so that FastAPI does not parse every message twice.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from actors.brain_api import IdemKey
from actors.client import Coalescer
from api.deps import Creates, Idem, Reporter, cameras_of
from api.errors import ApiError

router = APIRouter(prefix="/api/v1/ingest", tags=["ingest"])


# --- the one ingest path ---------------------------------------------------------------------------------
async def ingest_frigate(cameras: Any, creates: Coalescer, payload: Any, *,
                         idem: IdemKey | None = None) -> tuple[int, bytes]:
    """One Frigate message (parsed JSON) through the camera shards and, if it reports, to the
    brain (batched with other reports by ``creates``).

    Args:
        cameras: Area shards holding cameras, or one camera shard in this process.
        creates: The report coalescer.
        payload: The message.
        idem: The request's idempotency key, if any.

    Returns:
        ``(201, the brain's answer with "reported": true)`` once the report is durable, or
        ``(202, {"reported": false, "reason": ...})`` when nothing is to be reported (yet).

    Raises:
        ApiError: 503 without camera shards.
        ValidationError: a malformed message or an unknown camera (a 422 naming the field).
        BrainUnavailable: the brain is restarting (retry).
    """
    if cameras is None:
        raise ApiError(503, None, "no camera shard configured")
    if hasattr(cameras, "ingest_async"):  # area shards (maybe actors): do not block the event loop
        body, reason, camera = await cameras.ingest_async(payload)
    else:  # a camera shard in this process
        body, reason, camera = cameras.ingest_with_reason(payload)
    if body is None:
        return 202, json.dumps({"reported": False, "reason": reason}, ensure_ascii=False).encode()
    out = await creates.submit({"body": body, "actor": f"camera:{camera}", "idem": idem})
    return 201, b'{"reported":true,' + out[1:]


# --- documentation of the body -----------------------------------------------------------------------------
class FrigateObjectDoc(BaseModel):
    """A tracked object's state as Frigate publishes it (``after``/``before``). Only the fields
    below are read; Frigate's others (``snapshot``, ``box``, ``region``, ``attributes``,
    ``stationary``, ``max_severity``, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    id: str = Field(max_length=190, description="Frigate's id of the tracked object",
                    examples=["1607123955.475377-mxklsc"])
    camera: str = Field(description="The camera's name in Frigate: the twin's camera id (K0060) or a name "
                                    "mapped in the scenario's frigate.toml")
    label: str = Field(description="Object class (car, truck, person, ...)")
    sub_label: str | list[str | float | None] | None = Field(
        default=None, description="null, a name (0.12), or [name, score] (0.13+; either may be null)")
    top_score: float = Field(ge=0, le=1, description="The track's best median score; must reach the threshold "
                                                     "(0.5). after.score (one frame's) may exceed it")
    score: float | None = Field(default=None, ge=0, le=1, description="This frame's score (not read)")
    false_positive: bool = Field(default=False, description="A track Frigate still doubts is never reported")
    start_time: float = Field(ge=0, description="POSIX seconds of the first detection")
    frame_time: float = Field(ge=0, description="POSIX seconds of this state's frame")
    end_time: float | None = Field(default=None, ge=0, description="POSIX seconds the track ended (end messages)")
    current_zones: list[str] = Field(description="Frigate zones the object is in: zone kinds (no_parking, "
                                                 "storefront, ...) by name or through frigate.toml; others are "
                                                 "named in the 202 answer's reason")


class FrigateEventDoc(BaseModel):
    """One message of Frigate's ``frigate/events`` MQTT topic (Frigate 0.11 to 0.17)."""

    model_config = ConfigDict(extra="allow")
    type: Literal["new", "update", "end"]
    before: FrigateObjectDoc | None = None
    after: FrigateObjectDoc


class NotReported(BaseModel):
    """A message taken but nothing reported (yet)."""

    reported: Literal[False]
    reason: str = Field(description="Why: dwell not met yet, no scenario for the label and zones, a false positive, "
                                    "a low score; names zones that map to nothing")


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    """``schema`` with its ``#/$defs/...`` references replaced by the definitions."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.rsplit("/", 1)[1]], defs)
        return {k: _inline(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline(v, defs) for v in schema]
    return schema


def _body_schema() -> dict[str, Any]:
    full = FrigateEventDoc.model_json_schema()
    schema = _inline(full, full.get("$defs", {}))
    example = {"type": "update", "before": None, "after": {
        "id": "1772416800.123456-abc123", "camera": "K0060", "label": "car", "sub_label": None,
        "score": 0.93, "top_score": 0.87, "false_positive": False, "start_time": 1772416800.1,
        "frame_time": 1772417105.4, "end_time": None, "current_zones": ["no_parking"],
        "entered_zones": ["no_parking"], "stationary": True}}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema,
                                                                                "example": example}}}}


@router.post("/frigate", status_code=201, openapi_extra=_body_schema(), responses={
    201: {"description": "Reported: the event (or the one this Frigate object already made), durable"},
    202: {"model": NotReported, "description": "Taken, nothing to report (yet)"},
    422: {"description": "A malformed message or an unknown camera; the error names the dotted field"}})
async def frigate(request: Request, who: Reporter, key: Idem, creates: Creates) -> Response:
    """A Frigate event (``new``/``update``/``end``, Frigate's ``frigate/events`` message as it is);
    reported once its scenario's dwell rule is met, one event per Frigate object."""
    try:
        payload = json.loads(await request.body() or b"null")
    except ValueError as exc:
        raise ApiError(400, "body", f"malformed JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ApiError(422, "body", "must be a JSON object (a Frigate event)")
    status, answer = await ingest_frigate(cameras_of(request), creates, payload, idem=key)
    return Response(answer, status_code=status, media_type="application/json")


__all__ = ["FrigateEventDoc", "ingest_frigate", "router"]
