"""Hosting the live twin: in this process, or in Ray actors (same classes either way).

Actors (few processes, many logical entities each — one process per camera would not fit
a 2-core machine):

- ``brain``: the :class:`~actors.brain.Brain` (events, dispatch, timers, the event log);
  restarted by Ray if its process dies, rebuilding its state from the log.
- ``area-shard-<k>``: everything of a group of areas (:class:`AreaShards`, :class:`ShardActor`):
  its cameras (Frigate events → reports), its road units, and with the synthetic feed its
  patrol teams (simulated handlers).

:class:`~actors.client.RayClient` is the facade over the brain actor (the brain's typed calls,
like the in-process :class:`~actors.client.LocalClient`), with the brain's errors re-raised as
they are and a dead or restarting brain reported as :class:`~actors.client.BrainUnavailable`.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from actors.brain import Brain
from actors.cameras import Outcome
from actors.client import BrainClient, BrainUnavailable, Coalescer, LocalClient, RayClient, call_brain, ray_cause
from actors.eventlog import open_log
from actors.frigate import FrigateMap, frigate_map_of
from actors.heap import Refreeze, freeze
from actors.live import Clock
from twin.district import District
from twin.errors import NotFound, ValidationError

P = ParamSpec("P")
R = TypeVar("R")

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
        synthetic_cameras: Cameras whose video is rendered from the feed's draws
            (:mod:`actors.cityeye`): the feed leaves the incidents they can show to them.
    """

    def __init__(self, scenario: str | District, db: str, *, speed: float = 1.0,
                 origin: float | None = None, feed: bool = False, feed_rate: float = 1.0, tick_s: float = 0.25,
                 overrides: Mapping[str, Any] | None = None, freeze_heap: bool = False, patrols: bool = True,
                 synthetic_cameras: Sequence[str] = ()) -> None:
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
        self.feed: Any = None
        self.patrols: Any = None
        if feed:
            from actors.feed import PatrolTeams, SyntheticFeed

            start = datetime.fromtimestamp(self.clock.origin, self.district.roster.tz)
            midnight = start.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
            self.feed = SyntheticFeed(self.district, self.local, midnight, rate=feed_rate,
                                      cameras=frozenset(synthetic_cameras))
            if patrols:
                self.patrols = PatrolTeams(self.district, self.local)
        self._refreeze: Callable[[], bool] = Refreeze() if freeze_heap else (lambda: False)
        if freeze_heap:
            freeze()  # the district and the recovered state are long-lived: keep them out of full GCs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="brain-loop", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            now = self.clock.now()
            try:
                self.brain.tick()
                if self.feed is not None:
                    self.feed.step(now)
                if self.patrols is not None:
                    self.patrols.step(now)
                self._refreeze()
            except Exception as exc:  # pragma: no cover - logged, the loop carries on
                print(f"brain loop: {type(exc).__name__}: {exc}", flush=True)

    def call(self, method: str, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None) -> Any:
        """One of the brain's calls, by name (what :class:`~actors.client.RayClient` sends)."""
        return call_brain(self.brain, method, args, kwargs)

    def ping(self) -> float:
        """Liveness."""
        return self.clock.now()

    def where(self) -> dict[str, Any]:
        """The process and (in a Ray actor) the node holding the brain."""
        return _where()

    def feed_info(self) -> dict[str, Any] | None:
        """What camera actors need to draw the feed's incidents (:meth:`SyntheticFeed.info`);
        ``None`` without a feed."""
        return None if self.feed is None else dict(self.feed.info())

    def stop(self) -> None:
        """Stop the loop and close the log."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.log.close()


class HostClient(LocalClient):
    """The facade for a :class:`BrainHost` in this process.

    Args:
        host: The host; its brain answers.
    """

    def __init__(self, host: BrainHost) -> None:
        super().__init__(host.brain)
        self.host = host


def area_groups(district: District, shards: int) -> list[list[str]]:
    """The district's areas dealt into ``shards`` groups (at most one group per area)."""
    areas = sorted({a.id for a in district.regions.areas})
    shards = max(1, min(shards, len(areas)))
    return [areas[k::shards] for k in range(shards)]


