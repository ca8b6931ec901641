"""Hosting the live twin: in this process, or in Ray actors (same classes either way).

Actors (few processes, many logical entities each — one process per camera would not fit
a 2-core machine):

- ``brain``: the :class:`~actors.brain.Brain` (events, dispatch, timers, the event log);
  restarted by Ray if its process dies, rebuilding its state from the log.
- ``cameras-<k>``: :class:`~actors.cameras.CameraShard` per group of areas (Frigate
  events → reports).
- ``patrol-<k>``: simulated handlers per group of areas, only with the synthetic feed.

:class:`RayClient` is the facade over the brain actor: ``await client.call(...)`` like the
in-process :class:`~actors.client.LocalClient`, with the brain's errors re-raised as they are
and a dead or restarting brain reported as :class:`BrainUnavailable`.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from actors.brain import Brain
from actors.client import BrainUnavailable, LocalClient
from actors.eventlog import open_log
from actors.heap import Refreeze, freeze
from actors.live import Clock
from twin.district import District
from twin.errors import NotFound, ValidationError

#: The brain's threads hand the GIL over often: a request thread deciding, the group committer
#: back from an fsync, Ray's own threads. With Python's default 5 ms switch interval each hand-over
#: can stall a waiting thread that long (a convoy: tens of ms per request under load).
SWITCH_INTERVAL_S = 0.0005


class BrainHost:
    """The brain and its background loop (timers; optionally the synthetic feed and handlers).

    Args:
        scenario: Scenario name or folder, or the district itself.
        db: Event-log path or URL.
        speed: Clock speed-up.
        origin: POSIX time the clock of a fresh log starts at (default now); a log that has run
            before continues its own timeline.
        feed: Run the synthetic demand feed (and, with ``patrols``, simulated handlers for
            every member in this process; a deployment hosts them in patrol-shard actors).
        feed_rate: Demand multiplier of the feed.
        tick_s: Wall seconds between timer ticks.
        overrides: Scenario overrides (dotted keys).
        freeze_heap: Keep the district and the recovered state out of full garbage
            collections and freeze long-lived survivors every 30 s (:mod:`actors.heap`; for
            a process of its own, such as the Ray actor).
    """

    def __init__(self, scenario: str | District, db: str, *, speed: float = 1.0, origin: float | None = None,
                 feed: bool = False, feed_rate: float = 1.0, tick_s: float = 0.25,
                 overrides: Mapping[str, Any] | None = None, freeze_heap: bool = False, patrols: bool = True) -> None:
        from scenarios.loader import load_cached

        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self.district: District = scenario if isinstance(scenario, District) else load_cached(scenario, overrides)
        self.district.roads.precompute_travel()
        self.log = open_log(db)
        saved = self.log.setting("clock")
        self.resumed = saved is not None
        if saved is not None:
            # A restarted twin keeps its timeline: twin time went on at the saved speed while it
            # was down (``origin`` applies to a fresh log only; time never runs backwards).
            origin = float(saved["origin"]) + (time.time() - float(saved["wall"])) * float(saved["speed"])
        self.clock = Clock(speed, origin)
        self.log.put_setting("clock", {"origin": self.clock.origin, "wall": self.clock._wall0, "speed": speed})
        self.brain = Brain(self.district, self.log, self.clock)
        self.local = LocalClient(self.brain)
        self.tick_s = tick_s
        self.feed = self.patrols = None
        if feed:
            from actors.feed import PatrolTeams, SyntheticFeed

            start = datetime.fromtimestamp(self.clock.origin, self.district.roster.tz)
            midnight = start.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
            self.feed = SyntheticFeed(self.district, self.local, midnight, rate=feed_rate)
            if patrols:
                self.patrols = PatrolTeams(self.district, self.local)
        self._refreeze = Refreeze() if freeze_heap else (lambda: False)
        if freeze_heap:
            freeze()  # the district and the recovered state are long-lived: keep them out of full GCs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="brain-loop", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            now = self.clock.now()
            try:
                self.local.call_sync("tick")
                if self.feed is not None:
                    self.feed.step(now)
                if self.patrols is not None:
                    self.patrols.step(now)
                self._refreeze()
            except Exception as exc:  # pragma: no cover - logged, the loop carries on
                print(f"brain loop: {type(exc).__name__}: {exc}", flush=True)

    def call(self, method: str, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None) -> Any:
        """One brain call (what the Ray facade sends)."""
        return self.local.call_sync(method, *args, **(kwargs or {}))

    def ping(self) -> float:
        """Liveness."""
        return self.clock.now()

    def stop(self) -> None:
        """Stop the loop and close the log."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.log.close()


