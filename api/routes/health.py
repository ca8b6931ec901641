"""``GET /health``: readiness, without a token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import Client

router = APIRouter(tags=["meta"])


@router.get("/health")
async def health(client: Client) -> dict[str, Any]:
    """Readiness: answers once the brain has recovered its state (no token needed)."""
    return dict(await client.health())
