"""The live street brain: events in, assignments, timers and escalations out, every step logged.

:class:`LiveTwin` is a plain class over :mod:`twin` (the same ``workflow`` and ``policy``
code the simulator runs); it runs in-process in tests and notebooks and inside a Ray actor
in a deployment (:mod:`actors.host`). It is the single writer of event state: each
operation computes its transitions with :func:`twin.workflow.apply`, appends the audit
records to the durable :class:`~actors.eventlog.EventLog` in one transaction, and only then
changes memory and answers. After a crash a new instance rebuilds everything from the log
(:meth:`LiveTwin.recover`): events by :func:`twin.workflow.replay`, who is busy from the
open assignments, the waiting queue, the timers still pending and the ones already fired.

Every decision — dispatch, merging, the deadlines of the 1/3/5-minute rule, reassignment,
escalation, reinforcement, supervision (督办), shift handover, who takes waiting work — is
the dispatch desk's (:class:`twin.desk.Desk`), the same object the what-if simulator
decides with. The twin supplies the wall clock and makes the desk's audit records durable:
deadlines wait in a heap and fire in :meth:`LiveTwin.tick`, which the host calls a few times
a second with the clock's ``now``; a shift change is noticed there too.
"""

from __future__ import annotations

import bisect
import copy
import heapq
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from actors.eventlog import EventLog
from twin import kpis as twin_kpis
from twin.catalog import ScenarioSpec, Source
from twin.desk import HUMAN_ACTIONS, Desk, Firsts
from twin.district import District
from twin.errors import TwinError, ValidationError
from twin.policy import MemberState, Targets, Timer
from twin.staff import Mode
from twin.workflow import HELD, Action, AuditRecord, Event, new_event, replay

