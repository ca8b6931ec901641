"""Open311 GeoReport v2 over a real brain and SQLite log: every successful answer is checked
against the standard's JSON Schemas; services, the POST → GET round trip, filters, status after
the brain closes a request, api_key checks (body or query), bad input (400 naming the field),
unknown codes, ids, paths and formats, idempotent retries, requests located by address_string
(Chinese and English), media_url (a citizen's link, a photo uploaded through the native API)
and the discovery document. XML and a third-party client: ``test_open311_xml.py``."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from actors.brain import Brain
from actors.client import LocalClient
from actors.eventlog import open_log
from actors.live import Clock
from api import open311
from api.deps import install_state
from api.routes import actions, evidence
from twin.catalog import Source
from twin.district import District

pytestmark = pytest.mark.timeout(60)

P = "/open311/v2"
SCHEMA_DIR = Path(os.environ.get("OPEN311_SCHEMAS", Path(__file__).resolve().parents[2] / "shared" / "open311"))
SCHEMA_FILES = ("request.json", "requests.json", "service.json", "services.json", "service-definition.json")


# --- schema validation ---------------------------------------------------------------------------------
def _validators() -> dict[str, Draft4Validator] | None:
    if not all((SCHEMA_DIR / f).is_file() for f in SCHEMA_FILES):
        return None
    schemas = {f: json.loads((SCHEMA_DIR / f).read_text()) for f in SCHEMA_FILES}
    registry: Registry = Registry().with_resources(
        (name, Resource.from_contents(s, default_specification=DRAFT4)) for name, s in schemas.items())
    return {name: Draft4Validator(s, registry=registry) for name, s in schemas.items()}


VALIDATORS = _validators()


def test_the_open311_schemas_are_available() -> None:
    if VALIDATORS is None:
        pytest.skip(f"Open311 schemas not found in {SCHEMA_DIR}; responses are checked by shape only "
                    "(set OPEN311_SCHEMAS to the folder)")
    for v in VALIDATORS.values():
        Draft4Validator.check_schema(v.schema)
    # The relative $refs resolve: a bad item is caught through requests.json → request.json.
    bad = [{"service_request_id": "E1", "status": "pending", "service_code": "CM01",
            "requested_datetime": "2026-03-02T10:00:00+08:00"}]
    assert any("pending" in e.message for e in VALIDATORS["requests.json"].iter_errors(bad))
    assert not list(VALIDATORS["requests.json"].iter_errors([{**bad[0], "status": "open"}]))
    assert list(VALIDATORS["services.json"].iter_errors([{"service_code": "CM01"}]))


def _iso(value: str) -> datetime:
    t = datetime.fromisoformat(value)
    assert t.tzinfo is not None, f"{value} has no UTC offset"
    return t


def check(schema: str, body: Any) -> Any:
    """Validate a successful answer against its Open311 schema (and the date-times by hand)."""
    if VALIDATORS is not None:
        errors = sorted(VALIDATORS[schema].iter_errors(body), key=str)
        assert not errors, f"{schema}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
    assert isinstance(body, list if schema.endswith("s.json") else dict)
    if schema == "requests.json":
        for r in body:
            _iso(r["requested_datetime"])
            for k in ("updated_datetime", "expected_datetime"):
                if r.get(k) is not None:
                    _iso(r[k])
    return body


def check_error(resp: Any, status: int, *fragments: str) -> str:
    """An error answer in the standard's shape, with the HTTP status repeated as code."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert isinstance(body, list) and len(body) == 1 and set(body[0]) == {"code", "description"}, body
    assert body[0]["code"] == status
    for frag in fragments:
        assert frag in body[0]["description"], body[0]["description"]
    return str(body[0]["description"])


