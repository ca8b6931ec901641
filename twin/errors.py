"""Errors of the domain model.

Every error names *what* is wrong and *why*, so that a planner editing a scenario file or a
dispatcher calling the API can fix the input without reading a traceback.
"""

from __future__ import annotations


class TwinError(Exception):
    """Base class of every error raised by ``twin``."""


class ValidationError(TwinError, ValueError):
    """Input data is invalid.

    Args:
        field: Dotted path of the offending field (``staff.grid_worker.count``).
        reason: Why the value is rejected, in words a user understands.
        source: The file (or other origin) the value came from, if any.
    """

    def __init__(self, field: str, reason: str, source: str | None = None) -> None:
        self.field = field
        self.reason = reason
        self.source = source
        super().__init__(field, reason, source)  # args rebuild the error (pickling, SimPy)

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{where}{self.field}: {self.reason}"

    def with_source(self, source: str) -> ValidationError:
        """The same error, attributed to ``source`` (a file path)."""
        return ValidationError(self.field, self.reason, source=source)


class IllegalTransition(TwinError):
    """An event was asked to make a transition its lifecycle does not allow.

    Args:
        event_id: The event.
        action: The attempted action (``sign``, ``arrive``, ...).
        state: The event's current state.
        allowed: The actions that *are* allowed from that state.
    """

    def __init__(self, event_id: str, action: str, state: str, allowed: tuple[str, ...]) -> None:
        self.event_id = event_id
        self.action = action
        self.state = state
        self.allowed = allowed
        super().__init__(event_id, action, state, allowed)  # args rebuild the error

    def __str__(self) -> str:
        allowed_txt = ", ".join(self.allowed) if self.allowed else "none (the event is closed)"
        return (f"event {self.event_id}: cannot '{self.action}' an event in state '{self.state}'; "
                f"allowed from '{self.state}': {allowed_txt}")


class NotFound(TwinError, KeyError):
    """A referenced entity (member, road, scenario code, ...) does not exist."""

    def __init__(self, kind: str, key: str) -> None:
        self.kind = kind
        self.key = key
        super().__init__(kind, key)  # args rebuild the error

    def __str__(self) -> str:  # KeyError quotes its argument; keep the plain message
        return f"unknown {self.kind} '{self.key}'"
