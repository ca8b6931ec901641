"""Load a scenario by name or path into a :class:`twin.district.District`.

A scenario is a folder: ``scenario.toml`` (parameters) plus GeoJSON geometry and a
``catalog.toml``. Names resolve to the folders shipped in this package (``xiaohe``);
``synthetic-10x`` / ``synthetic-100x`` (any factor) generate a district of that many times
Xiaohe's size for scale work. Every error names the file, the field and the reason.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from shapely.geometry import Polygon, shape

from scenarios.build import build_district
from scenarios.spec import CatalogFile, ScenarioFile, parse
from twin.catalog import CameraRule, Catalog, Category, ScenarioSpec, SensorRule, Severity, Source
from twin.district import District
from twin.errors import ValidationError
from twin.staff import Role

PACKAGE_DIR = Path(__file__).resolve().parent
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


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file, turning syntax errors into a :class:`ValidationError`."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ValidationError("(file)", "file not found", source=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError("(file)", f"not valid TOML: {exc}", source=str(path)) from None


def read_geojson(path: Path, field: str) -> dict[str, Any]:
    """Parse a GeoJSON FeatureCollection."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError(field, f"file '{path.name}' not found", source=str(path.parent / "scenario.toml")) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError("(file)", f"not valid JSON: {exc}", source=str(path)) from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection" \
            or not isinstance(data.get("features"), list):
        raise ValidationError("type", "must be a GeoJSON FeatureCollection", source=str(path))
    return data


def boundary_from_geojson(data: dict[str, Any], *, source: str) -> Polygon:
    """The study boundary: the first (only) Polygon feature, valid and non-empty."""
    feats = data["features"]
    if len(feats) != 1:
        raise ValidationError("features", f"must hold exactly one Polygon, found {len(feats)} features",
                              source=source)
    try:
        geom = shape(feats[0].get("geometry"))
    except Exception as exc:
        raise ValidationError("features[0].geometry", f"not a valid geometry: {exc}", source=source) from None
    if geom.geom_type != "Polygon" or geom.is_empty:
        raise ValidationError("features[0].geometry", f"must be a Polygon, got {geom.geom_type}",
                              source=source)
    if not geom.is_valid:
        raise ValidationError("features[0].geometry", "polygon is invalid (self-intersecting?)",
                              source=source)
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise ValidationError("features[0].geometry", "coordinates must be WGS84 lon/lat degrees",
                              source=source)
    return geom


def catalog_from_file(path: Path) -> Catalog:
    """Load and validate ``catalog.toml``."""
    src = str(path)
    cf: CatalogFile = parse(CatalogFile, read_toml(path), source=src)
    try:
        cats = [Category(c.code, c.name_zh, c.name_en, c.example) for c in cf.categories]
        specs = [ScenarioSpec(
            code=s.code, name_zh=s.name_zh, name_en=s.name_en, category=s.category,
            sources=tuple(Source(x) for x in s.sources), severity=Severity(s.severity),
            department=s.department, handler_chain=tuple(Role(r) for r in s.handler_chain),
            joint_departments=s.joint_departments, respond_s=s.respond_s, on_scene_s=s.on_scene_s,
            reinforce_s=s.reinforce_s, handling_min=s.handling_min, self_correct_p=s.self_correct_p,
            rate_per_day=s.rate_per_day, merge_radius_m=s.merge_radius_m,
            merge_window_s=s.merge_window_s, public=s.public, description=s.description, rationale=s.rationale,
            camera=CameraRule(s.camera.labels, s.camera.zone, s.camera.dwell_s, s.camera.min_count)
            if s.camera else None,
            sensor=SensorRule(s.sensor.kind, s.sensor.rule, s.sensor.threshold) if s.sensor else None,
        ) for s in cf.scenarios]
        return Catalog(cats, specs)
    except ValidationError as exc:
        raise exc.with_source(src) from None


def apply_overrides(data: dict[str, Any], overrides: Mapping[str, Any], *, source: str) -> dict[str, Any]:
    """A copy of raw scenario data with dotted-path overrides applied.

    ``{"staff.co_governance.count": 60, "assets.cameras": 420}`` sets those values; the
    result goes through the same validation as the file, so a misspelt path or a bad value
    fails with the same clear message.

    Raises:
        ValidationError: a path that runs through something that is not a table.
    """
    out = copy.deepcopy(data)
    for path, value in overrides.items():
        keys = path.split(".")
        node = out
        for i, key in enumerate(keys[:-1]):
            nxt = node.setdefault(key, {})
            if not isinstance(nxt, dict):
                raise ValidationError(".".join(keys[: i + 1]), f"is not a table, cannot set '{path}'",
                                      source=source)
            node = nxt
        node[keys[-1]] = value
    return out


def load_params(path: Path, overrides: Mapping[str, Any] | None = None) -> ScenarioFile:
    """Load and validate ``scenario.toml`` (parameters only), with optional overrides."""
    data = read_toml(path)
    if overrides:
        data = apply_overrides(data, overrides, source=f"{path} (overrides)")
    return parse(ScenarioFile, data, source=f"{path} (overrides)" if overrides else str(path))


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
        from scenarios.synth import synthetic_district

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
        return build_district(params, boundary_lonlat=boundary, road_features=roads["features"],
                              catalog=catalog, sources=sources, explicit_assets=explicit, notes=notes)
    except ValidationError as exc:
        raise (exc if exc.source else exc.with_source(str(toml_path))) from None


def load_cached(name_or_path: str, overrides: Mapping[str, Any] | None = None) -> District:
    """:func:`load`, memoised per name and overrides (the district is shared: treat it as
    read-only)."""
    key = json.dumps(overrides or {}, sort_keys=True)
    return _load_cached(str(name_or_path), key)


@lru_cache(maxsize=16)
def _load_cached(name_or_path: str, overrides_json: str) -> District:
    return load(name_or_path, json.loads(overrides_json) or None)
