"""Open311 GeoReport v2 in XML, and a third-party client in JSON and XML.

Every endpoint and every error answers in XML when its path ends in ``.xml``: the element
names and nesting are checked against the standard's (written down below from the GeoReport
v2 specification, not from this server's output), and the content against the JSON answer of
the same path. Then ``georeport`` (PyPI), a client written for real cities' Open311 servers,
reads this one over HTTP in both formats."""

from __future__ import annotations

import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from actors.brain import Brain
from actors.eventlog import open_log
from actors.live import Clock
from api.open311_xml import to_xml
from tests.test_open311 import PNG, Env, P, _app, _upload_result_photo, check
from twin.district import District

pytestmark = pytest.mark.timeout(120)

# --- the standard's XML (GeoReport v2) -----------------------------------------------------------------------
#: GET services: <services><service>...</service></services>
SERVICE = {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
#: GET service definition: <service_definition><service_code/><attributes><attribute>...
DEFINITION = {"service_code", "attributes"}
ATTRIBUTE = {"variable", "code", "datatype", "required", "datatype_description", "order", "description", "values"}
#: GET requests, GET request: <service_requests><request>...</request></service_requests>
REQUEST = {"service_request_id", "status", "status_notes", "service_name", "service_code", "description",
           "agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime",
           "address", "address_id", "zipcode", "lat", "long", "media_url"}
#: POST requests: <service_requests><request><service_request_id/><service_notice/><account_id/>
#: (or <token/> where the id comes later)
CREATED = {"service_request_id", "service_notice", "account_id"}
CREATED_LATER = {"token", "service_notice", "account_id"}
#: GET token: <service_requests><request><service_request_id/><token/></request></service_requests>
TOKEN = {"service_request_id", "token"}
#: Errors: <errors><error><code/><description/></error></errors>
ERROR = {"code", "description"}
#: Service discovery: <discovery><changeset/><contact/><key_service/><endpoints><endpoint>
#: <specification/><url/><changeset/><type/><formats><format/>...
DISCOVERY = {"changeset", "contact", "key_service", "endpoints"}
ENDPOINT = {"specification", "url", "changeset", "type", "formats"}


def parse(resp: Any, status: int = 200) -> ET.Element:
    """An XML answer: its status, media type and document (standard library parser)."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("text/xml"), resp.headers["content-type"]
    assert resp.content.startswith(b"<?xml")
    return ET.fromstring(resp.content)


def items(root: ET.Element, root_tag: str, item_tag: str, fields: set[str], *,
          required: set[str] | None = None) -> list[ET.Element]:
    """The items of a list answer, each with only the standard's fields (``required`` ones at
    least; by default all of them) and no text outside them."""
    assert root.tag == root_tag
    assert [c.tag for c in root] == [item_tag] * len(root), [c.tag for c in root]
    for item in root:
        tags = [c.tag for c in item]
        assert len(tags) == len(set(tags)), f"repeated fields in {tags}"
        assert set(tags) <= fields, f"not in the standard: {set(tags) - fields}"
        assert (required if required is not None else fields) <= set(tags), f"missing: {fields - set(tags)}"
        assert not (item.text or "").strip()
    return list(root)


def same(element: ET.Element, value: Any) -> None:
    """An XML element holds what the JSON value says: null is empty, booleans are true/false,
    numbers their decimal form, lists one element per item."""
    if isinstance(value, dict):
        assert {c.tag for c in element} == set(value), element.tag
        for child in element:
            same(child, value[child.tag])
    elif isinstance(value, list):
        assert len(element) == len(value), element.tag
        for child, v in zip(element, value):
            same(child, v)
    elif value is None:
        assert element.text is None and len(element) == 0, f"{element.tag}: {element.text!r}"
    elif isinstance(value, bool):
        assert element.text == ("true" if value else "false"), element.tag
    elif isinstance(value, float):
        assert float(element.text or "nan") == value, element.tag
    else:
        assert element.text == str(value), element.tag


# --- the app -------------------------------------------------------------------------------------------------
@pytest.fixture
def env(xiaohe: District, tmp_path: Path) -> Iterator[Env]:
    origin = datetime(2026, 3, 2, 10, 0, tzinfo=xiaohe.roster.tz).timestamp()
    brain = Brain(xiaohe, open_log(tmp_path / "log.db"), Clock(speed=1.0, origin=origin))
    with TestClient(_app(brain, xiaohe)) as http:
        yield Env(brain, http, xiaohe)
    brain.log.close()


def post_xml(env: Env, form: dict[str, str], **headers: str) -> Any:
    return env.http.post(f"{P}/requests.xml", data=form, headers=headers)


# --- every endpoint --------------------------------------------------------------------------------------------
def test_services_in_xml(env: Env) -> None:
    root = parse(env.get("/services.xml"))
    services = env.get("/services.json").json()
    found = items(root, "services", "service", SERVICE, required={"service_code", "service_name", "metadata",
                                                                  "type"})
    assert len(found) == len(services) > 10
    for element, service in zip(found, services):
        same(element, service)
    cm01 = found[0]
    assert cm01.findtext("service_code") == "CM01" and cm01.findtext("metadata") == "false"
    assert cm01.findtext("service_name") == "出店经营 (Shop operating outside its storefront)"


def test_service_definition_in_xml(env: Env) -> None:
    root = parse(env.get("/services/CM01.xml"))
    assert root.tag == "service_definition"
    assert {c.tag for c in root} <= DEFINITION and [c.tag for c in root] == ["service_code", "attributes"]
    assert root.findtext("service_code") == "CM01"
    attributes = root.find("attributes")
    assert attributes is not None and len(attributes) == 0 and not (attributes.text or "").strip()
    assert all(set(a.tag for a in attr) <= ATTRIBUTE for attr in attributes)
    same(root, env.get("/services/CM01.json").json())


def test_post_get_and_token_in_xml(env: Env) -> None:
    r = post_xml(env, env.form(media_url="https://photos.example.org/a.jpg?x=1&y=<2>"))
    [created] = items(parse(r, 201), "service_requests", "request", CREATED | CREATED_LATER, required=CREATED)
    rid = created.findtext("service_request_id")
    assert rid and created.findtext("service_notice")
    account = created.find("account_id")
    assert account is not None and account.text is None  # null: an empty element

    [req] = items(parse(env.get(f"/requests/{rid}.xml")), "service_requests", "request", REQUEST)
    [as_json] = check("requests.json", env.get(f"/requests/{rid}.json").json())
    same(req, as_json)
    assert req.findtext("media_url") == "https://photos.example.org/a.jpg?x=1&y=<2>"
    assert req.findtext("status") == "open" and req.find("zipcode") is not None

    listed = items(parse(env.get("/requests.xml", status="open")), "service_requests", "request", REQUEST)
    assert [e.findtext("service_request_id") for e in listed] == [rid]
    same(listed[0], env.get("/requests.json", status="open").json()[0])

    [token] = items(parse(env.get(f"/tokens/{rid}.xml")), "service_requests", "request", TOKEN)
    assert (token.findtext("service_request_id"), token.findtext("token")) == (rid, rid)


def test_a_photo_uploaded_through_the_native_api_in_xml(env: Env) -> None:
    rid = env.create("CM01", "K0001")
    evidence_id = _upload_result_photo(env, rid)
    [req] = items(parse(env.get(f"/requests/{rid}.xml")), "service_requests", "request", REQUEST)
    url = req.findtext("media_url")
    assert url == f"http://testserver{P}/media/{evidence_id}"
    assert env.http.get(url).content == PNG


@pytest.mark.parametrize("path", ["/open311/discovery.xml", f"{P}/discovery.xml"])
def test_discovery_in_xml(env: Env, path: str) -> None:
    root = parse(env.http.get(path))
    assert root.tag == "discovery" and [c.tag for c in root] == ["changeset", "contact", "key_service", "endpoints"]
    assert {c.tag for c in root} == DISCOVERY
    endpoints = root.find("endpoints")
    assert endpoints is not None
    [endpoint] = items(endpoints, "endpoints", "endpoint", ENDPOINT)
    assert endpoint.findtext("specification") == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint.findtext("type") == "production" and endpoint.findtext("url") == f"http://testserver{P}"
    formats = endpoint.find("formats")
    assert formats is not None and [f.tag for f in formats] == ["format", "format"]
    assert [f.text for f in formats] == ["text/xml", "application/json"]
    same(root, env.http.get(path.replace(".xml", ".json")).json())


# --- every error -------------------------------------------------------------------------------------------------
def xml_error(resp: Any, status: int, *fragments: str) -> str:
    [error] = items(parse(resp, status), "errors", "error", ERROR)
    assert error.findtext("code") == str(status)
    description = error.findtext("description") or ""
    for fragment in fragments:
        assert fragment in description, description
    return description


def test_errors_in_xml_when_the_path_asks_for_xml(env: Env) -> None:
    form = env.form()
    xml_error(post_xml(env, {**form, "lat": "north"}), 400, "lat: must be a number")
    xml_error(post_xml(env, {**form, "api_key": "not-a-key"}), 403, "api_key")
    xml_error(post_xml(env, {k: v for k, v in form.items() if k not in ("lat", "long")} | {"address_string": "幸福路"}),
              400, "address_string")
    xml_error(post_xml(env, {**form, "media_url": "ftp://x"}), 400, "media_url")
    xml_error(env.get("/requests/E9999999.xml"), 404, "service_request_id")
    xml_error(env.get("/tokens/nope.xml"), 404, "token")
    xml_error(env.get("/services/XX99.xml"), 404, "service_code")
    xml_error(env.get("/requests.xml", status="pending"), 400, "status")
    xml_error(env.get("/requests.xml", api_key="not-a-key"), 403, "api_key")
    xml_error(env.get("/no/such/endpoint.xml"), 404, "path")
    xml_error(env.http.delete(f"{P}/requests.xml"), 405, "DELETE")
    assert post_xml(env, form, **{"Idempotency-Key": "k1"}).status_code == 201
    xml_error(post_xml(env, {**form, "description": "other"}, **{"Idempotency-Key": "k1"}), 409, "Idempotency-Key")
    # The same errors in JSON for .json paths.
    assert env.get("/requests/E9999999.json").json()[0]["code"] == 404


def test_text_is_escaped_and_characters_xml_cannot_carry_are_replaced(env: Env) -> None:
    nasty = 'a <b> & "c" \'d\' ]]> \x01\x1f end 小河'
    lon, lat = env.spot("K0001")
    rid = env.brain.create_event({"scenario": "CM01", "lon": lon, "lat": lat, "description": nasty},
                                 actor="test")["event"]["id"]
    [req] = items(parse(env.get(f"/requests/{rid}.xml")), "service_requests", "request", REQUEST)
    assert req.findtext("description") == nasty.replace("\x01", "\ufffd").replace("\x1f", "\ufffd")
    assert env.get(f"/requests/{rid}.json").json()[0]["description"] == nasty
    assert b"<b>" not in env.get(f"/requests/{rid}.xml").content


def test_to_xml_shapes() -> None:
    assert to_xml("errors", [{"code": 400, "description": "x < y"}]) == (
        b"<?xml version='1.0' encoding='utf-8'?>\n<errors><error><code>400</code>"
        b"<description>x &lt; y</description></error></errors>")
    doc = ET.fromstring(to_xml("service_definition", {"service_code": "A", "attributes": [
        {"code": "C", "variable": True, "order": 1, "datatype_description": None,
         "values": [{"key": "1", "name": "one"}]}]}))
    attribute = doc.find("attributes/attribute")
    assert attribute is not None and attribute.findtext("variable") == "true"
    assert attribute.find("datatype_description") is not None and attribute.findtext("order") == "1"
    assert doc.findtext("attributes/attribute/values/value/name") == "one"
    with pytest.raises(KeyError):
        to_xml("nonsense", {})


# --- a third-party client: georeport (PyPI) over HTTP --------------------------------------------------------------
@pytest.fixture
def served(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The same app on a real HTTP server on localhost; its Open311 endpoint URL."""
    uvicorn = pytest.importorskip("uvicorn")
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(env.http.app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}{P}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _strings(value: Any) -> Any:
    """A JSON value as XML carries it (what an XML client gets back): text, null as None."""
    if isinstance(value, dict):
        return {k: _strings(v) for k, v in value.items()}
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return None if value is None else str(value)