# --- the app ----------------------------------------------------------------------------------------------
class Env:
    """A brain, its Open311 app and a few api keys."""

    def __init__(self, brain: Brain, http: TestClient, district: District) -> None:
        self.brain, self.http, self.district = brain, http, district
        self.keys = {r: brain.create_token(r, name=f"test {r}")["token"] for r in ("ingest", "viewer", "admin")}

    def spot(self, camera: str) -> tuple[float, float]:
        cam = next(c for c in self.district.cameras if c.id == camera)
        lon, lat = self.district.projection.to_lonlat(cam.x, cam.y)
        return float(lon), float(lat)

    def form(self, code: str = "CM01", camera: str = "K0001", **extra: str) -> dict[str, str]:
        lon, lat = self.spot(camera)
        return {"api_key": self.keys["ingest"], "service_code": code, "lat": f"{lat:.7f}", "long": f"{lon:.7f}",
                "description": "货物堆在店门外", "email": "a@example.org", "first_name": "Li", **extra}

    def post(self, form: dict[str, str], **headers: str) -> Any:
        return self.http.post(f"{P}/requests.json", data=form, headers=headers)

    def create(self, code: str = "CM01", camera: str = "K0001", **extra: str) -> str:
        r = self.post(self.form(code, camera, **extra))
        assert r.status_code == 201, r.text
        body = r.json()
        assert isinstance(body, list) and len(body) == 1
        assert set(body[0]) == {"service_request_id", "service_notice", "account_id"}
        assert body[0]["account_id"] is None and isinstance(body[0]["service_notice"], str)
        return str(body[0]["service_request_id"])

    def get(self, path: str, **params: str) -> Any:
        return self.http.get(f"{P}{path}", params=params)

    def requests(self, **params: str) -> list[dict[str, Any]]:
        r = self.get("/requests.json", **params)
        assert r.status_code == 200, r.text
        return check("requests.json", r.json())


def _app(brain: Brain, district: District | None) -> FastAPI:
    app = FastAPI()
    install_state(app, LocalClient(brain), district=district)
    app.include_router(evidence.router)
    app.include_router(actions.router)
    app.include_router(open311.router, prefix=P)
    app.include_router(open311.discovery_router, prefix="/open311")
    return app


@pytest.fixture
def env(xiaohe: District, tmp_path: Path) -> Iterator[Env]:
    origin = datetime(2026, 3, 2, 10, 0, tzinfo=xiaohe.roster.tz).timestamp()  # Monday, day shift
    brain = Brain(xiaohe, open_log(tmp_path / "log.db"), Clock(speed=1.0, origin=origin))
    with TestClient(_app(brain, xiaohe)) as http:
        yield Env(brain, http, xiaohe)
    brain.log.close()


def _close(brain: Brain, event_id: str) -> None:
    who = brain.event_of(event_id)["assignee"]
    assert who, "the request should have been dispatched"
    for action in ("sign", "arrive", "resolve", "verify"):
        body = {"result": "goods moved back inside"} if action == "resolve" else {}
        brain.act(event_id, action, body, actor=who)


# --- services ---------------------------------------------------------------------------------------------
def test_services_are_the_citizen_reportable_scenarios(env: Env) -> None:
    r = env.get("/services.json")
    assert r.status_code == 200
    services = check("services.json", r.json())
    expected = [s.code for s in env.district.catalog if Source.CITIZEN in s.sources]
    assert [s["service_code"] for s in services] == expected
    assert "PS08" not in expected and "TR06" not in expected  # 110 referrals only; cameras/patrols only
    cm01 = next(s for s in services if s["service_code"] == "CM01")
    assert cm01["service_name"] == "出店经营 (Shop operating outside its storefront)"
    assert cm01["group"] == "城市管理 (City management)"
    assert cm01["metadata"] is False and cm01["type"] == "realtime"
    assert "出店经营" in cm01["keywords"] and cm01["description"]


def test_service_definition_and_unknown_service(env: Env) -> None:
    r = env.get("/services/CM01.json")
    assert r.status_code == 200
    assert check("service-definition.json", r.json()) == {"service_code": "CM01", "attributes": []}
    check_error(env.get("/services/XX99.json"), 404, "service_code", "XX99")
    check_error(env.get("/services/PS08.json"), 404, "PS08")  # exists, but not offered to citizens


def test_unknown_formats_paths_and_methods(env: Env) -> None:
    check_error(env.get("/services.csv"), 404, "format", ".json or .xml")
    check_error(env.get("/requests.yaml"), 404, "format")
    check_error(env.http.post(f"{P}/requests.txt", data=env.form()), 404, "format")
    check_error(env.get("/nothing/here.json"), 404, "path", "/nothing/here.json")
    check_error(env.http.delete(f"{P}/requests.json"), 405, "DELETE", "GET, POST")
    check_error(env.http.post(f"{P}/services.json"), 405, "POST", "GET")
    assert env.brain.list_events({}) == []


