"""The fan-out behind ``GET /api/v1/stream``: one poll of the brain's log for every
subscriber, each new record encoded once as a server-sent event for all who keep it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from actors.client import BrainClient

log = logging.getLogger("streetbrain.api")

#: Records read from the brain per poll.
POLL_BATCH = 500
#: Frames a subscriber may fall behind by before new ones are dropped for it.
MAX_BACKLOG = 10_000

#: Which records a subscriber keeps.
Keep = Callable[[dict[str, Any]], bool]


def sse_frame(rec: dict[str, Any]) -> bytes:
    """One log record as a server-sent event (``id`` the log sequence, ``event`` the action)."""
    return f"id: {rec['log_seq']}\nevent: {rec['action']}\ndata: {json.dumps(rec, ensure_ascii=False)}\n\n".encode()


class Streams:
    """Fans the log's new records out to stream subscribers (one poll for all of them).

    Args:
        client: The brain.
        interval_s: Wall seconds between polls.
    """

    def __init__(self, client: BrainClient, interval_s: float = 0.2) -> None:
        self.client = client
        self.interval_s = interval_s
        self.subscribers: set[tuple[asyncio.Queue[bytes], Keep]] = set()
        self._task: asyncio.Task[None] | None = None
        self.seq = 0

    async def start(self) -> None:
        """Start polling from the log's newest record (the app's start-up)."""
        self.seq = int(await self.client.last_seq())
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop polling (the app's shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                if self.subscribers:
                    batch = await self.client.changes(self.seq, POLL_BATCH)
                    for rec in batch:
                        self.seq = max(self.seq, int(rec["log_seq"]))
                        frame = None  # encoded once, for every subscriber that keeps it
                        for q, keep in list(self.subscribers):
                            if keep(rec) and q.qsize() < MAX_BACKLOG:
                                if frame is None:
                                    frame = sse_frame(rec)
                                q.put_nowait(frame)
                    if len(batch) == POLL_BATCH:
                        continue
                else:
                    self.seq = int(await self.client.last_seq())
            except Exception as exc:  # keep streaming through a brain restart
                log.warning("stream poll failed: %s", exc)
            await asyncio.sleep(self.interval_s)


__all__ = ["Streams", "sse_frame"]
