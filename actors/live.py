"""The live street brain: events in, assignments, timers and escalations out, every step logged.

:class:`LiveTwin` is a plain class over :mod:`twin` (the same ``workflow`` and ``policy``
code the simulator runs); it runs in-process in tests and notebooks and inside a Ray actor
in a deployment (:mod:`actors.host`). It is the single writer of event state: each
operation computes its transitions with :func:`twin.workflow.apply`, appends the audit
records to the durable :class:`~actors.eventlog.EventLog` in one transaction, and only then
changes memory and answers. After a crash a new instance rebuilds everything from the log
(:meth:`LiveTwin.recover`): events by :func:`twin.workflow.replay`, who is busy from the
open assignments, the waiting queue, the timers still pending and the ones already fired.

Timers (the 1/3/5-minute rule, :mod:`twin.policy`): not signed ``respond_s`` after dispatch
→ reassign once, then escalate, then supervise (督办); nobody on scene ``on_scene_s`` after
the report → reinforcement; reinforcement not on scene by ``reinforce_s`` → supervise. They
fire in :meth:`LiveTwin.tick`, which the host calls a few times a second with the clock's
``now``. Wartime caps every target at 60/180/300 s and sends emergencies straight to the
brigade. At each shift change unsigned work held by members going off duty moves to the
incoming shift (signed work stays: overtime), and idle members coming on take waiting work.
"""

from __future__ import annotations

import bisect
import copy
import heapq
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from actors.eventlog import EventLog
from twin.catalog import ScenarioSpec, Source
from twin.district import District
from twin.errors import NotFound, TwinError, ValidationError
from twin.policy import (
    Assignment,
    DuplicateIndex,
    MemberState,
    Remedy,
    Targets,
    Timer,
    deadlines,
    dispatch,
    dispatch_reinforcement,
    may_dispatch,
    remedy,
    targets_for,
)
from twin.staff import Mode, Role
from twin.workflow import TERMINAL, Action, AuditRecord, Event, State, apply, replay, report

#: Actions a person may take through the API (the rest belong to the brain and its timers).
HUMAN_ACTIONS = frozenset({Action.SIGN, Action.ARRIVE, Action.RESOLVE, Action.VERIFY, Action.ESCALATE,
                           Action.REQUEST_REINFORCEMENT, Action.REINFORCE, Action.FALSE_ALARM, Action.MERGE,
                           Action.REOPEN, Action.WITHDRAW, Action.DISPATCH, Action.REASSIGN, Action.CONSULT})
#: How many recently durable idempotency keys the twin remembers (see ``LiveTwin._key_in_use``).
SETTLED_KEYS = 100_000
#: Timers fired per hold of the twin's lock in :meth:`LiveTwin.tick` (reports wait at most
#: that long for the lock when many timers fall due at once).
TIMERS_PER_HOLD = 16
#: How many of the newest durable records the twin keeps in memory for followers
#: (:meth:`LiveTwin.transitions`, :meth:`LiveTwin.records_after`; older ones are read from
#: the log): ~16 s at 500 reports/s, hours at a district's usual pace.
TAIL_RECORDS = 20_000
#: States in which the assignee is busy with the event.
HELD = frozenset({State.DISPATCHED, State.SIGNED, State.ON_SCENE, State.REINFORCEMENT_REQUESTED})


class Clock:
    """The wall clock, optionally sped up (like ``simpy.rt``): ``now`` advances ``speed``
    twin seconds per wall second from ``origin`` (default: the wall time at creation).

    Args:
        speed: Twin seconds per wall second (> 0); 60 lives an hour in a minute.
        origin: POSIX time the twin starts at.
    """

    def __init__(self, speed: float = 1.0, origin: float | None = None) -> None:
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not math.isfinite(speed) or speed <= 0:
            raise ValidationError("speed", f"must be a positive number, got {speed!r}")
        self.speed = float(speed)
        self._wall0 = time.time()
        self._mono0 = time.monotonic()
        self.origin = self._wall0 if origin is None else float(origin)

    def now(self) -> float:
        """POSIX seconds of twin time."""
        return self.origin + (time.monotonic() - self._mono0) * self.speed

    def wall_seconds_until(self, t: float) -> float:
        """Wall seconds until twin time ``t`` (0 if it has passed)."""
        return max(0.0, (t - self.now()) / self.speed)


def iso(t: float | None, tz: Any) -> str | None:
    """ISO 8601 with the district's UTC offset, or ``None``."""
    return None if t is None else datetime.fromtimestamp(t, UTC).astimezone(tz).isoformat(timespec="milliseconds")


@dataclass
class _Firsts:
    """First dispatch / sign / on-scene times of an event (KPIs count the first, not the last)."""

    dispatched: float | None = None
    signed: float | None = None
    fired: set[tuple[str, float]] = field(default_factory=set)  # timers already acted on


@dataclass(frozen=True)
class Outcome:
    """What an operation did: the event afterwards and the records it appended."""

    event: Event
    records: tuple[AuditRecord, ...]
    seqs: tuple[int, ...]
    replayed: bool = False  # answered from an idempotency key: nothing new was written
    response: dict[str, Any] | str | None = None  # the answer stored with the request's idempotency key