# --- POST and GET ------------------------------------------------------------------------------------------
def test_post_then_get_round_trip(env: Env) -> None:
    rid = env.create("CM01", "K0001")
    r = env.get(f"/requests/{rid}.json")
    assert r.status_code == 200
    [req] = check("requests.json", r.json())
    lon, lat = env.spot("K0001")
    assert req["service_request_id"] == rid and req["service_code"] == "CM01"
    assert req["status"] == "open" and req["description"] == "货物堆在店门外"
    assert req["lat"] == pytest.approx(lat, abs=1e-6) and req["long"] == pytest.approx(lon, abs=1e-6)
    assert req["agency_responsible"] == env.district.catalog["CM01"].department
    event = env.brain.event_of(rid)
    road = env.district.roads.segment(event["road_id"])
    grid = env.district.regions.by_id[event["grid_id"]]
    # Most specific first: the road's name, the grid, ..., the district.
    assert req["address"].startswith(f"{road.name} ({road.id}), {grid.name}, ")
    assert req["address"].endswith(env.district.title)
    assert req["status_notes"].startswith("Dispatched to")
    reported = _iso(req["requested_datetime"])
    origin = datetime(2026, 3, 2, 10, 0, tzinfo=env.district.roster.tz)
    assert timedelta(0) <= reported - origin < timedelta(minutes=1)
    assert reported.utcoffset() == timedelta(hours=8)
    assert _iso(req["expected_datetime"]) > _iso(req["requested_datetime"])
    # The brain holds a citizen report with the description and nothing of the personal fields.
    assert (event["source"], event["scenario"], event["description"]) == ("citizen", "CM01", "货物堆在店门外")
    assert event["state"] == "dispatched"
    # A token is the request id.
    r = env.get(f"/tokens/{rid}.json")
    assert r.status_code == 200 and r.json() == [{"service_request_id": rid, "token": rid}]


def test_closed_after_the_brain_closes_it(env: Env) -> None:
    rid = env.create("CM01", "K0001")
    _close(env.brain, rid)
    [req] = check("requests.json", env.get(f"/requests/{rid}.json").json())
    assert req["status"] == "closed"
    assert req["status_notes"] == "Closed after verification. Result: goods moved back inside"
    assert req["updated_datetime"] == env.brain.event_of(rid)["closed_at"]
    assert req["expected_datetime"] is None


def test_a_withdrawn_request_is_closed_without_a_result(env: Env) -> None:
    rid = env.create("PU04", "K0151")
    env.brain.act(rid, "withdraw", {"reason": "the lamp works again"}, actor="dispatcher:test")
    [req] = check("requests.json", env.get(f"/requests/{rid}.json").json())
    assert req["status"] == "closed" and req["status_notes"].startswith("Closed before anyone handled it")


def test_a_duplicate_report_is_merged_and_closed(env: Env) -> None:
    first = env.create("CM01", "K0001")
    r = env.post(env.form("CM01", "K0001", description="same shop again"))
    assert r.status_code == 201
    second = r.json()[0]
    assert first in second["service_notice"]
    [req] = check("requests.json", env.get(f"/requests/{second['service_request_id']}.json").json())
    assert req["status"] == "closed" and first in req["status_notes"]


def test_list_filters(env: Env) -> None:
    a = env.create("CM01", "K0001")
    b = env.create("PU04", "K0151", description="路灯不亮")
    c = env.create("MS06", "K0201", description="消费纠纷")
    _close(env.brain, a)
    # A camera report of a camera-only scenario is not an Open311 request.
    lon, lat = env.spot("K0101")
    hidden = env.brain.create_event({"scenario": "TR06", "lon": lon, "lat": lat, "source": "camera"},
                                    actor="camera")["event"]["id"]

    everything = env.requests()
    assert [r["service_request_id"] for r in everything] == [c, b, a]  # newest first
    assert hidden not in {r["service_request_id"] for r in everything}
    assert [r["service_request_id"] for r in env.requests(status="open")] == [c, b]
    assert [r["service_request_id"] for r in env.requests(status="closed")] == [a]
    assert len(env.requests(status="open,closed")) == 3
    assert [r["service_request_id"] for r in env.requests(service_code="PU04")] == [b]
    assert [r["service_request_id"] for r in env.requests(service_code="PU04,CM01")] == [b, a]
    assert [r["service_request_id"] for r in env.requests(service_code="PU04", status="closed")] == []
    # service_request_id overrides every other filter; unknown and hidden ids are left out.
    got = env.requests(service_request_id=f"{a},E9999999,{hidden},{c}", status="open")
    assert [r["service_request_id"] for r in got] == [a, c]
    # Date windows (ISO 8601 / W3C; a date alone is local midnight).
    assert len(env.requests(start_date="2026-03-02T00:00:00+08:00", end_date="2026-03-03T00:00:00+08:00")) == 3
    assert len(env.requests(start_date="2026-03-02")) == 3
    assert env.requests(start_date="2026-03-03T00:00:00Z") == []
    assert env.requests(end_date="2026-03-02T01:59:59Z") == []  # 09:59:59 local, before the reports
    assert len(env.requests(end_date="2026-03-05")) == 3


