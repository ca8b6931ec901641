"""Simulated handlers: what a member does with an assignment, and how long each step takes.

The same scripts run in the what-if simulator (SimPy supplies the waits) and in the live
twin's synthetic feed (:class:`actors.feed.PatrolTeams` on the twin's clock), drawing every
delay from one :class:`Delays` model, so a what-if's handlers behave as the live demo's do.

A script is a generator. It yields a number of seconds to wait, an :class:`Act` to perform,
or :data:`LOOK`; the runner sends back the event after an act (or the event as it is, for a
look), or ``None`` when the member no longer holds it (reassigned, escalated, merged ...),
and the script then ends. An act the event's state does not allow (``arrive`` when a
reinforcement got there first) is skipped, and the runner sends the event as it is.

The handler (:func:`handle`): signs (签收) after a human delay; a grid worker at the first
tier *reminds* the party, who self-corrects with some probability, else the case climbs to
the brigade; anyone else travels, arrives, handles the case, then resolves it, escalates it
(below the top tier, with probability ``1 - resolve_p``) or, at the top with departments to
consult, asks for a joint plan (会商); a resolved case is verified (核销) after a delay. A
reinforcement (:func:`reinforce`) travels and joins; it stays until the case is resolved.
The brain's side — deadlines, reassignment, escalation, reinforcement requests — is the
dispatch desk's (:class:`twin.desk.Desk`), not the script's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Mapping
from types import MappingProxyType
from typing import Any, Protocol

from scenarios.model import ResponseParams
from scenarios.rng import Draws
from twin.catalog import ScenarioSpec
from twin.staff import Member, Role
from twin.workflow import Action, State

_NO_DATA: Mapping[str, Any] = MappingProxyType({})


class Act:
    """An action a script asks for (read-only by convention: the simulator builds one per
    step, and a frozen dataclass costs several times as much).

    Args:
        action: The action.
        data: Its details.
        reason: Why, in words.
        actor: Who acts (default: the member).
        own: Only while the member holds the event (``False`` for the verifier and the
            command centre).
        note: A tag for the runner's bookkeeping (``self_corrected``).
    """

    __slots__ = ("action", "actor", "data", "note", "own", "reason")

    def __init__(self, action: Action, data: Mapping[str, Any] = _NO_DATA, reason: str = "",
                 actor: str | None = None, own: bool = True, note: str = "") -> None:
        self.action, self.data, self.reason, self.actor, self.own, self.note = action, data, reason, actor, own, note

    def __repr__(self) -> str:
        return f"Act({self.action.value!r}, {dict(self.data)!r}, actor={self.actor!r}, own={self.own})"


_GRID_WORKER = Role.GRID_WORKER
_SIGN, _ARRIVE, _REINFORCE = Act(Action.SIGN), Act(Action.ARRIVE), Act(Action.REINFORCE)
_VERIFY = Act(Action.VERIFY, actor="verifier", own=False)
_RESOLVED = Act(Action.RESOLVE, MappingProxyType({"result": "handled on site"}))
_CORRECTED = Act(Action.RESOLVE, MappingProxyType({"result": "self-corrected after a reminder"}),
                 note="self_corrected")


class _Look:
    """Ask for the event as it is now (see the module doc)."""

    __slots__ = ()


LOOK = _Look()


class Seen(Protocol):
    """What a script looks at of an event (a :class:`twin.workflow.Event` has it)."""

    @property
    def state(self) -> State: ...

    @property
    def tier(self) -> int: ...


#: What a script yields: seconds to wait, an act, or a look; it is sent the event or ``None``.
Script = Generator["float | Act | _Look", "Seen | None", None]


class Delays(Protocol):
    """Where a simulated handler's delays and choices come from."""

    def sign_s(self, event_id: str, member: str) -> float:
        """Dispatch to signature, seconds."""
        ...

    def travel_s(self, estimate_s: float, event_id: str, member: str) -> float:
        """A trip the road graph estimates at ``estimate_s``; ``inf``: never arrives."""
        ...

    def handling_s(self, spec: ScenarioSpec, event_id: str, member: str) -> float:
        """Time on scene, seconds."""
        ...

    def verify_s(self, event_id: str) -> float:
        """Resolution to verification (核销), seconds."""
        ...

    def self_corrects(self, p: float, event_id: str) -> bool:
        """Whether the party corrects the problem after a grid worker's reminder."""
        ...

    def resolves(self, event_id: str, member: str) -> bool:
        """Whether a handler below the top tier resolves the case on site."""
        ...

    def consults(self, event_id: str) -> bool:
        """Whether a top-tier case with departments to consult needs a joint plan."""
        ...


