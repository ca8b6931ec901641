"""Things in the street that see or are seen: cameras, zones, shops, sensors and venues.

Geometry is in the district's local plane (metres); see :class:`twin.geo.LocalProjection`.
A camera's *ground field of view* is the sector of the street it sees; zones inside it
(no-parking strips, storefront lines) are where detection rules apply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry

from twin.errors import ValidationError

CAMERA_OWNERS = ("police", "city_management", "public_order", "private")
SHOP_KINDS = ("restaurant", "grocery", "fruit_veg", "retail", "service", "pharmacy", "tea_house",
              "hardware", "other")
VENUE_KINDS = ("sales_meeting_room", "rental_hall", "community_centre", "school", "market")


def fov_polygon(x: float, y: float, *, heading_deg: float, fov_deg: float, range_m: float,
                steps: int = 12) -> Polygon:
    """Ground field of view of a camera: a circular sector.

    Args:
        x: Camera position, metres east.
        y: Camera position, metres north.
        heading_deg: Viewing direction, degrees clockwise from north (0-360).
        fov_deg: Horizontal opening angle, degrees (0-360].
        range_m: Useful detection range on the ground, metres.
        steps: Number of arc segments.
    """
    if not (0 < fov_deg <= 360):
        raise ValidationError("camera.fov_deg", f"must be in (0, 360], got {fov_deg}")
    if not range_m > 0:
        raise ValidationError("camera.range_m", f"must be > 0, got {range_m}")
    half = fov_deg / 2.0
    angles = np.radians(np.linspace(heading_deg - half, heading_deg + half, steps + 1))
    arc = np.column_stack([x + range_m * np.sin(angles), y + range_m * np.cos(angles)])
    if fov_deg >= 360:
        return Polygon(arc)
    return Polygon(np.vstack([[x, y], arc, [x, y]]))


@dataclass(frozen=True)
class Zone:
    """A region of a camera view where a rule applies.

    Args:
        kind: ``storefront``, ``no_parking``, ``roadway``, ``sidewalk``, ``entrance``,
            ``waterway`` or ``any``.
        geometry: Polygon (or line, for storefronts) in the local plane.
        road_id: The road segment the zone lies on, if any.
    """

    kind: str
    geometry: BaseGeometry = field(repr=False, compare=False)
    road_id: str | None = None


@dataclass(frozen=True)
class Camera:
    """A City Eye camera.

    Args:
        id: Unique camera id.
        owner: ``police``, ``city_management``, ``public_order`` or ``private``.
        x: Position, metres east.
        y: Position, metres north.
        heading_deg: Viewing direction, degrees clockwise from north.
        fov_deg: Horizontal opening angle, degrees.
        range_m: Useful ground detection range, metres.
        road_id: The road segment it watches.
        grid_id: The grid it stands in.
        zones: Rule zones within its view.
        detect_p: Probability that an incident in view is detected (model quality and
            occlusion folded together).
        latency_s: Mean delay from an incident's start to the event being raised, seconds.
    """

    id: str
    owner: str
    x: float
    y: float
    heading_deg: float
    fov_deg: float
    range_m: float
    road_id: str
    grid_id: str
    zones: tuple[Zone, ...] = ()
    detect_p: float = 0.9
    latency_s: float = 20.0

    def __post_init__(self) -> None:
        if self.owner not in CAMERA_OWNERS:
            raise ValidationError(f"cameras.{self.id}.owner",
                                  f"unknown owner '{self.owner}'; use one of {', '.join(CAMERA_OWNERS)}")
        if not (0.0 <= self.detect_p <= 1.0):
            raise ValidationError(f"cameras.{self.id}.detect_p", "must be in [0, 1]")
        if self.latency_s < 0:
            raise ValidationError(f"cameras.{self.id}.latency_s", "must be >= 0")

    @property
    def fov(self) -> Polygon:
        """Ground field of view, a polygon in the local plane."""
        return fov_polygon(self.x, self.y, heading_deg=self.heading_deg, fov_deg=self.fov_deg,
                           range_m=self.range_m)

    def sees(self, x: float, y: float) -> bool:
        """Whether a ground point lies in the field of view."""
        dx, dy = x - self.x, y - self.y
        dist = math.hypot(dx, dy)
        if dist > self.range_m:
            return False
        if dist == 0 or self.fov_deg >= 360:
            return True
        bearing = math.degrees(math.atan2(dx, dy)) % 360.0
        off = abs((bearing - self.heading_deg + 180.0) % 360.0 - 180.0)
        return off <= self.fov_deg / 2.0


@dataclass(frozen=True)
class Site:
    """Something at a fixed spot of the district, resolved to its road and grid.

    Args:
        id: Unique id among its kind.
        kind: What it is (a shop's trade, a sensor's type, a venue's use).
        x: Position, metres east of the district origin.
        y: Position, metres north.
        road_id: The road segment it lies on or nearest to (where a handler goes).
        grid_id: Its grid.
    """

    id: str
    kind: str
    x: float
    y: float
    road_id: str
    grid_id: str

    @property
    def point(self) -> Point:
        """Position as a shapely point."""
        return Point(self.x, self.y)


@dataclass(frozen=True)
class Shop(Site):
    """A street-front shop (``kind``: its trade, e.g. ``restaurant``, ``grocery``).

    Args:
        frontage: The storefront line along the pavement (local plane).
    """

    frontage: LineString = field(repr=False, compare=False)


@dataclass(frozen=True)
class Sensor(Site):
    """A front-end sensor (``kind``: ``door_contact``, ``water_meter``, ``smoke``, ...), e.g.
    a door contact at the home of an elderly resident living alone.

    Args:
        household: Household or site it watches, if any.
    """

    household: str | None = None


@dataclass(frozen=True)
class Venue(Site):
    """A place where crowds gather (``kind``: ``sales_meeting_room``, ``rental_hall``,
    ``community_centre``, ``school``, ``market``), e.g. a rented room used for
    health-product sales meetings.

    Args:
        capacity: People it holds.
    """

    capacity: int = 50
