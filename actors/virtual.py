"""The live twin on a virtual clock: its brain, event log and simulated patrol teams, driven
through simulated time by the same world as the what-if simulator.

:class:`VirtualLive` runs the real live stack — :class:`~actors.brain.Brain` over
:class:`~actors.live.LiveTwin` (the dispatch desk, the durable event log) with
:class:`~actors.feed.PatrolTeams` playing the handlers — as fast as the machine allows, on a
:class:`ManualClock` that jumps from one thing to the next: a report, a handler's action, a
deadline, a shift change. The world around it is the simulator's: incidents from a demand
model (:class:`~scenarios.model.Demand`), discovered by :class:`~scenarios.discovery.Discovery`,
withdrawn when the problem goes away while the report still waits, and the demand told what
became of each (self-correction, handling, merging ...). The handlers' delays come from the
simulator's delay model on the same random streams as a simulator run of the same seed
(discovery on stream 1, response on stream 2; demand on stream 0).

What it is for: a week of the live twin in seconds — to compare it with a what-if run
(parity), to rehearse a day, or to fill a log for a demo.

At one instant, handlers act first, then the world reports and withdraws, then the brain's
deadlines and shift change fire (a signature recorded at 60 s meets a 60 s target), and the
round repeats until nothing more happens at that instant.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from actors.brain import Brain
from actors.client import LocalClient
from actors.eventlog import EventLog
from actors.feed import PatrolTeams
from actors.live import Clock
from scenarios.discovery import Discovery
from scenarios.handlers import DelayModel, Delays
from scenarios.model import Demand, Incident, ResponseParams
from scenarios.rng import Draws, child_seed
from twin.district import District
from twin.errors import TwinError, ValidationError
from twin.staff import DAY_S, Mode
from twin.workflow import WAITING, Action, State


class ManualClock(Clock):
    """Twin time that moves only when told to (:meth:`set`).

    Args:
        origin: POSIX time it starts at.
    """

    def __init__(self, origin: float) -> None:
        super().__init__(1.0, origin)
        self.t = float(origin)

    def now(self) -> float:
        """The time set last."""
        return self.t

    def set(self, t: float) -> None:
        """Move to ``t`` (never backwards).

        Raises:
            ValidationError: ``t`` is before the clock's time.
        """
        if t < self.t:
            raise ValidationError("t", f"the clock is at {self.t}; it does not run backwards to {t}")
        self.t = float(t)

    def wall_seconds_until(self, t: float) -> float:
        return 0.0


class VirtualLive:
    """The live twin driven by simulated demand and handlers (see the module doc).

    Args:
        district: The district.
        log: A fresh event log.
        demand_factory: Builds the demand from its seed stream (as :func:`scenarios.engine.run_once`).
        start: POSIX time the run starts (day 0 of the demand begins here).
        params: Behaviour parameters (the simulator's); ``params.mode`` sets the twin's mode.
        seed: Run seed: demand, discovery and response streams 0, 1, 2 of it.
        delays: Where the handlers' delays come from (default: drawn from ``params``).
    """

    def __init__(self, district: District, log: EventLog, demand_factory: Callable[[np.random.SeedSequence], Demand],
                 *, start: float, params: ResponseParams | None = None, seed: int | np.random.SeedSequence = 0,
                 delays: Delays | None = None) -> None:
        self.p = params or ResponseParams()
        ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        self.start = float(start)
        self.clock = ManualClock(self.start)
        self.brain = Brain(district, log, self.clock)
        self.twin = self.brain.twin
        if self.twin.events:
            raise ValidationError("log", "a virtual run needs a fresh event log")
        if self.p.mode is not Mode.PEACETIME:
            self.twin.set_mode(self.p.mode, actor="virtual")
        self.client = LocalClient(self.brain)
        self.demand = demand_factory(child_seed(ss, 0))
        self.discovery = Discovery(self.twin.district, self.p, Draws(child_seed(ss, 1)), self.start)
        self.delays: Delays = delays or DelayModel(self.p, Draws(child_seed(ss, 2)))
        self.teams = PatrolTeams(self.twin.district, self.client, params=self.p, delays=self.delays,
                                 self_correct_p=self._self_correct_p)
        self.world: list[tuple[float, int, str, Incident]] = []  # (POSIX time, order, what, incident)
        self._n = 0
        self.day = -1
        self.incident_of: dict[str, Incident] = {}
        self.event_of: dict[int, str] = {}
        self.incidents = self.undiscovered = 0
        self._seq = self.twin.last_seq

    def _self_correct_p(self, event_id: str, base_p: float) -> float:
        inc = self.incident_of.get(event_id)
        return base_p if inc is None else self.demand.self_correct_p(inc, base_p)

    # --- the world ---------------------------------------------------------------------------------
    def _push(self, t: float, what: str, inc: Incident) -> None:
        self._n += 1
        heapq.heappush(self.world, (t, self._n, what, inc))

    def _load_day(self) -> None:
        self.day += 1
        for inc in self.demand.incidents(self.day * DAY_S, (self.day + 1) * DAY_S):
            self.incidents += 1
            found = self.discovery.first(inc)
            if found is None:
                self.undiscovered += 1
                self._push(self.start + inc.t_s, "undiscovered", inc)
                continue
            delay, how = found
            self._push(self.start + inc.t_s + delay, "report:" + how, inc)
            if self.p.abandon and math.isfinite(inc.duration_s):
                self._push(self.start + inc.t_s + inc.duration_s, "ends", inc)

    def _world_at(self, t: float) -> int:
        n = 0
        while self.world and self.world[0][0] <= t:
            _, _, what, inc = heapq.heappop(self.world)
            n += 1
            if what == "undiscovered":
                self.demand.feedback(inc, "undiscovered", t - self.start)
            elif what == "ends":
                eid = self.event_of.get(inc.id)
                e = self.twin.events.get(eid) if eid else None
                if e is not None and e.assignee is None and e.state in WAITING:
                    self.client.sync.act(e.id, Action.WITHDRAW.value,
                                          {"reason": "the problem went away while waiting"}, actor="brain")
                    self.demand.feedback(inc, "abandoned", t - self.start)
            else:
                how = what.split(":", 1)[1]
                body = {"scenario": inc.scenario, "lon": inc.location.lon, "lat": inc.location.lat, "source": how}
                try:
                    view = self.client.sync.create_event(body, actor=how)["event"]
                except TwinError:
                    continue
                self.incident_of[view["id"]] = inc
                self.event_of[inc.id] = view["id"]
                if view["state"] == State.MERGED.value:
                    self.demand.feedback(inc, "merged", t - self.start)
        return n

    def _outcomes(self, t: float) -> None:
        """Tell the demand what became of handled events (the log's verifications)."""
        for seq, rec in self.twin.records_after(self._seq, 10_000):
            self._seq = seq
            if rec.action is Action.VERIFY:
                inc = self.incident_of.get(rec.event_id)
                if inc is not None:
                    e = self.twin.events[rec.event_id]
                    self.demand.feedback(inc, "self_corrected" if e.result.startswith("self-corrected")
                                         else "handled", t - self.start)

    # --- the clock -----------------------------------------------------------------------------------
    def _next(self) -> float:
        now = self.clock.now()
        candidates = [self.twin.district.roster.next_change(now), self.start + (self.day + 1) * DAY_S]
        if self.world:
            candidates.append(self.world[0][0])
        if self.teams.todo:
            candidates.append(self.teams.todo[0][0])
        if self.twin.timers:
            candidates.append(self.twin.timers[0][0])
        return max(now, min(candidates))

    def _round(self, t: float) -> int:
        """One round at instant ``t``: handlers, the world, the brain; returns what happened."""
        n = 0
        while True:
            acted = self.teams.step(t)
            n += acted
            if not acted and self.teams.seq >= self.twin.last_seq:
                break
        n += self._world_at(t)
        n += len(self.twin.tick(t))
        self._outcomes(t)
        return n

    def run(self, until: float) -> dict[str, Any]:
        """Play the twin up to POSIX time ``until``; returns its KPIs then (:meth:`actors.live.LiveTwin.kpis`)."""
        while True:
            if self.clock.now() >= self.start + (self.day + 1) * DAY_S and self.start + (self.day + 1) * DAY_S < until:
                self._load_day()
            t = self._next()
            if t > until:
                break
            self.clock.set(t)
            while self._round(t):
                pass
            if t == until:
                break
        self.clock.set(until)
        while self._round(until):
            pass
        return self.twin.kpis()
