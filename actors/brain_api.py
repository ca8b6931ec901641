"""The brain's interface: what the API, Open311, road units, simulated handlers and the host
may ask of the live brain, with the types that cross it.

:class:`BrainAPI` is the contract. :class:`actors.brain.Brain` implements it in this process;
:class:`actors.client.BrainClient` is the facade that forwards it to a brain wherever it runs
(awaitable for the API's event loop, and as ``client.sync`` for threads). Arguments and
results are JSON-ready values (dicts, lists, strings, numbers), so a call crosses a process
boundary unchanged. Errors are :mod:`twin.errors` exceptions, re-raised as they are on the
caller's side.

Access roles live here too: the brain stores every bearer token with one of :data:`ROLES`,
and the API's role tables (:mod:`api.access`) are built from them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, Protocol, TypedDict

#: An idempotency key as the brain keeps it: ``(key, principal id, request hash)``. A retry
#: under the same key and principal with the same request hash gets the first answer back.
IdemKey = tuple[str, str, str]


class AccessRole(StrEnum):
    """What a bearer token allows (the brain stores each token with one)."""

    ADMIN = "admin"
    """Everything, including creating tokens."""
    DISPATCHER = "dispatcher"
    """Reports, dispatches and acts on any event; switches the mode; swaps shifts."""
    HANDLER = "handler"
    """Bound to one member: reads, and acts only on their own assignments."""
    INGEST = "ingest"
    """Cameras, sensors and citizens' apps: reports only."""
    VIEWER = "viewer"
    """Reads only."""


#: The role names, in a fixed order (for messages).
ROLES: tuple[str, ...] = tuple(r.value for r in AccessRole)


class ReportItem(TypedDict):
    """One report in a batch (:meth:`BrainAPI.create_events`)."""

    body: Any
    """The report's fields (see :meth:`BrainAPI.create_event`); validated by the brain."""
    actor: str
    """Who reports, for the audit log (``role:name``, a member id, ``camera:<id>``)."""
    idem: IdemKey | None
    """Its idempotency key, if the request carried one."""


class BrainAPI(Protocol):
    """Every call the brain answers (blocking form; :class:`actors.client.BrainClient` has the
    same calls awaitable)."""

    # --- reports and actions ---------------------------------------------------------------------
    def create_event(self, body: Mapping[str, Any], *, actor: str, idem: IdemKey | None = None) -> dict[str, Any]:
        """Report an event (``scenario``, ``lon``/``lat`` or a GeoJSON ``location``, ``source``,
        optional ``description`` and ``external_id``): ``{"event": view}``, dispatched if someone
        was free."""
        ...

    def create_events(self, items: Sequence[ReportItem], *, as_json: bool = False
                      ) -> list[dict[str, Any] | bytes | Exception]:
        """Several reports decided in order and made durable together: one answer per report
        (compact JSON bytes with ``as_json``), or the error that refused it."""
        ...

    def act(self, event_id: str, action: str, body: Mapping[str, Any], *, actor: str,
            idem: IdemKey | None = None) -> dict[str, Any]:
        """A person's workflow action on an event (``sign``, ``arrive``, ``resolve``, ...)."""
        ...

    # --- events --------------------------------------------------------------------------------------
    def get_event(self, event_id: str) -> dict[str, Any]:
        """One event with its audit history."""
        ...

    def event_of(self, event_id: str) -> dict[str, Any]:
        """One event without history (permission checks, travel planning)."""
        ...

    def list_events(self, filters: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Events, newest first, by ``state``, ``area_id``, ``category``, ``assignee``,
        ``since``/``until`` (POSIX seconds), ``limit`` and ``offset``."""
        ...

    # --- staff and roster ----------------------------------------------------------------------------
    def members(self) -> list[dict[str, Any]]:
        """Every member with role, area, squad, grids, whether on duty and busy."""
        ...

    def teams(self) -> list[dict[str, Any]]:
        """The teams (by role) and the road squads, with head counts."""
        ...

    def roster(self) -> dict[str, Any]:
        """The shift in force, its window, the mode and who is on duty."""
        ...

    def swap_shifts(self, body: Mapping[str, Any], *, actor: str) -> dict[str, Any]:
        """Two members of one role exchange their shifts on a date (``member_a``, ``member_b``,
        ``date``)."""
        ...

    def set_mode(self, mode: str, *, actor: str) -> dict[str, Any]:
        """Switch to ``peacetime`` or ``wartime``; returns the roster."""
        ...

    def positions(self, members: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Where every member (or each of ``members``) is now."""
        ...

    # --- KPIs and the log ----------------------------------------------------------------------------
    def kpis(self, since: float | None = None, until: float | None = None) -> dict[str, Any]:
        """The 1/3/5-minute KPIs now, or for events reported in a window (POSIX seconds)."""
        ...

    def window(self, since: float, until: float, limit: int = 20000) -> dict[str, Any]:
        """Every record of the events reported in ``[since, until)``, in time order (a replay)."""
        ...

    def changes(self, since: int, limit: int = 500) -> list[dict[str, Any]]:
        """Audit records after log sequence ``since``, oldest first (what streams send)."""
        ...

    def road_changes(self, since: int, limit: int = 5000) -> list[tuple[Any, ...]]:
        """What road units follow: ``(log seq, event id, action, to state, at, road id,
        scenario)`` of the records after ``since``."""
        ...

    def last_seq(self) -> int:
        """The newest log sequence number."""
        ...

    def now(self) -> float:
        """The twin's time, POSIX seconds."""
        ...

    def tick(self) -> int:
        """Fire the timers that are due; the number of records written."""
        ...

    def health(self) -> dict[str, Any]:
        """Liveness facts: district name, events, last sequence, twin time, mode, clock speed."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """The live state, for a what-if fork."""
        ...

    # --- credentials and evidence ------------------------------------------------------------------
    def create_token(self, role: str, *, member_id: str | None = None, name: str = "") -> dict[str, Any]:
        """A new bearer token of one of :data:`ROLES` (returned once; only its hash is kept)."""
        ...

    def ensure_token(self, token: str, role: str, name: str) -> None:
        """Register a given token (the admin token from the environment) if not yet known."""
        ...

    def principal(self, token: str) -> dict[str, Any] | None:
        """Who holds a bearer token (``id``, ``role``, ``member_id``, ``name``), or ``None``."""
        ...

    def put_evidence(self, event_id: str, content_type: str, data: bytes) -> str:
        """Store a photo or clip for an event; its evidence id."""
        ...

    def evidence(self, evidence_id: str) -> tuple[str, str, bytes] | None:
        """Stored evidence: ``(event id, content type, bytes)``, or ``None``."""
        ...


#: The names of the brain's calls: all that a transport forwards.
BRAIN_METHODS = frozenset(name for name, value in vars(BrainAPI).items()
                          if callable(value) and not name.startswith("_"))

#: An evidence id: the SHA-256 of the stored file (a report's ``evidence`` lists them).
EVIDENCE_ID = re.compile(r"^sha256:[0-9a-f]{64}$")
#: Longest ``media_url`` (Open311: a link to a photo kept elsewhere) a report may carry, characters.
MAX_MEDIA_URL = 2000

__all__ = ["BRAIN_METHODS", "EVIDENCE_ID", "MAX_MEDIA_URL", "ROLES", "AccessRole", "BrainAPI", "IdemKey", "ReportItem"]
