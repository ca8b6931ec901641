"""Dispatch, escalation, reinforcement and duplicate merging: pure functions of the state.

Both engines call these with their own ``now``: the live twin with the wall clock, the
simulator with SimPy's. Nothing here reads a clock or keeps state between calls.

Dispatch (the road is the smallest unit): the event's handler role is its tier in the
scenario's handler chain. Among on-duty, free members of that role, prefer those
responsible for the spot (a grid worker's own grid; the area squad for the brigade and
enforcement), then anyone of the role in other areas; within a preference level the
shortest travel time wins, ties broken by member id. If nobody of the role is on duty,
the next tier takes it; if everybody on duty is busy, the event waits (queued).

Timers (the 1/3/5-minute rule): not signed ``respond_s`` after dispatch → reassign, then
escalate; nobody on scene ``on_scene_s`` after the report → send reinforcement;
reinforcement not on scene ``reinforce_s`` after the report → supervision alert (督办).
A deadline is *due* at its instant: at exactly 60 s an unsigned dispatch is overdue,
while a signature recorded at 60 s still meets the target (engines order same-instant
actions before timers).
"""

from __future__ import annotations

import math
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from types import MappingProxyType
from typing import Any

import numpy as np

from twin.catalog import ScenarioSpec
from twin.district import District
from twin.geo import TravelMode
from twin.staff import Mode, Role
from twin.workflow import TERMINAL, Action, Event, State


@dataclass(frozen=True)
class Targets:
    """Response targets for one event, seconds.

    Args:
        respond_s: From dispatch to signing.
        on_scene_s: From report to the first handler on scene.
        reinforce_s: From report to reinforcement on scene.
    """

    respond_s: float
    on_scene_s: float
    reinforce_s: float


#: The case study's standard: 1 minute to respond, 3 on scene, 5 for reinforcement. Wartime
#: targets are capped at it, and the headline KPIs (:mod:`twin.kpis`) count against it.
STANDARD_TARGETS = Targets(60.0, 180.0, 300.0)


#: Module-level aliases of enum members read on hot paths (a class attribute lookup on an Enum
#: costs ~0.1 us).
_WARTIME, _GRID_WORKER = Mode.WARTIME, Role.GRID_WORKER

def targets_for(spec: ScenarioSpec, mode: Mode = Mode.PEACETIME) -> Targets:
    """The targets of a scenario; in wartime no target is slacker than 60/180/300 s."""
    t = Targets(spec.respond_s, spec.on_scene_s, spec.reinforce_s)
    if mode is Mode.WARTIME:
        w = STANDARD_TARGETS
        t = Targets(min(t.respond_s, w.respond_s), min(t.on_scene_s, w.on_scene_s),
                    min(t.reinforce_s, w.reinforce_s))
    return t


@dataclass(frozen=True)
class MemberState:
    """What dispatch needs to know of a member right now.

    Args:
        node: Routing node where the member is.
        busy: Whether they are handling another event.
    """

    node: int
    busy: bool = False


@dataclass(frozen=True)
class Assignment:
    """A dispatch decision.

    Args:
        member_id: Who goes.
        role: Their role.
        tier: Tier of the handler chain they serve at (may exceed the event's tier when
            nobody of the event's role is on duty).
        travel_s: Estimated travel time to the event, seconds.
        reason: Why this member (``own grid``, ``area squad``, ``other area``, ...).
    """

    member_id: str
    role: Role
    tier: int
    travel_s: float
    reason: str


def _first_tier(event: Event, chain: Sequence[Role], mode: Mode) -> int:
    """The tier of the chain a dispatch starts at."""
    # Wartime (平战结合): emergencies skip the grid worker's reminder and go straight to the
    # brigade, the emergency force, when the chain has one.
    if mode is _WARTIME and event.tier == 0 and chain[0] is _GRID_WORKER and len(chain) > 1:
        return 1
    return event.tier


