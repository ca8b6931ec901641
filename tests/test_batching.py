"""Reports in batches: the API's coalescer, the brain's ``create_events`` / the twin's
``report_many`` (one bad report never fails the others, a key used twice acts once), the
vectorised ``District.locate_all``, reads that never wait for a write's fsync, and the heap
kept out of full garbage collections."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from actors.brain import Brain, Conflict
from actors.client import Coalescer, LocalClient
from actors.eventlog import EventLog, open_log
from actors.heap import Refreeze, freeze
from actors.live import Clock
from api.app import create_app
from twin.district import District
from twin.errors import TwinError, ValidationError

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def spots(xiaohe: District) -> list[tuple[float, float]]:
    """Points on streets of the district (camera positions), far enough apart not to merge."""
    out = []
    for c in xiaohe.cameras[::7][:40]:
        lon, lat = xiaohe.projection.to_lonlat(c.x, c.y)
        out.append((float(lon), float(lat)))
    return out


def item(spot: tuple[float, float], key: str | None = None, scenario: str = "CM01", **body: Any) -> dict[str, Any]:
    return {"body": {"scenario": scenario, "lon": spot[0], "lat": spot[1], "source": "camera", **body},
            "actor": "test", "idem": (key, "p1", f"hash-{key}") if key else None}


# --- locating many points at once ------------------------------------------------------------------------

def test_locate_all_equals_locate_one_by_one(xiaohe: District, spots: list[tuple[float, float]]) -> None:
    together = xiaohe.locate_all(spots)
    assert together == [xiaohe.locate(lon, lat) for lon, lat in spots]
    assert all(loc.lon == lon and loc.lat == lat for loc, (lon, lat) in zip(together, spots))  # type: ignore[union-attr]


def test_locate_all_refuses_bad_points_alone(xiaohe: District, spots: list[tuple[float, float]]) -> None:
    out = xiaohe.locate_all([spots[0], (200.0, 30.0), (120.0, 30.0), ("x", 1.0), spots[1]])  # type: ignore[list-item]
    assert out[0] == xiaohe.locate(*spots[0]) and out[4] == xiaohe.locate(*spots[1])
    assert isinstance(out[1], ValidationError) and out[1].field == "lon" and "[-180, 180]" in out[1].reason
    assert isinstance(out[2], ValidationError) and out[2].field == "location" and "outside" in out[2].reason
    assert isinstance(out[3], ValidationError) and out[3].field == "lon" and "number" in out[3].reason
    with pytest.raises(ValidationError, match="outside"):
        xiaohe.locate(120.0, 30.0)
    assert xiaohe.locate_all([]) == []


# --- the brain: several reports in one call ---------------------------------------------------------------

def test_a_batch_decides_like_single_reports(brain: Brain, spots: list[tuple[float, float]],
                                             xiaohe: District, tmp_path: Path) -> None:
    batch = [item(s, f"k{i}") for i, s in enumerate(spots[:12])]
    out = brain.create_events(batch)
    assert all(isinstance(o, dict) for o in out)
    ids = [o["event"]["id"] for o in out]  # type: ignore[index]
    assert ids == [f"E{i:07d}" for i in range(1, 13)]  # in order
    # the same reports one by one into a fresh twin at the same instant: the same decisions
    other = Brain(xiaohe, open_log(tmp_path / "single.db"), Clock(speed=1.0, origin=brain.twin.clock.origin))
    try:
        single = [other.create_event(it["body"], actor="test", idem=it["idem"]) for it in batch]
        for a, b in zip(out, single):
            assert a["event"]["assignee"] == b["event"]["assignee"]  # type: ignore[index]
            assert a["event"]["state"] == b["event"]["state"]  # type: ignore[index]
    finally:
        other.log.close()
    # durable before the answer: every REPORT is in the log
    reports = {r.event_id for _, r in brain.log.records() if r.action.value == "report"}
    assert reports == set(ids)


def test_one_bad_report_does_not_fail_the_batch(brain: Brain, spots: list[tuple[float, float]]) -> None:
    out = brain.create_events([
        item(spots[0], "a"),
        item((120.0, 30.0), "b"),                # outside the district
        item(spots[1], "c", scenario="XX99"),    # unknown scenario
        {"body": {"scenario": "CM01", "lon": "east", "lat": 30.0}, "actor": "test", "idem": None},
        {"body": ["not", "an", "object"], "actor": "test", "idem": None},
        item(spots[2], "d", source="carrier pigeon"),
        item(spots[3], "e"),
    ])
    assert isinstance(out[0], dict) and isinstance(out[6], dict)
    fields = [o.field if isinstance(o, ValidationError) else None for o in out]
    assert fields == [None, "location", "scenario", "lon", "body", "source", None]
    assert len(brain.twin.events) == 2  # nothing of the refused ones was written
    assert {r.event_id for _, r in brain.log.records()} == {out[0]["event"]["id"], out[6]["event"]["id"]}  # type: ignore[index]


def test_a_key_twice_in_one_batch_acts_once(brain: Brain, spots: list[tuple[float, float]]) -> None:
    first, again, other = brain.create_events([item(spots[0], "same"), item(spots[0], "same"),
                                               item(spots[1], "other")])
    assert isinstance(first, dict) and isinstance(again, dict) and isinstance(other, dict)
    assert again["event"]["id"] == first["event"]["id"] and again.get("idempotent_replay") is True
    assert len(brain.twin.events) == 2
    # a later retry with the key, and a different request under it
    (retry,) = brain.create_events([item(spots[0], "same")])
    assert isinstance(retry, dict) and retry["event"]["id"] == first["event"]["id"]
    clash = dict(item(spots[5], "same"), idem=("same", "p1", "another request"))
    (refused,) = brain.create_events([clash])
    assert isinstance(refused, Conflict) and "same" in str(refused)
    assert len(brain.twin.events) == 2


def test_concurrent_batches_with_one_key_act_once(brain: Brain, spots: list[tuple[float, float]]) -> None:
    """Threads racing with the same keys (as a Ray actor's request threads do): one event each."""
    results: list[tuple[str, Any]] = []
    lock = threading.Lock()

    def send(k: int) -> None:
        keys = [f"race-{i}" for i in range(8)][k % 3:]
        out = brain.create_events([item(spots[int(key[5:])], key) for key in keys])
        with lock:
            results.extend(zip(keys, out))

    threads = [threading.Thread(target=send, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not [r for _, r in results if isinstance(r, Exception)]
    assert len(brain.twin.events) == 8
    by_key: dict[str, set[str]] = {}
    for key, r in results:
        by_key.setdefault(key, set()).add(r["event"]["id"])
    assert len(by_key) == 8 and all(len(ids) == 1 for ids in by_key.values())


# --- the coalescer -------------------------------------------------------------------------------------------

def test_coalescer_batches_under_load_and_sends_alone_when_idle() -> None:
    calls: list[list[int]] = []

    async def send(items: list[int]) -> list[Any]:
        calls.append(list(items))
        await asyncio.sleep(0.02)
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]

    async def main() -> tuple[list[Any], Coalescer]:
        c = Coalescer(send, depth=1, max_items=5)
        alone = await c.submit(0)
        tasks = [asyncio.ensure_future(c.submit(i)) for i in range(1, 13)]
        out = await asyncio.gather(*tasks, return_exceptions=True)
        return [alone, *out], c

    out, c = asyncio.run(main())
    assert calls[0] == [0]                       # idle: at once, alone
    assert calls[1] == [1]                       # the first of the burst goes at once
    assert calls[2:] == [[2, 3, 4, 5, 6], [7, 8, 9, 10, 11], [12]]  # the rest waited, in order, <= 5 a call
    assert out[0] == 0 and out[2] == 20 and out[12] == 120
    assert isinstance(out[1], ValueError) and str(out[1]) == "odd 1"  # an item's own error is its own
    assert c.calls == 5 and c.items == 13 and c.in_flight == 0


def test_coalescer_fails_every_item_of_a_failed_call_and_goes_on() -> None:
    n = {"calls": 0}

    async def send(items: list[int]) -> list[int]:
        n["calls"] += 1
        await asyncio.sleep(0.01)
        if n["calls"] == 2:
            raise TwinError("the brain is restarting")
        return items

    async def main() -> list[Any]:
        c = Coalescer(send, depth=1)
        tasks = [asyncio.ensure_future(c.submit(i)) for i in range(4)]
        out = await asyncio.gather(*tasks, return_exceptions=True)
        out.append(await c.submit(9))
        return out

    out = asyncio.run(main())
    assert out[0] == 0 and out[4] == 9
    assert all(isinstance(o, TwinError) and "restarting" in str(o) for o in out[1:4])


def test_coalescer_survives_a_cancelled_request() -> None:
    async def send(items: list[int]) -> list[int]:
        await asyncio.sleep(0.05)
        return items

    async def main() -> list[Any]:
        c = Coalescer(send, depth=1)
        first = asyncio.ensure_future(c.submit(1))
        gone = asyncio.ensure_future(c.submit(2))
        kept = asyncio.ensure_future(c.submit(3))
        await asyncio.sleep(0.01)
        gone.cancel()
        return await asyncio.gather(first, kept)

    assert asyncio.run(main()) == [1, 3]
    with pytest.raises(ValueError):
        Coalescer(lambda items: asyncio.sleep(0), depth=0)  # type: ignore[arg-type,return-value]


def test_concurrent_http_reports_are_coalesced(brain: Brain, spots: list[tuple[float, float]]) -> None:
    """Through the API: concurrent POSTs go to the brain in fewer calls, each answered alone."""
    import httpx

    app = create_app(LocalClient(brain), tick_s=None)
    token = brain.create_token("ingest")["token"]

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://twin") as http, \
                app.router.lifespan_context(app):
            reqs = [http.post("/api/v1/events", json={"scenario": "CM01", "lon": s[0], "lat": s[1]},
                              headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"h{i}"})
                    for i, s in enumerate(spots[:20])]
            reqs.append(http.post("/api/v1/events", json={"scenario": "CM01", "lon": 0.0, "lat": 0.0},
                                  headers={"Authorization": f"Bearer {token}"}))
            return list(await asyncio.gather(*reqs))

    answers = asyncio.run(main())
    assert [r.status_code for r in answers] == [201] * 20 + [422]
    assert answers[-1].json()["error"]["field"] == "location"
    assert len({r.json()["event"]["id"] for r in answers[:20]}) == 20
    assert app.state.creates.items == 21 and app.state.creates.calls < 21


# --- the log: reads never wait for a write ------------------------------------------------------------------

def test_reads_do_not_wait_for_a_write_in_progress(tmp_path: Path) -> None:
    log: EventLog = open_log(tmp_path / "events.db")
    try:
        log.put_setting("mode", {"mode": "peacetime"})
        inside, release = threading.Event(), threading.Event()

        def slow_write() -> None:
            with log._transaction() as cur:  # a write transaction held open (as during an fsync)
                cur.execute("INSERT INTO settings (key, value) VALUES ('x', '{}')")
                inside.set()
                release.wait(5)

        t = threading.Thread(target=slow_write)
        t.start()
        assert inside.wait(5)
        t0 = time.monotonic()
        assert log.setting("mode") == {"mode": "peacetime"}  # the last committed state
        assert log.setting("x") is None                      # not the uncommitted write
        assert time.monotonic() - t0 < 1.0
        release.set()
        t.join()
        assert log.setting("x") == {}
    finally:
        log.close()
    log.close()  # idempotent


def test_in_memory_log_reads_and_closes(tmp_path: Path) -> None:
    log = open_log(":memory:")
    log.put_setting("a", {"b": 1})
    assert log.setting("a") == {"b": 1}
    log.close()
    with pytest.raises(TwinError, match="closed"):
        log.setting("a")


# --- the heap ----------------------------------------------------------------------------------------------------

def test_freeze_moves_survivors_out_of_full_collections() -> None:
    before = gc.get_freeze_count()
    keep = [{"n": i} for i in range(1000)]
    try:
        freeze()
        assert gc.get_freeze_count() >= before + 1000
        r = Refreeze(every_s=3600)
        assert r() is False  # not due
        r._next = 0.0
        more = [[i] for i in range(500)]
        assert r() is True and gc.get_freeze_count() >= before + 1500
        assert len(more) == 500 and len(keep) == 1000
    finally:
        gc.unfreeze()


def test_fastapi_telemetry_is_off(brain: Brain) -> None:
    app = create_app(LocalClient(brain), tick_s=None)
    if not hasattr(app, "_telemetry"):
        pytest.skip("this FastAPI has no built-in telemetry")
    assert not (app._telemetry["tracing"] or app._telemetry["metrics"] or app._telemetry["logs"])
    assert app._telemetry["auto_configure"] is False


def test_pre_encoded_answers_are_stored_as_they_are(tmp_path: Path) -> None:
    from actors.eventlog import JsonText

    log = open_log(tmp_path / "events.db")
    try:
        log.put_idempotent("k1", "p", "h", JsonText('{"event":{"id":"E1","name":"张三"}}'))
        assert log.idempotent("k1", "p") == ("h", {"event": {"id": "E1", "name": "张三"}})
        with pytest.raises(ValidationError, match="object"):
            log.put_idempotent("k2", "p", "h", JsonText("[1, 2]"))
        with pytest.raises(ValidationError, match="NUL"):
            log.put_idempotent("k3", "p", "h", JsonText('{"a":"\\u0000"}'))
        assert log.idempotent("k2", "p") is None and log.idempotent("k3", "p") is None
    finally:
        log.close()


def test_openapi_documents_the_token_and_the_idempotency_key(brain: Brain) -> None:
    from fastapi.testclient import TestClient

    with TestClient(create_app(LocalClient(brain), tick_s=None)) as http:
        schema = http.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": schema["components"]["securitySchemes"]["bearer"][
            "description"]}
    post = schema["paths"]["/api/v1/events"]["post"]
    assert post["security"] == [{"bearer": []}]
    key = [p for p in post["parameters"] if p["name"] == "Idempotency-Key"]
    assert key and key[0]["in"] == "header" and key[0]["schema"]["maxLength"] == 200
    assert "security" not in schema["paths"]["/health"]["get"]
    assert schema["paths"]["/api/v1/events"]["get"]["security"] == [{"bearer": []}]
    assert not [p for p in schema["paths"]["/api/v1/events"]["get"].get("parameters", [])
                if p["name"] == "Idempotency-Key"]


