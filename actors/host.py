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

#: The brain's threads hand the GIL over often: a request thread deciding, the group committer
#: back from an fsync, Ray's own threads. With Python's default 5 ms switch interval each hand-over
#: can stall a waiting thread that long (a convoy: tens of ms per request under load).
SWITCH_INTERVAL_S = 0.0005


class BrainHost:
    """The brain and its background loop (timers; optionally the synthetic feed and handlers).

    Args:
        scenario: Scenario name or folder.
        db: Event-log path or URL.
        speed: Clock speed-up.
        origin: POSIX time the clock of a fresh log starts at (default now); a log that has run
            before continues its own timeline.
        feed: Run the synthetic demand feed and simulated handlers.
        feed_rate: Demand multiplier of the feed.
        tick_s: Wall seconds between timer ticks.
        overrides: Scenario overrides (dotted keys).
        freeze_heap: Keep the district and the recovered state out of full garbage
            collections and freeze long-lived survivors every 30 s (:mod:`actors.heap`; for
            a process of its own, such as the Ray actor).
    """

    def __init__(self, scenario: str, db: str, *, speed: float = 1.0, origin: float | None = None,
                 feed: bool = False, feed_rate: float = 1.0, tick_s: float = 0.25,
                 overrides: Mapping[str, Any] | None = None, freeze_heap: bool = False) -> None:
        from scenarios.loader import load_cached

        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self.district: District = load_cached(scenario, overrides)
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


class CameraShards:
    """Frigate ingest spread over camera-shard actors (or one in-process shard).

    Args:
        district: The district (routing: which shard holds which camera).
        shards: Number of shards (cameras grouped by area).
        scenario: With ``ray_actors``, each actor loads the district by this name itself
            (a district is too big to ship as an actor argument).
        ray_actors: Host the shards in Ray actors.
    """

    def __init__(self, district: District, shards: int = 1, *, scenario: str | None = None,
                 ray_actors: bool = False) -> None:
        from actors.cameras import CameraShard

        areas = sorted({a.id for a in district.regions.areas})
        shards = max(1, min(shards, len(areas)))
        groups = [areas[k::shards] for k in range(shards)]
        grid_area = {g.id: district.regions.area_of(g.id) for g in district.regions.grids}
        self.route: dict[str, int] = {}
        members: list[list[str]] = [[] for _ in groups]
        for c in district.cameras:
            k = next((i for i, g in enumerate(groups) if grid_area.get(c.grid_id) in g), 0)
            self.route[c.id] = k
            members[k].append(c.id)
        self.ray_actors = ray_actors
        if ray_actors:
            import ray

            actor = ray.remote(num_cpus=0, max_restarts=-1)(CameraShardActor)
            self.shards: list[Any] = [actor.options(name=f"cameras-{k}").remote(scenario or district.name, ids)
                                      for k, ids in enumerate(members)]
        else:
            self.shards = [CameraShard(district, ids) for ids in members]
        self.last_reason = ""

    def _shard(self, payload: Mapping[str, Any]) -> Any:
        after = payload.get("after") if isinstance(payload, Mapping) else None
        cam = after.get("camera") if isinstance(after, Mapping) else None
        return self.shards[self.route.get(cam, 0) if isinstance(cam, str) else 0]

    def ready(self, timeout_s: float = 120.0) -> None:
        """Wait until every shard actor has loaded its cameras (a shard that is still loading
        would take CPU from requests already being served)."""
        if self.ray_actors:
            import ray

            ray.get([shard.ping.remote() for shard in self.shards], timeout=timeout_s)

    def ingest(self, payload: Mapping[str, Any]) -> dict[str, Any] | None:
        """Map one Frigate event through the shard that holds its camera (blocking)."""
        shard = self._shard(payload)
        if self.ray_actors:
            import ray

            try:
                body, self.last_reason = ray.get(shard.ingest_with_reason.remote(payload))
            except ray.exceptions.RayTaskError as exc:
                raise _cause(exc) from None
            return body  # type: ignore[no-any-return]
        body = shard.ingest(payload)
        self.last_reason = shard.last_reason
        return body  # type: ignore[no-any-return]

    async def ingest_async(self, payload: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
        """The same for an event loop: the report body (or ``None``) and why not."""
        shard = self._shard(payload)
        if not self.ray_actors:
            return shard.ingest(payload), shard.last_reason
        import ray

        try:
            body, reason = await shard.ingest_with_reason.remote(payload)
        except ray.exceptions.RayTaskError as exc:
            raise _cause(exc) from None
        return body, reason


def _cause(exc: Exception) -> Exception:
    """The error a Ray task raised, unwrapped."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, Exception) else exc


class CameraShardActor:
    """A camera shard in a Ray actor: loads the district by name, then maps Frigate events."""

    def __init__(self, scenario: str, camera_ids: Sequence[str]) -> None:
        from actors.cameras import CameraShard
        from scenarios.loader import load_cached

        self.shard = CameraShard(load_cached(scenario), camera_ids)
        freeze()

    def ping(self) -> int:
        """Liveness: the number of cameras held."""
        return len(self.shard.cameras)

    def ingest_with_reason(self, payload: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
        """The report body (or ``None``) and why not."""
        body = self.shard.ingest(payload)
        return body, self.shard.last_reason


def start_ray_brain(scenario: str, db: str, *, speed: float = 1.0, feed: bool = False, feed_rate: float = 1.0,
                    origin: float | None = None, num_cpus: int | None = None,
                    address: str | None = None, wait: bool = True) -> tuple[RayClient, Any]:
    """Start Ray lean (loopback, no dashboard) and the brain actor; returns the facade and the
    actor (with ``wait``, once the brain has recovered its state: ``ray.get(actor.ping.remote())``)."""
    from scenarios.sweep import init_ray

    ray = init_ray(address=address, num_cpus=num_cpus or 2)
    actor_cls = ray.remote(num_cpus=0, max_restarts=-1, max_concurrency=8)(BrainHost)
    actor = actor_cls.options(name="brain", lifetime=None).remote(scenario, db, speed=speed, feed=feed,
                                                                  feed_rate=feed_rate, origin=origin,
                                                                  freeze_heap=True)
    if wait:
        ray.get(actor.ping.remote())  # the brain has recovered its state
    return RayClient(actor), actor
