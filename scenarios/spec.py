"""The schema of scenario files: ``scenario.toml`` and ``catalog.toml``.

Load → fill defaults → validate → frozen objects. Unknown keys are rejected (a typo must
not silently fall back to a default), and every error names the file, the field and the
reason.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, Literal, TypeVar

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from twin.catalog import Cause, Severity, Source
from twin.errors import ValidationError
from twin.staff import HANDLER_LADDER, Role

_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
_NAMED = re.compile(r"^([a-z_][A-Za-z0-9_.\-\[\]]*): (.+)$", re.S)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


_M = TypeVar("_M", bound=_Model)


class GeometryFiles(_Model):
    """Paths, relative to the scenario folder, of its data files."""

    boundary: str = "boundary.geojson"
    roads: str = "roads.geojson"
    catalog: str = "catalog.toml"
    cameras: str | None = None
    shops: str | None = None
    sensors: str | None = None
    venues: str | None = None
    #: Camera calibrations (``[cameras.<id>] image_size, points = [[u, v, lon, lat], ...]``);
    #: cameras without one get a synthetic pinhole calibration (:func:`twin.calibration.pinhole`).
    calibration: str | None = None


class TravelParams(_Model):
    """Travel speeds (see :class:`twin.geo.TravelSpeeds`)."""

    walk_speed_mps: float = Field(default=1.3, gt=0, lt=40)
    ebike_speed_mps: float = Field(default=4.5, gt=0, lt=40)
    car_speed_factor: float = Field(default=0.7, gt=0, le=1)


class RegionParams(_Model):
    """How many grids, communities and areas the boundary is cut into."""

    grids: int = Field(ge=1)
    communities: int = Field(ge=1)
    areas: int = Field(ge=1)

    @model_validator(mode="after")
    def _nested(self) -> RegionParams:
        if not self.areas <= self.communities <= self.grids:
            raise ValueError("must satisfy areas <= communities <= grids "
                             f"(got {self.areas} <= {self.communities} <= {self.grids})")
        return self


class Hotspot(_Model):
    """A place where shops and venues cluster (a historic block, a business district)."""

    name: str
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    radius_m: float = Field(gt=0)
    weight: float = Field(default=3.0, gt=0)


class AssetParams(_Model):
    """Counts and properties of procedurally placed assets."""

    cameras: int = Field(default=0, ge=0)
    camera_range_m: float = Field(default=60.0, gt=0, le=500)
    camera_fov_deg: float = Field(default=70.0, gt=0, le=360)
    camera_detect_p: float = Field(default=0.9, ge=0, le=1)
    camera_latency_s: float = Field(default=20.0, ge=0)
    shops: int = Field(default=0, ge=0)
    sensors: int = Field(default=0, ge=0)
    venues: int = Field(default=0, ge=0)
    hotspots: tuple[Hotspot, ...] = ()


class ShiftParams(_Model):
    """One shift, local wall-clock times ``HH:MM`` (``end`` may be ``24:00``)."""

    code: str
    start: str
    end: str

    @field_validator("code")
    @classmethod
    def _code(cls, v: str) -> str:
        if not _CODE.match(v):
            raise ValueError("must be a short identifier (letters, digits, _ or -)")
        return v

    @field_validator("start", "end")
    @classmethod
    def _time(cls, v: str) -> str:
        m = _HHMM.match(v)
        if not m or (m.group(1) == "24" and m.group(2) != "00"):
            raise ValueError(f"must be a time of day as HH:MM (00:00-24:00), got '{v}'")
        return v

    def seconds(self, which: Literal["start", "end"]) -> int:
        """The time as seconds after midnight."""
        h, m = getattr(self, which).split(":")
        return int(h) * 3600 + int(m) * 60


def _hhmm_s(v: str) -> int:
    m = _HHMM.match(v)
    if not m or (m.group(1) == "24" and m.group(2) != "00"):
        raise ValueError(f"must be a time of day as HH:MM (00:00-24:00), got '{v}'")
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60


class RosterParams(_Model):
    """Roster rules: rotation of roles without a rotation, handover, and availability
    (:class:`twin.rota.Availability`)."""

    rotation_days: int = Field(default=0, ge=0)
    handover_s: int = Field(default=0, ge=0)
    shrinkage: float = Field(default=0.0, ge=0, lt=1)
    absence_spell_days: int = Field(default=1, ge=1, le=60)
    meal_break_min: int = Field(default=0, ge=0, le=120)
    meal_break_window: tuple[str, str] = ("03:00", "05:00")
    call_in_min: int = Field(default=30, ge=0, le=24 * 60)

    @field_validator("meal_break_window")
    @classmethod
    def _window(cls, v: tuple[str, str]) -> tuple[str, str]:
        a, b = (_hhmm_s(x) for x in v)
        if a >= b:
            raise ValueError(f"'{v[0]}' to '{v[1]}' (hours after the shift starts): the start must come first")
        return v


class RotationParams(_Model):
    """A ``[rotations.<name>]`` working pattern (see :class:`twin.rota.Rotation`).

    - ``kind = "continuous"``: teams rotate forward through ``shifts`` (default: every shift,
      in order of their start in the day), ``days_on`` days on each, then ``days_off`` off
      (四班三倒: three shifts, 2 on, 2 off, four teams).
    - ``kind = "weekly"``: every team works ``week`` (Monday..Sunday; ``""`` off).
    - ``kind = "cycles"``: ``cycles`` lists each team's days (``""`` off) from Monday
      2026-01-05 on.

    ``on_call = true`` makes it an on-call pattern (备勤): its members, on their shifts, come
    on duty only in wartime, ``[roster] call_in_min`` after the switch.
    """

    kind: Literal["continuous", "weekly", "cycles"]
    shifts: tuple[str, ...] = ()
    days_on: int = Field(default=2, ge=1, le=14)
    days_off: int = Field(default=2, ge=0, le=28)
    week: tuple[str, ...] = ()
    teams: int = Field(default=1, ge=1, le=20)
    cycles: tuple[tuple[str, ...], ...] = ()
    on_call: bool = False

    @model_validator(mode="after")
    def _fields(self) -> RotationParams:
        if self.kind == "weekly" and len(self.week) != 7:
            raise ValueError(f"week: give 7 days, Monday to Sunday (\"\" for a day off), got {len(self.week)}")
        if self.kind == "cycles" and (not self.cycles or any(not c for c in self.cycles)):
            raise ValueError("cycles: give each team's days, at least one")
        return self


class PostParams(_Model):
    """A ``[[posts]]`` fixed duty (see :class:`twin.rota.Post`): ``per_area`` members of
    ``role`` stand there, off dispatch, in each ``HH:MM-HH:MM`` window on ``days``."""

    name: str = Field(min_length=1)
    role: Role
    per_area: int = Field(default=1, ge=1, le=50)
    days: str = "all"
    windows: tuple[str, ...] = Field(min_length=1)

    @field_validator("windows")
    @classmethod
    def _windows(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for w in v:
            parts = w.split("-")
            if len(parts) != 2:
                raise ValueError(f"'{w}': write a window as HH:MM-HH:MM")
            a, b = (_hhmm_s(x.strip()) for x in parts)
            if a >= b:
                raise ValueError(f"'{w}': the start must come before the end, within one day")
        return v

    def seconds(self) -> tuple[tuple[int, int], ...]:
        """The windows as seconds after midnight."""
        out = []
        for w in self.windows:
            a, b = (_hhmm_s(x.strip()) for x in w.split("-"))
            out.append((a, b))
        return tuple(out)


class PatternParams(_Model):
    """``people`` members of a role in ``area`` working ``rotation`` (a ``[rotations.<name>]``)."""

    area: str = Field(min_length=1)
    rotation: str = Field(min_length=1)
    people: int = Field(ge=1)


class RoleStaff(_Model):
    """Head count and working pattern of one role.

    ``per_area`` (optional) fixes how many members each area has on each shift, e.g.
    ``{A1 = {day = 4, evening = 3, night = 2}}``; it replaces the proportional spread of
    ``count`` (which must then equal the total) and needs ``roster.rotation_days = 0``
    (teams of unequal size cannot rotate). The staffing optimiser writes this table.

    ``rotation`` names a ``[rotations.<name>]`` pattern: the members are split into its teams
    (in each area in turn), and ``shifts`` may be left out.

    ``patterns`` (optional) says, per area, how many members work which rotation, e.g.
    ``[{area = "A2", rotation = "four_team", people = 40}, {area = "A2", rotation =
    "night_off_mon_tue", people = 1}]``: a mix of rotations, as the staffing optimiser's
    roster writes it (``count`` must equal the total).
    """

    count: int = Field(ge=0)
    shifts: tuple[str, ...] = ()
    travel: Literal["walk", "ebike", "car"] = "ebike"
    per_area: dict[str, dict[str, int]] | None = None
    rotation: str | None = None
    patterns: tuple[PatternParams, ...] | None = None

    @model_validator(mode="after")
    def _per_area(self) -> RoleStaff:
        if self.per_area is not None:
            total = 0
            for area, shifts in self.per_area.items():
                for code, n in shifts.items():
                    if code not in self.shifts:
                        raise ValueError(f"per_area.{area}.{code}: not one of this role's shifts {list(self.shifts)}")
                    if n < 0:
                        raise ValueError(f"per_area.{area}.{code}: must be >= 0, got {n}")
                    total += n
            if total != self.count:
                raise ValueError(f"per_area totals {total} members but count is {self.count}")
        return self


class SquadParams(_Model):
    """An explicit road squad and the areas whose roads it covers."""

    id: str
    name: str = ""
    areas: tuple[str, ...] = Field(min_length=1)


class PolicyParams(_Model):
    """Dispatch-policy parameters."""

    max_reassign: int = Field(default=1, ge=0, le=10)
    return_to_post: bool = True


class ScenarioFile(_Model):
    """``scenario.toml``."""

    schema_version: Literal[1]
    name: str = Field(min_length=1)
    title: str = ""
    timezone: str = "Asia/Shanghai"
    population: int = Field(default=0, ge=0)
    stated_area_km2: float | None = Field(default=None, gt=0)
    seed: int = 0
    geometry: GeometryFiles = GeometryFiles()
    travel: TravelParams = TravelParams()
    regions: RegionParams
    assets: AssetParams = AssetParams()
    shifts: tuple[ShiftParams, ...] = Field(min_length=1)
    roster: RosterParams = RosterParams()
    rotations: dict[str, RotationParams] = {}
    staff: dict[Role, RoleStaff]
    posts: tuple[PostParams, ...] = ()
    squads: tuple[SquadParams, ...] = ()
    policy: PolicyParams = PolicyParams()

    @model_validator(mode="after")
    def _rotation(self) -> ScenarioFile:
        codes = [sh.code for sh in self.shifts]
        for name, rot in self.rotations.items():
            used = {*rot.shifts, *rot.week, *(d for c in rot.cycles for d in c)} - {""}
            unknown = sorted(used - set(codes))
            if unknown:
                raise ValueError(f"rotations.{name}: unknown shift(s) {unknown}; defined: {', '.join(codes)}")
        for role, spec in self.staff.items():
            if spec.patterns is not None:
                if spec.per_area is not None:
                    raise ValueError(f"staff.{role.value}.patterns: give patterns or per_area, not both")
                for k, pat in enumerate(spec.patterns):
                    if pat.rotation not in self.rotations:
                        raise ValueError(f"staff.{role.value}.patterns[{k}].rotation: no [rotations.{pat.rotation}]")
                total = sum(p.people for p in spec.patterns)
                if total != spec.count:
                    raise ValueError(f"staff.{role.value}.patterns: they total {total} people but count is {spec.count}")
            if spec.rotation is not None:
                if spec.rotation not in self.rotations:
                    raise ValueError(f"staff.{role.value}.rotation: no [rotations.{spec.rotation}]; defined: "
                                     + (", ".join(self.rotations) or "none"))
                if spec.per_area is not None:
                    raise ValueError(f"staff.{role.value}.per_area: a table of members per shift cannot go with "
                                     "a rotation (teams work different shifts on different days)")
            elif not spec.shifts:
                raise ValueError(f"staff.{role.value}.shifts: name at least one shift, or give a rotation")
            if spec.per_area is not None and self.roster.rotation_days:
                raise ValueError(f"staff.{role.value}.per_area needs roster.rotation_days = 0: teams of "
                                 "unequal size cannot rotate")
        for post in self.posts:
            if post.role not in self.staff:
                raise ValueError(f"posts.{post.name}.role: no [staff.{post.role.value}] to staff it")
        return self

    @field_validator("staff", mode="before")
    @classmethod
    def _roles(cls, v: Any) -> Any:
        if isinstance(v, dict):
            known = {r.value for r in Role}
            for key in v:
                if key not in known:
                    raise ValueError(f"unknown role '{key}'; known roles: {', '.join(sorted(known))}")
        return v


# --- catalog.toml -------------------------------------------------------------------------

class CategoryParams(_Model):
    """One ``[[categories]]`` entry (see :class:`twin.catalog.Category`)."""

    code: str
    name_zh: str
    name_en: str
    example: str


class CameraRuleParams(_Model):
    """A scenario's ``[scenarios.camera]`` table (see :class:`twin.catalog.CameraRule`)."""

    labels: tuple[str, ...] = Field(min_length=1)
    zone: str
    dwell_s: float = Field(default=0.0, ge=0)
    min_count: int = Field(default=1, ge=1)


