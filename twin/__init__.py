"""twin: the pure domain model of street governance.

One model serves the live twin (``actors/``, wall clock) and the what-if simulator
(``scenarios/``, SimPy clock): geography (:mod:`twin.geo`), street assets
(:mod:`twin.assets`), the three teams and their roster (:mod:`twin.staff`), the catalog of
48 application scenarios (:mod:`twin.catalog`), the event lifecycle (:mod:`twin.workflow`)
and the dispatch/escalation policy (:mod:`twin.policy`), gathered in
:class:`twin.district.District`; the dispatch desk (:class:`twin.desk.Desk`) holds the
brain's state and makes every decision about an event's fate for both engines, and
:mod:`twin.kpis` defines the 1/3/5-minute KPIs once.

Every function takes ``now`` (POSIX seconds); nothing reads the wall clock. This package
imports no Ray, SimPy, Mesa, FastAPI, torch or pydeck.
"""

from twin.catalog import Catalog, Category, ScenarioSpec, Severity, Source
from twin.district import District
from twin.errors import IllegalTransition, NotFound, TwinError, ValidationError
from twin.geo import Location, RoadNetwork, TravelMode
from twin.staff import Member, Mode, Role, Roster, Shift, ShiftPlan, Squad
from twin.workflow import Action, AuditRecord, Event, State

__all__ = [
    "Action",
    "AuditRecord",
    "Catalog",
    "Category",
    "District",
    "Event",
    "IllegalTransition",
    "Location",
    "Member",
    "Mode",
    "NotFound",
    "RoadNetwork",
    "Role",
    "Roster",
    "ScenarioSpec",
    "Severity",
    "Shift",
    "ShiftPlan",
    "Source",
    "Squad",
    "State",
    "TravelMode",
    "TwinError",
    "ValidationError",
]
__version__ = "0.1.0"
