"""Request bodies of the native API (documented in OpenAPI; unknown fields are refused).

The brain checks everything again (a report may also come from a camera shard or a Ray
client); these models give a caller a clear 422 naming the field before anything is sent.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from actors.brain_api import AccessRole

#: Largest JSON body (bytes).
MAX_JSON_BYTES = 64 * 1024
#: Largest piece of evidence (bytes); a result or evidence request may be this plus a form's overhead.
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
#: Evidence content types accepted.
EVIDENCE_TYPES = ("image/jpeg", "image/png", "image/webp", "video/mp4")
#: Latest time a query accepts (2100-01-01, POSIX seconds): later times are typing errors.
MAX_TIME = 4_102_444_800.0


class Point(BaseModel):
    """A GeoJSON point."""

    model_config = ConfigDict(extra="forbid")
    type: str = Field(pattern="^Point$")
    coordinates: list[float] = Field(min_length=2, max_length=2)


class NewEvent(BaseModel):
    """A report: a catalog scenario at a place (``lon``/``lat`` or a GeoJSON ``location``)."""

    model_config = ConfigDict(extra="forbid")
    scenario: str = Field(min_length=1, max_length=20, description="Catalog scenario code, e.g. CM01")
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    location: Point | None = None
    source: str = Field(default="citizen", max_length=20)
    description: str = Field(default="", max_length=2000)
    external_id: str | None = Field(default=None, max_length=200)
    evidence: list[str] | None = Field(default=None, max_length=8,
                                       description="Evidence ids (sha256:<hex>) the source kept, e.g. a camera's "
                                                   "annotated frame; upload the content to /events/{id}/evidence")


class ActionBody(BaseModel):
    """Details of an action; which apply depends on the action."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=500)
    member: str | None = Field(default=None, max_length=40, description="dispatch / reassign: who")
    members: list[str] | None = Field(default=None, max_length=10, description="reinforcement: who (default: nearest)")
    into: str | None = Field(default=None, max_length=40, description="merge: the event this one duplicates")
    result: str | None = Field(default=None, max_length=2000, description="result: what was done")
    evidence: list[str] | None = Field(default=None, max_length=20, description="result: evidence ids")
    departments: list[str] | None = Field(default=None, max_length=10, description="consult: departments")
    tier: int | None = Field(default=None, ge=0, le=5)
    holder: str | None = Field(default=None, max_length=40,
                               description="act only if this member still holds the event (else 409)")


class ModeBody(BaseModel):
    """Peacetime or wartime."""

    model_config = ConfigDict(extra="forbid")
    mode: str = Field(pattern="^(peacetime|wartime)$")


class SwapBody(BaseModel):
    """A shift swap."""

    model_config = ConfigDict(extra="forbid")
    member_a: str = Field(min_length=1, max_length=40)
    member_b: str = Field(min_length=1, max_length=40)
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="Local date the shifts start, YYYY-MM-DD")


class WhatIfBody(BaseModel):
    """A what-if fork from the live state."""

    model_config = ConfigDict(extra="forbid")
    hours: float = Field(default=8.0, ge=1 / 60, le=168, description="How far ahead to simulate (1 minute to 1 week)")
    change: dict[str, Any] | None = Field(default=None, description='Scenario overrides, e.g. '
                                          '{"staff.co_governance.count": 60} or {"mode": "wartime"}')
    replications: int = Field(default=10, ge=2, le=100)
    seed: int = Field(default=0, ge=0, le=2**31)


class TokenBody(BaseModel):
    """A new bearer token."""

    model_config = ConfigDict(extra="forbid")
    role: AccessRole
    member_id: str | None = Field(default=None, max_length=40)
    name: str = Field(default="", max_length=100)


__all__ = ["EVIDENCE_TYPES", "MAX_JSON_BYTES", "MAX_TIME", "MAX_UPLOAD_BYTES", "ActionBody", "ModeBody", "NewEvent", "Point", "SwapBody", "TokenBody", "WhatIfBody"]
