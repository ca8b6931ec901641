"""Frigate camera events → street-brain reports.

:class:`CameraShard` reads a ``frigate/events`` message as Frigate means it
(:func:`actors.frigate.parse_message`), names its camera and zones in the twin's terms
(:class:`actors.frigate.FrigateMap`: the scenario's ``frigate.toml``, else the conventions),
maps the object's label and zones to a catalog scenario through the scenarios' camera rules
(:class:`twin.catalog.CameraRule`), applies the rule's dwell time and a score threshold, and
returns the body of :meth:`actors.brain.Brain.create_event`, or ``None`` when nothing is to be
reported.

Conventions:

* **Names.** A Frigate camera is the twin's camera of the same id (``K0001``) unless
  ``frigate.toml`` maps its name; a Frigate zone is the zone kind of its name (``no_parking``,
  ``K0001_no_parking``) unless a table maps it (:mod:`actors.frigate`). A zone that maps to
  nothing is named in the answer's reason and logged once per camera and zone (and counted in
  :attr:`CameraShard.unmapped_zones`), never silently dropped. A rule whose zone is ``any``
  applies wherever the object is in the view, in a zone or not.
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
* **Score.** ``after.top_score`` (Frigate's best median score of the track, what Frigate
  itself judges tracks by) must reach :attr:`CameraShard.min_score`; ``after.score`` (one
  frame's) is not used.
* **Deduplication.** The body's ``external_id`` is ``frigate:<after.id>``; the brain turns a
  second report with the same camera external id into the first event, so every message of
  a track can be passed on without state here, and a message delivered twice is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from actors.frigate import MESSAGE_TYPES, FrigateMap, describe_zones, frigate_map_of, parse_message
from twin.assets import Camera
from twin.catalog import ScenarioSpec, Source
from twin.district import District
from twin.errors import ValidationError
from twin.vision import best_rule, camera_rules, dwell_met

log = logging.getLogger("streetbrain.frigate")

#: Default minimum ``top_score`` of a track before it is reported.
DEFAULT_MIN_SCORE = 0.5

#: One message's outcome: the report body (or ``None``), why (not), and the twin's camera id
#: (``None`` when the message was refused).
Outcome = tuple[dict[str, Any] | None, str, str | None]


class CameraShard:
    """The cameras of one shard and the rules that turn their Frigate events into reports.

    Args:
        district: The district whose cameras and catalog are used.
        camera_ids: Ids of the cameras this shard serves; ``None`` for every camera. May be
            empty (a group of areas without cameras): every message is then refused.
        min_score: Minimum ``top_score`` (0-1) of a track before it is reported.
        names: Frigate camera and zone names (default: the scenario's ``frigate.toml``, else
            the conventions; :func:`actors.frigate.frigate_map_of`).

    Raises:
        ValidationError: an unknown camera id, an id that is not a string, or a score
            outside [0, 1].
    """

    def __init__(self, district: District, camera_ids: Iterable[str] | None = None, *,
                 min_score: float = DEFAULT_MIN_SCORE, names: FrigateMap | None = None) -> None:
        self.district = district
        self.names = names if names is not None else frigate_map_of(district)
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
        #: The twin's camera id of the last message (``None``: it was refused).
        self.last_camera: str | None = None
        self._rules = camera_rules(district.catalog)
        #: (Frigate camera, zone name) → messages naming that zone that maps to nothing.
        self.unmapped_zones: dict[tuple[str, str], int] = {}

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
    def ingest_with_reason(self, payload: Any) -> Outcome:
        """:meth:`ingest`, why nothing was reported and the twin's camera id, as one answer (what a
        shard actor returns; a refused message raises)."""
        body = self.ingest(payload)
        return body, self.last_reason, self.last_camera

    def ingest_many(self, payloads: Sequence[Any]) -> list[Outcome | Exception]:
        """:meth:`ingest_with_reason` for several messages (one shard call for a batch); a refused
        message's error in its place, the others unaffected."""
        out: list[Outcome | Exception] = []
        for payload in payloads:
            try:
                out.append(self.ingest_with_reason(payload))
            except ValidationError as exc:
                out.append(exc)
        return out

    def ingest(self, payload: Mapping[str, Any]) -> dict[str, Any] | None:
        """Turn one Frigate event message into a report body, or ``None``.

        Args:
            payload: The parsed JSON of a ``frigate/events`` message.

        Returns:
            The body for :meth:`actors.brain.Brain.create_event` (``scenario``, ``lon``,
            ``lat``, ``source`` ``camera``, ``external_id`` ``frigate:<id>``,
            ``description``), or ``None`` when the object is a false positive, scores too
            low, matches no scenario or has not stayed long enough; :attr:`last_reason`
            says which (and names the zones that map to nothing), :attr:`last_camera` is the
            twin's camera id.

        Raises:
            ValidationError: a missing or malformed field (dotted path, e.g. ``after.label``),
                an unknown camera, or a camera of another shard.
        """
        self.last_reason = ""
        self.last_camera = None
        try:
            msg = parse_message(payload)
        except ValidationError as err:
            self.last_reason = f"rejected: {err}"
            raise
        cid = self.names.camera_id(msg.camera)
        camera = self.cameras.get(cid)
        if camera is None:
            named = f"camera '{msg.camera}'" + (f" (the twin's {cid})" if cid != msg.camera else "")
            if cid in self._all_ids:
                reason = f"{named} belongs to another shard (this one holds {len(self.cameras)} cameras)"
            else:
                table = self.names.source or "the scenario's frigate.toml"
                reason = (f"unknown {named}: no camera of that id in district '{self.district.name}', and no "
                          f"[cameras.{msg.camera}] table in {table}")
            self.last_reason = f"rejected: after.camera: {reason}"
            raise ValidationError("after.camera", reason)
        self.last_camera = cid
        kinds, unmapped = self.names.zone_kinds(msg.camera, msg.current_zones)
        note = ""
        if unmapped:
            note = (f"; ignored zone(s) {describe_zones(unmapped)} of camera '{msg.camera}': not a zone kind, "
                    f"map them in frigate.toml")
            for name in unmapped:
                key = (msg.camera, name)
                seen = self.unmapped_zones.get(key, 0)
                self.unmapped_zones[key] = seen + 1
                if not seen:
                    log.warning("frigate: zone '%s' of camera '%s' maps to no zone kind and is ignored; map it in "
                                "%s ([cameras.%s] zones = { %s = \"<kind>\" } or \"ignore\")", name, msg.camera,
                                self.names.source or "the scenario's frigate.toml", msg.camera, name)
        tag = f"frigate:{msg.id} ({cid} {msg.label})"
        if msg.false_positive:
            self.last_reason = f"{tag}: marked false positive{note}"
            return None
        if msg.top_score < self.min_score:
            self.last_reason = (f"{tag}: top score {msg.top_score:.2f} below the threshold {self.min_score:.2f}"
                                f"{note}")
            return None
        spec = self.scenario_for(msg.label, kinds)
        if spec is None:
            where = ", ".join(sorted(kinds)) if kinds else "no known zone"
            self.last_reason = f"{tag}: no scenario for label '{msg.label}' in {where}{note}"
            return None
        rule = spec.camera
        assert rule is not None
        until = msg.end_time if (msg.type == "end" and msg.end_time is not None) else msg.frame_time
        dwell = until - msg.start_time
        if not dwell_met(spec, dwell):
            self.last_reason = (f"{tag}: {spec.code} needs {rule.dwell_s:g} s in zone '{rule.zone}', "
                                f"seen for {dwell:.0f} s so far{note}")
            return None
        zone = rule.zone if rule.zone != "any" else None
        lon, lat = self._position(camera, zone)
        where = f"zone {zone}" if zone else (f"zone {', '.join(sorted(kinds))}" if kinds else "view")
        what = msg.label + (f" ({msg.sub_label})" if msg.sub_label else "")
        self.last_reason = f"{tag}: reported {spec.code} after {dwell:.0f} s{note}"
        return {
            "scenario": spec.code,
            "lon": lon,
            "lat": lat,
            "source": Source.CAMERA.value,
            "external_id": f"frigate:{msg.id}",
            "description": f"{cid} saw {what} in {where} for {dwell:.0f} s (score {msg.top_score:.2f})",
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


__all__ = ["DEFAULT_MIN_SCORE", "MESSAGE_TYPES", "CameraShard", "Outcome"]