#: How many recently durable idempotency keys the twin remembers (see ``LiveTwin._key_in_use``).
SETTLED_KEYS = 100_000
#: Timers fired per hold of the twin's lock in :meth:`LiveTwin.tick` (reports wait at most
#: that long for the lock when many timers fall due at once).
TIMERS_PER_HOLD = 16
#: How many of the newest durable records the twin keeps in memory for followers
#: (:meth:`LiveTwin.transitions`, :meth:`LiveTwin.records_after`; older ones are read from
#: the log): ~16 s at 500 reports/s, hours at a district's usual pace.
TAIL_RECORDS = 20_000


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
        # The twin's own district object with its own roster (shift swaps change it; the
        # district given may be shared).
        self.district = copy.copy(district)
        self.district.roster = district.roster.with_swaps({})
        self.log = log
        self.clock = clock or Clock()
        self.tz = district.roster.tz
        self._lock = threading.RLock()
        self.timers: list[tuple[float, str, str]] = []  # (due at, event id, timer)
        self.desk = Desk(self.district, schedule=self._schedule)
        self.last_seq = 0
        self._shift_start: float | None = None
        self._next_id = 0
        self.by_external: dict[tuple[str, str], str] = {}  # (source, external id) → event id
        self._last: _Ticket = _DONE  # the newest write handed to the committer
        self.pending_idem: dict[tuple[str, str], tuple[str, dict[str, Any], _Ticket]] = {}
        # Keys made durable lately (bounded): a report's key is looked up in the log before the
        # lock, and one that became durable in between is found here.
        self._settled_keys: dict[tuple[str, str], None] = {}
        self._committer = _Committer(log, self._after_failed_write)
        if recover:
            self.recover()

    # --- the desk's state ------------------------------------------------------------------------
    @property
    def events(self) -> dict[str, Event]:
        """Every event, as it is now."""
        return self.desk.events

    @property
    def members(self) -> dict[str, MemberState]:
        """Where each member is and whether busy."""
        return self.desk.members

    @property
    def holding(self) -> dict[str, str]:
        """Member id → the event they work on (handler or reinforcement)."""
        return self.desk.holding

    @property
    def firsts(self) -> dict[str, Firsts]:
        """First dispatch and signature of each event, and its deadlines already acted on."""
        return self.desk.firsts

    @property
    def mode(self) -> Mode:
        """Peacetime or wartime."""
        return self.desk.mode

    @property
    def queue(self) -> list[tuple[int, float, str]]:
        """The waiting events' heap (see :meth:`twin.desk.Desk.waiting` for their order)."""
        return self.desk.queue

    def _schedule(self, due_at: float, eid: str, timer: Timer) -> None:
        heapq.heappush(self.timers, (due_at, eid, timer.value))

    # --- reading ---------------------------------------------------------------------------------
    def now(self) -> float:
        """POSIX seconds of twin time."""
        return self.clock.now()

    def event(self, event_id: str) -> Event:
        """The event with this id.

        Raises:
            NotFound: no such event.
        """
        return self.desk.event(event_id)

    def spec(self, event: Event) -> ScenarioSpec:
        """The catalog scenario of an event."""
        return self.district.catalog[event.scenario]

    def targets(self, event: Event) -> Targets:
        """The targets in force for an event (wartime caps them)."""
        return self.desk.targets(event)

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
        chosen = roster.members if members is None else [roster.member(self.desk.member_field("members", m))
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
    def _commit(self, records: list[AuditRecord], *,
                idempotency: tuple[str, str, str, Callable[[Mapping[str, Event]], dict[str, Any]]] | None = None,
                touched: str | None = None) -> _Ticket:
        """Hand the records the desk just made to the group committer (the desk has already
        changed memory).

        Memory runs ahead of the disk by at most one group: whoever answers a request waits
        for its ticket (see :meth:`_settle`), so nothing is acknowledged before it is durable;
        if a write fails, the state is rebuilt from the log (:meth:`_after_failed_write`).
        The caller has checked the idempotency key under this lock before acting; the answer
        stored with it sees the events the records changed (and ``touched``).
        """
        idem = None
        if idempotency is not None:
            key, principal, req_hash, respond = idempotency
            changed = {eid: self.events[eid] for eid in ([touched] if touched else [])
                       + [r.event_id for r in records]}
            idem = (key, principal, req_hash, respond(changed))
        ticket = _Ticket(records, idem)
        if idem is not None:
            self.pending_idem[(idem[0], idem[1])] = (idem[2], idem[3], ticket)
        if records or idem is not None:
            self._committer.submit(ticket)
            self._last = ticket
        else:
            ticket = _DONE
        for rec in records:
            self._note(rec)
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
        """What the twin itself keeps of a record (live and on recovery alike): the ids seen."""
        if rec.action is Action.REPORT:
            self._next_id = max(self._next_id, _serial(rec.event_id))
            if rec.data.get("external_id"):
                self.by_external[(str(rec.data["source"]), str(rec.data["external_id"]))] = rec.event_id

    # --- recovery ----------------------------------------------------------------------------------
    def recover(self) -> int:
        """Rebuild the whole state from the log; returns the number of records read."""
        with self._lock:
            self._committer.tail.clear()
            setting = self.log.setting("mode")
            self.desk.mode = Mode(setting["mode"]) if setting else Mode.PEACETIME
            swaps = self.log.setting("swaps")
            if swaps:
                self.desk.set_roster(self.district.roster.with_swaps(
                    {(str(m), int(day)): str(code) for m, day, code in swaps["swaps"]}))
            if setting:  # the on-call members as the last switch left them
                self.desk.set_roster(self.district.roster.for_mode(self.desk.mode, float(setting["at"])))
            rows = self.log.records()
            events = replay(rec for _, rec in rows)
            self.by_external.clear()
            firsts: dict[str, Firsts] = {}
            last_node: dict[str, int] = {}
            for seq, rec in rows:
                self.last_seq = max(self.last_seq, seq)
                self._note(rec)
                firsts.setdefault(rec.event_id, Firsts()).note(rec.action, rec.at, rec.data)
                if rec.action in (Action.ARRIVE, Action.REINFORCE, Action.RESOLVE) and rec.actor in self.members:
                    last_node[rec.actor] = events[rec.event_id].location.node
            self.timers = []
            self.desk.adopt(events, nodes=last_node, firsts=firsts)
            self._shift_start = self.district.roster.duty_window(self.now())[0]
            return len(rows)

    # --- operations --------------------------------------------------------------------------------
    def report(self, *, scenario: str, lon: float, lat: float, source: str, actor: str, description: str = "",
               external_id: str | None = None, now: float | None = None,
               idempotency: tuple[str, str, str, Callable[[Mapping[str, Event]], dict[str, Any]]] | None = None,
               evidence: tuple[str, ...] = ()) -> Outcome:
        """A new event: located, merged into an open duplicate or dispatched, in one append.

        Raises:
            ValidationError: unknown scenario or source, a point outside the district, an
                empty text where one is needed.
        """
        out = self.report_many([{"scenario": scenario, "lon": lon, "lat": lat, "source": source, "actor": actor,
                                 "description": description, "external_id": external_id, "now": now,
                                 "idempotency": idempotency, "evidence": evidence}])[0]
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
                event = new_event(event_id=eid, scenario=spec.code, category=spec.category,
                                  severity=spec.severity.value, source=src.value, location=loc, now=now,
                                  description=r.get("description") or "", external_id=external_id,
                                  evidence=tuple(r.get("evidence") or ()))
                self.desk.report(event, actor=str(r["actor"]))
                records = self.desk.take_records()
                ticket = self._commit(records, idempotency=idem)
                planned.append((i, self.events[eid], records, ticket))
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

    def act(self, event_id: str, action: Action | str, *, actor: str, reason: str = "", now: float | None = None,
            idempotency: tuple[str, str, str, Callable[[Mapping[str, Event]], dict[str, Any]]] | None = None,
            holder: str | None = None, **data: Any) -> Outcome:
        """A person's action on an event, with what follows from it in the same append
        (:meth:`twin.desk.Desk.act`: an escalation is re-dispatched to the next tier, a
        reinforcement request picks the nearest free brigade member unless ``members`` names
        them, whoever is freed takes waiting work).

        Raises:
            NotFound: no such event or member.
            NotHolder: ``holder`` no longer holds the event.
            IllegalTransition: the action is not allowed in the event's state.
            ValidationError: a missing or malformed detail.
            KeyInUse: the request's idempotency key is pending or stored (nothing changed).
        """
        with self._lock:
            if idempotency is not None and self._key_in_use(idempotency[0], idempotency[1]):
                raise KeyInUse(idempotency[0])
            now = self.now() if now is None else now
            self.desk.act(event_id, action, now=now, actor=actor, reason=reason, holder=holder, **data)
            records = self.desk.take_records()
            ticket = self._commit(records, idempotency=idempotency, touched=event_id)
            after, last = self.events[event_id], self._last
        seqs = self._settle(ticket)
        self._settle(last)
        return Outcome(after, tuple(records), seqs)

    # --- time ----------------------------------------------------------------------------------------
    def tick(self, now: float | None = None) -> list[AuditRecord]:
        """Fire the deadlines due at ``now`` and handle a shift change; returns the records written.

        Due deadlines are handled :data:`TIMERS_PER_HOLD` at a time, letting go of the lock
        (and the interpreter) in between: when thousands fall due at once (a burst of
        reports a few minutes ago), reports arriving meanwhile are decided between the
        chunks instead of waiting for all of them."""
        written: list[AuditRecord] = []
        with self._lock:
            now = self.now() if now is None else now
            start = self.district.roster.duty_window(now)[0]
            if self._shift_start is not None and start != self._shift_start:
                self.desk.shift_change(now)
            self._shift_start = start
            self.desk.settle(now)  # waiting work for anyone freed (after a restart)
            records = self.desk.take_records()
            self._commit(records)
            written += records
        while True:
            with self._lock:
                fired = 0
                while self.timers and self.timers[0][0] <= now and fired < TIMERS_PER_HOLD:
                    due_at, eid, timer = heapq.heappop(self.timers)
                    fired += self.desk.fire(eid, timer, due_at, now)
                records = self.desk.take_records()
                self._commit(records)
                written += records
                if not (self.timers and self.timers[0][0] <= now):
                    last = self._last
                    break
            time.sleep(0.001)  # let a waiting report take the lock
        self._settle(last)
        return written

    def set_mode(self, mode: Mode | str, *, actor: str) -> Mode:
        """Switch peacetime/wartime (persisted); pending deadlines follow the new targets."""
        try:
            mode = Mode(mode)
        except ValueError:
            raise ValidationError("mode", f"must be one of {', '.join(m.value for m in Mode)}, got {mode!r}") from None
        with self._lock:
            now = self.now()
            self.log.put_setting("mode", {"mode": mode.value, "by": actor, "at": now})
            self.timers = []
            self.desk.set_mode(mode)
            roster = self.district.roster.for_mode(mode, now)  # on-call members called in, or stood down
            if roster is not self.district.roster:
                self.desk.set_roster(roster)
                self.desk.shift_change(now)
                self._commit(self.desk.take_records())
                last = self._last
            else:
                return mode
        self._settle(last)
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
            self.desk.set_roster(roster.with_swaps(swaps))
            self.desk.shift_change(self.now())
            self._commit(self.desk.take_records())
            a, b = roster.member(member_a), roster.member(member_b)
            last = self._last
        self._settle(last)
        return {"date": date, member_a: swaps[(a.id, day)], member_b: swaps[(b.id, day)]}

    # --- KPIs ----------------------------------------------------------------------------------------
    def kpis(self, since: float | None = None, until: float | None = None) -> dict[str, Any]:
        """The 1/3/5-minute KPIs (:mod:`twin.kpis`) of events reported in ``[since, until)``
        (all if omitted), as decided at ``now``."""
        with self._lock:
            now = self.now()
            evs = [e for e in self.events.values()
                   if (since is None or e.reported_at >= since) and (until is None or e.reported_at < until)]
            by_state: dict[str, int] = {}
            for e in evs:
                by_state[e.state.value] = by_state.get(e.state.value, 0) + 1
            firsts = {e.id: f for e in evs if (f := self.firsts.get(e.id)) is not None}
            outcomes = twin_kpis.outcomes_of(evs, firsts, now)
            # Per tier: each event under the role of whoever holds it (or held it last), timed
            # on the stage that role handles.
            role_of = {m.id: m.role.value for m in self.district.roster.members}
            tiers: dict[str, list[Event]] = {}
            for e in evs:
                if e.assignee:
                    tiers.setdefault(role_of.get(e.assignee, ""), []).append(e)
            by_tier = {role: twin_kpis.outcomes_of(group, firsts, now, stage=True)
                       for role, group in sorted(tiers.items()) if role}
            # Per area (where the event is) and per shift (in force when it was reported): the
            # same outcomes, partitioned.
            roster = self.district.roster
            areas: dict[str, list[Event]] = {}
            shifts: dict[str, list[Event]] = {}
            for e in evs:
                areas.setdefault(e.location.area_id, []).append(e)
                shifts.setdefault(roster.shift_at(e.reported_at)[0].code, []).append(e)  # (as the simulator)
            by_area = {a: twin_kpis.outcomes_of(group, firsts, now) for a, group in sorted(areas.items())}
            by_shift = {sh: twin_kpis.outcomes_of(group, firsts, now) for sh, group in shifts.items()}
            order = [sh.code for sh in roster.plan.shifts]
            by_shift = {sh: by_shift[sh] for sh in sorted(by_shift, key=lambda c: order.index(c) if c in order else 99)}
            busy = sum(1 for st in self.members.values() if st.busy)
            duty = self.district.roster.on_duty_ids(now)
            waiting = len(self.desk.waiting())
            mode = self.mode.value
        shares = twin_kpis.shares(outcomes)
        return {
            "since": iso(since, self.tz), "until": iso(until, self.tz), "now": iso(now, self.tz),
            "events": len(evs), "by_state": dict(sorted(by_state.items())),
            **{k: (None if math.isnan(v) else v) for k, v in shares.items()},
            "counts": {k: {"met": m, "counted": n} for k, (m, n) in twin_kpis.counts(outcomes).items()},
            "waiting": waiting, "members_on_duty": len(duty), "members_busy": busy, "mode": mode,
            "by_tier": twin_kpis.group_shares(by_tier), "by_area": twin_kpis.group_shares(by_area),
            "by_shift": twin_kpis.group_shares(by_shift),
        }

    # --- snapshot (what-if fork) ---------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Open events and member states now: the starting point of a what-if fork."""
        with self._lock:
            open_events = [e for e in self.events.values() if e.is_open]
            return {"now": self.now(), "mode": self.mode.value, "last_seq": self.last_seq,
                    "open_events": open_events, "members": dict(self.members), "holding": dict(self.holding),
                    "firsts": {e.id: replace(f, fired=set(f.fired), scheduled=set()) for e in open_events
                               if (f := self.firsts.get(e.id)) is not None},
                    "swaps": dict(self.district.roster.swaps)}


def _serial(event_id: str) -> int:
    digits = "".join(ch for ch in event_id if ch.isdigit())
    return int(digits) if digits else 0


__all__ = ["HELD", "HUMAN_ACTIONS", "Clock", "LiveTwin", "Outcome", "iso"]
