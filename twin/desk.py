"""The dispatch desk: every decision about an event's fate, once, for both clocks.

A :class:`Desk` holds what the street brain knows right now — the open events, where each
member is and whom they work for, the queue of waiting work, the deadlines already acted
on — and changes it only through its operations, each taking ``now``:

- :meth:`Desk.report`: a new event is merged into an open duplicate, dispatched, or queued;
- :meth:`Desk.act`: a person's (or a simulated handler's) action, with what follows from
  it: an escalation or a reopened case is dispatched again, a freed member takes waiting
  work;
- :meth:`Desk.fire`: a missed deadline (:func:`twin.policy.plan_deadline`);
- :meth:`Desk.shift_change`: unsigned work of members going off duty moves to the incoming
  shift (:func:`twin.policy.plan_handover`), incoming idle members start at their posts, and
  they take waiting work.

The live twin (``actors/live.py``) and the what-if simulator (``scenarios/engine.py``) each
hold a desk; they differ only in who supplies ``now`` and who waits: the live twin makes the
desk's audit records durable and fires deadlines from a heap on the wall clock, the
simulator schedules them as SimPy timeouts. Each engine learns of new deadlines through
the ``schedule`` callback and of every transition through ``listener``.

Member bookkeeping follows from the events alone (so a restart rebuilds it from the log):
a member is busy while they are the assignee or a reinforcement of an event in a held
state (:data:`twin.workflow.HELD`); they are freed where the event is if someone reached
it, else where they stood.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from twin.catalog import ScenarioSpec
from twin.district import District
from twin.errors import NotFound, TwinError, ValidationError
from twin.policy import (
    Assignment,
    DuplicateIndex,
    MemberState,
    Step,
    Targets,
    Timer,
    deadlines,
    dispatch,
    dispatch_by_run_card,
    dispatch_reinforcement,
    may_dispatch,
    pending,
    plan_deadline,
    plan_handover,
    targets_for,
    waiting_for,
)
from twin.staff import Mode, Role, Roster
from twin.workflow import (
    HELD,
    TERMINAL,
    WAITING,
    Action,
    AuditRecord,
    Event,
    State,
    _transition,
    apply,
    event_from_report,
    report_record,
)

#: Actions a person may take (the rest belong to the brain and its timers).
HUMAN_ACTIONS = frozenset({Action.SIGN, Action.ARRIVE, Action.RESOLVE, Action.VERIFY, Action.ESCALATE,
                           Action.REQUEST_REINFORCEMENT, Action.REINFORCE, Action.FALSE_ALARM, Action.MERGE,
                           Action.REOPEN, Action.WITHDRAW, Action.DISPATCH, Action.REASSIGN, Action.CONSULT})
#: Events in these states are queued when nobody is free (a consultation once its plan is ready).
_QUEUEABLE = WAITING | {State.CONSULTATION}
_NO_DATA: Mapping[str, Any] = MappingProxyType({})
_TIMER_VALUE = {t: t.value for t in Timer}
#: The transitions after which an event can have a deadline it did not have before (a
#: dispatch's signature; reinforcement; a case back from resolution or consultation); the
#: others only end deadlines, which :meth:`Desk.fire` finds stale when they fall due.
_ADDS_DEADLINES = frozenset({Action.DISPATCH, Action.REASSIGN, Action.REQUEST_REINFORCEMENT, Action.REOPEN})
#: The transitions :meth:`Firsts.note` learns from (besides any acted-on deadline's tag).
_NOTED = frozenset({Action.DISPATCH, Action.REASSIGN, Action.SIGN, Action.ARRIVE, Action.REINFORCE, Action.ESCALATE,
                    Action.REOPEN})
(_REPORT, _DISPATCH, _REASSIGN, _SIGN, _ARRIVE, _REQUEST_REINFORCEMENT, _REINFORCE, _ESCALATE, _REOPEN) = (
    Action.REPORT, Action.DISPATCH, Action.REASSIGN, Action.SIGN, Action.ARRIVE, Action.REQUEST_REINFORCEMENT,
    Action.REINFORCE, Action.ESCALATE, Action.REOPEN)


class NotHolder(TwinError):
    """A member acted on an event they no longer hold (reassigned, escalated, merged ...)."""

    def __init__(self, event_id: str, member: str) -> None:
        super().__init__(event_id, member)
        self.event_id, self.member = event_id, member

    def __str__(self) -> str:
        return f"{self.member} no longer holds event {self.event_id}"


@dataclass(slots=True)
class Firsts:
    """What the KPIs and the timers remember of an event whatever its state now.

    Args:
        dispatched: The first dispatch (KPIs count from the first, not the last).
        signed: The first signature.
        fired: Deadlines already acted on, as ``(timer, due_at)``.
        scheduled: The deadlines handed to the engine's clock and not yet found stale.
    """

    dispatched: float | None = None
    signed: float | None = None
    fired: set[tuple[str, float]] = field(default_factory=set)
    scheduled: set[tuple[str, float]] = field(default_factory=set)
    stage_at: float | None = None
    stage_dispatched: float | None = None
    stage_signed: float | None = None
    stage_on_scene: float | None = None

    def note(self, action: Action, at: float, data: Mapping[str, Any]) -> None:
        """What a transition tells: a first dispatch or signature, a deadline acted on (the
        desk as it applies it; the live twin as it reads its log back).

        It also keeps the firsts of the event's current *stage*: the rung of the ladder it
        is on since its report, its last escalation or its reopening (``stage_at``; ``None``:
        since the report). The tier that handles an event is measured from there, so a
        brigade member's wait is not the grid worker's.
        """
        if action is _DISPATCH or action is _REASSIGN:
            if self.dispatched is None:
                self.dispatched = at
            if self.stage_dispatched is None:
                self.stage_dispatched = at
        elif action is _SIGN:
            if self.signed is None:
                self.signed = at
            if self.stage_signed is None:
                self.stage_signed = at
        elif action is _ARRIVE or action is _REINFORCE:
            if self.stage_on_scene is None:
                self.stage_on_scene = at
        elif action is _ESCALATE or action is _REOPEN:
            self.stage_at = at
            self.stage_dispatched = self.stage_signed = self.stage_on_scene = None
        if data and "timer" in data:
            timer = data["timer"]
            if timer is not None:
                self.fired.add((str(timer), float(data.get("due_at", 0.0))))

    def stage_times(self, reported_at: float) -> tuple[float, float, float, float]:
        """The stage that handled the event, in seconds: when it began after the report, its
        first dispatch after that, the first signature after that dispatch, the first arrival
        after it began (``nan``: did not happen)."""
        nan = math.nan
        since = reported_at if self.stage_at is None else self.stage_at
        d, s, a = self.stage_dispatched, self.stage_signed, self.stage_on_scene
        return (since - reported_at, nan if d is None else d - since, nan if d is None or s is None else s - d,
                nan if a is None else a - since)


#: ``schedule(due_at, event_id, timer)``: the engine calls :meth:`Desk.fire` at ``due_at``.
Schedule = Callable[[float, str, Timer], None]
#: ``listener(event, action, data)`` after every transition (the event as it is after it).
Listener = Callable[[Event, Action, Mapping[str, Any]], None]


class Desk:
    """The street brain's decisions over its state (see the module doc).

    Args:
        district: The district; its roster is the desk's (shift swaps replace it).
        mode: Peacetime or wartime.
        audit: Build an audit record of every transition (:attr:`records`); a simulation
            that keeps no log passes ``False`` and gets the same transitions, faster.
        timers: Keep the respond / on-scene / reinforcement deadlines (``False``: a plain
            queue, as the queueing presets model).
        queue: Queue events nobody is free for (``False``: a loss system, they are
            withdrawn).
        run_cards: Dispatch by these fixed preference lists per grid instead of the
            nearest member.
        schedule: Called with each new deadline.
        listener: Called after every transition (of the actions in ``listen_to`` only, when given).
        listen_to: The actions the listener wants to hear of (``None``: all, the report included).
    """

    def __init__(self, district: District, *, mode: Mode = Mode.PEACETIME, audit: bool = True, timers: bool = True,
                 queue: bool = True, run_cards: Mapping[str, Sequence[str]] | None = None,
                 schedule: Schedule | None = None, listener: Listener | None = None,
                 listen_to: frozenset[Action] | None = None) -> None:
        self.district = district
        self._mode = mode
        self.audit, self.timers, self.queue_work, self.run_cards = audit, timers, queue, run_cards
        self.schedule, self.listener, self.listen_to = schedule, listener, listen_to
        # The actions the listener hears (set at construction).
        self._hears: frozenset[Action] = (frozenset() if listener is None else
                                          frozenset(Action) if listen_to is None else listen_to)
        self.busy_s: dict[str, float] = {}  # member id → seconds busy with events that ended
        self.busy_since: dict[str, float] = {}  # member id → when their current work began
        self.events: dict[str, Event] = {}
        self.members: dict[str, MemberState] = {m.id: MemberState(m.post_node) for m in district.roster.members}
        self.holding: dict[str, str] = {}  # member id → the event they work on (handler or reinforcement)
        self.firsts: dict[str, Firsts] = {}
        self.dups = DuplicateIndex(cell_m=100.0)
        self.queue: list[tuple[int, float, str]] = []  # heap of (-severity rank, reported_at, event id)
        self.records: list[AuditRecord] = []  # made since the engine last took them (audit only)
        self.role_of: dict[str, Role] = {m.id: m.role for m in district.roster.members}
        self._targets: dict[str, Targets] = {}  # of the current mode
        self._specs = district.catalog.scenarios
        self._window = (math.inf, -math.inf)  # the shift instance ``_duty`` is of
        self._freed = False
        self._states: tuple[dict[int, MemberState], dict[int, MemberState]] = ({}, {})  # free, busy; by node
        self._duty: frozenset[str] | None = None  # the on-duty set the free counts are of
        self._free: Counter[Role] = Counter()
        self._free_set: set[Role] = set()  # the roles with a free member on duty
        self._on_duty: set[Role] = set()
        # Members heading back to their post after a job (district.policy.return_to_post):
        # a heap of (back at, ticket, member); a ticket still in ``_leaving`` is live.
        self._return_to_post = district.policy.return_to_post
        self._returns: list[tuple[float, int, str]] = []
        self._leaving: dict[str, int] = {}
        self._tickets = 0

    @property
    def mode(self) -> Mode:
        """Peacetime or wartime (setting it changes the targets; :meth:`set_mode` also moves the
        pending deadlines)."""
        return self._mode

    @mode.setter
    def mode(self, mode: Mode) -> None:
        self._mode = mode
        self._targets.clear()

    # --- reading -------------------------------------------------------------------------------
    def spec(self, event: Event) -> ScenarioSpec:
        """The catalog scenario of an event."""
        return self._specs[event.scenario]

    def targets(self, event: Event) -> Targets:
        """The targets in force for an event (wartime caps them)."""
        t = self._targets.get(event.scenario)
        if t is None:
            t = self._targets[event.scenario] = targets_for(self._specs[event.scenario], self.mode)
        return t

    def event(self, event_id: str) -> Event:
        """The event with this id.

        Raises:
            NotFound: no such event.
        """
        e = self.events.get(event_id)
        if e is None:
            raise NotFound("event", event_id)
        return e

    def waiting(self) -> list[str]:
        """Ids of the events waiting for a free member, in the order they will be served."""
        seen: set[str] = set()
        out = []
        for _, _, eid in sorted(self.queue):
            e = self.events.get(eid)
            if eid not in seen and e is not None and self._queued(e):
                seen.add(eid)
                out.append(eid)
        return out

    def waiting_for(self, event_id: str, now: float) -> Role | None:
        """The role a waiting event waits for now (:func:`twin.policy.waiting_for`)."""
        e = self.events[event_id]
        return waiting_for(e, spec=self.spec(e), mode=self.mode, on_duty_roles=self._free_roles(now)[1])

    def holds(self, event_id: str, member: str) -> bool:
        """Whether ``member`` works on the event now: its assignee, or a reinforcement of it
        not since taken elsewhere."""
        e = self.events[event_id]
        return e.assignee == member or (member in e.reinforcements and self.holding.get(member) == event_id)

    def take_records(self) -> list[AuditRecord]:
        """The audit records made since the last call, in order (and forget them)."""
        out, self.records = self.records, []
        return out

    # --- operations ----------------------------------------------------------------------------
    def report(self, event: Event, *, actor: str) -> Event:
        """A new event (state ``reported``): merged into an open duplicate, else dispatched to
        the nearest free member the policy picks, else queued. Returns it as it ends up."""
        eid = event.id
        if eid in self.events:
            raise ValidationError("event_id", f"event {eid} exists already")
        spec = self._specs[event.scenario]
        self.events[eid] = event
        if self.audit:
            self.records.append(report_record(event, actor))
        self.firsts[eid] = Firsts()
        if _REPORT in self._hears:
            self.listener(event, _REPORT, _NO_DATA)  # type: ignore[misc]
        merging = spec.merge_radius_m > 0 and spec.merge_window_s > 0
        dup = self.dups.find(event, spec) if merging else None
        now = event.reported_at
        if dup is not None:
            self._apply(eid, Action.MERGE, now, "brain", "duplicate of an open event", {"into": dup.id})
        else:
            if merging:
                self.dups.add(event)
            if self.timers:
                self._schedule_deadlines(event)
            a = self._choose(event, now)
            if a is not None:
                self._dispatch(eid, a, now)
            elif not self.queue_work:
                self._apply(eid, Action.WITHDRAW, now, "brain", "nobody free (loss system)", _NO_DATA)
            else:
                self._enqueue(event)
        if self._freed:
            self.drain(now)
        return self.events[eid]

    def act(self, event_id: str, action: Action | str, *, now: float, actor: str, reason: str = "",
            holder: str | None = None, **data: Any) -> Event:
        """A person's action on an event, with what follows from it: an escalation or a
        reopened case is dispatched again (or queued), ``dispatch`` without a ``member`` is
        left to the policy, a reinforcement request without ``members`` picks the nearest
        free brigade member, and whoever is freed takes waiting work.

        Args:
            event_id: The event.
            action: What the person does.
            now: POSIX seconds.
            actor: Who does it.
            reason: Why, in words.
            holder: Act only if this member still holds the event (its assignee, or a
                reinforcement for ``reinforce``): a simulated handler's guard.
            **data: The action's details (see :func:`twin.workflow.apply`).

        Returns:
            The event afterwards.

        Raises:
            NotFound: no such event.
            NotHolder: ``holder`` no longer holds it.
            IllegalTransition: the action is not allowed in the event's state.
            ValidationError: a missing or malformed detail (nothing is changed).
        """
        try:
            action = Action(action)
        except ValueError:
            raise ValidationError("action", f"unknown action '{action}'") from None
        if action not in HUMAN_ACTIONS:
            raise ValidationError("action", f"'{action.value}' is not an action people take")
        e = self.event(event_id)
        if holder is not None and e.assignee != holder and not (
                action is Action.REINFORCE and self.holds(event_id, holder)):
            raise NotHolder(event_id, holder)
        if not (action is Action.DISPATCH and data.get("member") is None):
            self._check_action(e, self.spec(e), action, now, data)
        return self.perform(event_id, action, now, actor, reason, data)

    def perform(self, event_id: str, action: Action, now: float, actor: str, reason: str = "",
                data: Mapping[str, Any] = _NO_DATA) -> Event:
        """:meth:`act` without checking the details a person might get wrong: for simulated
        handlers, whose acts are well-formed (the transition's own checks still apply).

        Raises:
            IllegalTransition: the action is not allowed in the event's state.
        """
        if action is _DISPATCH and data.get("member") is None:
            e = self.events[event_id]
            if e.state not in _QUEUEABLE:
                raise ValidationError("member", f"event {event_id} is {e.state.value}: nothing to dispatch")
            self._dispatch_or_queue(event_id, now, reason=reason)
        else:
            if action is _ESCALATE and "chain_length" not in data:
                data = {**data, "chain_length": len(self.spec(self.events[event_id]).handler_chain)}
            after = self._apply(event_id, action, now, actor, reason, data)
            if (action is _ESCALATE or action is _REOPEN) and after.assignee is None \
                    and after.state in WAITING:
                self._dispatch_or_queue(event_id, now)
            elif not self._freed:
                return after
            elif not self.queue:  # freed, but nothing waits
                self._freed = False
                return after
        if self._freed:
            self.drain(now)
        return self.events[event_id]

    def _check_action(self, e: Event, spec: ScenarioSpec, action: Action, now: float, data: dict[str, Any]) -> None:
        """Check (and complete) the details of a person's action before anything changes."""
        if data.get("member") is not None:
            mid = self.member_field("member", data["member"])
            if action in (Action.DISPATCH, Action.REASSIGN) and self.members[mid].busy:
                raise ValidationError("member", f"{mid} is busy with event {self.holding.get(mid)}")
        if action is Action.ESCALATE:
            data.setdefault("chain_length", len(spec.handler_chain))
        elif action is Action.MERGE:
            into = str(data.get("into") or "")
            other = self.events.get(into) if into else None
            if into and other is None:
                raise ValidationError("into", f"no event '{into}'")
            if other is not None and not other.is_open:
                raise ValidationError("into", f"event {into} is {other.state.value}; merge into an open event")
        elif action is Action.REQUEST_REINFORCEMENT:
            if not data.get("members"):
                a = dispatch_reinforcement(e, spec=spec, district=self.district, members=self.positions(now), now=now,
                                           exclude=[m for m in (e.assignee,) if m])
                if a is None:
                    raise ValidationError("members", "nobody of the brigade or enforcement is free to reinforce; "
                                          "name members explicitly or wait")
                data["members"] = [a.member_id]
            if isinstance(data["members"], (str, bytes)) or not isinstance(data["members"], (list, tuple)):
                raise ValidationError("members", "must be a list of member ids")
            data["members"] = [self.member_field("members", m) for m in data["members"]]

    def member_field(self, name: str, value: Any) -> str:
        """``value`` as a known member id, else a :class:`ValidationError` on field ``name``."""
        if not isinstance(value, str) or value not in self.members:
            raise ValidationError(name, f"no member '{value}'")
        return value

    def fire(self, event_id: str, timer: Timer | str, due_at: float, now: float) -> bool:
        """Act on a deadline that fell due (:func:`twin.policy.plan_deadline`); ``False`` if it
        is stale: the event moved on, or this deadline was already acted on."""
        if timer.__class__ is not Timer:
            timer = Timer(timer)
        e = self.events.get(event_id)
        if e is None or e.state in TERMINAL:  # (not e.is_open, without two property calls)
            return False
        f = self.firsts[event_id]
        key = (_TIMER_VALUE[timer], due_at)
        if key not in f.scheduled or key in f.fired:
            return False
        if not pending(e, self._targets.get(e.scenario) or self.targets(e), timer, due_at):
            f.scheduled.discard(key)  # stale: the event moved on (it may come back: schedule it anew then)
            return False
        tag = {"timer": key[0], "due_at": due_at}
        steps = plan_deadline(e, timer, spec=self.spec(e), district=self.district, members=self.positions(now), now=now,
                              mode=self.mode, max_reassign=self.district.policy.max_reassign,
                              run_cards=self.run_cards)
        for step in steps:
            self._step(event_id, step, now, "timer", tag)
        self.settle(now)
        return True

    def shift_change(self, now: float) -> None:
        """A new shift begins: unsigned work of members going off duty moves to the incoming
        shift, incoming idle members start at their posts, and they take waiting work."""
        roster = self.district.roster
        work = []
        for mid, eid in self.holding.items():
            e = self.events[eid]
            if e.assignee == mid and e.state in HELD:
                work.append((eid, mid, e.state is not State.DISPATCHED))
        for eid, outgoing in roster.handover_reassignments(work, now):
            e = self.events[eid]
            step = plan_handover(e, outgoing, spec=self.spec(e), district=self.district, members=self.positions(now),
                                 now=now, mode=self.mode, run_cards=self.run_cards)
            if step is not None:
                self._step(eid, step, now, "brain", None)
        # Who comes on duty (a new shift, back from a break or a post) starts at their post:
        # those available now and not just before the span that began with this change.
        before = roster.on_duty_ids(roster.duty_window(now)[0] - 1e-3)
        duty = roster.on_duty_ids(now)
        by_id = roster.by_id
        for mid in duty - before:
            if not self.members[mid].busy:
                self.members[mid] = self._member_state(by_id[mid].post_node, False)
                self._leaving.pop(mid, None)
        self._freed = True
        self.settle(now)

    def set_mode(self, mode: Mode) -> None:
        """Switch peacetime/wartime; the deadlines of open events follow the new targets."""
        self.mode = mode
        for f in self.firsts.values():
            f.scheduled.clear()
        for e in self.events.values():
            if e.is_open:
                self._schedule_deadlines(e)

    def set_roster(self, roster: Roster) -> None:
        """Replace the roster (shift swaps) of the desk's district, which must be the desk's
        own (the live twin holds a copy); the caller hands work over with :meth:`shift_change`."""
        self.district.roster = roster
        self._duty = None
        self._window = (math.inf, -math.inf)

    def drain(self, now: float) -> int:
        """Dispatch waiting events, most urgent (then oldest) first, to whoever is free.

        An event the policy could not give to anyone (:func:`twin.policy.may_dispatch`: no
        free member on duty in the tier it would reach) is passed over without asking for
        travel times, so a long queue costs little when few are free. Returns how many
        were dispatched."""
        self._freed = False
        if not self.queue:
            return 0
        free, on_duty = self._free_roles(now)
        if not free:
            return 0
        done, keep = 0, []
        maybe: dict[tuple[str, int], bool] = {}  # (scenario, tier) → may dispatch, until someone is taken
        queue = self.queue
        while queue and free:
            item = heapq.heappop(queue)
            e = self.events.get(item[2])
            if e is None or not self._queued(e):
                continue
            could = maybe.get((e.scenario, e.tier))
            if could is None:
                could = maybe[(e.scenario, e.tier)] = may_dispatch(e, spec=self._specs[e.scenario], mode=self._mode,
                                                                   free_roles=free, on_duty_roles=on_duty)
            if could:
                a = self._choose(e, now)
                if a is not None:
                    self._dispatch(e.id, a, now)
                    done += 1
                    maybe.clear()
                    free, on_duty = self._free_roles(now)
                    continue
                maybe[(e.scenario, e.tier)] = False
            keep.append(item)
        for item in keep:
            heapq.heappush(queue, item)
        return done

    # --- restoring (a restart, a what-if fork) -------------------------------------------------
    def adopt(self, events: Mapping[str, Event], *, nodes: Mapping[str, int] | None = None,
              firsts: Mapping[str, Firsts] | None = None, now: float | None = None) -> None:
        """Take over events as they are (a log replayed after a restart, or a live snapshot):
        members stand at ``nodes`` (else their posts), whoever an open event in a held state
        names is busy with it, waiting events are queued (most urgent, then oldest first),
        and the deadlines not yet acted on are scheduled. Nothing is dispatched: the engine
        calls :meth:`drain` when it is ready. Busy time (:meth:`busy_seconds`) counts from
        ``now`` for the work taken over."""
        self.events = dict(events)
        self.firsts = {eid: firsts.get(eid, Firsts()) if firsts else Firsts() for eid in self.events}
        nodes = nodes or {}
        self.members = {m.id: MemberState(int(nodes.get(m.id, m.post_node))) for m in self.district.roster.members}
        self.holding.clear()
        self.busy_s.clear()
        self.busy_since.clear()
        self.dups = DuplicateIndex(cell_m=100.0)
        self.queue = []
        self._duty = None
        self._window = (math.inf, -math.inf)
        for e in self.events.values():
            if not e.is_open:
                continue
            self.dups.add(e)
            if e.state in HELD:
                for mid in (e.assignee, *e.reinforcements):
                    if mid is not None and mid in self.members:
                        self._hold(mid, e.id, now)
            self._enqueue(e)
            self._schedule_deadlines(e)
        self._freed = True

    def replay_record(self, rec: AuditRecord) -> Event:
        """Apply a transition decided before (a stored day re-watched): the same books as
        when it was decided, and no decision of the desk's own.

        Raises:
            TwinError: the record does not follow from the event as the desk holds it.
        """
        if rec.action is Action.REPORT:
            e = event_from_report(rec)
            if e.id in self.events:
                raise TwinError(f"event {e.id} reported twice")
            self.events[e.id] = e
            self.firsts[e.id] = Firsts()
            if self.audit:
                self.records.append(rec)
            self.dups.add(e)
            self._schedule_deadlines(e)
            return e
        if rec.event_id not in self.events:
            raise TwinError(f"record {rec.event_id}#{rec.seq} precedes the event's report")
        self._apply(rec.event_id, rec.action, rec.at, rec.actor, rec.reason, dict(rec.data))
        e = self.events[rec.event_id]
        if e.state is not rec.to_state:
            raise TwinError(f"record {rec.event_id}#{rec.seq} says '{rec.to_state.value}' but the "
                            f"replay reaches '{e.state.value}'")
        return e

    # --- the one path every transition takes ---------------------------------------------------
    def _step(self, eid: str, step: Step, now: float, actor: str, tag: Mapping[str, Any] | None) -> None:
        if step.action is Action.DISPATCH and "member" not in step.data:
            self._dispatch_or_queue(eid, now, reason=step.reason)
            return
        data = dict(step.data)
        if tag:
            data.update(tag)
        self._apply(eid, step.action, now, actor, step.reason, data)

    def _apply(self, eid: str, action: Action, now: float, actor: str, reason: str, data: Mapping[str, Any]) -> Event:
        """Apply one transition and keep every book that follows from it; returns the event.

        Hot (the simulator's innermost call after :func:`twin.workflow.advance`): the enum
        members are module-level aliases, as in :mod:`twin.workflow`."""
        old = self.events[eid]
        if self.audit:
            e, rec = apply(old, action, now=now, actor=actor, reason=reason, **data)
            self.records.append(rec)
        else:  # the same transition without the audit record nobody keeps (twin.workflow.advance)
            e = _transition(old, action, now, reason, data, None)[0]
        self.events[eid] = e
        if action in _NOTED or (data and "timer" in data):
            self.firsts[eid].note(action, now, data)
        state = e.state
        # Who holds the event follows from it: its assignee and the reinforcements it names
        # (while they hold it, :attr:`holding`); whoever no longer does is free again, at
        # the event if someone reached it, else where they stood.
        if action is _DISPATCH or action is _REASSIGN:
            mid = e.assignee
            assert mid is not None
            self._hold(mid, eid, now)
            prev = old.assignee
            if prev is not None and prev != mid and prev not in e.reinforcements and self.holding.get(prev) == eid:
                self._release(prev, e.location.node if e.on_scene_at is not None else None, now)
        elif action is _ARRIVE:
            if e.assignee:
                self._move(e.assignee, e.location.node)
        elif action is _REQUEST_REINFORCEMENT:
            for m in data["members"]:
                self._hold(str(m), eid, now)
        elif action is _REINFORCE:
            for m in e.reinforcements:
                if self.holding.get(m) == eid:
                    self._move(m, e.location.node)
        elif state not in HELD and old.state in HELD:
            node = e.location.node if e.on_scene_at is not None else None
            holding = self.holding
            if old.assignee is not None and holding.get(old.assignee) == eid:
                self._release(old.assignee, node, now)
            for m in old.reinforcements:
                if holding.get(m) == eid:
                    self._release(m, node, now)
        if state in TERMINAL:
            self.dups.discard(eid)
            self.firsts[eid].scheduled.clear()
        elif self.timers and action in _ADDS_DEADLINES:
            self._schedule_deadlines(e)
        if action in self._hears:
            self.listener(e, action, data)  # type: ignore[misc]
        return e

    def _schedule_deadlines(self, e: Event) -> None:
        """Hand the engine the deadlines of ``e`` it does not have yet (``Firsts.scheduled``)."""
        if not self.timers:
            return
        f = self.firsts[e.id]
        for due_at, timer in deadlines(e, self._targets.get(e.scenario) or self.targets(e)):
            key = (_TIMER_VALUE[timer], due_at)
            if key not in f.scheduled and key not in f.fired:
                f.scheduled.add(key)
                if self.schedule is not None:
                    self.schedule(due_at, e.id, timer)

    def _dispatch_or_queue(self, eid: str, now: float, *, reason: str = "") -> None:
        e = self.events[eid]
        a = self._choose(e, now)
        if a is not None:
            self._dispatch(eid, a, now, reason)
        elif not self.queue_work:
            self._apply(eid, Action.WITHDRAW, now, "brain", "nobody free (loss system)", {})
        else:
            self._enqueue(e)

    def _dispatch(self, eid: str, a: Assignment, now: float, reason: str = "") -> None:
        self._apply(eid, _DISPATCH, now, "brain", reason or a.reason,
                    {"member": a.member_id, "tier": a.tier, "travel_s": round(a.travel_s, 1)})

    def _choose(self, e: Event, now: float) -> Assignment | None:
        if self._returns and self._returns[0][0] <= now:
            self._back_at_posts(now)
        if self.run_cards is not None:
            return dispatch_by_run_card(e, run_cards=self.run_cards, district=self.district, members=self.members,
                                        now=now)
        return dispatch(e, spec=self._specs[e.scenario], district=self.district, members=self.members, now=now,
                        mode=self._mode)

    def _queued(self, e: Event) -> bool:
        return e.assignee is None and e.state in _QUEUEABLE

    def _enqueue(self, e: Event) -> None:
        if e.assignee is None and e.state in _QUEUEABLE:  # (queueable states are open)
            heapq.heappush(self.queue, (-self._specs[e.scenario].severity.rank, e.reported_at, e.id))

    def settle(self, now: float) -> None:
        """Whoever was freed since the last drain takes waiting work (every operation ends
        with this; after :meth:`adopt` the engine calls it when ready)."""
        if self._freed:
            self.drain(now)

    # --- members -------------------------------------------------------------------------------
    def _free_roles(self, now: float) -> tuple[set[Role], set[Role]]:
        """The roles with a free member on duty, and the roles with anyone on duty (kept up
        to date between shift changes; the sets are the desk's own: read, do not change)."""
        lo, hi = self._window
        if lo <= now < hi and self._duty is not None:
            return self._free_set, self._on_duty
        roster = self.district.roster
        duty = roster.on_duty_ids(now)
        self._window = roster.duty_window(now)
        if duty is not self._duty:
            self._duty = duty
            self._free = Counter()
            self._on_duty = set()
            for mid in duty:
                role = self.role_of.get(mid)
                if role is None:
                    continue
                self._on_duty.add(role)
                if not self.members[mid].busy:
                    self._free[role] += 1
            self._free_set = {role for role, n in self._free.items() if n > 0}
        return self._free_set, self._on_duty

    def _hold(self, mid: str, eid: str, now: float | None) -> None:
        """``mid`` works on ``eid`` from ``now`` (``None``: since before the desk knew); whatever
        they held before no longer counts them."""
        self.holding[mid] = eid
        if self._leaving:
            self._leaving.pop(mid, None)
        st = self.members[mid]
        if not st.busy:
            node = st.node
            self.members[mid] = self._states[1].get(node) or self._member_state(node, True)
            duty = self._duty
            if duty is not None and mid in duty:
                role = self.role_of[mid]
                n = self._free[role] = self._free[role] - 1
                if not n:
                    self._free_set.discard(role)
            if now is not None:
                self.busy_since[mid] = now

    def _member_state(self, node: int, busy: bool) -> MemberState:
        """``MemberState(node, busy)``, shared: the states are immutable and few (two per node),
        and every hold and release needs one."""
        states = self._states[busy]
        st = states.get(node)
        if st is None:
            st = states[node] = MemberState(node, busy)
        return st

    def _move(self, mid: str, node: int) -> None:
        self.members[mid] = self._member_state(node, self.members[mid].busy)

    def _release(self, mid: str, node: int | None, now: float) -> None:
        """``mid`` no longer works on the event they held; they stand at ``node`` (``None``:
        where they stood)."""
        self.holding.pop(mid, None)
        st = self.members[mid]
        if node is None:
            node = st.node
        self.members[mid] = self._states[0].get(node) or self._member_state(node, False)
        if self._return_to_post:
            self._head_back(mid, node, now)
        if st.busy:
            duty = self._duty
            if duty is not None and mid in duty:
                role = self.role_of[mid]
                n = self._free[role] = self._free[role] + 1
                if n == 1:
                    self._free_set.add(role)
            since = self.busy_since.pop(mid, None)
            if since is not None:
                self.busy_s[mid] = self.busy_s.get(mid, 0.0) + (now - since)
        self._freed = True

    def _head_back(self, mid: str, node: int, now: float) -> None:
        """``mid``, free at ``node``, heads back to their post; they stand at ``node`` (where
        dispatch finds them) until they are back."""
        member = self.district.roster.by_id.get(mid)
        if member is None or node == member.post_node:
            self._leaving.pop(mid, None)
            return
        trip = self.district.roads.travel_s(member.travel_mode, node, member.post_node)
        if not math.isfinite(trip):
            return
        self._tickets += 1
        self._leaving[mid] = self._tickets
        heapq.heappush(self._returns, (now + trip, self._tickets, mid))

    def _back_at_posts(self, now: float) -> None:
        """Members whose way back to their post ended by ``now`` stand at their post."""
        returns, leaving = self._returns, self._leaving
        while returns and returns[0][0] <= now:
            _, ticket, mid = heapq.heappop(returns)
            if leaving.get(mid) == ticket:
                del leaving[mid]
                if not self.members[mid].busy:
                    self._move(mid, self.district.roster.by_id[mid].post_node)

    def positions(self, now: float) -> Mapping[str, MemberState]:
        """Where every member stands at ``now`` and whether they are busy (members on their
        way back to their post count as where their last job was until they are back)."""
        if self._returns:
            self._back_at_posts(now)
        return self.members

    def busy_seconds(self, mid: str, now: float) -> float:
        """Seconds ``mid`` has spent holding events since the desk began (up to ``now``;
        work held when the desk adopted a state counts from then on only if the desk saw it
        begin)."""
        since = self.busy_since.get(mid)
        return self.busy_s.get(mid, 0.0) + (now - since if since is not None else 0.0)
