"""Events: report one, list them, read one with its history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from actors.brain_api import IdemKey, ReportItem
from api.access import Principal
from api.deps import Client, Creates, Idem, Reader, Reporter
from api.models import MAX_TIME, NewEvent

router = APIRouter(prefix="/api/v1/events", tags=["events"])

When = Annotated[float | None, Query(ge=0, le=MAX_TIME, description="POSIX seconds")]


def report_item(who: Principal, body: NewEvent, idem: IdemKey | None) -> ReportItem:
    """A report as the brain takes it (this route and :class:`api.fast.FastReports` both send this)."""
    return {"body": body.model_dump(exclude_none=True), "actor": who.actor, "idem": idem}


@router.post("", status_code=201, response_model=dict[str, Any])
async def create_event(body: NewEvent, who: Reporter, key: Idem, creates: Creates) -> Response:
    """Report an event; it is located, merged with an open duplicate or dispatched at once."""
    return Response(await creates.submit(report_item(who, body, key)), status_code=201,
                    media_type="application/json")


@router.get("")
async def list_events(who: Reader, client: Client, state: str | None = None, area_id: str | None = None,
                      category: str | None = None, assignee: str | None = None, since: When = None,
                      until: When = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                      offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    """Events, newest first, filtered by state (or ``open``), area, category, assignee and report time."""
    filters = {"state": state, "area_id": area_id, "category": category, "assignee": assignee, "since": since,
               "until": until, "limit": limit, "offset": offset}
    items = await client.list_events(filters)
    return {"events": items, "count": len(items), "limit": limit, "offset": offset}


@router.get("/{event_id}")
async def get_event(event_id: str, who: Reader, client: Client) -> dict[str, Any]:
    """One event with its full audit history."""
    return dict(await client.get_event(event_id))
