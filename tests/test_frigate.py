"""Frigate as it really speaks: the ``frigate/events`` examples of Frigate's own documentation,
0.11 to 0.17, and a message with every key Frigate 0.17 writes, are each taken as Frigate means
them (``score`` above ``top_score``, null sub-label scores, fields added or gone between
versions); the scenario's table of Frigate camera and zone names; unmapped zones named, not
dropped; the HTTP route, its OpenAPI schema and its errors."""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from actors.brain import Brain
from actors.cameras import CameraShard
from actors.client import LocalClient
from actors.eventlog import open_log
from actors.frigate import FrigateMap, frigate_map_from_dict, frigate_map_from_file, frigate_map_of, parse_message
from actors.live import Clock
from api.app import create_app
from twin.district import District
from twin.errors import ValidationError

pytestmark = pytest.mark.timeout(120)

DATA = Path(__file__).parent / "data" / "frigate"
DOC_VERSIONS = ("0_11", "0_12", "0_13", "0_14", "0_15", "0_16", "0_17")
#: The doc examples' names mapped to xiaohe (a test's own table).
DOC_NAMES = {"cameras": {"front_door": {"camera": "K0060", "zones": {"driveway": "no_parking", "yard": "ignore"}}}}


def jsonc(name: str) -> dict[str, Any]:
    """A fixture: JSON with ``//`` comments (outside strings) and trailing commas, as in Frigate's docs."""
    text = (DATA / name).read_text(encoding="utf-8")
    lines = []
    for line in text.splitlines():
        in_str, cut = False, len(line)
        for i, ch in enumerate(line):
            if ch == '"' and (i == 0 or line[i - 1] != "\\"):
                in_str = not in_str
            elif not in_str and line.startswith("//", i):
                cut = i
                break
        lines.append(line[:cut])
    return json.loads(re.sub(r",(\s*[}\]])", r"\1", "\n".join(lines)))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def doc_shard(xiaohe: District) -> CameraShard:
    return CameraShard(xiaohe, names=frigate_map_from_dict(DOC_NAMES, xiaohe))


@pytest.fixture(scope="module")
def shard(xiaohe: District) -> CameraShard:
    return CameraShard(xiaohe)  # xiaohe's own frigate.toml


# --- the documented messages ---------------------------------------------------------------------------
@pytest.mark.parametrize("version", DOC_VERSIONS)
def test_every_documented_version_is_taken_as_frigate_means_it(doc_shard: CameraShard, version: str) -> None:
    msg = jsonc(f"events-{version}.jsonc")
    obj = parse_message(msg)
    assert (obj.type, obj.id, obj.camera, obj.label) == ("update", "1607123955.475377-mxklsc", "front_door", "person")
    assert obj.top_score == pytest.approx(0.958984375) and not obj.false_positive
    assert obj.current_zones == ("yard", "driveway") and obj.end_time is None
    assert obj.sub_label == ("John Smith" if version >= "0_13" else None)
    # A person in a no-parking zone reports nothing; the message is taken all the same.
    assert doc_shard.ingest(msg) is None
    assert doc_shard.last_reason.startswith("frigate:1607123955.475377-mxklsc (K0060 person):")
    assert "rejected" not in doc_shard.last_reason and "ignored zone" not in doc_shard.last_reason  # yard: ignore
    # A car there is illegal parking once 300 s have passed (6.6 s here).
    car = copy.deepcopy(msg)
    car["after"]["label"] = "car"
    assert doc_shard.ingest(car) is None
    assert "TR01 needs 300 s in zone 'no_parking', seen for 7 s so far" in doc_shard.last_reason
    car["after"]["frame_time"] = car["after"]["start_time"] + 301
    body = doc_shard.ingest(car)
    assert body is not None and body["scenario"] == "TR01" and body["external_id"] == "frigate:1607123955.475377-mxklsc"


@pytest.mark.parametrize("version", DOC_VERSIONS)
def test_a_documented_message_from_an_unmapped_camera_is_refused_naming_it(xiaohe: District, version: str) -> None:
    bare = CameraShard(xiaohe, names=FrigateMap())
    with pytest.raises(ValidationError) as err:
        bare.ingest(jsonc(f"events-{version}.jsonc"))
    assert err.value.field == "after.camera"
    assert "unknown camera 'front_door'" in err.value.reason and "[cameras.front_door]" in err.value.reason


