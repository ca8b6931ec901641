"""Access tokens: an admin makes bearer tokens for people, cameras and apps."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import Admin, Client
from api.models import TokenBody

router = APIRouter(prefix="/api/v1", tags=["access"])


@router.post("/tokens", status_code=201)
async def create_token(body: TokenBody, who: Admin, client: Client) -> dict[str, Any]:
    """A new bearer token (shown once)."""
    return dict(await client.create_token(body.role.value, member_id=body.member_id, name=body.name))
