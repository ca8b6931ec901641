"""Camera calibration: the image ↔ ground homography of a camera, so that image zones and
ground zones are one thing.

The street is a plane; a camera's view of it is a projective map, a 3 × 3 homography ``H``
with ``(u, v, 1) ~ H (x, y, 1)``. Four or more point pairs (a pixel and where it lies on the
ground, surveyed or read off a map) fix it: :meth:`Homography.from_points` solves the direct
linear transform with Hartley's normalisation in least squares. For a synthetic camera
:func:`pinhole` places a pinhole camera on a mast at the camera's position, heading and
opening angle, tilted down so that its range reaches the top of the picture, and fits the
homography to the ground points it sees — the same kind of point pairs as a real survey.

Pixels ``(u, v)`` run right and down from the top-left corner; ground points ``(x, y)`` are
metres east and north in the district's local plane (:class:`twin.geo.LocalProjection`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from twin.assets import Camera
from twin.errors import ValidationError


def _normaliser(pts: np.ndarray) -> np.ndarray:
    c = pts.mean(axis=0)
    d = np.sqrt(((pts - c) ** 2).sum(axis=1)).mean()
    s = math.sqrt(2) / d if d > 0 else 1.0
    return np.array([[s, 0, -s * c[0]], [0, s, -s * c[1]], [0, 0, 1]])


@dataclass(frozen=True)
class Homography:
    """Ground → image: ``matrix`` maps ``(x, y, 1)`` to ``(u, v, 1)`` up to scale.

    Args:
        matrix: The 3 × 3 ground-to-image matrix.
        width: Image width, pixels.
        height: Image height, pixels.
    """

    matrix: np.ndarray
    width: int
    height: int

    @classmethod
    def from_points(cls, image: np.ndarray | Sequence[Sequence[float]], ground: np.ndarray | Sequence[Sequence[float]],
                    *, width: int,
                    height: int, what: str = "calibration") -> Homography:
        """The homography through four or more ``image`` ↔ ``ground`` point pairs (least
        squares beyond four).

        Raises:
            ValidationError: fewer than four pairs, counts that differ, or points that fix no
                homography (three of four on a line).
        """
        img, gnd = np.asarray(image, dtype=float), np.asarray(ground, dtype=float)
        if img.ndim != 2 or gnd.ndim != 2 or img.shape[1] != 2 or gnd.shape[1] != 2 or len(img) != len(gnd):
            raise ValidationError(f"{what}.points", "give pairs of [u, v] pixels and [x, y] ground points, as many "
                                  "of each")
        if len(img) < 4:
            raise ValidationError(f"{what}.points", f"a homography needs at least 4 point pairs, got {len(img)}")
        if width <= 0 or height <= 0:
            raise ValidationError(f"{what}.image_size", "width and height must be > 0")
        ti, tg = _normaliser(img), _normaliser(gnd)
        a = np.hstack([img, np.ones((len(img), 1))]) @ ti.T
        g = np.hstack([gnd, np.ones((len(gnd), 1))]) @ tg.T
        rows = []
        for (x, y, _), (u, v, _) in zip(g, a):
            rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y, -u])
            rows.append([0, 0, 0, x, y, 1, -v * x, -v * y, -v])
        _, sv, vt = np.linalg.svd(np.asarray(rows))
        if sv[-2] < 1e-9 * sv[0]:
            raise ValidationError(f"{what}.points", "the points fix no homography (are three of them on one line?)")
        h = np.linalg.inv(ti) @ vt[-1].reshape(3, 3) @ tg
        h = h / np.linalg.norm(h)
        depth = (np.hstack([gnd, np.ones((len(gnd), 1))]) @ h.T)[:, 2]
        if np.median(depth) < 0:
            h = -h  # the sign that puts the calibration's own points in front of the camera
        return cls(h, int(width), int(height))

    def to_image(self, ground: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """Ground points ``(n, 2)`` → pixels ``(n, 2)`` (``nan`` for points behind the camera)."""
        g = np.atleast_2d(np.asarray(ground, dtype=float))
        p = np.hstack([g, np.ones((len(g), 1))]) @ self.matrix.T
        w = p[:, 2:3]
        with np.errstate(divide="ignore", invalid="ignore"):
            out = p[:, :2] / w
        out[(w[:, 0] <= 0)] = np.nan  # the horizon and beyond: not in the picture
        return np.asarray(out)

    def to_ground(self, image: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """Pixels ``(n, 2)`` → ground points ``(n, 2)`` (``nan`` above the horizon)."""
        i = np.atleast_2d(np.asarray(image, dtype=float))
        p = np.hstack([i, np.ones((len(i), 1))]) @ np.linalg.inv(self.matrix).T
        w = p[:, 2:3]
        with np.errstate(divide="ignore", invalid="ignore"):
            out = p[:, :2] / w
        out[(w[:, 0] <= 0)] = np.nan  # above the horizon: no ground there
        return np.asarray(out)

    def error_px(self, image: Sequence[Sequence[float]], ground: Sequence[Sequence[float]]) -> float:
        """Root-mean-square reprojection error of point pairs, pixels."""
        d = self.to_image(ground) - np.asarray(image, dtype=float)
        return float(np.sqrt(np.nanmean((d ** 2).sum(axis=1))))

    def image_polygon(self, ground: BaseGeometry) -> Polygon | None:
        """A ground polygon's outline in the image (clipped to the picture), or ``None``
        when none of it is in the picture."""
        if ground.is_empty or not hasattr(ground, "exterior"):
            return None
        pts = self.to_image(np.asarray(ground.exterior.coords))
        if np.isnan(pts).any():
            return None
        poly = Polygon(pts).buffer(0).intersection(Polygon([(0, 0), (self.width, 0), (self.width, self.height),
                                                            (0, self.height)]))
        return poly if isinstance(poly, Polygon) and not poly.is_empty else None

    def foot(self, box: Sequence[float]) -> tuple[float, float]:
        """Where an object stands on the ground: the bottom centre of its image box."""
        x1, _y1, x2, y2 = box
        g = self.to_ground([[(x1 + x2) / 2.0, y2]])[0]
        return float(g[0]), float(g[1])


def pinhole_axes(heading_deg: float, tilt_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A pinhole camera's forward, right and up unit vectors (x east, y north, z up) when it
    looks along ``heading_deg`` (clockwise from north), tilted ``tilt_deg`` down."""
    hd, tl = math.radians(heading_deg), math.radians(tilt_deg)
    fwd = np.array([math.sin(hd) * math.cos(tl), math.cos(hd) * math.cos(tl), -math.sin(tl)])
    right = np.array([math.cos(hd), -math.sin(hd), 0.0])
    return fwd, right, np.cross(right, fwd)


