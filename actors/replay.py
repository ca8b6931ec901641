"""Re-watch a stored day: the log's records re-played, in order, into a fresh twin.

Each record is re-applied with :func:`twin.workflow.apply` to the fresh twin's copy of its
event and must reach the state the record says (the log is checked as it is re-played); the
fresh twin keeps its own log (``into``), its timers and KPIs, exactly as if the day were
happening again. ``speed`` paces it against the wall clock (0: as fast as possible).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from actors.eventlog import open_log
from actors.live import Clock, LiveTwin, iso
from twin.errors import ValidationError
from twin.workflow import Action, replay


def _when(text: str | None, field: str) -> float | None:
    if text is None:
        return None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(field, f"must be an ISO 8601 time such as 2026-03-02T08:00+08:00, got {text!r}") from None
    if dt.tzinfo is None:
        raise ValidationError(field, "needs a UTC offset (e.g. +08:00)")
    return dt.timestamp()


def replay_log(db: str, *, scenario: str = "xiaohe", speed: float = 0.0, since: str | None = None,
               until: str | None = None, into: str | None = None,
               progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Re-play the records of events reported in ``[since, until)`` into a fresh twin.

    Returns:
        Counts, the time span, wall seconds, the fresh twin's KPIs and whether the rebuilt
        events equal the stored ones (``consistent``).

    Raises:
        ValidationError: a bad time or speed.
        TwinError: a record that does not follow from the ones before it.
    """
    from scenarios.loader import load_cached

    if speed < 0:
        raise ValidationError("speed", f"must be >= 0, got {speed}")
    lo, hi = _when(since, "since"), _when(until, "until")
    if lo is not None and hi is not None and hi <= lo:
        raise ValidationError("until", "must be after since")
    source = open_log(db)
    rows = source.records()
    reported = {r.event_id: r.at for _, r in rows if r.action is Action.REPORT}
    keep = {eid for eid, at in reported.items() if (lo is None or at >= lo) and (hi is None or at < hi)}
    records = [r for _, r in rows if r.event_id in keep]
    district = load_cached(scenario)
    first = records[0].at if records else time.time()
    fresh = LiveTwin(district, open_log(into or ":memory:"), Clock(1.0, origin=first))
    if fresh.events:
        raise ValidationError("into", f"{into} already holds events; replay into a fresh log")
    t0 = time.monotonic()
    for n, rec in enumerate(records, 1):
        if speed > 0:
            wait = (rec.at - first) / speed - (time.monotonic() - t0)
            if wait > 0:
                time.sleep(wait)
        with fresh._lock:
            fresh.desk.replay_record(rec)
            fresh._commit(fresh.desk.take_records())
        if progress is not None and n % 1000 == 0:
            progress(f"  {n} records, twin time {iso(rec.at, district.roster.tz)}")
    fresh.flush()
    stored = replay(records)
    out = {
        "records": len(records), "events": len(keep), "skipped_records": len(rows) - len(records),
        "from": iso(records[0].at, district.roster.tz) if records else None,
        "to": iso(records[-1].at, district.roster.tz) if records else None,
        "wall_s": time.monotonic() - t0, "speed": speed,
        "kpis": fresh.kpis(), "consistent": stored == fresh.events,
    }
    source.close()
    fresh.log.close()
    return out
