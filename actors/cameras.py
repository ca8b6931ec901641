"""Frigate camera events → street-brain reports.

`Frigate <https://frigate.video>`_ tracks objects in each camera's video and publishes one
message per change of a tracked object (MQTT topic ``frigate/events``, or the same JSON to a
webhook)::

    {"type": "new" | "update" | "end",
     "before": {...},
     "after": {"id": "1607123955.475377-mxklsc", "camera": "K0001", "label": "car",
               "sub_label": null, "score": 0.79, "top_score": 0.96, "false_positive": false,
               "start_time": 1607123955.47, "end_time": null, "frame_time": 1607123962.08,
               "current_zones": ["no_parking"], "entered_zones": ["no_parking"],
               "stationary": true, "box": [424, 500, 536, 712], "region": [...], ...}}

:class:`CameraShard` checks such a message, maps the object's label and zones to a catalog
scenario through the scenarios' camera rules (:class:`twin.catalog.CameraRule`), applies the
rule's dwell time and a score threshold, and returns the body of
:meth:`actors.brain.Brain.create_event`, or ``None`` when nothing is to be reported.

Conventions:

* **Camera names.** Frigate's camera name is the twin's camera id (``K0001``).
* **Zone names.** A Frigate zone is named after the twin's zone kind (``no_parking``,
  ``storefront``, ``sidewalk``, ... see :data:`twin.catalog.ZONE_KINDS`), optionally prefixed
  by the camera id (``K0001_no_parking``, since Frigate merges same-named zones across
  cameras). Other zone names are ignored. A rule whose zone is ``any`` applies wherever the
  object is in the view, in a zone or not.
* **One object.** A Frigate event tracks one object, so rules needing ``min_count`` > 1
  (congestion, crowds, rows of bikes) are never met by it; they are listed in
  :meth:`CameraShard.mapping_table` as not reportable from object events.
* **Ties.** When several scenarios match, the one whose rule names the object's zone beats
  an ``any`` rule, then the rule with fewer labels (the more specific), then the more severe,
  then catalog order. So a car in a no-parking zone is illegal parking (TR01, rule ``car``)
  rather than a blocked fire lane (TR03, rule ``car, truck``), and goods in a storefront zone
  are 出店经营 (CM01) rather than objects thrown from height (PS10, zone ``any``).
* **Dwell.** Time in the zone is measured from ``after.start_time`` (first detection) to
  ``after.frame_time`` (``after.end_time`` on an ``end`` message); Frigate does not publish
  when the object entered a zone.
* **Score.** ``after.top_score`` (the best score of the track, what Frigate itself judges
  tracks by) must reach :attr:`CameraShard.min_score`.
* **Deduplication.** The body's ``external_id`` is ``frigate:<after.id>``; the brain turns a
  second report with the same camera external id into the first event, so every message of
  a track can be passed on without state here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from twin.assets import Camera
from twin.catalog import ZONE_KINDS, ScenarioSpec, Source
from twin.district import District
from twin.errors import ValidationError
from twin.vision import best_rule, camera_rules, dwell_met

#: Frigate message types.
MESSAGE_TYPES = ("new", "update", "end")

#: Default minimum ``top_score`` of a track before it is reported.
DEFAULT_MIN_SCORE = 0.5

#: Longest Frigate event id accepted (the brain keeps external ids of at most 200 characters).
MAX_ID_LENGTH = 190


class CameraShard:
    """The cameras of one shard and the rules that turn their Frigate events into reports.

    Args:
        district: The district whose cameras and catalog are used.
        camera_ids: Ids of the cameras this shard serves; ``None`` for every camera. May be
            empty (a group of areas without cameras): every message is then refused.
        min_score: Minimum ``top_score`` (0-1) of a track before it is reported.

    Raises:
        ValidationError: an unknown camera id, an id that is not a string, or a score
            outside [0, 1].
    """

    def __init__(self, district: District, camera_ids: Iterable[str] | None = None, *,
                 min_score: float = DEFAULT_MIN_SCORE) -> None:
        self.district = district
        known = {c.id: c for c in district.cameras}
        if camera_ids is None:
            chosen = list(known)
        else:
            if isinstance(camera_ids, (str, bytes)):
                raise ValidationError("camera_ids", "must be an iterable of camera ids, not a single string")
            chosen = list(camera_ids)
            bad_type = [c for c in chosen if not isinstance(c, str)]
            if bad_type:
                raise ValidationError("camera_ids", f"camera ids must be strings, got {bad_type[:5]!r}")
            unknown = sorted({c for c in chosen if c not in known})
            if unknown:
                raise ValidationError("camera_ids", f"unknown camera(s) {', '.join(unknown[:10])}"
                                      + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
                                      + f"; district '{district.name}' has {len(known)} cameras")
        self.cameras: dict[str, Camera] = {cid: known[cid] for cid in dict.fromkeys(chosen)}
        self._all_ids = frozenset(known)
        self.min_score = min_score
        #: Why the last :meth:`ingest` reported or did not report (for logging).
        self.last_reason = ""
        self._rules = camera_rules(district.catalog)

    # --- settings ---------------------------------------------------------------------------------------
    @property
    def min_score(self) -> float:
        """Minimum ``top_score`` (0-1) of a track before it is reported."""
        return self._min_score

    @min_score.setter
    def min_score(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ValidationError("min_score", f"must be a number in [0, 1], got {value!r}")
        self._min_score = float(value)

    def __contains__(self, camera_id: object) -> bool:
        return camera_id in self.cameras

    def __len__(self) -> int:
        return len(self.cameras)

    # --- the mapping ------------------------------------------------------------------------------------
    def scenario_for(self, label: str, zone_kinds: Iterable[str]) -> ScenarioSpec | None:
        """The scenario an object of ``label`` in zones of ``zone_kinds`` reports, if any.

        Args:
            label: The object class (``car``).
            zone_kinds: Zone kinds the object is in (``no_parking``); may be empty.

        Returns:
            The best-matching scenario (see the module's tie rules), or ``None``.
        """
        return best_rule(self._rules, label, zone_kinds)

    def mapping_table(self) -> list[dict[str, Any]]:
        """Label and zone → scenario, for the API documentation.

        One row per (label, zone) named by a camera rule of the catalog. ``scenario`` is what
        an object of that label in that zone reports (zone ``any``: anywhere in view where no
        more specific row applies), ``None`` where no rule can fire on one tracked object.
        ``note`` says which other scenarios match and why they lose, or why a rule cannot fire.

        Returns:
            Rows ``{"label", "zone", "scenario", "name_zh", "name_en", "dwell_s", "min_score", "note"}``,
            sorted by label then zone.
        """
        pairs: dict[tuple[str, str], list[ScenarioSpec]] = {}
        for spec in self._rules:
            assert spec.camera is not None
            for label in spec.camera.labels:
                pairs.setdefault((label, spec.camera.zone), []).append(spec)
        rows = []
        for (label, zone), named in sorted(pairs.items()):
            chosen = self.scenario_for(label, () if zone == "any" else (zone,))
            notes = []
            for spec in named:
                assert spec.camera is not None
                if spec is chosen:
                    continue
                if spec.camera.min_count > 1:
                    notes.append(f"{spec.code} needs {spec.camera.min_count} objects at once; a Frigate event "
                                 "tracks one object")
                elif chosen is not None:
                    notes.append(f"{spec.code} also matches; {chosen.code} is more specific")
            if chosen is not None and chosen not in named:
                notes.append(f"{chosen.code} applies through its zone 'any' rule")
            rows.append({
                "label": label, "zone": zone,
                "scenario": chosen.code if chosen else None,
                "name_zh": chosen.name_zh if chosen else None,
                "name_en": chosen.name_en if chosen else None,
                "dwell_s": chosen.camera.dwell_s if chosen and chosen.camera else None,
                "min_score": self.min_score,
                "note": "; ".join(notes),
            })
        return rows

    # --- ingestion --------------------------------------------------------------------------------------
    def ingest_with_reason(self, payload: Any) -> tuple[dict[str, Any] | None, str]:
        """:meth:`ingest` and why nothing was reported (one answer: what a shard actor returns)."""
        body = self.ingest(payload)
        return body, self.last_reason

    def ingest(self, payload: Mapping[str, Any]) -> dict[str, Any] | None:
        """Turn one Frigate event message into a report body, or ``None``.

        Args:
            payload: The parsed JSON of a ``frigate/events`` message.

        Returns:
            The body for :meth:`actors.brain.Brain.create_event` (``scenario``, ``lon``,
            ``lat``, ``source`` ``camera``, ``external_id`` ``frigate:<id>``,
            ``description``), or ``None`` when the object is a false positive, scores too
            low, matches no scenario or has not stayed long enough; :attr:`last_reason`
            says which.

        Raises:
            ValidationError: a missing or malformed field (dotted path, e.g. ``after.label``),
                an unknown camera, or a camera of another shard.
        """
        self.last_reason = ""
        try:
            msg = _parse(payload)
        except ValidationError as err:
            self.last_reason = f"rejected: {err}"
            raise
        camera = self.cameras.get(msg.camera)
        if camera is None:
            if msg.camera in self._all_ids:
                reason = f"camera '{msg.camera}' belongs to another shard (this one holds {len(self.cameras)} cameras)"
            else:
                reason = f"unknown camera '{msg.camera}' in district '{self.district.name}'"
            self.last_reason = f"rejected: after.camera: {reason}"
            raise ValidationError("after.camera", reason)
        tag = f"frigate:{msg.id} ({msg.camera} {msg.label})"
        if msg.false_positive:
            self.last_reason = f"{tag}: marked false positive"
            return None
        if msg.top_score < self.min_score:
            self.last_reason = f"{tag}: top score {msg.top_score:.2f} below the threshold {self.min_score:.2f}"
            return None
        kinds = _zone_kinds(msg.current_zones, msg.camera)
        spec = self.scenario_for(msg.label, kinds)
        if spec is None:
            where = ", ".join(sorted(kinds)) if kinds else "no known zone"
            self.last_reason = f"{tag}: no scenario for label '{msg.label}' in {where}"
            return None
        rule = spec.camera
        assert rule is not None
        until = msg.end_time if (msg.type == "end" and msg.end_time is not None) else msg.frame_time
        dwell = until - msg.start_time
        if not dwell_met(spec, dwell):
            self.last_reason = (f"{tag}: {spec.code} needs {rule.dwell_s:g} s in zone '{rule.zone}', "
                                f"seen for {dwell:.0f} s so far")
            return None
        zone = rule.zone if rule.zone != "any" else None
        lon, lat = self._position(camera, zone)
        where = f"zone {zone}" if zone else (f"zone {', '.join(sorted(kinds))}" if kinds else "view")
        what = msg.label + (f" ({msg.sub_label})" if msg.sub_label else "")
        self.last_reason = f"{tag}: reported {spec.code} after {dwell:.0f} s"
        return {
            "scenario": spec.code,
            "lon": lon,
            "lat": lat,
            "source": Source.CAMERA.value,
            "external_id": f"frigate:{msg.id}",
            "description": f"{msg.camera} saw {what} in {where} for {dwell:.0f} s (score {msg.top_score:.2f})",
        }

    def _position(self, camera: Camera, zone_kind: str | None) -> tuple[float, float]:
        """Where to report: the centroid of the camera's zone of that kind if it has one inside
        the district, else the camera itself."""
        x, y = camera.x, camera.y
        if zone_kind is not None:
            for z in camera.zones:
                if z.kind == zone_kind and not z.geometry.is_empty:
                    c = z.geometry.centroid
                    if self.district.contains(float(c.x), float(c.y)):
                        x, y = float(c.x), float(c.y)
                    break
        lon, lat = self.district.projection.to_lonlat(x, y)
        return round(float(lon), 7), round(float(lat), 7)


# --- parsing --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Message:
    """The fields of a Frigate event message that the mapping uses, checked."""

    type: str
    id: str
    camera: str
    label: str
    sub_label: str | None
    top_score: float
    false_positive: bool
    start_time: float
    end_time: float | None
    frame_time: float
    current_zones: tuple[str, ...]


def _parse(payload: Any) -> _Message:
    if not isinstance(payload, Mapping):
        raise ValidationError("payload", f"must be a JSON object, got {_kind(payload)}")
    mtype = payload.get("type")
    if mtype is None:
        raise ValidationError("type", f"is required; one of {', '.join(MESSAGE_TYPES)}")
    if not isinstance(mtype, str) or mtype not in MESSAGE_TYPES:
        raise ValidationError("type", f"must be one of {', '.join(MESSAGE_TYPES)}, got {mtype!r}")
    if "after" not in payload:
        raise ValidationError("after", "is required (the tracked object's state)")
    after = payload["after"]
    if not isinstance(after, Mapping):
        raise ValidationError("after", f"must be an object, got {_kind(after)}")
    before = payload.get("before")
    if before is not None and not isinstance(before, Mapping):
        raise ValidationError("before", f"must be an object or null, got {_kind(before)}")

    oid = _string(after, "id")
    if len(oid) > MAX_ID_LENGTH:
        raise ValidationError("after.id", f"must be at most {MAX_ID_LENGTH} characters")
    if before is not None and "id" in before and before["id"] != oid:
        raise ValidationError("before.id", f"must equal after.id '{oid}', got {before['id']!r}")
    camera = _string(after, "camera")
    label = _string(after, "label")
    sub_label = _sub_label(after)
    score = _number(after, "score", lo=0.0, hi=1.0)
    top_score = _number(after, "top_score", lo=0.0, hi=1.0)
    if top_score < score:
        raise ValidationError("after.top_score", f"must be >= after.score ({score}), got {top_score}")
    false_positive = _boolean(after, "false_positive")
    if "stationary" in after:
        _boolean(after, "stationary")
    start = _number(after, "start_time", lo=0.0)
    frame = _number(after, "frame_time", lo=0.0)
    if frame < start:
        raise ValidationError("after.frame_time", f"must not be before after.start_time ({start}), got {frame}")
    end = _number(after, "end_time", lo=0.0, nullable=True) if "end_time" in after else None
    if end is not None and end < start:
        raise ValidationError("after.end_time", f"must not be before after.start_time ({start}), got {end}")
    if mtype == "end" and end is None:
        raise ValidationError("after.end_time", "is required on an 'end' message")
    current = _strings(after, "current_zones")
    _strings(after, "entered_zones")
    for name in ("box", "region"):
        if name in after:
            _box(after, name)
    return _Message(type=mtype, id=oid, camera=camera, label=label, sub_label=sub_label, top_score=top_score,
                    false_positive=false_positive, start_time=start, end_time=end, frame_time=frame,
                    current_zones=current)


def _kind(v: Any) -> str:
    """A JSON type name for error messages."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, Mapping):
        return "object"
    if isinstance(v, (list, tuple)):
        return "array"
    return type(v).__name__


def _required(obj: Mapping[str, Any], name: str) -> Any:
    if name not in obj:
        raise ValidationError(f"after.{name}", "is required")
    return obj[name]


def _string(obj: Mapping[str, Any], name: str) -> str:
    v = _required(obj, name)
    if not isinstance(v, str):
        raise ValidationError(f"after.{name}", f"must be a string, got {_kind(v)}")
    if not v.strip():
        raise ValidationError(f"after.{name}", "must not be empty")
    return v


def _number(obj: Mapping[str, Any], name: str, *, lo: float | None = None, hi: float | None = None,
            nullable: bool = False) -> Any:
    v = _required(obj, name)
    if v is None and nullable:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValidationError(f"after.{name}", f"must be a number{' or null' if nullable else ''}, got {_kind(v)}")
    if not math.isfinite(v):
        raise ValidationError(f"after.{name}", f"must be finite, got {v}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = f"[{lo:g}, {hi:g}]" if hi is not None else f">= {lo:g}"
        raise ValidationError(f"after.{name}", f"must be {'in ' if hi is not None else ''}{rng}, got {v}")
    return float(v)


def _boolean(obj: Mapping[str, Any], name: str) -> bool:
    v = _required(obj, name)
    if not isinstance(v, bool):
        raise ValidationError(f"after.{name}", f"must be true or false, got {_kind(v)}")
    return v


def _strings(obj: Mapping[str, Any], name: str) -> tuple[str, ...]:
    v = _required(obj, name)
    if not isinstance(v, (list, tuple)):
        raise ValidationError(f"after.{name}", f"must be an array of strings, got {_kind(v)}")
    for i, item in enumerate(v):
        if not isinstance(item, str):
            raise ValidationError(f"after.{name}[{i}]", f"must be a string, got {_kind(item)}")
    return tuple(v)


def _box(obj: Mapping[str, Any], name: str) -> None:
    v = obj[name]
    if not isinstance(v, (list, tuple)) or len(v) != 4:
        raise ValidationError(f"after.{name}", f"must be an array [x1, y1, x2, y2], got {_kind(v)}"
                              + (f" of {len(v)} items" if isinstance(v, (list, tuple)) else ""))
    for i, item in enumerate(v):
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item):
            raise ValidationError(f"after.{name}[{i}]", f"must be a finite number, got {_kind(item)}")


def _sub_label(obj: Mapping[str, Any]) -> str | None:
    """Frigate ≥ 0.13 sends ``[name, score]``, older versions a string; both may be null."""
    v = obj.get("sub_label")
    if v is None:
        return None
    if isinstance(v, str):
        return v or None
    if isinstance(v, (list, tuple)):
        if len(v) != 2 or not isinstance(v[0], str):
            raise ValidationError("after.sub_label", "must be null, a string or [name, score]")
        if isinstance(v[1], bool) or not isinstance(v[1], (int, float)):
            raise ValidationError("after.sub_label[1]", f"must be a number, got {_kind(v[1])}")
        return v[0] or None
    raise ValidationError("after.sub_label", f"must be null, a string or [name, score], got {_kind(v)}")


def _zone_kinds(zones: Sequence[str], camera_id: str) -> set[str]:
    """Zone kinds of Frigate zone names (``no_parking`` or ``K0001_no_parking``); others are ignored."""
    prefix = f"{camera_id}_"
    kinds = set()
    for name in zones:
        kind = name[len(prefix):] if name.startswith(prefix) else name
        if kind in ZONE_KINDS and kind != "any":
            kinds.add(kind)
    return kinds


__all__ = ["DEFAULT_MIN_SCORE", "MESSAGE_TYPES", "CameraShard"]
