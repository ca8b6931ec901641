"""City Eye's camera actors (`actors.cityeye`): the cameras file, synthetic cameras staged from
the feed's own draws, the pipeline posting alarms (start with evidence, end as a record), and
dead streams reported offline once per outage and reopened."""

from __future__ import annotations

import json
import math
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cv2")
pytest.importorskip("torch")

import scenarios
from actors.brain import Brain
from actors.cityeye import CityEye, offline_rule, read_config
from actors.client import LocalClient
from actors.eventlog import open_log
from actors.feed import FeedDraws, SyntheticFeed
from actors.virtual import ManualClock
from detection.synthetic import can_show, spots
from twin.district import District
from twin.errors import ValidationError


@pytest.fixture(scope="module")
def tiny(tiny_folder: Path) -> District:
    return scenarios.load(str(tiny_folder))


def brain_at(district: District, tmp_path: Path, hour: int = 10) -> tuple[Brain, ManualClock]:
    origin = datetime(2026, 3, 2, hour, 0, tzinfo=district.roster.tz).timestamp()
    clock = ManualClock(origin)
    return Brain(district, open_log(tmp_path / "log.db"), clock), clock


def test_a_synthetic_camera_reports_a_parked_car_on_time_with_its_evidence_and_end(tiny: District,
                                                                                 tmp_path: Path) -> None:
    """A car parks in the no-parking strip before a synthetic camera for 6 minutes (TR01's dwell
    is 5): one event, raised 300 s after it stopped, dispatched, with the annotated frame, the
    detection record and — once the car has gone — the alarm's end stored with it. A van stopping
    2 minutes elsewhere in the strip (a delivery) raises nothing."""
    tr01 = tiny.catalog["TR01"]
    cam = next(c for c in tiny.cameras if can_show(c, tr01))
    (tmp_path / "cams.toml").write_text(f'detector = "street"\nfps = 0.25\n[cameras.{cam.id}]\nsource = "synthetic"\n')
    brain, clock = brain_at(tiny, tmp_path)
    eye = CityEye(tiny, read_config(tmp_path / "cams.toml", tiny), LocalClient(brain), clock.now, loop=False)
    stream = eye.cameras[cam.id].stream
    where = spots(cam, "no_parking")
    assert where is not None
    t0 = clock.now()
    far = max(where.exterior.coords if hasattr(where, "exterior") else [(cam.x, cam.y)],
              key=lambda p: math.hypot(p[0] - cam.x, p[1] - cam.y))
    near = where.representative_point()
    assert stream.stage(tr01, (near.x, near.y), t0 + 10, t0 + 370, (1, 0, 0))
    assert stream.stage(tr01, far, t0 + 20, t0 + 140, (2, 0, 0))  # the delivery stop
    for k in range(0, 460, 4):
        clock.set(t0 + k)
        eye.step(t0 + k)
    (row,) = eye.status()
    assert row["state"] == "online" and row["frames"] == 115 and row["alarms"] == 1, row
    (eid,) = row["events"]
    event = brain.get_event(eid)
    assert event["scenario"] == "TR01" and event["source"] == "camera" and event["assignee"], event
    reported = datetime.fromisoformat(event["reported_at"]).timestamp() - t0
    assert 310 <= reported <= 322, reported  # due at 310 s; frames are 4 s apart, tracks need 4 s to stand
    stored = {e["id"]: e for e in event["stored_evidence"]}
    jpeg_id, doc_id = event["evidence"]
    assert stored[jpeg_id]["content_type"] == "image/jpeg" and stored[doc_id]["content_type"] == "application/json"
    (end_id,) = set(stored) - {jpeg_id, doc_id}
    end = json.loads(brain.evidence(end_id)[2])
    assert end["camera"] == cam.id and end["scenario"] == "TR01"
    assert end["ended_at"] - t0 == pytest.approx(368, abs=5) and end["started_at"] - t0 == pytest.approx(12, abs=5)


def test_the_feed_leaves_to_synthetic_cameras_exactly_the_incidents_they_show(tiny: District, tmp_path: Path) -> None:
    """Same seed, same draws: every incident of the day is either reported by the feed or staged
    before the synthetic camera that covers it and can show it, never both, never neither."""
    fed = sorted({c for c in (c.id for c in tiny.cameras)})
    brain, clock = brain_at(tiny, tmp_path, hour=0)
    origin = clock.now()
    everything = [(t, inc.id, k) for t, inc, k, _ in FeedDraws(tiny, origin, rate=3.0).due(origin + 86400 - 1)]
    feed = SyntheticFeed(tiny, LocalClient(brain), origin, rate=3.0, cameras=fed)
    (tmp_path / "cams.toml").write_text('detector = "street"\n' + "".join(
        f'[cameras.{c}]\nsource = "synthetic"\n' for c in fed))
    eye = CityEye(tiny, read_config(tmp_path / "cams.toml", tiny), LocalClient(brain), clock.now, loop=False,
                  feed=feed.info())
    assert eye.stager is not None
    eye.stager.step(origin)
    feed.step(origin)
    for h in range(1, 24):  # an hour at a time: what is due is staged (the eye a minute ahead) or reported
        eye.stager.step(origin + h * 3600)
        feed.step(origin + h * 3600)
    eye.stager.step(origin + 86400 - 61)
    feed.step(origin + 86400 - 1)
    staged = sum(len(e.stream.staged) for e in eye.cameras.values())
    assert staged == feed.left_to_cameras > 0
    assert feed.reported + feed.failed + feed.left_to_cameras == len(everything)
    for e in eye.cameras.values():
        for code, start, end in e.stream.staged:
            assert can_show(e.camera, tiny.catalog[code]) and end > start >= origin


