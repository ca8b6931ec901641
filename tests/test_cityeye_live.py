"""City Eye into the live twin: an alarm of a district camera's pipeline becomes an event
through the same report path as any source, with its annotated frame and a JSON record of
the detection stored in the event log's evidence store, and shown with the event."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cv2")
pytest.importorskip("torch")

import scenarios
from actors.brain import Brain
from actors.eventlog import open_log
from actors.virtual import ManualClock
from detection.base import Detections
from detection.pipeline import Pipeline, post_alarm


def test_a_parked_car_seen_by_a_district_camera_is_dispatched_with_its_evidence(tiny_folder: Path,
                                                                                 tmp_path: Path) -> None:
    district = scenarios.load(str(tiny_folder))
    cam = next(c for c in district.cameras if any(z.kind == "no_parking" and z.geometry.area > 20 for z in c.zones))
    cal = district.calibration(cam.id)
    zone = next(z for z in cam.zones if z.kind == "no_parking")
    c = zone.geometry.representative_point()
    u, v = cal.to_image([[c.x, c.y]])[0]
    box = np.array([[u - 50, v - 70, u + 50, v]], np.float32)
    origin = datetime(2026, 3, 2, 10, 0, tzinfo=district.roster.tz).timestamp()
    clock = ManualClock(origin)
    brain = Brain(district, open_log(tmp_path / "log.db"), clock)

    class Scripted:  # the detections of a scripted scene: the car, frame after frame
        names = ("person", "car")

        def detect(self, frames: list[np.ndarray]) -> list[Detections]:
            return [Detections(box, np.array([0.85], np.float32), np.array([1]), self.names) for _ in frames]

    pipe = Pipeline(cam, cal, Scripted(), district.catalog, origin=origin)
    frame = np.full((cal.height, cal.width, 3), 90, np.uint8)
    posted, kept = [], []
    for t in range(0, 310, 2):
        clock.set(origin + t)
        res = next(iter(pipe.run([(float(t), frame)])))
        for alarm, ev in zip([a for a in res.alarms if a.kind == "start"], res.evidence):
            posted.append(post_alarm(brain, alarm, ev, to_lonlat=district.projection.to_lonlat, calibration=cal))
            kept.append((alarm, ev))
    (out,) = posted
    event = brain.get_event(out["event"]["id"])
    assert event["scenario"] == "TR01" and event["source"] == "camera" and event["assignee"]  # dispatched
    assert event["external_id"].startswith(f"cityeye:{cam.id}:TR01:")
    jpeg_id, doc_id = event["evidence"]
    _, ctype, jpeg = brain.evidence(jpeg_id)
    assert ctype == "image/jpeg" and "sha256:" + hashlib.sha256(jpeg).hexdigest() == jpeg_id
    _, ctype, raw = brain.evidence(doc_id)
    doc = json.loads(raw)
    assert ctype == "application/json" and doc["jpeg"] == jpeg_id and doc["camera"] == cam.id
    assert doc["raised_at"] - doc["started_at"] == pytest.approx(300.0, abs=2.0)
    assert doc["image_region"] == [round(float(x), 1) for x in box[0]] and doc["ground_region"]["type"] == "Polygon"
    # the event sits where the car stands (its road), and a repeat of the alarm is the same event
    lon, lat = district.projection.to_lonlat(c.x, c.y)
    assert abs(event["location"]["coordinates"][0] - lon) < 1e-4 and abs(event["location"]["coordinates"][1] - lat) < 1e-4
    first_alarm, first_ev = kept[0]
    again = post_alarm(brain, first_alarm, first_ev, to_lonlat=district.projection.to_lonlat)
    assert again["duplicate_of_external_id"] and again["event"]["id"] == event["id"]


def test_the_synthetic_loop_runs_end_to_end(tiny_folder: Path, tmp_path: Path) -> None:
    """Simulated district → synthetic camera → the shipped synthetic detector → tracks → the
    rules → an event dispatched in the live twin, with its evidence. A car parks in a
    camera's no-parking strip at t = 5 s (the rule's dwell shortened to 30 s for the test);
    another drives through and a person walks by: one event, on time."""
    import math
    from dataclasses import replace

    from shapely.geometry import Point

    from detection.centernet import CenterNetDetector
    from detection.synthetic import Actor, SyntheticCamera
    from detection.weights import street_weights

    district = scenarios.load(str(tiny_folder))
    width, height = 768, 512
    for cam in district.cameras:
        near = Point(cam.x, cam.y).buffer(30.0).difference(Point(cam.x, cam.y).buffer(12.0))
        strip = next((z.geometry.intersection(near).intersection(cam.fov) for z in cam.zones
                      if z.kind == "no_parking"), None)
        if strip is not None and strip.area > 10:
            break
    else:
        pytest.skip("no camera with a no-parking strip 12-30 m away")
    spot = strip.representative_point()
    cal = district.calibration(cam.id, width=width, height=height)
    h = math.radians(cam.heading_deg)
    actors = [Actor("car", spot.x, spot.y, 5.0, 1e9, heading=h, seed=11),
              Actor("car", cam.x - 40 * math.sin(h), cam.y - 40 * math.cos(h), 0.0, 20.0, heading=h,
                    vx=8 * math.sin(h), vy=8 * math.cos(h), seed=12),
              Actor("person", spot.x + 3 * math.cos(h), spot.y - 3 * math.sin(h), 0.0, 60.0, heading=h,
                    vx=0.8 * math.sin(h), vy=0.8 * math.cos(h), seed=13)]
    specs = [replace(s, camera=replace(s.camera, dwell_s=30.0)) if s.code == "TR01" and s.camera else s
             for s in district.catalog]
    origin = datetime(2026, 3, 2, 10, 0, tzinfo=district.roster.tz).timestamp()
    clock = ManualClock(origin)
    brain = Brain(district, open_log(tmp_path / "log.db"), clock)
    pipe = Pipeline(cam, cal, CenterNetDetector(street_weights()), specs, origin=origin, batch=4)
    posted = []
    for res in pipe.run(SyntheticCamera(cam, width=width, height=height, seed=3).frames(actors, seconds=60.0)):
        clock.set(origin + res.t)
        for alarm, ev in zip([a for a in res.alarms if a.kind == "start"], res.evidence):
            posted.append((alarm, post_alarm(brain, alarm, ev, to_lonlat=district.projection.to_lonlat)))
    assert [a.scenario for a, _ in posted] == ["TR01"], [(a.scenario, a.labels, a.x, a.y) for a, _ in posted]
    alarm, out = posted[0]
    assert math.hypot(alarm.x - spot.x, alarm.y - spot.y) < 2.5  # the parked car, placed by the calibration
    assert 5.0 <= alarm.started_at - origin <= 12.0 and alarm.at - alarm.started_at == pytest.approx(30.0, abs=2.0)
    event = brain.get_event(out["event"]["id"])
    assert event["state"] == "dispatched" and event["assignee"] and len(event["evidence"]) == 2
