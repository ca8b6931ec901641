"""The native API's routers, one per resource (each ``router``; :func:`api.app.create_app`
includes them in :data:`ROUTERS` order, which is the order of the OpenAPI document)."""

from __future__ import annotations

from fastapi import APIRouter

from api.routes import (
    actions,
    cameras,
    cockpit,
    events,
    evidence,
    health,
    ingest,
    kpis,
    roads,
    roster,
    staff,
    staffing,
    stream,
    tokens,
    whatif,
)

ROUTERS: tuple[APIRouter, ...] = (health.router, events.router, actions.router, evidence.router, staff.router,
                                  roster.router, kpis.router, whatif.router, tokens.router, roads.router,
                                  ingest.router, cameras.router, stream.router, cockpit.router,
                                  staffing.router)

__all__ = ["ROUTERS"]
