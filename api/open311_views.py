"""Open311 GeoReport v2 views of the street brain: services and service requests.

What :mod:`api.open311`'s routes show, apart from the routing: the district's
citizen-reportable scenarios as services, its events as service requests (status, notes for
the citizen, address from the road and regions, ``media_url``), its streets for requests
located by ``address_string`` (:mod:`twin.geocode`), and the error the routes answer with.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Any

from actors.brain_api import EVIDENCE_ID
from twin.catalog import ScenarioSpec, Source
from twin.district import District
from twin.errors import NotFound
from twin.geocode import Gazetteer, gazetteer_from_district

#: Event states shown as ``closed``.
CLOSED_STATES = frozenset({"closed", "merged", "false_alarm"})

#: Event sources whose stored evidence is never published as a ``media_url`` (a camera's
#: frames show passers-by).
UNPUBLISHED_SOURCES = frozenset({"camera"})

_ROLE_WORDS = {"grid_worker": "a grid worker (网格员)", "co_governance": "a co-governance member (共治队员)",
               "enforcement": "an enforcement officer (执法队员)"}
_STATE_NOTES = {
    "reported": "Received; waiting for a free handler.",
    "dispatched": "Dispatched to {role}; waiting for them to accept.",
    "signed": "Accepted by {role}, who is on the way.",
    "on_scene": "{Role} is on scene.",
    "reinforcement_requested": "{Role} is on scene; reinforcement has been requested.",
    "resolved": "Handled on scene; waiting for verification.",
    "escalated": "Escalated to the next tier of handlers.",
    "consultation": "Referred to a joint consultation of departments (会商).",
    "closed": "Closed after verification.",
    "withdrawn": "Closed before anyone handled it: the problem went away or the report was withdrawn.",
    "merged": "Closed as a duplicate of request {merged_into}, which follows the same problem.",
    "false_alarm": "Closed: on inspection there was nothing to handle.",
}


class Open311Error(Exception):
    """An error answer in the Open311 shape.

    Args:
        status: HTTP status, repeated as the error's ``code``.
        description: What is wrong; starts with the field at fault where there is one.
    """

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


# --- the static part: services and place names ----------------------------------------------------------
class ServiceDirectory:
    """Services and place names of one district: its citizen-reportable scenarios, its streets
    (for ``address_string``), and its events as service requests."""

    def __init__(self, district: District) -> None:
        self.district = district
        self.tz: tzinfo = district.roster.tz
        self.specs: dict[str, ScenarioSpec] = {s.code: s for s in district.catalog if Source.CITIZEN in s.sources}
        self._gazetteer: Gazetteer | None = None

    @property
    def gazetteer(self) -> Gazetteer:
        """The district's streets by name (built on first use)."""
        if self._gazetteer is None:
            self._gazetteer = gazetteer_from_district(self.district)
        return self._gazetteer

    def shown(self, code: str, private: bool) -> bool:
        """Whether requests of scenario ``code`` are shown: a service, and public unless the caller
        may see private ones."""
        spec = self.specs.get(code)
        return spec is not None and (spec.public or private)

    def service(self, spec: ScenarioSpec) -> dict[str, Any]:
        cat = self.district.catalog.categories[spec.category]
        return {
            "service_code": spec.code,
            "service_name": service_name(spec),
            "description": spec.description or None,
            "metadata": False,
            "type": "realtime",
            "keywords": ", ".join((spec.name_zh, spec.category, cat.name_zh, spec.severity.value)),
            "group": f"{cat.name_zh} ({cat.name_en})",
        }

    def spec_of(self, code: str, field: str = "service_code") -> ScenarioSpec:
        """The service of a code, or a 400 naming ``field``."""
        spec = self.specs.get(code)
        if spec is None:
            if code in self.district.catalog:
                raise Open311Error(400, f"{field}: '{code}' is not a service citizens can report; see services.json")
            raise Open311Error(400, f"{field}: unknown service '{code}'; see services.json")
        return spec

    def address(self, view: Mapping[str, Any]) -> str:
        """Road, grid, community, area and district, most specific first."""
        parts = []
        road_id = view.get("road_id")
        if road_id:
            try:
                name = self.district.roads.segment(road_id).name
            except (KeyError, NotFound):
                name = ""
            parts.append(f"{name} ({road_id})" if name else f"road {road_id}")
        regions = self.district.regions.by_id
        for key in ("grid_id", "community_id", "area_id"):
            rid = view.get(key)
            if rid:
                r = regions.get(rid)
                parts.append(r.name if r is not None and r.name else rid)
        parts.append(self.district.title)
        return ", ".join(parts)

    def request(self, view: Mapping[str, Any], media: str = "") -> dict[str, Any]:
        """An event view as an Open311 service request; ``media`` is the URL under which stored
        evidence is served (:func:`api.open311.media_base`)."""
        spec = self.specs[view["scenario"]]
        state = str(view["state"])
        closed = state in CLOSED_STATES
        lon, lat = view["location"]["coordinates"]
        updated = view.get("closed_at") if closed and view.get("closed_at") else view.get("updated_at")
        expected = None
        if not closed:
            reported = datetime.fromisoformat(view["reported_at"])
            expected = (reported + timedelta(seconds=spec.on_scene_s + spec.handling_min * 60)).isoformat(
                timespec="milliseconds")
        return {
            "service_request_id": view["id"],
            "status": "closed" if closed else "open",
            "status_notes": status_notes(view),
            "service_name": service_name(spec),
            "service_code": spec.code,
            "description": view.get("description") or None,
            "agency_responsible": spec.department,
            "service_notice": service_notice(spec, view),
            "requested_datetime": view["reported_at"],
            "updated_datetime": updated,
            "expected_datetime": expected,
            "address": self.address(view),
            "address_id": None,
            "zipcode": None,
            "lat": float(lat),
            "long": float(lon),
            "media_url": media_url(view, media),
        }


