"""What-if forks: the live state run ahead in the simulator, as is and with a change."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.deps import Client, Planner, fork_runner
from api.errors import ApiError
from api.models import WhatIfBody

router = APIRouter(prefix="/api/v1", tags=["kpis"])


@router.post("/whatif")
async def whatif(body: WhatIfBody, request: Request, who: Planner, client: Client) -> dict[str, Any]:
    """Fork the live state into the SimPy engine and run the next hours as is and with a
    change (same model and policy code, common random numbers); KPIs with 95% CIs."""
    slot = request.app.state.fork_slot
    if slot.locked():
        raise ApiError(429, None, "a what-if fork is already running; try again when it has finished",
                       {"Retry-After": "10"})
    async with slot:
        runner = await fork_runner(request)
        snap = await client.snapshot()
        return await runner.run(snap, hours=body.hours, change=body.change, replications=body.replications,
                                seed=body.seed)