@pytest.mark.parametrize(("params", "fragments"), [
    ({"status": "pending"}, ("status", "'open' or 'closed'")),
    ({"status": "open,"}, ("status", "comma-separated")),
    ({"service_code": "XX99"}, ("service_code", "unknown service 'XX99'")),
    ({"start_date": "yesterday"}, ("start_date", "ISO 8601")),
    ({"end_date": "2026-13-01"}, ("end_date", "ISO 8601")),
    ({"start_date": "2026-01-01", "end_date": "2026-06-01"}, ("end_date", "at most 90 days")),
    ({"start_date": "2026-03-05", "end_date": "2026-03-01"}, ("end_date", "not be before start_date")),
])
def test_bad_list_filters_are_400(env: Env, params: dict[str, str], fragments: tuple[str, ...]) -> None:
    check_error(env.get("/requests.json", **params), 400, *fragments)


def test_default_window_is_the_last_90_days(env: Env) -> None:
    rid = env.create("CM01", "K0001")
    long_ago = datetime(2026, 3, 2, 10, 0, tzinfo=env.district.roster.tz) - timedelta(days=91)
    old = env.brain.twin.report(scenario="PU04", lon=env.spot("K0151")[0], lat=env.spot("K0151")[1],
                                source="citizen", actor="test", now=long_ago.timestamp()).event.id
    assert [r["service_request_id"] for r in env.requests()] == [rid]
    assert [r["service_request_id"] for r in env.requests(start_date=long_ago.date().isoformat())] == [old]
    assert len(env.requests(service_request_id=old)) == 1


def test_unknown_request_and_token_are_404(env: Env) -> None:
    check_error(env.get("/requests/E9999999.json"), 404, "service_request_id", "E9999999")
    check_error(env.get("/tokens/nope.json"), 404, "token", "nope")


# --- api_key ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("key", "fragment"), [
    (None, "api_key: is required"),
    ("not-a-key", "api_key: unknown or revoked key"),
    ("viewer", "role 'viewer' may not create"),
])
def test_bad_api_key_is_403(env: Env, key: str | None, fragment: str) -> None:
    form = env.form()
    if key is None:
        del form["api_key"]
    else:
        form["api_key"] = env.keys.get(key, key)
    check_error(env.post(form), 403, fragment)
    assert env.brain.list_events({}) == []


def test_admin_key_may_report(env: Env) -> None:
    r = env.post(env.form(api_key=env.keys["admin"]))
    assert r.status_code == 201, r.text


# --- non-public services ----------------------------------------------------------------------------------
def _private_and_public(env: Env) -> tuple[str, str, str]:
    """A PU01 request made in the brain (an inactivity alarm a patrol passes on), a PU02 request
    posted through Open311 (an elderly person's SOS call) and a public CM01 request."""
    lon, lat = env.spot("K0151")
    pu01 = env.brain.create_event({"scenario": "PU01", "lon": lon, "lat": lat, "source": "citizen",
                                   "description": "独居老人家中水表12小时无用水"}, actor="dispatcher:test")["event"]["id"]
    pu02 = env.create("PU02", "K0201", description="老人按了紧急呼叫按钮")
    cm01 = env.create("CM01", "K0001")
    return pu01, pu02, cm01


def test_the_catalog_marks_reports_about_people_as_not_public(env: Env) -> None:
    cat = env.district.catalog
    assert not any(cat[c].public for c in ("PU01", "PU02", "PU03"))
    assert cat["CM01"].public and cat["PU04"].public
    # Non-public services are still offered to citizens.
    codes = [s["service_code"] for s in check("services.json", env.get("/services.json").json())]
    assert {"PU01", "PU02", "PU03", "CM01"} <= set(codes)