def may_dispatch(event: Event, *, spec: ScenarioSpec, mode: Mode, free_roles: Container[Role],
                 on_duty_roles: Container[Role]) -> bool:
    """Whether :func:`dispatch` (with nobody excluded) could find anyone for ``event``, given
    the roles with a free member on duty and the roles with anyone on duty: the tiers it
    walks, without travel times. ``False`` means it would return ``None``; a long queue of
    waiting work is passed over with this test when few members are free."""
    chain = spec.handler_chain
    for role in chain[_first_tier(event, chain, mode):]:
        if role in free_roles:
            return True
        if role in on_duty_roles:
            return False  # dispatch stops at the first tier with anyone on duty
    return False


def waiting_for(event: Event, *, spec: ScenarioSpec, mode: Mode, on_duty_roles: Container[Role]) -> Role | None:
    """The role a waiting ``event`` waits for: the first tier :func:`dispatch` would stop at
    (the first with anyone on duty), e.g. the brigade for a grid worker's item at night.
    ``None``: nobody of its chain is on duty."""
    chain = spec.handler_chain
    for role in chain[_first_tier(event, chain, mode):]:
        if role in on_duty_roles:
            return role
    return None


def dispatch(
    event: Event,
    *,
    spec: ScenarioSpec,
    district: District,
    members: Mapping[str, MemberState],
    now: float,
    mode: Mode = Mode.PEACETIME,
    exclude: Iterable[str] = (),
) -> Assignment | None:
    """Choose who handles ``event`` now.

    Args:
        event: The event (its ``tier`` says which role of the chain is due).
        spec: Its catalog scenario.
        district: The district.
        members: Current position and busy flag of each member; members absent here are
            treated as unavailable.
        now: POSIX seconds.
        mode: Peacetime or wartime.
        exclude: Members not to choose (e.g. the one who failed to sign).

    Returns:
        The assignment, or ``None`` if everybody who could take it is busy (queue it).
    """
    excluded = set(exclude) if exclude else ()
    loc = event.location
    dst = loc.node
    duty = district.roster.on_duty_ids(now)
    chain = spec.handler_chain
    start = _first_tier(event, chain, mode)
    rows: dict[TravelMode, np.ndarray] = {}  # travel times to the spot, by travel mode
    for tier in range(start, len(chain)):
        role = chain[tier]
        anyone_on_duty = False
        # Preference levels (own grid / area squad, same area, other areas), walked lazily:
        # most events find a free member at the first level and look no further.
        for label, group in district.dispatch_levels(role, loc.grid_id, loc.area_id):
            best_t, best_id = math.inf, ""
            for m in group:
                mid = m.id
                if mid not in duty or mid in excluded:
                    continue
                st = members.get(mid)
                if st is None:
                    continue
                anyone_on_duty = True
                if st.busy:
                    continue
                row = rows.get(m.travel_mode)
                if row is None:
                    row = rows[m.travel_mode] = district.roads.travel(m.travel_mode).to_node(dst)
                t = row.item(st.node)
                if t == math.inf:  # the road data does not connect them: its estimate
                    t = district.roads.travel_s(m.travel_mode, st.node, dst)
                if not best_id or t < best_t or (t == best_t and mid < best_id):
                    best_t, best_id = t, mid
            if best_id:
                why = label if tier == event.tier else f"{label}; no {chain[event.tier].value} on duty"
                return Assignment(best_id, role, tier, best_t, why)
        if anyone_on_duty:
            return None  # everybody who could go is busy: the event waits
    return None


#: Who may reinforce: the brigade first, then enforcement (the handler chain of a reinforcement).
REINFORCE_CHAIN = (Role.CO_GOVERNANCE, Role.ENFORCEMENT)


def dispatch_reinforcement(
    event: Event,
    *,
    spec: ScenarioSpec,
    district: District,
    members: Mapping[str, MemberState],
    now: float,
    exclude: Iterable[str] = (),
) -> Assignment | None:
    """Choose who reinforces ``event`` (the 180-second rule): the nearest free member of the
    brigade responsible for the spot, else of enforcement, by the same preference levels as
    :func:`dispatch`; ``None`` if nobody is free."""
    if spec.handler_chain != REINFORCE_CHAIN:
        spec = replace(spec, handler_chain=REINFORCE_CHAIN)
    return dispatch(replace(event, tier=0) if event.tier else event, spec=spec, district=district,
                    members=members, now=now, exclude=exclude)


