"""Geography of a district: road segments, the routing graph, regions and travel times.

Coordinates are WGS84 longitude/latitude on the wire and metres in a local plane inside
(see :class:`LocalProjection`). A road *segment* (one OSM way between two junctions) is the
smallest unit of responsibility: each belongs to exactly one grid, community and area, and
the area's squad answers for it.

Travel times come from shortest paths over the road graph for three modes: ``walk`` and
``ebike`` use every segment in both directions, ``car`` respects one-way streets. Small
networks precompute the whole all-pairs table; large ones answer from cached single-source
rows, so a 100x district still loads in seconds.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np
import shapely
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

from twin.errors import NotFound, ValidationError

EARTH_RADIUS_M = 6_371_008.8


class TravelMode(str, Enum):
    """How a member moves: on foot, by e-bike, or by car."""

    WALK = "walk"
    EBIKE = "ebike"
    CAR = "car"


@dataclass(frozen=True)
class LocalProjection:
    """Equirectangular projection about a district's centre, in metres.

    Over a district of a few kilometres the distortion is below 0.1%, far under the
    accuracy of the road data; no projection library is needed.

    Args:
        lon0: Longitude of the origin, degrees east.
        lat0: Latitude of the origin, degrees north.
    """

    lon0: float
    lat0: float

    @property
    def _kx(self) -> float:
        return EARTH_RADIUS_M * math.cos(math.radians(self.lat0)) * math.pi / 180.0

    @property
    def _ky(self) -> float:
        return EARTH_RADIUS_M * math.pi / 180.0

    def to_xy(self, lon: Any, lat: Any) -> tuple[Any, Any]:
        """Longitude/latitude (degrees, scalars or arrays) to x/y metres east/north."""
        return (np.asarray(lon) - self.lon0) * self._kx, (np.asarray(lat) - self.lat0) * self._ky

    def to_lonlat(self, x: Any, y: Any) -> tuple[Any, Any]:
        """x/y metres to longitude/latitude degrees."""
        return np.asarray(x) / self._kx + self.lon0, np.asarray(y) / self._ky + self.lat0

    def geometry_to_xy(self, geom: BaseGeometry) -> BaseGeometry:
        """A shapely geometry in lon/lat to the local plane."""
        return shapely.transform(geom, lambda c: np.column_stack(self.to_xy(c[:, 0], c[:, 1])))

    def geometry_to_lonlat(self, geom: BaseGeometry) -> BaseGeometry:
        """A shapely geometry in the local plane to lon/lat."""
        return shapely.transform(
            geom, lambda c: np.column_stack(self.to_lonlat(c[:, 0], c[:, 1]))
        )


@dataclass(frozen=True)
class RoadSegment:
    """One road segment between two junctions: the smallest unit of responsibility.

    Args:
        id: Stable identifier, unique in the district.
        name: Street name (may be empty for service roads).
        road_class: ``primary``, ``secondary``, ``tertiary``, ``residential``, ``service``...
        u: Index of the start node in the network.
        v: Index of the end node.
        length_m: Length along the line, metres.
        car_speed_mps: Free-flow car speed, metres per second.
        oneway: Cars may only drive from ``u`` to ``v``.
        line: Geometry in the local plane (metres).
        patrolled: Whether squads answer for it (elevated expressways and tunnels are
            routed over but not patrolled).
        motor_only: Cars only (elevated expressways, tunnels): no walking or e-bike routes.
    """

    id: str
    name: str
    road_class: str
    u: int
    v: int
    length_m: float
    car_speed_mps: float
    oneway: bool
    line: LineString = field(repr=False, compare=False)
    patrolled: bool = True
    motor_only: bool = False


@dataclass(frozen=True)
class TravelSpeeds:
    """Speeds used for travel times.

    Args:
        walk_mps: Walking speed, m/s (typical 1.2-1.4).
        ebike_mps: Average e-bike speed in traffic, m/s (Chinese e-bikes are capped at
            25 km/h = 6.9 m/s; junctions and crowds bring the average well below).
        car_factor: Share of the free-flow car speed reached in urban traffic (0-1].
    """

    walk_mps: float = 1.3
    ebike_mps: float = 4.5
    car_factor: float = 0.7

    def __post_init__(self) -> None:
        for name in ("walk_mps", "ebike_mps"):
            value = getattr(self, name)
            if not (0 < value < 40):
                raise ValidationError(f"travel.{name}", f"must be between 0 and 40 m/s, got {value}")
        if not (0 < self.car_factor <= 1):
            raise ValidationError("travel.car_factor", f"must be in (0, 1], got {self.car_factor}")


class TravelTimes:
    """Shortest-path travel times, in seconds, over one mode's road graph.

    Args:
        graph: Sparse matrix of edge travel times (seconds), ``graph[u, v]``.
        dense_limit: Networks with at most this many nodes get a full all-pairs table on
            :meth:`precompute` (float32: 6,000 nodes take 144 MB); larger ones answer from
            cached single-destination rows.
        cache_bytes: Memory budget for cached rows (large networks).
        limit_s: On large networks, searches stop at this travel time; farther nodes read
            ``inf`` (nobody is dispatched from an hour away). ``None``: no limit.
    """

    def __init__(self, graph: csr_matrix, *, dense_limit: int = 6000,
                 cache_bytes: int = 256 * 2**20, limit_s: float | None = 3600.0) -> None:
        self._graph = graph
        self._graph_t = graph.T.tocsr()
        self._dense_limit = dense_limit
        self._table: np.ndarray | None = None
        self._rows_to: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_rows = max(16, cache_bytes // max(1, 4 * graph.shape[0]))
        self._limit = np.inf if limit_s is None else float(limit_s)

    @property
    def n_nodes(self) -> int:
        """Number of nodes in the graph."""
        return int(self._graph.shape[0])

    @property
    def is_dense(self) -> bool:
        """Whether the all-pairs table has been computed."""
        return self._table is not None

    def precompute(self) -> None:
        """Compute the all-pairs table if the network is small enough (else do nothing)."""
        if self._table is None and self.n_nodes <= self._dense_limit:
            # Stored by destination (table[dst, src]) so that a dispatcher's row is a view.
            self._table = np.ascontiguousarray(dijkstra(self._graph_t, directed=True).astype(np.float32))

    def to_node(self, dst: int) -> np.ndarray:
        """Travel times from every node to ``dst`` (seconds; ``inf`` where unreachable)."""
        if self._table is not None:
            return self._table[dst]  # type: ignore[no-any-return]
        row = self._rows_to.get(dst)
        if row is None:
            row = dijkstra(self._graph_t, directed=True, indices=dst, limit=self._limit).astype(np.float32)
            self._rows_to[dst] = row
            if len(self._rows_to) > self._cache_rows:
                self._rows_to.popitem(last=False)
        else:
            self._rows_to.move_to_end(dst)
        return row

    def seconds(self, src: int, dst: int) -> float:
        """Travel time from node ``src`` to node ``dst``, seconds (``inf`` if unreachable)."""
        if self._table is not None:
            return float(self._table[dst, src])
        return float(self.to_node(dst)[src])


@dataclass(frozen=True)
class Region:
    """A polygon of administration: a grid (网格), a community (社区) or an area (片区).

    Args:
        id: Identifier, unique among regions of its kind.
        kind: ``grid``, ``community`` or ``area``.
        name: Display name.
        polygon: Geometry in the local plane (metres).
        parent: Id of the enclosing region (grid → community → area), or ``None``.
    """

    id: str
    kind: str
    name: str
    polygon: Polygon = field(repr=False, compare=False)
    parent: str | None = None

    @property
    def area_km2(self) -> float:
        """Area in square kilometres."""
        return float(self.polygon.area) / 1e6


@dataclass(frozen=True)
class Location:
    """Where something is, resolved against the district.

    Args:
        lon: Longitude, degrees.
        lat: Latitude, degrees.
        x: Metres east of the district origin.
        y: Metres north of the district origin.
        road_id: The nearest road segment.
        node: The routing node nearest along that segment.
        grid_id: The grid containing the point.
        community_id: The grid's community.
        area_id: The grid's area.
        road_distance_m: Distance from the point to the road segment.
    """

    lon: float
    lat: float
    x: float
    y: float
    road_id: str
    node: int
    grid_id: str
    community_id: str
    area_id: str
    road_distance_m: float


class RoadNetwork:
    """The road graph of a district and its spatial index.

    Build it with :func:`road_network_from_features`.

    Args:
        projection: The local plane.
        segments: All segments, routing margin included.
        node_keys: External node identifiers (OSM node ids), by node index.
        node_xy: Node coordinates, metres, shape ``(n, 2)``.
        speeds: Travel speeds per mode.
    """

    def __init__(
        self,
        projection: LocalProjection,
        segments: Sequence[RoadSegment],
        node_keys: Sequence[str],
        node_xy: np.ndarray,
        speeds: TravelSpeeds,
    ) -> None:
        self.projection = projection
        self.segments: tuple[RoadSegment, ...] = tuple(segments)
        self.node_keys: tuple[str, ...] = tuple(node_keys)
        self.node_xy = node_xy
        self.speeds = speeds
        self._by_id = {s.id: i for i, s in enumerate(self.segments)}
        #: Segment geometries as an array (for vectorised shapely calls).
        self.lines: np.ndarray = np.array([s.line for s in self.segments], dtype=object)
        #: Segment lengths, metres.
        self.lengths_m: np.ndarray = np.fromiter((s.length_m for s in self.segments), np.float64,
                                                 len(self.segments))
        #: Segment midpoints along the line, shape ``(n, 2)``.
        self.midpoints: np.ndarray = shapely.get_coordinates(
            shapely.line_interpolate_point(self.lines, 0.5, normalized=True))
        self._tree = STRtree(self.lines)
        self._travel: dict[TravelMode, TravelTimes] = {}

    def __len__(self) -> int:
        return len(self.segments)

    @property
    def n_nodes(self) -> int:
        """Number of junctions (routing nodes)."""
        return len(self.node_keys)

    def segment(self, road_id: str) -> RoadSegment:
        """The segment with id ``road_id``."""
        try:
            return self.segments[self._by_id[road_id]]
        except KeyError:
            raise NotFound("road", road_id) from None

    def index_of(self, road_id: str) -> int:
        """Position of a segment in :attr:`segments`."""
        try:
            return self._by_id[road_id]
        except KeyError:
            raise NotFound("road", road_id) from None

    def total_length_km(self) -> float:
        """Total length of all segments, kilometres."""
        return sum(s.length_m for s in self.segments) / 1000.0

    def _edge_arrays(self, mode: TravelMode) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        u = np.fromiter((s.u for s in self.segments), dtype=np.int64, count=len(self.segments))
        v = np.fromiter((s.v for s in self.segments), dtype=np.int64, count=len(self.segments))
        length = np.fromiter((s.length_m for s in self.segments), dtype=np.float64)
        if mode is TravelMode.CAR:
            speed = np.fromiter((s.car_speed_mps for s in self.segments), dtype=np.float64)
            cost = length / (speed * self.speeds.car_factor)
            oneway = np.fromiter((s.oneway for s in self.segments), dtype=bool)
            back = ~oneway
            return (np.concatenate([u, v[back]]), np.concatenate([v, u[back]]),
                    np.concatenate([cost, cost[back]]))
        mps = self.speeds.walk_mps if mode is TravelMode.WALK else self.speeds.ebike_mps
        ok = ~np.fromiter((s.motor_only for s in self.segments), dtype=bool)
        u, v, cost = u[ok], v[ok], length[ok] / mps
        return np.concatenate([u, v]), np.concatenate([v, u]), np.concatenate([cost, cost])

    def graph(self, mode: TravelMode) -> csr_matrix:
        """Sparse matrix of edge travel times (seconds) for ``mode``.

        Parallel segments between the same two junctions keep the fastest one.
        """
        rows, cols, cost = self._edge_arrays(mode)
        # Keep the minimum over parallel edges: sort by cost descending so the last write wins.
        order = np.argsort(-cost, kind="stable")
        n = self.n_nodes
        key = rows[order] * n + cols[order]
        _, last = np.unique(key[::-1], return_index=True)
        pick = order[::-1][last]
        # A zero-length edge would vanish from a sparse matrix; give it a tiny cost.
        return csr_matrix((np.maximum(cost[pick], 1e-3), (rows[pick], cols[pick])), shape=(n, n))

    def travel(self, mode: TravelMode | str) -> TravelTimes:
        """The travel-time oracle for ``mode`` (built on first use)."""
        tt = self._travel.get(mode)  # type: ignore[arg-type]  # hot path: a str-valued enum hashes as its value
        if tt is None:
            mode = TravelMode(mode)
            tt = TravelTimes(self.graph(mode))
            self._travel[mode] = tt
        return tt

    def precompute_travel(self, modes: Iterable[TravelMode | str] = tuple(TravelMode)) -> None:
        """Compute all-pairs tables for the given modes where the network is small enough."""
        for mode in modes:
            self.travel(mode).precompute()

    def mode_speed_mps(self, mode: TravelMode | str) -> float:
        """Typical door-to-door speed of a mode, m/s (cars: urban average of the network)."""
        mode = TravelMode(mode)
        if mode is TravelMode.WALK:
            return self.speeds.walk_mps
        if mode is TravelMode.EBIKE:
            return self.speeds.ebike_mps
        return float(np.median([s.car_speed_mps for s in self.segments])) * self.speeds.car_factor

    def crow_fly_s(self, mode: TravelMode | str, src: int, dst: int, *, detour: float = 1.4) -> float:
        """Travel time estimated from the straight line (× ``detour``), for node pairs the
        road data does not connect (footways and alleys are missing from the car network)."""
        dx, dy = self.node_xy[src] - self.node_xy[dst]
        return float(math.hypot(dx, dy)) * detour / self.mode_speed_mps(mode)

    def travel_s(self, mode: TravelMode | str, src: int, dst: int) -> float:
        """Travel time from node ``src`` to node ``dst`` by the road graph, seconds; where the
        road data does not connect them, the crow-fly estimate (:meth:`crow_fly_s`). The one
        travel time every dispatch rule and simulated handler uses."""
        t = self.travel(mode).seconds(src, dst)
        return t if t != math.inf else self.crow_fly_s(mode, src, dst)

    def nearest(self, x: float, y: float) -> tuple[int, int, float]:
        """Nearest segment to a point in the plane.

        Returns:
            ``(segment index, nearest node index, distance to the segment in metres)``; the
            node is whichever end of the segment is closer along the line.
        """
        point = Point(x, y)
        idx = int(self._tree.nearest(point))
        seg = self.segments[idx]
        along = seg.line.project(point)
        node = seg.u if along <= seg.line.length / 2 else seg.v
        return idx, node, float(seg.line.distance(point))

    def nearest_many(self, xy: np.ndarray) -> np.ndarray:
        """Nearest segment index for each of many points, shape ``(n, 2)`` → ``(n,)``."""
        points = shapely.points(xy)
        return np.asarray(self._tree.nearest(points), dtype=np.int64)


def road_network_from_features(
    features: Sequence[Mapping[str, Any]],
    *,
    projection: LocalProjection,
    speeds: TravelSpeeds | None = None,
    source: str | None = None,
) -> RoadNetwork:
    """Build the road network from GeoJSON LineString features.

    Each feature's properties: ``id`` (unique), ``from`` and ``to`` (junction ids: segments
    meet where these match), ``length_m`` (> 0), ``speed_kmh`` (car, > 0), ``oneway``
    (bool), optional ``name``, ``class``, ``patrolled`` (default true) and ``motor_only``
    (default false).

    Raises:
        ValidationError: naming the feature index and the property at fault.
    """
    speeds = speeds or TravelSpeeds()
    node_index: dict[str, int] = {}
    node_ll: list[tuple[float, float]] = []
    coord_arrays: list[np.ndarray] = []
    rows: list[tuple[Any, ...]] = []
    seen: set[str] = set()
    for i, feat in enumerate(features):
        where = f"roads.features[{i}]"
        props = feat.get("properties") if isinstance(feat, Mapping) else None
        props = props if isinstance(props, Mapping) else {}
        if not isinstance(feat, Mapping):
            raise ValidationError(where, "must be a GeoJSON Feature object", source=source)
        geom = feat.get("geometry") or {}
        geom = geom if isinstance(geom, Mapping) else {}
        coords = geom.get("coordinates")
        if geom.get("type") != "LineString" or not isinstance(coords, list) or len(coords) < 2:
            raise ValidationError(f"{where}.geometry", "must be a LineString of at least 2 points",
                                  source=source)
        try:
            arr = np.asarray(coords, dtype=np.float64)[:, :2]
        except (TypeError, ValueError, IndexError):
            raise ValidationError(f"{where}.geometry.coordinates",
                                  "must be [longitude, latitude] number pairs", source=source) from None
        if not np.isfinite(arr).all() or np.abs(arr[:, 0]).max() > 180 or np.abs(arr[:, 1]).max() > 90:
            raise ValidationError(f"{where}.geometry.coordinates",
                                  "must be WGS84 longitude/latitude in degrees", source=source)
        sid = str(props.get("id", "")).strip()
        if not sid:
            raise ValidationError(f"{where}.properties.id", "is missing or empty", source=source)
        if sid in seen:
            raise ValidationError(f"{where}.properties.id", f"duplicate road id '{sid}'", source=source)
        seen.add(sid)
        for key in ("from", "to"):
            if props.get(key) in (None, ""):
                raise ValidationError(f"{where}.properties.{key}", "junction id is missing", source=source)
        length = props.get("length_m")
        speed = props.get("speed_kmh")
        for key, value in (("length_m", length), ("speed_kmh", speed)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValidationError(f"{where}.properties.{key}",
                                      f"must be a number > 0, got {value!r}", source=source)
        oneway = props.get("oneway", False)
        patrolled = props.get("patrolled", True)
        motor_only = props.get("motor_only", False)
        for key, flag in (("oneway", oneway), ("patrolled", patrolled), ("motor_only", motor_only)):
            if not isinstance(flag, bool):
                raise ValidationError(f"{where}.properties.{key}",
                                      f"must be true or false, got {flag!r}", source=source)
        ends = []
        for key, k in (("from", 0), ("to", -1)):
            nk = str(props[key])
            idx = node_index.get(nk)
            if idx is None:
                idx = node_index[nk] = len(node_ll)
                node_ll.append((float(arr[k, 0]), float(arr[k, 1])))
            ends.append(idx)
        coord_arrays.append(arr)
        rows.append((sid, str(props.get("name") or ""), str(props.get("class") or "unclassified"),
                     ends[0], ends[1], float(length), float(speed) / 3.6, oneway, patrolled, motor_only))  # type: ignore[arg-type]
    if not rows:
        raise ValidationError("roads.features", "no road segments", source=source)
    # Project every coordinate at once and build all lines in one call.
    lonlat = np.concatenate(coord_arrays)
    xy = np.column_stack(projection.to_xy(lonlat[:, 0], lonlat[:, 1]))
    which = np.repeat(np.arange(len(rows)), [len(a) for a in coord_arrays])
    lines = shapely.linestrings(xy, indices=which)
    segments = [RoadSegment(id=r[0], name=r[1], road_class=r[2], u=r[3], v=r[4], length_m=r[5],
                            car_speed_mps=r[6], oneway=r[7], line=line, patrolled=r[8], motor_only=r[9])
                for r, line in zip(rows, lines)]
    node_arr = np.asarray(node_ll, dtype=np.float64)
    node_xy = np.column_stack(projection.to_xy(node_arr[:, 0], node_arr[:, 1]))
    keys = [""] * len(node_index)
    for key, idx in node_index.items():
        keys[idx] = key
    return RoadNetwork(projection, segments, keys, node_xy, speeds)


class RegionIndex:
    """Point-in-polygon lookup over grids, with their community and area.

    Args:
        grids: Grid regions; their ``parent`` is the community id.
        communities: Community regions; their ``parent`` is the area id.
        areas: Area regions.
    """

    def __init__(self, grids: Sequence[Region], communities: Sequence[Region], areas: Sequence[Region]) -> None:
        self.grids = tuple(grids)
        self.communities = tuple(communities)
        self.areas = tuple(areas)
        self._grid_tree = STRtree([g.polygon for g in self.grids])
        self._community_of = {g.id: g.parent or "" for g in self.grids}
        self._area_of = {c.id: c.parent or "" for c in self.communities}
        self.by_id: dict[str, Region] = {r.id: r for r in (*self.grids, *self.communities, *self.areas)}

    def grid_at(self, x: float, y: float, *, tolerance_m: float = 0.0) -> Region | None:
        """The grid containing the point, or ``None`` outside every grid.

        Args:
            x: Metres east.
            y: Metres north.
            tolerance_m: A point outside every grid but this close to one (a street that
                forms the boundary) belongs to the nearest.
        """
        idx = int(self.grids_at(np.array([[x, y]], dtype=np.float64), tolerance_m=tolerance_m)[0])
        return self.grids[idx] if idx >= 0 else None

    def grids_at(self, xy: np.ndarray, *, tolerance_m: float = 0.0) -> np.ndarray:
        """Grid index for each of many points (``-1`` outside), shape ``(n, 2)`` → ``(n,)``.

        Points on a shared edge go to the lowest grid index; points outside every grid but
        within ``tolerance_m`` of one go to the nearest.
        """
        out = np.full(len(xy), -1, dtype=np.int64)
        if len(xy) == 0:
            return out
        points = shapely.points(xy)
        pts, grids = self._grid_tree.query(points, predicate="intersects")
        # A point on a shared edge hits two grids: keep the lowest grid index, deterministically.
        order = np.lexsort((grids, pts))
        pts, grids = pts[order], grids[order]
        first = np.ones(len(pts), dtype=bool)
        first[1:] = pts[1:] != pts[:-1]
        out[pts[first]] = grids[first]
        miss = np.flatnonzero(out < 0)
        if tolerance_m > 0 and len(miss):
            near_pts, near_grids = self._grid_tree.query_nearest(points[miss], max_distance=tolerance_m,
                                                                 all_matches=False)
            out[miss[near_pts]] = near_grids
        return out

    def community_of(self, grid_id: str) -> str:
        """Community id of a grid."""
        return self._community_of[grid_id]

    def area_of(self, grid_id: str) -> str:
        """Area id of a grid."""
        return self._area_of[self._community_of[grid_id]]
