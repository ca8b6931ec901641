"""The what-if engine: SimPy processes over the shared twin.

Incidents (ground truth, from a :class:`Demand`) are *discovered* by the first of a camera
that covers the spot, a sensor, a 110 referral, a citizen, or a passing patrol; the event is
then reported, merged if it duplicates an open one, and *dispatched* through
:mod:`twin.policy`; every state change goes through :func:`twin.workflow.apply`, the same
code the live twin runs. The engine only supplies ``now`` and waits.

Response follows the case study: the handler signs (签收) within ``respond_s`` or the
dispatch is reassigned, then escalated; a grid worker at the first tier *reminds* the party,
who self-corrects with some probability, else the case climbs to the brigade on site and
then to enforcement; nobody on scene by ``on_scene_s`` brings reinforcement, and late
reinforcement a supervision alert (督办). An event waiting for a free member is withdrawn
if its incident ends first (the car drove off): abandonment.

A run can start from the live twin's state instead of an empty street (a what-if fork,
:class:`StartState`): the open events carry on from the states they are in, members from
where they stand. See :meth:`Engine.seed_state`.

Randomness: one :class:`numpy.random.SeedSequence` per run, split into streams by purpose
(demand, discovery, response), so compared scenarios share their demand draws (common
random numbers), and a rerun with the same seed is bit-identical.
"""

from __future__ import annotations

import gc
import heapq
import math
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np
import simpy
from simpy.events import Timeout

from twin.catalog import ScenarioSpec, Source
from twin.district import District
from twin.geo import Location
from twin.policy import (
    Assignment,
    DuplicateIndex,
    MemberState,
    Remedy,
    Targets,
    Timer,
    dispatch,
    dispatch_by_run_card,
    dispatch_reinforcement,
    remedy,
    targets_for,
)
from twin.staff import Mode, Role
from twin.workflow import TERMINAL, Action, AuditRecord, Event, State, advance, apply, new_event, report

DAY_S = 86_400.0


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
    """How people behave; documented defaults, each an assumption (see scenarios/README).

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
        assist_mean_s: Mean time a reinforcement member stays on scene, seconds.
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
        max_reassign: Reassignments of an unsigned dispatch before escalating.
        keep_audit: Keep every audit record (memory grows with the run).
    """

    sign_mean_s: float = 25.0
    reminder_s: float = 120.0
    travel_cv: float = 0.2
    fixed_travel_s: float | None = None
    handling: str = "lognormal"
    resolve_p: float = 0.85
    verify_mean_s: float = 900.0
    consult_s: float = 2 * DAY_S
    assist_mean_s: float = 600.0
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
    max_reassign: int = 1
    keep_audit: bool = False


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


@dataclass(slots=True)
class _Track:
    """Mutable bookkeeping of one event during a run (the twin Event stays immutable)."""

    incident: Incident
    spec: ScenarioSpec
    targets: Targets
    source: str
    shift: str
    reported_s: float = math.nan  # simulated clock (seconds since start), exact
    first_dispatch_s: float = math.nan
    first_sign_s: float = math.nan
    first_travel_s: float = math.nan
    needs_on_scene: bool = False
    supervised: bool = False
    self_corrected: bool = False
    repeat: bool = False
    outcome: str = "open"
    queued: bool = False
    done: bool = False


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

    def to_pandas(self) -> Any:
        """The event records as a pandas DataFrame (one row per event)."""
        import pandas as pd

        cols = list(EventRecord.__dataclass_fields__)
        return pd.DataFrame([[getattr(r, c) for c in cols] for r in self.records], columns=cols)


class Draws:
    """Scalar random draws from one numpy Generator, taken in blocks.

    Each of numpy's scalar calls costs about a microsecond; the engine makes several per
    event. Drawing 1,024 standard variates at a time and scaling them is the same
    distribution, and just as reproducible: each kind of draw has its own block, so the
    sequence depends only on the seed and the order of the calls.
    """

    __slots__ = ("_e", "_ei", "_n", "_ni", "_u", "_ui", "rng")
    BLOCK = 1024

    def __init__(self, seed: np.random.SeedSequence) -> None:
        self.rng = np.random.default_rng(seed)
        self._u: list[float] = []
        self._e: list[float] = []
        self._n: list[float] = []
        self._ui = self._ei = self._ni = 0

    def random(self) -> float:
        """Uniform on [0, 1)."""
        i = self._ui
        if i == len(self._u):
            self._u, i = self.rng.random(self.BLOCK).tolist(), 0
        self._ui = i + 1
        return self._u[i]

    def exponential(self, mean: float) -> float:
        """Exponential with this mean."""
        i = self._ei
        if i == len(self._e):
            self._e, i = self.rng.standard_exponential(self.BLOCK).tolist(), 0
        self._ei = i + 1
        return mean * self._e[i]

    def lognormal(self, mu: float, sigma: float) -> float:
        """``exp(N(mu, sigma))``."""
        i = self._ni
        if i == len(self._n):
            self._n, i = self.rng.standard_normal(self.BLOCK).tolist(), 0
        self._ni = i + 1
        return math.exp(mu + sigma * self._n[i])


