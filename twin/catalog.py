"""The catalog of problems the street brain handles: 5 categories, 48 application scenarios.

The case study (FACTS.md) names five categories with one example each and says the
platform carries 48 application scenarios. Each :class:`ScenarioSpec` says how a problem is
detected, how severe it is (FIWARE Alert scale), which department answers for it, the
ladder of handlers it escalates through, and its response targets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal, get_args

from twin.errors import NotFound, ValidationError
from twin.staff import HANDLER_LADDER, Role


class Severity(str, Enum):
    """FIWARE Alert severity scale, least to most severe."""

    INFORMATIONAL = "informational"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 (informational) to 4 (critical)."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}


class Source(str, Enum):
    """How an event can be discovered."""

    CAMERA = "camera"
    SENSOR = "sensor"
    CITIZEN = "citizen"
    REFERRAL_110 = "referral_110"
    PATROL = "patrol"


#: Who or what causes a scenario's incidents: a street-front shop, a residential block, an
#: elderly resident living alone, a venue (a rented meeting room), or the street itself
#: (traffic, stalls, litter). The what-if simulator draws each incident from agents of this kind.
Cause = Literal["merchant", "block", "elderly", "venue", "street"]
CAUSES: tuple[Cause, ...] = get_args(Cause)

CATEGORY_CODES = ("city_management", "market_supervision", "traffic", "public_security",
                  "public_services")

CAMERA_LABELS = frozenset({
    "person", "car", "truck", "bus", "motorcycle", "bicycle", "tricycle", "goods", "stall",
    "umbrella", "trash", "fire", "smoke", "water", "crowd",
})
ZONE_KINDS = frozenset({"storefront", "no_parking", "roadway", "sidewalk", "entrance", "waterway",
                        "any"})
SENSOR_KINDS = frozenset({"door_contact", "water_meter", "smoke", "gas", "water_level", "noise",
                          "air_quality", "manhole_cover", "fire_hydrant_pressure",
                          "camera"})  # a camera's stream itself (rule ``offline``: City Eye reports it down)
SENSOR_RULES = frozenset({"no_activity", "threshold_exceeded", "tamper", "offline"})


@dataclass(frozen=True)
class Category:
    """One of the five problem categories.

    Args:
        code: ``city_management``, ``market_supervision``, ``traffic``, ``public_security``
            or ``public_services``.
        name_zh: Chinese name.
        name_en: English name.
        example: Code of the study's named example scenario.
    """

    code: str
    name_zh: str
    name_en: str
    example: str

    def __post_init__(self) -> None:
        if self.code not in CATEGORY_CODES:
            raise ValidationError(f"categories.{self.code}.code",
                                  f"unknown category; expected one of {', '.join(CATEGORY_CODES)}")


@dataclass(frozen=True)
class CameraRule:
    """What a camera must see for this scenario to fire.

    Args:
        labels: Object classes the detector looks for.
        zone: Zone kind in the camera's view where they must be.
        dwell_s: Seconds they must stay before an event fires (0: at once).
        min_count: Minimum number of objects.
    """

    labels: tuple[str, ...]
    zone: str
    dwell_s: float = 0.0
    min_count: int = 1


@dataclass(frozen=True)
class SensorRule:
    """What a sensor reading must show for this scenario to fire.

    Args:
        kind: Sensor kind (``door_contact``, ``water_meter``, ...).
        rule: ``no_activity``, ``threshold_exceeded``, ``tamper`` or ``offline``.
        threshold: Seconds (no_activity/offline) or a reading value (threshold_exceeded).
    """

    kind: str
    rule: str
    threshold: float = 0.0


@dataclass(frozen=True)
class ScenarioSpec:
    """One of the 48 application scenarios.

    Args:
        code: Unique code (``CM01``).
        name_zh: Chinese name.
        name_en: English name.
        category: Category code.
        sources: How the problem is discovered.
        severity: FIWARE Alert severity.
        department: Responsible subdistrict office or department.
        handler_chain: Escalation ladder, lowest tier first.
        joint_departments: Other departments for a joint consultation (会商), if any.
        respond_s: Target from dispatch to signing (签收), seconds.
        on_scene_s: Target from report to the first handler on scene, seconds.
        reinforce_s: Target from report to reinforcement on scene, seconds.
        handling_min: Mean on-scene handling time, minutes.
        self_correct_p: Probability the party self-corrects after a reminder (0-1).
        rate_per_day: Expected incidents per day in the reference district.
        merge_radius_m: Reports of the same scenario within this distance ...
        merge_window_s: ... and this time are merged as duplicates.
        public: Its reports may be shown to the public (Open311 request lists); false for
            reports about people's homes, health or personal circumstances.
        cause: Who or what causes its incidents (see :data:`Cause`); ``street`` by default.
        camera: Camera rule, when cameras detect it.
        sensor: Sensor rule, when sensors detect it.
        description: What is detected and what the handler does.
        rationale: Why these values.
    """

    code: str
    name_zh: str
    name_en: str
    category: str
    sources: tuple[Source, ...]
    severity: Severity
    department: str
    handler_chain: tuple[Role, ...]
    respond_s: float
    on_scene_s: float
    reinforce_s: float
    handling_min: float
    self_correct_p: float = 0.0
    rate_per_day: float = 0.0
    merge_radius_m: float = 50.0
    merge_window_s: float = 1800.0
    public: bool = True
    cause: Cause = "street"
    joint_departments: tuple[str, ...] = ()
    camera: CameraRule | None = None
    sensor: SensorRule | None = None
    description: str = ""
    rationale: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        f = f"scenarios.{self.code}"
        if not self.sources:
            raise ValidationError(f"{f}.sources", "must name at least one source")
        if not self.handler_chain:
            raise ValidationError(f"{f}.handler_chain", "must name at least one role")
        ranks = []
        for role in self.handler_chain:
            if role not in HANDLER_LADDER:
                raise ValidationError(f"{f}.handler_chain",
                                      f"'{role.value}' is not a handling role; use "
                                      + ", ".join(r.value for r in HANDLER_LADDER))
            ranks.append(HANDLER_LADDER.index(role))
        if ranks != sorted(set(ranks)):
            raise ValidationError(f"{f}.handler_chain",
                                  "must climb the ladder grid_worker → co_governance → "
                                  "enforcement without repeats")
        if not (0 < self.respond_s < self.on_scene_s < self.reinforce_s):
            raise ValidationError(f"{f}.respond_s",
                                  "targets must satisfy 0 < respond_s < on_scene_s < reinforce_s, "
                                  f"got {self.respond_s}/{self.on_scene_s}/{self.reinforce_s}")
        if not self.handling_min > 0:
            raise ValidationError(f"{f}.handling_min", f"must be > 0, got {self.handling_min}")
        if not (0.0 <= self.self_correct_p <= 1.0):
            raise ValidationError(f"{f}.self_correct_p", f"must be in [0, 1], got {self.self_correct_p}")
        if self.rate_per_day < 0:
            raise ValidationError(f"{f}.rate_per_day", f"must be >= 0, got {self.rate_per_day}")
        if self.merge_radius_m < 0 or self.merge_window_s < 0:
            raise ValidationError(f"{f}.merge_radius_m", "merge radius and window must be >= 0")
        if self.cause not in CAUSES:
            raise ValidationError(f"{f}.cause", f"unknown cause '{self.cause}'; known: {', '.join(CAUSES)}")
        if (self.camera is None) == (Source.CAMERA in self.sources):
            raise ValidationError(f"{f}.camera",
                                  "a camera rule is required exactly when 'camera' is a source")
        if (self.sensor is None) == (Source.SENSOR in self.sources):
            raise ValidationError(f"{f}.sensor",
                                  "a sensor rule is required exactly when 'sensor' is a source")
        if self.camera is not None:
            bad = [lbl for lbl in self.camera.labels if lbl not in CAMERA_LABELS]
            if bad or not self.camera.labels:
                raise ValidationError(f"{f}.camera.labels", f"unknown or missing labels {bad}; "
                                      f"known: {', '.join(sorted(CAMERA_LABELS))}")
            if self.camera.zone not in ZONE_KINDS:
                raise ValidationError(f"{f}.camera.zone", f"unknown zone kind '{self.camera.zone}'; "
                                      f"known: {', '.join(sorted(ZONE_KINDS))}")
        if self.sensor is not None:
            if self.sensor.kind not in SENSOR_KINDS:
                raise ValidationError(f"{f}.sensor.kind", f"unknown sensor kind '{self.sensor.kind}'")
            if self.sensor.rule not in SENSOR_RULES:
                raise ValidationError(f"{f}.sensor.rule", f"unknown sensor rule '{self.sensor.rule}'")

    @property
    def first_role(self) -> Role:
        """The role that handles the event first."""
        return self.handler_chain[0]

    def role_at(self, tier: int) -> Role:
        """The role at escalation tier ``tier`` (0 = first)."""
        return self.handler_chain[tier]


@dataclass(frozen=True)
class Reference:
    """The district a catalog's rates are given for (``rate_per_day`` is per day *there*).

    A district of another size draws each scenario at its rate times its own exposure over
    the reference's, by what causes the scenario: shops for merchants, patrolled road
    kilometres for the street, residents for homes and elderly people, venues for sales
    meetings (:meth:`factor`).

    Args:
        residents: Residents.
        shops: Street-front shops.
        road_km: Patrolled road, kilometres.
        venues: Rooms where health-product sales meetings gather.
    """

    residents: int
    shops: int
    road_km: float
    venues: int

    def factor(self, cause: str, *, residents: float, shops: float, road_km: float, venues: float) -> float:
        """How many times the reference's rate a district of this exposure has, for a
        scenario caused by ``cause`` (rounded to 0.001: the reference itself gets 1)."""
        have, ref = {"merchant": (shops, self.shops), "street": (road_km, self.road_km),
                     "block": (residents, self.residents), "elderly": (residents, self.residents),
                     "venue": (venues, self.venues)}.get(cause, (road_km, self.road_km))
        return round(have / ref, 3)


class Catalog:
    """The categories and application scenarios of a district.

    Args:
        categories: The five categories.
        scenarios: The application scenarios; each names one of the categories.
        reference: The district the rates are for (``None``: the rates are this district's own).

    Raises:
        ValidationError: for a duplicate code, an unknown category, or a category whose
            example is not one of its own scenarios.
    """

    def __init__(self, categories: Iterable[Category], scenarios: Iterable[ScenarioSpec], *,
                 reference: Reference | None = None) -> None:
        self.reference = reference
        self.categories: dict[str, Category] = {}
        for cat in categories:
            if cat.code in self.categories:
                raise ValidationError(f"categories.{cat.code}", "duplicate category code")
            self.categories[cat.code] = cat
        self.scenarios: dict[str, ScenarioSpec] = {}
        for spec in scenarios:
            if spec.code in self.scenarios:
                raise ValidationError(f"scenarios.{spec.code}", "duplicate scenario code")
            if spec.category not in self.categories:
                raise ValidationError(f"scenarios.{spec.code}.category",
                                      f"unknown category '{spec.category}'; known: "
                                      + ", ".join(self.categories))
            self.scenarios[spec.code] = spec
        for cat in self.categories.values():
            ex = self.scenarios.get(cat.example)
            if ex is None or ex.category != cat.code:
                raise ValidationError(f"categories.{cat.code}.example",
                                      f"'{cat.example}' is not a scenario of this category")

    def __len__(self) -> int:
        return len(self.scenarios)

    def __iter__(self) -> Iterator[ScenarioSpec]:
        return iter(self.scenarios.values())

    def __getitem__(self, code: str) -> ScenarioSpec:
        try:
            return self.scenarios[code]
        except KeyError:
            raise NotFound("scenario", code) from None

    def __contains__(self, code: object) -> bool:
        return code in self.scenarios

    def in_category(self, category: str) -> list[ScenarioSpec]:
        """Scenarios of one category, in catalog order."""
        return [s for s in self.scenarios.values() if s.category == category]

    def counts_by_category(self) -> Mapping[str, int]:
        """Number of scenarios per category."""
        return {c: len(self.in_category(c)) for c in self.categories}