def media_url(view: Mapping[str, Any], media: str) -> str | None:
    """A request's ``media_url``: the link the citizen gave, else the first stored photo of the
    event under ``media`` (none for a camera's event: its frames are not published)."""
    evidence = [str(e) for e in view.get("evidence") or ()]
    for e in evidence:
        if e.startswith(("http://", "https://")):
            return e
    if media and view.get("source") not in UNPUBLISHED_SOURCES:
        for e in evidence:
            if EVIDENCE_ID.match(e):
                return media + e
    return None


def service_name(spec: ScenarioSpec) -> str:
    """``出店经营 (Shop operating outside its storefront)``."""
    return f"{spec.name_zh} ({spec.name_en})"


def status_notes(view: Mapping[str, Any]) -> str:
    """What the state of an event means to the citizen who reported it."""
    state = str(view["state"])
    if state == "closed" and not view.get("resolved_at"):
        state = "withdrawn"  # closed without being handled (Action.WITHDRAW)
    role = _ROLE_WORDS.get(str(view.get("handler_role")), "a handler")
    text = _STATE_NOTES.get(state, state).format(role=role, Role=role[0].upper() + role[1:],
                                                 merged_into=view.get("merged_into") or "?")
    result = view.get("result")
    if state == "closed" and result:
        text += f" Result: {result}"
    return text


def service_notice(spec: ScenarioSpec, view: Mapping[str, Any]) -> str:
    """What the citizen can expect."""
    if view.get("state") == "merged" and view.get("merged_into"):
        return (f"The same problem was already reported nearby as request {view['merged_into']}; "
                "this report was added to it.")
    return (f"{spec.department} answers for this. Target: someone on scene within "
            f"{_minutes(spec.on_scene_s)} of the report.")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


__all__ = ["CLOSED_STATES", "UNPUBLISHED_SOURCES", "Open311Error", "ServiceDirectory", "media_url", "service_name",
           "service_notice", "status_notes"]
