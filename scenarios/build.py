"""Turn a validated scenario (parameters + geometry) into a :class:`twin.district.District`.

Everything the case study leaves open is placed *procedurally but seeded*: the same file
and seed give the same district, bit for bit. The rules, each documented in the xiaohe
README:

- **Grids** (网格): the district's patrolled road length is clustered into ``grids``
  compact pieces (length-weighted k-means on segment midpoints), and each grid is the
  Voronoi cell of its centre, clipped to the boundary. **Communities** cluster grids,
  **areas** (片区) cluster communities, so the three nest exactly.
- **Staff**: two grid workers per grid (alternating day/evening slots), grid leaders and
  instructors over contiguous runs of grids, brigade and enforcement members spread over
  areas in proportion to road length, each area with its own squad.
- **Shops** along commercial streets, denser near hotspots (the historic block);
  **cameras** at busy junctions and along shop streets; **sensors** in residential blocks;
  **venues** near shop streets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import shapely
from scipy.spatial import cKDTree
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.ops import unary_union

from scenarios.spec import ScenarioFile
from twin.assets import Camera, Sensor, Shop, Venue, Zone
from twin.catalog import Catalog
from twin.district import District, PolicySettings
from twin.errors import ValidationError
from twin.geo import (
    LocalProjection,
    Region,
    RegionIndex,
    RoadNetwork,
    TravelMode,
    TravelSpeeds,
    road_network_from_features,
)
from twin.staff import Member, Role, Roster, Shift, ShiftPlan, Squad

SHOP_STREET_WEIGHT = {"tertiary": 1.0, "residential": 1.0, "living_street": 1.2, "secondary": 0.6,
                      "unclassified": 0.6, "service": 0.25, "primary": 0.2}
JUNCTION_CLASS_WEIGHT = {"primary": 3.0, "secondary": 2.5, "tertiary": 2.0, "residential": 1.0,
                         "living_street": 1.0, "unclassified": 1.0, "service": 0.4}
SHOP_KIND_P = {"restaurant": 0.28, "grocery": 0.14, "fruit_veg": 0.10, "retail": 0.22,
               "service": 0.12, "pharmacy": 0.04, "tea_house": 0.04, "hardware": 0.03, "other": 0.03}
CAMERA_OWNER_P = {"police": 0.35, "city_management": 0.30, "public_order": 0.20, "private": 0.15}
SENSOR_KIND_P = {"door_contact": 0.6, "water_meter": 0.3, "smoke": 0.1}
ID_PREFIX = {Role.GRID_LEADER: "GL", Role.GRID_WORKER: "GW", Role.GRID_INSTRUCTOR: "GI",
             Role.CO_GOVERNANCE: "CG", Role.ENFORCEMENT: "EN"}


def kmeans(points: np.ndarray, k: int, *, weights: np.ndarray | None, rng: np.random.Generator,
           iterations: int = 40) -> np.ndarray:
    """Weighted k-means (k-means++ start for small k, Lloyd iterations); returns ``k`` centres.

    Args:
        points: ``(n, 2)`` coordinates, n ≥ k.
        k: Number of clusters.
        weights: Positive weight per point (``None``: equal).
        rng: The run's random generator.
        iterations: Lloyd iterations at most.
    """
    n = len(points)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if k <= 256:
        centres = np.empty((k, 2))
        centres[0] = points[rng.choice(n, p=w / w.sum())]
        d2 = ((points - centres[0]) ** 2).sum(1)
        for i in range(1, k):
            p = w * d2
            total = p.sum()
            idx = rng.choice(n, p=p / total) if total > 0 else int(rng.integers(n))
            centres[i] = points[idx]
            d2 = np.minimum(d2, ((points - centres[i]) ** 2).sum(1))
    else:  # large k: a weighted sample without replacement is a good enough start
        centres = points[rng.choice(n, size=k, replace=False, p=w / w.sum())].copy()
    for _ in range(iterations):
        label = _assign(points, centres)
        wsum = np.bincount(label, weights=w, minlength=k)
        new = np.column_stack([np.bincount(label, weights=w * points[:, 0], minlength=k),
                               np.bincount(label, weights=w * points[:, 1], minlength=k)])
        empty = wsum == 0
        new[~empty] /= wsum[~empty, None]
        if empty.any():  # empty clusters restart at the points farthest from their centres
            far = np.argsort(-((points - centres[label]) ** 2).sum(1) * w)[: int(empty.sum())]
            new[empty] = points[far]
        if np.allclose(new, centres):
            break
        centres = new
    return centres


def _assign(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre for each point."""
    return np.asarray(cKDTree(centres).query(points)[1], dtype=np.int64)


