"""The facade the API talks to: one ``await client.call(method, ...)`` whether the brain runs
in this process or in a Ray actor (which hides ``ray.get``).

Method names are those of :class:`actors.brain.Brain`; arguments and results are plain
JSON-ready values. Errors raised by the brain (:mod:`twin.errors`) come out of ``call``
unchanged in both cases.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from actors.brain import Brain
from twin.errors import TwinError


class BrainUnavailable(TwinError):
    """The brain's process is down or restarting; retry (with the same Idempotency-Key)."""


class BrainClient(Protocol):
    """What the API needs from the brain."""

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``Brain.<method>(*args, **kwargs)`` and return its result."""
        ...

    def call_sync(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """The same, blocking (background threads, the CLI)."""
        ...


class LocalClient:
    """The brain in this process. Calls run in worker threads so that the event loop keeps
    serving; the brain serialises its own writes (one lock while it decides, then a group
    commit), so concurrent requests share the log's fsyncs."""

    def __init__(self, brain: Brain) -> None:
        self.brain = brain

    def call_sync(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if method.startswith("_"):
            raise AttributeError(method)
        return getattr(self.brain, method)(*args, **kwargs)

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self.call_sync, method, *args, **kwargs)


class Coalescer:
    """Coalesces concurrent calls of one batch method (``send(items) -> results``) into few
    brain calls: at most ``depth`` calls are in flight; items that arrive meanwhile wait and
    go together in the next call (at most ``max_items``). At low load every item goes alone
    at once; under load the batches grow with it, so what each call costs (a Ray round trip,
    a vectorised locate, a group commit) is shared. ``send`` returns one result per item, an
    exception instance for an item that failed alone; if ``send`` itself raises, every item
    of that call gets the error.

    Args:
        send: The batch call (e.g. ``lambda items: client.call("create_events", items)``).
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