class AreaShards:
    """The district's logical entities — cameras, road units, patrol teams — held by area: shard
    ``k`` holds every entity of its group of areas, one object per kind (a Ray actor per shard
    with ``ray_actors``, spread over a cluster's nodes; else plain objects in this process).

    Args:
        district: The district.
        shards: Number of shards (at most one per area).
        kinds: Which kinds the shards hold (``cameras``, ``roads``, ``patrols``).
        client: The brain, for the kinds that follow its log (in-process shards; actors find
            the brain actor by name).
        ray_actors: Host the shards in Ray actors; each loads the district by its scenario
            name (see :func:`_district_of`), in parallel.
        seed: Seed of simulated handlers' delays (shard k uses ``seed + k``).
        scenario: The district's scenario name or folder, loadable on every node (``None``:
            the district's name).
    """

    def __init__(self, district: District, shards: int = 1, *, kinds: Sequence[str] = ("cameras",),
                 client: BrainClient | None = None, ray_actors: bool = False, seed: int = 2,
                 scenario: str | None = None) -> None:
        bad = [k for k in kinds if k not in SHARD_KINDS]
        if bad or not kinds:
            raise ValueError(f"kinds must be some of {', '.join(SHARD_KINDS)}, got {list(kinds)!r}")
        self.kinds, self.district, self.ray_actors = tuple(kinds), district, ray_actors
        self.groups = area_groups(district, shards)
        self.group_of = {a: k for k, g in enumerate(self.groups) for a in g}
        # which shard holds which entity (a shard is told its areas only: it finds its entities itself)
        self.routes = {kind: {eid: self.group_of.get(area, 0) for eid, area in _entity_areas(kind, district).items()}
                       for kind in self.kinds}
        # Frigate's camera names (the shards read the same scenario file for its zone names)
        self.frigate = frigate_map_of(district) if "cameras" in self.kinds else FrigateMap()
        if ray_actors:
            import ray

            # Ray places an actor that asks for no CPU on its driver's node, SPREAD or not: on a
            # cluster each shard asks for a token share, so that Ray spreads them over its nodes.
            actor = ray.remote(num_cpus=SHARD_CPUS if _alive_nodes() > 1 else 0, max_restarts=-1)(ShardActor)
            self.shards: list[Any] = [
                actor.options(name=f"area-shard-{k}", scheduling_strategy="SPREAD")
                .remote(scenario or district.name, areas, self.kinds, seed=seed + k)
                for k, areas in enumerate(self.groups)]
            # (Frigate messages to each shard actor, batched)
            self._ingests = [Coalescer(functools.partial(self._ingest_batch, k), depth=INGEST_DEPTH,
                                       max_items=INGEST_BATCH) for k in range(len(self.shards))]
        else:
            self.shards = [Shard({kind: _shard_object(kind, district, areas, client, seed + k) for kind in self.kinds})
                           for k, areas in enumerate(self.groups)]

    def ready(self, timeout_s: float = 120.0) -> None:
        """Wait until every shard actor has loaded (a shard still loading would take CPU from
        requests already being served)."""
        if self.ray_actors:
            import ray

            ray.get([shard.ping.remote() for shard in self.shards], timeout=timeout_s)

    def local(self, k: int, kind: str) -> Any:
        """The plain object of ``kind`` in in-process shard ``k``."""
        return self.shards[k].objs[kind]

    async def _on(self, k: int, method: Callable[Concatenate[Shard, P], R], /, *args: P.args,
                  **kwargs: P.kwargs) -> R:
        """One of :class:`Shard`'s calls on shard ``k`` (awaited on its Ray actor, run in a
        worker thread here); a shard's error is raised as it was."""
        if not self.ray_actors:
            return await asyncio.to_thread(method, self.shards[k], *args, **kwargs)
        import ray

        try:
            return await getattr(self.shards[k], method.__name__).remote(*args, **kwargs)  # type: ignore[no-any-return]
        except ray.exceptions.RayTaskError as exc:
            raise ray_cause(exc) from None

    # --- cameras: Frigate events -------------------------------------------------------------------
    def _camera_shard(self, payload: Mapping[str, Any]) -> int:
        after = payload.get("after") if isinstance(payload, Mapping) else None
        cam = after.get("camera") if isinstance(after, Mapping) else None
        return self.routes["cameras"].get(self.frigate.camera_id(cam), 0) if isinstance(cam, str) else 0

    async def ingest_async(self, payload: Mapping[str, Any]) -> Outcome:
        """Map one Frigate event through the shard that holds its camera: the report body (or
        ``None``), why not, and the twin's camera id (:meth:`Shard.ingest`). Concurrent
        messages for a shard actor go to it together, in one call (a :class:`Coalescer`)."""
        k = self._camera_shard(payload)
        if not self.ray_actors:
            return self.shards[k].ingest(payload)  # type: ignore[no-any-return]
        return await self._ingests[k].submit(payload)  # type: ignore[no-any-return]

    async def _ingest_batch(self, k: int, payloads: list[Mapping[str, Any]]) -> list[Outcome | Exception]:
        return await self._on(k, Shard.ingest_many, payloads)

    # --- road units ----------------------------------------------------------------------------------
    async def road(self, road_id: str) -> dict[str, Any]:
        """One road unit (:meth:`actors.roads.RoadUnits.road`)."""
        if road_id not in self.routes["roads"]:
            raise NotFound("road", road_id)
        return dict(await self._on(self.routes["roads"][road_id], Shard.road, road_id))

    async def hot(self, limit: int = 20, area_id: str | None = None) -> list[dict[str, Any]]:
        """The busiest roads of every shard (or of one area), merged."""
        if area_id is not None and area_id not in self.group_of:
            raise ValidationError("area_id", f"no area '{area_id}'; one of {', '.join(sorted(self.group_of))}")
        ks = [self.group_of[area_id]] if area_id is not None else range(len(self.shards))
        parts = await asyncio.gather(*(self._on(k, Shard.hot, limit, area_id) for k in ks))
        rows = [r for part in parts for r in part]
        rows.sort(key=lambda r: (-len(r["open_events"]), -r["reports_last_24h"], r["road_id"]))
        return rows[:limit]


