"""The what-if engine: SimPy processes over the shared twin.

Incidents (ground truth, from a :class:`~scenarios.model.Demand`) are *discovered* by the
first of a camera that covers the spot, a sensor, a 110 referral, a citizen, or a passing
patrol; the event is then reported to the dispatch desk (:class:`twin.desk.Desk`), the same
object the live twin decides with: it merges duplicates, dispatches, queues, acts on missed
deadlines (:func:`twin.policy.plan_deadline`), hands work over at shift changes and lets
freed members take waiting work. The engine only supplies ``now`` and waits: it schedules
the desk's deadlines as SimPy events (after any action at the same instant), and runs the
simulated handlers (:mod:`scenarios.handlers`, the scripts the live synthetic feed runs
too) as light processes that act through the desk.

An event waiting for a free member is withdrawn if its incident ends first (the car drove
off): abandonment.

A run can start from the live twin's state instead of an empty street (a what-if fork,
:class:`~scenarios.model.StartState`): the open events carry on from the states they are
in, members from where they stand. See :meth:`Engine.seed_state`.

The engine reads SimPy's clock as ``env._now`` on its hot paths (``env.now`` is a property
call); pyproject keeps SimPy below 5 for it.

Randomness: one :class:`numpy.random.SeedSequence` per run, split into streams by purpose
(demand, discovery, response), so compared scenarios share their demand draws (common
random numbers), and a rerun with the same seed is bit-identical.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import simpy
from simpy.events import Event as SimEvent
from simpy.events import EventPriority, Timeout

from scenarios.discovery import Discovery
from scenarios.handlers import LOOK, Act, DelayModel, Delays, Seen, handle, reinforce, verify
from scenarios.model import Demand, EventRecord, Incident, ResponseParams, RunResult, StartState
from scenarios.rng import Draws, child_seed
from twin.catalog import ScenarioSpec
from twin.desk import Desk, Firsts
from twin.district import District
from twin.errors import IllegalTransition
from twin.policy import Targets, Timer, targets_for
from twin.staff import DAY_S, Role
from twin.workflow import HELD, TERMINAL, WAITING, Action, AuditRecord, Event, State, new_event

__all__ = ["DAY_S", "Demand", "Draws", "Engine", "EventRecord", "Incident", "ResponseParams", "RunResult",
           "StartState", "child_seed", "replicate", "run_once"]

#: The transitions the engine keeps books of (handlers to start, supervision, outcomes).
_HEARD = frozenset({Action.DISPATCH, Action.REASSIGN, Action.REQUEST_REINFORCEMENT, Action.SUPERVISE,
                    Action.VERIFY, Action.MERGE, Action.WITHDRAW, Action.FALSE_ALARM})
#: SimPy priority of deadline events: after every action scheduled for the same instant (a
#: signature recorded at 60 s meets a 60 s target; see :mod:`twin.policy`).
_DEADLINE_PRIORITY = EventPriority(2)
_GRID_WORKER = Role.GRID_WORKER
_DISPATCH, _REASSIGN, _REQUEST_REINFORCEMENT, _SUPERVISE, _VERIFY = (
    Action.DISPATCH, Action.REASSIGN, Action.REQUEST_REINFORCEMENT, Action.SUPERVISE, Action.VERIFY)


@dataclass(slots=True)
class _Track:
    """The engine's own bookkeeping of one event (the desk keeps the event itself)."""

    incident: Incident
    spec: ScenarioSpec
    targets: Targets
    source: str
    shift: str
    reported_s: float = math.nan  # simulated clock (seconds since start), exact
    first_travel_s: float = math.nan
    needs_on_scene: bool = False
    supervised: bool = False
    self_corrected: bool = False
    repeat: bool = False
    abandoned: bool = False
    patient: bool = False  # a patience process watches it
    done: bool = False

    def travelled(self, trip: float) -> None:
        """A handler set off on a trip of ``trip`` seconds (the first one is recorded)."""
        self.needs_on_scene = True
        if self.first_travel_s != self.first_travel_s:  # nan: the first trip
            self.first_travel_s = trip


class _Deadline(SimEvent):
    """A deadline of the desk: a triggered SimPy event (scheduled like a Timeout) whose value
    is ``(event id, timer, due_at)``."""

    def __init__(self, env: simpy.Environment, value: tuple[str, Timer, float],
                 callback: Callable[[SimEvent], None]) -> None:
        self.env, self.callbacks, self._ok, self._value = env, [callback], True, value