class DelayModel:
    """Delays drawn from :class:`~scenarios.model.ResponseParams` (each an assumption; see
    ``scenarios/xiaohe/README.md``): exponential signing, lognormal noise around the road
    graph's travel time, lognormal (cv 0.8) or exponential handling, exponential
    verification.

    Args:
        params: The behaviour parameters.
        draws: The random stream.
    """

    def __init__(self, params: ResponseParams, draws: Draws, *, hour: Callable[[], int] | None = None,
                 cars: frozenset[str] = frozenset()) -> None:
        self.p, self.r = params, draws
        # Peak-hour traffic slows the members in ``cars`` by the hour's factor (``hour()``: the local hour now).
        self._congestion = (params.car_congestion, hour) if params.car_congestion and hour is not None else None
        self._cars = cars
        s2 = math.log(1 + params.travel_cv ** 2)
        self._travel = (-s2 / 2, math.sqrt(s2))
        h2 = math.log(1 + 0.8 ** 2)
        self._handling = (-h2 / 2, math.sqrt(h2))

    def sign_s(self, event_id: str, member: str) -> float:
        return self.r.exponential(self.p.sign_mean_s) if self.p.sign_mean_s > 0 else 0.0

    def travel_s(self, estimate_s: float, event_id: str, member: str) -> float:
        if self.p.fixed_travel_s is not None:
            return self.p.fixed_travel_s
        if self._congestion is not None and member in self._cars:
            factors, hour = self._congestion
            estimate_s *= factors[hour()]
        if self.p.travel_cv <= 0:
            return estimate_s
        return estimate_s * self.r.lognormal(*self._travel)

    def handling_s(self, spec: ScenarioSpec, event_id: str, member: str) -> float:
        mean = spec.handling_min * 60.0
        if self.p.handling == "exponential":
            return self.r.exponential(mean)
        return mean * self.r.lognormal(*self._handling)

    def verify_s(self, event_id: str) -> float:
        return self.r.exponential(self.p.verify_mean_s) if self.p.verify_mean_s > 0 else 0.0

    def self_corrects(self, p: float, event_id: str) -> bool:
        return self.r.random() < p

    def resolves(self, event_id: str, member: str) -> bool:
        return self.r.random() < self.p.resolve_p

    def consults(self, event_id: str) -> bool:
        return self.r.random() > self.p.resolve_p


def handle(member: Member, event_id: str, spec: ScenarioSpec, *, tier: int,
           travel_estimate_s: float | Callable[[], float],
           delays: Delays, params: ResponseParams, self_correct_p: float, resume: int = 0,
           on_travel: Callable[[float], None] | None = None) -> Script:
    """The handler's part of an assignment (see the module doc).

    Args:
        member: Who.
        event_id: The event.
        spec: Its catalog scenario.
        tier: The tier they serve at.
        travel_estimate_s: The road graph's travel time from where they are now (or how to
            work it out when the trip begins).
        delays: Where delays come from.
        params: Behaviour parameters (reminder and consultation durations).
        self_correct_p: Probability the party self-corrects after a reminder.
        resume: Where to pick up: 0 a fresh dispatch (sign first), 1 signed, 2 on scene
            (a what-if fork carrying on from the live state).
        on_travel: Told the drawn trip duration (the simulator's records).
    """
    mid = member.id
    if resume == 0:
        wait = delays.sign_s(event_id, mid)
        if wait > 0:
            yield wait
        if (yield _SIGN) is None:
            return
    resolution = _RESOLVED
    if resume < 2:
        if member.role is _GRID_WORKER and tier == 0 and spec.self_correct_p > 0:
            yield params.reminder_s
            if not delays.self_corrects(self_correct_p, event_id):
                yield Act(Action.ESCALATE, reason="not corrected after a reminder")
                return
            resolution = _CORRECTED
        else:
            estimate = travel_estimate_s() if callable(travel_estimate_s) else travel_estimate_s
            trip = delays.travel_s(estimate, event_id, mid)
            if on_travel is not None:
                on_travel(trip)
            if trip == math.inf:
                return  # never arrives: the brain's deadlines take over
            if trip > 0:
                yield trip
            if (yield _ARRIVE) is None:
                return
    if resolution is _RESOLVED:  # on site
        wait = delays.handling_s(spec, event_id, mid)
        if wait > 0:
            yield wait
        top = tier + 1 >= len(spec.handler_chain)  # (a handler's tier does not change while they hold it)
        if not (top or delays.resolves(event_id, mid)):
            yield Act(Action.ESCALATE, reason="could not be resolved at this tier")
            return
        # A consultation needs the case out of reinforcement first (the draw is made either
        # way, so the stream does not depend on the state).
        if top and spec.joint_departments and delays.consults(event_id):
            e = yield LOOK
            if e is None:
                return
            if e.state is not State.REINFORCEMENT_REQUESTED:
                if (yield Act(Action.CONSULT, {"departments": list(spec.joint_departments)},
                              reason="needs a joint plan")) is None:
                    return
                if params.consult_s > 0:
                    yield params.consult_s
                yield Act(Action.DISPATCH, reason="the joint plan is ready", actor="brain", own=False)
                return
    if (yield resolution) is not None:  # resolved: verified (核销) after a delay
        wait = delays.verify_s(event_id)
        if wait > 0:
            yield wait
        yield _VERIFY


def verify(event_id: str, delays: Delays) -> Script:
    """The verification (核销) of a resolved case, after a delay (not a member's act)."""
    wait = delays.verify_s(event_id)
    if wait > 0:
        yield wait
    yield _VERIFY


def reinforce(member: Member, event_id: str, *, travel_estimate_s: Callable[[], float], delays: Delays,
              trip_s: float | None = None) -> Script:
    """A reinforcement member's part: travel to the event and join (they stay until the case
    is resolved). ``trip_s``: what is left of a trip already under way (a fork)."""
    trip = delays.travel_s(travel_estimate_s(), event_id, member.id) if trip_s is None else trip_s
    if trip == math.inf:
        return
    if trip > 0:
        yield trip
    yield _REINFORCE