SHARD_KINDS = ("cameras", "roads", "patrols")
#: CPU share a shard actor asks for on a multi-node cluster (see :class:`AreaShards`).
SHARD_CPUS = 0.01
#: Frigate messages per call to a shard actor at most, and calls in flight per shard.
INGEST_BATCH = 256
INGEST_DEPTH = 2
#: Wall seconds between a road-unit shard's reads of the log (answers catch up first anyway).
ROAD_FOLLOW_S = 2.0


def _alive_nodes() -> int:
    """Live nodes of the Ray cluster this process is connected to."""
    import ray

    listed: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return sum(1 for n in listed if n.get("Alive"))


def _district_of(source: District | str) -> District:
    """The district an actor was given: a scenario name or folder (loaded here), or itself.

    Actors that Ray restarts are given the name: a restart then depends on nothing but the
    name (and the event log), not on a copy in Ray's object store that a node's loss can take
    with it (Ray cannot rebuild an object the driver put there)."""
    if isinstance(source, str):
        from scenarios.loader import load_cached

        return load_cached(source)
    return source


def _entity_areas(kind: str, district: District) -> dict[str, str]:
    """Entity id → its area, for the entities of ``kind`` (cameras by their grid, members by
    their post, roads by their midpoint)."""
    if kind == "cameras":
        grid_area = {g.id: district.regions.area_of(g.id) for g in district.regions.grids}
        return {c.id: grid_area.get(c.grid_id, "") for c in district.cameras}
    if kind == "patrols":
        return {m.id: m.area_id for m in district.roster.members}
    return dict(district.road_areas())


