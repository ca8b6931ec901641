"""The camera rules on scripted scenes with known answers (twin.vision.RuleEngine): a parking
alarm on time, none for a short delivery stop, a timer that survives an occlusion and a
stolen tracker ID, traffic that never looks parked, and a crowd rule."""

from __future__ import annotations

import pytest
from shapely.geometry import Point, box

from twin.assets import Camera, Zone
from twin.catalog import Catalog
from twin.district import District
from twin.vision import Alarm, RuleEngine, Sighting, best_rule, camera_rules

FPS = 1.0  # one analysed frame a second


@pytest.fixture(scope="module")
def catalog(xiaohe: District) -> Catalog:
    return xiaohe.catalog


@pytest.fixture
def camera() -> Camera:
    """A camera at the origin looking north along a street: a no-parking strip on the road
    (x -3..3, y 10..50) and a venue entrance beside it (x 8..20, y 15..35)."""
    return Camera("K9001", "police", 0.0, 0.0, 0.0, 90.0, 60.0, "R1", "G1",
                  zones=(Zone("no_parking", box(-3, 10, 3, 50)), Zone("entrance", box(8, 15, 20, 35))))


def run(engine: RuleEngine, frames: dict[float, list[Sighting]], until: float) -> list[Alarm]:
    out: list[Alarm] = []
    t = 0.0
    while t <= until:
        out += engine.observe(t, frames.get(t, []))
        t += 1 / FPS
    return out


def car(x: float = 0.0, y: float = 20.0, track: int | None = 1, label: str = "car") -> Sighting:
    return Sighting(label, x, y, 0.8, (300.0, 400.0, 380.0, 460.0), track)


def test_a_parked_car_is_reported_when_its_dwell_passes(catalog: Catalog, camera: Camera) -> None:
    engine = RuleEngine(camera, catalog)
    alarms = run(engine, {float(t): [car(0.0 + 0.05 * (t % 3), 20.0)] for t in range(0, 400)}, 420)
    (start,) = [a for a in alarms if a.kind == "start"]
    assert start.scenario == "TR01" and start.camera_id == "K9001"  # a car in no-parking: illegal parking
    assert start.at == 300.0 and start.started_at == 0.0  # on time: the first frame at the 300 s dwell
    assert start.confidence == pytest.approx(0.8) and start.box == (300.0, 400.0, 380.0, 460.0)
    assert start.ground.area > 0 and box(-3, 10, 3, 50).buffer(1e-6).contains(start.ground)
    (end,) = [a for a in alarms if a.kind == "end"]
    assert end.key == start.key and end.ended_at == 399.0 and end.at == 399.0 + engine.grace_s + 1


def test_a_short_delivery_stop_raises_nothing(catalog: Catalog, camera: Camera) -> None:
    engine = RuleEngine(camera, catalog)
    stop = {float(t): [car()] for t in range(100, 220)}  # two minutes at the kerb
    again = {float(t): [car(0.5, 40.0, track=2)] for t in range(400, 520)}  # another, elsewhere, later
    assert run(engine, {**stop, **again}, 700) == []


def test_the_timer_survives_an_occlusion_and_a_stolen_track_id(catalog: Catalog, camera: Camera) -> None:
    engine = RuleEngine(camera, catalog)
    frames: dict[float, list[Sighting]] = {}
    for t in range(0, 150):
        frames[float(t)] = [car(track=1)]
    # 150-158: a lorry drives past in front of the car; the tracker gives it the car's ID 1
    for k, t in enumerate(range(150, 158)):
        frames[float(t)] = [Sighting("truck", -12.0 + 3.0 * k, 21.0, 0.7, None, 1)]
    # the car is seen again from 158 on, under a new ID
    for t in range(158, 320):
        frames[float(t)] = [car(track=7)]
    alarms = run(engine, frames, 320)
    starts = [a for a in alarms if a.kind == "start"]
    assert [(a.scenario, a.started_at, a.at) for a in starts] == [("TR01", 0.0, 300.0)]  # not restarted at 158
    # the passing lorry (moving) was never taken for a lorry parked in the strip (TR03)
    assert all(a.scenario != "TR03" for a in alarms)


def test_traffic_streaming_through_the_strip_never_looks_parked(catalog: Catalog, camera: Camera) -> None:
    engine = RuleEngine(camera, catalog)
    frames: dict[float, list[Sighting]] = {}
    for t in range(0, 900):  # a car every 4 s, 5 m/s north, each tracked for its 8 s in the strip
        frames[float(t)] = [car(0.0, 10.0 + 5.0 * (t - start), track=start)
                            for start in range(t - t % 4 - 4, t + 1, 4) if 0 <= t - start < 8]
    assert all(frames[float(t)] for t in range(8, 900))  # something is always in the strip
    assert run(engine, frames, 900) == []