def test_every_key_frigate_writes_with_score_above_top_score(shard: CameraShard) -> None:
    msg = jsonc("events-0_17-code.jsonc")
    assert msg["after"]["score"] > msg["after"]["top_score"]  # normal: one frame against the best median
    body = shard.ingest(msg)
    assert body is not None, shard.last_reason
    assert body["scenario"] == "TR01"
    assert body["description"] == "K0060 saw car in zone no_parking for 310 s (score 0.84)"
    assert shard.last_camera == "K0060"


@pytest.mark.parametrize("sub_label", [None, "delivery", ["沪A12345", 0.8], ["沪A12345", None], [None, None],
                                       [None, 0.5], ""])
def test_every_shape_of_sub_label(shard: CameraShard, sub_label: Any) -> None:
    msg = jsonc("events-0_17-code.jsonc")
    msg["after"]["sub_label"] = sub_label
    body = shard.ingest(msg)
    assert body is not None, shard.last_reason
    name = sub_label[0] if isinstance(sub_label, list) else sub_label
    assert ("car (" in body["description"]) == bool(name)
    if name:
        assert f"car ({name})" in body["description"]


@pytest.mark.parametrize("key", ["sub_label", "false_positive", "end_time", "score", "entered_zones", "stationary",
                                 "box", "region", "snapshot", "has_snapshot", "has_clip", "attributes",
                                 "current_attributes", "motionless_count", "position_changes", "active",
                                 "max_severity", "recognized_license_plate", "path_data", "computed_score"])
def test_optional_and_frigate_only_fields_may_be_missing(shard: CameraShard, key: str) -> None:
    msg = jsonc("events-0_17-code.jsonc")
    del msg["after"][key]
    del msg["before"]
    assert shard.ingest(msg) is not None, shard.last_reason


@pytest.mark.parametrize(("key", "value"), [
    ("box", [0.1, 0.2, 0.3, 0.4, 0.5]), ("region", None), ("snapshot", {"frame_time": 1, "box": []}),
    ("thumbnail", None), ("stationary", "yes"), ("recognized_license_plate", ["ABC123", 0.93]),
    ("max_severity", "alert"), ("score", 1.0), ("current_attributes", [{"label": "face"}]),
    ("entered_zones", None), ("new_field_of_frigate_0_18", {"anything": [1, 2]})])
def test_fields_the_twin_does_not_read_are_frigates_business(shard: CameraShard, key: str, value: Any) -> None:
    msg = jsonc("events-0_17-code.jsonc")
    msg["after"][key] = value
    assert shard.ingest(msg) is not None, shard.last_reason


def test_false_positive_null_is_false_and_end_needs_its_time(shard: CameraShard) -> None:
    msg = jsonc("events-0_17-code.jsonc")
    msg["after"]["false_positive"] = None
    assert shard.ingest(msg) is not None
    msg["type"] = "end"
    with pytest.raises(ValidationError) as err:
        shard.ingest(msg)
    assert err.value.field == "after.end_time"
    msg["after"]["end_time"] = msg["after"]["frame_time"] + 5
    body = shard.ingest(msg)
    assert body is not None and "for 315 s" in body["description"]


@pytest.mark.parametrize(("name", "field", "reason"), [
    ("reviews-0_17.jsonc", "after.label", "frigate/reviews message"),
    ("tracked_object_update-0_17.jsonc", "type", "frigate/tracked_object_update message"),
])
def test_messages_of_other_topics_are_refused_saying_so(shard: CameraShard, name: str, field: str,
                                                        reason: str) -> None:
    with pytest.raises(ValidationError) as err:
        shard.ingest(jsonc(name))
    assert err.value.field == field and reason in err.value.reason


# --- names: the scenario's frigate.toml --------------------------------------------------------------------
def test_xiaohe_ships_a_worked_example(xiaohe: District) -> None:
    names = frigate_map_of(xiaohe)
    assert names.source.endswith("scenarios/xiaohe/frigate.toml")
    assert names.camera_id("gate_east") == "K0060" and names.camera_id("K0001") == "K0001"
    kinds, unmapped = names.zone_kinds("gate_east", ["no_parking_east", "lawn", "kerb", "shop_row", "driveway",
                                                     "K0060_roadway", "gate_east-sidewalk", "driveway"])
    assert kinds == {"no_parking", "storefront", "roadway", "sidewalk"}
    assert unmapped == ["driveway"]


