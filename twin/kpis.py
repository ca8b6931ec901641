"""The 1/3/5-minute KPIs, defined once for the live twin, the simulator and the staffing optimiser.

The case study's standard (:data:`twin.policy.STANDARD_TARGETS`): respond within 1 minute,
be on scene within 3, reinforce within 5. Each headline share counts the events whose
outcome is *decided* at the end of the window (``now``):

- ``responded_within_60s`` — of events dispatched at least once: the first signature
  came at most 60 s after the first dispatch (a reassignment or escalation does not
  restart this clock). An event still open and unsigned 60 s or more after its first
  dispatch is a miss; one signed by nobody and closed (merged, a false alarm, withdrawn)
  is not counted; one still inside its first minute is not counted yet.
- ``on_scene_within_180s`` — of events that are neither merged nor false alarms and
  either had someone on scene, or are still open, were dispatched, and are 180 s or more
  old: the first handler (or reinforcement) arrived at most 180 s after the report.
  Events closed without anyone going (a grid worker's reminder was enough) are not
  counted.
- ``reinforced_within_300s`` — of events for which reinforcement was requested and whose
  outcome is decided (reinforced, closed, or 300 s or more old): reinforcement arrived at
  most 300 s after the report.

A deadline is due at its instant (:mod:`twin.policy`): a signature at exactly 60 s meets
the target, an unsigned dispatch at exactly 60 s is overdue.

The functions take one array per quantity, in seconds relative to each event's report
(``nan`` where it did not happen), so the simulator's flat records and the live twin's
events go through the same arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from twin.policy import STANDARD_TARGETS, Targets
from twin.workflow import Event, State


def kpi_names(targets: Targets = STANDARD_TARGETS) -> tuple[str, str, str]:
    """The names of the three headline shares (``responded_within_60s``, ...)."""
    return (f"responded_within_{targets.respond_s:g}s", f"on_scene_within_{targets.on_scene_s:g}s",
            f"reinforced_within_{targets.reinforce_s:g}s")


RESPONDED, ON_SCENE, REINFORCED = kpi_names()


@dataclass(frozen=True)
class Outcomes:
    """Per-event times of a set of events, seconds after each one's report (``nan``: not
    happened), as the KPI functions take them.

    Args:
        dispatch_s: First dispatch.
        respond_s: First signature minus first dispatch.
        on_scene_s: First handler or reinforcement on scene.
        reinforce_s: Reinforcement on scene.
        reinforcement: Whether reinforcement was requested.
        open: Whether the event is still open at the end of the window.
        counted: Neither merged nor a false alarm.
        age_s: End of the window minus the report.
    """

    dispatch_s: np.ndarray
    respond_s: np.ndarray
    on_scene_s: np.ndarray
    reinforce_s: np.ndarray
    reinforcement: np.ndarray
    open: np.ndarray
    counted: np.ndarray
    age_s: np.ndarray

    def __len__(self) -> int:
        return len(self.age_s)

    def select(self, mask: np.ndarray) -> Outcomes:
        """The events where ``mask`` is true."""
        return Outcomes(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))


class FirstsOf(Protocol):
    """What the KPIs read of an event's firsts (:class:`twin.desk.Firsts`)."""

    dispatched: float | None
    signed: float | None
    stage_at: float | None
    stage_dispatched: float | None
    stage_signed: float | None
    stage_on_scene: float | None

    def stage_times(self, reported_at: float) -> tuple[float, float, float, float]: ...