def _shard_object(kind: str, district: District, areas: Sequence[str], client: BrainClient | None,
                  seed: int) -> Any:
    """The plain object of ``kind`` for the shard holding ``areas`` (the first shard also holds
    entities of no known area)."""
    known = {a.id for a in district.regions.areas}
    first = min(known) in areas  # shard 0 (see ``AreaShards.routes``)
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


class Shard:
    """The entities of one group of areas: one plain object per kind (cameras:
    :class:`~actors.cameras.CameraShard`; road units: :class:`~actors.roads.RoadUnits`;
    patrol teams: :class:`~actors.feed.PatrolTeams`), and the calls a shard answers. Each
    kind has a lock of its own: a call and the kind's log-following ``step`` take turns.

    Args:
        objs: Kind → its object.
    """

    def __init__(self, objs: Mapping[str, Any]) -> None:
        self.objs = dict(objs)
        self._locks = {kind: threading.Lock() for kind in self.objs}

    def ingest(self, payload: Mapping[str, Any]) -> Outcome:
        """One Frigate event through the shard's cameras: the report body (or ``None``), why not,
        and the twin's camera id (:meth:`actors.cameras.CameraShard.ingest_with_reason`)."""
        with self._locks["cameras"]:
            return self.objs["cameras"].ingest_with_reason(payload)  # type: ignore[no-any-return]

    def ingest_many(self, payloads: Sequence[Mapping[str, Any]]) -> list[Outcome | Exception]:
        """Several Frigate events in one call: each one's :meth:`ingest`, or the error refusing it."""
        with self._locks["cameras"]:
            return self.objs["cameras"].ingest_many(payloads)  # type: ignore[no-any-return]

    def road(self, road_id: str) -> dict[str, Any]:
        """One of the shard's road units (:meth:`actors.roads.RoadUnits.road`)."""
        with self._locks["roads"]:
            return self.objs["roads"].road(road_id)  # type: ignore[no-any-return]

    def hot(self, limit: int = 20, area_id: str | None = None) -> list[dict[str, Any]]:
        """The shard's busiest roads (:meth:`actors.roads.RoadUnits.hot`)."""
        with self._locks["roads"]:
            return self.objs["roads"].hot(limit, area_id)  # type: ignore[no-any-return]

    def step(self, kind: str, now: float) -> None:
        """Let the object of ``kind`` follow the brain's log up to ``now``."""
        with self._locks[kind]:
            self.objs[kind].step(now)

    def ping(self) -> int:
        """Liveness."""
        return 1

    def where(self) -> dict[str, Any]:
        """The process and (in a Ray actor) the node holding this shard."""
        return _where()


def _where() -> dict[str, Any]:
    """This process's id and, inside Ray, its node's id."""
    import os

    node = None
    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            node = ray.get_runtime_context().get_node_id()
    return {"pid": os.getpid(), "node_id": node}


class ShardActor(Shard):
    """A :class:`Shard` in a Ray actor of its own. The kinds that follow the brain's log find the
    brain actor by name, keep its clock and step in a loop of their own: handlers every
    ``tick_s`` (they act on time), road units every few seconds (their answers catch up first
    anyway; the loop only keeps a backlog from building up).

    Args:
        district: The district (or a scenario name to load).
        areas: The shard's area ids.
        kinds: The kinds it holds.
        seed: Seed of simulated handlers' delays.
        tick_s: Wall seconds between handler steps.
    """

    def __init__(self, district: District | str, areas: Sequence[str], kinds: Sequence[str], *,
                 seed: int = 2, tick_s: float = 0.25) -> None:
        self._stop = threading.Event()
        loaded = _district_of(district)

        def build() -> dict[str, Any]:
            client = None
            if any(k != "cameras" for k in kinds):
                client, self.clock = brain_and_clock()
            return {kind: _shard_object(kind, loaded, areas, client, seed) for kind in kinds}

        super().__init__(until_brain(build))
        followers = [(k, tick_s if k == "patrols" else ROAD_FOLLOW_S) for k in kinds if k != "cameras"]
        if followers:
            threading.Thread(target=self._loop, args=(followers, tick_s), name="shard-loop", daemon=True).start()
        freeze()

    def _loop(self, followers: list[tuple[str, float]], tick_s: float) -> None:
        due = {k: 0.0 for k, _ in followers}
        while not self._stop.wait(tick_s):
            for kind, every in followers:
                now = time.monotonic()
                if now < due[kind]:
                    continue
                due[kind] = now + every
                try:
                    self.step(kind, self.clock.now())
                except Exception as exc:  # pragma: no cover - logged; the loop carries on (brain restarting)
                    print(f"{kind} shard: {type(exc).__name__}: {exc}", flush=True)