def test_a_crowd_at_a_venue_entrance_is_a_possible_sales_meeting(catalog: Catalog, camera: Camera) -> None:
    engine = RuleEngine(camera, catalog)
    people = [Sighting("person", 8.5 + (k % 5) * 1.5, 17.0 + (k // 5) * 3.0, 0.6, None, 100 + k) for k in range(25)]
    frames = {float(t): people for t in range(0, 700)}
    frames |= {float(t): people[:10] for t in range(700, 760)}  # most leave
    alarms = [a for a in run(engine, frames, 760) if a.scenario == "MS01"]
    assert [(a.kind, a.count) for a in alarms] == [("start", 25), ("end", 25)]
    start, end = alarms
    assert start.started_at == 0.0 and start.at == 600.0 and end.ended_at == 699.0
    assert start.ground.intersects(box(8, 15, 20, 35)) and start.labels == ("person",)
    # 19 are not a crowd: the rule needs 20
    engine = RuleEngine(camera, catalog)
    assert [a for a in run(engine, {float(t): people[:19] for t in range(0, 700)}, 700) if a.scenario == "MS01"] == []


def test_every_camera_rule_of_the_catalog_can_be_met(catalog: Catalog) -> None:
    """With a camera that has every zone kind, each rule of the catalog fires on its own
    objects, held for its dwell."""
    zones = {kind: box(-30 + 8 * k, 10, -24 + 8 * k, 50) for k, kind in
             enumerate(("storefront", "no_parking", "roadway", "sidewalk", "entrance", "waterway"))}
    cam = Camera("K9002", "police", 0.0, 0.0, 0.0, 170.0, 60.0, "R1", "G1",
                 zones=tuple(Zone(k, g) for k, g in zones.items()))
    reached = set()
    for spec in camera_rules(catalog):
        rule = spec.camera
        assert rule is not None
        zone = zones["sidewalk" if rule.zone == "any" else rule.zone]
        c = zone.centroid
        objs = [Sighting(rule.labels[0], c.x + (k % 3) * 0.4, c.y - 15 + k * 1.0, 0.9) for k in range(rule.min_count)]
        engine = RuleEngine(cam, [spec])
        hits = [a for t in range(0, int(rule.dwell_s) + 2) for a in engine.observe(float(t), objs)]
        if any(a.scenario == spec.code and a.kind == "start" for a in hits):
            reached.add(spec.code)
    assert reached == {s.code for s in camera_rules(catalog)}


def test_the_frigate_mapping_and_the_engine_choose_alike(catalog: Catalog, camera: Camera) -> None:
    rules = camera_rules(catalog)
    assert best_rule(rules, "car", {"no_parking"}).code == "TR01"  # type: ignore[union-attr]
    assert best_rule(rules, "truck", {"no_parking"}).code == "TR03"  # type: ignore[union-attr]
    assert best_rule(rules, "person", {"entrance"}, single=False).code == "PS01"  # type: ignore[union-attr]
    assert best_rule(rules, "boat", {"no_parking"}) is None
    with pytest.raises(ValueError, match="frames must come in time order"):
        engine = RuleEngine(camera, catalog)
        engine.observe(5.0, [])
        engine.observe(4.0, [])


def test_xiaohes_cameras_have_the_zones_its_rules_need(xiaohe: District) -> None:
    """Every camera rule can fire on some camera of xiaohe, but the one on a waterway: the
    road data has no water (the canal is not in it)."""
    kinds = {z.kind for c in xiaohe.cameras for z in c.zones if not z.geometry.is_empty}
    assert kinds == {"no_parking", "storefront", "roadway", "sidewalk", "entrance"}
    unreachable = {s.code for s in camera_rules(xiaohe.catalog)
                   if s.camera is not None and s.camera.zone not in kinds | {"any"}}
    assert unreachable == {"CM10"}
    # an entrance zone is the ground before a venue's door, in the camera's view
    cam = next(c for c in xiaohe.cameras if any(z.kind == "entrance" for z in c.zones))
    door = next(z for z in cam.zones if z.kind == "entrance").geometry
    assert any(door.distance(Point(v.x, v.y)) < 1e-6 for v in xiaohe.venues) and cam.fov.buffer(1e-6).contains(door)
