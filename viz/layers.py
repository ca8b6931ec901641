"""Map layers of a district and of what happens in it: pure functions from twin objects and
results to pydeck layers. They build layers and never render: a notebook shows them with
:func:`viz.deck.district_deck` (``Deck.show()`` in Jupyter, or :func:`viz.deck.to_html`, a
page that needs no network), and the cockpit draws the same base layers in the browser.

Base map (the district's own geometry; no tiles):

* :func:`boundary_layer`, :func:`areas_layer` — outlines;
* :func:`grids_layer` — grids, plain or as a choropleth of a value per grid (a KPI);
* :func:`roads_layer` — the roads the district answers for, coloured by responsible squad or by
  a value per road;
* :func:`cameras_layer` — each camera's field of view.

What happens:

* :func:`events_layer` — events as points, coloured by state, sized by severity; takes the
  API's event JSON or the simulator's flat records (``lon``/``lat`` columns);
* :func:`events_hexagon_layer` — their density;
* :func:`members_layer` — members where they are, by role, busy or free;
* :func:`trips_layer` — paths with times, for replaying movement.

Coordinates are WGS84 longitude/latitude (the district's projection turns its metres into
them). Colours are RGBA lists; :data:`STATE_COLOURS`, :data:`ROLE_COLOURS` and
:func:`ramp` are shared with the cockpit page (served as JSON) so both read alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pydeck as pdk
import shapely

from twin.district import District

RGBA = list[int]

#: Event state → colour (waiting amber/orange, signed yellow, on scene blue, needing more
#: (reinforcement, escalated, consultation) reds and purple, resolved green, closed grey).
STATE_COLOURS: dict[str, RGBA] = {
    "reported": [255, 176, 0, 230], "dispatched": [255, 120, 0, 230], "signed": [240, 210, 0, 230],
    "on_scene": [30, 136, 229, 230], "reinforcement_requested": [244, 67, 54, 240],
    "escalated": [183, 28, 28, 240], "consultation": [123, 31, 162, 230], "resolved": [67, 160, 71, 200],
    "closed": [120, 120, 120, 150], "merged": [180, 180, 180, 120], "false_alarm": [200, 200, 200, 120],
}
#: Member role → colour.
ROLE_COLOURS: dict[str, RGBA] = {
    "grid_leader": [0, 105, 92, 230], "grid_worker": [0, 150, 136, 230], "grid_instructor": [77, 182, 172, 230],
    "co_governance": [63, 81, 181, 230], "enforcement": [156, 39, 176, 230],
}
#: Severity → point radius, metres.
SEVERITY_RADIUS = {"informational": 12.0, "low": 16.0, "medium": 22.0, "high": 30.0, "critical": 40.0}
#: Distinct colours for categorical layers (squads, areas): Tableau 10.
CATEGORICAL: tuple[RGBA, ...] = tuple([*c, 220] for c in (
    (78, 121, 167), (242, 142, 43), (225, 87, 89), (118, 183, 178), (89, 161, 79),
    (237, 201, 72), (176, 122, 161), (255, 157, 167), (156, 117, 95), (186, 176, 172)))


def ramp(value: float | None, lo: float, hi: float, *, good_high: bool = True, alpha: int = 170) -> RGBA:
    """A value on a red → yellow → green ramp (``good_high``: high is green), grey for
    ``None`` or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return [170, 170, 170, 90]
    f = 0.5 if hi <= lo else min(1.0, max(0.0, (value - lo) / (hi - lo)))
    if not good_high:
        f = 1.0 - f
    r = int(215 if f < 0.5 else 215 - (f - 0.5) * 2 * 189)
    g = int(48 + f * 2 * 169 if f < 0.5 else 217 - (f - 0.5) * 2 * 67)
    return [r, g, 39 if f < 0.5 else int(39 + (f - 0.5) * 2 * 41), alpha]


#: Decimal places of map coordinates: 1e-6 degrees is ~0.1 m, well under a pixel at street zoom.
DIGITS = 6


def _lonlat_list(district: District, geom: Any) -> list[list[float]]:
    xs, ys = shapely.get_coordinates(geom).T
    lon, lat = district.projection.to_lonlat(xs, ys)
    return [[round(float(a), DIGITS), round(float(b), DIGITS)] for a, b in zip(lon, lat)]


def _ring(district: District, geom: Any) -> list[list[float]]:
    """A polygon's exterior in lon/lat."""
    return _lonlat_list(district, geom.exterior)


def _path(district: District, line: Any) -> list[list[float]]:
    """A line in lon/lat."""
    return _lonlat_list(district, line)


def _polygons(geom: Any) -> list[Any]:
    return list(geom.geoms) if hasattr(geom, "geoms") else [geom]