def test_georeport_client_reads_services_and_requests_in_json_and_xml(env: Env, served: str) -> None:
    georeport = pytest.importorskip("georeport")
    as_json = georeport.GeoReport(served, output_format="json")
    as_xml = georeport.GeoReport(served, output_format="xml")

    services = as_json.get_service_list()
    assert check("services.json", services) == env.get("/services.json").json()
    assert [dict(s) for s in as_xml.get_service_list()] == [_strings(s) for s in services]
    assert as_json.get_service_definition("CM01") == {"service_code": "CM01", "attributes": []}
    assert dict(as_xml.get_service_definition("CM01")) == {"service_code": "CM01", "attributes": None}

    a = env.create("CM01", "K0001", media_url="https://photos.example.org/a.jpg")
    b = env.create("PU04", "K0151", description="路灯不亮 <灯杆 12> & 13")
    requests = as_json.get_service_requests()
    check("requests.json", requests)
    assert [r["service_request_id"] for r in requests] == [b, a]
    listed = as_xml.get_service_requests()
    assert [dict(r) for r in listed] == [_strings(r) for r in requests]

    one = as_json.get_service_request(a)
    assert one["media_url"] == "https://photos.example.org/a.jpg" and one["service_code"] == "CM01"
    assert dict(as_xml.get_service_request(a)) == _strings(one)
    # Filters pass through: one id (the XML client then gets a single request, not a list).
    assert [r["service_request_id"] for r in as_json.get_service_requests(service_code="PU04")] == [b]
    assert dict(as_xml.get_service_requests(service_request_id=b)) == _strings(as_json.get_service_request(b))
    assert as_json.get_service_requests(status="closed") == []


def test_georeport_client_sees_the_standards_errors(served: str) -> None:
    georeport = pytest.importorskip("georeport")
    requests = pytest.importorskip("requests")
    for fmt in ("json", "xml"):
        client = georeport.GeoReport(served, output_format=fmt)
        with pytest.raises(requests.HTTPError) as caught:
            client.get_service_request("E9999999")
        assert caught.value.response.status_code == 404
        body = caught.value.response.content
        assert b"service_request_id" in body and (body.startswith(b"<?xml") if fmt == "xml" else body.startswith(b"["))

