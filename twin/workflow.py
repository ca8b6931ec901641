"""The life of an event, as an explicit state machine with an audit trail.

The main line is the case study's closed loop::

    reported → dispatched → signed (签收) → on_scene → resolved → closed (核销)

with the side roads: ``escalated`` (grid worker → co-governance → enforcement, then
dispatched again at the next tier), ``reinforcement_requested`` (a second handler is sent;
the 180-second rule), ``consultation`` (会商: a multi-department case goes to the command
centre for a joint plan, then is dispatched again), ``merged`` (a duplicate of another
event), ``false_alarm``, and ``withdraw`` (the problem went away, or the reporter withdrew,
before anyone signed: closed with nothing done). A reopened case (verification refused) goes back to
``reported``.

:func:`apply` is a pure function: it takes an event, an action and ``now`` and returns the
new event and one immutable :class:`AuditRecord`. Replaying the records with :func:`replay`
rebuilds every event exactly; that is how the live twin recovers after a crash and how a
day is re-watched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from enum import Enum
from types import MappingProxyType
from typing import Any

from twin.errors import IllegalTransition, TwinError, ValidationError
from twin.geo import Location


class State(str, Enum):
    """States of an event."""

    REPORTED = "reported"
    DISPATCHED = "dispatched"
    SIGNED = "signed"
    ON_SCENE = "on_scene"
    REINFORCEMENT_REQUESTED = "reinforcement_requested"
    RESOLVED = "resolved"
    CLOSED = "closed"
    ESCALATED = "escalated"
    CONSULTATION = "consultation"
    MERGED = "merged"
    FALSE_ALARM = "false_alarm"

    @property
    def is_terminal(self) -> bool:
        """Closed, merged and false alarms take no further action."""
        return self in TERMINAL


TERMINAL = frozenset({State.CLOSED, State.MERGED, State.FALSE_ALARM})
OPEN_STATES = frozenset(set(State) - TERMINAL)
#: States in which the assignee (and any reinforcement) is busy with the event.
HELD = frozenset({State.DISPATCHED, State.SIGNED, State.ON_SCENE, State.REINFORCEMENT_REQUESTED})
#: States in which an open event waits for the brain to dispatch it (queued if nobody is free).
WAITING = frozenset({State.REPORTED, State.ESCALATED})


class Action(str, Enum):
    """What can happen to an event."""

    REPORT = "report"
    DISPATCH = "dispatch"
    REASSIGN = "reassign"
    SIGN = "sign"
    ARRIVE = "arrive"
    REQUEST_REINFORCEMENT = "request_reinforcement"
    REINFORCE = "reinforce"
    RESOLVE = "resolve"
    VERIFY = "verify"
    REOPEN = "reopen"
    ESCALATE = "escalate"
    CONSULT = "consult"
    MERGE = "merge"
    FALSE_ALARM = "false_alarm"
    WITHDRAW = "withdraw"
    SUPERVISE = "supervise"


_S = State
_A = Action
#: (action, from state) → to state. Anything not listed is illegal.
TRANSITIONS: Mapping[Action, Mapping[State, State]] = MappingProxyType({
    _A.DISPATCH: {_S.REPORTED: _S.DISPATCHED, _S.ESCALATED: _S.DISPATCHED,
                  _S.CONSULTATION: _S.DISPATCHED},
    _A.REASSIGN: {_S.DISPATCHED: _S.DISPATCHED},
    _A.SIGN: {_S.DISPATCHED: _S.SIGNED,
              _S.REINFORCEMENT_REQUESTED: _S.REINFORCEMENT_REQUESTED},
    _A.ARRIVE: {_S.SIGNED: _S.ON_SCENE,
                _S.REINFORCEMENT_REQUESTED: _S.REINFORCEMENT_REQUESTED},
    _A.REQUEST_REINFORCEMENT: {_S.DISPATCHED: _S.REINFORCEMENT_REQUESTED,
                               _S.SIGNED: _S.REINFORCEMENT_REQUESTED,
                               _S.ON_SCENE: _S.REINFORCEMENT_REQUESTED},
    _A.REINFORCE: {_S.REINFORCEMENT_REQUESTED: _S.ON_SCENE},
    _A.RESOLVE: {_S.SIGNED: _S.RESOLVED, _S.ON_SCENE: _S.RESOLVED,
                 _S.REINFORCEMENT_REQUESTED: _S.RESOLVED},
    _A.VERIFY: {_S.RESOLVED: _S.CLOSED},
    _A.REOPEN: {_S.RESOLVED: _S.REPORTED},
    _A.ESCALATE: {_S.DISPATCHED: _S.ESCALATED, _S.SIGNED: _S.ESCALATED,
                  _S.ON_SCENE: _S.ESCALATED, _S.REINFORCEMENT_REQUESTED: _S.ESCALATED},
    _A.CONSULT: {_S.SIGNED: _S.CONSULTATION, _S.ON_SCENE: _S.CONSULTATION,
                 _S.ESCALATED: _S.CONSULTATION},
    _A.MERGE: {_S.REPORTED: _S.MERGED, _S.DISPATCHED: _S.MERGED},
    _A.FALSE_ALARM: {_S.REPORTED: _S.FALSE_ALARM, _S.DISPATCHED: _S.FALSE_ALARM,
                     _S.SIGNED: _S.FALSE_ALARM, _S.ON_SCENE: _S.FALSE_ALARM,
                     _S.REINFORCEMENT_REQUESTED: _S.FALSE_ALARM},
    _A.WITHDRAW: {_S.REPORTED: _S.CLOSED, _S.DISPATCHED: _S.CLOSED, _S.ESCALATED: _S.CLOSED,
                  _S.CONSULTATION: _S.CLOSED},
    _A.SUPERVISE: {s: s for s in OPEN_STATES},
})


def allowed_actions(state: State) -> tuple[str, ...]:
    """The actions allowed from ``state``, in declaration order."""
    return tuple(a.value for a, table in TRANSITIONS.items() if state in table)


@dataclass(frozen=True)
class Event:
    """An event (事件) as the street brain knows it at one moment.

    Args:
        id: Unique event id.
        scenario: Catalog scenario code (``CM01``).
        category: Catalog category code.
        severity: FIWARE severity (``low``, ...).
        source: How it was discovered (``camera``, ``citizen``, ...).
        reported_at: POSIX seconds when it was reported.
        location: Where it is, resolved against the district.
        state: Current state.
        tier: Index into the scenario's handler chain (0: first handler).
        assignee: Member currently responsible, if any.
        reinforcements: Members sent as reinforcement.
        description: Free text from the reporter.
        external_id: Id in the reporting system (camera event id, Open311 token, ...).
        dispatched_at: Last (re)dispatch time.
        signed_at: When the current assignee signed for it.
        on_scene_at: When the first handler arrived.
        reinforcement_requested_at: When reinforcement was requested.
        reinforced_at: When reinforcement arrived.
        resolved_at: When the handler reported it resolved.
        closed_at: When it was verified and closed.
        escalations: Number of escalations.
        reassignments: Number of reassignments.
        merged_into: The event this one duplicates, if merged.
        duplicates: Number of reports merged into this one.
        result: The handler's report.
        evidence: References to evidence (photo ids, clip ids; a citizen's link to a photo kept
            elsewhere, Open311's ``media_url``).
        version: Number of transitions applied, the report included.
        updated_at: Time of the last transition.
    """

    id: str
    scenario: str
    category: str
    severity: str
    source: str
    reported_at: float
    location: Location
    state: State = State.REPORTED
    tier: int = 0
    assignee: str | None = None
    reinforcements: tuple[str, ...] = ()
    description: str = ""
    external_id: str | None = None
    dispatched_at: float | None = None
    signed_at: float | None = None
    on_scene_at: float | None = None
    reinforcement_requested_at: float | None = None
    reinforced_at: float | None = None
    resolved_at: float | None = None
    closed_at: float | None = None
    escalations: int = 0
    reassignments: int = 0
    merged_into: str | None = None
    duplicates: int = 0
    result: str = ""
    evidence: tuple[str, ...] = ()
    version: int = 1
    updated_at: float = field(default=0.0)

    @property
    def is_open(self) -> bool:
        """Whether the event still needs work."""
        return not self.state.is_terminal


@dataclass(frozen=True)
class AuditRecord:
    """One transition, as appended to the event log. Immutable.

    Args:
        event_id: The event.
        seq: The event's version after this transition (1 for the report).
        at: POSIX seconds.
        actor: Who did it (a member id, ``brain``, ``timer``, ``camera:C017``, ...).
        action: The action.
        from_state: State before (``None`` for the report).
        to_state: State after.
        reason: Why, in words.
        data: Action details (member ids, travel time, result text, ...).
    """

    event_id: str
    seq: int
    at: float
    actor: str
    action: Action
    from_state: State | None
    to_state: State
    reason: str = ""
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {
            "event_id": self.event_id, "seq": self.seq, "at": self.at, "actor": self.actor,
            "action": self.action.value,
            "from_state": self.from_state.value if self.from_state else None,
            "to_state": self.to_state.value, "reason": self.reason, "data": dict(self.data),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AuditRecord:
        """Inverse of :meth:`to_dict`."""
        return cls(
            event_id=str(d["event_id"]), seq=int(d["seq"]), at=float(d["at"]),
            actor=str(d["actor"]), action=Action(d["action"]),
            from_state=State(d["from_state"]) if d.get("from_state") else None,
            to_state=State(d["to_state"]), reason=str(d.get("reason", "")),
            data=MappingProxyType(dict(d.get("data") or {})),
        )


def new_event(
    *,
    event_id: str,
    scenario: str,
    category: str,
    severity: str,
    source: str,
    location: Location,
    now: float,
    description: str = "",
    external_id: str | None = None,
    evidence: tuple[str, ...] = (),
) -> Event:
    """An event in state ``reported`` (no audit record: see :func:`report`); ``evidence``
    references what the reporting source kept (a camera's annotated frame)."""
    if not event_id:
        raise ValidationError("event_id", "must not be empty")
    event = object.__new__(Event)  # Event(...) without __init__'s 28 frozen setattrs (see _transition)
    d = event.__dict__
    d.update(_EVENT_DEFAULTS)
    d.update(id=event_id, scenario=scenario, category=category, severity=severity, source=source,
             reported_at=now, location=location, description=description, external_id=external_id,
             updated_at=now)
    if evidence:
        d["evidence"] = tuple(evidence)
    return event


_EVENT_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(Event) if f.default is not MISSING}


def report(
    *,
    event_id: str,
    scenario: str,
    category: str,
    severity: str,
    source: str,
    location: Location,
    now: float,
    actor: str,
    description: str = "",
    external_id: str | None = None,
    evidence: tuple[str, ...] = (),
) -> tuple[Event, AuditRecord]:
    """Create an event in state ``reported``, with its first audit record."""
    event = new_event(event_id=event_id, scenario=scenario, category=category, severity=severity, source=source,
                      location=location, now=now, description=description, external_id=external_id,
                      evidence=evidence)
    return event, report_record(event, actor)


def report_record(event: Event, actor: str) -> AuditRecord:
    """The ``report`` audit record of a new event (see :func:`report`)."""
    data: dict[str, Any] = {"scenario": event.scenario, "category": event.category, "severity": event.severity,
                            "source": event.source, "location": dict(event.location.__dict__),
                            "description": event.description, "external_id": event.external_id}
    if event.evidence:  # (only then: records of reports without evidence are as they always were)
        data["evidence"] = list(event.evidence)
    return AuditRecord(event.id, 1, event.reported_at, actor, Action.REPORT, None, State.REPORTED,
                       "reported", MappingProxyType(data))


def _require(data: Mapping[str, Any], key: str, action: Action) -> Any:
    value = data.get(key)
    if value in (None, "", ()):
        raise ValidationError(key, f"is required to '{action.value}'")
    return value


def apply(
    event: Event,
    action: Action | str,
    *,
    now: float,
    actor: str,
    reason: str = "",
    **data: Any,
) -> tuple[Event, AuditRecord]:
    """Apply one action to an event.

    Args:
        event: The event as it is.
        action: What happens.
        now: POSIX seconds; never earlier than the event's last transition.
        actor: Who does it.
        reason: Why, in words (kept in the audit record).
        **data: Details: ``member`` (dispatch, reassign), ``members`` (request_reinforcement),
            ``travel_s``, ``into`` (merge), ``result`` and ``evidence`` (resolve),
            ``departments`` (consult).

    Returns:
        The new event and the audit record of the transition.

    Raises:
        IllegalTransition: the action is not allowed from the event's state, or an
            escalation would climb past the top of the handler chain.
        ValidationError: a required detail is missing, or time runs backwards.
    """
    rec: dict[str, Any] = {k: v for k, v in data.items() if v is not None}
    new, action = _transition(event, action, now, reason, data, rec)
    record = AuditRecord(event.id, new.version, now, actor, action, event.state, new.state, reason,
                         MappingProxyType(rec))
    return new, record


def advance(event: Event, action: Action | str, now: float, reason: str = "",
            data: Mapping[str, Any] | None = None) -> Event:
    """:func:`apply` without building the audit record: the same checks, the same new event.

    For callers that keep no log (a simulation run nobody will replay); everything that is
    recorded or served must go through :func:`apply`. Positional, with the details as one
    mapping (``data``, the keyword arguments of :func:`apply`): it is the simulator's
    innermost call.
    """
    return _transition(event, action, now, reason, data or _NO_DATA, None)[0]


_NO_DATA: Mapping[str, Any] = MappingProxyType({})


def _transition(event: Event, action: Action | str, now: float, reason: str, data: Mapping[str, Any],
                rec: dict[str, Any] | None) -> tuple[Event, Action]:
    """The checks and the new event of :func:`apply` (and the action, parsed); fills ``rec``
    with the audit record's details.

    Hot: the simulator runs it millions of times, hence module-level aliases of the enum
    members (a class attribute lookup on an Enum costs as much as the rest of a branch) and
    the new event written straight into its ``__dict__``.
    """
    if type(action) is not Action:
        try:
            action = Action(action)
        except ValueError:
            raise ValidationError("action", f"unknown action '{action}'; known: "
                                  + ", ".join(a.value for a in Action if a is not Action.REPORT)) from None
    old = event.__dict__
    target = _TABLE.get((action, old["state"]))
    if target is None:  # includes 'report', which only report() performs
        raise IllegalTransition(event.id, action.value, event.state.value, allowed_actions(event.state))
    if now < old["updated_at"]:
        raise ValidationError("now", f"time runs backwards for event {event.id}: {now} is before "
                              f"its last transition at {event.updated_at}")
    # dataclasses.replace without re-running __init__: Event has no __post_init__ and every
    # field is a plain value, so copying the field dict is equivalent and about twenty times
    # faster. The event is new; nothing else sees it until it is returned.
    new = object.__new__(Event)
    d = new.__dict__
    d.update(old)
    d["state"] = target
    d["version"] = old["version"] + 1
    d["updated_at"] = now
    if action is _SIGN:
        if old["signed_at"] is None:
            d["signed_at"] = now
    elif action is _ARRIVE:
        if old["on_scene_at"] is None:
            d["on_scene_at"] = now
    elif action is _DISPATCH or action is _REASSIGN:
        member = _require(data, "member", action)
        if action is _REASSIGN:
            if member == old["assignee"]:
                raise ValidationError("member", f"event {event.id} is already assigned to {member}")
            d["reassignments"] = old["reassignments"] + 1
        d["assignee"] = str(member)
        d["dispatched_at"] = now
        d["signed_at"] = None
        tier = data.get("tier")
        if tier is not None:
            if isinstance(tier, bool) or not isinstance(tier, int) or tier < old["tier"]:
                raise ValidationError("tier", f"must be an integer >= the event's tier "
                                      f"{event.tier}, got {tier!r}")
            d["tier"] = tier
    elif action is _RESOLVE:
        evidence = tuple(str(e) for e in data.get("evidence") or ())
        if rec is not None:
            rec["evidence"] = list(evidence)
        d["resolved_at"] = now
        d["result"] = str(data.get("result") or reason)
        if evidence:
            d["evidence"] = old["evidence"] + evidence
    elif action is _VERIFY or action is _WITHDRAW:
        d["closed_at"] = now
    elif action is _REQUEST_REINFORCEMENT:
        members = tuple(str(m) for m in _require(data, "members", action))
        if rec is not None:
            rec["members"] = list(members)
        d["reinforcements"] = old["reinforcements"] + members
        d["reinforcement_requested_at"] = old["reinforcement_requested_at"] or now
    elif action is _REINFORCE:
        d["reinforced_at"] = now
        if old["on_scene_at"] is None:
            d["on_scene_at"] = now
    elif action is _REOPEN:
        d.update(assignee=None, resolved_at=None, signed_at=None, dispatched_at=None)
    elif action is _ESCALATE:
        chain_len = int(_require(data, "chain_length", action))
        if old["tier"] + 1 >= chain_len:
            raise IllegalTransition(event.id, action.value, event.state.value,
                                    tuple(a for a in allowed_actions(event.state) if a != "escalate"))
        d.update(tier=old["tier"] + 1, escalations=old["escalations"] + 1, assignee=None,
                 signed_at=None, dispatched_at=None)
    elif action is _CONSULT:
        depts = data.get("departments") or ()
        if rec is not None:
            rec["departments"] = list(depts)
        d.update(assignee=None, signed_at=None, dispatched_at=None)
    elif action is _MERGE:
        into = str(_require(data, "into", action))
        if into == event.id:
            raise ValidationError("into", "an event cannot be merged into itself")
        d["merged_into"] = into
    return new, action


_TABLE: dict[tuple[Action, State], State] = {(a, s): t for a, table in TRANSITIONS.items() for s, t in table.items()}
(_DISPATCH, _REASSIGN, _SIGN, _ARRIVE, _REQUEST_REINFORCEMENT, _REINFORCE, _RESOLVE, _VERIFY, _REOPEN, _ESCALATE,
 _CONSULT, _MERGE, _WITHDRAW) = (
    Action.DISPATCH, Action.REASSIGN, Action.SIGN, Action.ARRIVE, Action.REQUEST_REINFORCEMENT, Action.REINFORCE,
    Action.RESOLVE, Action.VERIFY, Action.REOPEN, Action.ESCALATE, Action.CONSULT, Action.MERGE, Action.WITHDRAW)


def event_from_report(record: AuditRecord) -> Event:
    """Rebuild an event from its ``report`` audit record."""
    if record.action is not Action.REPORT:
        raise TwinError(f"record {record.event_id}#{record.seq} is '{record.action.value}', not a report")
    d = record.data
    return Event(id=record.event_id, scenario=d["scenario"], category=d["category"],
                 severity=d["severity"], source=d["source"], reported_at=record.at,
                 location=Location(**d["location"]), description=d.get("description") or "",
                 external_id=d.get("external_id"), updated_at=record.at,
                 evidence=tuple(str(e) for e in d.get("evidence") or ()))


def replay(records: Iterable[AuditRecord]) -> dict[str, Event]:
    """Rebuild every event from its audit records, in log order.

    Raises:
        TwinError: the log is inconsistent (a record out of sequence, or one that leads
            to a different state than it says).
    """
    events: dict[str, Event] = {}
    for rec in records:
        if rec.action is Action.REPORT:
            if rec.event_id in events:
                raise TwinError(f"event {rec.event_id} reported twice in the log")
            events[rec.event_id] = event_from_report(rec)
            continue
        current = events.get(rec.event_id)
        if current is None:
            raise TwinError(f"record {rec.event_id}#{rec.seq} precedes the event's report")
        if rec.seq != current.version + 1:
            raise TwinError(f"record {rec.event_id}#{rec.seq} out of sequence "
                            f"(event is at version {current.version})")
        new, check = apply(current, rec.action, now=rec.at, actor=rec.actor, reason=rec.reason,
                           **dict(rec.data))
        if check.to_state is not rec.to_state:
            raise TwinError(f"record {rec.event_id}#{rec.seq} says '{rec.to_state.value}' but "
                            f"replay reaches '{check.to_state.value}'")
        events[rec.event_id] = new
    return events
