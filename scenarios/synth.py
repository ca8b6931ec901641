"""Synthetic districts of any size, for scale work (10x, 100x Xiaohe) and for tests.

A synthetic district is a square of ``scale`` x 6.38 km² with a jittered street lattice at
Xiaohe's road density (~95 m blocks: ~220 segments per km², as in the OSM extract):
every 8th street a primary road, every 4th a secondary, the rest residential with some
one-way streets and some missing links. Regions, staff, cameras, shops and sensors scale
with the area, using xiaohe's parameters and catalog; so does demand: the catalog's rates
are Xiaohe's (its ``[reference]``), and each scenario's rate scales with the district's
shops, patrolled road kilometres, residents or venues, by what causes it. The lattice has
about 45% more patrolled road per km² than Xiaohe's OSM network (straight blocks, no
campuses or water), so a synthetic district draws about 1.15x Xiaohe's incidents per km²:
synthetic-100x about 30,000 a day, Xiaohe about 250. The result goes through the same
loader and builder as a real scenario; :func:`write_synthetic` writes it as a scenario
folder that can be edited and loaded like any other.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from shapely.geometry import Polygon, box

from scenarios.build import build_district
from scenarios.files import PACKAGE_DIR, catalog_from_file, load_params
from scenarios.spec import ScenarioFile
from twin.district import District
from twin.errors import ValidationError

XIAOHE_AREA_KM2 = 6.38
BLOCK_M = 95.0
ORIGIN = (120.13, 30.31)  # lon, lat of the south-west corner


def _lattice(side_m: float, rng: np.random.Generator) -> list[dict[str, Any]]:
    n = max(2, int(round(side_m / BLOCK_M)) + 1)
    lon0, lat0 = ORIGIN
    kx = 6_371_008.8 * math.cos(math.radians(lat0)) * math.pi / 180
    ky = 6_371_008.8 * math.pi / 180
    step = side_m / (n - 1)
    jitter = rng.uniform(-0.15, 0.15, size=(n, n, 2)) * step
    jitter[[0, -1], :, :] = 0.0  # keep the outer ring on the square
    jitter[:, [0, -1], :] = 0.0
    xy = np.stack(np.meshgrid(np.arange(n) * step, np.arange(n) * step, indexing="ij"), -1) + jitter
    lonlat = np.round(np.stack([lon0 + xy[..., 0] / kx, lat0 + xy[..., 1] / ky], -1), 7)
    # Edges: north-south streets (i, j) → (i, j+1) on line i, east-west (j, i) → (j+1, i) on line i.
    ii, jj = np.meshgrid(np.arange(n), np.arange(n - 1), indexing="ij")
    i, j = ii.ravel(), jj.ravel()
    a = np.concatenate([np.column_stack([i, j]), np.column_stack([j, i])])
    b = np.concatenate([np.column_stack([i, j + 1]), np.column_stack([j + 1, i])])
    line = np.concatenate([i, i])
    klass = np.where(line % 8 == 0, 0, np.where(line % 4 == 0, 1, 2))  # primary, secondary, residential
    # Interleave NS and EW edges of the same (i, j) as a street grid reads, then drop some links.
    order = np.arange(len(a)).reshape(2, -1).T.ravel()
    a, b, line, klass = a[order], b[order], line[order], klass[order]
    draw = rng.random((len(a), 2))
    keep = ~((klass == 2) & (draw[:, 0] < 0.06))  # missing links, as in real street patterns
    oneway = (klass == 2) & (draw[:, 1] < 0.12)
    length = np.round(np.hypot(*(xy[b[:, 0], b[:, 1]] - xy[a[:, 0], a[:, 1]]).T), 1)
    names = ("primary", "secondary", "residential")
    speeds = (50.0, 40.0, 25.0)
    pa = lonlat[a[:, 0], a[:, 1]].tolist()
    pb = lonlat[b[:, 0], b[:, 1]].tolist()
    feats: list[dict[str, Any]] = []
    for k in np.flatnonzero(keep).tolist():
        c = names[klass[k]]
        feats.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates": [pa[k], pb[k]]},
                      "properties": {"id": f"s{len(feats) + 1}", "name": f"{c[:3]}-{line[k]}", "class": c,
                                     "from": f"n{a[k, 0]}_{a[k, 1]}", "to": f"n{b[k, 0]}_{b[k, 1]}",
                                     "oneway": bool(oneway[k]), "length_m": float(length[k]),
                                     "speed_kmh": speeds[klass[k]], "patrolled": True}})
    return feats


def synthetic_params(scale: float, *, base: ScenarioFile, seed: int = 7) -> ScenarioFile:
    """xiaohe's parameters with every count scaled by ``scale``."""
    if not scale > 0:
        raise ValidationError("scale", f"must be > 0, got {scale}")
    def r(v: float, lo: int = 1) -> int:
        return max(lo, int(round(v * scale)))

    grids = r(base.regions.grids)
    comms = min(grids, r(base.regions.communities))
    areas = min(comms, r(base.regions.areas))
    staff = {}
    for role, spec in base.staff.items():
        lo = grids if role.value == "grid_worker" else (areas if role.value in ("co_governance", "enforcement") else 1)
        staff[role] = spec.model_copy(update={"count": max(lo, r(spec.count))})
    assets = base.assets.model_copy(update={
        "cameras": r(base.assets.cameras, 0), "shops": r(base.assets.shops, 0),
        "sensors": r(base.assets.sensors, 0), "venues": r(base.assets.venues, 0), "hotspots": ()})
    return base.model_copy(update={
        "name": f"synthetic-{scale:g}x", "title": f"Synthetic district, {scale:g} x Xiaohe",
        "population": int(base.population * scale), "stated_area_km2": round(XIAOHE_AREA_KM2 * scale, 3),
        "seed": seed, "regions": base.regions.model_copy(update={"grids": grids, "communities": comms,
                                                                  "areas": areas}),
        "assets": assets, "staff": staff, "squads": (),
        "geometry": base.geometry.model_copy(update={"calibration": None})})  # its cameras: synthetic pinholes