def _reading_order(xy: np.ndarray, cell_m: float = 500.0) -> np.ndarray:
    """Order points north-west first, in bands, so ids read like a map."""
    band = np.floor(-xy[:, 1] / cell_m)
    return np.lexsort((xy[:, 0], band))


def _largest_remainder(total: int, weights: np.ndarray, minimum: int = 0) -> np.ndarray:
    """Split ``total`` into integers proportional to ``weights``, each at least ``minimum``."""
    n = len(weights)
    base = np.full(n, minimum, dtype=np.int64)
    rest = total - base.sum()
    if rest <= 0:
        return base
    share = weights / weights.sum() * rest
    extra = np.floor(share).astype(np.int64)
    left = int(rest - extra.sum())
    order = np.argsort(-(share - extra), kind="stable")
    extra[order[:left]] += 1
    return base + extra


def _voronoi_cells(centres: np.ndarray, boundary: Polygon) -> list[Polygon | MultiPolygon]:
    """Voronoi cells of ``centres`` clipped to ``boundary``, in the order of ``centres``."""
    cells = list(shapely.voronoi_polygons(shapely.multipoints(centres),
                                          extend_to=boundary.buffer(1000)).geoms)
    pts, cell_idx = shapely.STRtree(cells).query(shapely.points(centres), predicate="within")
    out: list[Any] = [Polygon()] * len(centres)
    clipped = shapely.intersection(np.asarray(cells, dtype=object)[cell_idx], boundary)
    for p, geom in zip(pts, clipped):
        out[int(p)] = geom
    return out


def _regions(network: RoadNetwork, responsible: np.ndarray, boundary: Polygon,
             params: ScenarioFile, rng: np.random.Generator) -> RegionIndex:
    mids = network.midpoints[responsible]
    lengths = network.lengths_m[responsible]
    n_grids, n_comm, n_areas = params.regions.grids, params.regions.communities, params.regions.areas
    if len(responsible) < n_grids:
        raise ValidationError("regions.grids", f"{n_grids} grids need at least as many patrolled "
                              f"road segments inside the boundary; there are {len(responsible)}")
    centres = kmeans(mids, n_grids, weights=lengths, rng=rng)
    centres = centres[_reading_order(centres)]
    cells = _voronoi_cells(centres, boundary)
    grid_len = np.bincount(_assign(mids, centres), weights=lengths, minlength=n_grids)
    comm_centres = kmeans(centres, n_comm, weights=grid_len + 1.0, rng=rng)
    comm_centres = comm_centres[_reading_order(comm_centres)]
    grid_comm = _assign(centres, comm_centres)
    comm_len = np.bincount(grid_comm, weights=grid_len, minlength=n_comm)
    area_centres = kmeans(comm_centres, n_areas, weights=comm_len + 1.0, rng=rng)
    area_centres = area_centres[_reading_order(area_centres)]
    comm_area = _assign(comm_centres, area_centres)
    # A cluster left empty by the assignment would be a region without grids: reject early.
    for what, labels, n in (("communities", grid_comm, n_comm), ("areas", comm_area, n_areas)):
        if len(np.unique(labels)) != n:
            raise ValidationError(f"regions.{what}", f"cannot cut {n} {what} with at least one "
                                  "grid each from this boundary; use fewer")
    comm_cells: list[list[Any]] = [[] for _ in range(n_comm)]
    area_cells: list[list[Any]] = [[] for _ in range(n_areas)]
    for g in range(n_grids):
        comm_cells[grid_comm[g]].append(cells[g])
        area_cells[comm_area[grid_comm[g]]].append(cells[g])
    areas = [Region(f"A{j + 1}", "area", f"Area {j + 1} (片区{j + 1})", unary_union(area_cells[j]))
             for j in range(n_areas)]
    comms = [Region(f"C{j + 1:02d}", "community", f"Community {j + 1} (社区{j + 1})",
                    unary_union(comm_cells[j]), parent=f"A{comm_area[j] + 1}")
             for j in range(n_comm)]
    grids = [Region(f"G{g + 1:03d}", "grid", f"Grid {g + 1} (网格{g + 1})", cells[g],
                    parent=f"C{grid_comm[g] + 1:02d}") for g in range(n_grids)]
    return RegionIndex(grids, comms, areas)