class KeyInUse(TwinError):
    """An idempotency key that is already being made durable or is stored: answer the request
    from it (the brain's replay) instead of acting again."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"Idempotency-Key '{self.key}' is already in use"


class _Ticket:
    """One request's place in a group commit: wait for it to be durable."""

    __slots__ = ("done", "error", "idem", "records", "seqs")

    def __init__(self, records: Sequence[AuditRecord], idem: tuple[str, str, str, dict[str, Any]] | None) -> None:
        self.records, self.idem = records, idem
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.seqs: tuple[int, ...] = ()

    def wait(self, timeout: float = 60.0) -> tuple[int, ...]:
        """The global sequence numbers once durable; raises what the append raised."""
        if not self.done.wait(timeout):
            raise TwinError("the event log did not confirm the write in time")
        if self.error is not None:
            raise self.error
        return self.seqs


_DONE = _Ticket((), None)
_DONE.done.set()


class _Tail:
    """The newest durable records with their global sequence numbers, in log order and without
    gaps: followers (road units, streams, simulated handlers) read what they missed from here
    instead of querying the log, which under load held the brain's interpreter for tens of
    milliseconds every poll. Bounded; a gap (a record this twin did not write, e.g. another
    node on a shared PostgreSQL log) starts it afresh."""

    def __init__(self, size: int = TAIL_RECORDS) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.seqs: list[int] = []
        self.records: list[AuditRecord] = []

    def add(self, records: Sequence[AuditRecord], seqs: Sequence[int]) -> None:
        with self.lock:
            for rec, seq in zip(records, seqs):
                if self.seqs and seq != self.seqs[-1] + 1:
                    self.seqs, self.records = [], []
                self.seqs.append(seq)
                self.records.append(rec)
            if len(self.seqs) > 2 * self.size:  # trim now and then (amortised)
                del self.seqs[:-self.size], self.records[:-self.size]

    def clear(self) -> None:
        with self.lock:
            self.seqs, self.records = [], []

    def after(self, since: int, limit: int) -> list[tuple[int, AuditRecord]] | None:
        """The records after ``since`` (at most ``limit``), or ``None`` if some of them are
        older than what is held."""
        with self.lock:
            if not self.seqs or since + 1 < self.seqs[0]:
                return None
            i = bisect.bisect_right(self.seqs, since)
            return list(zip(self.seqs[i:i + limit], self.records[i:i + limit]))


class _Committer:
    """Group commit: the requests that arrive while one transaction is being made durable go
    together in the next (one fsync for all of them), in the order the brain made them; what
    became durable also goes to the in-memory tail of records."""

    def __init__(self, log: EventLog, on_failure: Callable[[], None]) -> None:
        self.log, self.on_failure = log, on_failure
        self.tail = _Tail()
        self.cv = threading.Condition()
        self.queue: list[_Ticket] = []
        self.max_seq = 0
        self.thread = threading.Thread(target=self._run, name="event-log-committer", daemon=True)
        self.thread.start()

    def submit(self, ticket: _Ticket) -> None:
        with self.cv:
            self.queue.append(ticket)
            self.cv.notify()

    def _run(self) -> None:
        while True:
            with self.cv:
                while not self.queue:
                    self.cv.wait()
                group, self.queue = self.queue[:512], self.queue[512:]
            try:
                for t, seqs in zip(group, self.log.append_many([(t.records, t.idem) for t in group])):
                    t.seqs = tuple(seqs)
                    if seqs:
                        self.max_seq = max(self.max_seq, seqs[-1])
                        self.tail.add(t.records, seqs)
            except BaseException as exc:  # nothing of the group was written
                with self.cv:  # later requests were planned on top of these: fail them too
                    group += self.queue
                    self.queue = []
                for t in group:
                    t.error = exc
                self.on_failure()
            for t in group:
                t.done.set()


