"""Open311 GeoReport v2 over the street brain.

Citizens' apps that speak `Open311 GeoReport v2 <https://wiki.open311.org/GeoReport_v2/>`_
report problems here and follow them up. Mount :data:`router` at ``/open311/v2`` and
:data:`discovery_router` at ``/open311`` of an app whose state holds the brain
(:func:`api.deps.install_state`)::

    install_state(app, client, district=district)
    app.include_router(router, prefix="/open311/v2")
    app.include_router(discovery_router, prefix="/open311")

Every endpoint answers in the format its path names, ``.json`` or ``.xml``, errors included
(another suffix is a 404): the same content, in XML under the standard's element names
(``<services><service>``, ``<service_definition>``, ``<service_requests><request>``,
``<errors><error>``, ``<discovery>``; :mod:`api.open311_xml`). What a service and a request
hold is in :mod:`api.open311_views`.

* ``GET /services.{fmt}``: one service per catalog scenario that citizens may report
  (:attr:`twin.catalog.Source.CITIZEN` among its sources); ``service_code`` is the scenario
  code, ``group`` its category.
* ``GET /services/{code}.{fmt}``: the service definition (no extra attributes).
* ``GET /requests.{fmt}``: service requests, newest first, at most 1000; filters
  ``service_request_id`` (comma list; overrides the others), ``service_code`` (comma list),
  ``status`` (``open``/``closed``, comma list), ``start_date``/``end_date`` (ISO 8601 / W3C;
  a window of at most 90 days, the last 90 days by default).
* ``POST /requests.{fmt}``: a new request, ``application/x-www-form-urlencoded`` (or
  multipart without files) with ``api_key`` (in the body or the query: a bearer token of role
  ingest, dispatcher or admin), ``service_code``, the place and ``description``. The place is
  ``lat`` and ``long``, or else ``address_string``: a street of the district in Chinese or
  pinyin/English, with a house number or as a junction (``小河路123号``, ``Xiaohe Road &
  Dengyun Road``), placed by :mod:`twin.geocode` (the street's middle, or the junction; the
  text is kept in the description for the handler); ``address_id`` alone is refused.
  ``media_url`` (an http(s) link to a photo) is kept with the event. Other standard fields
  (``email``, ``first_name``, ``attribute[...]``, ...) are accepted and ignored. An
  ``Idempotency-Key`` header makes a retry return the first answer instead of a second
  request.
* ``GET /requests/{id}.{fmt}`` and ``GET /tokens/{token}.{fmt}``: one request. A POST answers
  with the ``service_request_id`` at once, so a token is that id.
* ``GET /discovery.{fmt}`` (also ``/open311/discovery.{fmt}``, the standard's place for it):
  the service discovery document: ``changeset``, ``contact``, ``key_service`` and this
  endpoint (production, ``text/xml`` and ``application/json``).
* ``GET /media/{evidence_id}``: a photo stored with a request (uploaded through the native
  API, ``POST /api/v1/events/{id}/evidence`` or a result's photos), which a request's
  ``media_url`` points at when the citizen gave no link of their own. Shown to whoever may
  see the request; a camera's frames are never published here.

Only events of the listed services are visible (a camera-only or 110-referral scenario is not
an Open311 service). Status: an event ``closed``, ``merged`` or ``false_alarm`` is
``closed``, anything else ``open``.

Privacy: a catalog scenario whose reports concern people's homes, health or personal
circumstances (:attr:`twin.catalog.ScenarioSpec.public` false, e.g. an elderly person's SOS call)
is still listed in ``services.json`` and can be reported, but its requests are not shown to
anonymous callers: ``GET /requests.json`` leaves them out and ``GET /requests/{id}.json``,
``GET /tokens/{token}.json`` and their media answer 404 as for an unknown request, so that their
existence is not revealed either. A caller who passes ``api_key`` (query parameter) holding a
token of a role that may read events (admin, dispatcher, handler or viewer) sees them; a key of
another role (ingest) sees what anonymous callers see; an unknown or revoked key is refused with
403.

Errors use the standard's shape, ``[{"code": 400, "description": "lat: must be a number"}]``
(``<errors><error><code>400</code><description>...``), with the same HTTP status: 400 bad
input (the description names the field), 403 a missing, unknown or insufficient ``api_key``,
404 an unknown service, request, path or format, 405 a method the path does not take, 409 an
``Idempotency-Key`` reused for a different request.

The router talks to the brain only through a :class:`~actors.client.BrainClient`. Names for
services and addresses come from the district's catalog, roads and regions, which are static:
the app's district, or the brain's district loaded by name (``health()["district"]``) on first
use (:func:`api.deps.load_district`).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.datastructures import UploadFile
from starlette.routing import Match, NoMatchFound

from actors.brain_api import EVIDENCE_ID, MAX_MEDIA_URL
from actors.client import BrainClient
from api.access import READERS, REPORTERS, Principal
from api.deps import Client, district_name, load_district
from api.idempotency import idem_key, key_ok
from api.models import EVIDENCE_TYPES
from api.open311_views import (
    CLOSED_STATES,
    UNPUBLISHED_SOURCES,
    Open311Error,
    ServiceDirectory,
    service_notice,
)
from api.open311_xml import FORMATS, answer, error_answer
from twin.catalog import Source
from twin.errors import NotFound, TwinError, ValidationError
from twin.geocode import Placement

log = logging.getLogger("streetbrain.open311")

#: Roles whose token may create service requests (the native API's reporters).
REPORTING_ROLES = REPORTERS
#: Roles whose token (``api_key``) also shows requests of non-public services (the API's readers).
READING_ROLES = READERS
#: Most requests one ``GET /requests.json`` returns (the standard's limit).
MAX_REQUESTS = 1000
#: Widest date window of ``GET /requests.json`` (the standard's limit), and its default.
MAX_WINDOW = timedelta(days=90)
#: Most ids in one ``service_request_id`` filter.
MAX_IDS = 200
#: Page size when reading events from the brain.
PAGE = 500
#: The standard a discovery document's endpoint follows.
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
#: When this Open311 surface last changed (the discovery document's ``changeset``).
CHANGESET = "2026-12-04T00:00:00Z"
#: Who runs the endpoint (the discovery document's ``contact``).
CONTACT = ("The operators of this street brain (the subdistrict's command centre, 指挥中心); "
           "report a problem with this API to them.")
#: How to get an ``api_key`` (the discovery document's ``key_service``).
KEY_SERVICE = ("Reading requests needs no key. To create requests, ask the operators for a token of role "
               "'ingest' (a citizens' app); an administrator makes one with POST /api/v1/tokens. Pass it as "
               "api_key. A token of a role that reads events also shows requests about people's homes and "
               "circumstances.")
def error_response(status: int, description: str, fmt: str = "json") -> Response:
    """``[{"code": status, "description": ...}]`` (``<errors>`` in XML) with that HTTP status."""
    return error_answer(fmt, status, description)


def _path_format(request: Request) -> str:
    """The format a path asks for: ``xml`` for ``.xml``, else JSON (errors of other suffixes)."""
    return "xml" if request.url.path.lower().endswith(".xml") else "json"


_FIELD_NAMES = {"lon": "long", "location": "lat/long", "scenario": "service_code"}


def _from_twin_error(exc: TwinError, fmt: str) -> Response:
    """The Open311 answer for an error raised by the brain: 400 bad input (brain field names
    translated to Open311's), 404 unknown, 409 a conflict (an idempotency key reused for a
    different request, a transition the event's state does not allow)."""
    if isinstance(exc, ValidationError):
        return error_response(400, f"{_FIELD_NAMES.get(exc.field, exc.field)}: {exc.reason}", fmt)
    if isinstance(exc, NotFound):
        return error_response(404, str(exc), fmt)
    return error_response(409, str(exc), fmt)


class Open311Route(APIRoute):
    """A route whose every error is answered in the Open311 shape, in the format the path asks
    for (a router cannot register exception handlers, so its routes catch their own)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def respond(request: Request) -> Response:
            fmt = _path_format(request)
            try:
                return await handler(request)
            except Open311Error as exc:
                return error_response(exc.status, exc.description, fmt)
            except TwinError as exc:
                return _from_twin_error(exc, fmt)
            except RequestValidationError as exc:
                errs = exc.errors()
                err = errs[0] if errs else {"loc": (), "msg": "invalid request"}
                where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header"))
                return error_response(400, f"{where or 'request'}: {err.get('msg', 'invalid')}", fmt)
            except Exception:
                log.exception("unexpected error in %s %s", request.method, request.url.path)
                return error_response(500, "internal error; it has been logged", fmt)

        return respond


def media_base(request: Request) -> str:
    """The absolute URL of stored evidence on this server, without the evidence id
    (``http://host/open311/v2/media/``); empty where the media route is not mounted."""
    try:
        return str(request.url_for("open311_media", evidence_id="_"))[:-1]
    except NoMatchFound:
        return ""


# --- parameter parsing -------------------------------------------------------------------------------------
def _known_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise Open311Error(404, f"format: unknown format '.{fmt}'; use .json or .xml")


def _comma_list(value: str, field: str) -> list[str]:
    items = [v.strip() for v in value.split(",")]
    if not value.strip() or any(not v for v in items):
        raise Open311Error(400, f"{field}: must be a comma-separated list without empty items")
    return items


def _datetime(value: str, field: str, tz: tzinfo) -> datetime:
    """ISO 8601 / W3C date or date-time; without an offset it is the district's local time."""
    text = value.strip()
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise Open311Error(400, f"{field}: must be an ISO 8601 date-time such as 2026-03-02T10:00:00+08:00, "
                                f"got {value!r}") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=tz)


def _single(form: Any, name: str) -> str | None:
    """A form field given at most once; empty means absent."""
    values = form.getlist(name)
    if len(values) > 1:
        raise Open311Error(400, f"{name}: given {len(values)} times; give it once")
    if not values:
        return None
    v = values[0]
    if isinstance(v, UploadFile):
        raise Open311Error(400, f"{name}: file uploads are not supported; send media_url")
    v = str(v)
    return v if v.strip() else None


def _coordinate(form: Any, name: str) -> float:
    raw = _single(form, name)
    if raw is None:
        raise Open311Error(400, f"{name}: is required (WGS84 degrees)")
    try:
        v = float(raw)
    except ValueError:
        raise Open311Error(400, f"{name}: must be a number (WGS84 degrees), got {raw!r}") from None
    if not math.isfinite(v):
        raise Open311Error(400, f"{name}: must be a finite number, got {raw!r}")
    return v


def _media_url(raw: str) -> str:
    """A posted ``media_url``: an absolute http(s) URL of at most :data:`MAX_MEDIA_URL`
    characters, without spaces, control characters or credentials."""
    url = raw.strip()
    if len(url) > MAX_MEDIA_URL:
        raise Open311Error(400, f"media_url: must be at most {MAX_MEDIA_URL} characters, got {len(url)}")
    shown = url if len(url) <= 80 else url[:77] + "..."
    if not url.isprintable() or any(c.isspace() for c in url):
        raise Open311Error(400, f"media_url: must not contain spaces or control characters, got {shown!r}")
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        raise Open311Error(400, f"media_url: is not a valid URL, got {shown!r}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or not port_ok:
        raise Open311Error(400, f"media_url: must be an absolute http or https URL (a link to the photo), "
                                f"got {shown!r}")
    if parts.username is not None or parts.password is not None:
        raise Open311Error(400, "media_url: must not carry a user name or password")
    return url


def _api_key(form: Any, request: Request) -> str | None:
    """A POST's ``api_key``: in the form body or the query (the same value if in both)."""
    in_body = _single(form, "api_key")
    in_query = [k for k in request.query_params.getlist("api_key") if k.strip()]
    if len(in_query) > 1:
        raise Open311Error(400, f"api_key: given {len(in_query)} times in the query; give it once")
    if in_body is not None and in_query and in_body.strip() != in_query[0].strip():
        raise Open311Error(400, "api_key: given in the query and in the body with different values; give it once")
    key = in_body if in_body is not None else (in_query[0] if in_query else None)
    return key.strip() if key is not None else None


def _place(d: ServiceDirectory, form: Any) -> tuple[float, float, Placement | None]:
    """Where a POST's request is: ``lat``/``long``, else ``address_string`` placed on the
    district's streets; ``address_id`` alone is refused."""
    lat_raw, long_raw = _single(form, "lat"), _single(form, "long")
    if lat_raw is None and long_raw is None:
        address = _single(form, "address_string")
        if address is not None:
            placed = d.gazetteer.place(address)  # ValidationError naming address_string
            lon, lat = d.district.projection.to_lonlat(placed.x, placed.y)
            return float(lat), float(lon), placed
        if _single(form, "address_id") is not None:
            raise Open311Error(400, "address_id: not supported (there is no address register here); send "
                                    "lat/long or address_string")
        raise Open311Error(400, "lat: is required (WGS84 degrees), with long; or give address_string")
    return _coordinate(form, "lat"), _coordinate(form, "long"), None


def _form_fingerprint(form: Any) -> bytes:
    """The submitted fields in a canonical order: a retry matches whatever the field order or
    multipart boundary."""
    items = sorted((str(k), v if isinstance(v, str) else f"<file {getattr(v, 'filename', '')}>")
                   for k, v in form.multi_items())
    return json.dumps(items, ensure_ascii=False, separators=(",", ":")).encode()


# --- dependencies ------------------------------------------------------------------------------------------
async def response_format(fmt: str) -> str:
    """The response format of the path (``json`` or ``xml``; anything else is a 404)."""
    _known_format(fmt)
    return fmt


async def get_directory(request: Request) -> ServiceDirectory:
    """Services and place names of the brain's district (kept on ``app.state``)."""
    state = request.app.state
    if state.district is None:
        name = await district_name(request)
        try:
            await load_district(request, name)
        except TwinError as exc:
            log.error("cannot load district %r for Open311: %s", name, exc)
            raise Open311Error(503, f"service names of district '{name}' are not available; "
                                    "give the app its district") from None
    directory: ServiceDirectory | None = getattr(state, "open311_directory", None)
    if directory is None or directory.district is not state.district:
        directory = state.open311_directory = ServiceDirectory(state.district)
    return directory


async def may_see_private(request: Request, client: Client) -> bool:
    """Whether the caller's ``api_key`` (query parameter) shows requests of non-public services.

    Raises:
        Open311Error: 400 a key given twice, 403 an unknown or revoked key.
    """
    keys = request.query_params.getlist("api_key")
    if len(keys) > 1:
        raise Open311Error(400, f"api_key: given {len(keys)} times; give it once")
    if not keys or not keys[0].strip():
        return False
    who = await client.principal(keys[0].strip())
    if who is None:
        raise Open311Error(403, "api_key: unknown or revoked key")
    return str(who["role"]) in READING_ROLES


Format = Annotated[str, Depends(response_format)]
Directory = Annotated[ServiceDirectory, Depends(get_directory)]
Private = Annotated[bool, Depends(may_see_private)]


async def _visible_event(client: BrainClient, d: ServiceDirectory, event_id: str, private: bool) -> dict[str, Any] | None:
    """The event view of an event id, or ``None`` if there is none (or it is not a service,
    or not a public one and ``private`` is false)."""
    try:
        view = await client.event_of(event_id)
    except NotFound:
        return None
    return view if d.shown(view["scenario"], private) else None


async def _visible(client: BrainClient, d: ServiceDirectory, event_id: str, private: bool,
                   media: str = "") -> dict[str, Any] | None:
    """The request of an event id, or ``None`` (see :func:`_visible_event`)."""
    view = await _visible_event(client, d, event_id, private)
    return None if view is None else d.request(view, media)


# --- the router ------------------------------------------------------------------------------------------
#: The Open311 GeoReport v2 endpoints (mount at ``/open311/v2``). Each route's dependencies run
#: in the order of its parameters: the format, then the caller's key or the directory.
router = APIRouter(route_class=Open311Route)
#: The discovery document alone (mount at ``/open311``, the parent of :data:`router`'s mount:
#: where the standard's clients look for it).
discovery_router = APIRouter(route_class=Open311Route)
#: What the OpenAPI document says a route answers: the same content in either format.
_FORMATS_DOC: dict[int | str, dict[str, Any]] = {200: {"content": {"application/json": {}, "text/xml": {}}}}


@router.get("/services.{fmt}", name="open311_services", summary="List services", responses=_FORMATS_DOC)
async def services(fmt: Format, d: Directory) -> Response:
    """Every service citizens can report: one per catalog scenario."""
    return answer(fmt, "services", [d.service(s) for s in d.specs.values()])


@router.get("/services/{code}.{fmt}", summary="Service definition", responses=_FORMATS_DOC)
async def service_definition(code: str, fmt: Format, d: Directory) -> Response:
    """The definition of one service (it asks for no attributes beyond the standard's)."""
    if code not in d.specs:
        raise Open311Error(404, f"service_code: no service '{code}'; see services.{fmt}")
    return answer(fmt, "service_definition", {"service_code": code, "attributes": []})


@router.get("/requests.{fmt}", summary="List service requests", responses=_FORMATS_DOC)
async def list_requests(fmt: Format, d: Directory, private: Private, request: Request, client: Client) -> Response:
    """Service requests, newest first (at most 1000); those of non-public services only with a
    reader's ``api_key``."""
    q = request.query_params
    media = media_base(request)
    for name in ("service_request_id", "service_code", "status", "start_date", "end_date"):
        if len(q.getlist(name)) > 1:
            raise Open311Error(400, f"{name}: given {len(q.getlist(name))} times; use one comma-separated value")
    ids = q.get("service_request_id")
    if ids is not None:
        wanted = list(dict.fromkeys(_comma_list(ids, "service_request_id")))
        if len(wanted) > MAX_IDS:
            raise Open311Error(400, f"service_request_id: at most {MAX_IDS} ids at once, got {len(wanted)}")
        found = [await _visible(client, d, i, private, media) for i in wanted]
        return answer(fmt, "requests", [r for r in found if r is not None])
    codes, statuses, filters = _filters(q, d)
    if filters["since"] is None:  # neither date: the most recent 90 days of the brain's clock
        now = datetime.fromisoformat(str((await client.health())["now"]))
        filters["since"] = (now - MAX_WINDOW).timestamp()
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    offset = 0
    while len(out) < MAX_REQUESTS:
        page = await client.list_events({**filters, "limit": PAGE, "offset": offset})
        for view in page:
            if view["id"] in seen or not d.shown(view["scenario"], private):
                continue
            if codes is not None and view["scenario"] not in codes:
                continue
            req = d.request(view, media)
            if statuses is not None and req["status"] not in statuses:
                continue
            seen.add(view["id"])
            out.append(req)
            if len(out) >= MAX_REQUESTS:
                break
        if len(page) < PAGE:
            break
        offset += PAGE
    return answer(fmt, "requests", out)


def _filters(q: Mapping[str, str], d: ServiceDirectory) -> tuple[set[str] | None, set[str] | None, dict[str, Any]]:
    """The ``service_code`` and ``status`` filters of a listing (``None``: any) and the brain's
    filters for its date window (``since`` ``None``: no date given)."""
    codes: set[str] | None = None
    if q.get("service_code") is not None:
        codes = {d.spec_of(c).code for c in _comma_list(q["service_code"], "service_code")}
    statuses: set[str] | None = None
    if q.get("status") is not None:
        statuses = set(_comma_list(q["status"], "status"))
        bad = statuses - {"open", "closed"}
        if bad:
            raise Open311Error(400, f"status: must be 'open' or 'closed' (comma-separated), got {sorted(bad)}")
    start = _datetime(q["start_date"], "start_date", d.tz) if q.get("start_date") else None
    end = _datetime(q["end_date"], "end_date", d.tz) if q.get("end_date") else None
    if start is not None and end is not None:
        if end < start:
            raise Open311Error(400, "end_date: must not be before start_date")
        if end - start > MAX_WINDOW:
            raise Open311Error(400, f"end_date: the window may span at most {MAX_WINDOW.days} days")
    elif start is not None:
        end = start + MAX_WINDOW
    elif end is not None:
        start = end - MAX_WINDOW
    filters: dict[str, Any] = {"since": start.timestamp() if start else None,
                               "until": end.timestamp() if end else None}
    if statuses == {"open"}:
        filters["state"] = "open"
    return codes, statuses, filters


@router.post("/requests.{fmt}", summary="Create a service request", status_code=201,
             responses={201: {"content": {"application/json": {}, "text/xml": {}}}})
async def create_request(fmt: Format, d: Directory, request: Request, client: Client) -> Response:
    """A citizen's report (form-encoded), located by ``lat``/``long`` or ``address_string``.
    Answers ``[{"service_request_id", "service_notice", "account_id"}]``. Everything is checked
    before the brain is asked: bad input writes nothing."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise Open311Error(400, "Content-Type: send the fields as application/x-www-form-urlencoded")
    try:
        form = await request.form()
    except Exception as exc:  # malformed multipart or too many fields
        raise Open311Error(400, f"body: cannot read the form ({exc})") from None
    api_key = _api_key(form, request)
    if api_key is None:
        raise Open311Error(403, "api_key: is required to create a service request")
    view = await client.principal(api_key)
    if view is None:
        raise Open311Error(403, "api_key: unknown or revoked key")
    who = Principal.from_view(view)
    if who.role not in REPORTING_ROLES:
        raise Open311Error(403, f"api_key: role '{who.role}' may not create service requests; allowed: "
                                + ", ".join(sorted(REPORTING_ROLES)))
    code = _single(form, "service_code")
    if code is None:
        raise Open311Error(400, f"service_code: is required; see services.{fmt}")
    spec = d.spec_of(code.strip())
    lat, lon, placed = _place(d, form)
    description = _single(form, "description") or ""
    if placed is not None:  # the handler sees what the citizen wrote (a house number is not mapped)
        note = f"地址 Address: {_single(form, 'address_string')}"
        description = f"{description}\n{note}" if description else note
        if len(description) > 2000:
            raise Open311Error(400, "description: with the address_string it must be at most 2000 characters")
    raw_media = _single(form, "media_url")
    media = _media_url(raw_media) if raw_media is not None else None
    idem = None
    key = request.headers.get("idempotency-key")
    if key is not None:
        if not key_ok(key):
            raise Open311Error(400, "Idempotency-Key: must be 1-200 characters")
        idem = idem_key(key, who.id, "POST", request.url.path, _form_fingerprint(form))
    body: dict[str, Any] = {"scenario": spec.code, "lon": lon, "lat": lat, "source": Source.CITIZEN.value,
                            "description": description}
    if media is not None:
        body["media_url"] = media
    try:
        out = await client.create_event(body, actor=who.actor, idem=idem)
    except ValidationError as exc:
        if placed is None or exc.field not in ("location", "lon", "lat"):
            raise
        raise Open311Error(400, f"address_string: placed at {placed.describe()}, which is refused: "
                                f"{exc.reason}") from None
    event = out["event"]
    notice = service_notice(spec, event)
    if placed is not None:
        notice += f" Located from address_string at {placed.describe()}."
    return answer(fmt, "requests", [{"service_request_id": event["id"], "service_notice": notice,
                                     "account_id": None}], status=201)


@router.get("/requests/{request_id}.{fmt}", summary="One service request", responses=_FORMATS_DOC)
async def get_request(request_id: str, fmt: Format, private: Private, d: Directory, request: Request,
                      client: Client) -> Response:
    """One service request, as a one-item list (the standard's shape); one of a non-public
    service only with a reader's ``api_key`` (404 otherwise, as for an unknown id)."""
    req = await _visible(client, d, request_id, private, media_base(request))
    if req is None:
        raise Open311Error(404, f"service_request_id: no service request '{request_id}'")
    return answer(fmt, "requests", [req])


@router.get("/tokens/{token}.{fmt}", summary="Request id of a token", responses=_FORMATS_DOC)
async def get_token(token: str, fmt: Format, private: Private, d: Directory, client: Client) -> Response:
    """The service request id behind a token (a token is the request id); that of a non-public
    service only with a reader's ``api_key`` (404 otherwise)."""
    req = await _visible(client, d, token, private)
    if req is None:
        raise Open311Error(404, f"token: no service request for token '{token}'")
    return answer(fmt, "requests", [{"service_request_id": req["service_request_id"], "token": token}])


@router.get("/media/{evidence_id}", name="open311_media", summary="A request's photo",
            response_class=Response, responses={200: {"content": {t: {} for t in EVIDENCE_TYPES}}})
async def get_media(evidence_id: str, private: Private, d: Directory, client: Client) -> Response:
    """A photo stored with a request (a request's ``media_url``), to whoever may see the
    request; 404 for anything else (unknown, another kind of evidence, a camera's frame, a
    request not shown to the caller)."""
    missing = Open311Error(404, f"media: no photo '{evidence_id}'")
    if not EVIDENCE_ID.match(evidence_id):
        raise missing
    found = await client.evidence(evidence_id)
    if found is None:
        raise missing
    event_id, content_type, data = found
    view = await _visible_event(client, d, event_id, private)
    if (view is None or view.get("source") in UNPUBLISHED_SOURCES or evidence_id not in (view.get("evidence") or ())
            or content_type not in EVIDENCE_TYPES):
        raise missing
    return Response(data, media_type=content_type, headers={"X-Content-Type-Options": "nosniff"})


def discovery(request: Request) -> dict[str, Any]:
    """The service discovery document: this server's GeoReport v2 endpoint."""
    try:
        url = str(request.url_for("open311_services", fmt="json")).removesuffix("/services.json")
    except NoMatchFound:  # only the discovery router is mounted: the v2 endpoint beside it
        url = str(request.url).rsplit("/discovery.", 1)[0] + "/v2"
    return {"changeset": CHANGESET, "contact": CONTACT, "key_service": KEY_SERVICE,
            "endpoints": [{"specification": SPECIFICATION, "url": url, "changeset": CHANGESET, "type": "production",
                           "formats": ["text/xml", "application/json"]}]}


@discovery_router.get("/discovery.{fmt}", name="open311_discovery", summary="Open311 service discovery",
                      responses=_FORMATS_DOC)
@router.get("/discovery.{fmt}", summary="Service discovery", responses=_FORMATS_DOC)
async def discovery_document(fmt: Format, request: Request) -> Response:
    """The service discovery document (at the mount and at its parent, ``/open311/discovery``):
    where this server's GeoReport v2 endpoint is, its formats, and how to get an ``api_key``."""
    return answer(fmt, "discovery", discovery(request))


@router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def no_endpoint(path: str, request: Request) -> Response:
    """Anything else under the mount: 405 for a path of an endpoint that does not take the
    method, 404 for the rest, in the standard's error shape."""
    mount = request.url.path[: len(request.url.path) - len(path)].rstrip("/")
    inner = {**request.scope, "path": request.url.path[len(mount):]}
    allowed = sorted({m for r in router.routes if isinstance(r, APIRoute) and r.endpoint is not no_endpoint
                      and r.matches(inner)[0] is Match.PARTIAL for m in r.methods or ()})
    if allowed:
        raise Open311Error(405, f"method: {request.method} is not allowed here; use {', '.join(allowed)}")
    raise Open311Error(404, f"path: no Open311 endpoint '/{path}'; see discovery.{_path_format(request)}")


__all__ = ["CLOSED_STATES", "READING_ROLES", "REPORTING_ROLES", "Open311Error", "Open311Route", "discovery_router",
           "error_response", "router"]
