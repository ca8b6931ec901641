"""Behaviour recognition: the catalog's camera rules applied to what a camera sees.

The catalog's camera rules (:class:`twin.catalog.CameraRule`: labels, zone kind, dwell,
``min_count``) and the cameras' ground zones (:class:`twin.assets.Zone`) are the only
definition of what a camera reports. Two kinds of input reach them through this module:

* **Frigate events** (one tracked object, its zones and how long it has been seen): the
  Frigate mapping (:mod:`actors.cameras`) asks :func:`best_rule` which scenario an object
  of a label in some zones reports and :func:`dwell_met` whether it has stayed long enough.
* **Detections on frames** (every object in each frame, placed on the ground by the camera's
  calibration): :class:`RuleEngine` keeps the timers and raises :class:`Alarm` s.

How the timers work, frame by frame:

* **Single objects** (``min_count`` 1: a parked car, goods on the pavement, a stall). Each
  sighting goes to the best rule for its label and zones (:func:`best_rule`, the same tie
  rules as Frigate's), and to the *anchor* of that rule nearest to it on the ground
  (within ``anchor_m``), or starts one. The anchor's timer runs from its first sighting, so
  it is tied to a place, not to a tracker's ID: a passing truck that steals a parked car's
  ID does not restart the car's timer. A tracked object feeds anchors only once it has
  stayed within ``anchor_m`` of one spot for ``still_s`` (and then from when it got there),
  so traffic streaming through a no-parking zone never looks parked. An anchor not seen for
  ``grace_s`` ends (*exit inertia*: a lorry passing in front of a parked car for a few
  seconds does not reset it). Untracked sightings feed anchors at once.
* **Counts** (``min_count`` > 1: a crowd at a venue's entrance, rows of bikes, congestion).
  The objects of the rule's labels in its zone are counted each frame; the timer runs while
  the count stays at ``min_count`` or more, with the same exit inertia.

An anchor or count whose timer reaches the rule's dwell fires one alarm (``start``), and
one more (``end``) when it ends. Everything is a pure function of the frames given: no
clock, no randomness.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from shapely import contains_xy
from shapely.geometry import Polygon

from twin.assets import Camera
from twin.catalog import ScenarioSpec, Source


def camera_rules(specs: Iterable[ScenarioSpec]) -> list[ScenarioSpec]:
    """The scenarios cameras discover (a camera rule, and ``camera`` among their sources), in
    catalog order."""
    return [s for s in specs if s.camera is not None and Source.CAMERA in s.sources]


def best_rule(rules: Sequence[ScenarioSpec], label: str, zone_kinds: Iterable[str], *,
              single: bool = True) -> ScenarioSpec | None:
    """The scenario an object of ``label`` in zones of ``zone_kinds`` reports, if any.

    Ties: a rule naming one of the object's zones beats a zone ``any`` rule, then fewer
    labels (the more specific), then the more severe, then catalog order. So a car in a
    no-parking zone is illegal parking (rule ``car``) rather than a blocked fire lane (rule
    ``car, truck``).

    Args:
        rules: Scenarios with camera rules (:func:`camera_rules`).
        label: The object's class.
        zone_kinds: The zone kinds it is in (may be empty).
        single: Only rules one object can meet (``min_count`` 1).
    """
    kinds = set(zone_kinds)
    best: tuple[tuple[bool, int, int, int], ScenarioSpec] | None = None
    for order, spec in enumerate(rules):
        rule = spec.camera
        if rule is None or label not in rule.labels or (single and rule.min_count > 1):
            continue
        if rule.zone != "any" and rule.zone not in kinds:
            continue
        key = (rule.zone == "any", len(rule.labels), -spec.severity.rank, order)
        if best is None or key < best[0]:
            best = (key, spec)
    return None if best is None else best[1]


def with_dwell(specs: Iterable[ScenarioSpec], dwell_s: Mapping[str, float]) -> list[ScenarioSpec]:
    """The scenarios with some camera rules' dwell replaced (scenario code → seconds): a
    camera of its own, or short synthetic videos."""
    return [replace(s, camera=replace(s.camera, dwell_s=float(dwell_s[s.code])))
            if s.camera is not None and s.code in dwell_s else s for s in specs]


def dwell_met(spec: ScenarioSpec, seen_s: float) -> bool:
    """Whether an object seen for ``seen_s`` seconds meets the rule's dwell."""
    assert spec.camera is not None
    return seen_s >= spec.camera.dwell_s