class HostClient:
    """The facade for a :class:`BrainHost` in this process."""

    def __init__(self, host: BrainHost) -> None:
        self.host = host

    def call_sync(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.host.local.call_sync(method, *args, **kwargs)

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return await self.host.local.call(method, *args, **kwargs)


class RayClient:
    """The facade for the brain in a Ray actor (hides ``ray.get``)."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def _unwrap(self, exc: BaseException) -> BaseException:
        import ray

        if isinstance(exc, ray.exceptions.RayTaskError):
            return _cause(exc)
        if isinstance(exc, (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError)):
            return BrainUnavailable("the brain is restarting; retry with the same Idempotency-Key")
        return exc

    def call_sync(self, method: str, *args: Any, **kwargs: Any) -> Any:
        import ray

        try:
            return ray.get(self.actor.call.remote(method, args, kwargs))
        except Exception as exc:
            raise self._unwrap(exc) from None

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return await self.actor.call.remote(method, args, kwargs)
        except Exception as exc:
            raise self._unwrap(exc) from None


def area_groups(district: District, shards: int) -> list[list[str]]:
    """The district's areas dealt into ``shards`` groups (at most one group per area)."""
    areas = sorted({a.id for a in district.regions.areas})
    shards = max(1, min(shards, len(areas)))
    return [areas[k::shards] for k in range(shards)]


class AreaShards:
    """Logical entities of one kind — cameras, road units or patrol teams — grouped by area,
    one group per shard: Ray actors (``ray_actors``; each loads the district by name itself,
    a district is too big to ship as an argument) or plain objects in this process.

    Args:
        kind: ``cameras``, ``roads`` or ``patrols``.
        district: The district.
        shards: Number of shards.
        client: The brain, for the kinds that follow its log (in-process shards only; actors
            find the brain actor by name).
        scenario: What the actors load by name (default: they get ``district`` from Ray's
            object store, put there once).
        ray_actors: Host the shards in Ray actors.
        seed: Seed of simulated handlers' delays (patrol teams; shard k uses ``seed + k``).
    """

    def __init__(self, kind: str, district: District, shards: int = 1, *, client: Any = None,
                 scenario: str | None = None, ray_actors: bool = False, seed: int = 2) -> None:
        if kind not in SHARD_KINDS:
            raise ValueError(f"kind must be one of {', '.join(SHARD_KINDS)}, got {kind!r}")
        self.kind, self.district, self.ray_actors = kind, district, ray_actors
        self.groups = area_groups(district, shards)
        self.group_of = {a: k for k, g in enumerate(self.groups) for a in g}
        # which shard holds which entity (a shard is told its areas only: it finds its entities itself)
        self.route = {eid: self.group_of.get(area, 0) for eid, area in _entity_areas(kind, district).items()}
        if ray_actors:
            import ray

            actor = ray.remote(num_cpus=0, max_restarts=-1)(ShardActor)
            # The district goes to the object store once (xiaohe 1 MiB, synthetic-10x 8 MiB pickled):
            # every shard unpickles it instead of building it again (10x: 0.8 s instead of 2.1 s).
            self._district_ref = scenario if scenario is not None else _object_ref(district)
            self.shards: list[Any] = [
                actor.options(name=f"{kind}-{k}", scheduling_strategy="SPREAD")  # over a cluster's nodes
                .remote(kind, self._district_ref, areas, seed=seed + k)
                for k, areas in enumerate(self.groups)]
        else:
            self.shards = [_shard_object(kind, district, areas, client, seed + k)
                           for k, areas in enumerate(self.groups)]

    def ready(self, timeout_s: float = 120.0) -> None:
        """Wait until every shard actor has loaded (a shard still loading would take CPU from
        requests already being served)."""
        if self.ray_actors:
            import ray

            ray.get([shard.ping.remote() for shard in self.shards], timeout=timeout_s)

    async def call(self, k: int, method: str, *args: Any) -> Any:
        """``method(*args)`` on shard ``k`` (awaited on a Ray actor, run in a thread here)."""
        if not self.ray_actors:
            return await asyncio.to_thread(getattr(self.shards[k], method), *args)
        import ray

        try:
            return await self.shards[k].call.remote(method, args)
        except ray.exceptions.RayTaskError as exc:
            raise _cause(exc) from None


class CameraShards(AreaShards):
    """Frigate ingest spread over camera shards (see :class:`AreaShards`)."""

    def __init__(self, district: District, shards: int = 1, *, scenario: str | None = None,
                 ray_actors: bool = False) -> None:
        super().__init__("cameras", district, shards, scenario=scenario, ray_actors=ray_actors)
        self.last_reason = ""

    def _index(self, payload: Mapping[str, Any]) -> int:
        after = payload.get("after") if isinstance(payload, Mapping) else None
        cam = after.get("camera") if isinstance(after, Mapping) else None
        return self.route.get(cam, 0) if isinstance(cam, str) else 0

    def ingest(self, payload: Mapping[str, Any]) -> dict[str, Any] | None:
        """Map one Frigate event through the shard that holds its camera (blocking)."""
        k = self._index(payload)
        if self.ray_actors:
            import ray

            try:
                body, self.last_reason = ray.get(self.shards[k].call.remote("ingest_with_reason", (payload,)))
            except ray.exceptions.RayTaskError as exc:
                raise _cause(exc) from None
            return body  # type: ignore[no-any-return]
        body = self.shards[k].ingest(payload)
        self.last_reason = self.shards[k].last_reason
        return body  # type: ignore[no-any-return]

    async def ingest_async(self, payload: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
        """The same for an event loop: the report body (or ``None``) and why not."""
        k = self._index(payload)
        if not self.ray_actors:
            return self.shards[k].ingest(payload), self.shards[k].last_reason
        body, reason = await self.call(k, "ingest_with_reason", payload)
        return body, reason


class RoadShards(AreaShards):
    """The road units spread over shards (see :class:`AreaShards` and :mod:`actors.roads`)."""

    def __init__(self, district: District, shards: int = 1, *, client: Any = None, scenario: str | None = None,
                 ray_actors: bool = False) -> None:
        super().__init__("roads", district, shards, client=client, scenario=scenario, ray_actors=ray_actors)

    async def road(self, road_id: str) -> dict[str, Any]:
        """One road unit (:meth:`actors.roads.RoadUnits.road`)."""
        if road_id not in self.route:
            raise NotFound("road", road_id)
        return dict(await self.call(self.route[road_id], "road", road_id))

    async def hot(self, limit: int = 20, area_id: str | None = None) -> list[dict[str, Any]]:
        """The busiest roads of every shard (or of one area), merged."""
        if area_id is not None and area_id not in self.group_of:
            raise ValidationError("area_id", f"no area '{area_id}'; one of {', '.join(sorted(self.group_of))}")
        ks = [self.group_of[area_id]] if area_id is not None else range(len(self.shards))
        parts = await asyncio.gather(*(self.call(k, "hot", limit, area_id) for k in ks))
        rows = [r for part in parts for r in part]
        rows.sort(key=lambda r: (-len(r["open_events"]), -r["reports_last_24h"], r["road_id"]))
        return rows[:limit]


SHARD_KINDS = ("cameras", "roads", "patrols")
#: Wall seconds between a road-unit shard's reads of the log (answers catch up first anyway).
ROAD_FOLLOW_S = 2.0


_REFS: dict[int, tuple[District, Any]] = {}


def _object_ref(district: District) -> Any:
    """``district`` in Ray's object store, put there once per district object."""
    import ray

    hit = _REFS.get(id(district))
    if hit is None or hit[0] is not district:
        hit = _REFS[id(district)] = (district, ray.put(district))
    return hit[1]


def _entity_areas(kind: str, district: District) -> dict[str, str]:
    """Entity id → its area, for the entities of ``kind`` (cameras by their grid, members by
    their post, roads by their midpoint)."""
    if kind == "cameras":
        grid_area = {g.id: district.regions.area_of(g.id) for g in district.regions.grids}
        return {c.id: grid_area.get(c.grid_id, "") for c in district.cameras}
    if kind == "patrols":
        return {m.id: m.area_id for m in district.roster.members}
    return dict(district.road_areas())


def _shard_object(kind: str, district: District, areas: Sequence[str], client: Any, seed: int) -> Any:
    """The plain object of the shard of ``kind`` holding ``areas`` (the first shard also holds
    entities of no known area)."""
    known = {a.id for a in district.regions.areas}
    first = min(known) in areas  # shard 0 (see ``AreaShards.route``)
    mine = [e for e, a in _entity_areas(kind, district).items() if a in areas or (first and a not in known)]
    if kind == "cameras":
        from actors.cameras import CameraShard

        return CameraShard(district, mine)
    if client is None:
        raise ValueError(f"{kind} shards follow the brain's log: pass its client")
    if kind == "roads":
        from actors.roads import RoadUnits

        return RoadUnits(district, client, areas, catch_up=True)
    from actors.feed import PatrolTeams

    return PatrolTeams(district, client, mine, seed=seed)


class ShardActor:
    """One Ray actor holding a shard of one kind over its plain class (cameras:
    :class:`~actors.cameras.CameraShard`; road units: :class:`~actors.roads.RoadUnits`;
    patrol teams: :class:`~actors.feed.PatrolTeams`). The kinds that follow the brain's log
    find the brain actor by name, keep its clock, and step in a loop of their own."""

    def __init__(self, kind: str, district: District | str, areas: Sequence[str], *, seed: int = 2,
                 tick_s: float = 0.25) -> None:
        from scenarios.loader import load_cached

        self.kind = kind
        self._lock = threading.Lock()
        self._stop = threading.Event()
        if isinstance(district, str):
            district = load_cached(district)
        client = None
        if kind != "cameras":
            import ray

            client = RayClient(ray.get_actor("brain"))
            self.clock = Clock(float(client.call_sync("health")["speed"]), origin=float(client.call_sync("now")))
        self.obj = _shard_object(kind, district, areas, client, seed)
        if kind != "cameras":
            # Handlers act on time; road units catch up when asked, and read the log every few
            # seconds in between only so that no big backlog builds up.
            every = tick_s if kind == "patrols" else ROAD_FOLLOW_S
            threading.Thread(target=self._loop, args=(every,), name=f"{kind}-loop", daemon=True).start()
        freeze()

    def _loop(self, tick_s: float) -> None:
        while not self._stop.wait(tick_s):
            try:
                with self._lock:
                    self.obj.step(self.clock.now())
            except Exception as exc:  # pragma: no cover - logged; the loop carries on (brain restarting)
                print(f"{self.kind} shard: {type(exc).__name__}: {exc}", flush=True)

    def call(self, method: str, args: Sequence[Any] = ()) -> Any:
        """``method(*args)`` on the shard's object."""
        if method.startswith("_"):
            raise AttributeError(method)
        with self._lock:
            return getattr(self.obj, method)(*args)

    def ping(self) -> int:
        """Liveness."""
        return 1


def _cause(exc: Exception) -> Exception:
    """The error a Ray task raised, unwrapped."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, Exception) else exc


def start_ray_brain(scenario: str, db: str, *, speed: float = 1.0, feed: bool = False, feed_rate: float = 1.0,
                    origin: float | None = None, num_cpus: int | None = None,
                    address: str | None = None, wait: bool = True, patrols: bool = True,
                    district: District | None = None) -> tuple[RayClient, Any]:
    """Start Ray lean (loopback, no dashboard) and the brain actor; returns the facade and the
    actor (with ``wait``, once the brain has recovered its state: ``ray.get(actor.ping.remote())``).
    ``district``: the loaded district, shared through Ray's object store (else the actor loads
    ``scenario`` itself)."""
    from scenarios.sweep import init_ray

    ray = init_ray(address=address, num_cpus=num_cpus or 2)
    actor_cls = ray.remote(num_cpus=0, max_restarts=-1, max_concurrency=8)(BrainHost)
    what = _object_ref(district) if district is not None else scenario  # loaded once, shared by all actors
    actor = actor_cls.options(name="brain", lifetime=None).remote(what, db, speed=speed, feed=feed,
                                                                  feed_rate=feed_rate, origin=origin,
                                                                  freeze_heap=True, patrols=patrols)
    if wait:
        ray.get(actor.ping.remote())  # the brain has recovered its state
    return RayClient(actor), actor
