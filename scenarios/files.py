"""Reading scenario files: TOML and GeoJSON in, validated parameters and catalog out.

The file-level helpers that both :mod:`scenarios.loader` (scenario folders) and
:mod:`scenarios.synth` (synthetic districts) use; they read files and validate, and build
nothing. Every error names the file, the field and the reason.
"""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shapely.geometry import Polygon, shape

from scenarios.spec import CatalogFile, ScenarioFile, parse
from twin.catalog import CameraRule, Catalog, Category, Reference, ScenarioSpec, SensorRule
from twin.errors import ValidationError

#: The folder of the ``scenarios`` package, which holds the built-in scenario folders.
PACKAGE_DIR = Path(__file__).resolve().parent


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
        cats = [Category(**c.model_dump()) for c in cf.categories]
        specs = [ScenarioSpec(**s.model_dump(exclude={"camera", "sensor"}),
                              camera=CameraRule(**s.camera.model_dump()) if s.camera else None,
                              sensor=SensorRule(**s.sensor.model_dump()) if s.sensor else None)
                 for s in cf.scenarios]
        ref = Reference(**cf.reference.model_dump()) if cf.reference else None
        return Catalog(cats, specs, reference=ref)
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