class SensorRuleParams(_Model):
    """A scenario's ``[scenarios.sensor]`` table (see :class:`twin.catalog.SensorRule`)."""

    kind: str
    rule: str
    threshold: float = 0.0


def _handling_role(v: Any) -> Any:
    """Refuse, before enum parsing, a role that cannot handle events (a grid leader, say)."""
    allowed = [r.value for r in HANDLER_LADDER]
    if v not in allowed:
        names = ", ".join(f"'{a}'" for a in allowed[:-1]) + f" or '{allowed[-1]}'"
        raise ValueError(f"Input should be {names} (got {v!r})")
    return v


#: A role of the handler ladder (grid worker, co-governance, enforcement).
HandlingRole = Annotated[Role, BeforeValidator(_handling_role)]


class ScenarioParams(_Model):
    """One ``[[scenarios]]`` entry: the fields of :class:`twin.catalog.ScenarioSpec`.

    Every field but ``camera`` and ``sensor`` passes to the dataclass unchanged (see
    :func:`scenarios.files.catalog_from_file`), so a new catalog field is one line here and
    one in the dataclass. The enums are the twin's own; the dataclass checks the rest
    (target order, the ladder, camera and sensor rules).
    """

    code: str
    name_zh: str
    name_en: str
    category: str
    sources: tuple[Source, ...] = Field(min_length=1)
    severity: Severity
    department: str
    handler_chain: tuple[HandlingRole, ...] = Field(min_length=1)
    joint_departments: tuple[str, ...] = ()
    respond_s: float = Field(gt=0)
    on_scene_s: float = Field(gt=0)
    reinforce_s: float = Field(gt=0)
    handling_min: float = Field(gt=0)
    self_correct_p: float = Field(default=0.0, ge=0, le=1)
    rate_per_day: float = Field(default=0.0, ge=0)
    merge_radius_m: float = Field(default=50.0, ge=0)
    merge_window_s: float = Field(default=1800.0, ge=0)
    public: bool = True
    cause: Cause = "street"
    description: str = ""
    rationale: str = ""
    camera: CameraRuleParams | None = None
    sensor: SensorRuleParams | None = None