def dispatch_by_run_card(
    event: Event,
    *,
    run_cards: Mapping[str, Sequence[str]],
    district: District,
    members: Mapping[str, MemberState],
    now: float,
    exclude: Iterable[str] = (),
) -> Assignment | None:
    """Dispatch by a fixed preference list per grid (a CAD "run card" / response plan).

    The first member on the event's grid's card who is on duty, present in ``members`` and
    free goes, whatever the travel time. This is the dispatch rule of the hypercube queueing
    model (Larson 1974), and how many command centres pre-plan responses.

    Args:
        event: The event.
        run_cards: For each grid id, the ordered member ids to try.
        district: The district (for roles and the roster).
        members: Current position and busy flag of each member.
        now: POSIX seconds.
        exclude: Members not to choose.

    Returns:
        The assignment (tier unchanged), or ``None`` if nobody on the card is free.
    """
    excluded = set(exclude)
    duty = district.roster.on_duty_ids(now)
    for rank, mid in enumerate(run_cards.get(event.location.grid_id, ())):
        st = members.get(mid)
        if st is None or st.busy or mid in excluded or mid not in duty:
            continue
        member = district.roster.member(mid)
        t = district.roads.travel_s(member.travel_mode, st.node, event.location.node)
        return Assignment(mid, member.role, event.tier, t,
                          "run card, first choice" if rank == 0 else f"run card, choice {rank + 1}")
    return None


class Timer(str, Enum):
    """Deadlines an open event can miss."""

    SIGN = "sign"            # not signed respond_s after dispatch
    ARRIVE = "arrive"        # nobody on scene on_scene_s after the report
    REINFORCE = "reinforce"  # reinforcement not on scene reinforce_s after the report


_T_SIGN, _T_ARRIVE, _T_REINFORCE = Timer.SIGN, Timer.ARRIVE, Timer.REINFORCE
_DISPATCHED = State.DISPATCHED
#: States with no deadline: closed, merged, false alarms, resolved (awaiting verification)
#: and in consultation.
_NO_DEADLINES = frozenset({State.CLOSED, State.MERGED, State.FALSE_ALARM, State.RESOLVED, State.CONSULTATION})


def deadlines(event: Event, targets: Targets) -> list[tuple[float, Timer]]:
    """The deadlines still pending for ``event``, earliest first (ties: sign, arrive, reinforce
    in name order). Hot: the dispatch desk asks after every transition."""
    st = event.state
    if st in _NO_DEADLINES:
        return []
    out: list[tuple[float, Timer]] = []
    if st is _DISPATCHED and event.dispatched_at is not None:
        out.append((event.dispatched_at + targets.respond_s, _T_SIGN))
    if event.reinforcement_requested_at is None:
        if event.on_scene_at is None:
            out.append((event.reported_at + targets.on_scene_s, _T_ARRIVE))
    elif event.reinforced_at is None:
        out.append((event.reported_at + targets.reinforce_s, _T_REINFORCE))
    if len(out) > 1:
        out.sort()  # Timer is a str enum: ties order by name, as the values do
    return out


def pending(event: Event, targets: Targets, timer: Timer, due_at: float) -> bool:
    """Whether ``(due_at, timer)`` is one of :func:`deadlines` of ``event``: the same rules,
    asked of one timer without building the list (hot: the simulator asks it of every
    deadline that falls due, and nearly all of them are stale)."""
    st = event.state
    if st in _NO_DEADLINES:
        return False
    if timer is _T_SIGN:
        return st is _DISPATCHED and event.dispatched_at is not None \
            and event.dispatched_at + targets.respond_s == due_at
    if event.reinforcement_requested_at is None:
        return timer is _T_ARRIVE and event.on_scene_at is None and event.reported_at + targets.on_scene_s == due_at
    return timer is _T_REINFORCE and event.reinforced_at is None and event.reported_at + targets.reinforce_s == due_at


def due(event: Event, targets: Targets, now: float) -> list[Timer]:
    """The deadlines of ``event`` that have passed at ``now`` (a deadline is due at its instant)."""
    return [timer for at, timer in deadlines(event, targets) if at <= now]