class _Process:
    """A light SimPy process: a generator that yields delays (seconds) instead of events.

    It runs at once up to its first positive delay (zero delays do not wait), then is
    resumed by a SimPy timeout, one per wait. ``env.process`` would add an initialisation
    event and a generic resume per step; the engine starts a process per dispatch, so this
    roughly halves its event count.
    """

    __slots__ = ("env", "gen")

    def __init__(self, env: simpy.Environment, gen: Generator[float, None, None]) -> None:
        self.env, self.gen = env, gen

    def __call__(self, _ev: object = None) -> None:
        gen = self.gen
        try:
            delay = next(gen)
            while delay <= 0:
                delay = next(gen)
        except StopIteration:
            return
        Timeout(self.env, delay).callbacks.append(self)  # type: ignore[union-attr]


#: States in which the assignee is busy with the event.
_HELD = frozenset({State.DISPATCHED, State.SIGNED, State.ON_SCENE, State.REINFORCEMENT_REQUESTED})
#: States in which an open event waits for someone to dispatch it.
_WAITING = frozenset({State.REPORTED, State.ESCALATED})


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
    """

    now: float
    open_events: Sequence[Event] = ()
    members: Mapping[str, MemberState] = field(default_factory=dict)
    holding: Mapping[str, str] = field(default_factory=dict)


class Engine:
    """One simulation run of a district.

    Args:
        district: The district (shared with the live twin).
        demand: The incident source.
        params: Behaviour parameters.
        seed: Seed (or a :class:`numpy.random.SeedSequence`) of this run.
        start: Local date and time the run starts (the district's time zone); default
            Monday 2026-01-05 00:00.
        start_state: Start from this live state (see :meth:`seed_state`) instead of an
            empty street; the clock then starts at exactly ``start_state.now`` (``start``,
            if given too, must agree with it to the millisecond).

    Raises:
        ValueError: ``start`` and ``start_state.now`` disagree.
    """

    def __init__(self, district: District, demand: Demand, *, params: ResponseParams | None = None,
                 seed: int | np.random.SeedSequence = 0, start: datetime | None = None,
                 start_state: StartState | None = None) -> None:
        self.district = district
        self.demand = demand
        self.p = params or ResponseParams()
        ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        # Stream 0 belongs to demand (see run_once); 1 to discovery, 2 to response.
        self.rng_disc = Draws(child_seed(ss, 1))
        self.rng_resp = Draws(child_seed(ss, 2))
        tz = ZoneInfo(district.roster.timezone_name)
        if start_state is not None:
            # The exact POSIX float, not a datetime (microseconds): the carried events' last
            # transitions must not lie after the run's clock, or time would run backwards.
            self.epoch = float(start_state.now)
            if start is not None and abs((start if start.tzinfo else start.replace(tzinfo=tz)).timestamp()
                                         - self.epoch) > 1e-3:
                raise ValueError(f"start: {start.isoformat()} is not the start state's now ({self.epoch})")
        else:
            start = start or datetime(2026, 1, 5)
            self.epoch = (start if start.tzinfo else start.replace(tzinfo=tz)).timestamp()
        self.env = simpy.Environment()
        self.state: dict[str, MemberState] = {m.id: MemberState(m.post_node) for m in district.roster.members}
        self.busy_since: dict[str, float] = {}
        self.busy_s: dict[str, float] = {m.id: 0.0 for m in district.roster.members}
        self.events: dict[str, Event] = {}
        self.tracks: dict[str, _Track] = {}
        self.queue: list[tuple[int, float, int, str]] = []
        self._qseq = 0
        self.max_queue = 0
        self.dups = DuplicateIndex(cell_m=100.0)
        self.records: list[EventRecord] = []
        self.audit: list[AuditRecord] = []
        self.undiscovered = 0
        self.n_incidents = 0
        self.measure_from = 0.0
        self.open_ids: set[str] = set()
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._last_closed: dict[tuple[str, str], float] = {}
        self._area_road_m = self._road_length_by_area()
        self._cams = {c.id: c for c in district.cameras}
        self._patrollers: dict[tuple[float, str], int] = {}
        self._spec_info: dict[str, tuple[Targets, str, bool]] = {}  # targets, severity, merges
        self._role = {m.id: m.role for m in district.roster.members}
        self._role_name = {m.id: m.role.value for m in district.roster.members}
        self.start_state = start_state
        self.carried = 0
        self.notes: list[str] = []

    def _spawn(self, gen: Generator[float, None, None]) -> None:
        """Start a process (see :class:`_Process`); it runs until its first wait now."""
        _Process(self.env, gen)()

    # --- clock ---------------------------------------------------------------------------------
    def now(self) -> float:
        """POSIX time of the simulated clock."""
        return self.epoch + self.env.now

    # --- load sampling (for the staffing optimiser) --------------------------------------------
    def sample_load(self, role: Role, every_s: float = 600.0) -> None:
        """Record, every ``every_s`` seconds, how many events per area are in system for
        ``role``: being handled by a member of that role, or waiting for one.

        The samples (``self.samples``: ``(t_s, {area: count})``) are the "number in system"
        of the iterative staffing algorithm.
        """
        def sampler() -> Any:
            while True:
                yield every_s
                counts: dict[str, int] = {}
                for eid in self.open_ids:
                    e, tr = self.events[eid], self.tracks[eid]
                    if e.assignee is not None and e.state in _HELD:
                        need = self.district.roster.member(e.assignee).role
                    elif tr.queued:
                        need = tr.spec.handler_chain[min(e.tier, len(tr.spec.handler_chain) - 1)]
                    else:
                        continue
                    if need is role:
                        counts[e.location.area_id] = counts.get(e.location.area_id, 0) + 1
                self.samples.append((self.env.now, counts))

        self._spawn(sampler())

    # --- set-up helpers ------------------------------------------------------------------------
    def _road_length_by_area(self) -> dict[str, float]:
        d = self.district
        out: dict[str, float] = {}
        for i in d.responsible:
            g = d.road_grid[int(i)]
            if g >= 0:
                area = d.regions.area_of(d.regions.grids[int(g)].id)
                out[area] = out.get(area, 0.0) + d.roads.segments[int(i)].length_m
        return out

    def _patrol_rate(self, area: str, at_s: float) -> float:
        """Rate (per second) at which some patrol passes a given spot of ``area`` at ``at_s``."""
        now = self.epoch + at_s
        key = (self.district.roster.shift_window(now)[0], area)
        n = self._patrollers.get(key)
        if n is None:  # patrol manpower on duty in the area (members × their patrol share)
            duty = self.district.roster.on_duty_ids(now)
            n = sum(self.p.patrol_share.get(m.role, 0.0) for m in self.district.roster.members
                    if m.id in duty and m.area_id == area)
            self._patrollers[key] = n
        road = self._area_road_m.get(area, 0.0)
        if n == 0 or road <= 0:
            return 0.0
        # Patrols walk their streets; a spot is passed at rate (walkers × speed / road length).
        return n * self.p.patrol_effort * self.district.roads.speeds.walk_mps * self.p.patrol_notice_p / road

    # --- the run -------------------------------------------------------------------------------
    def run(self, days: float, *, warmup_days: float = 0.0) -> RunResult:
        """Simulate ``days`` days and return the records.

        Args:
            days: Length of the run.
            warmup_days: Busy and duty time (utilisation, patrol) are measured after this;
                every event is recorded (KPI functions filter by report time).
        """
        horizon = days * DAY_S
        self.measure_from = warmup_days * DAY_S
        if self.start_state is not None:
            self.seed_state(self.start_state)
            self.start_state = None
        self._spawn(self._demand_feed(horizon))
        # The run builds hundreds of thousands of long-lived objects (events, records) and no
        # reference cycles of its own; the cyclic collector would rescan them all again and
        # again (a quarter of the run time). It is paused for the run and restored after.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self.env.run(until=horizon)
        finally:
            if collecting:
                gc.enable()
        backlog = 0
        for eid, tr in self.tracks.items():
            if not tr.done:
                backlog += tr.queued
                self._record(eid, "open")
        duty = self._duty_seconds(horizon)
        patrol_km = 0.0
        speed = self.district.roads.speeds.walk_mps
        for m in self.district.roster.members:
            if m.id in self.busy_since:  # still busy at the end
                self.busy_s[m.id] += self.env.now - max(self.busy_since[m.id], self.measure_from)
            share = self.p.patrol_share.get(m.role, 0.0) * self.p.patrol_effort
            if share > 0:
                patrol_km += min(share * duty[m.id], max(0.0, duty[m.id] - self.busy_s[m.id])) * speed / 1000
        return RunResult(records=self.records, incidents=self.n_incidents, undiscovered=self.undiscovered,
                         days=days, busy_s=dict(self.busy_s), duty_s=duty,
                         roles={m.id: m.role.value for m in self.district.roster.members},
                         areas={m.id: m.area_id for m in self.district.roster.members},
                         patrol_km=patrol_km, max_queue=self.max_queue, audit=self.audit, samples=self.samples,
                         backlog=backlog, carried=self.carried, notes=self.notes)

    def _duty_seconds(self, horizon: float) -> dict[str, float]:
        roster = self.district.roster
        out = {m.id: 0.0 for m in roster.members}
        t = self.measure_from
        while t < horizon:
            nxt = min(roster.next_change(self.epoch + t) - self.epoch, horizon)
            for mid in roster.on_duty_ids(self.epoch + t):
                out[mid] += nxt - t
            t = nxt
        return out

    def _demand_feed(self, horizon: float) -> Any:
        day = 0
        while day * DAY_S < horizon:
            start, end = day * DAY_S, min((day + 1) * DAY_S, horizon)
            if self.env.now < start:
                yield start - self.env.now
            for inc in self.demand.incidents(start, end):
                self.n_incidents += 1
                self._schedule(inc)
            day += 1
            # Members coming on duty take waiting work at each shift change.
            self._spawn(self._shift_changes(end))

    def _shift_changes(self, until: float) -> Any:
        while True:
            nxt = self.district.roster.next_change(self.now()) - self.epoch
            if nxt >= until:
                return
            yield nxt - self.env.now
            duty = self.district.roster.on_duty_ids(self.now())
            for m in self.district.roster.members:  # incoming idle members start at their posts
                if m.id in duty and not self.state[m.id].busy:
                    self.state[m.id] = MemberState(m.post_node)
            self._drain(None)

    # --- an incident's life --------------------------------------------------------------------
    def _discovery(self, inc: Incident, spec: ScenarioSpec) -> tuple[float, str]:
        r = self.rng_disc
        best, how = math.inf, ""
        if Source.CAMERA in spec.sources and inc.cameras and spec.camera is not None:
            for cid in inc.cameras:
                cam = self._cams[cid]
                if r.random() < cam.detect_p:
                    t = spec.camera.dwell_s + r.exponential(cam.latency_s) if cam.latency_s else spec.camera.dwell_s
                    if t < best:
                        best, how = t, Source.CAMERA.value
        if inc.sensor and spec.sensor is not None:
            t = spec.sensor.threshold if spec.sensor.rule in ("no_activity", "offline") else 60.0
            if t < best:
                best, how = t, Source.SENSOR.value
        if inc.referral and Source.REFERRAL_110 in spec.sources:
            t = self.p.referral_s
            if t < best:
                best, how = t, Source.REFERRAL_110.value
        if Source.CITIZEN in spec.sources and r.random() < self.p.citizen_p:
            t = r.exponential(self.p.citizen_mean_s)
            if t < best:
                best, how = t, Source.CITIZEN.value
        if Source.PATROL in spec.sources:
            rate = self._patrol_rate(inc.location.area_id, inc.t_s)
            if rate > 0:
                t = r.exponential(1.0 / rate)
                if t < best:
                    best, how = t, Source.PATROL.value
        return best, how


    def _schedule(self, inc: Incident) -> None:
        """Draw how (and whether) an incident is discovered, and schedule its report.

        Discovery is decided when the day's incidents arrive, from the patrol strength at
        the onset; a timeout callback then reports it (no process per incident), or tells
        the agent at the onset that nobody noticed.
        """
        spec = self.district.catalog[inc.scenario]
        delay, how = self._discovery(inc, spec)
        if delay >= inc.duration_s or math.isinf(delay):
            self.undiscovered += 1
            self.env.timeout(max(0.0, inc.t_s - self.env.now)).callbacks.append(
                lambda _ev: self.demand.feedback(inc, "undiscovered", self.env.now))
            return
        self.env.timeout(max(0.0, inc.t_s + delay - self.env.now)).callbacks.append(
            lambda _ev: self._report(inc, spec, how))

    def _report(self, inc: Incident, spec: ScenarioSpec, how: str) -> None:
        eid = f"S{inc.id}"
        now = self.now()
        info = self._spec_info.get(spec.code)
        if info is None:
            info = self._spec_info[spec.code] = (targets_for(spec, self.p.mode), spec.severity.value,
                                                 spec.merge_radius_m > 0 and spec.merge_window_s > 0)
        targets, severity, merging = info
        if self.p.keep_audit:
            event, rec = report(event_id=eid, scenario=spec.code, category=spec.category, severity=severity,
                                source=how, location=inc.location, now=now, actor=how)
            self.audit.append(rec)
        else:
            event = new_event(event_id=eid, scenario=spec.code, category=spec.category, severity=severity,
                              source=how, location=inc.location, now=now)
        shift, _ = self.district.roster.shift_at(now)
        tr = _Track(inc, spec, targets, how, shift.code, self.env.now)
        last = self._last_closed.get((spec.code, inc.agent_id or inc.location.road_id))
        tr.repeat = last is not None and self.env.now - last <= 7 * DAY_S
        self.events[eid] = event
        self.tracks[eid] = tr
        self.open_ids.add(eid)
        if merging:
            dup = self.dups.find(event, spec)
            if dup is not None:
                self._apply(eid, Action.MERGE, actor="brain", reason="duplicate", into=dup.id)
                self.demand.feedback(inc, "merged", self.env.now)
                self._record(eid, "merged")
                return
            self.dups.add(event)
        self._request_dispatch(eid)

    # --- a start state (what-if fork) ----------------------------------------------------------
    def seed_state(self, state: StartState) -> None:
        """Take over a live state at t = 0, before anything else happens (:meth:`run` calls it
        when the engine was built with ``start_state``).

        Members stand at their snapshot nodes. Each open event becomes an event of the run
        in the state it is in, with a track whose times are the event's own (report, last
        dispatch, signature, arrival: reported before the run, so at negative run times),
        and carries on with the engine's own processes:

        - ``reported`` / ``escalated``: dispatched at once, or queued, oldest first within a
          severity (as the live queue orders them);
        - ``consultation``: dispatched when the rest of the consultation (``consult_s``
          after the event's last update) is over;
        - ``dispatched``: its handler is busy and signs against what is left of the respond
          deadline (reassign, escalate, supervise as usual);
        - ``signed``: the handler goes on from the signature (a grid worker's reminder, or
          the trip to the spot);
        - ``on_scene``: the handler finishes the handling, then resolves, escalates or
          consults; ``reinforcement_requested``: whichever of the three its handler has
          reached (``on_scene_at``, ``signed_at``), without a respond deadline (the live
          twin keeps none once reinforcement is asked for);
        - ``resolved``: verified after a verification delay;
        - reinforcement members (``holding``) still on the way travel, then assist; those
          already there assist.

        Approximations, each because the snapshot does not say more: delays already under
        way are drawn afresh from t = 0 (signing, handling, verification, assistance) —
        exact for exponential delays, which are memoryless (``sign_mean_s``,
        ``verify_mean_s``, ``assist_mean_s``, and handling with ``handling="exponential"``),
        an approximation for the default lognormal handling; trips start at the member's
        snapshot node (the live twin does not follow members on the way); the reminder
        starts afresh; an ``on_scene`` event is taken to have its handler on site even
        where only the reinforcement arrived; the problem behind a carried event lasts until
        handled (no abandonment: the twin knows no ground truth); KPI times count from the
        event's last dispatch (the first is not in the snapshot).

        Adjustments, each with a note in :attr:`notes`: a member the district does not
        know is dropped; an event held by a dropped member, or by nobody, goes back to the
        queue at its tier; a member marked busy with no open event to hold is freed; an
        event of a scenario the catalog lacks is left out.

        Raises:
            ValueError: the engine has already run, or an event id clashes with the ids the
                run gives new events (``S`` and a number).
        """
        if self.env.now != 0 or self.events:
            raise ValueError("seed_state: the run has already begun")
        roster, catalog, epoch, notes = self.district.roster, self.district.catalog, self.epoch, self.notes
        n_nodes = self.district.roads.n_nodes
        for mid, st in state.members.items():
            m = roster.by_id.get(mid)
            if m is None:
                notes.append(f"member {mid} is not in this district: dropped")
            elif isinstance(st.node, (int, np.integer)) and 0 <= int(st.node) < n_nodes:
                self.state[mid] = MemberState(int(st.node))
            else:
                notes.append(f"member {mid} stood at an unknown node {st.node!r}: starts at their post")
        taken: dict[str, str] = {}  # member → the event they hold
        waiting: list[str] = []
        consulting: list[tuple[str, float]] = []
        resolved: list[str] = []
        handlers: list[tuple[str, Assignment, int, float | None]] = []
        helpers: list[tuple[str, Assignment, float | None]] = []
        for k, e in enumerate(sorted(state.open_events, key=lambda e: (e.reported_at, e.id)), 1):
            if not e.is_open:
                continue
            if e.id in self.events or (e.id[:1] == "S" and e.id[1:].isdigit()):
                raise ValueError(f"seed_state: event id {e.id!r} clashes with the run's own ids")
            if e.scenario not in catalog:
                notes.append(f"event {e.id}: scenario {e.scenario} is not in this district's catalog: left out")
                continue
            spec = catalog[e.scenario]
            if e.updated_at > epoch:  # a transition stamped after the snapshot: clamp it
                e = replace(e, updated_at=epoch)
            holder = e.assignee
            if e.state in _HELD and (holder is None or holder not in self.state or holder in taken):
                why = "nobody" if holder is None else (f"{holder}, who also holds {taken[holder]}" if holder in taken
                                                       else f"{holder}, who is not in this district")
                notes.append(f"event {e.id} ({e.state.value}) was held by {why}: back in the queue")
                e = replace(e, state=State.REPORTED if e.tier == 0 else State.ESCALATED, assignee=None,
                            dispatched_at=None, signed_at=None)
            t0 = e.reported_at - epoch
            tr = _Track(Incident(-k, t0, e.scenario, e.location), spec, targets_for(spec, self.p.mode), e.source,
                        roster.shift_at(e.reported_at)[0].code, t0)
            tr.needs_on_scene = e.on_scene_at is not None
            if e.dispatched_at is not None:
                tr.first_dispatch_s = e.dispatched_at - epoch
                if e.signed_at is not None:
                    tr.first_sign_s = e.signed_at - e.dispatched_at
            self.events[e.id] = e
            self.tracks[e.id] = tr
            self.open_ids.add(e.id)
            self.dups.add(e)
            self.carried += 1
            if e.state in _WAITING:
                waiting.append(e.id)
            elif e.state is State.CONSULTATION:
                consulting.append((e.id, max(0.0, e.updated_at + self.p.consult_s - epoch)))
            elif e.state is State.RESOLVED:
                resolved.append(e.id)
            else:  # held: the handler carries on from where they are
                assert holder is not None
                taken[holder] = e.id
                if e.state is State.ON_SCENE or (e.state is State.REINFORCEMENT_REQUESTED and e.on_scene_at is not None):
                    resume, left = 2, None
                elif e.state is State.SIGNED or (e.state is State.REINFORCEMENT_REQUESTED and e.signed_at is not None):
                    resume, left = 1, None
                elif e.state is State.DISPATCHED:
                    resume = 0
                    left = None if e.dispatched_at is None else e.dispatched_at + tr.targets.respond_s - epoch
                else:  # reinforcement asked for before the handler signed: no respond deadline
                    resume, left = 0, math.inf
                handlers.append((e.id, self._carried_assignment(holder, e), resume, left))
            for rid in e.reinforcements:
                if state.holding.get(rid) == e.id and rid in self.state and rid not in taken:
                    taken[rid] = e.id
                    there = e.reinforced_at is not None
                    helpers.append((e.id, self._carried_assignment(rid, e),
                                    None if there else tr.reported_s + tr.targets.reinforce_s))
        for mid, st in state.members.items():
            if st.busy and mid in self.state and mid not in taken:
                notes.append(f"member {mid} was busy with no open event to carry on: free")
        for mid in taken:
            self._busy(mid)
        ranks = {eid: self.tracks[eid].spec.severity.rank for eid in waiting}
        for eid in sorted(waiting, key=lambda i: (-ranks[i], self.events[i].reported_at, i)):
            self._request_dispatch(eid)
        for eid, after in consulting:
            self.env.timeout(after).callbacks.append(partial(self._after_consultation, eid))
        for eid in resolved:
            self._verify(eid)
        for eid, a, resume, left in handlers:
            self._spawn(self._handle(eid, a, resume, left))
        for eid, a, deadline in helpers:
            self._spawn(self._assist(eid, a, deadline))

    def _after_consultation(self, eid: str, _ev: object) -> None:
        self._request_dispatch(eid)

    def _carried_assignment(self, mid: str, event: Event) -> Assignment:
        """The assignment of a member who already holds ``event`` (travel from where they stand)."""
        m = self.district.roster.member(mid)
        roads, src, dst = self.district.roads, self.state[mid].node, event.location.node
        t = roads.travel(m.travel_mode).seconds(src, dst)
        if math.isinf(t):
            t = roads.crow_fly_s(m.travel_mode, src, dst)
        return Assignment(mid, m.role, event.tier, t, "carried over from the live state")

    # --- dispatch --------------------------------------------------------------------------------
    def _choose(self, eid: str, exclude: Sequence[str] = ()) -> Assignment | None:
        event = self.events[eid]
        if self.p.run_cards is not None:
            return dispatch_by_run_card(event, run_cards=self.p.run_cards, district=self.district,
                                        members=self.state, now=self.now(), exclude=exclude)
        return dispatch(event, spec=self.tracks[eid].spec, district=self.district, members=self.state,
                        now=self.now(), mode=self.p.mode, exclude=exclude)

    def _request_dispatch(self, eid: str, exclude: Sequence[str] = ()) -> None:
        a = self._choose(eid, exclude)
        if a is None:
            if not self.p.queue:
                self._apply(eid, Action.WITHDRAW, actor="brain", reason="nobody free (loss system)")
                self._record(eid, "lost")
                return
            tr = self.tracks[eid]
            tr.queued = True
            self._qseq += 1
            heapq.heappush(self.queue, (-tr.spec.severity.rank, self.env.now, self._qseq, eid))
            self.max_queue = max(self.max_queue, len(self.queue))
            inc = tr.incident
            if self.p.abandon and math.isfinite(inc.duration_s):
                self._spawn(self._patience(eid, inc.t_s + inc.duration_s))
            return
        self._start(eid, a)

    def _patience(self, eid: str, until_s: float) -> Any:
        if until_s > self.env.now:
            yield until_s - self.env.now
        tr = self.tracks[eid]
        if tr.queued and not tr.done:
            tr.queued = False  # lazily dropped from the heap
            self._apply(eid, Action.WITHDRAW, actor="brain", reason="the problem went away while waiting")
            self.demand.feedback(tr.incident, "abandoned", self.env.now)
            self._record(eid, "abandoned")

    def _drain(self, freed_role: Role | None) -> None:
        """Give waiting events to members who became free (one member: at most one event).

        An event is only tried if the freed member's role is still on its ladder; once a
        dispatch for a role fails, every member of that role on duty is busy, so later
        events needing that role are not tried again in this pass.
        """
        keep: list[tuple[int, float, int, str]] = []
        failed: set[Role] = set()
        while self.queue:
            item = heapq.heappop(self.queue)
            eid = item[3]
            tr = self.tracks[eid]
            if not tr.queued:
                continue
            chain = tr.spec.handler_chain[self.events[eid].tier:]
            if (freed_role is not None and freed_role not in chain) or chain[0] in failed:
                keep.append(item)
                continue
            a = self._choose(eid)
            if a is None:
                failed.add(chain[0])
                keep.append(item)
                continue
            tr.queued = False
            self._start(eid, a)
            if freed_role is not None:
                break
        for item in keep:
            heapq.heappush(self.queue, item)

    def _busy(self, mid: str) -> None:
        self.state[mid] = MemberState(self.state[mid].node, True)
        self.busy_since[mid] = self.env.now

    def _free(self, mid: str, node: int | None = None) -> None:
        self.state[mid] = MemberState(self.state[mid].node if node is None else node, False)
        now = self.env.now
        since = self.busy_since.pop(mid, now)
        if now > self.measure_from:
            self.busy_s[mid] += now - (since if since > self.measure_from else self.measure_from)
        if self.queue:
            self._drain(self._role[mid])

    def _start(self, eid: str, a: Assignment) -> None:
        tr = self.tracks[eid]
        self._busy(a.member_id)
        self._apply(eid, Action.DISPATCH, actor="brain", reason=a.reason, member=a.member_id,
                    tier=a.tier, travel_s=round(a.travel_s, 1))
        if math.isnan(tr.first_dispatch_s):
            tr.first_dispatch_s = self.env.now
        self._spawn(self._handle(eid, a))

    # --- handling ------------------------------------------------------------------------------
    def _travel(self, a: Assignment) -> float:
        if self.p.fixed_travel_s is not None:
            return self.p.fixed_travel_s
        if self.p.travel_cv <= 0:
            return a.travel_s
        s2 = math.log(1 + self.p.travel_cv ** 2)
        return a.travel_s * self.rng_resp.lognormal(-s2 / 2, math.sqrt(s2))

    def _handling(self, spec: ScenarioSpec) -> float:
        mean = spec.handling_min * 60.0
        if self.p.handling == "exponential":
            return self.rng_resp.exponential(mean)
        s2 = math.log(1 + 0.8 ** 2)
        return mean * self.rng_resp.lognormal(-s2 / 2, math.sqrt(s2))

    def _handle(self, eid: str, a: Assignment, resume: int = 0, sign_left_s: float | None = None) -> Any:
        """The handler's part: sign, remind or travel, handle on site, then resolve, escalate
        or consult.

        Args:
            eid: The event.
            a: Its assignment.
            resume: Where the handler picks up: 0 signing (a fresh dispatch), 1 just signed,
                2 on scene. A carried event (:meth:`seed_state`) resumes where it is.
            sign_left_s: Seconds left to sign before the respond deadline, for a dispatch
                made before the run (``None``: the scenario's full target; ``inf``: no
                deadline).
        """
        tr, spec, r = self.tracks[eid], self.tracks[eid].spec, self.rng_resp
        member = a.member_id
        if resume == 0:
            # 1. Signing, against the respond deadline (reassign → escalate → supervise).
            limit = tr.targets.respond_s if sign_left_s is None else sign_left_s
            while True:
                sign = r.exponential(self.p.sign_mean_s) if self.p.sign_mean_s > 0 else 0.0
                if not self.p.timers or sign <= limit:
                    if sign > 0:
                        yield sign
                    break
                yield limit
                event = self.events[eid]
                what = remedy(event, Timer.SIGN, spec=spec, max_reassign=self.p.max_reassign)
                if what is Remedy.REASSIGN:
                    alt = self._choose(eid, exclude=(member,))
                    if alt is not None:
                        self._free(member)
                        self._busy(alt.member_id)
                        self._apply(eid, Action.REASSIGN, actor="timer", reason="not signed in time",
                                    member=alt.member_id, travel_s=round(alt.travel_s, 1))
                        member, a = alt.member_id, alt
                        limit = tr.targets.respond_s
                        continue
                elif what is Remedy.ESCALATE and event.tier + 1 < len(spec.handler_chain):
                    self._free(member)
                    self._apply(eid, Action.ESCALATE, actor="timer", reason="not signed in time",
                                chain_length=len(spec.handler_chain))
                    self._request_dispatch(eid)
                    return
                self._supervise(eid, "not signed in time")
                # The late handler signs eventually: the rest of the delay (a carried
                # dispatch may have been late before the run: ``limit`` < 0, nothing waited).
                yield max(0.0, sign - max(limit, 0.0))
                break
            self._apply(eid, Action.SIGN, actor=member)
            if math.isnan(tr.first_sign_s):
                tr.first_sign_s = self.env.now - tr.first_dispatch_s
        if resume < 2:
            role = self._role[member]
            # 2a. The grid worker's remote reminder: the party may self-correct.
            if role is Role.GRID_WORKER and self.events[eid].tier == 0 and spec.self_correct_p > 0:
                yield self.p.reminder_s
                p = self.demand.self_correct_p(tr.incident, spec.self_correct_p)
                if r.random() < p:
                    tr.self_corrected = True
                    self._apply(eid, Action.RESOLVE, actor=member, result="self-corrected after a reminder")
                    self._free(member)
                    self._verify(eid)
                    return
                self._free(member)
                self._apply(eid, Action.ESCALATE, actor=member, reason="not corrected after a reminder",
                            chain_length=len(spec.handler_chain))
                self._request_dispatch(eid)
                return
            # 2b. On site.
            tr.needs_on_scene = True
            travel = self._travel(a)
            if math.isnan(tr.first_travel_s):
                tr.first_travel_s = travel
            deadline = tr.reported_s + tr.targets.on_scene_s
            if self.p.timers and self.events[eid].on_scene_at is None and self.env.now + travel > deadline:
                self._spawn(self._reinforce(eid, deadline, exclude=member))
            if travel > 0:
                yield travel
            if self.events[eid].state is not State.ON_SCENE:
                self._apply(eid, Action.ARRIVE, actor=member)
        yield self._handling(spec)
        tier = self.events[eid].tier
        top = tier + 1 >= len(spec.handler_chain)
        if top or r.random() < self.p.resolve_p:
            # (A consultation needs the case out of reinforcement first: the draw is made
            # either way, so the stream does not depend on it.)
            if top and spec.joint_departments and r.random() > self.p.resolve_p \
                    and self.events[eid].state is not State.REINFORCEMENT_REQUESTED:
                self._apply(eid, Action.CONSULT, actor=member, reason="needs a joint plan",
                            departments=list(spec.joint_departments))
                self._free(member, self.events[eid].location.node)
                yield self.p.consult_s
                self._request_dispatch(eid)
                return
            self._apply(eid, Action.RESOLVE, actor=member, result="handled on site")
            self._free(member, self.events[eid].location.node)
            self._verify(eid)
            return
        self._apply(eid, Action.ESCALATE, actor=member, reason="could not be resolved at this tier",
                    chain_length=len(spec.handler_chain))
        self._free(member, self.events[eid].location.node)
        self._request_dispatch(eid)

    def _reinforce(self, eid: str, at_s: float, exclude: str) -> Any:
        yield max(0.0, at_s - self.env.now)
        event, tr = self.events[eid], self.tracks[eid]
        if event.on_scene_at is not None or event.state not in (State.DISPATCHED, State.SIGNED):
            return
        a = dispatch_reinforcement(event, spec=tr.spec, district=self.district, members=self.state, now=self.now(),
                                   exclude=(exclude,))
        if a is None:
            self._supervise(eid, "nobody on scene and no reinforcement free")
            return
        self._busy(a.member_id)
        self._apply(eid, Action.REQUEST_REINFORCEMENT, actor="timer", reason="nobody on scene in time",
                    members=[a.member_id])
        yield from self._assist(eid, a, at_s + (tr.targets.reinforce_s - tr.targets.on_scene_s))

    def _assist(self, eid: str, a: Assignment, deadline: float | None) -> Any:
        """A reinforcement member's trip to the event (supervised if later than ``deadline``)
        and their stay on scene; ``deadline`` ``None``: already there (a carried event)."""
        event = self.events[eid]
        if deadline is not None:
            travel = self._travel(a)
            if self.env.now + travel > deadline:
                self._spawn(self._late_reinforcement(eid, deadline))
            yield travel
            if self.events[eid].state is State.REINFORCEMENT_REQUESTED:
                self._apply(eid, Action.REINFORCE, actor=a.member_id)
        yield self.rng_resp.exponential(self.p.assist_mean_s)
        self._free(a.member_id, event.location.node)

    def _late_reinforcement(self, eid: str, at_s: float) -> Any:
        yield max(0.0, at_s - self.env.now)
        if self.events[eid].reinforced_at is None and self.events[eid].is_open:
            self._supervise(eid, "reinforcement not on scene in time")

    def _supervise(self, eid: str, why: str) -> None:
        if self.events[eid].is_open:
            self._apply(eid, Action.SUPERVISE, actor="timer", reason=why)
            self.tracks[eid].supervised = True

    def _verify(self, eid: str) -> None:
        """Verification (核销) after a delay; a callback, not a process (one per event)."""
        delay = self.rng_resp.exponential(self.p.verify_mean_s) if self.p.verify_mean_s > 0 else 0.0
        if delay > 0:
            self.env.timeout(delay).callbacks.append(lambda _ev: self._close(eid))
        else:
            self._close(eid)

    def _close(self, eid: str) -> None:
        self._apply(eid, Action.VERIFY, actor="verifier")
        tr = self.tracks[eid]
        self.demand.feedback(tr.incident, "self_corrected" if tr.self_corrected else "handled", self.env.now)
        self._last_closed[(tr.spec.code, tr.incident.agent_id or tr.incident.location.road_id)] = self.env.now
        self._record(eid, "closed")

    # --- bookkeeping ---------------------------------------------------------------------------
    def _apply(self, eid: str, action: Action, *, actor: str, reason: str = "", **data: Any) -> None:
        if self.p.keep_audit:
            event, rec = apply(self.events[eid], action, now=self.epoch + self.env.now, actor=actor, reason=reason,
                               **data)
            self.audit.append(rec)
        else:  # the same transition, without building a record nobody keeps
            event = advance(self.events[eid], action, self.epoch + self.env.now, reason, data)
        self.events[eid] = event
        if event.state in TERMINAL:
            self.dups.discard(eid)
            self.open_ids.discard(eid)

    def _record(self, eid: str, outcome: str) -> None:
        tr, e = self.tracks[eid], self.events[eid]
        if tr.done:
            return
        tr.done = True
        t0 = e.reported_at
        nan = math.nan
        on_scene = nan if e.on_scene_at is None else e.on_scene_at - t0
        tg = tr.targets
        within = (outcome == "closed"
                  and (tr.first_sign_s != tr.first_sign_s or tr.first_sign_s <= tg.respond_s)  # nan: never signed
                  and (not tr.needs_on_scene or on_scene <= tg.on_scene_s))  # nan compares False
        member = e.assignee or ""
        inc, spec, loc = tr.incident, tr.spec, e.location
        self.records.append(EventRecord(
            eid, inc.id, spec.code, spec.category, e.severity, tr.source, loc.area_id, loc.grid_id, tr.shift,
            int(tr.reported_s // DAY_S), int((tr.reported_s % DAY_S) // 3600), inc.t_s, tr.reported_s,
            tr.reported_s - inc.t_s, tr.first_dispatch_s - tr.reported_s, tr.first_sign_s, on_scene,
            nan if e.reinforced_at is None else e.reinforced_at - t0,
            nan if e.resolved_at is None else e.resolved_at - t0,
            nan if e.closed_at is None else e.closed_at - t0,
            tr.first_travel_s, member, self._role_name[member] if member else "", e.tier, e.escalations,
            e.reassignments, tr.needs_on_scene, e.reinforcement_requested_at is not None, tr.supervised,
            tr.self_corrected, tr.repeat, within, outcome))


def child_seed(ss: np.random.SeedSequence, k: int) -> np.random.SeedSequence:
    """The ``k``-th child stream of ``ss``, the same however often it is asked for."""
    return np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, k))


def run_once(district: District, demand_factory: Callable[[np.random.SeedSequence], Demand], *, days: float,
             seed: int | np.random.SeedSequence, params: ResponseParams | None = None,
             start: datetime | None = None, warmup_days: float = 0.0, sample_role: Role | None = None,
             start_state: StartState | None = None) -> RunResult:
    """One run: the demand draws from the run's stream 0, the engine from streams 1 and 2.

    With ``sample_role``, the number of events in system per area for that role is sampled
    every 10 minutes into ``RunResult.samples`` (see :meth:`Engine.sample_load`). With
    ``start_state``, the run starts from that live state (see :meth:`Engine.seed_state`).
    """
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    engine = Engine(district, demand_factory(child_seed(ss, 0)), params=params, seed=ss, start=start,
                    start_state=start_state)
    if sample_role is not None:
        engine.sample_load(sample_role)
    return engine.run(days, warmup_days=warmup_days)


def replicate(district: District, demand_factory: Callable[[np.random.SeedSequence], Demand], *, days: float,
              seed: int, replication_ids: Sequence[int], params: ResponseParams | None = None,
              start: datetime | None = None, warmup_days: float = 0.0, sample_role: Role | None = None,
              progress: Callable[[int, int], None] | None = None) -> list[RunResult]:
    """Replications ``replication_ids`` of ``seed``: replication ``k`` runs on the ``k``-th child
    stream of ``SeedSequence(seed)``, whichever process runs it and in whatever order."""
    root = np.random.SeedSequence(seed)
    runs = []
    for done, k in enumerate(replication_ids, 1):
        runs.append(run_once(district, demand_factory, days=days, seed=child_seed(root, k), params=params,
                             start=start, warmup_days=warmup_days, sample_role=sample_role))
        if progress is not None:
            progress(done, len(replication_ids))
    return runs
