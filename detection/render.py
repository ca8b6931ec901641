"""Synthetic street scenes with exact labels: the classes COCO lacks (stalls, goods on the
pavement, tricycles, street umbrellas, rubbish) beside cars, trucks, buses, bicycles,
motorcycles and people, as a street camera sees them.

A scene is laid out on the ground plane (metres): a road with lane and kerb markings
(yellow no-parking lines), a pavement, and the storefront line with shopfronts (windows,
doors, signboards) rising from it. Objects are solids (boxes for bodies, goods and stalls;
cylinders for wheels and umbrella poles) placed on the ground, with sizes, colours and
headings drawn at random; distractors (bollards, planters, trees, signposts, parked-bicycle
racks) are drawn but never labelled. A pinhole camera on a mast (height, tilt, heading and
opening angle drawn at random) projects it; solids are painted far to near, face by face,
shaded by a light direction. Then lighting (brightness, contrast, colour cast, dusk),
sensor noise, blur and JPEG compression.

Labels are exact: each object's box is the extent of the pixels it still shows after
everything nearer is painted over it (its visible mask), and objects showing less than a
quarter of themselves are left out (and said to be occluded).

Everything comes from one ``numpy.random.Generator``: a seed gives the same scene.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: The classes the synthetic detector learns, in its output order.
CLASSES = ("car", "truck", "bus", "bicycle", "motorcycle", "tricycle", "person", "stall", "goods", "umbrella",
           "trash")

#: Size ranges (length, width, height in metres) of each kind.
SIZES: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "car": ((3.9, 4.9), (1.7, 1.9), (1.4, 1.7)),
    "truck": ((5.5, 8.0), (2.0, 2.4), (2.3, 3.2)),
    "bus": ((10.0, 12.0), (2.4, 2.55), (2.9, 3.3)),
    "bicycle": ((1.6, 1.8), (0.5, 0.6), (0.95, 1.1)),
    "motorcycle": ((1.8, 2.1), (0.7, 0.8), (1.05, 1.25)),
    "tricycle": ((2.2, 2.8), (1.0, 1.2), (1.1, 1.6)),
    "person": ((0.35, 0.5), (0.45, 0.6), (1.55, 1.85)),
    "stall": ((1.2, 2.2), (0.7, 1.0), (0.8, 1.0)),
    "goods": ((0.4, 0.9), (0.3, 0.7), (0.3, 0.8)),
    "umbrella": ((1.8, 2.6), (1.8, 2.6), (2.0, 2.4)),
    "trash": ((0.4, 0.7), (0.4, 0.6), (0.3, 0.6)),
}

MIN_VISIBLE = 0.25


@dataclass
class View:
    """A pinhole camera ``mount_m`` above the ground at ``(x, y)``."""

    x: float
    y: float
    mount_m: float
    heading_deg: float
    tilt_deg: float
    fov_deg: float
    width: int
    height: int

    def __post_init__(self) -> None:
        from twin.calibration import focal_px, pinhole_axes  # the calibration's own pinhole model

        self.fwd, self.right, self.up = pinhole_axes(self.heading_deg, self.tilt_deg)
        self.f = focal_px(self.width, self.fov_deg)
        self.eye = np.array([self.x, self.y, self.mount_m])

    def project(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixels ``(n, 2)`` and depths ``(n,)`` of 3-D points ``(n, 3)`` (metres, z up)."""
        d = p - self.eye
        depth = d @ self.fwd
        safe = np.where(depth > 0.05, depth, 0.05)
        uv = np.column_stack([self.width / 2.0 + self.f * (d @ self.right) / safe,
                              self.height / 2.0 - self.f * (d @ self.up) / safe])
        return uv, depth


@dataclass
class Thing:
    """A solid on the ground: ``kind``, centre ``(x, y)``, ``heading`` (radians), size."""

    kind: str
    x: float
    y: float
    heading: float
    length: float
    width: float
    height: float
    colour: tuple[int, int, int]
    label: bool = True
    parts: list[tuple[np.ndarray, tuple[int, int, int]]] = field(default_factory=list)  # (8 corners, colour)
    seed: int | None = None  # the draws of its details (a rider's colour, a stack of goods): fixed if given


@dataclass
class Label:
    """One labelled object: class index, box ``x1, y1, x2, y2`` (visible pixels), the share of
    it visible, and its ground position."""

    cls: int
    box: tuple[float, float, float, float]
    visible: float
    x: float
    y: float