class Remedy(str, Enum):
    """What to do about a missed deadline."""

    REASSIGN = "reassign"
    ESCALATE = "escalate"
    REINFORCE = "request_reinforcement"
    SUPERVISE = "supervise"


def remedy(event: Event, timer: Timer, *, spec: ScenarioSpec, max_reassign: int = 1) -> Remedy:
    """The action for a missed deadline.

    A dispatch nobody signs is first reassigned to another member of the same tier (up to
    ``max_reassign`` times), then escalated up the handler chain; at the top of the chain
    the command centre is alerted (督办). A late arrival gets reinforcement; late
    reinforcement gets a supervision alert.
    """
    if timer is Timer.SIGN:
        if event.reassignments < max_reassign:
            return Remedy.REASSIGN
        if event.tier + 1 < len(spec.handler_chain):
            return Remedy.ESCALATE
        return Remedy.SUPERVISE
    if timer is Timer.ARRIVE:
        return Remedy.REINFORCE
    return Remedy.SUPERVISE


class DuplicateIndex:
    """Finds an open event that a new report duplicates (same scenario, near in space and time).

    Open events are hashed into square cells per scenario, so a lookup inspects only the
    few events in neighbouring cells.

    Args:
        cell_m: Cell size, metres (at least the largest merge radius is best).
    """

    def __init__(self, cell_m: float = 200.0) -> None:
        self.cell_m = cell_m
        self._cells: dict[tuple[str, int, int], dict[str, Event]] = {}
        self._where: dict[str, tuple[str, int, int]] = {}

    def _key(self, event: Event) -> tuple[str, int, int]:
        return (event.scenario, math.floor(event.location.x / self.cell_m),
                math.floor(event.location.y / self.cell_m))

    def __len__(self) -> int:
        return len(self._where)

    def add(self, event: Event) -> None:
        """Index an open event (re-adding updates it)."""
        self.discard(event.id)
        key = self._key(event)
        self._cells.setdefault(key, {})[event.id] = event
        self._where[event.id] = key

    def discard(self, event_id: str) -> None:
        """Forget an event (closed, merged, ...)."""
        key = self._where.pop(event_id, None)
        if key is not None:
            cell = self._cells[key]
            cell.pop(event_id, None)
            if not cell:
                del self._cells[key]

    def find(self, event: Event, spec: ScenarioSpec) -> Event | None:
        """The earliest open event that ``event`` duplicates, or ``None``.

        A duplicate has the same scenario, was reported no later than ``event`` and at most
        ``spec.merge_window_s`` before it, and lies within ``spec.merge_radius_m``.
        """
        if spec.merge_radius_m <= 0 or spec.merge_window_s <= 0:
            return None
        scen, cx, cy = self._key(event)
        reach = max(1, math.ceil(spec.merge_radius_m / self.cell_m))
        best: Event | None = None
        cells, eid, at, window, radius = self._cells, event.id, event.reported_at, spec.merge_window_s, spec.merge_radius_m
        ex, ey = event.location.x, event.location.y
        for dx in range(-reach, reach + 1):
            for dy in range(-reach, reach + 1):
                cell = cells.get((scen, cx + dx, cy + dy))
                if cell is None:
                    continue
                for other in cell.values():
                    if other.id == eid or other.state in TERMINAL:
                        continue
                    age = at - other.reported_at
                    if not (0 <= age <= window):
                        continue
                    if math.hypot(other.location.x - ex, other.location.y - ey) > radius:
                        continue
                    if best is None or (other.reported_at, other.id) < (best.reported_at, best.id):
                        best = other
        return best


@dataclass(frozen=True)
class Step:
    """One transition the brain is to apply, as a planner decided it.

    Args:
        action: The action. ``dispatch`` without a ``member`` means "dispatch by the policy
            now, or queue the event if nobody is free".
        reason: Why, in words (kept in the audit record).
        data: The action's details (``member``, ``members``, ``travel_s``, ...).
    """

    action: Action
    reason: str = ""
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


#: What a supervision alert (督办) says for each missed deadline.
SUPERVISION_REASONS = MappingProxyType({
    Timer.SIGN: "督办: not signed in time",
    Timer.ARRIVE: "督办: nobody on scene and no reinforcement free",
    Timer.REINFORCE: "督办: reinforcement not on scene in time",
})