class ReferenceParams(_Model):
    """``[reference]`` of ``catalog.toml``: the district the rates are given for. A district of
    another size scales each scenario's rate by its own exposure over these (see
    :class:`twin.catalog.Reference`)."""

    residents: int = Field(gt=0)
    shops: int = Field(gt=0)
    road_km: float = Field(gt=0)
    venues: int = Field(gt=0)


class CatalogFile(_Model):
    """``catalog.toml``."""

    schema_version: Literal[1]
    reference: ReferenceParams | None = None
    categories: tuple[CategoryParams, ...] = Field(min_length=1)
    scenarios: tuple[ScenarioParams, ...] = Field(min_length=1)


def _loc(loc: tuple[Any, ...], data: Any) -> str:
    """Dotted field path; list items named by their ``code``/``id`` where they have one."""
    path = ""
    node = data
    for item in loc:
        if isinstance(item, int):
            child = node[item] if isinstance(node, (list, tuple)) and 0 <= item < len(node) else None
            label = (child.get("code") or child.get("id")) if isinstance(child, dict) else None
            path += f"[{label or item}]"
        else:
            child = node.get(item) if isinstance(node, dict) else None
            path += f".{item}" if path else str(item)
        node = child
    return path or "(file)"


def parse(model: type[_M], data: Any, *, source: str) -> _M:
    """Validate ``data`` against ``model``.

    Raises:
        ValidationError: naming ``source``, the field and the reason (the first problem;
            the count of further ones is appended).
    """
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        errors = exc.errors(include_url=False)
        # A misspelt key shows up twice (unknown key + missing field): report the misspelling.
        errors.sort(key=lambda e: e["type"] != "extra_forbidden")
        first = errors[0]
        field = _loc(tuple(first["loc"]), data)
        msg = first["msg"]
        if first["type"] == "missing":
            msg = "is required but missing"
        elif first["type"] == "extra_forbidden":
            parent = tuple(first["loc"][:-1])
            missing = [str(e["loc"][-1]) for e in errors
                       if e["type"] == "missing" and tuple(e["loc"][:-1]) == parent]
            close = difflib.get_close_matches(str(first["loc"][-1]), missing, n=1)
            msg = "is not a known setting" + (f"; did you mean '{close[0]}'?" if close
                                              else " (check the spelling)")
            errors = [e for e in errors if not (e["type"] == "missing" and close
                                                and tuple(e["loc"]) == (*parent, close[0]))]
        elif "input" in first and first["type"] not in ("value_error",):
            msg = f"{msg} (got {first['input']!r})"
        msg = msg.removeprefix("Value error, ")
        named = _NAMED.match(msg) if not first["loc"] else None
        if named:  # a check across fields names the field it blames: "staff.x.rotation: reason"
            field, msg = named.group(1), named.group(2)
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise ValidationError(field, msg + more, source=source) from None