def test_requests_of_non_public_services_are_hidden_from_anonymous_callers(env: Env) -> None:
    pu01, pu02, cm01 = _private_and_public(env)
    listed = [r["service_request_id"] for r in env.requests()]
    assert listed == [cm01]
    assert env.requests(service_code="PU01,PU02") == []
    assert [r["service_request_id"] for r in env.requests(service_request_id=f"{pu01},{cm01},{pu02}")] == [cm01]
    # One request or token: 404 with the words used for an unknown id, so existence is not revealed.
    for rid in (pu01, pu02):
        unknown = check_error(env.get("/requests/E9999999.json"), 404).replace("E9999999", rid)
        assert check_error(env.get(f"/requests/{rid}.json"), 404) == unknown
        unknown = check_error(env.get("/tokens/E9999999.json"), 404).replace("E9999999", rid)
        assert check_error(env.get(f"/tokens/{rid}.json"), 404) == unknown
    assert len(check("requests.json", env.get(f"/requests/{cm01}.json").json())) == 1
    # An ingest key (a citizens' app) is valid but does not read events: it sees the public view.
    assert [r["service_request_id"] for r in env.requests(api_key=env.keys["ingest"])] == [cm01]
    check_error(env.get(f"/requests/{pu02}.json", api_key=env.keys["ingest"]), 404)


@pytest.mark.parametrize("role", ["viewer", "dispatcher", "admin"])
def test_a_reader_api_key_shows_non_public_requests(env: Env, role: str) -> None:
    pu01, pu02, cm01 = _private_and_public(env)
    key = env.keys.get(role) or env.brain.create_token(role, name=f"test {role}")["token"]
    listed = [r["service_request_id"] for r in env.requests(api_key=key)]
    assert listed == [cm01, pu02, pu01]  # newest first
    assert [r["service_request_id"] for r in env.requests(api_key=key, service_code="PU01")] == [pu01]
    for rid, code in ((pu01, "PU01"), (pu02, "PU02")):
        r = env.get(f"/requests/{rid}.json", api_key=key)
        assert r.status_code == 200, r.text
        [req] = check("requests.json", r.json())
        assert (req["service_request_id"], req["service_code"]) == (rid, code)
        r = env.get(f"/tokens/{rid}.json", api_key=key)
        assert r.status_code == 200 and r.json() == [{"service_request_id": rid, "token": rid}]


def test_a_bogus_api_key_on_a_read_is_403(env: Env) -> None:
    pu01, _, cm01 = _private_and_public(env)
    for path in ("/requests.json", f"/requests/{pu01}.json", f"/tokens/{pu01}.json", f"/requests/{cm01}.json"):
        check_error(env.get(path, api_key="not-a-key"), 403, "api_key: unknown or revoked key")
        assert env.get(path, api_key="not-a-key").json() == [
            {"code": 403, "description": "api_key: unknown or revoked key"}]


def test_reading_roles_are_the_apis_readers() -> None:
    from api.access import READERS
    from api.open311 import READING_ROLES

    assert READING_ROLES == READERS


# --- bad input ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("change", "fragments"), [
    ({"service_code": None}, ("service_code: is required",)),
    ({"lat": None}, ("lat: is required",)),
    ({"long": ""}, ("long: is required",)),
    ({"lat": "north"}, ("lat: must be a number", "north")),
    ({"long": "nan"}, ("long: must be a finite number",)),
    ({"lat": "95"}, ("lat:", "[-90, 90]")),
    ({"lat": None, "long": None}, ("lat: is required", "address_string")),
    ({"lat": None, "long": None, "address_id": "A-1234"}, ("address_id: not supported",)),
    ({"lat": None, "long": None, "address_string": "幸福路 1 号"}, ("address_string", "幸福路", "no street")),
    ({"description": "x" * 2001}, ("description", "at most 2000")),
    ({"service_code": "XX99"}, ("service_code: unknown service 'XX99'",)),
    ({"service_code": "PS08"}, ("service_code", "not a service citizens can report")),
])
def test_bad_input_is_400_naming_the_field(env: Env, change: dict[str, str | None],
                                           fragments: tuple[str, ...]) -> None:
    form = env.form()
    for k, v in change.items():
        if v is None:
            form.pop(k, None)
        else:
            form[k] = v
    check_error(env.post(form), 400, *fragments)
    assert env.brain.list_events({}) == []


def test_coordinates_outside_the_district_are_400(env: Env) -> None:
    form = env.form(lat="31.2304", long="121.4737")  # Shanghai
    check_error(env.post(form), 400, "lat/long", "outside the boundary")
    assert env.brain.list_events({}) == []


