"""What-if forks of the live twin: the next hours from the live state, as is and with a change.

    >>> from scenarios.whatif import fork
    >>> out = fork(district, brain.snapshot(), hours=4, change={"staff.co_governance.count": 60})
    >>> out["difference"]["on_scene_within_180s"]        # proposed minus as is (mean)

:func:`fork` takes a snapshot of the live twin (:meth:`actors.live.LiveTwin.snapshot`: its
open events, where every member stands, who holds what) and runs the SimPy engine from it
(:class:`scenarios.model.StartState`, :meth:`scenarios.engine.Engine.seed_state`) for the
next ``hours``, twice: *as is* (the live district in the live mode) and *with the change*
(scenario overrides in the dotted form of :func:`scenarios.loader.apply_overrides`, and/or
``{"mode": "wartime"}``). Both arms use the same seeds (common random numbers): the same
incidents arrive in both, so the difference is the change's, not the dice's; the result
gives the paired difference with its own 95% interval.

The run's clock starts at the snapshot's ``now``, so shifts and the roster line up with the
live street; the demand model's hour-of-day and day-of-week profiles are lined up with it
too (:class:`WeekAligned`).

Members of a changed district: a staff count change rebuilds the district with
``load_cached(name, overrides)``. The builder is seeded, but it numbers the brigade and
enforcement *across areas*, so when their count changes most ids move to another person
(``CG026`` is slot 0 of area A3 with 50 members, slot 18 of A2 with 60). A live member is
therefore matched to the changed district's member with the same role, area, grids, shift
slot, post and travel mode (the same person), whatever their id; grid workers keep their
ids anyway (the k-th worker always gets the same grid). When a count grows, every live
member is found and the new ones start free at their posts; when it shrinks, each area
loses its highest shift slots: those members are dropped (listed under ``members``) and an
event one of them held goes back to the queue at its tier. The live roster's shift swaps
follow the members into the changed district (:func:`carry_swaps`). Overrides that change
the district's geometry (roads, regions, the seed that places them, the catalog) are
refused: the open events' places would not exist in it.

Pass the live twin's own district (``Brain.district``, which carries the shift swaps), not
the shared one it was built from.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from scenarios.engine import run_once
from scenarios.model import Demand, Incident, ResponseParams, RunResult, StartState
from scenarios.results import estimate, is_share, kpis, prediction_interval, to_jsonable
from scenarios.rng import child_seed
from twin.desk import Firsts
from twin.district import District
from twin.errors import ValidationError
from twin.policy import MemberState
from twin.staff import DAY_S, HANDLER_LADDER, Member, Mode
from twin.workflow import Event, State

MIN_HOURS = 1.0 / 60.0  # one minute: a shorter fork measures nothing
MAX_HOURS = 168.0
MIN_REPLICATIONS, MAX_REPLICATIONS = 2, 100

#: The figures a fork reports, each an estimate over replications (see :func:`fork_kpis`).
FORK_KPIS = (
    "events", "responded_within_60s", "on_scene_within_180s", "reinforced_within_300s", "within_targets",
    "closed_share", "wait_mean_s", "wait_p90_s", "on_scene_p90_s", "escalations", "supervision_alerts",
    "abandoned", "max_backlog", "backlog_end", "open_end", "carried_closed_share",
    *(f"utilisation_{r.value}" for r in HANDLER_LADDER),
)

#: First keys of overrides that move the district's geometry (refused: see the module doc).
_GEOMETRY_KEYS = ("geometry", "regions", "seed", "timezone")


class WeekAligned:
    """A demand model seen from a run that starts ``offset_s`` after a local Monday 00:00.

    :class:`scenarios.demand.DemandModel` takes its run to start on a Monday at midnight
    (hour-of-day and day-of-week profiles). A fork starts whenever the snapshot was taken:
    this wrapper asks the model for the same wall-clock window of its week and moves the
    incidents back onto the run's clock. The model wants one day per call, so a window
    across midnight is asked for in two pieces; a model day asked for twice draws its
    Poisson counts afresh for each piece, which keeps the arrivals a Poisson process (the
    pieces are disjoint).

    The first window also looks back ``lookback_s`` before the run: incidents that began
    before the fork and are still unnoticed are part of the street the fork starts from
    (their onsets are negative; the engine reports those whose discovery falls after the
    start, which is their distribution given that nobody had reported them yet). Without
    them a fork undercounts the reports of its first hours (patrols and citizens report
    problems hours after they begin).

    Args:
        inner: The demand model.
        offset_s: Seconds from the Monday 00:00 before the run's start to the start.
        lookback_s: How far back the first window reaches.
    """

    def __init__(self, inner: Demand, offset_s: float, lookback_s: float = DAY_S) -> None:
        self.inner = inner
        self.offset_s = float(offset_s)
        self.lookback_s = float(lookback_s)
        self._looked_back = lookback_s <= 0

    def incidents(self, start_s: float, end_s: float) -> list[Incident]:
        """Incidents with onset in ``[start_s, end_s)`` of the run's clock, in onset order
        (and, on the first call, the latent ones of the look-back)."""
        if not self._looked_back:
            self._looked_back = True
            return self._window(min(start_s, 0.0) - self.lookback_s, min(start_s, 0.0)) + self._window(start_s, end_s)
        return self._window(start_s, end_s)

    def _window(self, start_s: float, end_s: float) -> list[Incident]:
        off, out = self.offset_s, []
        a, b = start_s + off, end_s + off
        while a < b:
            cut = min(b, (math.floor(a / DAY_S) + 1) * DAY_S)
            out += [replace(inc, t_s=inc.t_s - off) for inc in self.inner.incidents(a, cut)]
            a = cut
        return out

    def feedback(self, incident: Incident, outcome: str, now_s: float) -> None:
        """Passed on to the model (its clock: ``now_s`` + offset)."""
        self.inner.feedback(incident, outcome, now_s + self.offset_s)

    def self_correct_p(self, incident: Incident, base_p: float) -> float:
        """Passed on to the model."""
        return self.inner.self_correct_p(incident, base_p)


def week_offset(now: float, district: District) -> float:
    """Seconds from the local Monday 00:00 at or before POSIX ``now`` to ``now``."""
    local = datetime.fromtimestamp(now, district.roster.tz)
    monday = (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    return now - monday.timestamp()


def fork_kpis(run: RunResult) -> dict[str, float]:
    """The figures of one forked run (:data:`FORK_KPIS`), over every event it handled: the
    ones carried over from the live state and the new ones.

    ``backlog_end``: events waiting for a handler when the run ends; ``open_end``: events
    still open (waiting, in hand or in consultation); ``carried_closed_share``: of the
    events open at the fork, the share closed by the end; ``utilisation_<role>``: busy
    share of on-duty time of the three handling roles. Waits and the 1/3/5-minute shares
    of carried events count from their report and last dispatch in the live twin.
    """
    first = min((r.reported_s for r in run.records), default=0.0)
    k = kpis(run, warmup_days=min(0.0, first / DAY_S))
    out = {name: float(k[name]) for name in FORK_KPIS if name in k}
    out["backlog_end"] = float(run.backlog)
    out["open_end"] = float(sum(r.outcome == "open" for r in run.records))
    carried = [r.outcome == "closed" for r in run.records if r.incident_id < 0]
    out["carried_closed_share"] = sum(carried) / len(carried) if carried else math.nan
    for role in HANDLER_LADDER:
        out[f"utilisation_{role.value}"] = float(k["utilisation"].get(role.value, math.nan))
    return {name: out[name] for name in FORK_KPIS}


def area_means(runs: Sequence[RunResult]) -> dict[str, dict[str, float | None]]:
    """Per area, the mean over runs of its events and of the shares of them that met the
    1/3/5-minute and the scenarios' own targets (``None`` where no run had such an event):
    where a change helps or hurts, for a map."""
    keys = ("events", "responded_within_60s", "on_scene_within_180s", "reinforced_within_300s", "within_targets")
    acc: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        first = min((r.reported_s for r in run.records), default=0.0)
        for area, row in kpis(run, warmup_days=min(0.0, first / DAY_S))["by_area"].items():
            for key in keys:
                v = row.get(key)
                if v is not None and not (isinstance(v, float) and math.isnan(v)):
                    acc.setdefault(area, {}).setdefault(key, []).append(float(v))
    return {area: {key: (float(np.mean(vals[key])) if vals.get(key) else None) for key in keys}
            for area, vals in sorted(acc.items())}


def fork(
    district: District,
    snapshot: Mapping[str, Any],
    *,
    hours: float,
    change: Mapping[str, Any] | None,
    replications: int = 10,
    seed: int = 0,
    params: ResponseParams | None = None,
) -> dict[str, Any]:
    """Run the next ``hours`` from a live snapshot, as is and with a change.

    Args:
        district: The live twin's district.
        snapshot: :meth:`actors.live.LiveTwin.snapshot`: ``now`` (POSIX), ``mode``,
            ``open_events`` (:class:`twin.workflow.Event`), ``members`` (member id →
            :class:`twin.policy.MemberState`), ``holding`` (member id → event id).
        hours: How far ahead, in (0, 168].
        change: Scenario overrides in dotted form (``{"staff.co_governance.count": 60}``,
            validated like the scenario file) and/or ``{"mode": "wartime"}``; ``None`` or
            empty: the proposed arm is the as-is arm.
        replications: Runs per arm, in [2, 100]; replication ``k`` runs on the ``k``-th
            child stream of ``seed`` in both arms (common random numbers).
        seed: Root seed (an integer >= 0).
        params: Response behaviour (default :class:`scenarios.model.ResponseParams`);
            its ``mode`` is replaced by the snapshot's (as is) and the change's (proposed).

    Returns:
        JSON-ready: ``hours``, ``replications``, ``seed``, ``from`` (ISO time of the
        snapshot), ``open_events_at_fork``, ``waiting_at_fork`` (of those, the ones
        waiting for a handler: reported or escalated),
        ``members_busy_at_fork``, ``mode`` (``{"as_is", "proposed"}``), ``as_is`` and
        ``proposed`` (``{kpi: {"mean", "ci95_lo", "ci95_hi", "n"}}`` for each of
        :data:`FORK_KPIS`), ``difference`` (``{kpi: mean of the paired differences,
        proposed minus as is}``), ``difference_ci95`` (``{kpi: [lo, hi]}`` of those
        differences), ``by_area`` (``{"as_is", "proposed"}``: :func:`area_means`), ``change``
        (as applied), ``members`` (``dropped``: live member ids
        the changed district lacks; ``added``: its new member ids; ``renamed``: live id →
        changed id where the same person has another id) and ``notes`` (what had to be
        adjusted to carry the live state over). ``nan`` figures are ``None``.

    Raises:
        ValidationError: naming the field: ``hours``, ``replications``, ``seed``,
            ``snapshot...``, ``change`` or ``change.<key>`` (an unknown or invalid key, or
            one that changes the district's geometry).
    """
    _check_number("hours", hours, lo=0.0, hi=MAX_HOURS, lo_open=True)
    if hours < MIN_HOURS:
        raise ValidationError("hours", f"must be at least {MIN_HOURS * 60:g} minutes, got {hours!r} h")
    if isinstance(replications, bool) or not isinstance(replications, (int, np.integer)) \
            or not MIN_REPLICATIONS <= replications <= MAX_REPLICATIONS:
        raise ValidationError("replications", f"must be an integer in [{MIN_REPLICATIONS}, {MAX_REPLICATIONS}], "
                              f"got {replications!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValidationError("seed", f"must be an integer >= 0, got {seed!r}")
    now, mode, events, members, holding, firsts = _check_snapshot(snapshot)
    overrides, new_mode = _check_change(change)
    base = params or ResponseParams()
    as_is_params = replace(base, mode=mode)
    proposed_params = replace(base, mode=new_mode or mode)
    live = own_roster(district)
    arm = _changed_district(live, overrides) if overrides else live
    live.roads.precompute_travel()
    arm.roads.precompute_travel()
    rename, dropped, added = _member_map(live, arm)
    arm, swap_notes = carry_swaps(live, arm, rename)
    start = datetime.fromtimestamp(now, live.roster.tz)
    offset = week_offset(now, live)
    days = float(hours) / 24.0

    def demand_for(d: District) -> Callable[[np.random.SeedSequence], Demand]:
        from scenarios.demand import DemandModel

        return lambda ss: WeekAligned(DemandModel(d, ss), offset)

    def runs(d: District, p: ResponseParams, state: StartState) -> list[RunResult]:
        root = np.random.SeedSequence(int(seed))
        factory = demand_for(d)
        return [run_once(d, factory, days=days, seed=child_seed(root, k), params=p, start=start, start_state=state)
                for k in range(int(replications))]

    live_state = StartState(now, tuple(events), dict(members), dict(holding), firsts)
    as_is_runs = runs(live, as_is_params, live_state)
    notes = [f"as is: {n}" for n in as_is_runs[0].notes]
    if arm is live and proposed_params == as_is_params:
        proposed_runs = as_is_runs  # no change: the same runs (common random numbers)
    else:
        arm_state, arm_notes = _carry(live_state, rename, dropped, live)
        proposed_runs = runs(arm, proposed_params, arm_state)
        notes += [f"proposed: {n}" for n in swap_notes + arm_notes + proposed_runs[0].notes]
    a = [fork_kpis(r) for r in as_is_runs]
    b = [fork_kpis(r) for r in proposed_runs]
    difference: dict[str, float] = {}
    difference_ci: dict[str, list[float]] = {}
    for name in FORK_KPIS:
        est = estimate(y[name] - x[name] for x, y in zip(a, b))
        difference[name] = est.mean
        difference_ci[name] = [est.lo, est.hi]
    applied: dict[str, Any] = dict(overrides)
    if new_mode is not None:
        applied["mode"] = new_mode.value
    out: dict[str, Any] = to_jsonable({
        "hours": float(hours), "replications": int(replications), "seed": int(seed),
        "from": start.isoformat(timespec="seconds"),
        "open_events_at_fork": len(events),
        "waiting_at_fork": sum(1 for e in events if e.state in (State.REPORTED, State.ESCALATED)),
        "members_busy_at_fork": sum(1 for st in members.values() if st.busy),
        "mode": {"as_is": mode.value, "proposed": (new_mode or mode).value},
        "as_is": _summary(a), "proposed": _summary(b),
        "as_is_prediction95": _prediction(a), "proposed_prediction95": _prediction(b),
        "difference": difference, "difference_ci95": difference_ci,
        "by_area": {"as_is": area_means(as_is_runs), "proposed": area_means(proposed_runs)},
        "change": applied,
        "members": {"dropped": sorted(dropped), "added": sorted(added),
                    "renamed": {k: v for k, v in sorted(rename.items()) if k != v}},
        "notes": notes,
    })
    return out


# --- validation --------------------------------------------------------------------------------------

def _check_number(name: str, value: Any, *, lo: float, hi: float, lo_open: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value > hi or value < lo or (lo_open and value == lo):
        raise ValidationError(name, f"must be a number in {'(' if lo_open else '['}{lo:g}, {hi:g}], got {value!r}")


def _check_snapshot(snapshot: Any) -> tuple[float, Mode, list[Event], dict[str, MemberState], dict[str, str],
                                           dict[str, Firsts]]:
    if not isinstance(snapshot, Mapping):
        raise ValidationError("snapshot", "must be a live twin snapshot (LiveTwin.snapshot())")
    now = snapshot.get("now")
    if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
        raise ValidationError("snapshot.now", f"must be POSIX seconds, got {now!r}")
    try:
        mode = Mode(snapshot.get("mode", Mode.PEACETIME.value))
    except ValueError:
        raise ValidationError("snapshot.mode", f"must be one of {', '.join(m.value for m in Mode)}, "
                              f"got {snapshot.get('mode')!r}") from None
    events = snapshot.get("open_events", [])
    if isinstance(events, (str, bytes)) or not isinstance(events, Sequence) \
            or not all(isinstance(e, Event) for e in events):
        raise ValidationError("snapshot.open_events", "must be a list of twin.workflow.Event")
    members = snapshot.get("members", {})
    if not isinstance(members, Mapping) or not all(isinstance(s, MemberState) for s in members.values()):
        raise ValidationError("snapshot.members", "must map member ids to twin.policy.MemberState")
    holding = snapshot.get("holding", {})
    if not isinstance(holding, Mapping):
        raise ValidationError("snapshot.holding", "must map member ids to event ids")
    firsts = snapshot.get("firsts", {})
    if not isinstance(firsts, Mapping) or not all(isinstance(f, Firsts) for f in firsts.values()):
        raise ValidationError("snapshot.firsts", "must map event ids to twin.desk.Firsts")
    return (float(now), mode, list(events), dict(members), {str(k): str(v) for k, v in holding.items()},
            {str(k): f for k, f in firsts.items()})


def _check_change(change: Any) -> tuple[dict[str, Any], Mode | None]:
    if change is None:
        return {}, None
    if not isinstance(change, Mapping):
        raise ValidationError("change", "must be an object of dotted scenario settings, e.g. "
                              "{\"staff.co_governance.count\": 60} or {\"mode\": \"wartime\"}")
    overrides: dict[str, Any] = {}
    mode = None
    for key, value in change.items():
        if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
            raise ValidationError("change", f"keys must be dotted setting names, got {key!r}")
        if key == "mode":
            try:
                mode = Mode(value)
            except ValueError:
                raise ValidationError("change.mode", f"must be one of {', '.join(m.value for m in Mode)}, "
                                      f"got {value!r}") from None
        else:
            overrides[key] = value
    return overrides, mode


def scenario_ref(district: District) -> str:
    """What ``load_cached`` needs to rebuild ``district`` (with overrides): its built-in name or
    the folder it was read from.

    Raises:
        ValidationError: ``change``: it was not loaded from a scenario (built in code).
    """
    from scenarios.loader import builtin_names, resolve

    source = district.notes.get("source")
    if district.name in builtin_names() and (source is None or resolve(district.name) == Path(str(source))):
        return district.name
    if source:
        return str(source)
    raise ValidationError("change", f"district '{district.name}' was not loaded from a scenario file; "
                          "only such districts can be changed")


def _changed_district(district: District, overrides: Mapping[str, Any]) -> District:
    """The district rebuilt with ``overrides``; refuses changes of geometry.

    Raises:
        ValidationError: ``change.<key>``: an unknown or invalid setting, or one that moves
            roads, regions or the catalog.
    """
    from scenarios.loader import load_cached

    ref = scenario_ref(district)
    try:
        changed = load_cached(ref, overrides)
    except ValidationError as exc:  # name the caller's key, not the file's path
        key = next((k for k in overrides if k == exc.field or k.startswith(exc.field + ".")), exc.field)
        raise ValidationError(f"change.{key}", exc.reason) from None
    same = (changed.roads.node_keys == district.roads.node_keys
            and [g.id for g in changed.regions.grids] == [g.id for g in district.regions.grids]
            and [(g.id, g.parent) for g in changed.regions.communities]
            == [(g.id, g.parent) for g in district.regions.communities]
            and np.array_equal(changed.road_grid, district.road_grid)
            and [s.code for s in changed.catalog] == [s.code for s in district.catalog])
    if not same:
        keys = [k for k in overrides if k.split(".")[0] in _GEOMETRY_KEYS] or list(overrides)
        raise ValidationError(f"change.{keys[0]}", "changes the district's geometry (roads, regions or catalog); "
                              "a fork from the live state needs the same streets")
    return changed


# --- carrying the live state into a changed district ------------------------------------------------

def _identity(m: Member) -> tuple[Any, ...]:
    """What makes a member the same person in a rebuilt district (not the id: see the module doc)."""
    return (m.role, m.area_id, m.grid_ids, m.shift_slot, m.post_node, m.travel_mode)


def _member_map(live: District, arm: District) -> tuple[dict[str, str], list[str], list[str]]:
    """Live member id → the same person's id in ``arm``; live ids ``arm`` lacks; ``arm``'s new ids.

    Matched by :func:`_identity` first, then, for the rest, by id where the role agrees (grid
    leaders and instructors, whose grids move when their count changes).
    """
    if arm is live:
        ids = [m.id for m in live.roster.members]
        return dict(zip(ids, ids)), [], []
    by_key: dict[tuple[Any, ...], list[str]] = {}
    for m in arm.roster.members:
        by_key.setdefault(_identity(m), []).append(m.id)
    rename: dict[str, str] = {}
    used: set[str] = set()
    for m in live.roster.members:
        found = by_key.get(_identity(m), [])
        if len(found) == 1 and found[0] not in used:
            rename[m.id] = found[0]
            used.add(found[0])
    for m in live.roster.members:
        other = arm.roster.by_id.get(m.id)
        if m.id not in rename and other is not None and other.id not in used and other.role is m.role:
            rename[m.id] = other.id
            used.add(other.id)
    dropped = [m.id for m in live.roster.members if m.id not in rename]
    added = [m.id for m in arm.roster.members if m.id not in used]
    return rename, dropped, added


def _carry(state: StartState, rename: Mapping[str, str], dropped: Sequence[str], live: District
           ) -> tuple[StartState, list[str]]:
    """The live state in the changed district's member ids; events held by dropped members
    are handed back (no assignee: the engine queues them at their tier)."""
    notes = []
    gone = set(dropped)
    for mid in dropped:
        m = live.roster.by_id[mid]
        notes.append(f"member {mid} ({m.role.value}, {m.area_id}) is not in the changed district: dropped")
    events = []
    for e in state.open_events:
        assignee = e.assignee
        if assignee in gone:
            notes.append(f"event {e.id}: its handler {assignee} was dropped")
            assignee = None
        elif assignee is not None:
            assignee = rename.get(assignee, assignee)
        helpers = tuple(rename[m] for m in e.reinforcements if m in rename)
        if assignee != e.assignee or helpers != e.reinforcements:
            e = replace(e, assignee=assignee, reinforcements=helpers)
        events.append(e)
    members = {rename[mid]: st for mid, st in state.members.items() if mid in rename}
    holding = {rename[mid]: eid for mid, eid in state.holding.items() if mid in rename}
    return StartState(state.now, tuple(events), members, holding, state.firsts), notes


def own_roster(district: District) -> District:
    """A shallow copy of ``district`` with a roster of its own (the same members, shifts and
    swaps). The engine moves the roster's caches to simulated times; a fork must not do that
    to the live twin's roster, nor to a district other forks share."""
    out = copy.copy(district)
    out.roster = district.roster.with_swaps(getattr(district.roster, "swaps", None) or {})
    return out


def carry_swaps(live: District, arm: District, rename: Mapping[str, str]) -> tuple[District, list[str]]:
    """``arm`` with the live roster's shift swaps (:meth:`twin.staff.Roster.with_swaps`), in
    ``arm``'s member ids; swaps of dropped members, or to a shift ``arm`` lacks, are left out
    with a note. ``arm`` itself is not changed (it may be shared): the result is a shallow
    copy with its own roster (:func:`own_roster`), unless ``arm`` is ``live``.
    """
    swaps: Mapping[tuple[str, int], str] = getattr(live.roster, "swaps", None) or {}
    if arm is live:
        return arm, []
    codes = {sh.code for sh in arm.roster.plan}
    kept = {(rename[mid], day): code for (mid, day), code in swaps.items() if mid in rename and code in codes}
    notes = [f"shift swap of {mid} on day {day} ({code}) left out: the member or the shift is not in the "
             "changed district" for (mid, day), code in sorted(swaps.items()) if (rename.get(mid), day) not in kept]
    out = copy.copy(arm)
    out.roster = arm.roster.with_swaps(kept)
    return out, notes


def _prediction(per_run: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Per figure, the 95% prediction interval of one more run: where the next 8 hours (say)
    of the live twin should land, where ``as_is``'s confidence interval bounds the mean."""
    out = {}
    for name in FORK_KPIS:
        lo, hi = prediction_interval((run[name] for run in per_run), bounds=(0.0, 1.0) if is_share(name) else None)
        out[name] = {"lo": lo, "hi": hi}
    return out


def _summary(per_run: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    out = {}
    for name in FORK_KPIS:
        est = estimate((run[name] for run in per_run), bounds=(0.0, 1.0) if is_share(name) else None)
        out[name] = est.to_dict()
    return out


__all__ = ["FORK_KPIS", "WeekAligned", "carry_swaps", "fork", "fork_kpis", "own_roster", "week_offset"]
