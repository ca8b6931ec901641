"""Load a scenario by name or path into a :class:`twin.district.District`.

A scenario is a folder: ``scenario.toml`` (parameters) plus GeoJSON geometry and a
``catalog.toml``. Names resolve to the folders shipped in this package (``xiaohe``);
``synthetic-10x`` / ``synthetic-100x`` (any factor) generate a district of that many times
Xiaohe's size for scale work. Every error names the file, the field and the reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scenarios.build import build_district
from scenarios.files import (
    PACKAGE_DIR,
    apply_overrides,
    boundary_from_geojson,
    catalog_from_file,
    load_params,
    read_geojson,
    read_toml,
)
from scenarios.synth import synthetic_district
from twin.district import District
from twin.errors import ValidationError

if TYPE_CHECKING:
    from twin.calibration import Homography

# apply_overrides lives in scenarios.files; it stays importable here, where callers know it.
__all__ = ["apply_overrides", "builtin_names", "load", "load_cached", "resolve"]

_SYNTH = re.compile(r"^synthetic(?:[-:](\d+(?:\.\d+)?)x?)?$")


def builtin_names() -> list[str]:
    """Scenario folders shipped with streetbrain."""
    return sorted(p.parent.name for p in PACKAGE_DIR.glob("*/scenario.toml"))


def resolve(name_or_path: str | Path) -> Path:
    """The ``scenario.toml`` of a scenario name, folder or file.

    Raises:
        ValidationError: nothing by that name or path.
    """
    p = Path(name_or_path)
    if p.is_dir():
        p = p / "scenario.toml"
    if p.is_file():
        return p.resolve()
    if isinstance(name_or_path, str) and (PACKAGE_DIR / name_or_path / "scenario.toml").is_file():
        return PACKAGE_DIR / name_or_path / "scenario.toml"
    raise ValidationError("scenario", f"no scenario '{name_or_path}': not a folder with a "
                          f"scenario.toml, nor a built-in name ({', '.join(builtin_names())}, "
                          "synthetic-10x, synthetic-100x)")


def load(name_or_path: str | Path, overrides: Mapping[str, Any] | None = None) -> District:
    """Load a scenario: a built-in name, a folder, a ``scenario.toml``, or ``synthetic-Nx``.

    Args:
        name_or_path: What to load.
        overrides: Dotted-path changes to ``scenario.toml`` (what-if variants), e.g.
            ``{"staff.co_governance.count": 60}``; validated like the file.

    Raises:
        ValidationError: naming the file, the field and the reason.
    """
    m = _SYNTH.match(str(name_or_path))
    if m and not Path(name_or_path).exists():
        if overrides:
            raise ValidationError("overrides", "synthetic districts take no overrides; write one with "
                                  "scenarios.synth.write_synthetic and edit it")
        return synthetic_district(float(m.group(1) or 1.0))
    toml_path = resolve(name_or_path)
    folder = toml_path.parent
    params = load_params(toml_path, overrides)
    g = params.geometry
    files = {"boundary": folder / g.boundary, "roads": folder / g.roads, "catalog": folder / g.catalog}
    boundary_data = read_geojson(files["boundary"], "geometry.boundary")
    boundary = boundary_from_geojson(boundary_data, source=str(files["boundary"]))
    roads = read_geojson(files["roads"], "geometry.roads")
    if not files["catalog"].is_file():
        raise ValidationError("geometry.catalog", f"file '{g.catalog}' not found", source=str(toml_path))
    catalog = catalog_from_file(files["catalog"])
    explicit: dict[str, list[dict[str, Any]]] = {}
    sources = {k: str(v) for k, v in files.items()}
    for kind in ("cameras", "shops", "sensors", "venues"):
        rel = getattr(g, kind)
        if rel:
            explicit[kind] = read_geojson(folder / rel, f"geometry.{kind}")["features"]
            sources[kind] = str(folder / rel)
    notes = {
        "source": str(toml_path),
        "boundary": {k: v for k, v in (boundary_data["features"][0].get("properties") or {}).items()},
        "roads": roads.get("metadata", {}),
    }
    try:
        district = build_district(params, boundary_lonlat=boundary, road_features=roads["features"],
                                  catalog=catalog, sources=sources, explicit_assets=explicit, notes=notes)
    except ValidationError as exc:
        raise (exc if exc.source else exc.with_source(str(toml_path))) from None
    moved = any(k == "assets" or k.startswith(("assets.", "geometry.")) for k in overrides or {})
    if g.calibration and not moved:  # a variant that re-places the cameras uses synthetic calibrations
        from dataclasses import replace

        district = replace(district, calibrations=read_calibrations(folder / g.calibration, district))
    return district


def read_calibrations(path: Path, district: District) -> dict[str, Homography]:
    """A ``calibration.toml``: per camera, ``image_size = [w, h]`` and ``points = [[u, v, lon,
    lat], ...]`` (four or more pixels and where they lie on the ground).

    Raises:
        ValidationError: naming the file, the camera's field and the reason.
    """
    from twin.calibration import Homography

    if not path.is_file():
        raise ValidationError("geometry.calibration", f"file '{path.name}' not found", source=str(path.parent))
    data = read_toml(path)
    cams = data.get("cameras")
    if not isinstance(cams, dict):
        raise ValidationError("cameras", "give one [cameras.<id>] table per calibrated camera", source=str(path))
    known = {c.id for c in district.cameras}
    out: dict[str, Homography] = {}
    for cid, spec in cams.items():
        where = f"cameras.{cid}"
        if cid not in known:
            raise ValidationError(where, f"no camera '{cid}' in the district", source=str(path))
        if not isinstance(spec, dict):
            raise ValidationError(where, "must be a table", source=str(path))
        size, points = spec.get("image_size"), spec.get("points")
        if (not isinstance(size, list) or len(size) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
            raise ValidationError(f"{where}.image_size", "give [width, height] in pixels", source=str(path))
        if (not isinstance(points, list)
                or not all(isinstance(p, list) and len(p) == 4 and all(isinstance(v, (int, float)) for v in p)
                           for p in points)):
            raise ValidationError(f"{where}.points", "give [[u, v, lon, lat], ...] (pixels, then degrees)",
                                  source=str(path))
        pts = np.asarray(points, dtype=float)
        x, y = district.projection.to_xy(pts[:, 2], pts[:, 3])
        try:
            out[cid] = Homography.from_points(pts[:, :2], np.column_stack([x, y]), width=size[0], height=size[1],
                                              what=where)
        except ValidationError as exc:
            raise exc.with_source(str(path)) from None
    return out


def write_calibrations(district: District, path: Path, *, width: int = 1280, height: int = 720) -> int:
    """Write every camera's calibration (the scenario's, else the synthetic pinhole one) as
    point pairs: the image's corners and edge midpoints below the horizon, with where they
    lie. Returns the number of cameras written."""
    lines = ["# Camera calibrations: pixels [u, v] and where they lie on the ground [lon, lat].",
             "# Synthetic cameras: a pinhole camera on a 6 m mast (twin.calibration.pinhole).", ""]
    grid = [(u, v) for v in (0.45, 0.7, 1.0) for u in (0.0, 0.5, 1.0)]
    for cam in district.cameras:
        h = district.calibration(cam.id, width=width, height=height)
        px = np.array([[u * h.width, v * h.height] for u, v in grid])
        g = h.to_ground(px)
        ok = ~np.isnan(g).any(axis=1)
        lon, lat = district.projection.to_lonlat(g[ok, 0], g[ok, 1])
        rows = ", ".join(f"[{u:.1f}, {v:.1f}, {a:.7f}, {b:.7f}]" for (u, v), a, b in zip(px[ok], lon, lat))
        lines += [f"[cameras.{cam.id}]", f"image_size = [{h.width}, {h.height}]", f"points = [{rows}]", ""]
    path.write_text("\n".join(lines))
    return len(district.cameras)


def load_cached(name_or_path: str, overrides: Mapping[str, Any] | None = None) -> District:
    """:func:`load`, memoised per name and overrides (the district is shared: treat it as
    read-only)."""
    key = json.dumps(overrides or {}, sort_keys=True)
    return _load_cached(str(name_or_path), key)


@lru_cache(maxsize=16)
def _load_cached(name_or_path: str, overrides_json: str) -> District:
    return load(name_or_path, json.loads(overrides_json) or None)