@dataclass
class Scene:
    """A rendered frame, its labels, the camera and what was left out as occluded."""

    image: np.ndarray
    labels: list[Label]
    view: View
    things: list[Thing]
    occluded: int = 0


def _box(cx: float, cy: float, z0: float, heading: float, length: float, width: float, height: float) -> np.ndarray:
    """The 8 corners of a box standing at height ``z0``: bottom 4 then top 4."""
    c, s = math.cos(heading), math.sin(heading)
    ax, ay = np.array([s, c]) * length / 2, np.array([c, -s]) * width / 2
    base = [np.array([cx, cy]) + sx * ax + sy * ay for sx, sy in ((1, 1), (1, -1), (-1, -1), (-1, 1))]
    return np.array([[p[0], p[1], z0] for p in base] + [[p[0], p[1], z0 + height] for p in base])


_FACES = ((0, 1, 2, 3), (4, 5, 6, 7), (0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7))


def _parts(t: Thing, rng: np.random.Generator) -> list[tuple[np.ndarray, tuple[int, int, int]]]:
    """The boxes an object is drawn from."""
    L, W, H, h, col = t.length, t.width, t.height, t.heading, t.colour
    dark = (40, 40, 45)
    glass = (70, 80, 90)
    fx, fy = math.sin(h), math.cos(h)

    def at(off: float, side: float = 0.0) -> tuple[float, float]:
        return t.x + off * fx + side * math.cos(h), t.y + off * fy - side * math.sin(h)

    if t.kind in ("car",):
        return [(_box(t.x, t.y, 0.2, h, L, W, H * 0.45), col),
                (_box(*at(-0.1 * L), 0.2 + H * 0.45, h, L * 0.55, W * 0.9, H * 0.45), glass),
                *[(_box(*at(o * L * 0.33, s * W * 0.42), 0.0, h, 0.6, 0.2, 0.45), dark) for o in (-1, 1) for s in (-1, 1)]]
    if t.kind in ("truck", "bus"):
        cab = 0.22 if t.kind == "truck" else 0.0
        parts = [(_box(t.x, t.y, 0.35, h, L, W, H - 0.35), col)]
        if t.kind == "truck":
            parts = [(_box(*at(-cab * L / 2), 0.35, h, L * (1 - cab), W, H - 0.35), col),
                     (_box(*at(L / 2 - cab * L / 2), 0.35, h, cab * L, W, (H - 0.35) * 0.8), (200, 200, 205))]
        else:  # a row of windows on the bus
            parts.append((_box(t.x, t.y, H * 0.5, h, L * 0.9, W * 1.02, H * 0.3), glass))
        parts += [(_box(*at(o * L * 0.38, s * W * 0.45), 0.0, h, 0.9, 0.3, 0.9), dark) for o in (-1, 1) for s in (-1, 1)]
        return parts
    if t.kind in ("bicycle", "motorcycle", "tricycle"):
        wheel = 0.65 if t.kind == "bicycle" else 0.55
        parts = [(_box(*at(o * L * 0.38), 0.0, h, wheel, 0.08, wheel), dark) for o in (-1, 1)]
        parts.append((_box(t.x, t.y, wheel * 0.5, h, L * 0.6, 0.1 if t.kind == "bicycle" else W * 0.6,
                           H - wheel * 0.5 - 0.1), col))
        if t.kind == "tricycle":  # the cargo box behind, on two wheels
            parts += [(_box(*at(-L * 0.25, s * W * 0.45), 0.0, h, 0.5, 0.08, 0.5), dark) for s in (-1, 1)]
            parts.append((_box(*at(-L * 0.25), 0.45, h, L * 0.45, W, H * 0.5), col))
        if t.kind != "bicycle" or rng.random() < 0.7:  # a rider
            parts.append((_box(t.x, t.y, H - 0.1, h, 0.35, 0.4, 0.7), _rgb(rng, 20, 200)))
        return parts
    if t.kind == "person":
        top = _rgb(rng, 20, 230)
        legs = (int(rng.integers(20, 90)),) * 3
        return [(_box(t.x, t.y, 0.0, h, L * 0.7, W * 0.7, H * 0.47), legs),
                (_box(t.x, t.y, H * 0.47, h, L, W, H * 0.38), top),
                (_box(t.x, t.y, H * 0.86, h, 0.22, 0.2, H * 0.14), (150, 175, 205))]
    if t.kind == "stall":
        return [(_box(t.x, t.y, H * 0.9, h, L, W, 0.08), col),
                *[(_box(*at(o * L * 0.45, s * W * 0.4), 0.0, h, 0.06, 0.06, H * 0.9), (90, 90, 90))
                  for o in (-1, 1) for s in (-1, 1)],
                *[(_box(*at(o * L * 0.2), H * 0.98, h, L * 0.3, W * 0.8, 0.2),
                   _rgb(rng, 40, 240)) for o in (-1, 0, 1)]]
    if t.kind == "umbrella":
        return [(_box(t.x, t.y, 0.0, h, 0.06, 0.06, H * 0.9), (200, 200, 200)),
                (_box(t.x, t.y, H * 0.85, h, L, W, H * 0.15), col)]
    if t.kind == "goods":  # a small stack of crates or boxes
        n = int(rng.integers(1, 4))
        return [(_box(*at(0.0, (k - (n - 1) / 2) * W / n), 0.0, h, L, W / n * 0.95, H * rng.uniform(0.6, 1.0)),
                 _jitter(col, rng)) for k in range(n)]
    if t.kind == "trash":  # bags
        return [(_box(t.x, t.y, 0.0, h, L, W, H), col)]
    return [(_box(t.x, t.y, 0.0, h, L, W, H), col)]  # distractors


