"""Open311 GeoReport v2 over the street brain.

Citizens' apps that speak `Open311 GeoReport v2 <https://wiki.open311.org/GeoReport_v2/>`_
report problems here and follow them up. Mount :data:`router` at ``/open311/v2`` of an app
whose state holds the brain (:func:`api.deps.install_state`)::

    install_state(app, client, district=district)
    app.include_router(router, prefix="/open311/v2")

Endpoints (JSON only; ``.xml`` answers 400):

* ``GET /services.json``: one service per catalog scenario that citizens may report
  (:attr:`twin.catalog.Source.CITIZEN` among its sources); ``service_code`` is the scenario
  code, ``group`` its category.
* ``GET /services/{code}.json``: the service definition (no extra attributes).
* ``GET /requests.json``: service requests, newest first, at most 1000; filters
  ``service_request_id`` (comma list; overrides the others), ``service_code`` (comma list),
  ``status`` (``open``/``closed``, comma list), ``start_date``/``end_date`` (ISO 8601 / W3C;
  a window of at most 90 days, the last 90 days by default).
* ``POST /requests.json``: a new request, ``application/x-www-form-urlencoded`` with
  ``api_key`` (a bearer token of role ingest, dispatcher or admin), ``service_code``,
  ``lat``, ``long`` and ``description``; other standard fields (``email``, ``first_name``,
  ``media_url``, ``attribute[...]``, ...) are accepted and ignored. An ``Idempotency-Key``
  header makes a retry return the first answer instead of a second request.
* ``GET /requests/{id}.json`` and ``GET /tokens/{token}.json``: one request. A POST answers
  with the ``service_request_id`` at once, so a token is that id.

Only events of the listed services are visible (a camera-only or 110-referral scenario is not
an Open311 service). Status: an event ``closed``, ``merged`` or ``false_alarm`` is
``closed``, anything else ``open``.

Privacy: a catalog scenario whose reports concern people's homes, health or personal
circumstances (:attr:`twin.catalog.ScenarioSpec.public` false, e.g. an elderly person's SOS call)
is still listed in ``services.json`` and can be reported, but its requests are not shown to
anonymous callers: ``GET /requests.json`` leaves them out and ``GET /requests/{id}.json`` and
``GET /tokens/{token}.json`` answer 404 as for an unknown request, so that their existence is not
revealed either. A caller who passes ``api_key`` (query parameter) holding a token of a role that
may read events (admin, dispatcher, handler or viewer) sees them; a key of another role (ingest)
sees what anonymous callers see; an unknown or revoked key is refused with 403.

Errors use the standard's shape, ``[{"code": 400, "description": "lat: must be a number"}]``,
with the same HTTP status: 400 bad input (the description names the field), 403 a missing,
unknown or insufficient ``api_key``, 404 an unknown service or request, 409 an
``Idempotency-Key`` reused for a different request.

The router talks to the brain only through a :class:`~actors.client.BrainClient`. Names for
services and addresses come from the district's catalog and regions, which are static: the
app's district, or the brain's district loaded by name (``health()["district"]``) on first
use (:func:`api.deps.load_district`).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.datastructures import UploadFile

from actors.client import BrainClient
from api.access import READERS, REPORTERS, Principal
from api.deps import Client, district_name, load_district
from api.idempotency import idem_key, key_ok
from twin.catalog import ScenarioSpec, Source
from twin.district import District
from twin.errors import NotFound, TwinError, ValidationError

log = logging.getLogger("streetbrain.open311")

#: Roles whose token may create service requests (the native API's reporters).
REPORTING_ROLES = REPORTERS
#: Roles whose token (``api_key``) also shows requests of non-public services (the API's readers).
READING_ROLES = READERS
#: Event states shown as ``closed``.
CLOSED_STATES = frozenset({"closed", "merged", "false_alarm"})
#: Most requests one ``GET /requests.json`` returns (the standard's limit).
MAX_REQUESTS = 1000
#: Widest date window of ``GET /requests.json`` (the standard's limit), and its default.
MAX_WINDOW = timedelta(days=90)
#: Most ids in one ``service_request_id`` filter.
MAX_IDS = 200
#: Page size when reading events from the brain.
PAGE = 500

_ROLE_WORDS = {"grid_worker": "a grid worker (网格员)", "co_governance": "a co-governance member (共治队员)",
               "enforcement": "an enforcement officer (执法队员)"}
_STATE_NOTES = {
    "reported": "Received; waiting for a free handler.",
    "dispatched": "Dispatched to {role}; waiting for them to accept.",
    "signed": "Accepted by {role}, who is on the way.",
    "on_scene": "{Role} is on scene.",
    "reinforcement_requested": "{Role} is on scene; reinforcement has been requested.",
    "resolved": "Handled on scene; waiting for verification.",
    "escalated": "Escalated to the next tier of handlers.",
    "consultation": "Referred to a joint consultation of departments (会商).",
    "closed": "Closed after verification.",
    "withdrawn": "Closed before anyone handled it: the problem went away or the report was withdrawn.",
    "merged": "Closed as a duplicate of request {merged_into}, which follows the same problem.",
    "false_alarm": "Closed: on inspection there was nothing to handle.",
}


class Open311Error(Exception):
    """An error answer in the Open311 shape.

    Args:
        status: HTTP status, repeated as the error's ``code``.
        description: What is wrong; starts with the field at fault where there is one.
    """

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def error_response(status: int, description: str) -> JSONResponse:
    """``[{"code": status, "description": ...}]`` with that HTTP status."""
    return JSONResponse([{"code": status, "description": description}], status_code=status)


_FIELD_NAMES = {"lon": "long", "location": "lat/long", "scenario": "service_code"}


def _from_twin_error(exc: TwinError) -> JSONResponse:
    """The Open311 answer for an error raised by the brain: 400 bad input (brain field names
    translated to Open311's), 404 unknown, 409 a conflict (an idempotency key reused for a
    different request, a transition the event's state does not allow)."""
    if isinstance(exc, ValidationError):
        return error_response(400, f"{_FIELD_NAMES.get(exc.field, exc.field)}: {exc.reason}")
    if isinstance(exc, NotFound):
        return error_response(404, str(exc))
    return error_response(409, str(exc))


class Open311Route(APIRoute):
    """A route whose every error is answered in the Open311 shape (a router cannot register
    exception handlers, so its routes catch their own)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except Open311Error as exc:
                return error_response(exc.status, exc.description)
            except TwinError as exc:
                return _from_twin_error(exc)
            except RequestValidationError as exc:
                errs = exc.errors()
                err = errs[0] if errs else {"loc": (), "msg": "invalid request"}
                where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header"))
                return error_response(400, f"{where or 'request'}: {err.get('msg', 'invalid')}")
            except Exception:
                log.exception("unexpected error in %s %s", request.method, request.url.path)
                return error_response(500, "internal error; it has been logged")

        return answer


# --- the static part: services and place names ----------------------------------------------------------
class _Directory:
    """Services and place names of one district."""

    def __init__(self, district: District) -> None:
        self.district = district
        self.tz: tzinfo = district.roster.tz
        self.specs: dict[str, ScenarioSpec] = {s.code: s for s in district.catalog if Source.CITIZEN in s.sources}

    def shown(self, code: str, private: bool) -> bool:
        """Whether requests of scenario ``code`` are shown: a service, and public unless the caller
        may see private ones."""
        spec = self.specs.get(code)
        return spec is not None and (spec.public or private)

    def service(self, spec: ScenarioSpec) -> dict[str, Any]:
        cat = self.district.catalog.categories[spec.category]
        return {
            "service_code": spec.code,
            "service_name": service_name(spec),
            "description": spec.description or None,
            "metadata": False,
            "type": "realtime",
            "keywords": ", ".join((spec.name_zh, spec.category, cat.name_zh, spec.severity.value)),
            "group": f"{cat.name_zh} ({cat.name_en})",
        }

    def spec_of(self, code: str, field: str = "service_code") -> ScenarioSpec:
        """The service of a code, or a 400 naming ``field``."""
        spec = self.specs.get(code)
        if spec is None:
            if code in self.district.catalog:
                raise Open311Error(400, f"{field}: '{code}' is not a service citizens can report; see services.json")
            raise Open311Error(400, f"{field}: unknown service '{code}'; see services.json")
        return spec

    def address(self, view: Mapping[str, Any]) -> str:
        """Road, grid, community, area and district, most specific first."""
        parts = []
        road_id = view.get("road_id")
        if road_id:
            try:
                name = self.district.roads.segment(road_id).name
            except (KeyError, NotFound):
                name = ""
            parts.append(f"{name} ({road_id})" if name else f"road {road_id}")
        regions = self.district.regions.by_id
        for key in ("grid_id", "community_id", "area_id"):
            rid = view.get(key)
            if rid:
                r = regions.get(rid)
                parts.append(r.name if r is not None and r.name else rid)
        parts.append(self.district.title)
        return ", ".join(parts)

    def request(self, view: Mapping[str, Any]) -> dict[str, Any]:
        """An event view as an Open311 service request."""
        spec = self.specs[view["scenario"]]
        state = str(view["state"])
        closed = state in CLOSED_STATES
        lon, lat = view["location"]["coordinates"]
        updated = view.get("closed_at") if closed and view.get("closed_at") else view.get("updated_at")
        expected = None
        if not closed:
            reported = datetime.fromisoformat(view["reported_at"])
            expected = (reported + timedelta(seconds=spec.on_scene_s + spec.handling_min * 60)).isoformat(
                timespec="milliseconds")
        return {
            "service_request_id": view["id"],
            "status": "closed" if closed else "open",
            "status_notes": status_notes(view),
            "service_name": service_name(spec),
            "service_code": spec.code,
            "description": view.get("description") or None,
            "agency_responsible": spec.department,
            "service_notice": service_notice(spec, view),
            "requested_datetime": view["reported_at"],
            "updated_datetime": updated,
            "expected_datetime": expected,
            "address": self.address(view),
            "address_id": None,
            "zipcode": None,
            "lat": float(lat),
            "long": float(lon),
            "media_url": None,
        }


def service_name(spec: ScenarioSpec) -> str:
    """``出店经营 (Shop operating outside its storefront)``."""
    return f"{spec.name_zh} ({spec.name_en})"


def status_notes(view: Mapping[str, Any]) -> str:
    """What the state of an event means to the citizen who reported it."""
    state = str(view["state"])
    if state == "closed" and not view.get("resolved_at"):
        state = "withdrawn"  # closed without being handled (Action.WITHDRAW)
    role = _ROLE_WORDS.get(str(view.get("handler_role")), "a handler")
    text = _STATE_NOTES.get(state, state).format(role=role, Role=role[0].upper() + role[1:],
                                                 merged_into=view.get("merged_into") or "?")
    result = view.get("result")
    if state == "closed" and result:
        text += f" Result: {result}"
    return text


def service_notice(spec: ScenarioSpec, view: Mapping[str, Any]) -> str:
    """What the citizen can expect."""
    if view.get("state") == "merged" and view.get("merged_into"):
        return (f"The same problem was already reported nearby as request {view['merged_into']}; "
                "this report was added to it.")
    return (f"{spec.department} answers for this. Target: someone on scene within "
            f"{_minutes(spec.on_scene_s)} of the report.")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


# --- parameter parsing -------------------------------------------------------------------------------------
def _json_only(fmt: str) -> None:
    if fmt == "xml":
        raise Open311Error(400, "format: only JSON is served; use the .json suffix")
    if fmt != "json":
        raise Open311Error(404, f"format: unknown format '.{fmt}'; use .json")


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


def _form_fingerprint(form: Any) -> bytes:
    """The submitted fields in a canonical order: a retry matches whatever the field order or
    multipart boundary."""
    items = sorted((str(k), v if isinstance(v, str) else f"<file {getattr(v, 'filename', '')}>")
                   for k, v in form.multi_items())
    return json.dumps(items, ensure_ascii=False, separators=(",", ":")).encode()


# --- dependencies ------------------------------------------------------------------------------------------
async def json_format(fmt: str) -> str:
    """The response format of the path (``.json``; ``.xml`` is a 400, anything else a 404)."""
    _json_only(fmt)
    return fmt


async def get_directory(request: Request) -> _Directory:
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
    directory: _Directory | None = getattr(state, "open311_directory", None)
    if directory is None or directory.district is not state.district:
        directory = state.open311_directory = _Directory(state.district)
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


JsonFormat = Annotated[str, Depends(json_format)]
Directory = Annotated[_Directory, Depends(get_directory)]
Private = Annotated[bool, Depends(may_see_private)]


async def _visible(client: BrainClient, d: _Directory, event_id: str, private: bool) -> dict[str, Any] | None:
    """The request of an event id, or ``None`` if there is none (or it is not a service, or
    not a public one and ``private`` is false)."""
    try:
        view = await client.event_of(event_id)
    except NotFound:
        return None
    return d.request(view) if d.shown(view["scenario"], private) else None


# --- the router ------------------------------------------------------------------------------------------
#: The Open311 GeoReport v2 endpoints (mount at ``/open311/v2``). Each route's dependencies run
#: in the order of its parameters: the format, then the caller's key or the directory.
router = APIRouter(route_class=Open311Route)


@router.get("/services.{fmt}", summary="List services")
async def services(fmt: JsonFormat, d: Directory) -> JSONResponse:
    """Every service citizens can report: one per catalog scenario."""
    return JSONResponse([d.service(s) for s in d.specs.values()])


@router.get("/services/{code}.{fmt}", summary="Service definition")
async def service_definition(code: str, fmt: JsonFormat, d: Directory) -> JSONResponse:
    """The definition of one service (it asks for no attributes beyond the standard's)."""
    if code not in d.specs:
        raise Open311Error(404, f"service_code: no service '{code}'; see services.json")
    return JSONResponse({"service_code": code, "attributes": []})


@router.get("/requests.{fmt}", summary="List service requests")
async def list_requests(fmt: JsonFormat, d: Directory, private: Private, request: Request,
                        client: Client) -> JSONResponse:
    """Service requests, newest first (at most 1000); those of non-public services only with a
    reader's ``api_key``."""
    q = request.query_params
    for name in ("service_request_id", "service_code", "status", "start_date", "end_date"):
        if len(q.getlist(name)) > 1:
            raise Open311Error(400, f"{name}: given {len(q.getlist(name))} times; use one comma-separated value")
    ids = q.get("service_request_id")
    if ids is not None:
        wanted = list(dict.fromkeys(_comma_list(ids, "service_request_id")))
        if len(wanted) > MAX_IDS:
            raise Open311Error(400, f"service_request_id: at most {MAX_IDS} ids at once, got {len(wanted)}")
        found = [await _visible(client, d, i, private) for i in wanted]
        return JSONResponse([r for r in found if r is not None])
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
            req = d.request(view)
            if statuses is not None and req["status"] not in statuses:
                continue
            seen.add(view["id"])
            out.append(req)
            if len(out) >= MAX_REQUESTS:
                break
        if len(page) < PAGE:
            break
        offset += PAGE
    return JSONResponse(out)


def _filters(q: Mapping[str, str], d: _Directory) -> tuple[set[str] | None, set[str] | None, dict[str, Any]]:
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


@router.post("/requests.{fmt}", summary="Create a service request", status_code=201)
async def create_request(fmt: JsonFormat, d: Directory, request: Request, client: Client) -> JSONResponse:
    """A citizen's report (form-encoded). Answers ``[{"service_request_id", "service_notice",
    "account_id"}]``."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise Open311Error(400, "Content-Type: send the fields as application/x-www-form-urlencoded")
    try:
        form = await request.form()
    except Exception as exc:  # malformed multipart or too many fields
        raise Open311Error(400, f"body: cannot read the form ({exc})") from None
    api_key = _single(form, "api_key")
    if api_key is None:
        raise Open311Error(403, "api_key: is required to create a service request")
    view = await client.principal(api_key.strip())
    if view is None:
        raise Open311Error(403, "api_key: unknown or revoked key")
    who = Principal.from_view(view)
    if who.role not in REPORTING_ROLES:
        raise Open311Error(403, f"api_key: role '{who.role}' may not create service requests; allowed: "
                                + ", ".join(sorted(REPORTING_ROLES)))
    code = _single(form, "service_code")
    if code is None:
        raise Open311Error(400, "service_code: is required; see services.json")
    spec = d.spec_of(code.strip())
    if _single(form, "lat") is None and _single(form, "long") is None and (
            _single(form, "address_string") is not None or _single(form, "address_id") is not None):
        raise Open311Error(400, "address_string: address geocoding not supported, send lat/long")
    lat = _coordinate(form, "lat")
    lon = _coordinate(form, "long")
    description = _single(form, "description") or ""
    idem = None
    key = request.headers.get("idempotency-key")
    if key is not None:
        if not key_ok(key):
            raise Open311Error(400, "Idempotency-Key: must be 1-200 characters")
        idem = idem_key(key, who.id, "POST", request.url.path, _form_fingerprint(form))
    body = {"scenario": spec.code, "lon": lon, "lat": lat, "source": Source.CITIZEN.value,
            "description": description}
    out = await client.create_event(body, actor=who.actor, idem=idem)
    event = out["event"]
    return JSONResponse([{"service_request_id": event["id"], "service_notice": service_notice(spec, event),
                          "account_id": None}], status_code=201)


@router.get("/requests/{request_id}.{fmt}", summary="One service request")
async def get_request(request_id: str, fmt: JsonFormat, private: Private, d: Directory,
                      client: Client) -> JSONResponse:
    """One service request, as a one-item list (the standard's shape); one of a non-public
    service only with a reader's ``api_key`` (404 otherwise, as for an unknown id)."""
    req = await _visible(client, d, request_id, private)
    if req is None:
        raise Open311Error(404, f"service_request_id: no service request '{request_id}'")
    return JSONResponse([req])


@router.get("/tokens/{token}.{fmt}", summary="Request id of a token")
async def get_token(token: str, fmt: JsonFormat, private: Private, d: Directory, client: Client) -> JSONResponse:
    """The service request id behind a token (a token is the request id); that of a non-public
    service only with a reader's ``api_key`` (404 otherwise)."""
    req = await _visible(client, d, token, private)
    if req is None:
        raise Open311Error(404, f"token: no service request for token '{token}'")
    return JSONResponse([{"service_request_id": req["service_request_id"], "token": token}])


__all__ = ["CLOSED_STATES", "READING_ROLES", "REPORTING_ROLES", "Open311Error", "Open311Route", "error_response",
           "router"]
