"""Bad scenario files fail with a message naming the file, the field and the reason.

Each case breaks one thing in a private copy of a small valid scenario folder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from scenarios import load
from twin.district import District
from twin.errors import ValidationError


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, count))


def toml(folder: Path, old: str, new: str) -> None:
    edit(folder / "scenario.toml", old, new)


def catalog(folder: Path, old: str, new: str) -> None:
    edit(folder / "catalog.toml", old, new)


def geojson(folder: Path, name: str, change: Callable[[dict], None]) -> None:
    data = json.loads((folder / name).read_text())
    change(data)
    (folder / name).write_text(json.dumps(data))


def camera_outside(folder: Path) -> None:
    (folder / "cameras.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [121.5, 31.2]},
         "properties": {"id": "K1", "owner": "police"}}]}))
    toml(folder, 'catalog = "catalog.toml"', 'catalog = "catalog.toml"\ncameras = "cameras.geojson"')


def squads_miss_an_area(folder: Path) -> None:
    toml(folder, "communities = 1\nareas = 1", "communities = 2\nareas = 2")
    (folder / "scenario.toml").write_text((folder / "scenario.toml").read_text()
                                          + '\n[[squads]]\nid = "SQ-north"\nareas = ["A1"]\n')


def set_road(key: str, value: object) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        data["features"][3]["properties"][key] = value
    return change


CASES: list[tuple[str, Callable[[Path], None], str, str, str]] = [
    # (case, break it, file, field, reason)
    ("missing field", lambda f: toml(f, 'name = "synthetic-0.05x"\n', ""),
     "scenario.toml", "name", "is required but missing"),
    ("wrong type", lambda f: toml(f, "grids = 4", 'grids = "many"'),
     "scenario.toml", "regions.grids", "valid integer"),
    ("negative count", lambda f: toml(f, "cameras = 16", "cameras = -1"),
     "scenario.toml", "assets.cameras", "greater than or equal to 0"),
    ("misspelt key", lambda f: toml(f, "grids = 4", "grid = 4"),
     "scenario.toml", "regions.grid", "is not a known setting; did you mean 'grids'?"),
    ("malformed TOML", lambda f: toml(f, "[regions]", "[regions"),
     "scenario.toml", "(file)", "not valid TOML"),
    ("geometry outside the boundary", camera_outside,
     "cameras.geojson", "cameras.features[0].geometry", "lies outside the district boundary"),
    ("a road no squad covers", squads_miss_an_area,
     "scenario.toml", "squads", "roads of area A2 are covered by no squad"),
    ("unknown category", lambda f: catalog(f, 'category = "traffic"\nsources', 'category = "weather"\nsources'),
     "catalog.toml", "scenarios.TR01.category", "unknown category 'weather'"),
    ("shift gap", lambda f: toml(f, 'code = "evening"\nstart = "16:00"', 'code = "evening"\nstart = "17:00"'),
     "scenario.toml", "shifts.day.end", "gap between shift 'day' (ends 16:00) and shift 'evening' (starts 17:00)"),
    ("shift overlap", lambda f: toml(f, 'start = "08:00"\nend = "16:00"', 'start = "08:00"\nend = "17:00"'),
     "scenario.toml", "shifts.day.end", "overlap between shift 'day' (ends 17:00)"),
    ("bad time of day", lambda f: toml(f, 'start = "08:00"', 'start = "25:00"'),
     "scenario.toml", "shifts[day].start", "HH:MM"),
    ("unknown role", lambda f: toml(f, "[staff.enforcement]", "[staff.mayor]"),
     "scenario.toml", "staff", "unknown role 'mayor'"),
    ("unknown shift for a role", lambda f: toml(f, 'rotation = "community"', 'shifts = ["day", "late"]'),
     "scenario.toml", "staff.grid_worker.shifts", "unknown shift 'late'"),
    ("reference district without road", lambda f: catalog(f, "road_km = 90.7", "road_km = 0"),
     "catalog.toml", "reference.road_km", "greater than 0"),
    ("a pattern with an unknown rotation",
     lambda f: toml(f, "[staff.enforcement]", '[staff.enforcement]\npatterns = [{area = "A1", rotation = "nope", people = 1}]'),
     "scenario.toml", "staff.enforcement.patterns[0].rotation", "no [rotations.nope]"),
    ("patterns that do not add up to the count",
     lambda f: toml(f, "[staff.enforcement]", '[staff.enforcement]\npatterns = [{area = "A1", rotation = "four_team", people = 1}]'),
     "scenario.toml", "staff.enforcement.patterns", "total 1 people but count is"),
    ("unknown shift in a rotation", lambda f: toml(f, 'shifts = ["day", "evening"]', 'shifts = ["day", "late"]'),
     "scenario.toml", "rotations.community", "unknown shift(s) ['late']"),
    ("unknown rotation", lambda f: toml(f, 'rotation = "community"', 'rotation = "communty"'),
     "scenario.toml", "staff.grid_worker.rotation", "no [rotations.communty]"),
    ("role with neither shifts nor rotation", lambda f: toml(f, 'rotation = "community"\n', ""),
     "scenario.toml", "staff.grid_worker.shifts", "name at least one shift, or give a rotation"),
    ("rotation that does not split into teams", lambda f: toml(f, 'evening"]\ndays_on = 2\ndays_off = 2',
                                                               'evening"]\ndays_on = 2\ndays_off = 1'),
     "scenario.toml", "rotations.four_team.days_off", "must split into whole teams"),
    ("shrinkage of a whole", lambda f: toml(f, "shrinkage = 0.12", "shrinkage = 1.0"),
     "scenario.toml", "roster.shrinkage", "less than 1"),
    ("post window backwards", lambda f: toml(f, '"07:15-08:15"', '"08:15-07:15"'),
     "scenario.toml", "posts[0].windows", "the start must come before the end"),
    ("post for an unknown day", lambda f: toml(f, 'days = "mon-fri"', 'days = "mon-fry"'),
     "scenario.toml", "posts.school gates.days", "'mon-fry': days are mon"),
    ("too few grid workers", lambda f: toml(f, "count = 8", "count = 2"),
     "scenario.toml", "staff.grid_worker.count", "2 grid workers cannot cover 4 grids"),
    ("regions do not nest", lambda f: toml(f, "communities = 1\nareas = 1", "communities = 1\nareas = 2"),
     "scenario.toml", "regions", "areas <= communities <= grids"),
    ("unknown time zone", lambda f: toml(f, 'timezone = "Asia/Shanghai"', 'timezone = "Asia/Atlantis"'),
     "scenario.toml", "timezone", "unknown IANA time zone 'Asia/Atlantis'"),
    ("missing roads file", lambda f: toml(f, 'roads = "roads.geojson"', 'roads = "nope.geojson"'),
     "scenario.toml", "geometry.roads", "file 'nope.geojson' not found"),
    ("road with zero length", lambda f: geojson(f, "roads.geojson", set_road("length_m", 0)),
     "roads.geojson", "roads.features[3].properties.length_m", "must be a number > 0"),
    ("road with a duplicate id", lambda f: geojson(f, "roads.geojson", set_road("id", "s1")),
     "roads.geojson", "roads.features[3].properties.id", "duplicate road id 's1'"),
    ("boundary is not a polygon", lambda f: geojson(f, "boundary.geojson", lambda d: d["features"][0].update(
        geometry={"type": "LineString", "coordinates": [[120.13, 30.31], [120.14, 30.32]]})),
     "boundary.geojson", "features[0].geometry", "must be a Polygon"),
    ("handler chain out of order", lambda f: catalog(
        f, 'handler_chain = ["grid_worker", "co_governance", "enforcement"]',
        'handler_chain = ["co_governance", "grid_worker"]'),
     "catalog.toml", "scenarios.CM01.handler_chain", "must climb the ladder"),
    ("targets out of order", lambda f: catalog(f, "on_scene_s = ", "on_scene_s = 1 # was "),
     "catalog.toml", "respond_s", "0 < respond_s < on_scene_s < reinforce_s"),
    ("public is not a boolean", lambda f: catalog(f, "public = false", 'public = "maybe"'),
     "catalog.toml", "scenarios[PS01].public", "valid boolean"),
    ("unknown cause", lambda f: catalog(f, 'cause = "merchant"', 'cause = "shopkeeper"'),
     "catalog.toml", "scenarios[CM01].cause", "Input should be 'merchant', 'block', 'elderly', 'venue' or 'street'"),
]


@pytest.mark.parametrize(("case", "breaker", "file", "field", "reason"), CASES, ids=[c[0] for c in CASES])
def test_bad_scenario_file(tiny_copy: Path, case: str, breaker: Callable[[Path], None], file: str,
                           field: str, reason: str) -> None:
    breaker(tiny_copy)
    with pytest.raises(ValidationError) as err:
        load(tiny_copy)
    exc = err.value
    assert exc.source is not None and Path(exc.source).name == file, str(exc)
    assert exc.field.endswith(field) or field in exc.field, str(exc)
    assert reason in exc.reason, str(exc)
    # One line, readable: "<file>: <field>: <reason>"
    assert re.match(rf"^.*{re.escape(file)}: .+: .+", str(exc)) and "\n" not in str(exc)


def test_the_unbroken_copy_loads(tiny_copy: Path) -> None:
    district = load(tiny_copy)
    assert district.summary()["grids"] == 4


def test_reports_about_people_are_not_public(xiaohe: District, tiny_copy: Path) -> None:
    private = {s.code for s in xiaohe.catalog if not s.public}
    assert {"PU01", "PU02", "PU03"} <= private  # elderly people living alone, SOS calls, hardship
    assert len(private) <= len(xiaohe.catalog) // 4  # street and public-space problems stay public
    assert all(xiaohe.catalog[c].public for c in ("CM01", "TR01", "PS04", "PU04", "PU09"))
    # The field is optional: without it a scenario is public.
    text = (tiny_copy / "catalog.toml").read_text()
    (tiny_copy / "catalog.toml").write_text(re.sub(r"(?m)^public = false.*\n", "", text))
    assert all(s.public for s in load(tiny_copy).catalog)


def test_unknown_scenario_name_lists_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="no scenario 'atlantis'.*xiaohe"):
        load("atlantis")


def test_cameras_from_a_file_get_rule_zones(tiny_copy: Path) -> None:
    base = load(tiny_copy)
    seg = base.roads.segments[int(base.responsible[0])]
    mid = seg.line.interpolate(0.5, normalized=True)
    lon, lat = base.projection.to_lonlat(mid.x, mid.y + 5.0)
    (tiny_copy / "cameras.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [float(lon), float(lat)]},
         "properties": {"id": "K-real-1", "owner": "police", "heading_deg": 90.0, "fov_deg": 120.0}}]}))
    toml(tiny_copy, 'catalog = "catalog.toml"', 'catalog = "catalog.toml"\ncameras = "cameras.geojson"')
    district = load(tiny_copy)
    (cam,) = district.cameras
    assert (cam.id, cam.owner, cam.fov_deg) == ("K-real-1", "police", 120.0)
    assert {z.kind for z in cam.zones} >= {"no_parking", "storefront", "roadway", "sidewalk"}