def focal_px(width: int, fov_deg: float) -> float:
    """Focal length in pixels of a picture ``width`` wide with horizontal opening ``fov_deg``
    (at most 150°: a pinhole sees no wider)."""
    return (width / 2.0) / math.tan(math.radians(min(fov_deg, 150.0)) / 2.0)


def pinhole_project(camera: Camera, ground: np.ndarray, *, width: int, height: int, mount_m: float,
                    tilt_deg: float) -> np.ndarray:
    """Pixels of ground points seen by a pinhole camera on a mast (see :func:`pinhole`)."""
    fwd, right, up = pinhole_axes(camera.heading_deg, tilt_deg)
    f = focal_px(width, camera.fov_deg)
    d = np.column_stack([ground[:, 0] - camera.x, ground[:, 1] - camera.y, np.full(len(ground), -mount_m)])
    depth = d @ fwd
    return np.column_stack([width / 2.0 + f * (d @ right) / depth, height / 2.0 - f * (d @ up) / depth])


def pinhole_tilt(camera: Camera, *, width: int, height: int, mount_m: float) -> float:
    """The tilt (degrees down) that puts the far edge of the camera's range on the picture's
    top row: ``atan(mount / range)`` plus half the vertical opening angle."""
    return math.degrees(math.atan2(mount_m, camera.range_m) + math.atan2(height / 2.0, focal_px(width, camera.fov_deg)))


def pinhole(camera: Camera, *, width: int = 1280, height: int = 720, mount_m: float = 6.0,
            tilt_deg: float | None = None) -> Homography:
    """A synthetic camera's calibration: a pinhole camera ``mount_m`` above the ground at the
    camera's position, looking along its heading with its horizontal opening angle, tilted
    down so that the far edge of its range lies at the top of the picture (unless
    ``tilt_deg`` is given); fitted to the pixels of ground points it sees (a 5 × 5 grid over
    its view), as a surveyed calibration would be."""
    if tilt_deg is None:
        tilt_deg = pinhole_tilt(camera, width=width, height=height, mount_m=mount_m)
    hd = math.radians(camera.heading_deg)
    pts = []
    for r in np.linspace(0.35, 0.95, 5):
        for a in np.linspace(-0.35, 0.35, 5):
            ang = hd + math.radians(camera.fov_deg) * a
            dist = camera.range_m * r
            pts.append((camera.x + dist * math.sin(ang), camera.y + dist * math.cos(ang)))
    ground = np.asarray(pts)
    image = pinhole_project(camera, ground, width=width, height=height, mount_m=mount_m, tilt_deg=tilt_deg)
    return Homography.from_points(image, ground, width=width, height=height, what=f"calibration.{camera.id}")
