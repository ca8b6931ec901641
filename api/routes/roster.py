"""The roster: the shift in force, peacetime or wartime, shift swaps."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import Client, Dispatcher, Reader
from api.models import ModeBody, SwapBody

router = APIRouter(prefix="/api/v1/roster", tags=["staff"])


@router.get("")
async def roster(who: Reader, client: Client) -> dict[str, Any]:
    """The shift in force and who is on duty."""
    return dict(await client.roster())


@router.post("/mode")
async def set_mode(body: ModeBody, who: Dispatcher, client: Client) -> dict[str, Any]:
    """Switch peacetime/wartime (wartime: 60/180/300 s targets, emergencies straight to the brigade)."""
    return dict(await client.set_mode(body.mode, actor=who.actor))


@router.post("/swaps")
async def swap_shifts(body: SwapBody, who: Dispatcher, client: Client) -> dict[str, Any]:
    """Two members of one role exchange their shifts on a date; open unsigned work follows."""
    return dict(await client.swap_shifts(body.model_dump(), actor=who.actor))
