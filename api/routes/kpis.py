"""KPIs: the 1/3/5-minute targets, now or for a window of report times."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import Client, Reader
from api.errors import ApiError
from api.models import MAX_TIME

router = APIRouter(prefix="/api/v1", tags=["kpis"])

When = Annotated[float | None, Query(ge=0, le=MAX_TIME, description="POSIX seconds")]


@router.get("/kpis")
async def kpis(who: Reader, client: Client, since: When = None, until: When = None) -> dict[str, Any]:
    """The 1/3/5-minute KPIs now, or for events reported in a window (POSIX seconds)."""
    if since is not None and until is not None and until <= since:
        raise ApiError(422, "until", "must be after since")
    return dict(await client.kpis(since, until))
