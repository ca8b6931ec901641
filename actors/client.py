"""The facade the API, road units and simulated handlers talk to: :class:`BrainClient`, the
brain's calls (:class:`~actors.brain_api.BrainAPI`) with their types, whether the brain runs
in this process or in a Ray actor (which hides ``ray.get``, like Ray's own ``util.queue``).

``await client.create_events(...)`` on the event loop; ``client.sync.road_changes(...)`` from
a thread. Each call is forwarded by name to the brain over a transport: :class:`LocalClient`
(this process, the call runs in a worker thread) or :class:`RayClient` (the brain actor).
Errors raised by the brain (:mod:`twin.errors`) come out of the call unchanged either way; a
brain that is down or restarting is :class:`BrainUnavailable`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar, cast

from actors.brain_api import BRAIN_METHODS, BrainAPI, IdemKey, ReportItem
from twin.errors import TwinError

P = ParamSpec("P")
R = TypeVar("R")
#: A transport: forwards one call, ``(method name, args, kwargs)``, to the brain.
Send = Callable[[str, tuple[Any, ...], dict[str, Any]], Any]


class BrainUnavailable(TwinError):
    """The brain's process is down or restarting; retry (with the same Idempotency-Key)."""


class BrainClient:
    """The brain's calls, awaitable, over a transport (a subclass: :class:`LocalClient`,
    :class:`RayClient`); :attr:`sync` has the same calls blocking, for threads."""

    async def _send(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Forward one call and await its answer (the transport)."""
        raise NotImplementedError

    def _send_sync(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Forward one call and wait for its answer (the transport, blocking)."""
        raise NotImplementedError

    @cached_property
    def sync(self) -> SyncBrainClient:
        """The same calls, blocking (background threads, the CLI)."""
        return SyncBrainClient(self._send_sync)

    async def _call(self, method: Callable[Concatenate[BrainAPI, P], R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        return cast(R, await self._send(method.__name__, args, kwargs))

    async def create_event(self, body: Mapping[str, Any], *, actor: str, idem: IdemKey | None = None
                           ) -> dict[str, Any]:
        return await self._call(BrainAPI.create_event, body, actor=actor, idem=idem)

    async def create_events(self, items: Sequence[ReportItem], *, as_json: bool = False
                            ) -> list[dict[str, Any] | bytes | Exception]:
        return await self._call(BrainAPI.create_events, items, as_json=as_json)

    async def act(self, event_id: str, action: str, body: Mapping[str, Any], *, actor: str,
                  idem: IdemKey | None = None) -> dict[str, Any]:
        return await self._call(BrainAPI.act, event_id, action, body, actor=actor, idem=idem)

    async def get_event(self, event_id: str) -> dict[str, Any]:
        return await self._call(BrainAPI.get_event, event_id)

    async def event_of(self, event_id: str) -> dict[str, Any]:
        return await self._call(BrainAPI.event_of, event_id)

    async def list_events(self, filters: Mapping[str, Any]) -> list[dict[str, Any]]:
        return await self._call(BrainAPI.list_events, filters)

    async def members(self) -> list[dict[str, Any]]:
        return await self._call(BrainAPI.members)

    async def teams(self) -> list[dict[str, Any]]:
        return await self._call(BrainAPI.teams)

    async def roster(self) -> dict[str, Any]:
        return await self._call(BrainAPI.roster)

    async def swap_shifts(self, body: Mapping[str, Any], *, actor: str) -> dict[str, Any]:
        return await self._call(BrainAPI.swap_shifts, body, actor=actor)

    async def set_mode(self, mode: str, *, actor: str) -> dict[str, Any]:
        return await self._call(BrainAPI.set_mode, mode, actor=actor)

    async def positions(self, members: Sequence[str] | None = None) -> list[dict[str, Any]]:
        return await self._call(BrainAPI.positions, members)

    async def kpis(self, since: float | None = None, until: float | None = None) -> dict[str, Any]:
        return await self._call(BrainAPI.kpis, since, until)

    async def window(self, since: float, until: float, limit: int = 20000) -> dict[str, Any]:
        return await self._call(BrainAPI.window, since, until, limit)

    async def changes(self, since: int, limit: int = 500) -> list[dict[str, Any]]:
        return await self._call(BrainAPI.changes, since, limit)

    async def road_changes(self, since: int, limit: int = 5000) -> list[tuple[Any, ...]]:
        return await self._call(BrainAPI.road_changes, since, limit)

    async def last_seq(self) -> int:
        return await self._call(BrainAPI.last_seq)

    async def now(self) -> float:
        return await self._call(BrainAPI.now)

    async def tick(self) -> int:
        return await self._call(BrainAPI.tick)

    async def health(self) -> dict[str, Any]:
        return await self._call(BrainAPI.health)

    async def snapshot(self) -> dict[str, Any]:
        return await self._call(BrainAPI.snapshot)

    async def create_token(self, role: str, *, member_id: str | None = None, name: str = "") -> dict[str, Any]:
        return await self._call(BrainAPI.create_token, role, member_id=member_id, name=name)

    async def ensure_token(self, token: str, role: str, name: str) -> None:
        return await self._call(BrainAPI.ensure_token, token, role, name)

    async def principal(self, token: str) -> dict[str, Any] | None:
        return await self._call(BrainAPI.principal, token)

    async def put_evidence(self, event_id: str, content_type: str, data: bytes) -> str:
        return await self._call(BrainAPI.put_evidence, event_id, content_type, data)

    async def evidence(self, evidence_id: str) -> tuple[str, str, bytes] | None:
        return await self._call(BrainAPI.evidence, evidence_id)


class SyncBrainClient:
    """The brain's calls, blocking, over a transport (a :class:`BrainClient`'s :attr:`~BrainClient.sync`)."""

    def __init__(self, send: Send) -> None:
        self._send = send

    def _call(self, method: Callable[Concatenate[BrainAPI, P], R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        return cast(R, self._send(method.__name__, args, kwargs))

    def create_event(self, body: Mapping[str, Any], *, actor: str, idem: IdemKey | None = None) -> dict[str, Any]:
        return self._call(BrainAPI.create_event, body, actor=actor, idem=idem)

    def create_events(self, items: Sequence[ReportItem], *, as_json: bool = False
                      ) -> list[dict[str, Any] | bytes | Exception]:
        return self._call(BrainAPI.create_events, items, as_json=as_json)

    def act(self, event_id: str, action: str, body: Mapping[str, Any], *, actor: str,
            idem: IdemKey | None = None) -> dict[str, Any]:
        return self._call(BrainAPI.act, event_id, action, body, actor=actor, idem=idem)

    def get_event(self, event_id: str) -> dict[str, Any]:
        return self._call(BrainAPI.get_event, event_id)

    def event_of(self, event_id: str) -> dict[str, Any]:
        return self._call(BrainAPI.event_of, event_id)

    def list_events(self, filters: Mapping[str, Any]) -> list[dict[str, Any]]:
        return self._call(BrainAPI.list_events, filters)

    def members(self) -> list[dict[str, Any]]:
        return self._call(BrainAPI.members)

    def teams(self) -> list[dict[str, Any]]:
        return self._call(BrainAPI.teams)

    def roster(self) -> dict[str, Any]:
        return self._call(BrainAPI.roster)

    def swap_shifts(self, body: Mapping[str, Any], *, actor: str) -> dict[str, Any]:
        return self._call(BrainAPI.swap_shifts, body, actor=actor)

    def set_mode(self, mode: str, *, actor: str) -> dict[str, Any]:
        return self._call(BrainAPI.set_mode, mode, actor=actor)

    def positions(self, members: Sequence[str] | None = None) -> list[dict[str, Any]]:
        return self._call(BrainAPI.positions, members)

    def kpis(self, since: float | None = None, until: float | None = None) -> dict[str, Any]:
        return self._call(BrainAPI.kpis, since, until)

    def window(self, since: float, until: float, limit: int = 20000) -> dict[str, Any]:
        return self._call(BrainAPI.window, since, until, limit)

    def changes(self, since: int, limit: int = 500) -> list[dict[str, Any]]:
        return self._call(BrainAPI.changes, since, limit)

    def road_changes(self, since: int, limit: int = 5000) -> list[tuple[Any, ...]]:
        return self._call(BrainAPI.road_changes, since, limit)

    def last_seq(self) -> int:
        return self._call(BrainAPI.last_seq)

    def now(self) -> float:
        return self._call(BrainAPI.now)

    def tick(self) -> int:
        return self._call(BrainAPI.tick)

    def health(self) -> dict[str, Any]:
        return self._call(BrainAPI.health)

    def snapshot(self) -> dict[str, Any]:
        return self._call(BrainAPI.snapshot)

    def create_token(self, role: str, *, member_id: str | None = None, name: str = "") -> dict[str, Any]:
        return self._call(BrainAPI.create_token, role, member_id=member_id, name=name)

    def ensure_token(self, token: str, role: str, name: str) -> None:
        return self._call(BrainAPI.ensure_token, token, role, name)

    def principal(self, token: str) -> dict[str, Any] | None:
        return self._call(BrainAPI.principal, token)

    def put_evidence(self, event_id: str, content_type: str, data: bytes) -> str:
        return self._call(BrainAPI.put_evidence, event_id, content_type, data)

    def evidence(self, evidence_id: str) -> tuple[str, str, bytes] | None:
        return self._call(BrainAPI.evidence, evidence_id)


class LocalClient(BrainClient):
    """The brain in this process. Calls run in worker threads so that the event loop keeps
    serving; the brain serialises its own writes (one lock while it decides, then a group
    commit), so concurrent requests share the log's fsyncs.

    Args:
        brain: The brain (:class:`actors.brain.Brain`).
    """

    def __init__(self, brain: BrainAPI) -> None:
        self.brain = brain

    def _send_sync(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return call_brain(self.brain, name, args, kwargs)

    async def _send(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return await asyncio.to_thread(call_brain, self.brain, name, args, kwargs)


class RayClient(BrainClient):
    """The brain in a Ray actor (``BrainHost``, whose ``call`` is :func:`call_brain`): hides
    ``ray.get``; the brain's errors come back as they were raised, and a dead or restarting
    actor is :class:`BrainUnavailable`.

    Args:
        actor: The brain actor's handle.
    """

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    @staticmethod
    def _unwrap(exc: BaseException) -> BaseException:
        """The error to raise for one Ray raised: the brain's own, or :class:`BrainUnavailable`."""
        import ray

        if isinstance(exc, ray.exceptions.RayTaskError):
            return ray_cause(exc)
        if isinstance(exc, (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError)):
            return BrainUnavailable("the brain is restarting; retry with the same Idempotency-Key")
        return exc

    def _send_sync(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        import ray

        try:
            return ray.get(self.actor.call.remote(name, args, kwargs))
        except Exception as exc:
            raise self._unwrap(exc) from None

    async def _send(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            return await self.actor.call.remote(name, args, kwargs)
        except Exception as exc:
            raise self._unwrap(exc) from None


def call_brain(brain: BrainAPI, name: str, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None
               ) -> Any:
    """The receiving end of a transport: ``brain.<name>(*args, **kwargs)`` for one of the
    brain's calls (:data:`~actors.brain_api.BRAIN_METHODS`; any other name is refused)."""
    if name not in BRAIN_METHODS:
        raise AttributeError(f"the brain has no call '{name}'")
    return getattr(brain, name)(*args, **(kwargs or {}))


def ray_cause(exc: BaseException) -> BaseException:
    """The error a Ray task raised, unwrapped from Ray's ``RayTaskError``."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, Exception) else exc


class Coalescer:
    """Coalesces concurrent calls of one batch method (``send(items) -> results``) into few
    brain calls: at most ``depth`` calls are in flight; items that arrive meanwhile wait and
    go together in the next call (at most ``max_items``). At low load every item goes alone
    at once; under load the batches grow with it, so what each call costs (a Ray round trip,
    a vectorised locate, a group commit) is shared. ``send`` returns one result per item, an
    exception instance for an item that failed alone; if ``send`` itself raises, every item
    of that call gets the error.

    Args:
        send: The batch call (e.g. ``lambda items: client.create_events(items)``).
        depth: Calls in flight at once (1: the brain decides batches one after another
            anyway, and fewer, larger calls cost the least CPU; measured with
            ``benchmarks/bench_live.py``, 2 and 3 were no faster).
        max_items: Items per call at most.
    """

    def __init__(self, send: Callable[[list[Any]], Awaitable[Sequence[Any]]], *, depth: int = 1,
                 max_items: int = 64) -> None:
        if depth < 1 or max_items < 1:
            raise ValueError("depth and max_items must be at least 1")
        self.send, self.depth, self.max_items = send, depth, max_items
        self.waiting: list[tuple[Any, asyncio.Future[Any]]] = []
        self.in_flight = 0
        self.calls = 0
        self.items = 0

    async def submit(self, item: Any) -> Any:
        """Send ``item`` with whatever else is waiting; its result (or its error, raised)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting.append((item, fut))
        self._pump()
        return await fut

    def _pump(self) -> None:
        while self.waiting and self.in_flight < self.depth:
            batch, self.waiting = self.waiting[:self.max_items], self.waiting[self.max_items:]
            self.in_flight += 1
            self.calls += 1
            self.items += len(batch)
            asyncio.get_running_loop().create_task(self._call(batch))

    async def _call(self, batch: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        try:
            results = await self.send([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"batch call answered {len(results)} results for {len(batch)} items")
        except BaseException as exc:  # the whole call failed (e.g. the brain is restarting)
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            for (_, fut), res in zip(batch, results):
                if fut.done():  # the request was cancelled (client gone); the work stands
                    continue
                if isinstance(res, BaseException):
                    fut.set_exception(res)
                else:
                    fut.set_result(res)
        finally:
            self.in_flight -= 1
            self._pump()


if TYPE_CHECKING:  # mypy checks that the brain and the blocking facade both keep the contract
    from actors.brain import Brain

    def _contract(brain: Brain, client: BrainClient) -> tuple[BrainAPI, BrainAPI]:
        return brain, client.sync