#: Longest a restarted actor waits for the brain to come back, seconds.
BRAIN_WAIT_S = 600.0


def until_brain(build: Callable[[], R], timeout_s: float = BRAIN_WAIT_S) -> R:
    """``build()``, again while the brain actor is away (restarting, or not yet there): an actor
    that Ray restarts together with the brain after a node's loss may start first, and an
    error raised in a Ray actor's constructor ends it for good."""
    deadline = time.monotonic() + timeout_s
    delay = 0.2
    while True:
        try:
            return build()
        except (BrainUnavailable, ValueError) as exc:  # (ray.get_actor: ValueError while not registered)
            if (isinstance(exc, ValueError) and "brain" not in str(exc)) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def brain_and_clock() -> tuple[RayClient, Clock]:
    """The brain actor (by name) and its clock (speed and time), for actors that follow it."""
    import ray

    client = RayClient(ray.get_actor("brain"))
    return client, Clock(float(client.sync.health()["speed"]), origin=float(client.sync.now()))


#: Ray namespace of the live twin's named actors (``brain``, ``area-shard-<k>``, ``city-eye-<k>``):
#: tools on a cluster find them there (``ray.get_actor("brain", namespace="streetbrain")``).
RAY_NAMESPACE = "streetbrain"


def start_ray_brain(scenario: str, db: str, *, speed: float = 1.0, feed: bool = False, feed_rate: float = 1.0,
                    origin: float | None = None, num_cpus: int | None = None,
                    address: str | None = None, wait: bool = True, patrols: bool = True,
                    synthetic_cameras: Sequence[str] = ()) -> tuple[RayClient, Any]:
    """Start Ray lean (loopback, no dashboard) and the brain actor; returns the facade and the
    actor (with ``wait``, once the brain has recovered its state: ``ray.get(actor.ping.remote())``).
    Ray restarts the brain wherever it can; it rebuilds from the scenario's name and the event
    log alone, so on a cluster the scenario must load on every node and the log must be one
    every node reaches (PostgreSQL).

    On a cluster (``address``) the brain asks Ray for one CPU — it is the twin's busiest
    process — so a head node started with ``--num-cpus=0``, as Ray advises for clusters, keeps it
    off the head (a node whose loss would end the cluster); a local cluster shares its cores."""
    from scenarios.ray_setup import init_ray

    ray = init_ray(address=address, num_cpus=num_cpus or 2, namespace=RAY_NAMESPACE)
    nodes = _alive_nodes()
    if nodes > 1 and not str(db).lower().startswith(("postgresql://", "postgres://")):
        raise ValidationError("db", f"the Ray cluster has {nodes} nodes and the brain may restart on any of them: "
                                    "give an event log every node reaches (a postgresql:// URL), not a file on "
                                    "one node's disk")
    cpus = 1 if address is not None and float(ray.cluster_resources().get("CPU", 0.0)) >= 1 else 0
    actor_cls = ray.remote(num_cpus=cpus, max_restarts=-1, max_concurrency=8)(BrainHost)
    actor = actor_cls.options(name="brain", lifetime=None).remote(scenario, db, speed=speed, feed=feed,
                                                                  feed_rate=feed_rate, origin=origin,
                                                                  freeze_heap=True, patrols=patrols,
                                                                  synthetic_cameras=tuple(synthetic_cameras))
    if wait:
        ray.get(actor.ping.remote())  # the brain has recovered its state
    return RayClient(actor), actor
