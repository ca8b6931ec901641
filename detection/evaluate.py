"""How well the rules fire: event precision, recall and alarm timing on synthetic video.

Each test sequence is one district camera's synthetic video (:mod:`detection.synthetic`)
with a known answer:

* **positive**: an object of the rule stands in the rule's zone from ``t0`` for longer than
  the dwell, so the alarm is due at ``t0 + dwell``;
* **negative**: the same object stands there for less than the dwell (a delivery stop), so
  no alarm is due.

Traffic and people pass through every sequence. The pipeline (detector → tracks → rules)
runs on the frames; an alarm of the rule counts as a hit when it fires within ``tolerance_s``
(10 s, as in the i-LIDS parked-vehicle benchmark) of when it was due, and as a false alarm
otherwise. Precision = hits / alarms, recall = hits / positives, and the timing error is the
mean |alarm − due| of the hits.

Dwell times are shortened (``dwell_s``) to keep the sequences short; the timing error is in
seconds of video either way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from shapely.geometry import Point

from detection.base import Detector
from detection.centernet import tracker
from detection.pipeline import Pipeline
from detection.synthetic import Actor, SyntheticCamera
from twin.assets import Camera
from twin.calibration import pinhole
from twin.district import District
from twin.vision import with_dwell

#: Rules evaluated, with the object that breaks them.
RULES = {"TR01": "car", "CM01": "goods"}


@dataclass(frozen=True)
class Case:
    """One test sequence."""

    camera: Camera
    scenario: str
    positive: bool
    t0: float
    stay: float
    x: float
    y: float
    seconds: float
    seed: int


def cases(district: District, *, seed: int, per_rule: int = 4, dwell_s: float = 30.0) -> list[Case]:
    """``per_rule`` positives and as many negatives per rule, at cameras whose rule zone lies
    12-30 m in front of them (seed ``seed``)."""
    rng = np.random.default_rng(seed)
    out = []
    for code, _kind in RULES.items():
        zone_kind = district.catalog[code].camera.zone  # type: ignore[union-attr]
        spots = []
        for cam in district.cameras:
            ring = Point(cam.x, cam.y).buffer(30.0).difference(Point(cam.x, cam.y).buffer(12.0)).intersection(cam.fov)
            for z in cam.zones:
                if z.kind == zone_kind:
                    area = z.geometry.intersection(ring)
                    if area.area > 6:
                        spots.append((cam, area))
        if not spots:
            continue
        for k in range(2 * per_rule):
            cam, area = spots[int(rng.integers(len(spots)))]
            p = area.representative_point()
            positive = k < per_rule
            t0 = float(rng.uniform(3.0, 10.0))
            stay = dwell_s + float(rng.uniform(15.0, 25.0)) if positive else float(rng.uniform(0.3, 0.6)) * dwell_s
            out.append(Case(cam, code, positive, t0, stay, float(p.x), float(p.y), t0 + dwell_s + 25.0,
                            int(rng.integers(1 << 30))))
    return out


def run_case(case: Case, detector: Detector, district: District, *, dwell_s: float, fps: float = 1.0,
             width: int = 576, height: int = 384) -> list[tuple[str, float]]:
    """The alarms ``(scenario, seconds into the video)`` the pipeline raised on a case."""
    h = math.radians(case.camera.heading_deg)
    rng = np.random.default_rng(case.seed)
    actors = [Actor(RULES[case.scenario], case.x, case.y, case.t0, case.t0 + case.stay, heading=h,
                    seed=int(rng.integers(1 << 30)))]
    for j in range(2):  # traffic and a pedestrian passing
        start = float(rng.uniform(0, case.seconds * 0.6))
        cx, cy = case.camera.x - 30 * math.sin(h), case.camera.y - 30 * math.cos(h)
        actors.append(Actor("car", cx + 2.5 * math.cos(h), cy - 2.5 * math.sin(h), start, start + 15, heading=h,
                            vx=7 * math.sin(h), vy=7 * math.cos(h), seed=int(rng.integers(1 << 30))))
        actors.append(Actor("person", case.x + (2 + j) * math.cos(h), case.y - (2 + j) * math.sin(h), start,
                            start + 40, heading=h, vx=0.9 * math.sin(h), vy=0.9 * math.cos(h),
                            seed=int(rng.integers(1 << 30))))
    specs = with_dwell(district.catalog, dict.fromkeys(RULES, dwell_s))
    cal = pinhole(case.camera, width=width, height=height)  # the synthetic camera's own calibration
    pipe = Pipeline(case.camera, cal, detector, specs, batch=8, tracker=tracker())
    cam = SyntheticCamera(case.camera, width=width, height=height, seed=case.seed)
    alarms = []
    for res in pipe.run(cam.frames(actors, seconds=case.seconds, fps=fps)):
        alarms += [(a.scenario, a.at) for a in res.alarms if a.kind == "start" and a.scenario in RULES]
    return alarms


def wilson(k: int, n: int, z: float = 1.959964) -> list[float]:
    """The Wilson score interval of a proportion ``k/n`` (95% by default): unlike the normal
    approximation it stays inside [0, 1] and is honest for the few cases a rule is tested on."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 3), round(min(1.0, centre + half), 3)]


def rule_metrics(detector: Detector, district: District, *, seed: int, per_rule: int = 4, dwell_s: float = 30.0,
                 tolerance_s: float = 10.0, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Per rule: cases, alarms, hits, false alarms, precision and recall (each with its 95%
    Wilson interval), mean timing error."""
    out: dict[str, Any] = {}
    tally: dict[str, dict[str, Any]] = {c: {"positives": 0, "negatives": 0, "alarms": 0, "hits": 0, "errors": []}
                                        for c in RULES}
    all_cases = cases(district, seed=seed, per_rule=per_rule, dwell_s=dwell_s)
    for n, case in enumerate(all_cases, 1):
        got = [t for code, t in run_case(case, detector, district, dwell_s=dwell_s) if code == case.scenario]
        row = tally[case.scenario]
        row["positives" if case.positive else "negatives"] += 1
        row["alarms"] += len(got)
        due = case.t0 + dwell_s
        if case.positive:
            near = [t for t in got if abs(t - due) <= tolerance_s]
            if near:
                row["hits"] += 1
                row["errors"].append(min(abs(t - due) for t in near))
        if progress is not None:
            progress(f"  case {n}/{len(all_cases)}: {case.scenario} {'positive' if case.positive else 'negative'}, "
                     f"alarms at {[round(t, 1) for t in got]} (due {due:.1f} s)" if case.positive else
                     f"  case {n}/{len(all_cases)}: {case.scenario} negative, alarms at {[round(t, 1) for t in got]}")
    for code, row in tally.items():
        if not row["positives"]:
            continue
        errs: Sequence[float] = row.pop("errors")
        row["false_alarms"] = row["alarms"] - row["hits"]
        row["precision"] = round(row["hits"] / row["alarms"], 3) if row["alarms"] else None
        row["precision_ci95"] = wilson(row["hits"], row["alarms"]) if row["alarms"] else None
        row["recall"] = round(row["hits"] / row["positives"], 3)
        row["recall_ci95"] = wilson(row["hits"], row["positives"])
        row["timing_error_s"] = round(float(np.mean(errs)), 2) if errs else None
        out[code] = row
    return {"rules": out, "dwell_s": dwell_s, "tolerance_s": tolerance_s, "seed": seed}