def test_wal_checkpoints_run_off_the_commit_path(tmp_path: Path) -> None:
    """SQLite's automatic checkpoint is off for the writer (it would stall the commit that
    crosses 1,000 pages); a background thread checkpoints every second instead."""
    from actors import eventlog

    log = open_log(tmp_path / "events.db")
    try:
        assert log._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # type: ignore[attr-defined]
        for i in range(300):
            log.put_idempotent(f"k{i}", "p", "h", {"pad": "x" * 2000})
        db = tmp_path / "events.db"
        deadline = time.monotonic() + 10 * eventlog.CHECKPOINT_EVERY_S
        while db.stat().st_size < 300 * 2000 and time.monotonic() < deadline:  # the pages reach the file
            time.sleep(0.1)
        assert db.stat().st_size >= 300 * 2000
        assert log.idempotent("k299", "p") == ("h", {"pad": "x" * 2000})
        thread = log._checkpointer  # type: ignore[attr-defined]
        assert thread is not None and thread.is_alive() and thread.name == "wal-checkpoint"
    finally:
        log.close()
    assert not thread.is_alive()  # closing the log stops its checkpointer


def test_the_fast_report_path_answers_as_the_route_does(xiaohe: District, spots: list[tuple[float, float]],
                                                        tmp_path: Path) -> None:
    """Plain reports skip FastAPI's machinery (``FastReports``); every answer, good or bad, is
    the one the FastAPI route gives: the same requests against two fresh twins, with and
    without the fast path."""
    from fastapi.testclient import TestClient

    from api.fast import FastReports

    origin = Clock().now() - 3600.0

    class Frozen(Clock):  # both twins answer at the same instant
        def now(self) -> float:
            return origin
    s0, s1 = spots[0], spots[1]
    good = {"scenario": "CM01", "lon": s0[0], "lat": s0[1], "source": "camera"}
    runs: dict[bool, list[tuple[int, Any]]] = {}
    counts: dict[bool, dict[str, int]] = {}
    for fast in (True, False):
        b = Brain(xiaohe, open_log(tmp_path / f"fast-{fast}.db"), Frozen(origin=origin))
        try:
            ingest = b.create_token("ingest")["token"]
            viewer = b.create_token("viewer")["token"]
            auth = {"Authorization": f"Bearer {ingest}"}
            steps: list[tuple[dict[str, str], Any]] = [
                (auth, good),                                                   # the route (token not yet seen)
                ({**auth, "Idempotency-Key": "k1"}, {**good, "lon": s1[0], "lat": s1[1]}),
                ({**auth, "Idempotency-Key": "k1"}, {**good, "lon": s1[0], "lat": s1[1]}),  # a retry
                ({**auth, "Idempotency-Key": "k1"}, good),                     # the key, another body: 409
                (auth, {**good, "scenario": "XX99"}),                           # the brain refuses: 422
                (auth, {**good, "lon": 120.0, "lat": 30.0}),                   # outside the district
                (auth, b"{not json"),                                           # malformed: 400
                (auth, {**good, "colour": "red"}),                              # unknown field
                (auth, {**good, "lon": "east"}),                                # wrong type
                (auth, [good]),                                                 # not an object
                ({}, good),                                                     # no token: 401
                ({"Authorization": "Basic abc"}, good),
                ({"Authorization": "Bearer nope"}, good),
                ({"Authorization": f"Bearer {viewer}"}, good),                  # 403, twice (then cached)
                ({"Authorization": f"Bearer {viewer}"}, good),
                ({**auth, "Idempotency-Key": "x" * 201}, good),                # 400
                ({**auth, "Content-Type": "text/plain"}, good),
                (auth, {**good, "description": "路面堆物", "external_id": "cam-7"}),
                (auth, {**good, "description": "again", "external_id": "cam-7"}),  # the same camera object
            ]
            answers = []
            with TestClient(create_app(LocalClient(b), tick_s=None, fast_reports=fast)) as http:
                for headers, body in steps:
                    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                    r = http.post("/api/v1/events", content=raw,
                                  headers={"Content-Type": "application/json", **headers})
                    answers.append((r.status_code, r.headers["content-type"], r.json()))
                counts[fast] = dict(getattr(http.app.state, "fast_reports", {}))  # type: ignore[attr-defined]
            runs[fast] = answers
        finally:
            b.log.close()
    assert runs[True] == runs[False]
    codes = [a[0] for a in runs[True]]
    assert codes == [201, 201, 201, 409, 422, 422, 400, 422, 422, 422, 401, 401, 401, 403, 403, 400, 422, 201,
                     201], codes
    first, retry = runs[True][1][2], runs[True][2][2]
    assert retry["event"] == first["event"] and retry.get("idempotent_replay") is True
    assert runs[True][18][2]["event"]["id"] == runs[True][17][2]["event"]["id"]  # one event per camera object
    assert counts[True]["served"] >= 7 and counts[True]["routed"] >= 8 and not counts[False]
    assert FastReports.PATH == "/api/v1/events"


