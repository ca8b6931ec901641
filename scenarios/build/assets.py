"""Assets: shops, cameras (and their rule zones), sensors and venues.

Each kind is either given as GeoJSON points (``[geometry] shops = "shops.geojson"``, ...) or
placed procedurally from the district's random generator:

- **Shops** along commercial streets, denser near hotspots (the historic block).
- **Cameras**: 60% at busy junctions, 40% along shop streets; each gets a no-parking and a
  storefront zone on the road it watches.
- **Sensors** at the homes of elderly people living alone, in residential blocks.
- **Venues**: rented rooms at shop addresses (sales meetings), or halls.

The draws happen in that order (shops, cameras, sensors, venues); a kind given in a file
draws nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon

from scenarios.build.ground import Ground
from scenarios.spec import AssetParams, Hotspot
from twin.assets import Camera, Sensor, Shop, Venue, Zone
from twin.errors import ValidationError
from twin.geo import RoadNetwork

SHOP_STREET_WEIGHT = {"tertiary": 1.0, "residential": 1.0, "living_street": 1.2, "secondary": 0.6,
                      "unclassified": 0.6, "service": 0.25, "primary": 0.2}
JUNCTION_CLASS_WEIGHT = {"primary": 3.0, "secondary": 2.5, "tertiary": 2.0, "residential": 1.0,
                         "living_street": 1.0, "unclassified": 1.0, "service": 0.4}
SHOP_KIND_P = {"restaurant": 0.28, "grocery": 0.14, "fruit_veg": 0.10, "retail": 0.22,
               "service": 0.12, "pharmacy": 0.04, "tea_house": 0.04, "hardware": 0.03, "other": 0.03}
CAMERA_OWNER_P = {"police": 0.35, "city_management": 0.30, "public_order": 0.20, "private": 0.15}
SENSOR_KIND_P = {"door_contact": 0.6, "water_meter": 0.3, "smoke": 0.1}

#: GeoJSON point features, as read from a file.
Features = Sequence[dict[str, Any]]


def place_shops(ground: Ground, assets: AssetParams, rng: np.random.Generator, *,
                features: Features | None = None, source: str | None = None) -> tuple[Shop, ...]:
    """Shops from ``features``, or ``assets.shops`` of them along commercial streets.

    Procedural shops stand 8-14 m off a patrolled road drawn with probability ∝ length ×
    street-class weight (:data:`SHOP_STREET_WEIGHT`) × hotspot factor; kinds follow
    :data:`SHOP_KIND_P`.
    """
    if features is not None:
        return tuple(_from_features("shops", features, ground, source=source, defaults=assets))
    network, responsible = ground.network, ground.responsible
    cls = [network.segments[int(i)].road_class for i in responsible]
    hot = _hot_factor(ground, assets.hotspots, network.midpoints[responsible])
    w = network.lengths_m[responsible] * np.array([SHOP_STREET_WEIGHT.get(k, 0.3) for k in cls]) * hot
    segs, xy, tan = _pick_along(network, responsible, w, assets.shops, rng, offset_m=(8.0, 14.0),
                                keep=ground.boundary)
    fronts = shapely.linestrings(np.stack([xy - 3 * tan, xy + 3 * tan], axis=1))
    return tuple(Shop(f"S{n + 1:05d}", kind, float(x), float(y), network.segments[int(sg)].id, g, fr)
                 for n, (kind, (x, y), sg, g, fr) in enumerate(zip(
                     _choice(rng, SHOP_KIND_P, len(segs)), xy, segs, ground.grid_ids(xy), fronts)))


def place_cameras(ground: Ground, shops: Sequence[Shop], assets: AssetParams, rng: np.random.Generator, *,
                  features: Features | None = None, source: str | None = None) -> tuple[Camera, ...]:
    """Cameras from ``features``, or ``assets.cameras`` of them at junctions and shop streets;
    each with its rule zones (see :func:`with_zones`)."""
    if features is not None:
        cameras: Sequence[Camera] = _from_features("cameras", features, ground, source=source, defaults=assets)
    else:
        cameras = _procedural_cameras(ground, shops, assets, rng)
    return with_zones(ground.network, cameras)


def place_sensors(ground: Ground, assets: AssetParams, rng: np.random.Generator, *,
                  features: Features | None = None, source: str | None = None) -> tuple[Sensor, ...]:
    """Sensors from ``features``, or ``assets.sensors`` of them at homes in residential blocks
    (15-40 m off residential, service and living streets, five times likelier than elsewhere)."""
    if features is not None:
        return tuple(_from_features("sensors", features, ground, source=source, defaults=assets))
    network, responsible = ground.network, ground.responsible
    cls = [network.segments[int(i)].road_class for i in responsible]
    w = network.lengths_m[responsible] * np.array([1.0 if k in ("residential", "service", "living_street")
                                                   else 0.2 for k in cls])
    segs, xy, _ = _pick_along(network, responsible, w, assets.sensors, rng, offset_m=(15.0, 40.0),
                              keep=ground.boundary)
    return tuple(Sensor(f"E{n + 1:05d}", kind, float(x), float(y), network.segments[int(sg)].id, g,
                        household=f"H{n + 1:05d}")
                 for n, (kind, (x, y), sg, g) in enumerate(zip(
                     _choice(rng, SENSOR_KIND_P, len(segs)), xy, segs, ground.grid_ids(xy))))


def place_venues(ground: Ground, shops: Sequence[Shop], assets: AssetParams, rng: np.random.Generator, *,
                 features: Features | None = None, source: str | None = None) -> tuple[Venue, ...]:
    """Venues from ``features``, or ``assets.venues`` rooms at distinct shop addresses (60%
    sales-meeting rooms, 40% rental halls, capacity 20-119)."""
    if features is not None:
        return tuple(_from_features("venues", features, ground, source=source, defaults=assets))
    picks = sorted(int(i) for i in rng.choice(len(shops), size=min(assets.venues, len(shops)), replace=False)) \
        if shops else []
    kinds = ["sales_meeting_room" if r < 0.6 else "rental_hall" for r in rng.random(len(picks))]
    caps = rng.integers(20, 120, size=len(picks))
    return tuple(Venue(f"V{n + 1:04d}", kind, shops[i].x, shops[i].y, shops[i].road_id, shops[i].grid_id,
                       capacity=int(cap)) for n, (i, kind, cap) in enumerate(zip(picks, kinds, caps)))


def with_zones(network: RoadNetwork, cameras: Sequence[Camera]) -> tuple[Camera, ...]:
    """Cameras with their rule zones on the road they watch, computed for all at once.

    Zones, each clipped to the field of view (coarse arcs: zones are metres wide): the
    carriageway, 3 m each side of the road's centre line (roadway); a 4 m strip each side
    (no parking); the pavement, 4-8 m from the centre line (sidewalk); and the band 8-14 m
    from it where storefronts and the spill-over before them are (storefront). A camera that
    sees none of its road gets no zones. Venue doors (entrance) are added with the venues
    (:func:`with_entrances`).
    """
    if not cameras:
        return ()
    segs = np.array([network.index_of(c.road_id) for c in cameras])
    fov = np.array([c.fov for c in cameras], dtype=object)
    road = shapely.intersection(network.lines[segs], fov)
    strip = shapely.buffer(road, 4.0, quad_segs=2)
    no_parking = shapely.intersection(strip, fov)
    roadway = shapely.intersection(shapely.buffer(road, 3.0, quad_segs=2), fov)
    walk = shapely.buffer(road, 8.0, quad_segs=2)
    sidewalk = shapely.intersection(shapely.difference(walk, strip), fov)
    band = shapely.difference(shapely.buffer(road, 14.0, quad_segs=2), walk)
    storefront = shapely.intersection(band, fov)
    return tuple(
        replace(c, zones=() if rd.is_empty else (Zone("no_parking", npz, c.road_id),
                                                  Zone("storefront", sfz, c.road_id),
                                                  Zone("roadway", rw, c.road_id),
                                                  Zone("sidewalk", sw, c.road_id)))
        for c, rd, npz, sfz, rw, sw in zip(cameras, road, no_parking, storefront, roadway, sidewalk))


def with_entrances(cameras: Sequence[Camera], venues: Sequence[Venue], radius_m: float = 6.0) -> tuple[Camera, ...]:
    """Cameras with an ``entrance`` zone at each venue in their view: the ground within
    ``radius_m`` of its door (where a crowd gathers for a sales meeting)."""
    if not venues:
        return tuple(cameras)
    from shapely.geometry import Point

    out = []
    for c in cameras:
        doors = [Point(v.x, v.y).buffer(radius_m, quad_segs=4) for v in venues if c.sees(v.x, v.y)]
        if doors:
            area = shapely.intersection(shapely.union_all(doors), c.fov)
            if not area.is_empty:
                c = replace(c, zones=(*c.zones, Zone("entrance", area, c.road_id)))
        out.append(c)
    return tuple(out)


def _procedural_cameras(ground: Ground, shops: Sequence[Shop], a: AssetParams,
                        rng: np.random.Generator) -> tuple[Camera, ...]:
    """60% at junctions of three or more patrolled roads (∝ degree × best road class there),
    looking 30 m along one road; the rest 4-7 m beside shop streets, looking along them."""
    if a.cameras == 0:
        return ()
    network, responsible, boundary = ground.network, ground.responsible, ground.boundary
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
                 for n, (sg, (x, y), h, g, own) in enumerate(zip(segs, xy, heading, ground.grid_ids(xy), owners)))


def _hot_factor(ground: Ground, hotspots: Sequence[Hotspot], xy: np.ndarray) -> np.ndarray:
    """Density factor at each point: 1 + (weight - 1)·exp(-(d / radius)²) summed over hotspots."""
    f = np.ones(len(xy))
    for h in hotspots:
        hx, hy = ground.projection.to_xy(h.lon, h.lat)
        d = np.hypot(xy[:, 0] - hx, xy[:, 1] - hy)
        f += (h.weight - 1.0) * np.exp(-((d / h.radius_m) ** 2))
    return f


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
    """``n`` keys of ``probs`` drawn with its probabilities."""
    keys = list(probs)
    return [keys[i] for i in rng.choice(len(keys), size=n, p=np.array(list(probs.values())))]


# --- assets given as GeoJSON points ----------------------------------------------------------

def _camera(fid: str, p: dict[str, Any], x: float, y: float, road: str, grid: str, d: AssetParams) -> Camera:
    return Camera(fid, str(p.get("owner", "city_management")), x, y, float(p.get("heading_deg", 0.0)),
                  float(p.get("fov_deg", d.camera_fov_deg)), float(p.get("range_m", d.camera_range_m)), road, grid,
                  (), float(p.get("detect_p", d.camera_detect_p)), float(p.get("latency_s", d.camera_latency_s)))


def _shop(fid: str, p: dict[str, Any], x: float, y: float, road: str, grid: str, d: AssetParams) -> Shop:
    return Shop(fid, str(p.get("kind", "other")), x, y, road, grid, LineString([(x - 3, y), (x + 3, y)]))


def _sensor(fid: str, p: dict[str, Any], x: float, y: float, road: str, grid: str, d: AssetParams) -> Sensor:
    return Sensor(fid, str(p.get("kind", "door_contact")), x, y, road, grid, p.get("household"))


def _venue(fid: str, p: dict[str, Any], x: float, y: float, road: str, grid: str, d: AssetParams) -> Venue:
    return Venue(fid, str(p.get("kind", "rental_hall")), x, y, road, grid, int(p.get("capacity", 50)))


#: How each kind of asset is made from a point's properties (defaults from ``[assets]``).
_FROM_PROPERTIES: dict[str, Callable[[str, dict[str, Any], float, float, str, str, AssetParams], Any]] = {
    "cameras": _camera, "shops": _shop, "sensors": _sensor, "venues": _venue}


def _from_features(kind: str, features: Features, ground: Ground, *, source: str | None,
                   defaults: AssetParams) -> list[Any]:
    """Point assets of one kind from a GeoJSON file; each must lie inside the boundary.

    Raises:
        ValidationError: naming ``source`` and the feature: not a Point, outside the
            boundary, a duplicate id or a bad property.
    """
    make = _FROM_PROPERTIES[kind]
    out: list[Any] = []
    seen: set[str] = set()
    for i, f in enumerate(features):
        where = f"{kind}.features[{i}]"
        geom = f.get("geometry") if isinstance(f, dict) else None
        props = (f.get("properties") if isinstance(f, dict) else None) or {}
        coords = geom.get("coordinates") if isinstance(geom, dict) else None
        if not isinstance(geom, dict) or geom.get("type") != "Point" or not isinstance(coords, list) \
                or len(coords) < 2 or not all(isinstance(v, (int, float)) for v in coords[:2]):
            raise ValidationError(f"{where}.geometry", "must be a GeoJSON Point [lon, lat]", source=source)
        x, y = (float(v) for v in ground.projection.to_xy(coords[0], coords[1]))
        if not ground.boundary.covers(Point(x, y)):
            raise ValidationError(f"{where}.geometry", f"({coords[0]}, {coords[1]}) lies outside the "
                                  "district boundary", source=source)
        fid = str(props.get("id") or f"{kind[0].upper()}{i + 1:05d}")
        if fid in seen:
            raise ValidationError(f"{where}.properties.id", f"duplicate id '{fid}'", source=source)
        seen.add(fid)
        xy = np.array([[x, y]])
        road = ground.network.segments[int(ground.snap(xy)[0][0])].id
        grid = ground.grid_ids(xy)[0]
        try:
            out.append(make(fid, props, x, y, road, grid, defaults))
        except ValidationError as exc:
            raise ValidationError(f"{where}.properties", exc.reason, source=source) from None
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"{where}.properties", f"bad value: {exc}", source=source) from None
    return out
