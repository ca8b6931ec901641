"""Derive the xiaohe scenario's geometry from the OpenStreetMap extract in ../shared/geo.

Run once by a maintainer (the outputs are committed under scenarios/xiaohe/):

    python tools/build_xiaohe_geometry.py [--geo ../shared/geo] [--out scenarios/xiaohe]

What it does, so the derivation can be checked and repeated:

1. Reads the 5,856 car-routable OSM way segments (ODbL, (c) OpenStreetMap contributors).
2. Draws the study boundary along real streets: consecutive corner junctions are joined
   by the shortest path over the road graph, with major roads preferred (cost x1) over
   minor ones (x3) and elevated expressways and tunnels avoided (x50). The corners are
   湖州街 x 莫干山路 (NW), 湖州街 x 上塘路 (NE), 大关路 x 上塘路 (E), the 上塘路 /
   湖墅北路 / 余杭塘路 junction (SE) and 余杭塘路 x 莫干山路 (S). The ring follows 湖州街
   (north), 上塘路 (east), 湖墅北路 and 余杭塘路 (south-east) and 莫干山路 (south-west):
   about 6.1 km² against the official 6.38 km². No official boundary is available
   offline, so this is an approximation and is labelled as one.
3. Keeps every segment within 400 m of the boundary (routing may leave the district),
   converts it to the scenario road schema (id, name, class, from, to, oneway, length_m,
   speed_kmh, patrolled, motor_only: elevated expressways and tunnels carry cars only) and rounds coordinates to 1e-6 degrees (~0.1 m).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from shapely.geometry import LineString, Polygon, mapping

CORNERS = [
    ("湖州街 x 莫干山路", 120.1106, 30.3156),
    ("湖州街 x 上塘路", 120.1412, 30.3270),
    ("大关路 x 上塘路", 120.1431, 30.3094),
    ("上塘路 / 湖墅北路 / 余杭塘路", 120.1407, 30.2989),
    ("余杭塘路 x 莫干山路", 120.1358, 30.2972),
]
MAJOR = {"primary", "secondary", "tertiary", "motorway/trunk"}
CLASS_MAP = {"residential/unclassified/link": "residential", "living_street/other": "living_street",
             "motorway/trunk": "motorway"}
MARGIN_M = 400.0
LON0, LAT0 = 120.128, 30.312
R = 6_371_008.8


def _xy(lon: float, lat: float) -> tuple[float, float]:
    return (R * math.cos(math.radians(LAT0)) * math.radians(lon - LON0), R * math.radians(lat - LAT0))


def _grade_separated(name: str, cls: str) -> bool:
    return cls == "motorway/trunk" or "高架" in name or "隧道" in name or "快速路" in name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = Path(__file__).resolve().parent.parent
    ap.add_argument("--geo", type=Path, default=here.parent / "shared" / "geo")
    ap.add_argument("--out", type=Path, default=here / "scenarios" / "xiaohe")
    args = ap.parse_args()
    src = json.loads((args.geo / "xiaohe_roads_osm_car_wgs84.geojson").read_text())
    feats = src["features"]

    ids: dict[int, int] = {}
    pts: list[tuple[float, float]] = []
    rows, cols, cost = [], [], []
    seg_xy: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for f in feats:
        p = f["properties"]
        c = f["geometry"]["coordinates"]
        for n, pt in ((p["osm_node_from"], c[0]), (p["osm_node_to"], c[-1])):
            if n not in ids:
                ids[n] = len(pts)
                pts.append(_xy(*pt))
        w = p["length_m"] * (1 if p["class_est_from_speed"] in MAJOR else 3)
        if _grade_separated(p["name"], p["class_est_from_speed"]):
            w *= 50
        i, j = ids[p["osm_node_from"]], ids[p["osm_node_to"]]
        rows += [i, j]
        cols += [j, i]
        cost += [w, w]
        line = [_xy(*q) for q in c]
        seg_xy[(i, j)] = line
        seg_xy[(j, i)] = line[::-1]
    n = len(pts)
    graph = csr_matrix((cost, (rows, cols)), shape=(n, n))
    node_xy = np.asarray(pts)

    def nearest(lon: float, lat: float) -> int:
        x, y = _xy(lon, lat)
        return int(np.argmin(((node_xy - [x, y]) ** 2).sum(1)))

    ring: list[tuple[float, float]] = []
    for k, (_, lon, lat) in enumerate(CORNERS):
        s = nearest(lon, lat)
        t = nearest(*CORNERS[(k + 1) % len(CORNERS)][1:])
        _, pred = dijkstra(graph, indices=s, return_predecessors=True)
        path = [t]
        while path[-1] != s:
            path.append(int(pred[path[-1]]))
        path.reverse()
        for u, v in zip(path, path[1:]):
            ring += seg_xy[(u, v)]
    boundary_xy = Polygon(ring).buffer(0)
    if boundary_xy.geom_type != "Polygon":
        boundary_xy = max(boundary_xy.geoms, key=lambda g: g.area)
    boundary_xy = Polygon(boundary_xy.exterior).simplify(1.0)
    kx = R * math.cos(math.radians(LAT0)) * math.pi / 180
    ky = R * math.pi / 180
    to_ll = lambda xy: [(round(x / kx + LON0, 6), round(y / ky + LAT0, 6)) for x, y in xy]
    boundary_ll = Polygon(to_ll(boundary_xy.exterior.coords))
    area_km2 = boundary_xy.area / 1e6

    margin = boundary_xy.buffer(MARGIN_M)
    out_feats = []
    seen: set[str] = set()
    for f in feats:
        p = f["properties"]
        line = LineString([_xy(*q) for q in f["geometry"]["coordinates"]])
        if not line.intersects(margin):
            continue
        sid = f"w{p['osrm_geometry_id']}"
        assert sid not in seen, sid
        seen.add(sid)
        cls = p["class_est_from_speed"]
        out_feats.append({
            "type": "Feature",
            "geometry": {"type": "LineString",
                         "coordinates": [[round(a, 6), round(b, 6)] for a, b in f["geometry"]["coordinates"]]},
            "properties": {
                "id": sid, "name": p["name"], "class": CLASS_MAP.get(cls, cls),
                "from": str(p["osm_node_from"]), "to": str(p["osm_node_to"]),
                "oneway": bool(p["oneway"]), "length_m": round(float(p["length_m"]), 1),
                "speed_kmh": round(float(p["car_speed_kmh_osrm"]), 1),
                "patrolled": not _grade_separated(p["name"], cls),
                "motor_only": _grade_separated(p["name"], cls),
            },
        })
    attribution = "Road data (c) OpenStreetMap contributors, ODbL 1.0"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "roads.geojson").write_text(json.dumps({
        "type": "FeatureCollection",
        "metadata": {"license": "ODbL-1.0", "attribution": attribution,
                     "derived_from": "shared/geo/xiaohe_roads_osm_car_wgs84.geojson",
                     "note": f"segments within {MARGIN_M:.0f} m of the study boundary"},
        "features": out_feats,
    }, ensure_ascii=False, separators=(",", ":")) + "\n")
    (args.out / "boundary.geojson").write_text(json.dumps({
        "type": "FeatureCollection",
        "features": [{
            "type": "Feature",
            "geometry": mapping(boundary_ll),
            "properties": {
                "name": "Xiaohe subdistrict study boundary (APPROXIMATION)",
                "approximation": True,
                "area_km2": round(area_km2, 3),
                "official_area_km2": 6.38,
                "follows": "湖州街 (N), 上塘路 (E), 湖墅北路 / 余杭塘路 (SE), 莫干山路 (SW)",
                "corners": [c[0] for c in CORNERS],
                "attribution": attribution,
            },
        }],
    }, ensure_ascii=False, indent=1) + "\n")
    print(f"boundary {area_km2:.3f} km², {len(boundary_ll.exterior.coords)} vertices; "
          f"{len(out_feats)} road segments kept")


if __name__ == "__main__":
    main()