def outcomes_of(events: Iterable[Event], firsts: Mapping[str, FirstsOf], now: float, *,
                stage: bool = False) -> Outcomes:
    """The outcomes of live events at ``now``, from each event's firsts (its first dispatch
    and signature, POSIX seconds). ``stage``: timed on the stage that handles each event,
    from its last escalation (else its report), as the simulator's ``stage_*`` fields."""
    rows = []
    nan = math.nan
    for e in events:
        f = firsts.get(e.id)
        t0 = e.reported_at
        if stage and f is not None:  # the stage's own times (twin.desk.Firsts.stage_times)
            _, wait, sign, scene = f.stage_times(t0)
            since = t0 if f.stage_at is None else f.stage_at
        else:
            since = t0
            d, s = (f.dispatched, f.signed) if f is not None else (None, None)
            wait, sign = (nan if d is None else d - t0), (nan if d is None or s is None else s - d)
            scene = nan if e.on_scene_at is None else e.on_scene_at - t0
        rows.append((wait, sign, scene, nan if e.reinforced_at is None else e.reinforced_at - since,
                     e.reinforcement_requested_at is not None, e.is_open,
                     e.state is not State.MERGED and e.state is not State.FALSE_ALARM, now - since))
    a_ = np.array(rows, dtype=np.float64).reshape(len(rows), 8)
    return Outcomes(a_[:, 0], a_[:, 1], a_[:, 2], a_[:, 3], a_[:, 4] > 0, a_[:, 5] > 0, a_[:, 6] > 0, a_[:, 7])


def masks(o: Outcomes, targets: Targets = STANDARD_TARGETS) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For each headline share, ``(met, decided)`` boolean arrays: the events that met the
    target, and the events counted (see the module doc)."""
    with np.errstate(invalid="ignore"):
        dispatched = ~np.isnan(o.dispatch_s)
        signed = ~np.isnan(o.respond_s)
        responded = dispatched & (signed | (o.open & (o.age_s - o.dispatch_s >= targets.respond_s)))
        arrived = ~np.isnan(o.on_scene_s)
        scene = o.counted & (arrived | (o.open & dispatched & (o.age_s >= targets.on_scene_s)))
        reinforced = ~np.isnan(o.reinforce_s)
        reinf = o.reinforcement & (reinforced | ~o.open | (o.age_s >= targets.reinforce_s))
        r, s, f = kpi_names(targets)
        return {r: (signed & (o.respond_s <= targets.respond_s), responded),
                s: (arrived & (o.on_scene_s <= targets.on_scene_s), scene),
                f: (reinforced & (o.reinforce_s <= targets.reinforce_s), reinf)}


#: The three targets together: an event counted for any of them meets all it is counted for.
ALL_TARGETS = "met_1_3_5"


def all_targets(o: Outcomes, targets: Targets = STANDARD_TARGETS) -> tuple[np.ndarray, np.ndarray]:
    """``(met, decided)`` for :data:`ALL_TARGETS`: decided for an event decided for any of the
    three shares; met if it met every one it is decided for (signed in time, on scene in
    time, reinforced in time where reinforcement was asked for)."""
    parts = list(masks(o, targets).values())
    decided = np.zeros(len(o), dtype=bool)
    met = np.ones(len(o), dtype=bool)
    for ok, of in parts:
        decided |= of
        met &= ok | ~of
    return met & decided, decided


def shares(o: Outcomes, targets: Targets = STANDARD_TARGETS) -> dict[str, float]:
    """The three headline shares (``nan`` where no event is counted)."""
    out = {}
    for name, (met, of) in masks(o, targets).items():
        n = int(of.sum())
        out[name] = float((met & of).sum()) / n if n else math.nan
    return out


def counts(o: Outcomes, targets: Targets = STANDARD_TARGETS) -> dict[str, tuple[int, int]]:
    """For each headline share, ``(met, counted)`` event counts."""
    return {name: (int((met & of).sum()), int(of.sum())) for name, (met, of) in masks(o, targets).items()}


def group_shares(groups: Mapping[str, Outcomes], targets: Targets = STANDARD_TARGETS) -> dict[str, dict[str, Any]]:
    """Per group (a tier, an area, a shift): its events and its shares (:func:`shares`), ``None``
    where nothing counts yet."""
    return {g: {"events": len(o), **{k: (None if math.isnan(v) else v) for k, v in shares(o, targets).items()}}
            for g, o in groups.items()}