def test_many_due_timers_fire_in_chunks_letting_reports_in_between(
        brain: Brain, spots: list[tuple[float, float]], xiaohe: District, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import actors.live as live

    brain.create_events([item(s, f"t{i}") for i, s in enumerate(spots)])
    later = brain.now() + 4 * 3600.0  # every sign and on-scene deadline has passed
    due = sum(1 for at, _, _ in brain.twin.timers if at <= later)
    assert due > 2 * live.TIMERS_PER_HOLD
    yields: list[bool] = []
    monkeypatch.setattr(live.time, "sleep", lambda s: yields.append(brain.twin._lock._is_owned()))  # type: ignore[attr-defined]
    written = brain.twin.tick(now=later)
    fires = sum(1 for r in written if r.data.get("timer"))
    assert fires > 2 * live.TIMERS_PER_HOLD
    assert len(yields) >= -(-fires // live.TIMERS_PER_HOLD) - 1 and not any(yields)  # the lock was free at each pause
    assert not [t for t in brain.twin.timers if t[0] <= later]
    # the same reports and tick in one hold decide the same
    monkeypatch.setattr(live, "TIMERS_PER_HOLD", 10**6)
    other = Brain(xiaohe, open_log(tmp_path / "one-hold.db"), Clock(speed=1.0, origin=brain.twin.clock.origin))
    try:
        other.create_events([item(s, f"t{i}") for i, s in enumerate(spots)])
        again = other.twin.tick(now=later)
        assert [(r.event_id, r.action, r.to_state) for r in again] == [(r.event_id, r.action, r.to_state)
                                                                        for r in written]
    finally:
        other.log.close()


def test_draining_a_long_queue_skips_only_what_nobody_free_could_take(
        xiaohe: District, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A queue of hundreds: the drain passes over events whose roles have nobody free, and
    decides exactly as asking the policy for every one of them."""
    from twin.catalog import Source
    from twin.desk import Desk

    codes = [s.code for s in xiaohe.catalog if Source.CAMERA in s.sources][:6]
    pts = [tuple(float(v) for v in xiaohe.projection.to_lonlat(c.x, c.y)) for c in xiaohe.cameras]
    reports = [{"body": {"scenario": codes[i % len(codes)], "lon": pts[i % len(pts)][0],
                         "lat": pts[i % len(pts)][1], "source": "camera"}, "actor": "test", "idem": None}
               for i in range(700)]
    origin = Clock().now() - 7200.0
    outcomes = []
    for prune in (True, False):
        if not prune:  # every role counts as free: the policy is asked for every waiting event
            monkeypatch.setattr(Desk, "_free_roles", lambda self, now: (
                set(self.role_of.values()), set(self.role_of.values())))
        b = Brain(xiaohe, open_log(tmp_path / f"drain-{prune}.db"), Clock(speed=1e-9, origin=origin))
        try:
            b.create_events(reports)
            waiting = len(b.twin.queue)
            before = sum(1 for _, r in b.log.records() if r.action.value == "dispatch")
            busy = [e for e in b.twin.events.values() if e.assignee is not None][:25]
            for e in busy:
                b.act(e.id, "false_alarm", {"reason": "nothing there"}, actor="dispatcher")
            b.twin.tick(now=origin + 1.0)
            outcomes.append((waiting, before, [(r.event_id, r.action.value, r.data.get("member"))
                                               for _, r in b.log.records()]))
        finally:
            b.log.close()
    assert outcomes[0][0] > 100  # a real queue
    assert outcomes[0] == outcomes[1]
    assert sum(1 for _, a, _ in outcomes[0][2] if a == "dispatch") > outcomes[0][1]  # waiting work went out