class _Process:
    """A light SimPy process running a script of :mod:`scenarios.handlers`: a generator that
    yields delays (seconds), acts and looks instead of SimPy events.

    It runs at once up to its first positive delay (zero delays do not wait), then is
    resumed by a SimPy timeout, one per wait; acts and looks are answered on the spot.
    ``env.process`` would add an initialisation event and a generic resume per step; the
    engine starts one per dispatch, so this roughly halves its event count.
    """

    __slots__ = ("eid", "engine", "gen", "mid")

    def __init__(self, engine: Engine, gen: Generator[Any, Any, None], eid: str = "", mid: str = "") -> None:
        self.engine, self.gen, self.eid, self.mid = engine, gen, eid, mid

    def __call__(self, _ev: object = None) -> None:
        gen, engine, eid, mid = self.gen, self.engine, self.eid, self.mid
        desk = engine.desk
        now = engine.epoch + engine.env._now  # every step of this call is at this instant
        answer: Seen | None = None
        try:
            while True:
                step = gen.send(answer)
                if step.__class__ is Act:  # answered through the desk (see scenarios.handlers)
                    if step.own and desk.events[eid].assignee != mid and not desk.holds(eid, mid):
                        answer = None
                        continue
                    try:
                        answer = desk.perform(eid, step.action, now, step.actor or mid, step.reason, step.data)
                    except IllegalTransition:
                        answer = desk.events[eid] if desk.holds(eid, mid) else None
                        continue
                    if step.note:
                        engine.tracks[eid].self_corrected = True
                    if answer.assignee is None and answer.state in WAITING:
                        engine._wait(eid)
                    if engine._starts:
                        engine._start_pending()
                elif step is LOOK:
                    answer = desk.events[eid] if desk.holds(eid, mid) else None
                else:  # seconds to wait
                    answer = None
                    if step > 0:
                        Timeout(engine.env, step).callbacks.append(self)
                        return
        except StopIteration:
            return


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
        delays: Where the simulated handlers' delays come from (default: drawn from
            ``params`` on the run's response stream).

    Raises:
        ValueError: ``start`` and ``start_state.now`` disagree.
    """

    def __init__(self, district: District, demand: Demand, *, params: ResponseParams | None = None,
                 seed: int | np.random.SeedSequence = 0, start: datetime | None = None,
                 start_state: StartState | None = None, delays: Delays | None = None) -> None:
        self.district = district
        self.demand = demand
        self.p = params or ResponseParams()
        ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        # Stream 0 belongs to demand (see run_once); 1 to discovery, 2 to response.
        self.rng_disc = Draws(child_seed(ss, 1))
        self.rng_resp = Draws(child_seed(ss, 2))
        self.delays: Delays = delays or DelayModel(
            self.p, self.rng_resp, hour=self._hour,
            cars=frozenset(m.id for m in district.roster.members if m.travel_mode.value == "car"))
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
        # The roster of the run's mode, as a switch at its start leaves it (wartime: the
        # on-call members called in, on duty ``call_in_s`` later), as in the live twin.
        roster = district.roster.for_mode(self.p.mode, self.epoch)
        if roster is not district.roster:
            district = self.district = replace(district, roster=roster)
        self.env = simpy.Environment()
        self.desk = Desk(district, mode=self.p.mode, audit=self.p.keep_audit, timers=self.p.timers,
                         queue=self.p.queue, run_cards=self.p.run_cards, schedule=self._schedule_deadline,
                         listener=self._on_transition, listen_to=_HEARD)
        self._busy_before: dict[str, float] = {}  # busy seconds at the end of the warm-up
        self.tracks: dict[str, _Track] = {}
        self.max_queue = 0
        self.records: list[EventRecord] = []
        self.undiscovered = 0
        self.n_incidents = 0
        self.measure_from = 0.0
        self.open_ids: set[str] = set()
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._last_closed: dict[tuple[str, str], float] = {}
        self.discovery = Discovery(district, self.p, self.rng_disc, self.epoch)
        self._spec_info: dict[str, tuple[str, Targets]] = {}  # severity, targets
        self._members = district.roster.by_id
        self._specs = district.catalog.scenarios
        self._role_name = {m.id: m.role.value for m in district.roster.members}
        # Processes the desk's transitions call for: (event, member, planned trip, reinforcement?).
        self._starts: list[tuple[str, str, Any, bool]] = []
        self._starting = False
        self._fire_cb = self._fire  # (one bound method for every deadline)
        self.start_state = start_state
        self.carried = 0
        self.notes: list[str] = []
        self._tod0 = district.roster.local_time(self.epoch)[1]  # seconds after local midnight at the start
        self.measured_incidents = 0

    @property
    def events(self) -> dict[str, Event]:
        """Every event of the run, as the desk holds it."""
        return self.desk.events

    @property
    def audit(self) -> list[AuditRecord]:
        """Every audit record of the run, in order (``keep_audit`` runs only)."""
        return self.desk.records

    def _spawn(self, gen: Generator[Any, Any, None], eid: str = "", mid: str = "") -> None:
        """Start a process (see :class:`_Process`); it runs until its first wait now."""
        _Process(self, gen, eid, mid)()

    # --- clock ---------------------------------------------------------------------------------
    def _hour(self) -> int:
        """The local hour of day now (a run does not cross a daylight-saving change)."""
        return int(((self._tod0 + self.env._now) % DAY_S) // 3600)

    def now(self) -> float:
        """POSIX time of the simulated clock."""
        return self.epoch + self.env.now

    # --- the desk's side -----------------------------------------------------------------------
    def _schedule_deadline(self, due_at: float, eid: str, timer: Timer) -> None:
        """A deadline of the desk, as a SimPy event after the same instant's actions."""
        env = self.env
        env.schedule(_Deadline(env, (eid, timer, due_at), self._fire_cb), _DEADLINE_PRIORITY,
                     max(0.0, due_at - self.epoch - env._now))

    def _fire(self, ev: SimEvent) -> None:
        eid, timer, due_at = ev._value
        # At the deadline's own instant (a deadline carried from before a fork: now).
        if self.desk.fire(eid, timer, due_at, max(due_at, self.epoch + self.env._now)):
            e = self.desk.events[eid]
            if e.assignee is None and e.state in WAITING:
                self._wait(eid)
            if self._starts:
                self._start_pending()

    def _on_transition(self, e: Event, action: Action, data: Mapping[str, Any]) -> None:
        """Bookkeeping of a transition the desk applied; processes it calls for start once
        the desk's operation is over (:meth:`_start_pending`)."""
        eid = e.id
        if action is _DISPATCH or action is _REASSIGN:
            self._starts.append((eid, str(e.assignee), data.get("travel_s"), False))
        elif e.state in TERMINAL:
            self.open_ids.discard(eid)
            tr = self.tracks[eid]
            if action is _VERIFY:
                t = self.env._now
                self.demand.feedback(tr.incident, "self_corrected" if tr.self_corrected else "handled", t)
                self._last_closed[(tr.spec.code, tr.incident.agent_id or tr.incident.location.road_id)] = t
                self._record(eid, "closed")
            elif action is Action.MERGE:
                self.demand.feedback(tr.incident, "merged", self.env.now)
                self._record(eid, "merged")
            elif action is Action.WITHDRAW:
                if tr.abandoned:
                    self.demand.feedback(tr.incident, "abandoned", self.env.now)
                self._record(eid, "abandoned" if tr.abandoned else "lost" if not self.p.queue else "withdrawn")
            else:
                self._record(eid, e.state.value)
        elif action is _REQUEST_REINFORCEMENT:
            for m in data["members"]:
                self._starts.append((eid, str(m), None, True))
        elif action is _SUPERVISE:
            self.tracks[eid].supervised = True

    def _start_pending(self) -> None:
        """Start the handler processes the desk's last operation called for, in order."""
        if self._starting:
            return
        self._starting = True
        try:
            starts = self._starts
            while starts:
                eid, mid, travel_s, reinforcement = starts.pop(0)
                if reinforcement:
                    self._start_reinforcement(eid, mid)
                else:
                    self._start_handler(eid, mid, travel_s)
        finally:
            self._starting = False

    def _travel_estimate(self, mid: str, eid: str) -> float:
        m = self._members[mid]
        return self.district.roads.travel_s(m.travel_mode, self.desk.members[mid].node,
                                            self.desk.events[eid].location.node)

    def _self_correct_p(self, tr: _Track) -> float:
        return self.demand.self_correct_p(tr.incident, tr.spec.self_correct_p) if tr.spec.self_correct_p > 0 else 0.0

    def _start_handler(self, eid: str, mid: str, travel_s: float | None, resume: int = 0) -> None:
        tr = self.tracks[eid]
        e = self.desk.events[eid]
        if e.assignee != mid:
            return  # reassigned again before it started
        member = self._members[mid]
        sc = self._self_correct_p(tr) if member.role is _GRID_WORKER and e.tier == 0 else 0.0
        _Process(self, handle(member, eid, tr.spec, tier=e.tier,
                              travel_estimate_s=float(travel_s) if travel_s is not None else partial(
                                  self._travel_estimate, mid, eid),
                              delays=self.delays, params=self.p, self_correct_p=sc, resume=resume,
                              on_travel=tr.travelled), eid, mid)()

    def _start_reinforcement(self, eid: str, mid: str, trip_s: float | None = None) -> None:
        self._spawn(reinforce(self._members[mid], eid, travel_estimate_s=lambda: self._travel_estimate(mid, eid),
                              delays=self.delays, trip_s=trip_s), eid, mid)

    # --- load sampling (for the staffing optimiser) --------------------------------------------
    def sample_load(self, role: Role, every_s: float = 600.0) -> None:
        """Record, every ``every_s`` seconds, how many of ``role``'s servers are wanted per
        area: members of that role holding an event there (as its handler or as a
        reinforcement), plus events there waiting for that role (the role the desk would
        dispatch them to now: the brigade for a grid worker's item at night).

        The samples (``self.samples``: ``(t_s, {area: count})``) are the "number in system"
        of the iterative staffing algorithm.
        """
        def sampler() -> Any:
            desk, members = self.desk, self._members
            while True:
                yield every_s
                now = self.now()
                counts: dict[str, int] = {}
                for mid, eid in desk.holding.items():
                    if members[mid].role is role:
                        area = desk.events[eid].location.area_id
                        counts[area] = counts.get(area, 0) + 1
                for eid in desk.waiting():
                    if desk.waiting_for(eid, now) is role:
                        area = desk.events[eid].location.area_id
                        counts[area] = counts.get(area, 0) + 1
                self.samples.append((self.env.now, counts))

        self._spawn(sampler())

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
        if 0 < self.measure_from < horizon:
            self.env.timeout(self.measure_from).callbacks.append(lambda _ev: self._busy_before.update(
                {m.id: self.desk.busy_seconds(m.id, self.now()) for m in self.district.roster.members}))
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
        backlog = len(self.desk.waiting())
        for eid, tr in self.tracks.items():
            if not tr.done:
                self._record(eid, "open")
        duty = self._duty_seconds(horizon)
        speed = self.p.patrol_speed_mps or self.district.roads.speeds.walk_mps
        patrol_km = self.p.background_patrol * self.p.patrol_effort * max(0.0, horizon - self.measure_from) * speed / 1000
        end = self.now()
        busy_s = {m.id: self.desk.busy_seconds(m.id, end) - self._busy_before.get(m.id, 0.0)
                  for m in self.district.roster.members}
        for m in self.district.roster.members:
            share = self.p.patrol_share.get(m.role, 0.0) * self.p.patrol_effort
            if share > 0:
                patrol_km += min(share * duty[m.id], max(0.0, duty[m.id] - busy_s[m.id])) * speed / 1000
        return RunResult(records=self.records, incidents=self.n_incidents, undiscovered=self.undiscovered,
                         days=days, busy_s=busy_s, duty_s=duty,
                         roles={m.id: m.role.value for m in self.district.roster.members},
                         areas={m.id: m.area_id for m in self.district.roster.members},
                         patrol_km=patrol_km, max_queue=self.max_queue, audit=self.audit, samples=self.samples,
                         backlog=backlog, carried=self.carried, notes=self.notes,
                         measured_incidents=self.measured_incidents, alerts=dict(self.discovery.alerts),
                         demand=_demand_report(self.demand))

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
                self._schedule(inc)
            day += 1
            self._spawn(self._shift_changes(end))

    def _shift_changes(self, until: float) -> Any:
        """At each shift change from now (a change at this very instant included: the day's
        process starts at midnight, a shift boundary) until before ``until``: the desk's
        handover (:meth:`twin.desk.Desk.shift_change`)."""
        roster = self.desk.district.roster
        first = True
        while True:
            now = self.now()
            nxt = (roster.next_change(now - 1e-3) if first else roster.next_change(now)) - self.epoch
            first = False
            if nxt >= until:
                return
            yield nxt - self.env.now
            self.desk.shift_change(self.now())
            self._start_pending()

    # --- an incident's life --------------------------------------------------------------------
    def _schedule(self, inc: Incident) -> None:
        """Draw how (and whether) an incident is discovered, and schedule its report.

        Discovery is decided when the day's incidents arrive, from the patrol strength at
        the onset; a timeout callback then reports it (no process per incident), or tells
        the agent at the onset that nobody noticed. An incident with its onset before the
        run (a fork's demand looks back: problems already in the street, not yet noticed)
        counts only if it is reported during the run; the start state holds the others.
        """
        spec = self._specs[inc.scenario]
        found = self.discovery.first(inc)
        if inc.t_s >= self.measure_from:
            self.measured_incidents += 1
            if found is not None and found[1] == "camera":
                self.discovery.count_alert(inc.scenario)
        if found is None:
            if inc.t_s < 0:
                return
            self.n_incidents += 1
            self.undiscovered += 1
            self.env.timeout(max(0.0, inc.t_s - self.env.now)).callbacks.append(
                lambda _ev: self.demand.feedback(inc, "undiscovered", self.env.now))
            return
        delay, how = found
        if inc.t_s + delay < 0:
            return
        self.n_incidents += 1
        Timeout(self.env, max(0.0, inc.t_s + delay - self.env._now)).callbacks.append(
            lambda _ev: self._report(inc, spec, how))

    def _report(self, inc: Incident, spec: ScenarioSpec, how: str) -> None:
        eid = f"S{inc.id}"
        t = self.env._now
        now = self.epoch + t
        info = self._spec_info.get(spec.code)
        if info is None:
            info = self._spec_info[spec.code] = (spec.severity.value, targets_for(spec, self.p.mode))
        severity, targets = info
        event = new_event(event_id=eid, scenario=spec.code, category=spec.category, severity=severity,
                          source=how, location=inc.location, now=now)
        shift, _ = self.desk.district.roster.shift_at(now)
        tr = _Track(inc, spec, targets, how, shift.code, t)
        last = self._last_closed.get((spec.code, inc.agent_id or inc.location.road_id))
        tr.repeat = last is not None and t - last <= 7 * DAY_S
        self.tracks[eid] = tr
        self.open_ids.add(eid)
        after = self.desk.report(event, actor=how)
        self.max_queue = max(self.max_queue, len(self.desk.queue))
        if self._starts:
            self._start_pending()
        if after.assignee is None and after.state in WAITING:
            self._wait(eid)

    def _wait(self, eid: str) -> None:
        """An event is waiting for a free member: the problem behind it may go away first
        (abandonment: one patience process per event, from its first wait)."""
        tr = self.tracks[eid]
        if self.p.abandon and self.p.queue and not tr.patient and math.isfinite(tr.incident.duration_s):
            tr.patient = True
            self._spawn(self._patience(eid, tr.incident.t_s + tr.incident.duration_s))

    def _patience(self, eid: str, until_s: float) -> Any:
        """The problem goes away at ``until_s``: a report still waiting then is withdrawn."""
        if until_s > self.env.now:
            yield until_s - self.env.now
        e, tr = self.desk.events[eid], self.tracks[eid]
        if not tr.done and e.assignee is None and e.state in WAITING:
            tr.abandoned = True
            self.desk.act(eid, Action.WITHDRAW, now=self.now(), actor="brain",
                          reason="the problem went away while waiting")
            self._start_pending()

    # --- a start state (what-if fork) ----------------------------------------------------------
    def seed_state(self, state: StartState) -> None:
        """Take over a live state at t = 0, before anything else happens (:meth:`run` calls it
        when the engine was built with ``start_state``).

        Members stand at their snapshot nodes. The open events go to the desk in the states
        they are in (:meth:`twin.desk.Desk.adopt`: whoever an event names is busy with it,
        waiting events are queued, deadlines not yet acted on are scheduled — a deadline
        already past fires at once), each with a track whose times are the event's own, and
        carry on with the engine's processes:

        - ``reported`` / ``escalated``: dispatched at once, or queued, most urgent then oldest
          first (as the live queue orders them);
        - ``consultation``: dispatched when the rest of the consultation (``consult_s``
          after the event's last update) is over;
        - ``dispatched``: its handler signs after a fresh signing delay;
        - ``signed``: the handler goes on from the signature (a grid worker's reminder, or
          the trip to the spot);
        - ``on_scene``: the handler finishes the handling, then resolves, escalates or
          consults; ``reinforcement_requested``: whichever of the three its handler has
          reached (``on_scene_at``, ``signed_at``);
        - ``resolved``: verified after a verification delay;
        - reinforcement members still on the way travel, then join; those already there stay.

        Approximations, each because the snapshot does not say more: delays already under
        way are drawn afresh from t = 0 (signing, handling, verification) — exact for
        exponential delays, which are memoryless, an approximation for the default
        lognormal handling; trips start at the member's snapshot node (the live twin does
        not follow members on the way); the reminder starts afresh; an ``on_scene`` event is
        taken to have its handler on site even where only the reinforcement arrived; the
        problem behind a carried event lasts until handled (no abandonment: the twin knows
        no ground truth). The first dispatch and signature (KPIs) and the deadlines already
        acted on come from ``state.firsts`` where the snapshot has them, else from the
        event's last dispatch and signature.

        Adjustments, each with a note in :attr:`notes`: a member the district does not
        know is dropped; an event held by a dropped member, or by nobody, goes back to the
        queue at its tier; a member marked busy with no open event to hold is freed; an
        event of a scenario the catalog lacks is left out.

        Raises:
            ValueError: the engine has already run, or an event id clashes with the ids the
                run gives new events (``S`` and a number).
        """
        if self.env.now != 0 or self.desk.events:
            raise ValueError("seed_state: the run has already begun")
        roster, catalog, epoch, notes = self.district.roster, self.district.catalog, self.epoch, self.notes
        n_nodes = self.district.roads.n_nodes
        nodes: dict[str, int] = {}
        for mid, st in state.members.items():
            if mid not in roster.by_id:
                notes.append(f"member {mid} is not in this district: dropped")
            elif isinstance(st.node, (int, np.integer)) and 0 <= int(st.node) < n_nodes:
                nodes[mid] = int(st.node)
            else:
                notes.append(f"member {mid} stood at an unknown node {st.node!r}: starts at their post")
        events: dict[str, Event] = {}
        firsts: dict[str, Firsts] = {}
        taken: dict[str, str] = {}  # member → the event they hold
        for k, e in enumerate(sorted(state.open_events, key=lambda e: (e.reported_at, e.id)), 1):
            if not e.is_open:
                continue
            if e.id in events or (e.id[:1] == "S" and e.id[1:].isdigit()):
                raise ValueError(f"seed_state: event id {e.id!r} clashes with the run's own ids")
            if e.scenario not in catalog:
                notes.append(f"event {e.id}: scenario {e.scenario} is not in this district's catalog: left out")
                continue
            spec = catalog[e.scenario]
            if e.updated_at > epoch:  # a transition stamped after the snapshot: clamp it
                e = replace(e, updated_at=epoch)
            holder = e.assignee
            if e.state in HELD and (holder is None or holder not in roster.by_id or holder in taken):
                why = "nobody" if holder is None else (f"{holder}, who also holds {taken[holder]}" if holder in taken
                                                       else f"{holder}, who is not in this district")
                notes.append(f"event {e.id} ({e.state.value}) was held by {why}: back in the queue")
                e = replace(e, state=State.REPORTED if e.tier == 0 else State.ESCALATED, assignee=None,
                            dispatched_at=None, signed_at=None)
            if e.state in HELD:
                assert holder is not None
                taken[holder] = e.id
                keep = tuple(r for r in e.reinforcements if state.holding.get(r) == e.id and r in roster.by_id
                             and r not in taken)
                for r in keep:
                    taken[r] = e.id
                if keep != e.reinforcements:
                    e = replace(e, reinforcements=keep)
            t0 = e.reported_at - epoch
            self.tracks[e.id] = _Track(Incident(-k, t0, e.scenario, e.location), spec,
                                       self.desk.targets(e), e.source, roster.shift_at(e.reported_at)[0].code, t0,
                                       needs_on_scene=e.on_scene_at is not None)
            known = state.firsts.get(e.id)
            if known is not None:  # what the live twin remembers, with its own set of fired deadlines
                firsts[e.id] = replace(known, fired=set(known.fired), scheduled=set())
            else:
                firsts[e.id] = Firsts(dispatched=e.dispatched_at, signed=e.signed_at)
            events[e.id] = e
            self.open_ids.add(e.id)
            self.carried += 1
        for mid, st in state.members.items():
            if st.busy and mid in roster.by_id and mid not in taken:
                notes.append(f"member {mid} was busy with no open event to carry on: free")
        self.desk.adopt(events, nodes=nodes, firsts=firsts, now=self.now())
        for e in sorted(events.values(), key=lambda e: (e.reported_at, e.id)):
            if e.state is State.CONSULTATION:
                self._spawn(self._after_consultation(e.id, max(0.0, e.updated_at + self.p.consult_s - epoch)), e.id)
            elif e.state is State.RESOLVED:
                self._spawn(verify(e.id, self.delays), e.id)
            elif e.state in HELD:
                if e.state is State.ON_SCENE or (e.state is State.REINFORCEMENT_REQUESTED and e.on_scene_at is not None):
                    resume = 2
                elif e.state is State.SIGNED or (e.state is State.REINFORCEMENT_REQUESTED and e.signed_at is not None):
                    resume = 1
                else:
                    resume = 0
                assert e.assignee is not None
                self._start_handler(e.id, e.assignee, None, resume)
                if e.reinforced_at is None:
                    for r in e.reinforcements:
                        self._start_reinforcement(e.id, r)
        self.desk.drain(self.now())
        self._start_pending()

    def _after_consultation(self, eid: str, after_s: float) -> Any:
        if after_s > 0:
            yield after_s
        yield Act(Action.DISPATCH, reason="the joint plan is ready", actor="brain", own=False)


    # --- records -------------------------------------------------------------------------------
    def _record(self, eid: str, outcome: str) -> None:
        tr, e = self.tracks[eid], self.desk.events[eid]
        if tr.done:
            return
        tr.done = True
        f = self.desk.firsts[eid]
        t0 = e.reported_at
        nan = math.nan
        on_scene = nan if e.on_scene_at is None else e.on_scene_at - t0
        first_sign = nan if f.signed is None or f.dispatched is None else f.signed - f.dispatched
        tg = tr.targets
        within = (outcome == "closed"
                  and (first_sign != first_sign or first_sign <= tg.respond_s)  # nan: never signed
                  and (not tr.needs_on_scene or on_scene <= tg.on_scene_s))  # nan compares False
        member = e.assignee or ""
        inc, spec, loc = tr.incident, tr.spec, e.location
        self.records.append(EventRecord(
            eid, inc.id, spec.code, spec.category, e.severity, tr.source, loc.area_id, loc.grid_id, tr.shift,
            int(tr.reported_s // DAY_S), int((tr.reported_s % DAY_S) // 3600), inc.t_s, tr.reported_s,
            tr.reported_s - inc.t_s, nan if f.dispatched is None else f.dispatched - t0, first_sign, on_scene,
            nan if e.reinforced_at is None else e.reinforced_at - t0,
            nan if e.resolved_at is None else e.resolved_at - t0,
            nan if e.closed_at is None else e.closed_at - t0,
            tr.first_travel_s, member, self._role_name[member] if member else "", e.tier, e.escalations,
            e.reassignments, tr.needs_on_scene, e.reinforcement_requested_at is not None, tr.supervised,
            tr.self_corrected, tr.repeat, within, outcome, *f.stage_times(t0), loc.node, inc.referral, inc.key))


def _demand_report(demand: Demand) -> dict[str, Any]:
    """What a demand model tells of itself (the responsive Mesa model: incidents each day,
    recurrences, mean propensity by kind); empty for others."""
    daily = getattr(demand, "daily", None)
    if not daily:
        return {}
    pools = getattr(demand, "pools", {})
    return {"daily": list(daily), "recurrences": getattr(demand, "recurrences", 0),
            "propensity": {k: demand.mean_propensity(k) for k in pools}}  # type: ignore[attr-defined]


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
    roster = district.roster
    if start_state is None and roster.availability.shrinkage > 0:
        # Who is away is part of a replication's randomness (stream 3), like its demand: a
        # confidence interval then covers it. A run from a live state keeps today's facts.
        roster = roster.with_absence_seed(int(child_seed(ss, 3).generate_state(1)[0]))
    if roster is not district.roster:
        district = replace(district, roster=roster)
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