def plan_deadline(event: Event, timer: Timer, *, spec: ScenarioSpec, district: District,
                  members: Mapping[str, MemberState], now: float, mode: Mode = Mode.PEACETIME,
                  max_reassign: int = 1, run_cards: Mapping[str, Sequence[str]] | None = None) -> list[Step]:
    """What the brain does about a missed deadline, as the steps to apply in order.

    - **Not signed in time** (:attr:`Timer.SIGN`): reassign to the nearest free member *of
      the same tier* (at most ``max_reassign`` times per event); if the policy finds nobody
      there (or only someone of a higher tier), escalate to the next tier and dispatch
      there (or queue); at the top of the chain, supervise (督办) — the late member keeps
      the event and may still sign.
    - **Nobody on scene in time** (:attr:`Timer.ARRIVE`): request reinforcement from the
      nearest free brigade (else enforcement) member, if the event has a handler on it
      (dispatched, signed or on scene); otherwise — it is waiting, or nobody is free —
      supervise.
    - **Reinforcement late** (:attr:`Timer.REINFORCE`): supervise.

    Args:
        event: The event as it is at ``now`` (the deadline is due).
        timer: The missed deadline.
        spec: Its catalog scenario.
        district: The district.
        members: Where each member is and whether busy.
        now: POSIX seconds.
        mode: Peacetime or wartime.
        max_reassign: Reassignments before escalating (:class:`twin.district.PolicySettings`).
        run_cards: Dispatch by these fixed preference lists instead of the nearest member.

    Returns:
        The steps (a ``dispatch`` step without a member follows an escalation).
    """
    what = remedy(event, timer, spec=spec, max_reassign=max_reassign)
    if what is Remedy.REASSIGN:
        exclude = [event.assignee] if event.assignee else []
        if run_cards is not None:
            a = dispatch_by_run_card(event, run_cards=run_cards, district=district, members=members, now=now,
                                     exclude=exclude)
        else:
            a = dispatch(event, spec=spec, district=district, members=members, now=now, mode=mode, exclude=exclude)
        if a is not None and a.tier == event.tier:
            return [Step(Action.REASSIGN, "not signed in time",
                         {"member": a.member_id, "travel_s": round(a.travel_s, 1)})]
        what = Remedy.ESCALATE if event.tier + 1 < len(spec.handler_chain) else Remedy.SUPERVISE
    if what is Remedy.ESCALATE:
        return [Step(Action.ESCALATE, "not signed in time", {"chain_length": len(spec.handler_chain)}),
                Step(Action.DISPATCH)]
    if what is Remedy.REINFORCE and event.state in (State.DISPATCHED, State.SIGNED, State.ON_SCENE):
        a = dispatch_reinforcement(event, spec=spec, district=district, members=members, now=now,
                                   exclude=[event.assignee] if event.assignee else [])
        if a is not None:
            return [Step(Action.REQUEST_REINFORCEMENT, "nobody on scene in time", {"members": [a.member_id]})]
    return [Step(Action.SUPERVISE, SUPERVISION_REASONS[timer])]


def plan_handover(event: Event, outgoing: str, *, spec: ScenarioSpec, district: District,
                  members: Mapping[str, MemberState], now: float, mode: Mode = Mode.PEACETIME,
                  run_cards: Mapping[str, Sequence[str]] | None = None) -> Step | None:
    """Who takes over an unsigned dispatch whose member goes off duty at a shift change
    (:meth:`twin.staff.Roster.handover_reassignments` says which): the nearest free member of
    the same tier on the incoming shift; ``None`` if there is nobody (the outgoing member
    keeps it, as overtime)."""
    if run_cards is not None:
        a = dispatch_by_run_card(event, run_cards=run_cards, district=district, members=members, now=now,
                                 exclude=[outgoing])
    else:
        a = dispatch(event, spec=spec, district=district, members=members, now=now, mode=mode, exclude=[outgoing])
    if a is None or a.tier != event.tier:
        return None
    return Step(Action.REASSIGN, "shift handover", {"member": a.member_id, "travel_s": round(a.travel_s, 1)})
