"""Staffing from the cockpit: the optimiser as a job (minutes of CPU, in a worker process of its
own), its progress while it runs, then the plan: positions per area and shift, people, and the
cost/service curve."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Planner, load_district
from api.errors import ApiError

router = APIRouter(prefix="/api/v1/staffing", tags=["kpis"])


class StaffingBody(BaseModel):
    """A staffing question: the fewest members of a role per area and shift meeting a target."""

    model_config = ConfigDict(extra="forbid")
    role: str = Field(default="co_governance", pattern="^(co_governance|enforcement)$")
    kpi: str = Field(default="met_1_3_5",
                     pattern="^(met_1_3_5|on_scene_within_180s|responded_within_60s|reinforced_within_300s|no_wait)$")
    target: float = Field(default=0.9, gt=0, lt=1)
    days: float = Field(default=8.0, ge=1, le=28, description="days per simulation (one warm-up day of them)")
    replications: int = Field(default=3, ge=2, le=20)
    verify_replications: int = Field(default=10, ge=10, le=50)
    seed: int = Field(default=0, ge=0, le=2**31)


async def _jobs(request: Request) -> Any:
    state = request.app.state
    if getattr(state, "staffing", None) is None:
        from actors.forks import StaffingJobs
        from scenarios.whatif import scenario_ref

        scenario = state.scenario or scenario_ref(await load_district(request))  # (a district built in code: 422)
        state.staffing = StaffingJobs(str(scenario))
    return state.staffing


@router.post("", status_code=202)
async def start(body: StaffingBody, request: Request, who: Planner) -> JSONResponse:
    """Start the optimiser; ``GET /api/v1/staffing/{job}`` follows it. One job at a time (429)."""
    jobs = await _jobs(request)
    if jobs.running():
        raise ApiError(429, None, "a staffing job is already running; try again when it has finished",
                       {"Retry-After": "30"})
    question = body.model_dump()
    question["warmup_days"] = min(1.0, question["days"] / 2)
    job = jobs.start(question)
    return JSONResponse(jobs.status(job), status_code=202)


@router.get("/{job}")
async def follow(job: str, request: Request, who: Planner) -> dict[str, Any]:
    """A staffing job: ``running`` with its last progress lines, then ``done`` with the plan or
    ``failed`` with the reason."""
    jobs = await _jobs(request)
    if job not in jobs.jobs:
        raise ApiError(404, "job", f"no staffing job '{job}'")
    return dict(jobs.status(job))
