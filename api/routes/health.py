"""``GET /health``: readiness, without a token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.deps import Client

router = APIRouter(tags=["meta"])


@router.get("/health")
async def health(client: Client, request: Request) -> dict[str, Any]:
    """Readiness: answers once the brain has recovered its state (no token needed). With an
    MQTT subscription (``serve --mqtt``), ``mqtt`` says whether it is connected, what it has
    received by outcome and how long handling took (:meth:`api.mqtt.FrigateSubscriber.status`)."""
    out = dict(await client.health())
    sub = getattr(request.app.state, "mqtt", None)
    if sub is not None:
        out["mqtt"] = sub.status()
    return out
