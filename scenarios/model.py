"""The simulator's data contracts: what demand produces, how people behave, what a run returns.

The engine (:mod:`scenarios.engine`), the demand models (:mod:`scenarios.demand`,
:mod:`scenarios.presets`), the simulated handlers (:mod:`scenarios.handlers`, also run by
the live twin's synthetic feed), the KPIs and the what-if fork all speak these types; none
of them needs the engine to name them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from twin.desk import Firsts
from twin.geo import Location
from twin.policy import MemberState
from twin.staff import DAY_S, Mode, Role
from twin.workflow import AuditRecord, Event


@dataclass(slots=True)
class Incident:
    """Something that happens in the street (ground truth), whether or not anyone sees it.

    Read-only by convention (see :class:`EventRecord`).

    Args:
        id: Unique id within a run.
        t_s: Onset, seconds since the start of the run.
        scenario: Catalog scenario code.
        location: Where.
        duration_s: How long it lasts if nobody acts (``inf``: until handled).
        agent_id: The demand agent that caused it (a merchant, a household, ...), if any.
        cameras: Ids of the cameras whose view covers the spot.
        sensor: Whether a sensor watches the spot (e.g. an elderly resident's door contact).
        referral: Whether it arrives as a 110 referral.
        key: Its place in the demand's random substreams (responsive demand): the discovery
            draws of the incident come from a substream of this key, so two compared worlds
            draw the same numbers for the same incident. ``None``: the run's shared stream.
    """

    id: int
    t_s: float
    scenario: str
    location: Location
    duration_s: float = math.inf
    agent_id: str | None = None
    cameras: tuple[str, ...] = ()
    sensor: bool = False
    referral: bool = False
    key: tuple[int, ...] | None = None


class Demand(Protocol):
    """What creates incidents. The Mesa model and the preset Poisson sources implement it."""

    def incidents(self, start_s: float, end_s: float) -> list[Incident]:
        """Incidents with onset in ``[start_s, end_s)``, in onset order."""
        ...

    def feedback(self, incident: Incident, outcome: str, now_s: float) -> None:
        """What became of an incident (``self_corrected``, ``handled``, ``undiscovered``, ...)."""
        ...

    def self_correct_p(self, incident: Incident, base_p: float) -> float:
        """Probability that the party behind ``incident`` self-corrects after a reminder."""
        ...


@dataclass(frozen=True)
class ResponseParams:
    """How people behave, and how the simulator runs; documented defaults, each an assumption
    (see ``scenarios/xiaohe/README.md``). The dispatch policy itself (reassignments before
    escalating, ...) is the district's (:class:`twin.district.PolicySettings`).

    Args:
        sign_mean_s: Mean delay from dispatch to signing (exponential), seconds; 0: instant.
        reminder_s: Time a grid worker's remote reminder takes, seconds.
        travel_cv: Coefficient of variation of travel time around the road-graph estimate.
        fixed_travel_s: If set, every trip takes exactly this long (presets).
        handling: ``exponential`` or ``lognormal`` (cv 0.8) on-scene handling times.
        resolve_p: Probability an on-site handler below the top tier resolves the case
            (else it escalates); the top tier always resolves.
        verify_mean_s: Mean delay from resolution to verification (核销), seconds.
        consult_s: Duration of a joint consultation (会商), seconds.
        citizen_p: Probability that a citizen reports an incident they can report.
        citizen_mean_s: Mean delay of a citizen report, seconds.
        referral_s: Delay of a 110 referral reaching the street brain, seconds.
        patrol_share: Share of on-duty time each role spends on street patrol (the brigade's
            first task; grid workers patrol less, they have community work).
        patrol_notice_p: Probability that a patroller passing a problem notices it.
        patrol_effort: Multiplies street patrol manpower (what-if: more or fewer patrols).
        queue: Events wait for a free member (``False``: lost when nobody is free).
        abandon: Waiting events are withdrawn when their incident ends.
        timers: Apply the respond/on-scene/reinforce deadlines (``False`` for presets that
            model a plain queue).
        mode: Peacetime or wartime.
        run_cards: Dispatch by fixed preference lists per grid instead of nearest member.
        keep_audit: Keep every audit record (memory grows with the run).
        patrol_speed_mps: Speed at which patrols pass spots (``None``: walking speed, the
            scenario's ``walk_speed_mps``).
        background_patrol: Patrollers on duty at every hour from outside the roster (e.g. the
            police auxiliaries of a world without the brigade), spread over the district by
            road length, in patrol-member equivalents.
        car_congestion: 24 multipliers (local hour 0-23) on car trips over the road graph's
            estimate (peak-hour traffic); ``None``: none. E-bikes and walkers are not slowed.
        camera_recall: Per scenario code, the probability that a camera whose view covers
            an incident raises it (replaces the camera's ``detect_p`` for that rule).
        camera_precision: Share of camera alerts that are true; each true alert comes with
            ``(1 − precision) / precision`` false ones on average (per scenario code, or one
            value for all).
        screen_s: Mean seconds the command centre takes to screen a camera alert before it
            becomes an event (exponential; 0: none).
        screen_reject_p: Probability that screening rejects a false alert (the rest are
            dispatched and found to be nothing).
    """

    sign_mean_s: float = 25.0
    reminder_s: float = 120.0
    travel_cv: float = 0.2
    fixed_travel_s: float | None = None
    handling: str = "lognormal"
    resolve_p: float = 0.85
    verify_mean_s: float = 900.0
    consult_s: float = 2 * DAY_S
    citizen_p: float = 0.35
    citizen_mean_s: float = 1800.0
    referral_s: float = 90.0
    patrol_share: Mapping[Role, float] = field(default_factory=lambda: {Role.GRID_WORKER: 0.25,
                                                                         Role.CO_GOVERNANCE: 0.6})
    patrol_notice_p: float = 0.5
    patrol_effort: float = 1.0
    queue: bool = True
    abandon: bool = True
    timers: bool = True
    mode: Mode = Mode.PEACETIME
    run_cards: Mapping[str, Sequence[str]] | None = None
    keep_audit: bool = False
    patrol_speed_mps: float | None = None
    background_patrol: float = 0.0
    car_congestion: tuple[float, ...] | None = None
    camera_recall: Mapping[str, float] = field(default_factory=dict)
    camera_precision: float | Mapping[str, float] = 1.0
    screen_s: float = 0.0
    screen_reject_p: float = 0.9


@dataclass(slots=True)
class EventRecord:
    """One flat record per event (times in seconds; ``nan`` where it did not happen).

    Read-only by convention (not frozen: a frozen dataclass of 33 fields takes several
    microseconds to build, and the engine builds one per event).
    """

    event_id: str
    incident_id: int
    scenario: str
    category: str
    severity: str
    source: str
    area_id: str
    grid_id: str
    shift: str
    day: int
    hour: int
    onset_s: float
    reported_s: float
    discovery_delay_s: float
    wait_s: float
    respond_s: float
    on_scene_s: float
    reinforce_s: float
    resolved_s: float
    closed_s: float
    travel_s: float
    handler: str
    handler_role: str
    tier: int
    escalations: int
    reassignments: int
    needs_on_scene: bool
    reinforcement: bool
    supervised: bool
    self_corrected: bool
    repeat: bool
    within_targets: bool
    outcome: str
    # The stage that handled it: since its last escalation (or reopening), else its report.
    stage_s: float = 0.0             # when that stage began, after the report
    stage_wait_s: float = math.nan   # its first dispatch, after the stage began
    stage_respond_s: float = math.nan  # its first signature, after that dispatch
    stage_on_scene_s: float = math.nan  # its first arrival on scene, after the stage began
    node: int = -1  # the road node of the spot
    referral: bool = False  # its incident was (also) a 110 call
    key: tuple[int, ...] | None = None  # its incident's demand key (see Incident)


@dataclass
class RunResult:
    """What one run produced: a record per event plus run-level tallies.

    ``backlog`` counts the events still waiting for a handler when the run ends;
    ``carried`` the open events taken over from a :class:`StartState`, and ``notes`` what
    the engine had to adjust to take them over (see :meth:`Engine.seed_state`).
    """

    records: list[EventRecord]
    incidents: int
    undiscovered: int
    days: float
    busy_s: dict[str, float]
    duty_s: dict[str, float]
    roles: dict[str, str]
    areas: dict[str, str]
    patrol_km: float
    max_queue: int
    audit: list[AuditRecord] = field(default_factory=list)
    samples: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    backlog: int = 0
    carried: int = 0
    notes: list[str] = field(default_factory=list)
    measured_incidents: int = 0  # incidents with onset after the warm-up (discovered or not)
    alerts: dict[str, float] = field(default_factory=dict)  # camera alerts: true, false, screening hours
    demand: dict[str, Any] = field(default_factory=dict)  # what the demand model reports of itself

    def to_pandas(self) -> Any:
        """The event records as a pandas DataFrame (one row per event)."""
        import pandas as pd

        cols = list(EventRecord.__dataclass_fields__)
        return pd.DataFrame([[getattr(r, c) for c in cols] for r in self.records], columns=cols)


@dataclass(frozen=True)
class StartState:
    """The live state a run starts from: a what-if fork of the live twin.

    The fields are those of :meth:`actors.live.LiveTwin.snapshot`.

    Args:
        now: POSIX time of the snapshot; the run's clock starts exactly here.
        open_events: The open events, in the states they are in.
        members: Routing node and busy flag of each member. Ids the district does not
            know are dropped (with a note); members absent here start free at their posts.
        holding: Member id → id of the event they work on, as handler or reinforcement.
        firsts: Event id → its first dispatch and signature and the deadlines already acted
            on (the live desk's :class:`twin.desk.Firsts`), where the snapshot has them.
    """

    now: float
    open_events: Sequence[Event] = ()
    members: Mapping[str, MemberState] = field(default_factory=dict)
    holding: Mapping[str, str] = field(default_factory=dict)
    firsts: Mapping[str, Firsts] = field(default_factory=dict)
