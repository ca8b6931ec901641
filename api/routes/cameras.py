"""Camera streams: what the City Eye camera actors are doing with each camera's video."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.deps import Reader

router = APIRouter(prefix="/api/v1/cameras", tags=["cameras"])


@router.get("/streams")
async def streams(request: Request, who: Reader) -> dict[str, Any]:
    """Each camera with a video source (``streetbrain serve --cameras FILE``): its source
    (password masked), state (``connecting``, ``online``, ``offline``, ``ended``), frames
    analysed and dropped, the last frame's and the outage's times (twin POSIX seconds), the
    error of a dead stream, reconnect attempts, alarms raised and the events they became.
    Empty when no camera has video."""
    eyes = request.app.state.eyes
    rows = [] if eyes is None else await eyes.status()
    return {"streams": rows, "count": len(rows), "online": sum(r["state"] == "online" for r in rows),
            "offline": sum(r["state"] == "offline" for r in rows)}