def _video(path: Path, frames: int = 30) -> None:
    import cv2

    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 240))
    for k in range(frames):
        img = np.full((240, 320, 3), 60 + k, np.uint8)
        cv2.rectangle(img, (40 + k, 100), (120 + k, 160), (0, 0, 200), -1)
        out.write(img)
    out.release()


def test_a_dead_stream_is_reported_offline_once_per_outage_and_reopened(tiny: District, tmp_path: Path) -> None:
    """A file that is not there yet and a stream nobody serves: both offline with the reason,
    never a crash; after the catalog's threshold (PU04: 300 s) each is reported once as a
    sensor event at the camera; once the file appears, it is reopened and analysed."""
    spec = offline_rule(tiny)
    assert spec is not None and spec.code == "PU04" and spec.sensor is not None and spec.sensor.threshold == 300
    a, b = tiny.cameras[0].id, tiny.cameras[1].id
    (tmp_path / "cams.toml").write_text(
        f'fps = 5\nretry_s = 0.2\nretry_max_s = 0.4\n[cameras.{a}]\nsource = "later.avi"\nloop = true\n'
        f'[cameras.{b}]\nsource = "rtsp://viewer:secret@127.0.0.1:9/live"\n')
    brain, clock = brain_at(tiny, tmp_path)
    eye = CityEye(tiny, read_config(tmp_path / "cams.toml", tiny), LocalClient(brain), clock.now, loop=False)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(r["state"] != "offline" for r in eye.status()):
            time.sleep(0.05)
        rows = {r["camera"]: r for r in eye.status()}
        assert rows[a]["state"] == "offline" and "does not exist" in rows[a]["error"], rows[a]
        assert rows[b]["state"] == "offline" and "cannot be opened" in rows[b]["error"], rows[b]
        assert "secret" not in json.dumps(rows) and rows[b]["source"] == "rtsp://viewer:***@127.0.0.1:9/live"
        t0 = clock.now()
        eye.step(t0 + 200)
        assert not brain.list_events({})  # not yet: 300 s
        clock.set(t0 + 301)
        eye.step(t0 + 301)
        eye.step(t0 + 330)
        events = brain.list_events({})
        assert sorted(e["description"].split()[1] for e in events) == sorted([a, b])
        assert {e["scenario"] for e in events} == {"PU04"} and {e["source"] for e in events} == {"sensor"}
        assert all(e["external_id"].startswith(f"cityeye:{e['description'].split()[1]}:offline:") for e in events)
        (tmp_path / "writing").mkdir()
        _video(tmp_path / "writing" / "later.avi")
        (tmp_path / "writing" / "later.avi").rename(tmp_path / "later.avi")  # whole, at once
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and eye.status()[[r["camera"] for r in eye.status()].index(a)]["frames"] < 3:
            time.sleep(0.05)
        rows = {r["camera"]: r for r in eye.status()}
        assert rows[a]["state"] == "online" and rows[a]["frames"] >= 3 and rows[a]["reconnects"] >= 1, rows[a]
        assert rows[b]["state"] == "offline" and rows[b]["reconnects"] >= 1 and rows[b]["outages"] == 1
        clock.set(t0 + 400)
        assert eye.step(t0 + 400) >= 1  # its frames are analysed
        assert len(brain.list_events({})) == 2  # the dead one is not reported again in the same outage
    finally:
        eye.stop()


@pytest.mark.parametrize(("text", "field", "reason"), [
    ("[cameras.K9999]\nsource = 'x.mp4'\n", "cameras.K9999", "no camera 'K9999'"),
    ("[cameras.{cam}]\nloop = true\n", "cameras.{cam}.source", "give a video file"),
    ("detector = 'yolo9'\n[cameras.{cam}]\nsource = 'synthetic'\n", "detector", "one of yolov4-tiny, street"),
    ("device = 'cuda'\nonnx = true\n[cameras.{cam}]\nsource = 'synthetic'\n", "onnx", "runs on the CPU"),
    ("device = 'cuda'\n[ray]\nnum_gpus = 0\n[cameras.{cam}]\nsource = 'synthetic'\n", "ray.num_gpus", "GPU share"),
    ("fps = 0\n[cameras.{cam}]\nsource = 'synthetic'\n", "fps", "must be a number > 0"),
    ("fps = 2\nspeed = 3\n[cameras.{cam}]\nsource = 'synthetic'\n", "speed", "unknown key"),
    ("[cameras.{cam}]\nsource = 'synthetic'\nloop = 'yes'\n", "cameras.{cam}.loop", "true or false"),
    ("fps = \n", "file", "not valid TOML"),
    ("fps = 1\n", "cameras", "at least one"),
])
def test_a_bad_cameras_file_is_refused_naming_the_file_and_field(tiny: District, tmp_path: Path, text: str,
                                                                  field: str, reason: str) -> None:
    cam = tiny.cameras[0].id
    path = tmp_path / "cams.toml"
    path.write_text(text.replace("{cam}", cam))
    with pytest.raises(ValidationError) as err:
        read_config(path, tiny)
    assert err.value.field == field.replace("{cam}", cam) and err.value.source == str(path)
    assert reason in str(err.value) and str(err.value).startswith(f"{path}: ")


def test_a_missing_cameras_file_is_named(tiny: District, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot be read"):
        read_config(tmp_path / "nope.toml", tiny)