def test_repeated_field_and_wrong_content_type_are_400(env: Env) -> None:
    body = "&".join(f"{k}={v}" for k, v in env.form(description="x").items()) + "&lat=30.3"
    r = env.http.post(f"{P}/requests.json", content=body.encode(),
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    check_error(r, 400, "lat: given 2 times")
    check_error(env.http.post(f"{P}/requests.json", json=env.form()), 400, "Content-Type",
                "application/x-www-form-urlencoded")


# --- idempotency ------------------------------------------------------------------------------------------
def test_idempotent_retry_returns_the_same_request(env: Env) -> None:
    form = env.form()
    first = env.post(form, **{"Idempotency-Key": "app-42-retry"})
    assert first.status_code == 201, first.text
    again = env.post(dict(reversed(list(form.items()))), **{"Idempotency-Key": "app-42-retry"})
    assert again.status_code == 201, again.text
    assert again.json()[0]["service_request_id"] == first.json()[0]["service_request_id"]
    assert len(env.brain.list_events({})) == 1
    # The same key for a different request is refused; without a key a new request is made.
    check_error(env.post({**form, "description": "other"}, **{"Idempotency-Key": "app-42-retry"}), 409,
                "Idempotency-Key")
    check_error(env.post(form, **{"Idempotency-Key": "k" * 201}), 400, "Idempotency-Key")
    assert env.post(env.form("PU04", "K0151")).status_code == 201
    assert len(env.brain.list_events({})) == 2


# --- mounting without a district ---------------------------------------------------------------------------
def test_router_finds_the_district_through_the_brain(xiaohe: District, tmp_path: Path) -> None:
    brain = Brain(xiaohe, open_log(tmp_path / "lazy.db"))
    try:
        with TestClient(_app(brain, None)) as http:
            r = http.get(f"{P}/services.json")
            assert r.status_code == 200
            assert len(check("services.json", r.json())) == sum(
                1 for s in xiaohe.catalog if Source.CITIZEN in s.sources)
    finally:
        brain.log.close()


# --- api_key in the query ------------------------------------------------------------------------------------
def test_api_key_may_be_a_query_parameter_on_post(env: Env) -> None:
    form = env.form()
    key = form.pop("api_key")
    r = env.http.post(f"{P}/requests.json", params={"api_key": key}, data=form)
    assert r.status_code == 201, r.text
    r = env.http.post(f"{P}/requests.json", params={"api_key": key}, data={**form, "api_key": key,
                                                                          "description": "same key twice"})
    assert r.status_code == 201, r.text  # the same key in both places is one key
    assert len(env.brain.list_events({})) == 2
    check_error(env.http.post(f"{P}/requests.json", params={"api_key": env.keys["admin"]},
                              data={**form, "api_key": key}), 400, "api_key", "different values")
    check_error(env.http.post(f"{P}/requests.json", params={"api_key": "not-a-key"}, data=form), 403,
                "api_key: unknown or revoked key")
    check_error(env.http.post(f"{P}/requests.json", params={"api_key": env.keys["viewer"]}, data=form), 403,
                "role 'viewer' may not create")
    assert len(env.brain.list_events({})) == 2


# --- located by address_string -----------------------------------------------------------------------------------
def _junction(name: str) -> tuple[float, float]:
    """A named junction of the road data's reference points (``湖州街 × 小河路``), lon/lat."""
    path = SCHEMA_DIR.parent / "geo" / "xiaohe_reference_points_wgs84.geojson"
    if not path.is_file():
        pytest.skip(f"reference points not found at {path}")
    for f in json.loads(path.read_text())["features"]:
        if f["properties"]["name"].startswith(name):
            lon, lat = f["geometry"]["coordinates"]
            return float(lon), float(lat)
    raise AssertionError(f"no reference point {name}")


def _metres(env: Env, a: tuple[float, float], b: tuple[float, float]) -> float:
    ax, ay = env.district.projection.to_xy(*a)
    bx, by = env.district.projection.to_xy(*b)
    return float(((ax - bx) ** 2 + (ay - by) ** 2) ** 0.5)


def _by_address(env: Env, address: str, **extra: str) -> Any:
    form = {k: v for k, v in env.form(**extra).items() if k not in ("lat", "long")}
    return env.post({**form, "address_string": address})


@pytest.mark.parametrize("address", ["湖州街与小河路交叉口", "小河路湖州街口", "湖州街 & 小河路",
                                     "Huzhou Street & Xiaohe Road", "corner of Xiaohe Rd and Huzhou St",
                                     "ＨＵＺＨＯＵ　ＪＩＥ / xiaohe lu"])
def test_a_junction_in_chinese_or_english_is_placed_there(env: Env, address: str) -> None:
    r = _by_address(env, address)
    assert r.status_code == 201, r.text
    rid = r.json()[0]["service_request_id"]
    notice = r.json()[0]["service_notice"]
    assert "湖州街 × 小河路" in notice or "小河路 × 湖州街" in notice
    [req] = check("requests.json", env.get(f"/requests/{rid}.json").json())
    assert _metres(env, (req["long"], req["lat"]), _junction("湖州街 × 小河路")) < 30
    assert address in req["description"]  # the handler sees what the citizen wrote


@pytest.mark.parametrize("address", ["小河路", "小河路123号", "杭州市拱墅区小河路 8 号", "Xiaohe Road",
                                     "12 Xiaohe Rd, Gongshu District, Hangzhou", "XIAOHE LU"])
def test_a_street_with_or_without_house_number_is_placed_on_it(env: Env, address: str) -> None:
    r = _by_address(env, address, description="")
    assert r.status_code == 201, r.text
    event = env.brain.event_of(r.json()[0]["service_request_id"])
    assert env.district.roads.segment(event["road_id"]).name == "小河路"
    assert event["description"] == f"地址 Address: {address}"


@pytest.mark.parametrize(("address", "fragments"), [
    ("幸福路", ("address_string: '幸福路'", "no street")),
    ("Happiness Road", ("address_string", "no street")),
    ("Xiaohe Street", ("address_string", "did you mean", "小河路 (Xiaohe Lu)")),
    ("永庆", ("address_string", "several streets", "永庆弄", "永庆路")),
    ("宁波路与金华路交叉口", ("address_string", "meet in 2 places")),
    ("小河路与长征桥路交叉口", ("address_string", "do not meet")),
    ("香积寺路", ("address_string", "outside district 'xiaohe'")),
    ("小" * 301, ("address_string", "at most 300")),
])
def test_an_address_that_cannot_be_placed_is_400(env: Env, address: str, fragments: tuple[str, ...]) -> None:
    check_error(_by_address(env, address), 400, *fragments)
    assert env.brain.list_events({}) == []


def test_lat_long_win_over_address_string(env: Env) -> None:
    lon, lat = env.spot("K0001")
    r = env.post(env.form(address_string="小河路与湖州街交叉口", address_id="A-1"))
    assert r.status_code == 201, r.text
    [req] = env.get(f"/requests/{r.json()[0]['service_request_id']}.json").json()
    assert (req["lat"], req["long"]) == (pytest.approx(lat, abs=1e-6), pytest.approx(lon, abs=1e-6))
    assert "Address" not in req["description"]


# --- media_url ---------------------------------------------------------------------------------------------------
def test_media_url_is_kept_with_the_request(env: Env, xiaohe: District, tmp_path: Path) -> None:
    url = "https://photos.example.org/reports/7f3a.jpg?size=large&v=2"
    rid = env.create(media_url=url)
    [req] = check("requests.json", env.get(f"/requests/{rid}.json").json())
    assert req["media_url"] == url
    assert [r["media_url"] for r in env.requests()] == [url]
    assert url in env.brain.event_of(rid)["evidence"]
    # It is in the event log: a brain rebuilt from the log has it too.
    again = Brain(xiaohe, open_log(tmp_path / "log.db"))
    try:
        with TestClient(_app(again, xiaohe)) as http:
            [req] = http.get(f"{P}/requests/{rid}.json").json()
            assert req["media_url"] == url
    finally:
        again.log.close()


@pytest.mark.parametrize(("url", "fragment"), [
    ("ftp://photos.example.org/a.jpg", "http or https"),
    ("photos.example.org/a.jpg", "http or https"),
    ("javascript:alert(1)", "http or https"),
    ("https://", "http or https"),
    ("https://photos.example.org/a b.jpg", "spaces"),
    ("https://photos.example.org/a\x07.jpg", "control characters"),
    ("https://user:secret@photos.example.org/a.jpg", "user name or password"),
    ("https://photos.example.org:99999/a.jpg", "not a valid URL"),
    ("https://photos.example.org/" + "a" * 2000, "at most 2000"),
])
def test_a_bad_media_url_is_400_and_writes_nothing(env: Env, url: str, fragment: str) -> None:
    check_error(env.post(env.form(media_url=url)), 400, "media_url", fragment)
    assert env.brain.list_events({}) == []


def test_the_brain_refuses_a_bad_media_url_too(env: Env) -> None:
    lon, lat = env.spot("K0001")
    from twin.errors import ValidationError as TwinValidationError

    with pytest.raises(TwinValidationError, match="media_url"):
        env.brain.create_event({"scenario": "CM01", "lon": lon, "lat": lat, "media_url": "file:///etc/passwd"},
                               actor="test")
    assert env.brain.list_events({}) == []


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _upload_result_photo(env: Env, rid: str) -> str:
    """The handler's result with a photo, through the native API; the photo's evidence id."""
    brain, admin = env.brain, {"Authorization": f"Bearer {env.keys['admin']}"}
    who = brain.event_of(rid)["assignee"]
    for action in ("sign", "arrive"):
        brain.act(rid, action, {}, actor=who)
    r = env.http.post(f"/api/v1/events/{rid}/result", headers=admin, data={"result": "goods moved inside"},
                      files={"photo": ("after.png", PNG, "image/png")})
    assert r.status_code == 200, r.text
    [evidence_id] = brain.event_of(rid)["evidence"]
    return str(evidence_id)


def test_a_photo_uploaded_through_the_native_api_is_the_media_url(env: Env) -> None:
    rid = env.create("CM01", "K0001")
    evidence_id = _upload_result_photo(env, rid)
    [req] = check("requests.json", env.get(f"/requests/{rid}.json").json())
    assert req["media_url"] == f"http://testserver{P}/media/{evidence_id}"
    r = env.http.get(req["media_url"])
    assert r.status_code == 200 and r.content == PNG and r.headers["content-type"] == "image/png"
    # A citizen's own link comes first.
    other = env.create("PU04", "K0151", media_url="http://photos.example.org/lamp.jpg")
    assert env.get(f"/requests/{other}.json").json()[0]["media_url"] == "http://photos.example.org/lamp.jpg"
    # Unknown ids and malformed ones are 404 in the standard's shape.
    check_error(env.get("/media/sha256:" + "0" * 64), 404, "media")
    check_error(env.get("/media/not-an-evidence-id"), 404, "media")


def test_media_of_hidden_requests_and_cameras_is_not_published(env: Env) -> None:
    lon, lat = env.spot("K0151")
    pu02 = env.create("PU02", "K0201", description="老人按了紧急呼叫按钮")
    photo = env.brain.put_evidence(pu02, "image/png", PNG)
    env.brain.act(pu02, "sign", {}, actor=env.brain.event_of(pu02)["assignee"])
    env.brain.act(pu02, "arrive", {}, actor=env.brain.event_of(pu02)["assignee"])
    env.brain.act(pu02, "resolve", {"result": "family called", "evidence": [photo]},
                  actor=env.brain.event_of(pu02)["assignee"])
    check_error(env.get(f"/media/{photo}"), 404, "media")
    assert env.http.get(f"{P}/media/{photo}", params={"api_key": env.keys["viewer"]}).content == PNG
    # A camera's frame of a public service: the request is listed, its frame is not published.
    frame = "sha256:" + hashlib.sha256(PNG + b"frame").hexdigest()  # (evidence ids are content hashes)
    cam = env.brain.create_event({"scenario": "CM01", "lon": lon, "lat": lat, "source": "camera",
                                  "evidence": [frame]}, actor="camera:K0151")["event"]["id"]
    assert env.brain.put_evidence(cam, "image/png", PNG + b"frame") == frame
    [req] = env.get(f"/requests/{cam}.json").json()
    assert req["media_url"] is None
    check_error(env.get(f"/media/{frame}"), 404)


# --- discovery -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/open311/discovery.json", f"{P}/discovery.json"])
def test_the_discovery_document(env: Env, path: str) -> None:
    r = env.http.get(path)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert set(doc) == {"changeset", "contact", "key_service", "endpoints"}
    _iso(doc["changeset"].replace("Z", "+00:00"))
    [endpoint] = doc["endpoints"]
    assert endpoint == {"specification": "http://wiki.open311.org/GeoReport_v2", "url": f"http://testserver{P}",
                        "changeset": doc["changeset"], "type": "production",
                        "formats": ["text/xml", "application/json"]}
    # The url is the endpoint: services are under it.
    assert env.http.get(endpoint["url"] + "/services.json").status_code == 200
