"""A district: everything the street brain knows about the place, in one object.

Both engines (the live twin and the what-if simulator) hold one :class:`District`; the
policy functions read it and nothing else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Point, Polygon
from shapely.strtree import STRtree

from twin.assets import Camera, Sensor, Shop, Venue
from twin.calibration import Homography, pinhole
from twin.catalog import Catalog
from twin.errors import NotFound, ValidationError
from twin.geo import Location, RegionIndex, RoadNetwork
from twin.staff import Member, Role, Roster, Squad

#: A point this close past a segment's middle still counts as its first half (nearer its
#: start node): a midpoint sent through WGS84 at 7 decimals (~1 cm) and back must snap to
#: the same node, or the live twin and the simulator route to different ends.
_MIDDLE_M = 0.05


@dataclass(frozen=True)
class PolicySettings:
    """A district's dispatch-policy settings (``[policy]`` in ``scenario.toml``), read by both
    engines through :class:`twin.desk.Desk`.

    Args:
        max_reassign: How often an unsigned dispatch is reassigned to another member of the
            same tier before it is escalated (0-10).
        return_to_post: After a job a member heads back to their post (their road beat,
            包干) and is dispatched from there once back; ``False``: they stay where the job
            was until their next shift (districts built in code, e.g. the queueing presets).
    """

    max_reassign: int = 1
    return_to_post: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.max_reassign, bool) or not isinstance(self.max_reassign, int) \
                or not 0 <= self.max_reassign <= 10:
            raise ValidationError("policy.max_reassign", f"must be an integer from 0 to 10, got {self.max_reassign!r}")


@dataclass
class District:
    """The model of one subdistrict.

    Args:
        name: Short name (``xiaohe``).
        title: Display title.
        boundary: Study boundary in the local plane.
        roads: Road network (routing margin included).
        responsible: Indices of the segments inside the boundary (each one a unit of
            responsibility).
        road_grid: Grid index of each segment (``-1`` for margin roads).
        regions: Grids, communities and areas.
        squads: Road squads.
        roster: Members and their shifts.
        catalog: Categories and application scenarios.
        cameras: City Eye cameras.
        shops: Street-front shops.
        sensors: Front-end sensors.
        venues: Venues (e.g. sales-meeting rooms).
        population: Residents.
        stated_area_km2: Official area, for comparison with the boundary's.
        policy: Dispatch-policy settings.
        notes: Documented assumptions, attribution and provenance.
        boundary_tolerance_m: Points this close outside the boundary still belong to the
            district (the boundary runs along streets; a report on the far pavement counts).
    """

    name: str
    title: str
    boundary: Polygon
    roads: RoadNetwork
    responsible: np.ndarray
    road_grid: np.ndarray
    regions: RegionIndex
    squads: tuple[Squad, ...]
    roster: Roster
    catalog: Catalog
    cameras: tuple[Camera, ...] = ()
    shops: tuple[Shop, ...] = ()
    sensors: tuple[Sensor, ...] = ()
    venues: tuple[Venue, ...] = ()
    population: int = 0
    stated_area_km2: float | None = None
    policy: PolicySettings = field(default_factory=PolicySettings)
    notes: Mapping[str, Any] = field(default_factory=dict)
    boundary_tolerance_m: float = 30.0
    calibrations: Mapping[str, Homography] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._resp_tree = STRtree([self.roads.segments[int(i)].line for i in self.responsible])
        self._squad_of_area: dict[str, Squad] = {}
        for squad in self.squads:
            for area in squad.area_ids:
                self._squad_of_area.setdefault(area, squad)
        self._members_by_role: dict[Role, list[Member]] = {}
        for m in self.roster.members:
            self._members_by_role.setdefault(m.role, []).append(m)
        self._levels: dict[tuple[Role, str, str], tuple[tuple[str, tuple[Member, ...]], ...]] = {}

    @property
    def projection(self) -> Any:
        """The local plane (see :class:`twin.geo.LocalProjection`)."""
        return self.roads.projection

    @property
    def area_km2(self) -> float:
        """Area inside the study boundary, km²."""
        return float(self.boundary.area) / 1e6

    def contains(self, x: float, y: float) -> bool:
        """Whether a point of the local plane belongs to the district (boundary tolerance included)."""
        point = Point(x, y)
        return bool(self.boundary.covers(point)) or self.boundary.distance(point) <= self.boundary_tolerance_m

    def locate(self, lon: float, lat: float) -> Location:
        """Resolve a WGS84 point to its road, node, grid, community and area.

        Raises:
            ValidationError: the point is not a valid coordinate or lies outside the district.
        """
        found = self.locate_all([(lon, lat)])[0]
        if isinstance(found, ValidationError):
            raise found
        return found

    def locate_all(self, points: Sequence[tuple[Any, Any]]) -> list[Location | ValidationError]:
        """:meth:`locate` for many WGS84 points at once (one vectorised pass: a batch of reports
        costs about what one does): each point's location, or the error that refuses it."""
        out: list[Location | ValidationError] = []
        ok: list[int] = []
        for lon, lat in points:
            err = _coordinate_error(lon, lat)
            if err is None:
                ok.append(len(out))
            out.append(err)  # type: ignore[arg-type]  # filled in below
        if ok:
            lonlat = np.array([(float(points[i][0]), float(points[i][1])) for i in ok], dtype=np.float64)
            x, y = self.projection.to_xy(lonlat[:, 0], lonlat[:, 1])
            xy = np.column_stack([x, y])
            for i, loc, (xi, yi) in zip(ok, self.locate_many(xy, lonlat=lonlat), xy):
                out[i] = loc if loc is not None else self._outside(float(xi), float(yi))
        return out

    def _outside(self, x: float, y: float) -> ValidationError:
        lo, la = self.projection.to_lonlat(x, y)
        return ValidationError("location", f"({float(lo):.6f}, {float(la):.6f}) lies outside the "
                               f"boundary of district '{self.name}'")

    def locate_xy(self, x: float, y: float, *, lon: float | None = None,
                  lat: float | None = None) -> Location:
        """Resolve a point of the local plane (see :meth:`locate`)."""
        lonlat = None if lon is None or lat is None else np.array([[lon, lat]], dtype=np.float64)
        found = self.locate_many(np.array([[x, y]], dtype=np.float64), lonlat=lonlat)[0]
        if found is None:
            raise self._outside(x, y)
        return found

    def locate_many(self, xy: np.ndarray, *, lonlat: np.ndarray | None = None) -> list[Location | None]:
        """:meth:`locate_xy` for many points of the local plane at once (``None`` outside);
        ``lonlat`` gives their WGS84 coordinates where the caller has them (else computed)."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        if len(xy) == 0:
            return []
        pts = shapely.points(xy)
        inside = shapely.intersects(self.boundary, pts) | (
            shapely.distance(self.boundary, pts) <= self.boundary_tolerance_m)
        grid = self.regions.grids_at(xy, tolerance_m=self.boundary_tolerance_m)
        k = np.asarray(self._resp_tree.nearest(pts), dtype=np.int64)
        seg_idx = self.responsible[k]
        lines = self.roads.lines[seg_idx]
        along = shapely.line_locate_point(lines, pts)
        dist = shapely.distance(lines, pts)
        if lonlat is None:
            lon, lat = self.projection.to_lonlat(xy[:, 0], xy[:, 1])
        else:
            lon, lat = lonlat[:, 0], lonlat[:, 1]
        out: list[Location | None] = []
        for i in range(len(xy)):
            if not inside[i] or grid[i] < 0:
                out.append(None)
                continue
            seg = self.roads.segments[int(seg_idx[i])]
            gid = self.regions.grids[int(grid[i])].id
            out.append(Location(lon=float(lon[i]), lat=float(lat[i]), x=float(xy[i, 0]), y=float(xy[i, 1]),
                                road_id=seg.id, node=seg.u if along[i] <= seg.line.length / 2 + _MIDDLE_M else seg.v,
                                grid_id=gid, community_id=self.regions.community_of(gid),
                                area_id=self.regions.area_of(gid), road_distance_m=float(dist[i])))
        return out

    def road_areas(self) -> Mapping[str, str]:
        """The area of every patrolled road segment (the area its midpoint lies in): which
        squad answers for it. Computed once (one vectorised pass)."""
        cached: Mapping[str, str] | None = getattr(self, "_road_areas", None)
        if cached is None:
            segs = [self.roads.segments[int(i)] for i in self.responsible]
            mids = np.array([[*s.line.interpolate(0.5, normalized=True).coords[0]] for s in segs]).reshape(-1, 2)
            locs = self.locate_many(mids)
            cached = {s.id: loc.area_id for s, loc in zip(segs, locs) if loc is not None}
            self._road_areas = cached
        return cached

    def camera(self, camera_id: str) -> Camera:
        """The camera with this id.

        Raises:
            NotFound: no such camera.
        """
        by_id = self.__dict__.get("_camera_by_id")
        if by_id is None:
            by_id = {c.id: c for c in self.cameras}
            object.__setattr__(self, "_camera_by_id", by_id)
        try:
            return by_id[camera_id]  # type: ignore[no-any-return]
        except KeyError:
            raise NotFound("camera", camera_id) from None

    def calibration(self, camera_id: str, *, width: int = 1280, height: int = 720) -> Homography:
        """The camera's image ↔ ground calibration: the scenario's, else a synthetic pinhole
        camera on a 6 m mast (:func:`twin.calibration.pinhole`) at ``width`` × ``height``."""
        given = self.calibrations.get(camera_id)
        if given is not None:
            return given
        return pinhole(self.camera(camera_id), width=width, height=height)

    def squad_for_area(self, area_id: str) -> Squad:
        """The squad responsible for an area's roads."""
        try:
            return self._squad_of_area[area_id]
        except KeyError:
            raise NotFound("squad for area", area_id) from None

    def members(self, role: Role | None = None) -> Sequence[Member]:
        """Members, optionally of one role, in id order."""
        if role is None:
            return self.roster.members
        return self._members_by_role.get(role, [])

    def dispatch_levels(self, role: Role, grid_id: str, area_id: str
                        ) -> tuple[tuple[str, tuple[Member, ...]], ...]:
        """Members of ``role`` in order of responsibility for a spot, as disjoint levels.

        Grid roles: the grid's own members, then the rest of the area, then other areas.
        Other roles: the area squad, then the rest of the area, then other areas.
        Each level keeps member-id order. Cached per (role, grid, area).
        """
        key = (role, grid_id, area_id)
        levels = self._levels.get(key)
        if levels is None:
            pool = self.members(role)
            if role in (Role.GRID_WORKER, Role.GRID_LEADER, Role.GRID_INSTRUCTOR):
                own = [m for m in pool if grid_id in m.grid_ids]
                label = "own grid"
            else:
                squad = self._squad_of_area.get(area_id)
                own = [m for m in pool if squad is not None and m.squad_id == squad.id]
                label = "area squad"
            taken = {m.id for m in own}
            area = [m for m in pool if m.area_id == area_id and m.id not in taken]
            taken |= {m.id for m in area}
            rest = [m for m in pool if m.id not in taken]
            levels = ((label, tuple(own)), ("same area", tuple(area)), ("other area", tuple(rest)))
            self._levels[key] = levels
        return levels

    def members_by_role(self) -> dict[str, int]:
        """Head count per role."""
        counts = Counter(m.role.value for m in self.roster.members)
        return {r.value: counts.get(r.value, 0) for r in Role}

    def summary(self) -> dict[str, Any]:
        """Counts and key facts, JSON-ready."""
        grids, communities, areas = self.regions.grids, self.regions.communities, self.regions.areas
        resp_len = sum(self.roads.segments[int(i)].length_m for i in self.responsible) / 1000.0
        return {
            "name": self.name,
            "title": self.title,
            "area_km2": round(self.area_km2, 3),
            "stated_area_km2": self.stated_area_km2,
            "population": self.population,
            "timezone": self.roster.timezone_name,
            "grids": len(grids),
            "communities": len(communities),
            "areas": len(areas),
            "roads": int(len(self.responsible)),
            "road_km": round(resp_len, 1),
            "routing_segments": len(self.roads),
            "routing_nodes": self.roads.n_nodes,
            "squads": len(self.squads),
            "cameras": len(self.cameras),
            "shops": len(self.shops),
            "sensors": len(self.sensors),
            "venues": len(self.venues),
            "shifts": len(self.roster.plan),
            "shift_plan": [
                {"code": s.code, "start": f"{s.start_s // 3600:02d}:{s.start_s % 3600 // 60:02d}",
                 "end": f"{s.end_s // 3600:02d}:{s.end_s % 3600 // 60:02d}"}
                for s in self.roster.plan],
            "categories": len(self.catalog.categories),
            "scenarios": len(self.catalog),
            "scenarios_by_category": dict(self.catalog.counts_by_category()),
            "members": len(self.roster.members),
            "members_by_role": self.members_by_role(),
        }


def _coordinate_error(lon: Any, lat: Any) -> ValidationError | None:
    """Why a longitude/latitude pair is not a coordinate, or ``None``."""
    for name, value, lim in (("lon", lon, 180.0), ("lat", lat, 90.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not -lim <= value <= lim:
            return ValidationError(name, f"must be a number in [-{lim:g}, {lim:g}], got {value!r}")
    return None