def test_the_conventions_hold_without_a_table(xiaohe: District) -> None:
    names = FrigateMap()
    kinds, unmapped = names.zone_kinds("K0001", ["no_parking", "K0001_storefront", "K0001-sidewalk",
                                                 "no_parking_east", "K0060-no_parking", "any"])
    assert kinds == {"no_parking", "storefront", "sidewalk"}
    assert unmapped == ["no_parking_east", "K0060-no_parking", "any"]


def test_unmapped_zones_are_named_in_the_reason_counted_and_logged_once(
        xiaohe: District, caplog: pytest.LogCaptureFixture) -> None:
    shard = CameraShard(xiaohe)
    msg = jsonc("events-0_17-code.jsonc")
    msg["after"]["current_zones"] = ["no_parking_east", "bus_lane"]
    msg["after"]["frame_time"] = msg["after"]["start_time"] + 10
    with caplog.at_level(logging.WARNING, logger="streetbrain.frigate"):
        for _ in range(3):
            assert shard.ingest(msg) is None
    assert "seen for 10 s so far; ignored zone(s) 'bus_lane' of camera 'gate_east'" in shard.last_reason
    assert shard.unmapped_zones == {("gate_east", "bus_lane"): 3}
    warnings = [r for r in caplog.records if "bus_lane" in r.getMessage()]
    assert len(warnings) == 1 and "frigate.toml" in warnings[0].getMessage()
    msg["after"]["current_zones"] = ["bus_lane"]  # nothing known: why there is no scenario
    assert shard.ingest(msg) is None
    assert "no scenario for label 'car' in no known zone; ignored zone(s) 'bus_lane'" in shard.last_reason


@pytest.mark.parametrize(("table", "field", "reason"), [
    ({"camera": {}}, "camera", "unknown key"),
    ({"cameras": {"x": "K0001"}}, "cameras.x", "must be a table"),
    ({"cameras": {"x": {"camera": "K9999"}}}, "cameras.x.camera", "no camera 'K9999' in district 'xiaohe'"),
    ({"cameras": {"x": {}}}, "cameras.x.camera", "give camera = \"<camera id>\""),
    ({"cameras": {"x": {"camera": 7}}}, "cameras.x.camera", "must be a camera id (a string), got number"),
    ({"cameras": {"x": {"camera": "K0001", "zone": {}}}}, "cameras.x.zone", "unknown key"),
    ({"cameras": {"x": {"camera": "K0001", "zones": {"a": "parking"}}}}, "cameras.x.zones.a", "must be a zone kind"),
    ({"cameras": {"x": {"camera": "K0001", "zones": {"a": "any"}}}}, "cameras.x.zones.a", "must be a zone kind"),
    ({"zones": ["kerb"]}, "zones", "must be a table"),
    ({"zones": {"kerb": 1}}, "zones.kerb", "must be a zone kind"),
])
def test_a_bad_table_names_the_file_and_field(xiaohe: District, tmp_path: Path, table: dict[str, Any], field: str,
                                              reason: str) -> None:
    with pytest.raises(ValidationError) as err:
        frigate_map_from_dict(table, xiaohe, source="frigate.toml")
    assert (err.value.field, err.value.source) == (field, "frigate.toml")
    assert reason in err.value.reason


def test_a_camera_named_by_its_id_may_rename_zones_only(xiaohe: District, tmp_path: Path) -> None:
    path = tmp_path / "frigate.toml"
    path.write_text('[cameras.K0001]\nzones = { shopfront = "storefront" }\n', encoding="utf-8")
    names = frigate_map_from_file(path, xiaohe)
    assert names.camera_id("K0001") == "K0001"
    assert names.zone_kinds("K0001", ["shopfront"]) == ({"storefront"}, [])
    path.write_text("[cameras.K0001\n", encoding="utf-8")
    with pytest.raises(ValidationError) as err:
        frigate_map_from_file(path, xiaohe)
    assert err.value.source == str(path) and "not valid TOML" in err.value.reason