# --- the base map ------------------------------------------------------------------------------------
def boundary_layer(district: District, *, colour: RGBA | None = None) -> pdk.Layer:
    """The district's boundary, outlined, lightly filled (the map's ground)."""
    data = [{"name": district.title or district.name, "polygon": _ring(district, p)}
            for p in _polygons(district.boundary)]
    return pdk.Layer("PolygonLayer", data, id="boundary", get_polygon="polygon", filled=True, stroked=True,
                     get_fill_color=[245, 243, 238, 255], get_line_color=colour or [60, 60, 60, 255],
                     line_width_min_pixels=2, pickable=False)


def areas_layer(district: District) -> pdk.Layer:
    """The areas (片区), outlined, named in the tooltip."""
    data = [{"id": a.id, "name": a.name, "polygon": _ring(district, p)}
            for a in district.regions.areas for p in _polygons(a.polygon)]
    return pdk.Layer("PolygonLayer", data, id="areas", get_polygon="polygon", filled=False, stroked=True,
                     get_line_color=[90, 90, 90, 200], line_width_min_pixels=1.5, pickable=False)


def grids_layer(district: District, values: Mapping[str, float | None] | None = None, *, label: str = "value",
                lo: float | None = None, hi: float | None = None, good_high: bool = True) -> pdk.Layer:
    """The grids (网格): outlines, or with ``values`` (grid id → a number, e.g. the share of
    events that met their targets) a choropleth on :func:`ramp` between ``lo`` and ``hi``
    (default the values' range); grids without a value are grey. The tooltip shows
    ``label``."""
    vals = [v for v in (values or {}).values() if v is not None and not (isinstance(v, float) and math.isnan(v))]
    lo_ = min(vals) if lo is None and vals else (lo or 0.0)
    hi_ = max(vals) if hi is None and vals else (hi if hi is not None else 1.0)
    data = []
    for g in district.regions.grids:
        v = None if values is None else values.get(g.id)
        fill = [0, 0, 0, 0] if values is None else ramp(v, lo_, hi_, good_high=good_high)
        for p in _polygons(g.polygon):
            data.append({"id": g.id, "name": g.name, "area": district.regions.area_of(g.id),
                         label: None if v is None else round(float(v), 4), "polygon": _ring(district, p),
                         "fill": fill})
    return pdk.Layer("PolygonLayer", data, id="grids" if values is None else f"grids-{label}",
                     get_polygon="polygon", filled=values is not None, stroked=True, get_fill_color="fill",
                     get_line_color=[150, 150, 150, 160], line_width_min_pixels=0.5, pickable=values is not None)


def roads_layer(district: District, values: Mapping[str, float | None] | None = None, *, label: str = "value",
                lo: float | None = None, hi: float | None = None, good_high: bool = True,
                width_m: float = 6.0) -> pdk.Layer:
    """The roads the district answers for (each a unit of responsibility): coloured by the
    squad responsible, or with ``values`` (road id → number) on :func:`ramp`. Tooltip: street,
    road id, area, squad (and ``label``)."""
    areas = district.road_areas()
    squads = {a: s for s in district.squads for a in s.area_ids}
    colour_of = {s.id: CATEGORICAL[k % len(CATEGORICAL)] for k, s in enumerate(district.squads)}
    vals = [v for v in (values or {}).values() if v is not None]
    lo_ = min(vals) if lo is None and vals else (lo or 0.0)
    hi_ = max(vals) if hi is None and vals else (hi if hi is not None else 1.0)
    data = []
    for i in district.responsible:
        seg = district.roads.segments[int(i)]
        area = areas.get(seg.id, "")
        squad = squads.get(area)
        row: dict[str, Any] = {"id": seg.id, "name": seg.name, "area": area, "squad": squad.name if squad else "",
                               "path": _path(district, seg.line)}
        if values is None:
            row["colour"] = colour_of[squad.id] if squad else [150, 150, 150, 200]
        else:
            v = values.get(seg.id)
            row[label] = None if v is None else round(float(v), 4)
            row["colour"] = ramp(v, lo_, hi_, good_high=good_high, alpha=230)
        data.append(row)
    return pdk.Layer("PathLayer", data, id="roads" if values is None else f"roads-{label}", get_path="path",
                     get_color="colour", get_width=width_m, width_min_pixels=1, cap_rounded=True, pickable=True)


def cameras_layer(district: District, *, camera_ids: Iterable[str] | None = None) -> pdk.Layer:
    """Each camera's field of view (a sector of its range and opening angle; its arc simplified
    to within 0.5 m)."""
    chosen = None if camera_ids is None else set(camera_ids)
    data = [{"id": c.id, "owner": c.owner, "grid": c.grid_id, "polygon": _ring(district, c.fov.simplify(0.5))}
            for c in district.cameras if chosen is None or c.id in chosen]
    return pdk.Layer("PolygonLayer", data, id="cameras", get_polygon="polygon", filled=True, stroked=True,
                     get_fill_color=[66, 133, 244, 45], get_line_color=[66, 133, 244, 160],
                     line_width_min_pixels=0.5, pickable=True)


