"""Frigate as it speaks: its ``frigate/events`` messages read as Frigate means them, and the
scenario's table of Frigate camera and zone names (``frigate.toml``).

`Frigate <https://frigate.video>`_ publishes one message per change of a tracked object on the
MQTT topic ``frigate/events`` (it has no webhooks: :mod:`api.mqtt` subscribes, or a bridge
posts the same JSON to ``POST /api/v1/ingest/frigate``)::

    {"type": "new" | "update" | "end",
     "before": {...the object's previous state...},
     "after": {"id": "1607123955.475377-mxklsc", "camera": "front_door", "label": "car",
               "sub_label": null, "score": 0.87, "top_score": 0.95, "false_positive": false,
               "start_time": 1607123955.47, "end_time": null, "frame_time": 1607123962.08,
               "current_zones": ["no_parking"], "entered_zones": ["no_parking"], ...}}

What the fields mean, from Frigate's MQTT documentation (0.11 to 0.17) and the code that
writes them (``TrackedObject.to_dict`` in ``frigate/track/tracked_object.py``):

* ``after.score`` is the score of the current frame; ``after.top_score`` is the highest
  *median* of the track's recent scores (Frigate's ``computed_score``), what Frigate judges
  a track by. A frame scoring above that median is normal: ``score > top_score`` is fine.
* ``after.sub_label`` is absent (0.11), null or a string (0.12), or ``[name, score]`` (0.13
  on); the score is null when the sub label was set through Frigate's API without one, and
  both are null once it was cleared.
* ``before`` is the object's previous state (the same ``id``); on a ``new`` message it is the
  state while the track was still a possible false positive.
* ``after.end_time`` is set on the ``end`` message (null or absent before).
* Every other field is Frigate's own and is neither read nor checked here:
  ``snapshot_time`` (to 0.15) or ``snapshot`` (0.16 on, null before the first snapshot),
  ``thumbnail``, ``box``, ``region``, ``area``, ``ratio``, ``stationary``, ``active`` (0.15 on),
  ``motionless_count``, ``position_changes``, ``entered_zones``, ``has_snapshot``, ``has_clip``,
  ``attributes`` and ``current_attributes`` (0.13 on), ``computed_score``, ``pending_loitering``,
  ``max_severity``, ``recognized_license_plate``, estimated speeds, ``path_data``, ... A field
  a new Frigate version adds or reshapes changes nothing here.

The fields that are read are checked, and a bad one is refused naming its dotted path
(``after.top_score``). A message of another Frigate topic (``frigate/reviews``,
``frigate/tracked_object_update``) is refused saying so.

**Names** (:class:`FrigateMap`): Frigate knows cameras and zones by the names in its own
configuration. Without a table, a Frigate camera is named by the twin's camera id
(``K0060``) and a zone by its zone kind (``no_parking``; see :data:`twin.catalog.ZONE_KINDS`),
optionally prefixed by the camera's name (``K0060_no_parking`` or ``K0060-no_parking``). The
scenario's ``frigate.toml`` maps other names::

    [cameras.gate_east]                 # the camera's name in Frigate's config
    camera = "K0060"                    # the twin's camera id
    zones = { no_parking_east = "no_parking", shop_row = "storefront", lawn = "ignore" }

    [zones]                             # zone names shared by every camera
    kerb = "no_parking"
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twin.catalog import ZONE_KINDS
from twin.district import District
from twin.errors import ValidationError

#: Frigate message types.
MESSAGE_TYPES = ("new", "update", "end")

#: Longest Frigate event id accepted (the brain keeps external ids of at most 200 characters).
MAX_ID_LENGTH = 190

#: A zone mapped to this is known and deliberately not used (not reported as unmapped).
IGNORE = "ignore"

#: The file of Frigate names in a scenario folder (beside ``scenario.toml``).
MAP_FILE = "frigate.toml"

#: Zone kinds a Frigate zone can stand for (``any`` is a rule's wildcard, not a zone).
_KINDS = frozenset(ZONE_KINDS - {"any"})


# --- messages ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FrigateObject:
    """What the twin reads of one ``frigate/events`` message, checked.

    Attributes:
        type: ``new``, ``update`` or ``end``.
        id: Frigate's id of the tracked object (``1607123955.475377-mxklsc``).
        camera: The camera's name in Frigate.
        label: The object class (``car``).
        sub_label: The sub label's name (a plate, a face), if any.
        top_score: Frigate's best median score of the track, 0-1.
        false_positive: Frigate still takes the track for a false positive.
        start_time: POSIX seconds of the first detection.
        end_time: POSIX seconds the track ended (``end`` messages), else ``None``.
        frame_time: POSIX seconds of the frame this state is from.
        current_zones: Frigate zone names the object is in now.
    """

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


def parse_message(payload: Any) -> FrigateObject:
    """Read one ``frigate/events`` message (its parsed JSON) as Frigate means it.

    Raises:
        ValidationError: a missing or malformed field that the twin reads, named by its dotted
            path, or a message of another Frigate topic.
    """
    if not isinstance(payload, Mapping):
        raise ValidationError("payload", f"must be a JSON object (a frigate/events message), got {_kind(payload)}")
    mtype = payload.get("type")
    if mtype is None:
        raise ValidationError("type", f"is required; one of {', '.join(MESSAGE_TYPES)}")
    if not isinstance(mtype, str) or mtype not in MESSAGE_TYPES:
        hint = (" (a frigate/tracked_object_update message? the twin reads frigate/events)"
                if isinstance(mtype, str) and "id" in payload and "after" not in payload else "")
        raise ValidationError("type", f"must be one of {', '.join(MESSAGE_TYPES)}, got {mtype!r}{hint}")
    if "after" not in payload:
        raise ValidationError("after", "is required (the tracked object's state)")
    after = payload["after"]
    if not isinstance(after, Mapping):
        raise ValidationError("after", f"must be an object, got {_kind(after)}")
    before = payload.get("before")
    if before is not None and not isinstance(before, Mapping):
        raise ValidationError("before", f"must be an object or null, got {_kind(before)}")
    if "label" not in after and "severity" in after and "data" in after:
        raise ValidationError("after.label", "is required; this is a frigate/reviews message (review items have "
                                             "'severity' and 'data'): send frigate/events messages")

    oid = _string(after, "id")
    if len(oid) > MAX_ID_LENGTH:
        raise ValidationError("after.id", f"must be at most {MAX_ID_LENGTH} characters")
    if before is not None and "id" in before and before["id"] != oid:
        raise ValidationError("before.id", f"must equal after.id '{oid}', got {before['id']!r}")
    camera = _string(after, "camera")
    label = _string(after, "label")
    sub_label = _sub_label(after)
    top_score = _number(after, "top_score", lo=0.0, hi=1.0)
    false_positive = _boolean(after, "false_positive") if after.get("false_positive") is not None else False
    start = _number(after, "start_time", lo=0.0)
    frame = _number(after, "frame_time", lo=0.0)
    if frame < start:
        raise ValidationError("after.frame_time", f"must not be before after.start_time ({start}), got {frame}")
    end = _number(after, "end_time", lo=0.0, nullable=True) if "end_time" in after else None
    if end is not None and end < start:
        raise ValidationError("after.end_time", f"must not be before after.start_time ({start}), got {end}")
    if mtype == "end" and end is None:
        raise ValidationError("after.end_time", "is required on an 'end' message")
    zones = _strings(after, "current_zones")
    return FrigateObject(type=mtype, id=oid, camera=camera, label=label, sub_label=sub_label, top_score=top_score,
                         false_positive=false_positive, start_time=start, end_time=end, frame_time=frame,
                         current_zones=zones)


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


def _sub_label(obj: Mapping[str, Any]) -> str | None:
    """The sub label's name: absent, null, a string, or ``[name or null, score or null]``."""
    v = obj.get("sub_label")
    if v is None:
        return None
    if isinstance(v, str):
        return v or None
    if isinstance(v, (list, tuple)):
        if len(v) != 2:
            raise ValidationError("after.sub_label", f"must be null, a string or [name, score], got an array of "
                                                     f"{len(v)} items")
        name, score = v
        if name is not None and not isinstance(name, str):
            raise ValidationError("after.sub_label[0]", f"must be a string or null, got {_kind(name)}")
        if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
            raise ValidationError("after.sub_label[1]", f"must be a number or null, got {_kind(score)}")
        return name or None
    raise ValidationError("after.sub_label", f"must be null, a string or [name, score], got {_kind(v)}")