class LiveTwin:
    """The street brain of one district, live.

    Args:
        district: The district (shared with the simulator).
        log: The durable event log; its records are the truth.
        clock: Where ``now`` comes from.
        recover: Rebuild state from ``log`` at once (default).
    """

    def __init__(self, district: District, log: EventLog, clock: Clock | None = None, *, recover: bool = True) -> None:
        # The twin's own roster (shift swaps change it; the district object may be shared).
        self.district = copy.copy(district)
        self.district.roster = district.roster.with_swaps({})
        self.log = log
        self.clock = clock or Clock()
        self.tz = district.roster.tz
        self._lock = threading.RLock()
        self.events: dict[str, Event] = {}
        self.members: dict[str, MemberState] = {m.id: MemberState(m.post_node) for m in district.roster.members}
        self.holding: dict[str, str] = {}  # member id → event id they work on (handler or reinforcement)
        self.holders: dict[str, set[str]] = {}  # the same, event id → member ids
        self._role_of = {m.id: m.role for m in district.roster.members}
        self.firsts: dict[str, _Firsts] = {}
        self.dups = DuplicateIndex(cell_m=100.0)
        self.queue: list[tuple[int, float, str]] = []  # (-severity rank, reported_at, event id)
        self.timers: list[tuple[float, str, str]] = []  # (due at, event id, timer)
        self.mode = Mode.PEACETIME
        self.last_seq = 0
        self._shift_start: float | None = None
        self._next_id = 0
        self.by_external: dict[tuple[str, str], str] = {}  # (source, external id) → event id
        self._freed = False  # a member became free since the last drain
        self._last: _Ticket = _DONE  # the newest write handed to the committer
        self.pending_idem: dict[tuple[str, str], tuple[str, dict[str, Any], _Ticket]] = {}
        # Keys made durable lately (bounded): a report's key is looked up in the log before the
        # lock, and one that became durable in between is found here.
        self._settled_keys: dict[tuple[str, str], None] = {}
        self._committer = _Committer(log, self._after_failed_write)
        if recover:
            self.recover()

    # --- reading ---------------------------------------------------------------------------------
    def now(self) -> float:
        """POSIX seconds of twin time."""
        return self.clock.now()

    def event(self, event_id: str) -> Event:
        """The event with this id.

        Raises:
            NotFound: no such event.
        """
        e = self.events.get(event_id)
        if e is None:
            raise NotFound("event", event_id)
        return e

    def spec(self, event: Event) -> ScenarioSpec:
        """The catalog scenario of an event."""
        return self.district.catalog[event.scenario]

    def targets(self, event: Event) -> Targets:
        """The targets in force for an event (wartime caps them)."""
        return targets_for(self.spec(event), self.mode)

    def transitions(self, since: int = 0, limit: int = 1000) -> list[tuple[int, str, str, str, float]]:
        """``(global seq, event id, action, to state, at)`` of the durable records after
        ``since``, in log order, at most ``limit``: from memory when the twin holds them (it
        keeps the newest :data:`TAIL_RECORDS`), else from the log."""
        held = self._committer.tail.after(since, limit)
        if held is None:
            return self.log.transitions(since, limit)
        return [(seq, r.event_id, r.action.value, r.to_state.value, r.at) for seq, r in held]

    def records_after(self, since: int = 0, limit: int = 500) -> list[tuple[int, AuditRecord]]:
        """The durable records after ``since`` with their global sequence numbers, in log
        order, at most ``limit``: from memory when the twin holds them, else from the log."""
        held = self._committer.tail.after(since, limit)
        return held if held is not None else self.log.records(since=since, limit=limit)

    def history(self, event_id: str) -> list[tuple[int, AuditRecord]]:
        """The event's audit records from the log, oldest first."""
        self.event(event_id)
        return self.log.records(event_id=event_id)

    def list_events(self, *, state: str | None = None, area_id: str | None = None, category: str | None = None,
                    since: float | None = None, until: float | None = None, assignee: str | None = None,
                    limit: int = 100, offset: int = 0) -> list[Event]:
        """Events matching every filter given, newest report first."""
        with self._lock:
            events = list(self.events.values())
        out = [e for e in events
               if (state is None or e.state.value == state or (state == "open" and e.is_open))
               and (area_id is None or e.location.area_id == area_id)
               and (category is None or e.category == category)
               and (since is None or e.reported_at >= since)
               and (until is None or e.reported_at < until)
               and (assignee is None or e.assignee == assignee or assignee in e.reinforcements)]
        out.sort(key=lambda e: (-e.reported_at, e.id))
        return out[offset:offset + limit]

    def positions(self, members: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Where every member (or each of ``members``) is now (their post, or the last event they
        reached), and whether busy.

        Raises:
            ValidationError: an unknown member id in ``members``.
        """
        roads = self.district.roads
        duty = self.district.roster.on_duty_ids(self.now())
        out = []
        roster = self.district.roster
        chosen = roster.members if members is None else [roster.member(self._member_field("members", m))
                                                         for m in members]
        with self._lock:
            states, holding = dict(self.members), dict(self.holding)
        for m in chosen:
            st = states[m.id]
            x, y = roads.node_xy[st.node]
            lon, lat = self.district.projection.to_lonlat(float(x), float(y))
            out.append({"member_id": m.id, "role": m.role.value, "area_id": m.area_id, "node": int(st.node),
                        "lon": round(float(lon), 7), "lat": round(float(lat), 7), "busy": st.busy,
                        "on_duty": m.id in duty, "event_id": holding.get(m.id)})
        return out

    # --- writing: the one path ---------------------------------------------------------------------
    def _commit(self, records: list[AuditRecord], new: Mapping[str, Event], *,
                idempotency: tuple[str, str, str, Callable[[Mapping[str, Event]], dict[str, Any]]] | None = None,
                key_checked: bool = False) -> _Ticket:
        """Hand ``records`` to the group committer and make ``new`` the current events.

        Memory runs ahead of the disk by at most one group: whoever answers a request waits
        for its ticket (see :meth:`_settle`), so nothing is acknowledged before it is durable;
        if a write fails, the state is rebuilt from the log (:meth:`_after_failed_write`).

        Raises:
            KeyInUse: the request's idempotency key is pending or stored (nothing is changed;
                unless the caller checked it under this lock already).
        """
        idem = None
        if idempotency is not None:
            key, principal, req_hash, respond = idempotency
            if not key_checked and self._key_in_use(key, principal):
                raise KeyInUse(key)
            idem = (key, principal, req_hash, respond(new))
        ticket = _Ticket(records, idem)
        if idem is not None:
            self.pending_idem[(idem[0], idem[1])] = (idem[2], idem[3], ticket)
        self._committer.submit(ticket)
        self._last = ticket
        for eid, e in new.items():
            self.events[eid] = e
        for rec in records:
            self._absorb(rec)
        return ticket

    def _key_in_use(self, key: str, principal: str, stored: bool | None = None) -> bool:
        """Whether an idempotency key is being made durable or already stored (under the lock:
        two tries of one request never both act). ``stored``: what the log said of the key
        just before the lock was taken (else it is asked now)."""
        pair = (key, principal)
        if pair in self.pending_idem or pair in self._settled_keys:
            return True
        return stored if stored is not None else self.log.idempotent(key, principal) is not None

    def _settle(self, ticket: _Ticket) -> tuple[int, ...]:
        """Wait until ``ticket`` (and so every earlier write) is durable; then tidy up."""
        seqs = ticket.wait()
        self.last_seq = max(self.last_seq, self._committer.max_seq)
        if ticket.idem is not None:
            pair = (ticket.idem[0], ticket.idem[1])
            with self._lock:
                self._settled_keys[pair] = None
                if len(self._settled_keys) > SETTLED_KEYS:
                    del self._settled_keys[next(iter(self._settled_keys))]
                self.pending_idem.pop(pair, None)
        return seqs

    def flush(self) -> None:
        """Wait until every write so far is durable."""
        self._settle(self._last)

    def _after_failed_write(self) -> None:
        """A write failed (disk full, database gone): memory may hold changes the log lacks;
        rebuild it from the log, which holds exactly what was acknowledged."""
        with self._lock:
            self.pending_idem.clear()
            self.recover()

    def _note(self, rec: AuditRecord) -> None:
        """What a record says whatever the event's state now (live and on recovery alike): the
        first dispatch and signature, timers already acted on, ids seen."""
        f = self.firsts.setdefault(rec.event_id, _Firsts())
        timer = rec.data.get("timer") if rec.data else None
        if timer is not None:
            f.fired.add((str(timer), float(rec.data.get("due_at", 0.0))))
        if rec.action is Action.REPORT:
            self._next_id = max(self._next_id, _serial(rec.event_id))
            if rec.data.get("external_id"):
                self.by_external[(str(rec.data["source"]), str(rec.data["external_id"]))] = rec.event_id
        elif rec.action in (Action.DISPATCH, Action.REASSIGN) and f.dispatched is None:
            f.dispatched = rec.at
        elif rec.action is Action.SIGN and f.signed is None:
            f.signed = rec.at

    def _absorb(self, rec: AuditRecord) -> None:
        """Bookkeeping that follows from one record: busy members, firsts, timers, duplicates."""
        e = self.events[rec.event_id]
        self._note(rec)
        if rec.action is Action.REPORT:
            self.dups.add(e)
        elif rec.action in (Action.DISPATCH, Action.REASSIGN):
            self._hold(str(rec.data["member"]), e.id)
        elif rec.action is Action.REQUEST_REINFORCEMENT:
            for m in rec.data.get("members", ()):
                self._hold(str(m), e.id)
        elif rec.action is Action.ARRIVE and e.assignee:
            self.members[e.assignee] = MemberState(e.location.node, True)
        elif rec.action is Action.REINFORCE:
            for m in e.reinforcements:
                if self.holding.get(m) == e.id:
                    self.members[m] = MemberState(e.location.node, True)
        # Whoever no longer holds this event is free again (at the event if they reached it).
        keep = {e.assignee} | set(e.reinforcements) if e.state in HELD else set()
        for mid in sorted(self.holders.get(e.id, ())):
            if mid not in keep:
                self._release(mid, e.location.node if e.on_scene_at is not None else None)
        if e.state in TERMINAL:
            self.dups.discard(e.id)
        self._schedule_timers(e)

    def _hold(self, mid: str, eid: str) -> None:
        self._unhold(mid)
        self.holding[mid] = eid
        self.holders.setdefault(eid, set()).add(mid)
        self.members[mid] = MemberState(self.members[mid].node, True)

    def _unhold(self, mid: str) -> None:
        old = self.holding.pop(mid, None)
        if old is not None:
            held = self.holders.get(old)
            if held is not None:
                held.discard(mid)
                if not held:
                    del self.holders[old]

    def _release(self, mid: str, node: int | None) -> None:
        self._unhold(mid)
        self._freed = True
        st = self.members[mid]
        self.members[mid] = MemberState(st.node if node is None else node, False)

    def _schedule_timers(self, e: Event) -> None:
        fired = self.firsts.get(e.id, _Firsts()).fired
        for due_at, timer in deadlines(e, self.targets(e)):
            if (timer.value, due_at) not in fired:
                heapq.heappush(self.timers, (due_at, e.id, timer.value))

    # --- recovery ----------------------------------------------------------------------------------
    def recover(self) -> int:
        """Rebuild the whole state from the log; returns the number of records read."""
        with self._lock:
            self._committer.tail.clear()
            setting = self.log.setting("mode")
            self.mode = Mode(setting["mode"]) if setting else Mode.PEACETIME
            swaps = self.log.setting("swaps")
            if swaps:
                self.district.roster = self.district.roster.with_swaps(
                    {(str(m), int(day)): str(code) for m, day, code in swaps["swaps"]})
            rows = self.log.records()
            self.events = replay(rec for _, rec in rows)
            self.firsts.clear()
            self.by_external.clear()
            last_node: dict[str, int] = {}
            for seq, rec in rows:
                self.last_seq = max(self.last_seq, seq)
                self._note(rec)
                if rec.action in (Action.ARRIVE, Action.REINFORCE, Action.RESOLVE) and rec.actor in self.members:
                    last_node[rec.actor] = self.events[rec.event_id].location.node
            self.members = {m.id: MemberState(last_node.get(m.id, m.post_node)) for m in self.district.roster.members}
            self.holding.clear()
            self.holders.clear()
            self.dups = DuplicateIndex(cell_m=100.0)
            self.queue = []
            self.timers = []
            for e in self.events.values():
                if not e.is_open:
                    continue
                self.dups.add(e)
                if e.state in HELD:
                    for mid in (e.assignee, *e.reinforcements):
                        if mid is not None and mid in self.members:
                            self._hold(mid, e.id)
                self._requeue(e)
                self._schedule_timers(e)
            self._shift_start = self.district.roster.shift_window(self.now())[0]
            self._freed = True
            return len(rows)

    def _member_field(self, name: str, value: Any) -> str:
        if not isinstance(value, str) or value not in self.members:
            raise ValidationError(name, f"no member '{value}'")
        return value

    def _rank(self, e: Event) -> int:
        return self.spec(e).severity.rank

    # --- operations --------------------------------------------------------------------------------
    def report(self, *, scenario: str, lon: float, lat: float, source: str, actor: str, description: str = "",
               external_id: str | None = None, now: float | None = None,
               idempotency: tuple[str, str, str, Callable[[Mapping[str, Event]], dict[str, Any]]] | None = None
               ) -> Outcome:
        """A new event: located, merged into an open duplicate or dispatched, in one append.

        Raises:
            ValidationError: unknown scenario or source, a point outside the district, an
                empty text where one is needed.
        """
        out = self.report_many([{"scenario": scenario, "lon": lon, "lat": lat, "source": source, "actor": actor,
                                 "description": description, "external_id": external_id, "now": now,
                                 "idempotency": idempotency}])[0]
        if isinstance(out, Exception):
            raise out
        return out

    def report_many(self, reports: Sequence[Mapping[str, Any]]) -> list[Outcome | Exception]:
        """Several reports in one go, each as :meth:`report` makes it: checked and located
        together (one vectorised pass), decided one after another in order, made durable in
        one group commit. Returns each report's outcome, or the error that refused it (the
        others go on; :class:`KeyInUse` for a request whose idempotency key is pending or
        stored). Each item has :meth:`report`'s keyword arguments."""
        results: list[Outcome | Exception | None] = [None] * len(reports)
        checked: list[tuple[int, ScenarioSpec, Source]] = []
        for i, r in enumerate(reports):
            try:
                checked.append((i, *self._check_report(r)))
            except TwinError as exc:
                results[i] = exc
        locs = self.district.locate_all([(reports[i]["lon"], reports[i]["lat"]) for i, _, _ in checked])
        stored = self.log.idempotent_keys([(r["idempotency"][0], r["idempotency"][1]) for r in reports
                                           if r.get("idempotency") is not None])
        planned: list[tuple[int, Event, list[AuditRecord], _Ticket]] = []
        with self._lock:
            for (i, spec, src), loc in zip(checked, locs):
                if isinstance(loc, Exception):
                    results[i] = loc
                    continue
                r = reports[i]
                idem = r.get("idempotency")
                if idem is not None and self._key_in_use(idem[0], idem[1], (idem[0], idem[1]) in stored):
                    results[i] = KeyInUse(idem[0])
                    continue
                external_id = r.get("external_id") or None
                known = self.by_external.get((src.value, external_id)) if external_id else None
                if known is not None:  # the same camera object or citizen ticket again: one event
                    results[i] = Outcome(self.events[known], (), (), replayed=True)
                    continue
                now = self.now() if r.get("now") is None else float(r["now"])
                eid = f"E{self._next_id + 1:07d}"
                event, rec = report(event_id=eid, scenario=spec.code, category=spec.category,
                                    severity=spec.severity.value, source=src.value, location=loc, now=now,
                                    actor=str(r["actor"]), description=r.get("description") or "",
                                    external_id=external_id)
                records, new = [rec], {eid: event}
                dup = self.dups.find(event, spec)
                if dup is not None:
                    merged, mrec = apply(event, Action.MERGE, now=now, actor="brain",
                                         reason="duplicate of an open event", into=dup.id)
                    records.append(mrec)
                    new[eid] = merged
                else:
                    self._plan_dispatch(new, records, eid, now, spec)
                ticket = self._commit(records, new, idempotency=idem, key_checked=True)
                self._requeue(new[eid])
                planned.append((i, new[eid], records, ticket))
            last = self._last
        for i, event, records, ticket in planned:
            try:
                seqs = self._settle(ticket)
                results[i] = Outcome(event, tuple(records), seqs, response=ticket.idem[3] if ticket.idem else None)
            except Exception as exc:  # the log refused the group: nothing of it was acknowledged
                results[i] = exc
        try:
            self._settle(last)  # the events a replayed report points at are durable too
        except Exception as exc:
            results = [exc if isinstance(o, Outcome) and o.replayed else o for o in results]
        return results  # type: ignore[return-value]  # every slot is filled

    def _check_report(self, r: Mapping[str, Any]) -> tuple[ScenarioSpec, Source]:
        scenario, source, description = r["scenario"], r["source"], r.get("description") or ""
        if scenario not in self.district.catalog:
            raise ValidationError("scenario", f"unknown scenario '{scenario}'; see GET /api/v1/scenarios")
        try:
            src = Source(source)
        except ValueError:
            raise ValidationError("source", f"unknown source '{source}'; one of "
                                  + ", ".join(s.value for s in Source)) from None
        if len(description) > 2000:
            raise ValidationError("description", "must be at most 2000 characters")
        return self.district.catalog[scenario], src

    def _plan_dispatch(self, new: dict[str, Event], records: list[AuditRecord], eid: str, now: float,
                       spec: ScenarioSpec, exclude: Sequence[str] = (), reason: str = "") -> Assignment | None:
        """Add a dispatch of ``new[eid]`` to the pending records if someone is free."""
        members = self._members_after(records)
        a = dispatch(new[eid], spec=spec, district=self.district, members=members, now=now, mode=self.mode,
                     exclude=exclude)
        if a is None:
            return None
        e, rec = apply(new[eid], Action.DISPATCH, now=now, actor="brain", reason=reason or a.reason,
                       member=a.member_id, tier=a.tier, travel_s=round(a.travel_s, 1))
        new[eid] = e
        records.append(rec)
        return a

    def _members_after(self, records: Sequence[AuditRecord]) -> Mapping[str, MemberState]:
        """Member states with the pending records' new assignments counted as busy."""
        taken = [str(r.data["member"]) for r in records if r.action in (Action.DISPATCH, Action.REASSIGN)]
        taken += [str(m) for r in records if r.action is Action.REQUEST_REINFORCEMENT for m in r.data["members"]]
        if not taken:
            return self.members
        out = dict(self.members)
        for mid in taken:
            out[mid] = MemberState(out[mid].node, True)
        return out

    def _requeue(self, e: Event) -> None:
        if e.is_open and e.assignee is None and e.state in (State.REPORTED, State.ESCALATED):
            heapq.heappush(self.queue, (-self._rank(e), e.reported_at, e.id))

    def act(self, event_id: str, action: Action | str, *, actor: str, reason: str = "", now: float | None = None,
            idempotency: tuple[str, str, str, Callable[[Mapping[str, Event]], dict[str, Any]]] | None = None,
            **data: Any) -> Outcome:
        """A person's action on an event, with what follows from it in the same append: an
        escalation is re-dispatched to the next tier, a reinforcement request picks the
        nearest free brigade member (unless ``members`` names them), a resolution frees the
        handler for waiting work.

        Raises:
            NotFound: no such event or member.
            IllegalTransition: the action is not allowed in the event's state.
            ValidationError: a missing or malformed detail.
        """
        try:
            action = Action(action)
        except ValueError:
            raise ValidationError("action", f"unknown action '{action}'") from None
        if action not in HUMAN_ACTIONS:
            raise ValidationError("action", f"'{action.value}' is not an action people take")
        with self._lock:
            now = self.now() if now is None else now
            e = self.event(event_id)
            spec = self.spec(e)
            if data.get("member") is not None:
                mid = self._member_field("member", data["member"])
                if action in (Action.DISPATCH, Action.REASSIGN) and self.members[mid].busy:
                    raise ValidationError("member", f"{mid} is busy with event {self.holding.get(mid)}")
            if action is Action.ESCALATE:
                data.setdefault("chain_length", len(spec.handler_chain))
            if action is Action.MERGE:
                into = str(data.get("into") or "")
                other = self.events.get(into) if into else None
                if into and other is None:
                    raise ValidationError("into", f"no event '{into}'")
                if other is not None and not other.is_open:
                    raise ValidationError("into", f"event {into} is {other.state.value}; merge into an open event")
            if action is Action.REQUEST_REINFORCEMENT and not data.get("members"):
                a = dispatch_reinforcement(e, spec=spec, district=self.district, members=self.members, now=now,
                                           exclude=[m for m in (e.assignee,) if m])
                if a is None:
                    raise ValidationError("members", "nobody of the brigade or enforcement is free to reinforce; "
                                          "name members explicitly or wait")
                data["members"] = [a.member_id]
            if action is Action.REQUEST_REINFORCEMENT:
                if isinstance(data["members"], (str, bytes)) or not isinstance(data["members"], (list, tuple)):
                    raise ValidationError("members", "must be a list of member ids")
                data["members"] = [self._member_field("members", m) for m in data["members"]]
            new_e, rec = apply(e, action, now=now, actor=actor, reason=reason, **data)
            records, new = [rec], {event_id: new_e}
            if action is Action.ESCALATE or (action is Action.REOPEN):
                self._plan_dispatch(new, records, event_id, now, spec, reason="")
            ticket = self._commit(records, new, idempotency=idempotency)
            self._requeue(new[event_id])
            if action in (Action.RESOLVE, Action.FALSE_ALARM, Action.ESCALATE, Action.MERGE, Action.WITHDRAW,
                          Action.CONSULT, Action.REASSIGN):
                self._drain(now)
            after, last = self.events[event_id], self._last
        seqs = self._settle(ticket)
        self._settle(last)
        return Outcome(after, tuple(records), seqs)

    def _drain(self, now: float) -> int:
        """Dispatch waiting events, most urgent first, to whoever became free. An event the
        policy could not give to anyone (:func:`twin.policy.may_dispatch`: no free member on
        duty in the tier it would reach) is passed over without asking it for travel times,
        so a long queue costs little when few are free."""
        self._freed = False
        free, on_duty = self._free_roles(now)
        if not free:
            return 0
        done, keep = 0, []
        maybe: dict[tuple[str, int], bool] = {}  # (scenario, tier) → may_dispatch, until someone is taken
        for item in sorted(self.queue):  # (the order a heap would pop them in)
            e = self.events.get(item[2])
            if e is None or not e.is_open or e.assignee is not None or e.state not in (
                    State.REPORTED, State.ESCALATED):
                continue
            spec = self.spec(e)
            could = maybe.get((e.scenario, e.tier))
            if could is None:
                could = maybe[(e.scenario, e.tier)] = bool(free) and may_dispatch(
                    e, spec=spec, mode=self.mode, free_roles=free, on_duty_roles=on_duty)
            if could:
                records: list[AuditRecord] = []
                new = {e.id: e}
                a = self._plan_dispatch(new, records, e.id, now, spec)
                if a is not None:
                    self._commit(records, new)
                    done += 1
                    role = self._role_of[a.member_id]  # one fewer free member of that role
                    free[role] -= 1
                    if not free[role]:
                        del free[role]
                    maybe.clear()
                    continue
            keep.append(item)
        self.queue = keep  # sorted: a valid heap
        return done

    def _free_roles(self, now: float) -> tuple[Counter[Role], set[Role]]:
        """How many members on duty of each role are free now, and the roles with anyone on duty."""
        duty = self.district.roster.on_duty_ids(now)
        free: Counter[Role] = Counter()
        on: set[Role] = set()
        for mid, st in self.members.items():
            if mid in duty:
                on.add(self._role_of[mid])
                if not st.busy:
                    free[self._role_of[mid]] += 1
        return free, on

    # --- time ----------------------------------------------------------------------------------------
    def tick(self, now: float | None = None) -> list[AuditRecord]:
        """Fire the timers due at ``now`` and handle a shift change; returns the records written.

        Due timers are handled :data:`TIMERS_PER_HOLD` at a time, letting go of the lock (and
        the interpreter) in between: when thousands fall due at once (a burst of reports a
        few minutes ago), reports arriving meanwhile are decided between the chunks instead
        of waiting for all of them."""
        written: list[AuditRecord] = []
        with self._lock:
            now = self.now() if now is None else now
            start = self.district.roster.shift_window(now)[0]
            if self._shift_start is not None and start != self._shift_start:
                written += self._handover(now)
                self._freed = True
            self._shift_start = start
        while True:
            with self._lock:
                fired = 0
                while self.timers and self.timers[0][0] <= now and fired < TIMERS_PER_HOLD:
                    due_at, eid, timer = heapq.heappop(self.timers)
                    e = self.events.get(eid)
                    if e is None or not e.is_open:
                        continue
                    pending = {t.value: at for at, t in deadlines(e, self.targets(e))}
                    if pending.get(timer) != due_at or (timer, due_at) in self.firsts[eid].fired:
                        continue  # stale: the event moved on, or this deadline was already handled
                    written += self._fire(e, Timer(timer), due_at, now)
                    fired += 1
                done = not (self.timers and self.timers[0][0] <= now)
                if done:
                    if self._freed and self.queue:
                        self._drain(now)
                    last = self._last
                    break
            time.sleep(0.001)  # let a waiting report take the lock
        self._settle(last)
        return written

    def _fire(self, e: Event, timer: Timer, due_at: float, now: float) -> list[AuditRecord]:
        spec = self.spec(e)
        tag = {"timer": timer.value, "due_at": due_at}
        records: list[AuditRecord] = []
        new = {e.id: e}
        what = remedy(e, timer, spec=spec)
        if what is Remedy.REASSIGN:
            members = self.members
            a = dispatch(e, spec=spec, district=self.district, members=members, now=now, mode=self.mode,
                         exclude=[m for m in (e.assignee,) if m])
            if a is not None and a.tier == e.tier:
                ne, rec = apply(e, Action.REASSIGN, now=now, actor="timer", reason="not signed in time",
                                member=a.member_id, travel_s=round(a.travel_s, 1), **tag)
                records.append(rec)
                new[e.id] = ne
            else:
                what = Remedy.ESCALATE if e.tier + 1 < len(spec.handler_chain) else Remedy.SUPERVISE
        if what is Remedy.ESCALATE:
            ne, rec = apply(e, Action.ESCALATE, now=now, actor="timer", reason="not signed in time",
                            chain_length=len(spec.handler_chain), **tag)
            records.append(rec)
            new[e.id] = ne
            self._plan_dispatch(new, records, e.id, now, spec)
        elif what is Remedy.REINFORCE:
            a = dispatch_reinforcement(e, spec=spec, district=self.district, members=self.members, now=now,
                                       exclude=[m for m in (e.assignee,) if m])
            if a is not None and e.state in (State.DISPATCHED, State.SIGNED, State.ON_SCENE):
                ne, rec = apply(e, Action.REQUEST_REINFORCEMENT, now=now, actor="timer",
                                reason="nobody on scene in time", members=[a.member_id], **tag)
                records.append(rec)
                new[e.id] = ne
            else:
                what = Remedy.SUPERVISE
                tag["why"] = "nobody on scene and no reinforcement free"
        if what is Remedy.SUPERVISE:
            why = {"sign": "not signed in time", "arrive": "nobody on scene in time",
                   "reinforce": "reinforcement not on scene in time"}[timer.value]
            ne, rec = apply(e, Action.SUPERVISE, now=now, actor="timer", reason=f"督办: {why}", **tag)
            records.append(rec)
            new[e.id] = ne
        self._commit(records, new)
        self._requeue(self.events[e.id])
        return records

    def _handover(self, now: float) -> list[AuditRecord]:
        """Unsigned work of members going off duty moves to the incoming shift."""
        work = [(e.id, e.assignee, e.state is not State.DISPATCHED) for e in self.events.values()
                if e.is_open and e.assignee is not None and e.state in HELD]
        written: list[AuditRecord] = []
        roster = self.district.roster
        for eid, outgoing in roster.handover_reassignments([(a, str(b), c) for a, b, c in work], now):
            e = self.events[eid]
            a = dispatch(e, spec=self.spec(e), district=self.district, members=self.members, now=now,
                         mode=self.mode, exclude=[outgoing])
            if a is None:
                continue
            ne, rec = apply(e, Action.REASSIGN, now=now, actor="brain", reason="shift handover",
                            member=a.member_id, travel_s=round(a.travel_s, 1))
            self._commit([rec], {eid: ne})
            written.append(rec)
        # Incoming members start at their posts.
        duty = roster.on_duty_ids(now)
        for m in roster.members:
            if m.id in duty and not self.members[m.id].busy:
                self.members[m.id] = MemberState(m.post_node)
        return written

    def set_mode(self, mode: Mode | str, *, actor: str) -> Mode:
        """Switch peacetime/wartime (persisted); pending timers follow the new targets."""
        try:
            mode = Mode(mode)
        except ValueError:
            raise ValidationError("mode", f"must be one of {', '.join(m.value for m in Mode)}, got {mode!r}") from None
        with self._lock:
            self.log.put_setting("mode", {"mode": mode.value, "by": actor, "at": self.now()})
            self.mode = mode
            self.timers = []
            for e in self.events.values():
                if e.is_open:
                    self._schedule_timers(e)
            return mode

    def swap_shifts(self, member_a: str, member_b: str, date: str, *, actor: str) -> dict[str, Any]:
        """Two members of one role exchange their shifts on a local date (persisted); unsigned
        work of whoever goes off duty now moves to the incoming shift.

        Raises:
            ValidationError: a bad date, unknown members, different roles, the same shift.
        """
        try:
            day = datetime.fromisoformat(date).date().toordinal()
        except (TypeError, ValueError):
            raise ValidationError("date", f"must be a date such as 2026-03-02, got {date!r}") from None
        with self._lock:
            roster = self.district.roster
            swaps = roster.swap(member_a, member_b, day)
            self.log.put_setting("swaps", {"swaps": [[m, d, c] for (m, d), c in sorted(swaps.items())],
                                           "by": actor, "at": self.now()})
            self.district.roster = roster.with_swaps(swaps)
            now = self.now()
            self._handover(now)
            self._freed = True
            a, b = roster.member(member_a), roster.member(member_b)
            last = self._last
        self._settle(last)
        return {"date": date, member_a: swaps[(a.id, day)], member_b: swaps[(b.id, day)]}

    # --- KPIs ----------------------------------------------------------------------------------------
    def kpis(self, since: float | None = None, until: float | None = None) -> dict[str, Any]:
        """The 1/3/5-minute KPIs of events reported in ``[since, until)`` (all if omitted)."""
        with self._lock:
            evs = [e for e in self.events.values()
                   if (since is None or e.reported_at >= since) and (until is None or e.reported_at < until)]
            resp_ok = resp_n = scene_ok = scene_n = reinf_ok = reinf_n = 0
            by_state: dict[str, int] = {}
            now = self.now()
            for e in evs:
                by_state[e.state.value] = by_state.get(e.state.value, 0) + 1
                f = self.firsts.get(e.id, _Firsts())
                if f.dispatched is not None:
                    if f.signed is not None:
                        resp_n += 1
                        resp_ok += f.signed - f.dispatched <= 60.0
                    elif now - f.dispatched > 60.0 and e.is_open:
                        resp_n += 1
                if e.state is State.MERGED or e.state is State.FALSE_ALARM:
                    continue
                if e.on_scene_at is not None:
                    scene_n += 1
                    scene_ok += e.on_scene_at - e.reported_at <= 180.0
                elif e.is_open and now - e.reported_at > 180.0 and f.dispatched is not None:
                    scene_n += 1
                if e.reinforcement_requested_at is not None:
                    reinf_n += 1
                    reinf_ok += e.reinforced_at is not None and e.reinforced_at - e.reported_at <= 300.0
            busy = sum(1 for st in self.members.values() if st.busy)
            duty = self.district.roster.on_duty_ids(now)
            return {
                "since": iso(since, self.tz), "until": iso(until, self.tz), "now": iso(now, self.tz),
                "events": len(evs), "by_state": dict(sorted(by_state.items())),
                "responded_within_60s": resp_ok / resp_n if resp_n else None,
                "on_scene_within_180s": scene_ok / scene_n if scene_n else None,
                "reinforced_within_300s": reinf_ok / reinf_n if reinf_n else None,
                "waiting": sum(1 for _ in self._waiting()), "members_on_duty": len(duty), "members_busy": busy,
                "mode": self.mode.value,
            }

    def _waiting(self) -> Iterable[str]:
        seen = set()
        for _, _, eid in self.queue:
            e = self.events.get(eid)
            if eid not in seen and e is not None and e.is_open and e.assignee is None:
                seen.add(eid)
                yield eid

    # --- snapshot (what-if fork) ---------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Open events and member states now: the starting point of a what-if fork."""
        with self._lock:
            return {"now": self.now(), "mode": self.mode.value, "last_seq": self.last_seq,
                    "open_events": [e for e in self.events.values() if e.is_open],
                    "members": dict(self.members), "holding": dict(self.holding),
                    "swaps": dict(self.district.roster.swaps)}


def _serial(event_id: str) -> int:
    digits = "".join(ch for ch in event_id if ch.isdigit())
    return int(digits) if digits else 0


__all__ = ["HELD", "HUMAN_ACTIONS", "Clock", "LiveTwin", "Outcome", "iso"]