@dataclass(frozen=True)
class Sighting:
    """One object in one frame, placed on the ground.

    Args:
        label: Its class (``car``).
        x: Ground position, metres east (the foot of its box, through the calibration).
        y: Ground position, metres north.
        score: Detector confidence.
        box: Its box in the image, ``x1, y1, x2, y2`` pixels.
        track: Tracker id, if a tracker follows it.
    """

    label: str
    x: float
    y: float
    score: float = 1.0
    box: tuple[float, float, float, float] | None = None
    track: int | str | None = None


@dataclass(frozen=True)
class Alarm:
    """A rule met (``start``) or over (``end``) at one camera.

    Attributes:
        kind: ``start`` when the dwell is reached, ``end`` when the objects are gone.
        scenario: The catalog scenario code.
        category: Its category.
        camera_id: The camera.
        key: Identifies the anchor or count across its ``start`` and ``end``.
        started_at: When the objects were first seen (the dwell's start).
        at: When the alarm was raised (the dwell reached, or the end seen).
        ended_at: For ``end``: the last time the objects were seen.
        confidence: Mean detector score of the sightings that fed it.
        count: Objects at the moment it fired (1 for single objects).
        x: Ground position of the objects (their mean), metres east.
        y: Metres north.
        ground: The ground region: the objects' spread, within the rule's zone.
        box: The image region: the union of their boxes, if known.
        labels: The classes seen.
    """

    kind: str
    scenario: str
    category: str
    camera_id: str
    key: str
    started_at: float
    at: float
    confidence: float
    count: int
    x: float
    y: float
    ground: Polygon = field(repr=False, compare=False)
    box: tuple[float, float, float, float] | None = None
    labels: tuple[str, ...] = ()
    ended_at: float | None = None


@dataclass
class _Timer:
    """An anchor (one place) or a count (one rule's zone): when it started, when last seen."""

    key: str
    spec: ScenarioSpec
    started: float
    last: float
    x: float
    y: float
    scores: list[float]
    points: list[tuple[float, float]]
    box: tuple[float, float, float, float] | None
    labels: set[str]
    count: int = 1
    fired: bool = False


def _union(a: tuple[float, float, float, float] | None, b: tuple[float, float, float, float] | None
           ) -> tuple[float, float, float, float] | None:
    if a is None or b is None:
        return a or b
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