# --- names -----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FrigateCamera:
    """One Frigate camera's names in the twin.

    Attributes:
        camera: The twin's camera id.
        zones: Frigate zone name → zone kind (or :data:`IGNORE`), for this camera.
    """

    camera: str
    zones: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FrigateMap:
    """Frigate camera and zone names → the twin's camera ids and zone kinds.

    A name not in a table follows the conventions (see the module): a camera's Frigate name is
    its camera id; a zone's name is its kind, optionally after the camera's name (Frigate's or
    the twin's) and ``_`` or ``-``.

    Attributes:
        cameras: Frigate camera name → its entry.
        zones: Frigate zone name → zone kind (or :data:`IGNORE`), for every camera.
        source: The file the table came from (``""``: none, the conventions only).
    """

    cameras: Mapping[str, FrigateCamera] = field(default_factory=dict)
    zones: Mapping[str, str] = field(default_factory=dict)
    source: str = ""

    def camera_id(self, name: str) -> str:
        """The twin's camera id of the Frigate camera ``name``."""
        entry = self.cameras.get(name)
        return entry.camera if entry is not None else name

    def zone_kinds(self, camera: str, zones: Iterable[str]) -> tuple[set[str], list[str]]:
        """Zone kinds of the Frigate zones ``zones`` of the Frigate camera ``camera``, and the zone
        names that map to nothing (neither in a table nor following the conventions), in order."""
        entry = self.cameras.get(camera)
        own = entry.zones if entry is not None else {}
        cid = entry.camera if entry is not None else camera
        kinds: set[str] = set()
        unmapped: list[str] = []
        for name in zones:
            kind = own.get(name) or self.zones.get(name) or _conventional_kind(name, camera, cid)
            if kind is None:
                if name not in unmapped:
                    unmapped.append(name)
            elif kind != IGNORE:
                kinds.add(kind)
        return kinds, unmapped


