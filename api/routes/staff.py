"""Staff: members, where they are, the teams and road squads."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import Client, Reader

router = APIRouter(prefix="/api/v1", tags=["staff"])


@router.get("/members")
async def members(who: Reader, client: Client) -> dict[str, Any]:
    """Every member: role, area, squad, grids, on duty, busy."""
    return {"members": await client.members()}


@router.get("/members/positions")
async def positions(who: Reader, client: Client) -> dict[str, Any]:
    """Where every member is now."""
    return {"positions": await client.positions()}


@router.get("/teams")
async def teams(who: Reader, client: Client) -> dict[str, Any]:
    """The three teams and the road squads."""
    return {"teams": await client.teams()}