def synthetic_geometry(scale: float, *, seed: int = 7) -> tuple[Polygon, list[dict[str, Any]]]:
    """Boundary (WGS84) and road features of a synthetic district."""
    side = math.sqrt(XIAOHE_AREA_KM2 * scale) * 1000.0
    rng = np.random.default_rng(np.random.SeedSequence([seed, int(scale * 1000)]))
    feats = _lattice(side, rng)
    lon0, lat0 = ORIGIN
    kx = 6_371_008.8 * math.cos(math.radians(lat0)) * math.pi / 180
    ky = 6_371_008.8 * math.pi / 180
    return box(lon0, lat0, lon0 + side / kx, lat0 + side / ky), feats


def synthetic_district(scale: float, *, seed: int = 7) -> District:
    """A synthetic district of ``scale`` x Xiaohe's area, built in memory."""
    base = load_params(PACKAGE_DIR / "xiaohe" / "scenario.toml")
    params = synthetic_params(scale, base=base, seed=seed)
    boundary, feats = synthetic_geometry(scale, seed=seed)
    catalog = catalog_from_file(PACKAGE_DIR / "xiaohe" / "catalog.toml")
    return build_district(params, boundary_lonlat=boundary, road_features=feats, catalog=catalog,
                          notes={"source": f"synthetic, scale {scale:g}, seed {seed}"})


def write_synthetic(folder: Path, scale: float, *, seed: int = 7) -> Path:
    """Write a synthetic district as an editable scenario folder; returns its scenario.toml."""
    base = load_params(PACKAGE_DIR / "xiaohe" / "scenario.toml")
    params = synthetic_params(scale, base=base, seed=seed)
    boundary, feats = synthetic_geometry(scale, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "boundary.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"name": params.title},
        "geometry": {"type": "Polygon", "coordinates": [list(map(list, boundary.exterior.coords))]}}]}))
    (folder / "roads.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    shutil.copyfile(PACKAGE_DIR / "xiaohe" / "catalog.toml", folder / "catalog.toml")
    (folder / "scenario.toml").write_text(_to_toml(params))
    return folder / "scenario.toml"


def _to_toml(params: ScenarioFile) -> str:
    """Serialise parameters as TOML (the subset of types the schema uses)."""
    data = params.model_dump(mode="json", exclude_none=True)

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(type(v))

    out: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    arrays: list[tuple[str, list[dict[str, Any]]]] = []
    for k, v in data.items():
        if isinstance(v, dict):
            tables.append((k, v))
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            arrays.append((k, v))
        elif not (isinstance(v, list) and not v):
            out.append(f"{k} = {value(v)}")

    def emit_table(name: str, t: dict[str, Any]) -> None:
        out.append(f"\n[{name}]")
        subs = []
        for k, v in t.items():
            if isinstance(v, dict):
                subs.append((f"{name}.{k}", v))
            elif isinstance(v, list) and v and isinstance(v[0], dict):
                arrays.append((f"{name}.{k}", v))
            elif not (isinstance(v, list) and not v):
                out.append(f"{k} = {value(v)}")
        for n, s in subs:
            emit_table(n, s)

    for name, t in tables:
        emit_table(name, t)
    for name, items in arrays:
        for item in items:
            out.append(f"\n[[{name}]]")
            out += [f"{k} = {value(v)}" for k, v in item.items()]
    return "\n".join(out) + "\n"
