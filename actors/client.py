"""The facade the API talks to: one ``await client.call(method, ...)`` whether the brain runs
in this process or in a Ray actor (which hides ``ray.get``).

Method names are those of :class:`actors.brain.Brain`; arguments and results are plain
JSON-ready values. Errors raised by the brain (:mod:`twin.errors`) come out of ``call``
unchanged in both cases.
"""

from __future__ import annotations

import asyncio
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