# --- the HTTP route ---------------------------------------------------------------------------------------
@pytest.fixture
def http(xiaohe: District, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    origin = datetime(2026, 3, 2, 10, 0, tzinfo=xiaohe.roster.tz).timestamp()
    brain = Brain(xiaohe, open_log(tmp_path / "events.db"), Clock(speed=1.0, origin=origin))
    app = create_app(LocalClient(brain), cameras=CameraShard(xiaohe), district=xiaohe, tick_s=None)
    token = brain.create_token("ingest", name="frigate")["token"]
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {token}"}
    brain.log.close()


def test_route_reports_once_per_frigate_object(http: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = http
    msg = jsonc("events-0_17-code.jsonc")
    first = client.post("/api/v1/ingest/frigate", json=msg, headers=auth)
    assert first.status_code == 201, first.text
    assert first.json()["reported"] is True and first.json()["event"]["external_id"] == "frigate:1772416800.204511-k3x9qa"
    msg["after"]["frame_time"] += 30
    again = client.post("/api/v1/ingest/frigate", json=msg, headers=auth)
    assert again.status_code == 201 and again.json()["event"]["id"] == first.json()["event"]["id"]
    assert again.json()["duplicate_of_external_id"] is True


@pytest.mark.parametrize("version", DOC_VERSIONS)
def test_route_answers_202_with_the_reason(http: tuple[TestClient, dict[str, str]], version: str) -> None:
    client, auth = http
    msg = jsonc(f"events-{version}.jsonc")
    for part in ("before", "after"):
        msg[part]["camera"] = "gate_east"
        msg[part]["current_zones"] = ["no_parking_east", "driveway"]
    r = client.post("/api/v1/ingest/frigate", json=msg, headers=auth)
    assert r.status_code == 202, r.text
    assert r.json()["reported"] is False
    assert "no scenario for label 'person' in no_parking; ignored zone(s) 'driveway'" in r.json()["reason"]


@pytest.mark.parametrize(("body", "status", "field", "reason"), [
    (b"{not json", 400, "body", "malformed JSON"),
    (b"[1]", 422, "body", "must be a JSON object"),
    (b'{"type": "update"}', 422, "after", "is required"),
    (b'{"type": "update", "after": {"id": "a", "camera": "nowhere", "label": "car", "top_score": 0.9, '
     b'"start_time": 1, "frame_time": 2, "current_zones": []}}', 422, "after.camera", "unknown camera 'nowhere'"),
    (b'{"type": "update", "after": {"id": "a", "camera": "K0001", "label": "car", "top_score": "high", '
     b'"start_time": 1, "frame_time": 2, "current_zones": []}}', 422, "after.top_score", "must be a number"),
])
def test_route_errors_name_the_field(http: tuple[TestClient, dict[str, str]], body: bytes, status: int, field: str,
                                     reason: str) -> None:
    client, auth = http
    answers = []
    for _ in range(2):  # the route's answer, then the fast path's (the token is known by then)
        r = client.post("/api/v1/ingest/frigate", content=body, headers={**auth, "Content-Type": "application/json"})
        assert r.status_code == status, r.text
        answers.append(r.json())
    err = answers[0]["error"]
    assert err["field"] == field and reason in err["reason"]
    assert answers[1] == answers[0]


def test_fast_path_answers_as_the_route(http: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = http
    counts = client.app.state.fast_reports  # type: ignore[attr-defined]
    msg = jsonc("events-0_17-code.jsonc")
    msg["after"]["frame_time"] = msg["after"]["start_time"] + 10
    slow = client.post("/api/v1/ingest/frigate", json=msg, headers=auth)
    fast = client.post("/api/v1/ingest/frigate", json=msg, headers=auth)
    assert slow.status_code == fast.status_code == 202 and slow.json() == fast.json()
    assert counts["served"] >= 1
    msg["after"]["frame_time"] += 300
    served = counts["served"]
    first = client.post("/api/v1/ingest/frigate", json=msg, headers={**auth, "Idempotency-Key": "frigate-1"})
    again = client.post("/api/v1/ingest/frigate", json=msg, headers={**auth, "Idempotency-Key": "frigate-1"})
    assert first.status_code == again.status_code == 201 and counts["served"] == served + 2
    assert first.json()["event"]["id"] == again.json()["event"]["id"]


def test_openapi_documents_the_frigate_body(http: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = http
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/api/v1/ingest/frigate"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["type", "after"]
    assert schema["properties"]["type"]["enum"] == ["new", "update", "end"]
    after = schema["properties"]["after"]
    assert {"id", "camera", "label", "top_score", "start_time", "frame_time", "current_zones"} <= set(after["required"])
    assert after["additionalProperties"] is True
    assert "$ref" not in json.dumps(schema)  # self-contained
    assert {"201", "202", "422"} <= set(op["responses"])
    assert op["requestBody"]["content"]["application/json"]["example"]["after"]["score"] > \
        op["requestBody"]["content"]["application/json"]["example"]["after"]["top_score"]