def _conventional_kind(name: str, *cameras: str) -> str | None:
    if name in _KINDS:
        return name
    for cam in cameras:
        for sep in "_-":
            prefix = cam + sep
            if name.startswith(prefix) and name[len(prefix):] in _KINDS:
                return name[len(prefix):]
    return None


def frigate_map_from_dict(data: Mapping[str, Any], district: District, *, source: str = "") -> FrigateMap:
    """A :class:`FrigateMap` from the parsed ``frigate.toml``, checked against the district.

    Raises:
        ValidationError: naming ``source``, the field (``cameras.gate_east.zones.kerb``) and the
            reason: an unknown key, a camera id the district does not have, a zone kind that
            does not exist.
    """
    def fail(where: str, reason: str) -> ValidationError:
        return ValidationError(where, reason, source=source or None)

    extra = sorted(set(data) - {"cameras", "zones"})
    if extra:
        raise fail(extra[0], "unknown key; a Frigate table has 'cameras' and 'zones'")
    known = {c.id for c in district.cameras}
    cameras: dict[str, FrigateCamera] = {}
    tables = data.get("cameras", {})
    if not isinstance(tables, Mapping):
        raise fail("cameras", "must be a table of [cameras.<Frigate camera name>] tables")
    for name, table in tables.items():
        where = f"cameras.{name}"
        if not isinstance(table, Mapping):
            raise fail(where, "must be a table (camera = \"<camera id>\", zones = {...})")
        extra = sorted(set(table) - {"camera", "zones"})
        if extra:
            raise fail(f"{where}.{extra[0]}", "unknown key; a camera has 'camera' and 'zones'")
        cid = table.get("camera", name)
        if not isinstance(cid, str):
            raise fail(f"{where}.camera", f"must be a camera id (a string), got {_kind(cid)}")
        if cid not in known:
            missing = "camera" not in table
            raise fail(f"{where}.camera", (f"'{name}' is not a camera of district '{district.name}': give "
                                           "camera = \"<camera id>\"") if missing else
                       f"no camera '{cid}' in district '{district.name}' ({len(known)} cameras, e.g. "
                       f"{', '.join(sorted(known)[:3])})")
        cameras[name] = FrigateCamera(cid, _zone_table(table.get("zones", {}), f"{where}.zones", fail))
    return FrigateMap(cameras=cameras, zones=_zone_table(data.get("zones", {}), "zones", fail), source=source)


def _zone_table(table: Any, where: str, fail: Any) -> dict[str, str]:
    if not isinstance(table, Mapping):
        raise fail(where, "must be a table of Frigate zone name = \"<zone kind>\"")
    out = {}
    for name, kind in table.items():
        if not isinstance(kind, str) or (kind not in _KINDS and kind != IGNORE):
            raise fail(f"{where}.{name}", f"must be a zone kind ({', '.join(sorted(_KINDS))}) or '{IGNORE}', "
                                          f"got {kind!r}")
        out[str(name)] = kind
    return out


def frigate_map_from_file(path: str | Path, district: District) -> FrigateMap:
    """Read a ``frigate.toml`` (see the module).

    Raises:
        ValidationError: naming the file, the field and the reason.
    """
    import tomllib

    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError("(file)", "file not found", source=str(p)) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError("(file)", f"not valid TOML: {exc}", source=str(p)) from None
    return frigate_map_from_dict(data, district, source=str(p))


def frigate_map_of(district: District) -> FrigateMap:
    """The Frigate names of a district: its scenario folder's ``frigate.toml`` if it has one,
    else the conventions alone."""
    src = district.notes.get("source") if isinstance(district.notes, Mapping) else None
    if isinstance(src, str) and src:
        path = Path(src).parent / MAP_FILE
        if path.is_file():
            return frigate_map_from_file(path, district)
    return FrigateMap()


def describe_zones(names: Sequence[str]) -> str:
    """``'a', 'b'`` for a reason text."""
    return ", ".join(f"'{n}'" for n in names)


__all__ = ["IGNORE", "MAP_FILE", "MAX_ID_LENGTH", "MESSAGE_TYPES", "FrigateCamera", "FrigateMap", "FrigateObject",
           "describe_zones", "frigate_map_from_dict", "frigate_map_from_file", "frigate_map_of", "parse_message"]
