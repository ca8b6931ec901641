"""What keeps a demo twin alive: synthetic demand and simulated handlers, in real time.

- :class:`SyntheticFeed` draws the day's incidents from the Mesa demand model (the
  simulator's own :class:`~scenarios.demand.DemandModel`) and reports each at its time on
  the twin's clock, as its discovering source would (a camera where one covers the spot, a
  sensor, a 110 referral, else a citizen or a patrol).
- :class:`PatrolTeams` plays the handlers of many members (a shard of patrol teams): it
  watches the log, and for every dispatch to one of its members signs after a human delay,
  arrives after the road-graph travel time, and reports a result after the scenario's
  handling time; reinforcements arrive likewise. The delays follow the simulator's
  :class:`~scenarios.engine.ResponseParams`.

Both are plain classes driven by ``step(now)``; the host calls them from a thread (in a Ray
actor or in-process). They talk to the brain only through a client's ``call_sync``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from actors.client import BrainClient
from scenarios.demand import DemandModel
from scenarios.engine import DAY_S, Draws, ResponseParams
from twin.catalog import Source
from twin.district import District
from twin.errors import TwinError


class SyntheticFeed:
    """Reports the demand model's incidents at their times.

    Args:
        district: The district.
        client: The brain.
        origin: POSIX time the feed's day 0 starts (local midnight: the demand's hourly
            profile counts from it).
        seed: Demand seed.
        rate: Multiplies the demand (e.g. 10 for a busy demo).
    """

    def __init__(self, district: District, client: BrainClient, origin: float, *, seed: int = 1,
                 rate: float = 1.0) -> None:
        self.district, self.client, self.origin = district, client, origin
        self.model = DemandModel(district, np.random.SeedSequence(seed))
        self.rate = rate
        self.rng = np.random.default_rng(seed + 1)
        self.pending: list[tuple[float, int, dict[str, Any]]] = []
        self.day = -1
        self.reported = 0
        self.failed = 0
        self.started: float | None = None

    def _load_day(self, day: int) -> None:
        for inc in self.model.incidents(day * DAY_S, (day + 1) * DAY_S):
            copies = int(self.rate) + (self.rng.random() < self.rate - int(self.rate))
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
            for k in range(copies):
                t = self.origin + inc.t_s + (self.rng.uniform(0, DAY_S) if k else 0.0)
                body = {"scenario": inc.scenario, "lon": inc.location.lon, "lat": inc.location.lat,
                        "source": source, "description": f"synthetic: {spec.name_en}",
                        "external_id": f"synthetic:{day}:{inc.id}:{k}"}
                heapq.heappush(self.pending, (t, inc.id * 10 + k, body))
        self.day = day

    def step(self, now: float) -> int:
        """Report every incident due by ``now``; returns how many (incidents of the day before
        the feed started are skipped)."""
        if self.started is None:
            self.started = now
        day = int((now - self.origin) // DAY_S)
        while self.day < day:
            self._load_day(self.day + 1)
        n = 0
        while self.pending and self.pending[0][0] <= now:
            t, _, body = heapq.heappop(self.pending)
            if t < self.started:
                continue
            try:
                self.client.sync.create_event(body, actor=f"{body['source']}:synthetic")
                n += 1
            except TwinError:
                self.failed += 1
        self.reported += n
        return n


class PatrolTeams:
    """Simulated handlers for a shard of members (see the module doc).

    Args:
        district: The district.
        client: The brain.
        members: Member ids this shard plays (default: everybody).
        params: Human delays (the simulator's defaults).
        seed: Seed of the delays.
    """

    def __init__(self, district: District, client: BrainClient, members: Iterable[str] | None = None, *,
                 params: ResponseParams | None = None, seed: int = 2) -> None:
        self.district, self.client = district, client
        self.members = set(members) if members is not None else {m.id for m in district.roster.members}
        self.p = params or ResponseParams()
        self.draw = Draws(np.random.SeedSequence(seed))
        self.seq = int(client.sync.last_seq())
        self.todo: list[tuple[float, int, str, str, str]] = []  # (at, n, event id, action, member)
        self.n = 0
        self.done = 0
        self._nodes: dict[str, int] = {}  # members' nodes, asked once per step

    def _plan(self, at: float, eid: str, action: str, member: str) -> None:
        self.n += 1
        heapq.heappush(self.todo, (at, self.n, eid, action, member))

    def _travel_s(self, member: str, eid: str) -> float:
        ev = self.client.sync.event_of(eid)
        m = self.district.roster.member(member)
        node = self._nodes.get(member)
        if node is None:  # where the member is: asked for that member alone (a 100x roster is 17k)
            node = self._nodes[member] = int(self.client.sync.positions([member])[0]["node"])
        loc = self.district.locate(*ev["location"]["coordinates"])
        t = self.district.roads.travel(m.travel_mode).seconds(node, loc.node)
        if math.isinf(t):
            t = self.district.roads.crow_fly_s(m.travel_mode, node, loc.node)
        s2 = math.log(1 + self.p.travel_cv ** 2)
        return float(t) * self.draw.lognormal(-s2 / 2, math.sqrt(s2))

    def step(self, now: float) -> int:
        """React to new log records and act on what is due; returns the actions taken."""
        self._nodes = {}
        for rec in self.client.sync.changes(self.seq, 1000):
            self.seq = max(self.seq, int(rec["log_seq"]))
            data = rec.get("data") or {}
            if rec["action"] in ("dispatch", "reassign") and data.get("member") in self.members:
                self._plan(now + self.draw.exponential(self.p.sign_mean_s), rec["event_id"], "sign", data["member"])
            elif rec["action"] == "request_reinforcement":
                for m in data.get("members", ()):
                    if m in self.members:
                        self._plan(now + self._travel_s(m, rec["event_id"]), rec["event_id"], "reinforce", m)
        acted = 0
        while self.todo and self.todo[0][0] <= now:
            _, _, eid, action, member = heapq.heappop(self.todo)
            try:
                ev = self.client.sync.act(eid, action, {} if action != "resolve" else
                                           {"result": "handled on site (simulated handler)"}, actor=member)
            except TwinError:
                continue  # the event moved on (reassigned, escalated, merged): nothing to do
            acted += 1
            state = ev["event"]["state"]
            if action == "sign" and ev["event"]["assignee"] == member:
                self._plan(now + self._travel_s(member, eid), eid, "arrive", member)
            elif action == "arrive" and state == "on_scene":
                spec = self.district.catalog[ev["event"]["scenario"]]
                self._plan(now + self.draw.exponential(spec.handling_min * 60.0), eid, "resolve", member)
            elif action == "resolve":
                self._plan(now + self.draw.exponential(self.p.verify_mean_s), eid, "verify", "verifier")
        self.done += acted
        return acted