def _rgb(rng: np.random.Generator, lo: int, hi: int) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in rng.integers(lo, hi, 3))
    return r, g, b


def _jitter(col: tuple[int, int, int], rng: np.random.Generator) -> tuple[int, int, int]:
    r, g, b = (int(np.clip(v + rng.integers(-30, 30), 0, 255)) for v in col)
    return r, g, b


def _shade(colour: tuple[int, int, int], normal: np.ndarray, light: np.ndarray) -> tuple[int, int, int]:
    k = 0.55 + 0.45 * max(0.0, float(normal @ light))
    return (int(colour[0] * k), int(colour[1] * k), int(colour[2] * k))


class Renderer:
    """Random street scenes (see the module docstring).

    Args:
        width: Image width.
        height: Image height.
        classes: The labelled classes (default :data:`CLASSES`).
    """

    def __init__(self, width: int = 384, height: int = 256, classes: Sequence[str] = CLASSES) -> None:
        self.width, self.height, self.classes = width, height, tuple(classes)

    def view(self, rng: np.random.Generator) -> View:
        """A random street camera: 4-9 m up, looking along the street from its side."""
        return View(x=float(rng.uniform(1.0, 11.0)), y=float(rng.uniform(-6.0, 0.0)),
                    mount_m=float(rng.uniform(4.0, 9.0)), heading_deg=float(rng.uniform(-20.0, 20.0)),
                    tilt_deg=float(rng.uniform(14.0, 32.0)), fov_deg=float(rng.uniform(55.0, 80.0)),
                    width=self.width, height=self.height)

    def layout(self, rng: np.random.Generator) -> list[Thing]:
        """Objects of a random scene: the road runs north along x = 0..road_w; the pavement
        east of it up to the storefront line."""
        things: list[Thing] = []
        road_w, pave_w = 7.0, float(rng.uniform(3.0, 6.0))

        def colour() -> tuple[int, int, int]:
            return _rgb(rng, 20, 235)

        def add(kind: str, x: float, y: float, heading: float, label: bool = True) -> None:
            (l0, l1), (w0, w1), (h0, h1) = SIZES.get(kind, ((0.3, 0.5), (0.3, 0.5), (0.8, 1.2)))
            things.append(Thing(kind, x, y, heading, float(rng.uniform(l0, l1)), float(rng.uniform(w0, w1)),
                                float(rng.uniform(h0, h1)), colour(), label))

        kerb = road_w
        for _ in range(int(rng.poisson(2.5))):  # traffic in both lanes
            kind = str(rng.choice(["car", "car", "car", "truck", "bus", "motorcycle", "bicycle", "tricycle"]))
            lane = float(rng.choice([road_w * 0.25, road_w * 0.75]))
            add(kind, lane + rng.normal(0, 0.3), float(rng.uniform(3, 40)), 0.0 if lane > road_w / 2 else math.pi)
        for _ in range(int(rng.poisson(1.5))):  # parked at the kerb (the no-parking line)
            kind = str(rng.choice(["car", "car", "truck", "tricycle"]))
            add(kind, kerb - 1.1, float(rng.uniform(3, 35)), float(rng.normal(0, 0.05)))
        for _ in range(int(rng.poisson(2.5))):  # people on the pavement and crossing
            x = float(rng.uniform(kerb, kerb + pave_w)) if rng.random() < 0.8 else float(rng.uniform(0, road_w))
            add("person", x, float(rng.uniform(2, 32)), float(rng.uniform(0, 2 * math.pi)))
        for _ in range(int(rng.poisson(1.2))):  # bikes parked on the pavement
            add(str(rng.choice(["bicycle", "motorcycle"])), kerb + float(rng.uniform(0.5, pave_w - 0.5)),
                float(rng.uniform(2, 30)), float(rng.choice([math.pi / 2, -math.pi / 2]) + rng.normal(0, 0.2)))
        front = kerb + pave_w  # the storefront line
        for _ in range(int(rng.poisson(1.4))):  # spilling out of the shops: goods, stalls, umbrellas
            kind = str(rng.choice(["goods", "goods", "stall", "umbrella"]))
            add(kind, front - float(rng.uniform(0.4, min(2.5, pave_w - 0.5))), float(rng.uniform(2, 30)),
                float(rng.normal(0, 0.1)))
        for _ in range(int(rng.poisson(0.6))):
            add("trash", front - float(rng.uniform(0.3, 1.0)), float(rng.uniform(2, 30)), 0.0)
        for _ in range(int(rng.poisson(2.0))):  # distractors: bollards, planters, sign posts, trees
            kind = str(rng.choice(["bollard", "planter", "signpost", "tree"]))
            size = {"bollard": (0.2, 0.2, 0.9), "planter": (1.0, 0.6, 0.6), "signpost": (0.1, 0.1, 2.6),
                    "tree": (0.4, 0.4, 4.0)}[kind]
            things.append(Thing(kind, kerb + 0.4, float(rng.uniform(2, 32)), 0.0, *size, colour(), False))
        return things

    def render(self, rng: np.random.Generator, things: Sequence[Thing] | None = None, view: View | None = None,
               *, look: np.random.Generator | None = None, mirror: bool = True) -> Scene:
        """One scene: its layout (random unless given), camera, image and labels.

        Args:
            rng: The scene's draws.
            things: Its objects (default: a random layout).
            view: Its camera (default: a random one).
            look: Draws of the background, light and colour (default ``rng``): the same seed
                gives frames of one video the same street.
            mirror: May mirror the picture (never for a calibrated camera's frames).
        """
        import cv2

        view = view or self.view(rng)
        things = list(things) if things is not None else self.layout(rng)
        noise = rng
        rng = look or rng
        w, h = self.width, self.height
        road_w, pave_w = 7.0, 4.5
        sky = np.array(rng.integers(150, 230, 3), dtype=np.float64)
        img = np.empty((h, w, 3), np.uint8)
        img[:] = sky.astype(np.uint8)

        def ground(poly: list[tuple[float, float]], colour: tuple[int, int, int]) -> None:
            pts = np.array([[x, y, 0.0] for x, y in poly])
            uv, depth = view.project(pts)
            if (depth <= 0.05).all():
                return
            cv2.fillPoly(img, [np.round(uv).astype(np.int32)], colour, cv2.LINE_AA)

        near, far = -20.0, 90.0
        ground([(-30, near), (40, near), (40, far), (-30, far)], (95, 110, 100))  # verges
        asphalt = int(rng.integers(55, 100))
        ground([(0, near), (road_w, near), (road_w, far), (0, far)], (asphalt,) * 3)
        tile = _rgb(rng, 140, 200)
        ground([(road_w, near), (road_w + pave_w, near), (road_w + pave_w, far), (road_w, far)], tile)
        for y0 in np.arange(near, far, 6.0):  # lane dashes
            ground([(road_w / 2 - 0.07, y0), (road_w / 2 + 0.07, y0), (road_w / 2 + 0.07, y0 + 3), (road_w / 2 - 0.07, y0 + 3)],
                   (235, 235, 235))
        ground([(road_w - 0.35, near), (road_w - 0.2, near), (road_w - 0.2, far), (road_w - 0.35, far)], (40, 200, 230))
        # shopfronts: a facade along the storefront line, with windows, doors and signboards
        front = road_w + pave_w
        painted: list[tuple[float, np.ndarray, tuple[int, int, int]]] = []
        y = near
        while y < far:
            shop = float(rng.uniform(4.0, 9.0))
            base = _rgb(rng, 90, 220)
            painted.append((0.0, _box(front + 0.5, y + shop / 2, 0.0, 0.0, shop, 1.0, float(rng.uniform(3.5, 7.0))),
                            base))
            painted.append((0.0, _box(front - 0.02, y + shop / 2, 0.3, 0.0, shop * 0.7, 0.05, 2.0), (60, 75, 90)))
            painted.append((0.0, _box(front - 0.04, y + shop / 2, 2.6, 0.0, shop * 0.9, 0.08, 0.7),
                            _rgb(rng, 30, 255)))
            y += shop
        light = np.array([rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.6), 0.8])
        light /= np.linalg.norm(light)
        masks: dict[int, np.ndarray] = {}
        solids: list[tuple[float, int, np.ndarray, tuple[int, int, int]]] = []
        for _, corners, col in painted:
            solids.append((float(np.linalg.norm(corners.mean(0) - view.eye)), -1, corners, col))
        for k, t in enumerate(things):
            t.parts = _parts(t, np.random.default_rng(t.seed) if t.seed is not None else rng)
            for corners, col in t.parts:
                solids.append((float(np.linalg.norm(corners.mean(0) - view.eye)), k, corners, col))
        solids.sort(key=lambda s: -s[0])  # far to near (painter's algorithm)
        for _, k, corners, col in solids:
            uv, depth = view.project(corners)
            if (depth <= 0.3).any():
                continue
            centre = corners.mean(0)
            for face in _FACES:
                fc = corners[list(face)]
                normal = np.cross(fc[1] - fc[0], fc[2] - fc[0])
                nn = np.linalg.norm(normal)
                if nn < 1e-9:
                    continue
                normal = normal / nn
                if normal @ (fc.mean(0) - centre) < 0:
                    normal = -normal
                if normal @ (view.eye - fc.mean(0)) <= 0:
                    continue  # facing away
                poly = np.round(uv[list(face)]).astype(np.int32)
                cv2.fillPoly(img, [poly], _shade(col, normal, light), cv2.LINE_AA)
                for j, m in masks.items():  # nearer paint hides what is behind
                    if j != k:
                        cv2.fillPoly(m, [poly], 0)
                if k >= 0:
                    m = masks.setdefault(k, np.zeros((h, w), np.uint8))
                    cv2.fillPoly(m, [poly], 1)
        labels: list[Label] = []
        occluded = 0
        for k, t in enumerate(things):
            if not t.label or t.kind not in self.classes or k not in masks:
                continue
            full = np.zeros((h, w), np.uint8)
            for corners, _ in t.parts:
                uv, _d = view.project(corners)
                cv2.fillConvexPoly(full, cv2.convexHull(np.round(uv).astype(np.int32)), 1)
            total = int(full.sum())
            ys, xs = np.nonzero(masks[k])
            if total < 30:
                continue  # too small to label
            vis = len(xs) / total
            if vis < MIN_VISIBLE:
                occluded += 1
                continue
            labels.append(Label(self.classes.index(t.kind), (float(xs.min()), float(ys.min()), float(xs.max() + 1),
                                                           float(ys.max() + 1)), round(vis, 3), t.x, t.y))
        img = self._camera_effects(img, rng, noise)
        if mirror and noise.random() < 0.5:  # the pavement on the other side of the street
            img = np.ascontiguousarray(img[:, ::-1])
            for lab in labels:
                x1, y1, x2, y2 = lab.box
                lab.box = (w - x2, y1, w - x1, y2)
        return Scene(img, labels, view, things, occluded)

    def _camera_effects(self, img: np.ndarray, rng: np.random.Generator, noise: np.random.Generator) -> np.ndarray:
        import cv2

        gain = float(rng.uniform(0.55, 1.3)) if rng.random() < 0.85 else float(rng.uniform(0.25, 0.5))  # dusk
        cast = rng.uniform(0.9, 1.1, 3)
        contrast = float(rng.uniform(0.75, 1.2))
        f = ((img.astype(np.float64) - 128.0) * contrast + 128.0) * gain * cast
        f += noise.normal(0, rng.uniform(2, 9), f.shape)
        out: np.ndarray = np.clip(f, 0, 255).astype(np.uint8)
        if rng.random() < 0.4:
            k = int(rng.choice([3, 5]))
            out = cv2.GaussianBlur(out, (k, k), 0)
        q = int(rng.integers(40, 90))
        ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])
        return np.asarray(cv2.imdecode(enc, cv2.IMREAD_COLOR)) if ok else out
