"""The brain's JSON face: what the API and the Ray host call, in plain dicts.

:class:`Brain` wraps one :class:`~actors.live.LiveTwin` and its event log and speaks only
JSON-ready values, so the same object serves in-process (tests, notebooks) and inside a Ray
actor (nothing but dicts crosses the process boundary). Errors are :mod:`twin.errors`
exceptions; the API turns them into 4xx answers.

Idempotency: a write carries ``(key, principal, request_hash)``; the response is stored in
the same transaction as the records it wrote, so a retry gets the first answer back and
writes nothing, and a different request under a used key is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from actors.brain_api import EVIDENCE_ID, MAX_MEDIA_URL, ROLES, IdemKey, ReportItem
from actors.eventlog import EventLog, JsonText
from actors.live import HUMAN_ACTIONS, Clock, KeyInUse, LiveTwin, iso
from twin.district import District
from twin.errors import TwinError, ValidationError
from twin.staff import Role
from twin.workflow import Action, AuditRecord, Event


class Conflict(TwinError):
    """An idempotency key reused for a different request."""

    def __init__(self, key: str) -> None:
        super().__init__(key)  # args rebuild the error (it crosses processes)
        self.key = key

    def __str__(self) -> str:
        return f"Idempotency-Key '{self.key}' was already used for a different request"


def token_hash(token: str) -> str:
    """How bearer tokens are stored: SHA-256 of the token (tokens are 256-bit random)."""
    return hashlib.sha256(token.encode()).hexdigest()


class Brain:
    """The live street brain of one district behind a JSON interface.

    Args:
        district: The district.
        log: Its durable event log.
        clock: The twin's clock.
    """

    def __init__(self, district: District, log: EventLog, clock: Clock | None = None) -> None:
        self.district = district
        self.log = log
        self.twin = LiveTwin(district, log, clock)
        self.district = self.twin.district  # with the twin's own roster (shift swaps)
        self.tz = district.roster.tz

    # --- views -------------------------------------------------------------------------------------
    def event_view(self, e: Event, *, history: bool = False) -> dict[str, Any]:
        """An event as the API shows it."""
        tz = self.tz
        spec = self.district.catalog[e.scenario]
        loc = e.location
        out: dict[str, Any] = {
            "id": e.id, "scenario": e.scenario, "scenario_name": spec.name_en, "scenario_name_zh": spec.name_zh,
            "category": e.category, "severity": e.severity, "source": e.source, "state": e.state.value,
            "tier": e.tier, "handler_role": spec.handler_chain[min(e.tier, len(spec.handler_chain) - 1)].value,
            "assignee": e.assignee, "reinforcements": list(e.reinforcements),
            "location": {"type": "Point", "coordinates": [round(loc.lon, 7), round(loc.lat, 7)]},
            "road_id": loc.road_id, "node": loc.node, "grid_id": loc.grid_id, "community_id": loc.community_id,
            "area_id": loc.area_id, "description": e.description, "external_id": e.external_id,
            "reported_at": iso(e.reported_at, tz), "dispatched_at": iso(e.dispatched_at, tz),
            "signed_at": iso(e.signed_at, tz), "on_scene_at": iso(e.on_scene_at, tz),
            "reinforcement_requested_at": iso(e.reinforcement_requested_at, tz),
            "reinforced_at": iso(e.reinforced_at, tz), "resolved_at": iso(e.resolved_at, tz),
            "closed_at": iso(e.closed_at, tz), "escalations": e.escalations, "reassignments": e.reassignments,
            "merged_into": e.merged_into, "result": e.result, "evidence": list(e.evidence), "version": e.version,
            "updated_at": iso(e.updated_at, tz),
        }
        if history:
            out["history"] = [self.record_view(seq, r) for seq, r in self.twin.history(e.id)]
        return out

    def record_view(self, seq: int, r: AuditRecord) -> dict[str, Any]:
        """One audit record as the API and the streams show it, with the event's current
        assignee and area (what stream filters select on)."""
        d = r.to_dict()
        d["log_seq"] = seq
        d["at_iso"] = iso(r.at, self.tz)
        e = self.twin.events.get(r.event_id)
        d["assignee"] = e.assignee if e is not None else None
        d["area_id"] = e.location.area_id if e is not None else None
        return d

    # --- idempotent writes ---------------------------------------------------------------------------
    def _replay(self, idem: IdemKey | None) -> dict[str, Any] | None:
        if idem is None:
            return None
        key, principal, req_hash = idem
        pending = self.twin.pending_idem.get((key, principal))
        if pending is not None:  # the first try is being made durable right now: wait for it
            pending[2].wait()
            found: tuple[str, dict[str, Any]] | None = (pending[0], pending[1])
        else:
            found = self.log.idempotent(key, principal)
        if found is None:
            return None
        if found[0] != req_hash:
            raise Conflict(key)
        answer = json.loads(found[1]) if isinstance(found[1], str) else found[1]  # pending: still as encoded
        return {**answer, "idempotent_replay": True}

    def create_event(self, body: Mapping[str, Any], *, actor: str, idem: IdemKey | None = None
                     ) -> dict[str, Any]:
        """Report an event (``scenario``, ``lon``/``lat`` or ``location`` GeoJSON point, ``source``,
        optional ``description`` and ``external_id``); returns it, dispatched if someone was free."""
        out = self.create_events([{"body": body, "actor": actor, "idem": idem}])[0]
        if isinstance(out, Exception):
            raise out
        assert isinstance(out, dict)  # (bytes only with as_json)
        return out

    def create_events(self, items: Sequence[ReportItem], *, as_json: bool = False
                      ) -> list[dict[str, Any] | bytes | Exception]:
        """Several reports in one call, each ``{"body", "actor", "idem"}`` as :meth:`create_event`
        takes them: located together, decided in order, made durable in one group commit (the
        API coalesces concurrent POSTs into such calls). Returns each report's answer (as JSON
        bytes with ``as_json``: what the API sends, with nothing to convert on the way), or the
        error that refused it; one bad report does not fail the others."""
        results: list[dict[str, Any] | bytes | Exception | None] = [None] * len(items)
        reports: list[tuple[int, IdemKey | None, dict[str, Any]]] = []
        for i, item in enumerate(items):
            body, idem = item["body"], item.get("idem")
            try:
                if not isinstance(body, Mapping):
                    raise ValidationError("body", f"must be a JSON object, got {type(body).__name__}")
                lon, lat = _point(body)
                reports.append((i, idem, {
                    "scenario": _text(body, "scenario", required=True), "lon": lon, "lat": lat,
                    "source": _text(body, "source", required=False) or "citizen",
                    "description": _text(body, "description", required=False, limit=2000) or "",
                    "external_id": _text(body, "external_id", required=False, limit=200) or None,
                    "evidence": _evidence_ids(body) + _media_url(body),
                    "actor": str(item["actor"]),
                    "idempotency": (*idem, self._respond_created) if idem else None}))
            except TwinError as exc:
                results[i] = exc
        outs = self.twin.report_many([r for _, _, r in reports])
        for (i, idem, _), out in zip(reports, outs):
            try:
                if isinstance(out, KeyInUse):  # a retry (or a twin in this batch): the first answer
                    results[i] = self._replay(idem) or _not_stored(out.key)
                elif isinstance(out, Exception):
                    results[i] = out
                elif out.replayed:
                    results[i] = {"event": self.event_view(out.event), "duplicate_of_external_id": True}
                elif as_json and isinstance(out.response, str):  # the answer stored with the key, as sent
                    results[i] = out.response.encode()
                else:
                    results[i] = {"event": self.event_view(out.event)}
            except TwinError as exc:
                results[i] = exc
        if as_json:
            return [r if isinstance(r, Exception | bytes) else json_bytes(r) for r in results]
        return results  # type: ignore[return-value]  # every slot is filled

    def _respond_created(self, new: Mapping[str, Event]) -> JsonText:
        """The answer to a report, encoded once: stored with its idempotency key and sent."""
        return JsonText(json_bytes({"event": self.event_view(next(iter(new.values())))}).decode())

    def act(self, event_id: str, action: str, body: Mapping[str, Any], *, actor: str,
            idem: IdemKey | None = None) -> dict[str, Any]:
        """A person's action on an event (``sign``, ``arrive``, ``resolve``, ...)."""
        old = self._replay(idem)
        if old is not None:
            return old
        try:
            act = Action(action)
        except ValueError:
            raise ValidationError("action", f"unknown action '{action}'; one of "
                                  + ", ".join(sorted(a.value for a in HUMAN_ACTIONS))) from None
        data = {k: v for k, v in body.items() if k not in ("reason", "holder")}
        reason = _text(body, "reason", required=False, limit=500) or ""
        holder = _text(body, "holder", required=False, limit=40)
        for k, v in data.items():
            if k not in _ACTION_FIELDS:
                raise ValidationError(k, f"unknown field for '{act.value}'; allowed: " + ", ".join(sorted(_ACTION_FIELDS)))
            if k in ("result", "into", "member") and v is not None and not isinstance(v, str):
                raise ValidationError(k, f"must be a string, got {type(v).__name__}")
        respond = (lambda new: {"event": self.event_view(new[event_id])})
        try:
            out = self.twin.act(event_id, act, actor=actor, reason=reason, holder=holder,
                                idempotency=(*idem, respond) if idem else None, **data)
        except KeyInUse as exc:  # a retry that raced its first try: the first answer
            replayed = self._replay(idem)
            if replayed is None:
                raise _not_stored(exc.key) from None
            return replayed
        return {"event": self.event_view(out.event)}

    # --- reads ---------------------------------------------------------------------------------------
    def get_event(self, event_id: str) -> dict[str, Any]:
        """One event with its full history and everything stored for it in the evidence store
        (``stored_evidence``: id, content type, bytes; e.g. a camera's annotated frame, its
        detection record and, once the objects have gone, the alarm's end)."""
        out = self.event_view(self.twin.event(event_id), history=True)
        out["stored_evidence"] = [{"id": i, "content_type": c, "bytes": n} for i, c, n in self.log.evidence_of(event_id)]
        return out

    def event_of(self, event_id: str) -> dict[str, Any]:
        """One event without history (for permission checks)."""
        return self.event_view(self.twin.event(event_id))

    def list_events(self, filters: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Events by ``state``, ``area_id``, ``category``, ``since``/``until`` (POSIX), ``assignee``."""
        return [self.event_view(e) for e in self.twin.list_events(**filters)]

    def members(self) -> list[dict[str, Any]]:
        """Every member with role, area, squad, grids, whether on duty now and why not
        (``status``: on_duty, off, absent, break or post:<name>)."""
        now = self.twin.now()
        roster = self.district.roster
        duty = roster.on_duty_ids(now)
        return [{"id": m.id, "name": m.name, "role": m.role.value, "area_id": m.area_id, "squad_id": m.squad_id,
                 "grid_ids": list(m.grid_ids), "travel_mode": m.travel_mode.value, "on_duty": m.id in duty,
                 "status": "on_duty" if m.id in duty else roster.status(m, now),
                 "busy": self.twin.members[m.id].busy, "event_id": self.twin.holding.get(m.id)}
                for m in roster.members]

    def teams(self) -> list[dict[str, Any]]:
        """The three teams (by role) and the road squads with their head counts."""
        by_role: dict[str, int] = {}
        for m in self.district.roster.members:
            by_role[m.role.value] = by_role.get(m.role.value, 0) + 1
        squads = [{"id": s.id, "name": s.name, "area_ids": list(s.area_ids),
                   "members": sum(1 for m in self.district.roster.members if m.squad_id == s.id)}
                  for s in self.district.squads]
        return [{"role": r.value, "members": by_role.get(r.value, 0)} for r in Role if by_role.get(r.value)] + \
            [{"squad": s} for s in squads]

    def roster(self) -> dict[str, Any]:
        """The shift in force, its window, the mode and who is on duty."""
        now = self.twin.now()
        roster = self.district.roster
        shift, _ = roster.shift_at(now)
        lo, hi = roster.shift_window(now)
        duty = roster.on_duty_ids(now)
        away: dict[str, list[str]] = {}
        for m in roster.members:
            if m.id not in duty:
                why = roster.status(m, now)
                if why != "off":
                    away.setdefault(why, []).append(m.id)
        return {"now": iso(now, self.tz), "shift": shift.code, "shift_start": iso(lo, self.tz),
                "shift_end": iso(hi, self.tz), "mode": self.twin.mode.value, "on_duty": sorted(duty),
                "away": away, "next_change": iso(roster.next_change(now), self.tz),
                "shifts": [{"code": s.code, "start_s": s.start_s, "duration_s": s.duration_s}
                           for s in roster.plan]}

    def swap_shifts(self, body: Mapping[str, Any], *, actor: str) -> dict[str, Any]:
        """``member_a`` and ``member_b`` (same role) exchange shifts on ``date`` (YYYY-MM-DD)."""
        a = _text(body, "member_a", required=True, limit=40)
        b = _text(body, "member_b", required=True, limit=40)
        date = _text(body, "date", required=True, limit=10)
        swapped = self.twin.swap_shifts(str(a), str(b), str(date), actor=actor)
        return {"swapped": swapped, "roster": self.roster()}

    def set_mode(self, mode: str, *, actor: str) -> dict[str, Any]:
        """Peacetime or wartime."""
        self.twin.set_mode(mode, actor=actor)
        return self.roster()

    def positions(self, members: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Where every member (or each of ``members``) is."""
        return self.twin.positions(members)

    def kpis(self, since: float | None = None, until: float | None = None) -> dict[str, Any]:
        """KPIs now, or for a window of report times."""
        return self.twin.kpis(since, until)

    def changes(self, since: int, limit: int = 500) -> list[dict[str, Any]]:
        """Log records after global sequence ``since`` (what the streams send)."""
        return [self.record_view(seq, r) for seq, r in self.twin.records_after(since, limit)]

    def window(self, since: float, until: float, limit: int = 20000) -> dict[str, Any]:
        """Every log record of the events reported in ``[since, until)`` (POSIX), in time order,
        as the streams show them: what a replay of that window draws. At most ``limit`` records
        (``truncated`` says when more were left out, the latest events' first)."""
        if not until > since:
            raise ValidationError("until", f"must be after since ({since}), got {until}")
        events = sorted(self.twin.list_events(since=since, until=until, limit=1_000_000), key=lambda e: e.reported_at)
        # one read of the log from the window's start (an event's records all come after its report)
        by_event: dict[str, list[tuple[int, AuditRecord]]] = {e.id: [] for e in events}
        for seq, r in self.log.records(since_at=since):
            if r.event_id in by_event:
                by_event[r.event_id].append((seq, r))
        rows: list[dict[str, Any]] = []
        truncated = False
        for e in events:
            hist = by_event[e.id]
            if len(rows) + len(hist) > limit:
                truncated = True
                break
            rows += [self.record_view(seq, r) for seq, r in hist]
        rows.sort(key=lambda r: (r["at"], r["log_seq"]))
        return {"since": iso(since, self.tz), "until": iso(until, self.tz), "records": rows,
                "events": len({r["event_id"] for r in rows}), "truncated": truncated}

    def now(self) -> float:
        """The twin's time, POSIX seconds."""
        return self.twin.now()

    def road_changes(self, since: int, limit: int = 5000) -> list[tuple[Any, ...]]:
        """What road units follow, compactly: ``(log seq, event id, action, to state, at,
        road id, scenario)`` of the records after ``since`` (road and scenario of the event)."""
        out = []
        for seq, eid, action, to_state, at in self.twin.transitions(since, limit):
            e = self.twin.events.get(eid)
            out.append((seq, eid, action, to_state, at, e.location.road_id if e else None,
                        e.scenario if e else None))
        return out

    def last_seq(self) -> int:
        """The newest log sequence number."""
        return self.twin.last_seq

    def tick(self) -> int:
        """Fire due timers; returns the number of records written."""
        return len(self.twin.tick())

    def health(self) -> dict[str, Any]:
        """Liveness facts."""
        return {"status": "ok", "district": self.district.name, "events": len(self.twin.events),
                "last_seq": self.twin.last_seq, "now": iso(self.twin.now(), self.tz), "mode": self.twin.mode.value,
                "speed": self.twin.clock.speed, "db": self.log.safe_url}

    # --- credentials and evidence ---------------------------------------------------------------------
    def create_token(self, role: str, *, member_id: str | None = None, name: str = "") -> dict[str, Any]:
        """A new bearer token (returned once; only its hash is kept)."""
        if role not in ROLES:
            raise ValidationError("role", f"must be one of {', '.join(ROLES)}, got {role!r}")
        if role == "handler":
            if not member_id or member_id not in self.twin.members:
                raise ValidationError("member_id", f"a handler token needs an existing member id, got {member_id!r}")
        elif member_id is not None:
            raise ValidationError("member_id", "only handler tokens are bound to a member")
        token = secrets.token_urlsafe(32)
        self.log.put_token(token_hash(token), role, member_id, name[:100])
        return {"token": token, "role": role, "member_id": member_id, "name": name[:100]}

    def ensure_token(self, token: str, role: str, name: str) -> None:
        """Register a given token (the admin token from the environment) if not yet known."""
        h = token_hash(token)
        if self.log.token(h) is None:
            self.log.put_token(h, role, None, name)

    def principal(self, token: str) -> dict[str, Any] | None:
        """Who holds this bearer token, or ``None``."""
        found = self.log.token(token_hash(token))
        if found is None:
            return None
        role, member_id, name = found
        return {"role": role, "member_id": member_id, "name": name, "id": token_hash(token)[:16]}

    def put_evidence(self, event_id: str, content_type: str, data: bytes) -> str:
        """Store evidence for an event; returns its id."""
        self.twin.event(event_id)
        return self.log.put_evidence(event_id, content_type, data)

    def evidence(self, evidence_id: str) -> tuple[str, str, bytes] | None:
        """Stored evidence: ``(event id, content type, bytes)``."""
        return self.log.evidence(evidence_id)

    def snapshot(self) -> dict[str, Any]:
        """The live state for a what-if fork."""
        return self.twin.snapshot()


_ACTION_FIELDS = frozenset({"member", "members", "tier", "travel_s", "into", "result", "evidence", "departments",
                            "reason", "chain_length"})


def json_bytes(value: Any) -> bytes:
    """A JSON-ready value as compact UTF-8 JSON (what the API sends)."""
    return _ENCODER.encode(value).encode()


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _not_stored(key: str) -> TwinError:
    return TwinError(f"Idempotency-Key '{key}': the first request with this key was not stored; send it again")


def _evidence_ids(body: Mapping[str, Any]) -> tuple[str, ...]:
    """A report's ``evidence``: at most 8 evidence ids (``sha256:<hex>``, what the evidence
    store returns for a piece of content), the reporting source's proof (a camera's frame)."""
    v = body.get("evidence")
    if v is None:
        return ()
    if not isinstance(v, list) or len(v) > 8 or not all(isinstance(e, str) and EVIDENCE_ID.match(e) for e in v):
        raise ValidationError("evidence", "must be a list of at most 8 evidence ids 'sha256:<64 hex digits>'")
    return tuple(v)


_MEDIA_URL = re.compile(r"^https?://[^\s/?#@]+(?:[/?#]\S*)?$", re.IGNORECASE)


def _media_url(body: Mapping[str, Any]) -> tuple[str, ...]:
    """A report's ``media_url`` (Open311): a link to a photo kept elsewhere, an http(s) URL of
    at most :data:`MAX_MEDIA_URL` characters; kept with the evidence ids, in the report's record."""
    v = body.get("media_url")
    if v is None:
        return ()
    if not isinstance(v, str) or len(v) > MAX_MEDIA_URL or not _MEDIA_URL.match(v) or not v.isprintable():
        raise ValidationError("media_url", f"must be an http or https URL of at most {MAX_MEDIA_URL} characters, "
                                           "without spaces, control characters or a user name")
    return (v,)


def _text(body: Mapping[str, Any], name: str, *, required: bool, limit: int = 100) -> str | None:
    v = body.get(name)
    if v is None:
        if required:
            raise ValidationError(name, "is required")
        return None
    if not isinstance(v, str):
        raise ValidationError(name, f"must be a string, got {type(v).__name__}")
    if required and not v.strip():
        raise ValidationError(name, "must not be empty")
    if len(v) > limit:
        raise ValidationError(name, f"must be at most {limit} characters")
    return v


def _point(body: Mapping[str, Any]) -> tuple[float, float]:
    """``lon``/``lat`` fields or a GeoJSON ``location`` point."""
    loc = body.get("location")
    if loc is not None:
        if not isinstance(loc, Mapping) or loc.get("type") != "Point":
            raise ValidationError("location", "must be a GeoJSON Point {\"type\": \"Point\", \"coordinates\": [lon, lat]}")
        coords = loc.get("coordinates")
        if not isinstance(coords, (list, tuple)) or len(coords) != 2:
            raise ValidationError("location.coordinates", "must be [lon, lat]")
        lon, lat = coords
    else:
        if "lon" not in body or "lat" not in body:
            raise ValidationError("lon", "lon and lat (or a GeoJSON location) are required")
        lon, lat = body["lon"], body["lat"]
    for name, v in (("lon", lon), ("lat", lat)):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValidationError(name, f"must be a number, got {type(v).__name__}")
    return float(lon), float(lat)
