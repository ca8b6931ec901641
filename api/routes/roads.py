"""Road units: the road is the smallest unit of responsibility (every road has its squad)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import Reader, Roads

router = APIRouter(prefix="/api/v1/roads", tags=["roads"])


@router.get("")
async def hot_roads(who: Reader, roads: Roads, area_id: str | None = None,
                    limit: Annotated[int, Query(ge=1, le=200)] = 20) -> dict[str, Any]:
    """Road units (the road is the smallest unit of responsibility) with events open on them
    or reported in the last day, busiest first: each with its squad, who of it is on duty,
    its open events and its repeat alarms."""
    return {"roads": await roads.hot(limit, area_id)}


@router.get("/{road_id}")
async def road_unit(road_id: str, who: Reader, roads: Roads) -> dict[str, Any]:
    """One road unit: street, squad and who of it is on duty, open events, reports in the
    last day, repeat alarms (the same scenario again within a week)."""
    return await roads.road(road_id)
