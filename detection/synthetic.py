"""A synthetic camera: what a camera of the simulated district would show, as video frames,
so that the whole loop — demand → frames → detection → tracks → rules → events → dispatch —
runs and is tested without a street.

The camera's own calibration fixes the view: a pinhole camera on its mast
(:func:`twin.calibration.pinhole`), at its position, heading and opening angle. The street
around it is drawn in a frame aligned with the camera (a road running along its heading, the
pavement and shopfronts beside it), and the objects of the scene — given where they stand in
the district — are carried into that frame by the same rigid motion, so each lands on the
pixels the calibration gives for its ground position.

:class:`Actor` s move in the scene: one stands (a car parked in a no-parking strip, goods
set out before a shop, a crowd at a door) for a span of time; another drives or walks
through. :meth:`SyntheticCamera.frames` renders them at a frame rate, with the renderer's
lighting, noise and compression, from one seed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from detection.render import SIZES, Renderer, Thing, View
from twin.assets import Camera
from twin.calibration import pinhole_tilt
from twin.catalog import ScenarioSpec, Source

#: The mast height synthetic calibrations assume (twin.calibration.pinhole's default).
MOUNT_M = 6.0


@dataclass(frozen=True)
class Actor:
    """Something in the scene from ``start`` to ``end`` (seconds): standing at ``(x, y)`` (the
    district's metres) or, with a velocity, moving from there."""

    kind: str
    x: float
    y: float
    start: float
    end: float
    heading: float = 0.0
    vx: float = 0.0
    vy: float = 0.0
    seed: int = 0

    def at(self, t: float) -> tuple[float, float] | None:
        """Where it is at ``t``, or ``None`` outside its span."""
        if not self.start <= t < self.end:
            return None
        return self.x + self.vx * (t - self.start), self.y + self.vy * (t - self.start)


class SyntheticCamera:
    """A district camera rendered (see the module docstring).

    Args:
        camera: The camera.
        width: Frame width (the calibration's).
        height: Frame height.
        seed: Seed of the scene's looks (lighting, colours, noise).
    """

    def __init__(self, camera: Camera, *, width: int = 1280, height: int = 720, seed: int = 0) -> None:
        self.camera, self.width, self.height, self.seed = camera, width, height, seed
        self.renderer = Renderer(width, height)
        self._h = math.radians(camera.heading_deg)
        self.side = 4.0  # the camera stands this far left of the road's right kerb, in the street frame
        self.view = View(x=self.side, y=0.0, mount_m=MOUNT_M, heading_deg=0.0,
                         tilt_deg=pinhole_tilt(camera, width=width, height=height, mount_m=MOUNT_M),
                         fov_deg=camera.fov_deg, width=width, height=height)

    def to_street(self, x: float, y: float) -> tuple[float, float]:
        """District metres → the camera-aligned street frame (its heading is +y)."""
        dx, dy = x - self.camera.x, y - self.camera.y
        c, s = math.cos(self._h), math.sin(self._h)
        return self.side + dx * c - dy * s, dx * s + dy * c

    def things(self, actors: Sequence[Actor], t: float) -> list[Thing]:
        """The scene's objects at ``t``, in the street frame (sizes and colours fixed per actor)."""
        out = []
        for a in actors:
            where = a.at(t)
            if where is None:
                continue
            rng = np.random.default_rng(a.seed)
            (l0, l1), (w0, w1), (h0, h1) = SIZES[a.kind]
            sx, sy = self.to_street(*where)
            colour = tuple(int(v) for v in rng.integers(30, 230, 3))
            out.append(Thing(a.kind, sx, sy, a.heading - self._h, float(rng.uniform(l0, l1)), float(rng.uniform(w0, w1)),
                             float(rng.uniform(h0, h1)), colour, seed=a.seed))  # type: ignore[arg-type]
        return out

    def frame(self, actors: Sequence[Actor], t: float, k: int) -> np.ndarray:
        """The BGR frame at ``t`` (frame number ``k`` draws its noise). The look of the scene
        (light, colours) is drawn once from the seed; only the actors change."""
        rng = np.random.default_rng([self.seed, k])
        look = np.random.default_rng(self.seed)
        return self.renderer.render(rng, things=self.things(actors, t), view=self.view, look=look,
                                    mirror=False).image

    def frames(self, actors: Sequence[Actor], *, seconds: float, fps: float = 1.0
               ) -> Iterator[tuple[float, np.ndarray]]:
        """``(t, BGR frame)`` every ``1/fps`` seconds from 0 to ``seconds``."""
        k = 0
        while k / fps < seconds:
            yield k / fps, self.frame(actors, k / fps, k)
            k += 1


#: Where a camera's staged objects stand: this far in front of it (metres), where the
#: detector sees them at a useful size (the synthetic camera's pinhole at 576×384).
NEAR_M, FAR_M = 12.0, 30.0


def spots(camera: Camera, zone_kind: str) -> BaseGeometry | None:
    """The part of ``camera``'s zones of ``zone_kind`` (its whole view for ``any``) that lies
    12-30 m in front of it, or ``None`` when that is too small to stand a car in (6 m²)."""
    ring = Point(camera.x, camera.y).buffer(FAR_M).difference(Point(camera.x, camera.y).buffer(NEAR_M))
    ring = ring.intersection(camera.fov)
    if zone_kind == "any":
        area: BaseGeometry = ring
    else:
        parts = [z.geometry for z in camera.zones if z.kind == zone_kind and not z.geometry.is_empty]
        if not parts:
            return None
        area = unary_union(parts).intersection(ring)
    return area if area.area > 6.0 else None


def drawable(labels: Sequence[str]) -> str | None:
    """The first of a rule's labels the renderer can draw (``crowd`` is drawn as people)."""
    for label in labels:
        if label in SIZES:
            return label
        if label == "crowd":
            return "person"
    return None


def can_show(camera: Camera, spec: ScenarioSpec) -> bool:
    """Whether a synthetic camera can show ``spec``'s incidents: a camera-discovered scenario
    with a label of its camera rule the renderer draws, and room in the rule's zone before the
    camera (the synthetic feed leaves exactly these to synthetic cameras)."""
    rule = spec.camera
    if rule is None or Source.CAMERA not in spec.sources:
        return False
    return drawable(rule.labels) is not None and spots(camera, rule.zone) is not None


def stage(camera: Camera, kind: str, count: int, where: BaseGeometry, near: tuple[float, float], start: float,
          end: float, rng: np.random.Generator) -> list[Actor]:
    """``count`` objects of ``kind`` standing in ``where`` from ``start`` to ``end``: the first at
    the point of ``where`` nearest ``near`` (the incident's place), the others scattered around
    it inside ``where``, apart by their size."""
    from shapely.ops import nearest_points

    h = math.radians(camera.heading_deg)
    first = nearest_points(where, Point(*near))[0]
    if not where.buffer(1e-6).contains(first):  # a point on the boundary: step inside
        first = where.representative_point()
    (l0, l1), (w0, _w1), _ = SIZES[kind]
    gap = max(0.8, (l0 + l1) / 2 if count > 1 and kind not in ("person",) else 0.8 + w0)
    placed: list[tuple[float, float]] = [(float(first.x), float(first.y))]
    radius = gap
    tries = 0
    while len(placed) < count and tries < 60 * count:
        tries += 1
        a = float(rng.uniform(0, 2 * math.pi))
        r = float(rng.uniform(gap, radius))
        x, y = placed[0][0] + r * math.cos(a), placed[0][1] + r * math.sin(a)
        if where.contains(Point(x, y)) and all(math.hypot(x - px, y - py) >= gap for px, py in placed):
            placed.append((x, y))
        elif tries % 20 == 0:
            radius += gap  # crowded: spread out
    return [Actor(kind, x, y, start, end, heading=h + float(rng.normal(0, 0.1)), seed=int(rng.integers(1 << 30)))
            for x, y in placed]


def passers(camera: Camera, start: float, end: float, rng: np.random.Generator, *, cars_per_min: float = 2.0,
            people_per_min: float = 2.0) -> list[Actor]:
    """Traffic and pedestrians passing the camera between ``start`` and ``end`` (Poisson
    arrivals, either way): cars in the drawn street's lane, people on its pavement, from 30 m
    behind the camera to 40 m past the far edge of the staged objects."""
    h = math.radians(camera.heading_deg)
    fwd, side = (math.sin(h), math.cos(h)), (math.cos(h), -math.sin(h))
    out = []
    for kind, per_min, speed, offset in (("car", cars_per_min, 8.0, -0.5), ("person", people_per_min, 1.2, 5.5)):
        t = start
        while per_min > 0:
            t += float(rng.exponential(60.0 / per_min))
            if t >= end:
                break
            v = speed * float(rng.uniform(0.7, 1.3)) * (1 if rng.random() < 0.5 else -1)
            x0 = camera.x + offset * side[0] - math.copysign(30.0, v) * fwd[0]
            y0 = camera.y + offset * side[1] - math.copysign(30.0, v) * fwd[1]
            out.append(Actor(kind, x0, y0, t, t + (FAR_M + 40.0) / abs(v), heading=h if v > 0 else h + math.pi,
                             vx=v * fwd[0], vy=v * fwd[1], seed=int(rng.integers(1 << 30))))
    return out
