"""What keeps a demo twin alive: synthetic demand and simulated handlers, in real time.

- :class:`SyntheticFeed` draws the day's incidents from the Mesa demand model (the
  simulator's own :class:`~scenarios.demand.DemandModel`) and reports each at its time on
  the twin's clock, as its discovering source would (a camera where one covers the spot, a
  sensor, a 110 referral, else a citizen or a patrol).
- :class:`PatrolTeams` plays the handlers of many members (a shard of patrol teams): it
  watches the log, and for every dispatch to one of its members runs the simulator's own
  handler script (:mod:`scenarios.handlers`: sign, remind or travel, handle, resolve,
  escalate or consult, verify) with the simulator's delay model; reinforcements likewise.

Both are plain classes driven by ``step(now)``; the host calls them from a thread (in a Ray
actor or in-process). They talk to the brain only through a client's blocking face (``client.sync``).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from actors.client import BrainClient
from scenarios.demand import DemandModel
from scenarios.handlers import LOOK, Act, DelayModel, Delays, Script, handle, reinforce
from scenarios.model import Incident, ResponseParams
from scenarios.rng import Draws
from twin.catalog import Source
from twin.desk import NotHolder
from twin.district import District
from twin.errors import TwinError
from twin.staff import DAY_S, Role
from twin.workflow import State


class FeedDraws:
    """The synthetic feed's draws: the demand model's incidents day by day (day 0 starts at
    ``origin``), each reported ``rate`` times on average (copies after the first at random
    times of the same day), in time order. With ``cameras`` (synthetic cameras of the live
    twin), an incident that one of them covers and can show (:func:`detection.synthetic.can_show`)
    is *left to* that camera: the same seed, rate and cameras give the feed and the camera
    actors the same draws, and each incident to exactly one of them.

    Args:
        district: The district.
        origin: POSIX time of day 0 (local midnight: the demand's hourly profile counts from it).
        seed: Demand seed.
        rate: Multiplies the demand.
        cameras: Ids of synthetic cameras.
    """

    def __init__(self, district: District, origin: float, *, seed: int = 1, rate: float = 1.0,
                 cameras: Collection[str] = frozenset()) -> None:
        self.district, self.origin, self.rate = district, origin, rate
        self.model = DemandModel(district, np.random.SeedSequence(seed))
        self.rng = np.random.default_rng(seed + 1)
        self.cameras = frozenset(cameras)
        self._stageable: dict[tuple[str, str], bool] = {}
        self.pending: list[tuple[float, int, Incident, int]] = []
        self.day = -1

    def left_to(self, inc: Incident) -> str | None:
        """The synthetic camera this incident is left to, if any (the first in id order)."""
        if not self.cameras:
            return None
        from detection.synthetic import can_show

        spec = self.district.catalog[inc.scenario]
        for cid in inc.cameras:
            if cid in self.cameras:
                key = (cid, spec.code)
                if key not in self._stageable:
                    self._stageable[key] = can_show(self.district.camera(cid), spec)
                if self._stageable[key]:
                    return cid
        return None

    def _load_day(self, day: int) -> None:
        for inc in self.model.incidents(day * DAY_S, (day + 1) * DAY_S):
            copies = int(self.rate) + (self.rng.random() < self.rate - int(self.rate))
            for k in range(copies):
                t = self.origin + inc.t_s + (self.rng.uniform(0, DAY_S) if k else 0.0)
                heapq.heappush(self.pending, (t, inc.id * 10 + k, inc, k))
        self.day = day

    def due(self, until: float) -> Iterator[tuple[float, Incident, int, str | None]]:
        """``(time, incident, copy number, camera it is left to or None)`` of every draw due by ``until``."""
        day = int((until - self.origin) // DAY_S)
        while self.day < day:
            self._load_day(self.day + 1)
        while self.pending and self.pending[0][0] <= until:
            t, _, inc, k = heapq.heappop(self.pending)
            yield t, inc, k, self.left_to(inc)


class SyntheticFeed:
    """Reports the demand model's incidents at their times (:class:`FeedDraws`), as their
    discovering source would; those left to synthetic cameras are not reported here.

    Args:
        district: The district.
        client: The brain.
        origin: POSIX time the feed's day 0 starts (local midnight: the demand's hourly
            profile counts from it).
        seed: Demand seed.
        rate: Multiplies the demand (e.g. 10 for a busy demo).
        cameras: Synthetic cameras of the live twin: the incidents they can show are theirs.
    """

    def __init__(self, district: District, client: BrainClient, origin: float, *, seed: int = 1,
                 rate: float = 1.0, cameras: Collection[str] = frozenset()) -> None:
        self.district, self.client, self.origin = district, client, origin
        self.seed, self.rate = seed, rate
        self.draws = FeedDraws(district, origin, seed=seed, rate=rate, cameras=cameras)
        self.reported = 0
        self.failed = 0
        self.left_to_cameras = 0
        self.started: float | None = None

    def info(self) -> dict[str, Any]:
        """What camera actors need to draw the same incidents: origin, seed, rate, cameras."""
        return {"origin": self.origin, "seed": self.seed, "rate": self.rate, "cameras": sorted(self.draws.cameras)}

    def _body(self, t: float, inc: Incident, k: int) -> dict[str, Any]:
        spec = self.district.catalog[inc.scenario]
        if inc.cameras and Source.CAMERA in spec.sources:
            source = Source.CAMERA.value
        elif inc.sensor:
            source = Source.SENSOR.value
        elif inc.referral:
            source = Source.REFERRAL_110.value
        elif Source.CITIZEN in spec.sources:
            source = Source.CITIZEN.value
        else:
            source = spec.sources[0].value
        day = int(inc.t_s // DAY_S)  # the day it was drawn for
        return {"scenario": inc.scenario, "lon": inc.location.lon, "lat": inc.location.lat,
                "source": source, "description": f"synthetic: {spec.name_en}",
                "external_id": f"synthetic:{day}:{inc.id}:{k}"}

    def step(self, now: float) -> int:
        """Report every incident due by ``now``; returns how many (incidents of the day before
        the feed started are skipped)."""
        if self.started is None:
            self.started = now
        n = 0
        for t, inc, k, camera in self.draws.due(now):
            if t < self.started:
                continue
            if camera is not None:
                self.left_to_cameras += 1
                continue
            body = self._body(t, inc, k)
            try:
                self.client.sync.create_event(body, actor=f"{body['source']}:synthetic")
                n += 1
            except TwinError:
                self.failed += 1
        self.reported += n
        return n


@dataclass(frozen=True)
class _Seen:
    """What a handler script looks at of an event (from the brain's JSON view)."""

    state: State
    tier: int


class PatrolTeams:
    """Simulated handlers for a shard of members (see the module doc): for every dispatch,
    reassignment or reinforcement request to one of its members found in the brain's log,
    it runs the simulator's handler script (:func:`scenarios.handlers.handle`,
    :func:`scenarios.handlers.reinforce`) on the twin's clock, with the simulator's delay
    model (:class:`scenarios.handlers.DelayModel`).

    Args:
        district: The district.
        client: The brain.
        members: Member ids this shard plays (default: everybody).
        params: Human delays (the simulator's defaults).
        seed: Seed of the delays.
        delays: Where delays come from (default: drawn from ``params``).
        self_correct_p: ``(event id, the scenario's probability)`` → the probability that the
            party behind the event self-corrects after a reminder (default: the scenario's).
    """

    def __init__(self, district: District, client: BrainClient, members: Iterable[str] | None = None, *,
                 params: ResponseParams | None = None, seed: int = 2, delays: Delays | None = None,
                 self_correct_p: Callable[[str, float], float] | None = None) -> None:
        self.district, self.client = district, client
        self.members = set(members) if members is not None else {m.id for m in district.roster.members}
        self.p = params or ResponseParams()
        self.delays: Delays = delays or DelayModel(self.p, Draws(np.random.SeedSequence(seed)))
        self.self_correct_p = self_correct_p or (lambda _eid, p: p)
        self.seq = int(client.sync.last_seq())
        self.todo: list[tuple[float, int, Script, str, str]] = []  # (at, n, script, event id, member)
        self.n = 0
        self.done = 0
        self._nodes: dict[str, int] = {}  # members' nodes, asked once per step

    def _travel_estimate(self, member: str, eid: str) -> float:
        ev = self.client.sync.event_of(eid)
        m = self.district.roster.member(member)
        node = self._nodes.get(member)
        if node is None:  # where the member is: asked for that member alone (a 100x roster is 17k)
            node = self._nodes[member] = int(self.client.sync.positions([member])[0]["node"])
        # To the event's own routing node (locating its rounded coordinates again can land on
        # the next node along the road).
        target = ev.get("node")
        if target is None:
            target = self.district.locate(*ev["location"]["coordinates"]).node
        return self.district.roads.travel_s(m.travel_mode, node, int(target))

    def _start(self, script: Script, at: float, eid: str, member: str) -> int:
        """Run a script from ``at`` up to its first wait (acting meanwhile)."""
        return self._run(script, at, eid, member, None, first=True)

    def _run(self, script: Script, at: float, eid: str, member: str, answer: _Seen | None, *,
             first: bool = False) -> int:
        acted = 0
        try:
            step = next(script) if first else script.send(answer)
            while True:
                if isinstance(step, (int, float)):
                    if step > 0:
                        self.n += 1
                        heapq.heappush(self.todo, (at + step, self.n, script, eid, member))
                        return acted
                    step = script.send(None)
                    continue
                seen, did = self._perform(step, eid, member, at)
                acted += did
                step = script.send(seen)
        except StopIteration:
            return acted

    def _perform(self, step: Act | object, eid: str, member: str, at: float) -> tuple[_Seen | None, int]:
        """An act or a look through the brain: the event afterwards, or ``None`` if the member
        no longer holds it; and whether anything was done. An act goes straight to the brain
        (its ``holder`` guard refuses it if the event moved away); the event is looked up only
        for a look, or when the act was not allowed in the event's state."""
        if step is not LOOK:
            assert isinstance(step, Act)
            body = dict(step.data)
            if step.reason:
                body["reason"] = step.reason
            if step.own:
                body["holder"] = member  # the brain refuses it if the member no longer holds the event
            try:
                ev = self.client.sync.act(eid, step.action.value, body, actor=step.actor or member)["event"]
                return _Seen(State(ev["state"]), int(ev["tier"])), 1
            except NotHolder:
                return None, 0
            except TwinError:
                pass  # the state moved on (arrive after a reinforcement got there): carry on from it
        try:
            view = self.client.sync.event_of(eid)
        except TwinError:
            return None, 0
        holds = view["assignee"] == member or member in view["reinforcements"]
        return (_Seen(State(view["state"]), int(view["tier"])) if holds or step is not LOOK else None), 0

    def step(self, now: float) -> int:
        """React to new log records and act on what is due by ``now``; returns the actions taken."""
        self._nodes = {}
        acted = 0
        roster = self.district.roster
        for rec in self.client.sync.changes(self.seq, 1000):
            self.seq = max(self.seq, int(rec["log_seq"]))
            data = rec.get("data") or {}
            eid, at = rec["event_id"], float(rec["at"])
            if rec["action"] in ("dispatch", "reassign") and data.get("member") in self.members:
                mid = str(data["member"])
                ev = self.client.sync.event_of(eid)
                if ev["assignee"] != mid:
                    continue  # already moved on
                spec = self.district.catalog[ev["scenario"]]
                travel = data.get("travel_s")
                estimate: float | Callable[[], float] = (float(travel) if travel is not None
                                                         else partial(self._travel_estimate, mid, eid))
                m = roster.member(mid)
                sc = (self.self_correct_p(eid, spec.self_correct_p)
                      if m.role is Role.GRID_WORKER and int(ev["tier"]) == 0 and spec.self_correct_p > 0 else 0.0)
                script = handle(m, eid, spec, tier=int(ev["tier"]), travel_estimate_s=estimate, delays=self.delays,
                                params=self.p, self_correct_p=sc)
                acted += self._start(script, at, eid, mid)
            elif rec["action"] == "request_reinforcement":
                for mid in data.get("members", ()):
                    if mid in self.members:
                        script = reinforce(roster.member(mid), eid, delays=self.delays,
                                           travel_estimate_s=partial(self._travel_estimate, mid, eid))
                        acted += self._start(script, at, eid, mid)
        while self.todo and self.todo[0][0] <= now:
            at, _, script, eid, member = heapq.heappop(self.todo)
            acted += self._run(script, at, eid, member, None)
        self.done += acted
        return acted
