"""Frigate camera events → reports: the label/zone → scenario mapping from the catalog's camera
rules, dwell and score thresholds, strict validation naming the dotted field, shards, and one
event per Frigate object end to end through the brain."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from actors.brain import Brain
from actors.cameras import CameraShard
from twin.district import District
from twin.errors import ValidationError

pytestmark = pytest.mark.timeout(60)

T0 = 1_772_416_800.0  # 2026-03-02 10:00 Asia/Shanghai: the day shift


@pytest.fixture(scope="module")
def shard(xiaohe: District) -> CameraShard:
    return CameraShard(xiaohe)


def obj(oid: str = "1772416800.123456-abc123", *, camera: str = "K0001", label: str = "car",
        zones: tuple[str, ...] = ("no_parking",), start: float = T0, frame: float = T0 + 1.0,
        end: float | None = None, score: float = 0.8, top: float = 0.9, fp: bool = False,
        stationary: bool = True) -> dict[str, Any]:
    """The ``after`` (or ``before``) part of a Frigate 0.14 event message."""
    return {
        "id": oid, "camera": camera, "frame_time": frame, "snapshot_time": frame, "label": label,
        "sub_label": None, "top_score": top, "false_positive": fp, "start_time": start, "end_time": end,
        "score": score, "box": [424, 500, 536, 712], "area": 23744, "ratio": 0.53, "region": [264, 450, 667, 853],
        "current_zones": list(zones), "entered_zones": list(zones), "thumbnail": None, "has_snapshot": True,
        "has_clip": True, "active": not stationary, "stationary": stationary, "motionless_count": 0,
        "position_changes": 0, "attributes": {}, "current_attributes": [],
    }


def message(kind: str, after: dict[str, Any], before: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": kind, "before": before if before is not None else copy.deepcopy(after), "after": after}


def track(label: str, zones: tuple[str, ...], seconds: list[float], *, camera: str = "K0001",
          oid: str = "1772416800.5-track") -> list[dict[str, Any]]:
    """A realistic sequence: ``new``, then ``update`` at each time offset, then ``end`` at the last."""
    msgs = []
    prev = obj(oid, camera=camera, label=label, zones=zones, frame=T0 + 0.5)
    msgs.append(message("new", prev))
    for s in seconds[:-1]:
        cur = obj(oid, camera=camera, label=label, zones=zones, frame=T0 + s)
        msgs.append(message("update", cur, prev))
        prev = cur
    last = obj(oid, camera=camera, label=label, zones=zones, frame=T0 + seconds[-1], end=T0 + seconds[-1])
    msgs.append(message("end", last, prev))
    return msgs


# --- the mapping -----------------------------------------------------------------------------------------
def test_mapping_follows_the_catalog_camera_rules(shard: CameraShard, xiaohe: District) -> None:
    rows = {(r["label"], r["zone"]): r for r in shard.mapping_table()}
    assert rows[("car", "no_parking")]["scenario"] == "TR01"  # illegal parking, not the fire-lane rule
    assert "TR03" in rows[("car", "no_parking")]["note"]
    assert rows[("truck", "no_parking")]["scenario"] == "TR03"
    assert rows[("goods", "storefront")]["scenario"] == "CM01"  # 出店经营
    assert rows[("goods", "storefront")]["name_zh"] == "出店经营"
    assert rows[("goods", "storefront")]["dwell_s"] == xiaohe.catalog["CM01"].camera.dwell_s
    assert rows[("fire", "any")]["scenario"] == "PS04"
    # Counting rules cannot fire on one tracked object, and the table says so.
    assert rows[("bus", "roadway")]["scenario"] is None
    assert "needs 20 objects" in rows[("bus", "roadway")]["note"]
    for r in rows.values():
        if r["scenario"] is not None:
            spec = xiaohe.catalog[r["scenario"]]
            assert spec.camera is not None and r["label"] in spec.camera.labels
            assert spec.camera.zone in (r["zone"], "any")
    # Every camera rule of the catalog is documented.
    named = {(lbl, s.camera.zone) for s in xiaohe.catalog if s.camera for lbl in s.camera.labels}
    assert named == set(rows)


def test_specific_zone_beats_an_any_rule(shard: CameraShard) -> None:
    assert shard.scenario_for("goods", {"storefront"}).code == "CM01"
    assert shard.scenario_for("goods", {"sidewalk"}).code == "CM03"
    assert shard.scenario_for("goods", set()).code == "PS10"  # anywhere else: the 'any' rule
    assert shard.scenario_for("car", {"no_parking", "storefront"}).code == "TR01"
    assert shard.scenario_for("dog", {"no_parking"}) is None
    assert shard.scenario_for("car", set()) is None


# --- dwell and score ---------------------------------------------------------------------------------------
def test_parked_car_is_reported_once_the_dwell_rule_is_met(shard: CameraShard, xiaohe: District) -> None:
    dwell = xiaohe.catalog["TR01"].camera.dwell_s  # 300 s
    new, early, at_dwell, end = track("car", ("no_parking",), [dwell / 2, dwell, dwell + 100])
    assert shard.ingest(new) is None
    assert "needs 300 s" in shard.last_reason
    assert shard.ingest(early) is None
    assert "seen for 150 s" in shard.last_reason
    body = shard.ingest(at_dwell)
    assert body is not None, shard.last_reason
    assert body["scenario"] == "TR01" and body["source"] == "camera"
    assert body["external_id"] == "frigate:1772416800.5-track"
    assert body["description"] == "K0001 saw car in zone no_parking for 300 s (score 0.90)"
    # Placed at the centroid of the camera's no-parking zone, not at the camera.
    cam = next(c for c in xiaohe.cameras if c.id == "K0001")
    zone = next(z for z in cam.zones if z.kind == "no_parking").geometry.centroid
    lon, lat = xiaohe.projection.to_lonlat(zone.x, zone.y)
    assert body["lon"] == pytest.approx(float(lon), abs=1e-6) and body["lat"] == pytest.approx(float(lat), abs=1e-6)
    final = shard.ingest(end)
    assert final is not None and final["external_id"] == body["external_id"]
    assert "for 400 s" in final["description"]


def test_end_message_measures_dwell_to_end_time(shard: CameraShard) -> None:
    after = obj(label="truck", frame=T0 + 10, end=T0 + 200)
    body = shard.ingest(message("end", after))
    assert body is not None and body["scenario"] == "TR03"  # 180 s rule


def test_goods_in_front_of_a_shop(shard: CameraShard) -> None:
    msgs = track("goods", ("K0001_storefront",), [60, 130], oid="1772416801.0-goods")
    assert [shard.ingest(m) is not None for m in msgs] == [False, False, True]
    body = shard.ingest(msgs[-1])
    assert body is not None and body["scenario"] == "CM01"
    assert "in zone storefront" in body["description"]


def test_zero_dwell_rule_fires_on_the_new_message(shard: CameraShard) -> None:
    body = shard.ingest(message("new", obj(label="smoke", zones=())))
    assert body is not None and body["scenario"] == "PS04"
    assert "in view" in body["description"]
    cam = shard.cameras["K0001"]
    lon, lat = shard.district.projection.to_lonlat(cam.x, cam.y)
    assert (body["lon"], body["lat"]) == (pytest.approx(float(lon), abs=1e-6), pytest.approx(float(lat), abs=1e-6))


def test_false_positive_low_score_and_unmapped_labels_report_nothing(shard: CameraShard) -> None:
    assert shard.ingest(message("update", obj(fp=True, frame=T0 + 999))) is None
    assert "false positive" in shard.last_reason
    assert shard.ingest(message("update", obj(score=0.3, top=0.45, frame=T0 + 999))) is None
    assert "below the threshold 0.50" in shard.last_reason
    assert shard.ingest(message("update", obj(label="dog", frame=T0 + 999))) is None
    assert "no scenario for label 'dog' in no_parking" in shard.last_reason
    assert shard.ingest(message("update", obj(label="car", zones=("driveway",), frame=T0 + 999))) is None
    assert "no known zone" in shard.last_reason


def test_score_threshold_is_settable(xiaohe: District) -> None:
    strict = CameraShard(xiaohe, ["K0001"], min_score=0.95)
    assert strict.ingest(message("update", obj(frame=T0 + 999))) is None
    strict.min_score = 0.9
    assert strict.ingest(message("update", obj(frame=T0 + 999))) is not None
    for bad in (1.5, -0.1, "0.5", True):
        with pytest.raises(ValidationError) as err:
            strict.min_score = bad  # type: ignore[assignment]
        assert err.value.field == "min_score"


def test_sub_label_both_shapes(shard: CameraShard) -> None:
    after = obj(frame=T0 + 999)
    after["sub_label"] = ["沪A12345", 0.8]
    body = shard.ingest(message("update", after))
    assert body is not None and "car (沪A12345)" in body["description"]
    after["sub_label"] = "delivery"
    assert "car (delivery)" in shard.ingest(message("update", after))["description"]


def test_every_camera_reports_a_point_inside_the_district(shard: CameraShard, xiaohe: District) -> None:
    for cam in xiaohe.cameras:
        body = shard.ingest(message("update", obj(camera=cam.id, frame=T0 + 999)))
        assert body is not None, shard.last_reason
        loc = xiaohe.locate(body["lon"], body["lat"])  # raises outside the district
        assert loc.grid_id


# --- validation -------------------------------------------------------------------------------------------
def _broken(path: str, value: Any) -> dict[str, Any]:
    msg = message("update", obj(frame=T0 + 999))
    *parents, last = path.split(".")
    target: Any = msg
    for p in parents:
        target = target[p]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return msg


_DELETE = object()


@pytest.mark.parametrize(("path", "value", "field", "reason"), [
    ("type", "begin", "type", "must be one of new, update, end"),
    ("type", _DELETE, "type", "is required"),
    ("after", _DELETE, "after", "is required"),
    ("after", [1, 2], "after", "must be an object, got array"),
    ("before", "x", "before", "must be an object or null"),
    ("before.id", "other", "before.id", "must equal after.id"),
    ("after.id", 42, "after.id", "must be a string, got number"),
    ("after.id", "", "after.id", "must not be empty"),
    ("after.camera", _DELETE, "after.camera", "is required"),
    ("after.label", 7, "after.label", "must be a string, got number"),
    ("after.label", None, "after.label", "must be a string, got null"),
    ("after.false_positive", "no", "after.false_positive", "must be true or false, got string"),
    ("after.start_time", _DELETE, "after.start_time", "is required"),
    ("after.start_time", True, "after.start_time", "must be a number, got boolean"),
    ("after.frame_time", T0 - 5, "after.frame_time", "must not be before after.start_time"),
    ("after.end_time", "soon", "after.end_time", "must be a number or null, got string"),
    ("after.end_time", T0 - 1, "after.end_time", "must not be before after.start_time"),
    ("after.current_zones", "no_parking", "after.current_zones", "must be an array of strings, got string"),
    ("after.current_zones", ["no_parking", 3], "after.current_zones[1]", "must be a string, got number"),
    ("after.sub_label", {"name": "x"}, "after.sub_label", "must be null, a string or [name, score]"),
    ("after.sub_label", ["x", "high"], "after.sub_label[1]", "must be a number or null, got string"),
    ("after.sub_label", [3, 0.5], "after.sub_label[0]", "must be a string or null, got number"),
    ("after.sub_label", ["x", 0.5, 1], "after.sub_label", "an array of 3 items"),
    ("after.top_score", 1.5, "after.top_score", "must be in [0, 1]"),
    ("after.top_score", _DELETE, "after.top_score", "is required"),
    ("after.current_zones", _DELETE, "after.current_zones", "is required"),
])
def test_malformed_messages_name_the_field(shard: CameraShard, path: str, value: Any, field: str,
                                           reason: str) -> None:
    with pytest.raises(ValidationError) as err:
        shard.ingest(_broken(path, value))
    assert err.value.field == field
    assert reason in err.value.reason
    assert shard.last_reason.startswith("rejected:")


def test_end_message_needs_end_time(shard: CameraShard) -> None:
    with pytest.raises(ValidationError) as err:
        shard.ingest(message("end", obj(end=None)))
    assert (err.value.field, err.value.reason) == ("after.end_time", "is required on an 'end' message")


def test_payload_must_be_an_object(shard: CameraShard) -> None:
    with pytest.raises(ValidationError) as err:
        shard.ingest([1, 2])  # type: ignore[arg-type]
    assert err.value.field == "payload"


def test_unknown_camera_and_other_shard(xiaohe: District) -> None:
    west = CameraShard(xiaohe, ["K0001", "K0051"])
    assert len(west) == 2 and "K0001" in west and "K0101" not in west
    with pytest.raises(ValidationError) as err:
        west.ingest(message("update", obj(camera="K9999")))
    assert err.value.field == "after.camera" and "unknown camera 'K9999'" in err.value.reason
    with pytest.raises(ValidationError) as err:
        west.ingest(message("update", obj(camera="K0101")))
    assert err.value.field == "after.camera" and "another shard" in err.value.reason


def test_an_empty_shard_refuses_every_camera(xiaohe: District) -> None:
    empty = CameraShard(xiaohe, [])
    assert len(empty) == 0
    with pytest.raises(ValidationError) as err:
        empty.ingest(message("update", obj()))
    assert "another shard (this one holds 0 cameras)" in err.value.reason


@pytest.mark.parametrize(("ids", "reason"), [
    (["K0001", "nope"], "unknown camera(s) nope"),
    ("K0001", "not a single string"),
    ([1], "must be strings"),
])
def test_bad_shards_are_refused(xiaohe: District, ids: Any, reason: str) -> None:
    with pytest.raises(ValidationError) as err:
        CameraShard(xiaohe, ids)
    assert err.value.field == "camera_ids" and reason in err.value.reason


# --- end to end through the brain -------------------------------------------------------------------------
def test_same_frigate_object_twice_is_one_event(shard: CameraShard, brain: Brain) -> None:
    msgs = track("car", ("no_parking",), [120, 310, 420], oid="1772416900.1-dup")
    bodies = [b for b in (shard.ingest(m) for m in msgs) if b is not None]
    assert len(bodies) == 2  # the update past 300 s and the end
    first = brain.create_event(bodies[0], actor="camera:K0001")
    again = brain.create_event(bodies[1], actor="camera:K0001")
    assert again["event"]["id"] == first["event"]["id"]
    assert again.get("duplicate_of_external_id") is True
    events = brain.list_events({})
    assert len(events) == 1
    e = events[0]
    assert (e["scenario"], e["source"], e["external_id"]) == ("TR01", "camera", "frigate:1772416900.1-dup")
    assert e["description"].startswith("K0001 saw car in zone no_parking")


def test_another_object_is_another_report(shard: CameraShard, brain: Brain) -> None:
    a = shard.ingest(message("update", obj("1772416900.1-a", camera="K0001", frame=T0 + 999)))
    b = shard.ingest(message("update", obj("1772416900.1-b", camera="K0151", frame=T0 + 999)))
    assert a is not None and b is not None
    ids = {brain.create_event(x, actor="camera")["event"]["id"] for x in (a, b)}
    assert len(ids) == 2