class RuleEngine:
    """The camera rules of one camera over the frames it sees (see the module docstring).

    Args:
        camera: The camera (its zones, on the ground).
        specs: The catalog's scenarios (those with camera rules are used).
        min_score: Sightings below this confidence are ignored.
        anchor_m: A sighting this close to an anchor on the ground belongs to it.
        grace_s: Exit inertia: an anchor or count survives this long unseen.
        still_s: A tracked object counts as standing once it has stayed within ``anchor_m``
            of one spot this long.
    """

    def __init__(self, camera: Camera, specs: Iterable[ScenarioSpec], *, min_score: float = 0.3,
                 anchor_m: float = 2.0, grace_s: float = 20.0, still_s: float = 4.0) -> None:
        if anchor_m <= 0 or grace_s < 0 or still_s < 0:
            raise ValueError("anchor_m: must be > 0; grace_s, still_s: must be >= 0")
        self.camera = camera
        self.rules = camera_rules(specs)
        self.min_score = min_score
        self.anchor_m, self.grace_s, self.still_s = anchor_m, grace_s, still_s
        self._zones = [(z.kind, z.geometry) for z in camera.zones if not z.geometry.is_empty]
        self._fov = camera.fov
        self._anchors: dict[str, list[_Timer]] = {}
        self._counts: dict[str, _Timer] = {}
        self._tracks: dict[int | str, tuple[float, float, float, float]] = {}  # track → (x, y, since, last)
        self._serial = 0
        self.now = -math.inf

    def zones_at(self, x: float, y: float) -> set[str]:
        """Zone kinds of this camera at a ground point."""
        return {kind for kind, geom in self._zones if bool(contains_xy(geom, x, y))}

    def standing_since(self, s: Sighting, t: float) -> float | None:
        """Since when ``s`` has stood where it is: ``t`` for an untracked sighting; for a
        tracked one, when its track came within ``anchor_m`` of this spot, or ``None`` while
        that is less than ``still_s`` ago (it may be passing through)."""
        if s.track is None:
            return t
        x, y, since, _last = self._tracks.get(s.track, (s.x, s.y, t, t))
        if math.hypot(s.x - x, s.y - y) > self.anchor_m:
            x, y, since = s.x, s.y, t  # moved on: a new spot
        self._tracks[s.track] = (x, y, since, t)
        return since if t - since >= self.still_s else None

    def observe(self, t: float, sightings: Sequence[Sighting]) -> list[Alarm]:
        """Take one frame's sightings at time ``t`` (seconds, never decreasing); the alarms it raises.

        Raises:
            ValueError: ``t`` is before the previous frame.
        """
        if t < self.now:
            raise ValueError(f"t: frames must come in time order ({t} after {self.now})")
        self.now = t
        out: list[Alarm] = []
        seen = [s for s in sightings if s.score >= self.min_score]
        where = [self.zones_at(s.x, s.y) if bool(contains_xy(self._fov, s.x, s.y)) else None for s in seen]
        # single objects: anchors
        for s, kinds in zip(seen, where):
            if kinds is None:
                continue
            since = self.standing_since(s, t)
            spec = best_rule(self.rules, s.label, kinds)
            if spec is None or since is None:
                continue
            anchors = self._anchors.setdefault(spec.code, [])
            near = min(anchors, key=lambda a: math.hypot(a.x - s.x, a.y - s.y), default=None)
            if near is None or math.hypot(near.x - s.x, near.y - s.y) > self.anchor_m:
                self._serial += 1
                near = _Timer(f"{self.camera.id}:{spec.code}:{self._serial}", spec, since, t, s.x, s.y, [], [], None,
                              set())
                anchors.append(near)
            near.last = t
            near.scores.append(s.score)
            near.points.append((s.x, s.y))
            near.box = _union(near.box, s.box)
            near.labels.add(s.label)
            n = len(near.points)
            near.x += (s.x - near.x) / n  # the anchor is the mean of its sightings: it does not drift
            near.y += (s.y - near.y) / n
        # counts
        for spec in self.rules:
            rule = spec.camera
            assert rule is not None
            if rule.min_count <= 1:
                continue
            inside = [s for s, kinds in zip(seen, where)
                      if kinds is not None and s.label in rule.labels and (rule.zone == "any" or rule.zone in kinds)]
            if len(inside) < rule.min_count:
                continue
            timer = self._counts.get(spec.code)
            if timer is None:
                self._serial += 1
                timer = self._counts[spec.code] = _Timer(f"{self.camera.id}:{spec.code}:{self._serial}", spec, t, t,
                                                         0.0, 0.0, [], [], None, set())
            timer.last, timer.count = t, len(inside)
            timer.scores.extend(s.score for s in inside)
            timer.points = [(s.x, s.y) for s in inside]
            timer.x = sum(p[0] for p in timer.points) / len(inside)
            timer.y = sum(p[1] for p in timer.points) / len(inside)
            timer.box = None
            for s in inside:
                timer.box = _union(timer.box, s.box)
            timer.labels.update(s.label for s in inside)
        # fire, end
        for code, anchors in list(self._anchors.items()):
            keep = []
            for a in anchors:
                out.extend(self._step(a, t))
                if t - a.last <= self.grace_s:
                    keep.append(a)
            self._anchors[code] = keep
        for code, timer in list(self._counts.items()):
            out.extend(self._step(timer, t))
            if t - timer.last > self.grace_s:
                del self._counts[code]
        for tr in [k for k, v in self._tracks.items() if t - v[3] > self.grace_s]:
            del self._tracks[tr]  # tracks gone
        return out

    def _step(self, timer: _Timer, t: float) -> list[Alarm]:
        if t - timer.last > self.grace_s:
            return [self._alarm("end", timer, t)] if timer.fired else []
        if not timer.fired and timer.last == t and dwell_met(timer.spec, t - timer.started):
            timer.fired = True
            return [self._alarm("start", timer, t)]
        return []

    def _alarm(self, kind: str, timer: _Timer, t: float) -> Alarm:
        from shapely.geometry import MultiPoint

        spread = MultiPoint(timer.points).convex_hull.buffer(1.0) if timer.points else _pt_xy(timer.x, timer.y)
        zone = next((g for k, g in self._zones if k == timer.spec.camera.zone), None) if timer.spec.camera else None
        ground = spread.intersection(zone) if zone is not None and spread.intersects(zone) else spread
        return Alarm(kind, timer.spec.code, timer.spec.category, self.camera.id, timer.key, timer.started, t,
                     sum(timer.scores) / len(timer.scores) if timer.scores else 0.0, timer.count, timer.x, timer.y,
                     ground, timer.box, tuple(sorted(timer.labels)), timer.last if kind == "end" else None)

    def flush(self, t: float) -> list[Alarm]:
        """End everything still open at ``t`` (the end of a video): the ``end`` alarms of
        fired timers."""
        out = [self._alarm("end", a, t) for anchors in self._anchors.values() for a in anchors if a.fired]
        out += [self._alarm("end", c, t) for c in self._counts.values() if c.fired]
        self._anchors.clear()
        self._counts.clear()
        return out


def _pt_xy(x: float, y: float) -> Polygon:
    from shapely.geometry import Point

    return Point(x, y).buffer(0.5)