def _members(params: ScenarioFile, regions: RegionIndex, network: RoadNetwork,
             grid_len: np.ndarray, snap: Callable[[np.ndarray], np.ndarray],
             squads: Sequence[Squad]) -> list[Member]:
    grids, areas = regions.grids, regions.areas
    squad_of = {a: s.id for s in squads for a in s.area_ids}
    pending: list[tuple[Role, int, str, tuple[str, ...], int, tuple[float, float]]] = []
    rep = shapely.get_coordinates(shapely.point_on_surface(np.array([g.polygon for g in grids], dtype=object)))
    grid_pos = {g.id: i for i, g in enumerate(grids)}

    def add(role: Role, k: int, area: str, grid_ids: tuple[str, ...], slot: int, xy: tuple[float, float]) -> None:
        pending.append((role, k, area, grid_ids, slot, xy))

    def grid_point(g: Region) -> tuple[float, float]:
        x, y = rep[grid_pos[g.id]]
        return float(x), float(y)

    # Grid workers: round-robin over grids (longest road first when counts do not divide).
    if Role.GRID_WORKER in params.staff:
        count = params.staff[Role.GRID_WORKER].count
        if count < len(grids):
            raise ValidationError("staff.grid_worker.count", f"{count} grid workers cannot cover "
                                  f"{len(grids)} grids: at least one per grid is needed")
        order = np.argsort(-grid_len, kind="stable")
        per_grid: dict[int, int] = {}
        for k in range(count):
            g = int(order[k % len(grids)])
            slot = per_grid.get(g, 0)
            per_grid[g] = slot + 1
            gr = grids[g]
            add(Role.GRID_WORKER, k + 1, regions.area_of(gr.id), (gr.id,), slot, grid_point(gr))
    # Leaders and instructors: contiguous runs of grids (grids are numbered community by community).
    by_comm = sorted(range(len(grids)), key=lambda g: (grids[g].parent or "", g))
    for role in (Role.GRID_LEADER, Role.GRID_INSTRUCTOR):
        if role not in params.staff or params.staff[role].count == 0:
            continue
        count = params.staff[role].count
        chunks = np.array_split(np.array(by_comm), count)
        for k, chunk in enumerate(chunks):
            if len(chunk) == 0:
                chunk = np.array([by_comm[k % len(by_comm)]])
            gr = grids[int(chunk[0])]
            add(role, k + 1, regions.area_of(gr.id), tuple(grids[int(g)].id for g in chunk), k,
                grid_point(gr))
    # Brigade and enforcement: spread over areas in proportion to road length.
    area_pos = {a.id: j for j, a in enumerate(areas)}
    area_len = np.zeros(len(areas))
    grids_of_area: list[list[Region]] = [[] for _ in areas]
    for g, gr in enumerate(grids):
        j = area_pos[regions.area_of(gr.id)]
        area_len[j] += grid_len[g]
        grids_of_area[j].append(gr)
    for role in (Role.CO_GOVERNANCE, Role.ENFORCEMENT):
        if role not in params.staff or params.staff[role].count == 0:
            continue
        spec_r = params.staff[role]
        if spec_r.per_area is not None:  # explicit head count per area and shift
            unknown = [a for a in spec_r.per_area if a not in area_pos]
            if unknown:
                raise ValidationError(f"staff.{role.value}.per_area", f"unknown area(s) {unknown}; the "
                                      f"district's areas are {', '.join(area_pos)}")
            k = 0
            for area in areas:
                area_grids = grids_of_area[area_pos[area.id]]
                i = 0
                for code, n in (spec_r.per_area.get(area.id) or {}).items():
                    for _ in range(n):
                        k += 1
                        post = area_grids[(i * 7) % len(area_grids)]
                        add(role, k, area.id, (), spec_r.shifts.index(code), grid_point(post))
                        i += 1
            continue
        count = spec_r.count
        n_shifts = len(spec_r.shifts)
        if count < len(areas):
            raise ValidationError(f"staff.{role.value}.count", f"{count} members cannot serve "
                                  f"{len(areas)} areas: at least one per area is needed")
        per_area = _largest_remainder(count, area_len + 1.0, minimum=min(n_shifts, count // len(areas)))
        k = 0
        for j, area in enumerate(areas):
            area_grids = grids_of_area[j]
            for i in range(int(per_area[j])):
                k += 1
                post = area_grids[(i * 7) % len(area_grids)]  # posts spread over the area's grids
                add(role, k, area.id, (), i, grid_point(post))
    posts = snap(np.array([p[5] for p in pending], dtype=np.float64).reshape(-1, 2))
    return [Member(id=f"{ID_PREFIX[role]}{k:03d}", name=f"{role.value.replace('_', ' ').title()} {k}",
                   role=role, area_id=area, squad_id=squad_of.get(area, ""), grid_ids=gids,
                   shift_slot=slot, post_node=int(node), travel_mode=TravelMode(params.staff[role].travel))
            for (role, k, area, gids, slot, _), node in zip(pending, posts)]


def _squads(params: ScenarioFile, regions: RegionIndex) -> tuple[Squad, ...]:
    area_ids = [a.id for a in regions.areas]
    if not params.squads:
        return tuple(Squad(f"SQ-{a}", f"Squad of {a}", (a,)) for a in area_ids)
    squads = []
    for sq in params.squads:
        for a in sq.areas:
            if a not in area_ids:
                raise ValidationError(f"squads[{sq.id}].areas", f"unknown area '{a}'; the district's "
                                      f"areas are {', '.join(area_ids)}")
        squads.append(Squad(sq.id, sq.name or sq.id, tuple(sq.areas)))
    covered = {a for s in squads for a in s.area_ids}
    missing = [a for a in area_ids if a not in covered]
    if missing:
        raise ValidationError("squads", f"the roads of area{'s' if len(missing) > 1 else ''} "
                              f"{', '.join(missing)} are covered by no squad; every road needs a "
                              "responsible squad")
    return tuple(squads)


def _pick_along(network: RoadNetwork, seg_idx: np.ndarray, weights: np.ndarray, n: int,
                rng: np.random.Generator, *, offset_m: tuple[float, float],
                keep: Polygon | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample ``n`` points beside roads.

    Returns:
        ``(segment index, xy (n, 2), unit tangent of the road (n, 2))``. With ``keep``,
        points falling outside it are drawn again, so exactly ``n`` come back.
    """
    segs_out, xy_out, tan_out = [], [], []
    if n > 0 and len(seg_idx) > 0:
        p = weights / weights.sum()
        if keep is not None:
            shapely.prepare(keep)
        need = n
        for _ in range(50):
            segs = rng.choice(seg_idx, size=need, p=p)
            lines = network.lines[segs]
            length = network.lengths_m[segs]
            d = rng.uniform(0.1, 0.9, size=need) * length
            a = shapely.get_coordinates(shapely.line_interpolate_point(lines, np.maximum(d - 1.0, 0.0)))
            b = shapely.get_coordinates(shapely.line_interpolate_point(lines, np.minimum(d + 1.0, length)))
            c = shapely.get_coordinates(shapely.line_interpolate_point(lines, d))
            t = b - a
            t /= np.maximum(np.hypot(t[:, 0], t[:, 1]), 1e-9)[:, None]
            side = np.where(rng.random(need) < 0.5, 1.0, -1.0)
            off = rng.uniform(*offset_m, size=need) * side
            xy = c + np.column_stack([-t[:, 1], t[:, 0]]) * off[:, None]
            ok = np.ones(need, bool) if keep is None else shapely.intersects_xy(keep, xy[:, 0], xy[:, 1])
            segs_out.append(segs[ok])
            xy_out.append(xy[ok])
            tan_out.append(t[ok])
            need -= int(ok.sum())
            if need == 0:
                break
    if not segs_out:
        return np.zeros(0, np.int64), np.zeros((0, 2)), np.zeros((0, 2))
    return np.concatenate(segs_out), np.concatenate(xy_out), np.concatenate(tan_out)


def _choice(rng: np.random.Generator, probs: dict[str, float], n: int) -> list[str]:
    keys = list(probs)
    return [keys[i] for i in rng.choice(len(keys), size=n, p=np.array(list(probs.values())))]


def build_district(
    params: ScenarioFile,
    *,
    boundary_lonlat: Polygon,
    road_features: Sequence[dict[str, Any]],
    catalog: Catalog,
    sources: dict[str, str] | None = None,
    explicit_assets: dict[str, list[dict[str, Any]]] | None = None,
    notes: dict[str, Any] | None = None,
) -> District:
    """Assemble the district.

    Args:
        params: The validated ``scenario.toml``.
        boundary_lonlat: Study boundary, WGS84.
        road_features: GeoJSON road features (see :func:`twin.geo.road_network_from_features`).
        catalog: The validated catalog.
        sources: File names for error messages (``boundary``, ``roads``, ...).
        explicit_assets: Point features given in files, by kind (``cameras``, ``shops``,
            ``sensors``, ``venues``), replacing procedural placement of that kind.
        notes: Provenance and attribution to keep with the district.
    """
    sources = sources or {}
    rng = np.random.default_rng(np.random.SeedSequence(params.seed))
    c = boundary_lonlat.centroid
    projection = LocalProjection(round(c.x, 6), round(c.y, 6))
    speeds = TravelSpeeds(params.travel.walk_speed_mps, params.travel.ebike_speed_mps,
                          params.travel.car_speed_factor)
    network = road_network_from_features(road_features, projection=projection, speeds=speeds,
                                         source=sources.get("roads"))
    boundary = projection.geometry_to_xy(boundary_lonlat)
    shapely.prepare(boundary)
    mids = network.midpoints
    inside = shapely.contains_xy(boundary, mids[:, 0], mids[:, 1])
    patrolled = np.fromiter((s.patrolled for s in network.segments), dtype=bool)
    responsible = np.flatnonzero(inside & patrolled)
    if len(responsible) == 0:
        raise ValidationError("geometry.roads", "no patrolled road lies inside the boundary",
                              source=sources.get("roads"))
    regions = _regions(network, responsible, boundary, params, rng)
    road_grid = regions.grids_at(mids, tolerance_m=1.0)  # midpoints on a boundary street
    road_grid[~(inside & patrolled)] = -1
    lengths = network.lengths_m
    ok = road_grid >= 0
    grid_len = np.bincount(road_grid[ok], weights=lengths[ok], minlength=len(regions.grids))
    resp_tree = shapely.STRtree(network.lines[responsible])

    def snap_many(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest patrolled segment and its nearer end node, for many points."""
        pts = shapely.points(xy)
        seg = responsible[np.asarray(resp_tree.nearest(pts), dtype=np.int64)]
        along = shapely.line_locate_point(network.lines[seg], pts)
        u = np.fromiter((network.segments[int(i)].u for i in seg), np.int64, len(seg))
        v = np.fromiter((network.segments[int(i)].v for i in seg), np.int64, len(seg))
        return seg, np.where(along <= network.lengths_m[seg] / 2, u, v)

    def grid_ids(xy: np.ndarray) -> list[str]:
        idx = regions.grids_at(xy, tolerance_m=50.0)
        return [regions.grids[int(i)].id if i >= 0 else "" for i in idx]

    squads = _squads(params, regions)
    members = _members(params, regions, network, grid_len, lambda xy: snap_many(xy)[1], squads)
    plan = ShiftPlan(Shift(s.code, s.seconds("start"), s.seconds("end")) for s in params.shifts)
    roster = Roster(members, plan, {r: tuple(sp.shifts) for r, sp in params.staff.items()},
                    timezone_name=params.timezone, rotation_days=params.roster.rotation_days,
                    handover_s=params.roster.handover_s)

    # Hotspots raise shop and venue density near them.
    hot = [(projection.to_xy(h.lon, h.lat), h.radius_m, h.weight) for h in params.assets.hotspots]

    def hot_factor(xy: np.ndarray) -> np.ndarray:
        f = np.ones(len(xy))
        for (hx, hy), r, w in hot:
            d = np.hypot(xy[:, 0] - hx, xy[:, 1] - hy)
            f += (w - 1.0) * np.exp(-((d / r) ** 2))
        return f

    explicit = explicit_assets or {}
    a = params.assets
    cls = [network.segments[int(i)].road_class for i in responsible]
    resp_len = lengths[responsible]

    def explicit_points(kind: str) -> list[Any]:
        return _explicit_points(kind, explicit[kind], boundary, projection, snap_many, grid_ids,
                                network, sources, defaults=a)

    # Shops: along commercial streets, denser near hotspots.
    if "shops" in explicit:
        shops = tuple(explicit_points("shops"))
    else:
        w = resp_len * np.array([SHOP_STREET_WEIGHT.get(k, 0.3) for k in cls]) * hot_factor(mids[responsible])
        segs, xy, tan = _pick_along(network, responsible, w, a.shops, rng, offset_m=(8.0, 14.0), keep=boundary)
        fronts = shapely.linestrings(np.stack([xy - 3 * tan, xy + 3 * tan], axis=1))
        shops = tuple(Shop(f"S{n + 1:05d}", kind, float(x), float(y), network.segments[int(sg)].id, g, fr)
                      for n, (kind, (x, y), sg, g, fr) in enumerate(zip(
                          _choice(rng, SHOP_KIND_P, len(segs)), xy, segs, grid_ids(xy), fronts)))

    # Cameras: 60% at busy junctions, 40% along shop streets.
    cameras = with_zones(network, explicit_points("cameras") if "cameras" in explicit else
                         _place_cameras(network, responsible, boundary, shops, a, rng, grid_ids))

    # Sensors: homes of elderly people living alone, in residential blocks.
    if "sensors" in explicit:
        sensors = tuple(explicit_points("sensors"))
    else:
        w = resp_len * np.array([1.0 if k in ("residential", "service", "living_street") else 0.2 for k in cls])
        segs, xy, _ = _pick_along(network, responsible, w, a.sensors, rng, offset_m=(15.0, 40.0), keep=boundary)
        sensors = tuple(Sensor(f"E{n + 1:05d}", kind, float(x), float(y), network.segments[int(sg)].id, g,
                               household=f"H{n + 1:05d}")
                        for n, (kind, (x, y), sg, g) in enumerate(zip(
                            _choice(rng, SENSOR_KIND_P, len(segs)), xy, segs, grid_ids(xy))))

    # Venues: rented rooms beside shops (sales meetings), or halls.
    if "venues" in explicit:
        venues = tuple(explicit_points("venues"))
    else:
        picks = sorted(int(i) for i in rng.choice(len(shops), size=min(a.venues, len(shops)), replace=False)) \
            if shops else []
        kinds = ["sales_meeting_room" if r < 0.6 else "rental_hall" for r in rng.random(len(picks))]
        caps = rng.integers(20, 120, size=len(picks))
        venues = tuple(Venue(f"V{n + 1:04d}", kind, shops[i].x, shops[i].y, shops[i].road_id, shops[i].grid_id,
                             capacity=int(cap)) for n, (i, kind, cap) in enumerate(zip(picks, kinds, caps)))

    return District(
        name=params.name, title=params.title or params.name, boundary=boundary, roads=network,
        responsible=responsible, road_grid=road_grid, regions=regions, squads=squads, roster=roster,
        catalog=catalog, cameras=cameras, shops=shops, sensors=sensors, venues=venues,
        population=params.population, stated_area_km2=params.stated_area_km2,
        policy=PolicySettings(max_reassign=params.policy.max_reassign),
        notes={**(notes or {}), "seed": params.seed},
    )


def _place_cameras(network: RoadNetwork, responsible: np.ndarray, boundary: Polygon,
                   shops: Sequence[Shop], a: Any, rng: np.random.Generator,
                   grid_ids: Callable[[np.ndarray], list[str]]) -> tuple[Camera, ...]:
    if a.cameras == 0:
        return ()
    # Junction score: degree in the patrolled network times the best class meeting there.
    deg: dict[int, int] = {}
    best: dict[int, float] = {}
    incident: dict[int, list[int]] = {}
    for i in responsible:
        s = network.segments[int(i)]
        for node in (s.u, s.v):
            deg[node] = deg.get(node, 0) + 1
            best[node] = max(best.get(node, 0.0), JUNCTION_CLASS_WEIGHT.get(s.road_class, 0.5))
            incident.setdefault(node, []).append(int(i))
    cand = np.array(sorted(n for n, d in deg.items() if d >= 3), dtype=np.int64)
    if len(cand):
        cand = cand[shapely.intersects_xy(boundary, network.node_xy[cand, 0], network.node_xy[cand, 1])]
    n_junction = min(int(round(a.cameras * 0.6)), len(cand))
    segs_j = np.zeros(0, np.int64)
    xy_j = np.zeros((0, 2))
    head_j = np.zeros(0)
    if n_junction:
        score = np.array([deg[int(n)] * best[int(n)] for n in cand], dtype=np.float64)
        nodes = np.sort(rng.choice(cand, size=n_junction, replace=False, p=score / score.sum()))
        segs_j = np.array([sorted(incident[int(n)])[int(rng.integers(len(incident[int(n)])))] for n in nodes])
        # Look from the junction 30 m along the chosen segment.
        length = network.lengths_m[segs_j]
        at_start = np.array([network.segments[int(sg)].u == int(n) for sg, n in zip(segs_j, nodes)])
        dist = np.where(at_start, np.minimum(30.0, length), np.maximum(length - 30.0, 0.0))
        far = shapely.get_coordinates(shapely.line_interpolate_point(network.lines[segs_j], dist))
        xy_j = network.node_xy[nodes]
        head_j = np.degrees(np.arctan2(far[:, 0] - xy_j[:, 0], far[:, 1] - xy_j[:, 1])) % 360.0
    shop_segs = np.array(sorted({network.index_of(sh.road_id) for sh in shops})) if shops else responsible
    segs_s, xy_s, tan_s = _pick_along(network, shop_segs, np.ones(len(shop_segs)), a.cameras - n_junction,
                                      rng, offset_m=(4.0, 7.0), keep=boundary)
    head_s = np.degrees(np.arctan2(tan_s[:, 0], tan_s[:, 1])) % 360.0
    head_s = np.where(rng.random(len(head_s)) < 0.5, (head_s + 180.0) % 360.0, head_s)
    segs = np.concatenate([segs_j, segs_s]).astype(np.int64)
    xy = np.concatenate([xy_j, xy_s])
    heading = np.round(np.concatenate([head_j, head_s]), 1)
    owners = _choice(rng, CAMERA_OWNER_P, len(segs))
    return tuple(Camera(f"K{n + 1:04d}", own, float(x), float(y), float(h), a.camera_fov_deg,
                        a.camera_range_m, network.segments[int(sg)].id, g, (), a.camera_detect_p,
                        a.camera_latency_s)
                 for n, (sg, (x, y), h, g, own) in enumerate(zip(segs, xy, heading, grid_ids(xy), owners)))


def with_zones(network: RoadNetwork, cameras: Sequence[Camera]) -> tuple[Camera, ...]:
    """Cameras with their rule zones on the road they watch, computed for all at once.

    Zones: a 4 m strip each side of the road's centre line (no parking) and the band 8-14 m
    from it where storefronts and pavement spill-over are, each clipped to the field of view
    (coarse arcs: zones are metres wide). A camera that sees none of its road gets no zones.
    """
    if not cameras:
        return ()
    segs = np.array([network.index_of(c.road_id) for c in cameras])
    fov = np.array([c.fov for c in cameras], dtype=object)
    road = shapely.intersection(network.lines[segs], fov)
    no_parking = shapely.intersection(shapely.buffer(road, 4.0, quad_segs=2), fov)
    band = shapely.difference(shapely.buffer(road, 14.0, quad_segs=2), shapely.buffer(road, 8.0, quad_segs=2))
    storefront = shapely.intersection(band, fov)
    return tuple(
        replace(c, zones=() if rd.is_empty else (Zone("no_parking", npz, c.road_id),
                                                  Zone("storefront", sfz, c.road_id)))
        for c, rd, npz, sfz in zip(cameras, road, no_parking, storefront))


def _explicit_points(kind: str, features: list[dict[str, Any]], boundary: Polygon,
                     projection: LocalProjection,
                     snap_many: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
                     grid_ids: Callable[[np.ndarray], list[str]], network: RoadNetwork,
                     sources: dict[str, str], defaults: Any = None) -> list[Any]:
    """Point assets from a GeoJSON file; each must lie inside the boundary."""
    src = sources.get(kind)
    out: list[Any] = []
    seen: set[str] = set()
    for i, f in enumerate(features):
        where = f"{kind}.features[{i}]"
        geom = f.get("geometry") if isinstance(f, dict) else None
        props = (f.get("properties") if isinstance(f, dict) else None) or {}
        coords = geom.get("coordinates") if isinstance(geom, dict) else None
        if not isinstance(geom, dict) or geom.get("type") != "Point" or not isinstance(coords, list) \
                or len(coords) < 2 or not all(isinstance(v, (int, float)) for v in coords[:2]):
            raise ValidationError(f"{where}.geometry", "must be a GeoJSON Point [lon, lat]", source=src)
        x, y = (float(v) for v in projection.to_xy(coords[0], coords[1]))
        if not boundary.covers(Point(x, y)):
            raise ValidationError(f"{where}.geometry", f"({coords[0]}, {coords[1]}) lies outside the "
                                  "district boundary", source=src)
        fid = str(props.get("id") or f"{kind[0].upper()}{i + 1:05d}")
        if fid in seen:
            raise ValidationError(f"{where}.properties.id", f"duplicate id '{fid}'", source=src)
        seen.add(fid)
        xy = np.array([[x, y]])
        s = network.segments[int(snap_many(xy)[0][0])]
        g = grid_ids(xy)[0]
        try:
            if kind == "cameras":
                out.append(Camera(fid, str(props.get("owner", "city_management")), x, y,
                                  float(props.get("heading_deg", 0.0)),
                                  float(props.get("fov_deg", defaults.camera_fov_deg)),
                                  float(props.get("range_m", defaults.camera_range_m)), s.id, g, (),
                                  float(props.get("detect_p", defaults.camera_detect_p)),
                                  float(props.get("latency_s", defaults.camera_latency_s))))
            elif kind == "shops":
                out.append(Shop(fid, str(props.get("kind", "other")), x, y, s.id, g,
                                LineString([(x - 3, y), (x + 3, y)])))
            elif kind == "sensors":
                out.append(Sensor(fid, str(props.get("kind", "door_contact")), x, y, s.id, g,
                                  props.get("household")))
            else:
                out.append(Venue(fid, str(props.get("kind", "rental_hall")), x, y, s.id, g,
                                 int(props.get("capacity", 50))))
        except ValidationError as exc:
            raise ValidationError(f"{where}.properties", exc.reason, source=src) from None
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"{where}.properties", f"bad value: {exc}", source=src) from None
    return out