def base_layers(district: District) -> list[pdk.Layer]:
    """The district as a base map: boundary, grids, areas, roads by squad, cameras."""
    return [boundary_layer(district), grids_layer(district), areas_layer(district), roads_layer(district),
            cameras_layer(district)]


# --- what happens --------------------------------------------------------------------------------------
def _lonlat(e: Mapping[str, Any]) -> tuple[float, float] | None:
    loc = e.get("location")
    if isinstance(loc, Mapping) and isinstance(loc.get("coordinates"), Sequence):
        lon, lat = loc["coordinates"][:2]
    else:
        lon, lat = e.get("lon"), e.get("lat")
    try:
        lon_f, lat_f = float(lon), float(lat)
    except (TypeError, ValueError):
        return None
    return (lon_f, lat_f) if math.isfinite(lon_f) and math.isfinite(lat_f) else None


def events_layer(events: Iterable[Mapping[str, Any]], *, id: str = "events") -> pdk.Layer:
    """Events as points: colour by state (:data:`STATE_COLOURS`), radius by severity. Takes the
    API's event JSON (``location.coordinates``) or flat records (``lon``, ``lat``; the
    simulator's ``events.csv`` rows); records without a place are left out."""
    data = []
    for e in events:
        where = _lonlat(e)
        if where is None:
            continue
        state = str(e.get("state") or "reported")
        data.append({"id": e.get("id") or e.get("event_id"), "scenario": e.get("scenario"), "state": state,
                     "severity": e.get("severity"), "position": [round(where[0], DIGITS), round(where[1], DIGITS)],
                     "colour": STATE_COLOURS.get(state, [0, 0, 0, 200]),
                     "radius": SEVERITY_RADIUS.get(str(e.get("severity")), 16.0)})
    return pdk.Layer("ScatterplotLayer", data, id=id, get_position="position", get_fill_color="colour",
                     get_radius="radius", radius_min_pixels=3, radius_max_pixels=18, stroked=True,
                     get_line_color=[255, 255, 255, 220], line_width_min_pixels=1, pickable=True)


def events_hexagon_layer(events: Iterable[Mapping[str, Any]], *, radius_m: float = 120.0) -> pdk.Layer:
    """Where events are dense: hexagons of ``radius_m``, their height and colour by count."""
    data = [{"position": list(p)} for p in (_lonlat(e) for e in events) if p is not None]
    return pdk.Layer("HexagonLayer", data, id="event-density", get_position="position", radius=radius_m,
                     elevation_scale=4, extruded=True, coverage=0.9, pickable=True,
                     color_range=[[255, 255, 178], [254, 217, 118], [254, 178, 76], [253, 141, 60], [240, 59, 32],
                                  [189, 0, 38]])


def members_layer(positions: Iterable[Mapping[str, Any]]) -> pdk.Layer:
    """Members where they are (``GET /api/v1/members/positions``): colour by role, a white
    ring when free, none when busy; off-duty members are left out."""
    data = [{"id": p["member_id"], "role": p["role"], "busy": bool(p.get("busy")), "event": p.get("event_id"),
             "position": [p["lon"], p["lat"]], "colour": ROLE_COLOURS.get(str(p["role"]), [0, 0, 0, 220])}
            for p in positions if p.get("on_duty", True)]
    return pdk.Layer("ScatterplotLayer", data, id="members", get_position="position", get_fill_color="colour",
                     get_radius=9, radius_min_pixels=3, radius_max_pixels=10, stroked=True,
                     get_line_color=[255, 255, 255, 255], get_line_width=2, line_width_min_pixels=1, pickable=True)


def trips_layer(trips: Iterable[Mapping[str, Any]], *, current_time: float = 0.0, trail_s: float = 600.0
                ) -> pdk.Layer:
    """Movement for replay: each trip ``{"id", "path": [[lon, lat], ...], "timestamps": [s, ...],
    "colour"?}`` (seconds from the replay's start) drawn up to ``current_time`` with a fading
    trail of ``trail_s``."""
    data = [{"id": t.get("id"), "path": t["path"], "timestamps": t["timestamps"],
             "colour": t.get("colour", [253, 128, 93, 230])} for t in trips]
    return pdk.Layer("TripsLayer", data, id="trips", get_path="path", get_timestamps="timestamps",
                     get_color="colour", width_min_pixels=3, trail_length=trail_s, current_time=current_time,
                     opacity=0.9)


__all__ = ["CATEGORICAL", "ROLE_COLOURS", "SEVERITY_RADIUS", "STATE_COLOURS", "areas_layer", "base_layers",
           "boundary_layer", "cameras_layer", "events_hexagon_layer", "events_layer", "grids_layer", "members_layer",
           "ramp", "roads_layer", "trips_layer"]
