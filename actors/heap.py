"""Keeping the garbage collector's pauses off the request path.

A loaded district is ~100,000 tracked Python objects (road segments, shapes, members, the
catalog) and Ray and FastAPI add as many again. CPython's cyclic collector walks all of them
in every full (generation 2) collection: 50-280 ms measured here, with the process's every
thread stopped — the p99 of a dispatch API. Those objects live as long as the process, so
after start-up they go to the permanent generation (:func:`gc.freeze`); what is created later
(events, records, requests) is collected as usual, and a long-running process moves its
survivors there from time to time (:class:`Refreeze`), so full collections stay short.
"""

from __future__ import annotations

import gc
import time


def freeze() -> None:
    """Collect what is garbage now, then move every surviving object to the permanent
    generation (never scanned again)."""
    gc.collect()
    gc.freeze()


class Refreeze:
    """Call from a periodic loop: every ``every_s`` seconds collect the young generations and
    freeze their survivors (long-lived state: events, timers, tokens). Garbage cycles that
    already reached the oldest generation are not reclaimed (there are few: the twin's state
    is acyclic)."""

    def __init__(self, every_s: float = 30.0) -> None:
        self.every_s = every_s
        self._next = time.monotonic() + every_s

    def __call__(self) -> bool:
        """Freeze if due; whether it did."""
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self.every_s
        gc.collect(1)
        gc.freeze()
        return True
