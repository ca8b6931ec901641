"""The default scenario: the study's figures, real streets, and a plausible procedural layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import Point
from shapely.ops import unary_union

from scenarios import load
from twin.district import District
from twin.errors import ValidationError
from twin.geo import TravelMode
from twin.staff import Role

SHARED_GEO = Path(__file__).resolve().parents[2] / "shared" / "geo"


def test_the_study_figures(xiaohe: District) -> None:
    s = xiaohe.summary()
    assert (s["grids"], s["scenarios"], s["categories"], s["shifts"]) == (76, 48, 5, 3)
    assert s["members_by_role"] == {"grid_leader": 34, "grid_worker": 152, "grid_instructor": 39,
                                    "co_governance": 50, "enforcement": 30}
    assert s["population"] == 73000 and s["stated_area_km2"] == 6.38
    assert (s["cameras"], s["shops"], s["sensors"], s["venues"]) == (320, 1600, 450, 30)


def test_boundary_is_an_approximation_of_about_6_38_km2(xiaohe: District) -> None:
    assert 5.7 < xiaohe.area_km2 < 7.0
    assert xiaohe.notes["boundary"]["approximation"] is True
    assert "OpenStreetMap" in xiaohe.notes["roads"]["attribution"]


def test_regions_nest_and_tile_the_boundary(xiaohe: District) -> None:
    r = xiaohe.regions
    union = unary_union([g.polygon for g in r.grids])
    assert union.symmetric_difference(xiaohe.boundary).area < 1.0  # m²
    assert sum(g.polygon.area for g in r.grids) == pytest.approx(xiaohe.boundary.area, rel=1e-6)
    for comm in r.communities:
        grids = [g for g in r.grids if g.parent == comm.id]
        assert grids and unary_union([g.polygon for g in grids]).symmetric_difference(comm.polygon).area < 1.0
    assert {c.parent for c in r.communities} == {a.id for a in r.areas}


def test_every_patrolled_road_has_a_grid_and_a_squad(xiaohe: District) -> None:
    grid_of = xiaohe.road_grid[xiaohe.responsible]
    assert (grid_of >= 0).all()
    for gi in set(grid_of.tolist()):
        xiaohe.squad_for_area(xiaohe.regions.area_of(xiaohe.regions.grids[gi].id))
    # Elevated expressways are routed over but not patrolled.
    names = {xiaohe.roads.segments[int(i)].name for i in xiaohe.responsible}
    assert not any("高架" in n for n in names)
    assert {"小河路", "湖州街", "登云路", "丽水路"} <= names


def test_roads_come_from_the_shared_osm_extract(xiaohe: District) -> None:
    if not SHARED_GEO.exists():
        pytest.skip("shared/geo not beside the checkout")
    src = json.loads((SHARED_GEO / "xiaohe_roads_osm_car_wgs84.geojson").read_text())
    ids = {f"w{f['properties']['osrm_geometry_id']}" for f in src["features"]}
    assert {s.id for s in xiaohe.roads.segments} <= ids


def test_reference_junctions_resolve_inside(xiaohe: District) -> None:
    loc = xiaohe.locate(120.131119, 30.316482)  # 登云路 × 小河路
    assert loc.road_distance_m < 15
    assert xiaohe.roads.segment(loc.road_id).name in {"登云路", "小河路"}
    with pytest.raises(ValidationError, match="outside the boundary of district 'xiaohe'"):
        xiaohe.locate(120.20, 30.31)
    with pytest.raises(ValidationError, match="^lat: must be a number"):
        xiaohe.locate(120.13, 91.0)


def test_grid_staffing(xiaohe: District) -> None:
    workers = xiaohe.members(Role.GRID_WORKER)
    teams = xiaohe.roster.rotations[Role.GRID_WORKER].teams
    per_grid: dict[str, list[int]] = {}
    for m in workers:
        per_grid.setdefault(m.grid_ids[0], []).append(m.shift_slot % teams)
    # Two workers per grid, in different teams of the community rotation.
    assert len(per_grid) == 76 and all(len(v) == 2 and v[0] != v[1] for v in per_grid.values())
    covered = {g for m in xiaohe.members(Role.GRID_LEADER) for g in m.grid_ids}
    assert covered == {g.id for g in xiaohe.regions.grids}
    four = xiaohe.roster.rotations[Role.CO_GOVERNANCE].teams
    assert four == 4
    per_area: dict[str, set[int]] = {a.id: set() for a in xiaohe.regions.areas}
    for m in xiaohe.members(Role.CO_GOVERNANCE):
        per_area[m.area_id].add(m.shift_slot % four)
    assert all(t == set(range(four)) for t in per_area.values())  # every team has members in every area


def test_someone_of_each_tier_is_on_duty_around_the_clock(xiaohe: District) -> None:
    """The district always has a brigade member and an enforcement officer available; an
    area, with its few members per team less leave and breaks, mostly (dispatch then
    reaches into the next area)."""
    t0 = 1_772_409_600.0  # 2026-03-02 08:00 Asia/Shanghai
    steps = range(0, 24 * 28 * 2)  # every half hour, four weeks
    area_cover = {a.id: 0 for a in xiaohe.regions.areas}
    for h in steps:
        now = t0 + h * 1800 + 600
        for role in (Role.CO_GOVERNANCE, Role.ENFORCEMENT):
            assert xiaohe.roster.on_duty_members(now, role=role), (h, role)
        for area in xiaohe.regions.areas:
            area_cover[area.id] += bool(xiaohe.roster.on_duty_members(now, role=Role.CO_GOVERNANCE, area_id=area.id))
    assert min(area_cover.values()) / len(steps) > 0.85, area_cover


def test_travel_times(xiaohe: District) -> None:
    walk = xiaohe.roads.travel(TravelMode.WALK)
    car = xiaohe.roads.travel(TravelMode.CAR)
    a = xiaohe.locate(120.131119, 30.316482).node   # 登云路 × 小河路
    b = xiaohe.locate(120.132063, 30.326082).node   # 湖州街 × 小河路, ~1.07 km north
    w = walk.seconds(a, b)
    assert w == pytest.approx(walk.seconds(b, a))               # walking ignores one-way streets
    assert 1000 / 1.3 < w < 1.6 * 1100 / 1.3                    # at least the straight line
    assert car.seconds(a, b) < w / 3
    sample = np.asarray(xiaohe.responsible[:50])
    nodes = [xiaohe.roads.segments[int(i)].u for i in sample]
    reach = np.array([[walk.seconds(u, v) for v in nodes] for u in nodes])
    assert np.isfinite(reach).all()                             # the patrolled network is connected


def test_assets_lie_inside_and_cameras_see_their_road(xiaohe: District) -> None:
    for asset in (*xiaohe.cameras, *xiaohe.shops, *xiaohe.sensors, *xiaohe.venues):
        assert xiaohe.boundary.covers(Point(asset.x, asset.y))
    seeing = sum(any(z.kind == "no_parking" and not z.geometry.is_empty for z in c.zones) for c in xiaohe.cameras)
    assert seeing / len(xiaohe.cameras) > 0.95
    c = xiaohe.cameras[0]
    zone = next(z for z in c.zones if z.kind == "no_parking")
    inside = zone.geometry.representative_point()
    assert c.fov.area > 0 and c.sees(inside.x, inside.y)
    assert not c.sees(c.x + 2 * c.range_m, c.y)


def test_procedural_placement_is_seeded(xiaohe: District) -> None:
    again = load("xiaohe")
    assert [(c.id, c.x, c.y, c.heading_deg) for c in again.cameras] == \
        [(c.id, c.x, c.y, c.heading_deg) for c in xiaohe.cameras]
    assert [g.polygon.wkb for g in again.regions.grids] == [g.polygon.wkb for g in xiaohe.regions.grids]
    assert [m for m in again.roster.members] == [m for m in xiaohe.roster.members]


def test_catalog_covers_the_study_examples(xiaohe: District) -> None:
    cat = xiaohe.catalog
    names = {s.name_zh for s in cat}
    assert {"出店经营", "保健品会销", "违规停车", "流动人口管理", "独居老人服务"} <= names
    for c in cat.categories.values():
        assert cat[c.example].category == c.code
    urgent = [s for s in cat if s.severity.value in ("high", "critical")]
    assert urgent and all((s.respond_s, s.on_scene_s, s.reinforce_s) == (60, 180, 300) for s in urgent)
    assert any(s.joint_departments for s in cat)  # the 会商 path is exercised


def test_walkers_and_ebikes_keep_off_expressways_and_tunnels(xiaohe: District) -> None:
    motor_only = [s for s in xiaohe.roads.segments if s.motor_only]
    assert motor_only and all(not s.patrolled for s in motor_only)
    for mode in (TravelMode.WALK, TravelMode.EBIKE):
        g = xiaohe.roads.graph(mode)
        for s in motor_only:
            mps = xiaohe.roads.speeds.walk_mps if mode is TravelMode.WALK else xiaohe.roads.speeds.ebike_mps
            assert g[s.u, s.v] == 0 or g[s.u, s.v] < s.length_m / mps  # no edge, or a parallel street
    car = xiaohe.roads.graph(TravelMode.CAR)
    assert any(car[s.u, s.v] > 0 for s in motor_only)
