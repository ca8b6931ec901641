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

from detection.render import SIZES, Renderer, Thing, View
from twin.assets import Camera
from twin.calibration import pinhole_tilt

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

    def frames(self, actors: Sequence[Actor], *, seconds: float, fps: float = 1.0
               ) -> Iterator[tuple[float, np.ndarray]]:
        """``(t, BGR frame)`` every ``1/fps`` seconds from 0 to ``seconds``. The look of the
        scene (light, noise) is drawn once from the seed; only the actors change."""
        k = 0
        while k / fps < seconds:
            t = k / fps
            rng = np.random.default_rng([self.seed, k])
            look = np.random.default_rng(self.seed)
            scene = self.renderer.render(rng, things=self.things(actors, t), view=self.view, look=look, mirror=False)
            yield t, scene.image
            k += 1
