"""The dispatch API over a real SQLite event log: the closed loop through HTTP, roles and
tokens, idempotency keys, bad input (always a 4xx naming the field, nothing half-written),
timers and wartime, and recovery after a restart."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from actors.brain import Brain
from actors.client import LocalClient
from actors.eventlog import open_log
from actors.live import Clock
from api.app import create_app
from twin.district import District

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def origin(xiaohe: District) -> float:
    """Monday 2026-03-02 10:00 local: the day shift."""
    return datetime(2026, 3, 2, 10, 0, tzinfo=xiaohe.roster.tz).timestamp()


@pytest.fixture(scope="module")
def spot(xiaohe: District) -> tuple[float, float]:
    """A point on a street of the district (a camera's position)."""
    c = xiaohe.cameras[0]
    lon, lat = xiaohe.projection.to_lonlat(c.x, c.y)
    return float(lon), float(lat)


class Api:
    """A running app with a token per role."""

    def __init__(self, brain: Brain, http: TestClient) -> None:
        self.brain, self.http = brain, http
        admin = brain.create_token("admin", name="test admin")["token"]
        self.tokens = {"admin": admin}
        for role in ("dispatcher", "ingest", "viewer"):
            self.tokens[role] = brain.create_token(role, name=f"test {role}")["token"]

    def auth(self, role_or_token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.get(role_or_token, role_or_token)}"}

    def handler(self, member: str) -> str:
        key = f"handler:{member}"
        if key not in self.tokens:
            r = self.http.post("/api/v1/tokens", json={"role": "handler", "member_id": member},
                               headers=self.auth("admin"))
            assert r.status_code == 201, r.text
            self.tokens[key] = r.json()["token"]
        return self.tokens[key]

    def report(self, spot: tuple[float, float], scenario: str = "CM01", **extra: Any) -> Any:
        r = self.http.post("/api/v1/events", json={"scenario": scenario, "lon": spot[0], "lat": spot[1],
                                                   "source": "camera", **extra}, headers=self.auth("ingest"))
        assert r.status_code == 201, r.text
        return r.json()["event"]


@pytest.fixture
def api(xiaohe: District, origin: float, tmp_path: Path) -> Iterator[Api]:
    brain = Brain(xiaohe, open_log(tmp_path / "events.db"), Clock(speed=1.0, origin=origin))
    app = create_app(LocalClient(brain), tick_s=None)
    with TestClient(app) as http:
        yield Api(brain, http)
    brain.log.close()


def test_health_needs_no_token(api: Api) -> None:
    r = api.http.get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok" and r.json()["district"] == "xiaohe"
    assert "password" not in r.text
    assert api.http.get("/docs").status_code == 200
    assert "/api/v1/events" in api.http.get("/openapi.json").json()["paths"]


def test_closed_loop_over_http_with_photo_evidence(api: Api, spot: tuple[float, float]) -> None:
    ev = api.report(spot, description="goods on the pavement")
    assert ev["state"] == "dispatched" and ev["assignee"] and ev["area_id"]
    member = ev["assignee"]
    h = {"Authorization": f"Bearer {api.handler(member)}"}
    eid = ev["id"]
    assert api.http.post(f"/api/v1/events/{eid}/sign", headers=h).json()["event"]["state"] == "signed"
    assert api.http.post(f"/api/v1/events/{eid}/arrive", headers=h).json()["event"]["state"] == "on_scene"
    photo = b"\xff\xd8\xff\xe0" + b"jpeg bytes" * 100
    r = api.http.post(f"/api/v1/events/{eid}/result", headers=h, data={"result": "goods moved back inside"},
                      files={"photo": ("after.jpg", photo, "image/jpeg")})
    assert r.status_code == 200, r.text
    resolved = r.json()["event"]
    assert resolved["state"] == "resolved" and resolved["result"] == "goods moved back inside"
    [evidence_id] = resolved["evidence"]
    got = api.http.get(f"/api/v1/evidence/{evidence_id}", headers=api.auth("viewer"))
    assert got.status_code == 200 and got.content == photo and got.headers["content-type"] == "image/jpeg"
    # The handler may not verify their own work; the dispatcher closes it.
    assert api.http.post(f"/api/v1/events/{eid}/verify", headers=h).status_code == 403
    assert api.http.post(f"/api/v1/events/{eid}/verify", headers=api.auth("dispatcher")).json()["event"]["state"] \
        == "closed"
    full = api.http.get(f"/api/v1/events/{eid}", headers=api.auth("viewer")).json()
    trail = [(rec["actor"], rec["action"], rec["to_state"]) for rec in full["history"]]
    assert trail == [
        ("ingest:test ingest", "report", "reported"),
        ("brain", "dispatch", "dispatched"),
        (member, "sign", "signed"),
        (member, "arrive", "on_scene"),
        (member, "resolve", "resolved"),
        ("dispatcher:test dispatcher", "verify", "closed"),
    ]
    assert [rec["log_seq"] for rec in full["history"]] == sorted(rec["log_seq"] for rec in full["history"])
    listed = api.http.get("/api/v1/events", params={"state": "closed"}, headers=api.auth("viewer")).json()
    assert [e["id"] for e in listed["events"]] == [eid]
    kpis = api.http.get("/api/v1/kpis", headers=api.auth("viewer")).json()
    assert kpis["events"] == 1 and kpis["responded_within_60s"] == 1.0 and kpis["on_scene_within_180s"] == 1.0


def test_roles_and_tokens(api: Api, spot: tuple[float, float]) -> None:
    r = api.http.get("/api/v1/events")
    assert r.status_code == 401 and r.json()["error"]["field"] == "Authorization"
    assert r.headers["www-authenticate"] == "Bearer"
    r = api.http.get("/api/v1/events", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401 and "unknown" in r.json()["error"]["reason"]
    r = api.http.get("/api/v1/events", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401
    r = api.http.post("/api/v1/events", json={"scenario": "CM01", "lon": spot[0], "lat": spot[1]},
                      headers=api.auth("viewer"))
    assert r.status_code == 403 and "viewer" in r.json()["error"]["reason"]
    assert api.http.post("/api/v1/tokens", json={"role": "viewer"}, headers=api.auth("dispatcher")).status_code == 403
    r = api.http.post("/api/v1/tokens", json={"role": "handler"}, headers=api.auth("admin"))
    assert r.status_code == 422 and r.json()["error"]["field"] == "member_id"
    ev = api.report(spot)
    other = next(m.id for m in api.brain.district.roster.members if m.id != ev["assignee"])
    r = api.http.post(f"/api/v1/events/{ev['id']}/sign", headers={"Authorization": f"Bearer {api.handler(other)}"})
    assert r.status_code == 403 and "not assigned to you" in r.json()["error"]["reason"]
    r = api.http.get("/api/v1/stream", params={"scope": "dashboard"},
                     headers={"Authorization": f"Bearer {api.handler(other)}"})
    assert r.status_code == 403 and r.json()["error"]["field"] == "scope"
    # Tokens are stored hashed: the database never holds the token itself.
    raw = Path(api.brain.log.url.removeprefix("sqlite:///")) if api.brain.log.url.startswith("sqlite") else None
    if raw is not None and raw.exists():
        assert api.tokens["admin"].encode() not in raw.read_bytes()


def test_idempotency_keys(api: Api, spot: tuple[float, float]) -> None:
    body = {"scenario": "CM01", "lon": spot[0], "lat": spot[1], "source": "camera"}
    h = {**api.auth("ingest"), "Idempotency-Key": "cam-7-frame-1234"}
    first = api.http.post("/api/v1/events", json=body, headers=h)
    again = api.http.post("/api/v1/events", json=body, headers=h)
    assert first.status_code == again.status_code == 201
    assert first.json()["event"]["id"] == again.json()["event"]["id"]
    assert again.json().get("idempotent_replay") is True
    assert len(api.brain.twin.events) == 1
    dispatches = [r for _, r in api.brain.log.records() if r.action.value == "dispatch"]
    assert len(dispatches) == 1
    r = api.http.post("/api/v1/events", json={**body, "description": "other"}, headers=h)
    assert r.status_code == 409 and r.json()["error"]["field"] == "Idempotency-Key"
    # Actions too: a retried sign is answered, not re-applied (a second sign would be illegal).
    eid, member = first.json()["event"]["id"], first.json()["event"]["assignee"]
    hh = {"Authorization": f"Bearer {api.handler(member)}", "Idempotency-Key": "sign-1"}
    s1 = api.http.post(f"/api/v1/events/{eid}/sign", headers=hh)
    s2 = api.http.post(f"/api/v1/events/{eid}/sign", headers=hh)
    assert s1.status_code == s2.status_code == 200 and s1.json()["event"] == {
        k: v for k, v in s2.json()["event"].items()}


BAD = [
    ("malformed JSON", b'{"scenario": "CM01", ', 400, "body"),
    ("not an object", b"[1, 2]", 422, "body"),
    ("wrong type", b'{"scenario": "CM01", "lon": "east", "lat": 30.3}', 422, "lon"),
    ("latitude out of range", b'{"scenario": "CM01", "lon": 120.1, "lat": 95}', 422, "lat"),
    ("outside the district", b'{"scenario": "CM01", "lon": 121.5, "lat": 31.2}', 422, "location"),
    ("unknown scenario", b'{"scenario": "ZZ99", "lon": 120.13, "lat": 30.31}', 422, "scenario"),
    ("missing scenario", b'{"lon": 120.13, "lat": 30.31}', 422, "scenario"),
    ("unknown field", b'{"scenario": "CM01", "lon": 120.13, "lat": 30.31, "colour": "red"}', 422, "colour"),
    ("unknown source", b'{"scenario": "CM01", "lon": 120.13, "lat": 30.31, "source": "drone"}', 422, "source"),
    ("no place", b'{"scenario": "CM01"}', 422, "lon"),
    ("bad GeoJSON", b'{"scenario": "CM01", "location": {"type": "Point", "coordinates": [1]}}', 422,
     "location.coordinates"),
]


@pytest.mark.parametrize(("case", "raw", "status", "field"), BAD, ids=[b[0] for b in BAD])
def test_bad_reports_name_the_field(api: Api, spot: tuple[float, float], case: str, raw: bytes, status: int,
                                    field: str) -> None:
    raw = raw.replace(b"120.13", str(spot[0]).encode()).replace(b"30.31", str(spot[1]).encode())
    seq = api.brain.log.last_seq()
    r = api.http.post("/api/v1/events", content=raw,
                      headers={**api.auth("ingest"), "Content-Type": "application/json"})
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["field"] == field and err["reason"] and err["message"].startswith(f"{field}: ")
    assert api.brain.log.last_seq() == seq and not api.brain.twin.events  # nothing half-written


def test_bad_actions_name_the_field(api: Api, spot: tuple[float, float]) -> None:
    ev = api.report(spot)
    eid = ev["id"]
    d = api.auth("dispatcher")
    seq = api.brain.log.last_seq()
    cases = [
        (f"/api/v1/events/{eid}/arrive", {}, 409, "action"),  # not signed yet
        (f"/api/v1/events/{eid}/dispatch", {"member": "NOBODY"}, 422, "member"),
        (f"/api/v1/events/{eid}/merge", {"into": "E9999999"}, 422, "into"),
        (f"/api/v1/events/{eid}/merge", {"into": eid}, 422, "into"),
        (f"/api/v1/events/{eid}/sign", {"tier": "high"}, 422, "tier"),
        (f"/api/v1/events/{eid}/reinforcement", {"members": ["NOBODY"]}, 422, "members"),
        ("/api/v1/events/E0000999/sign", {}, 404, None),
        (f"/api/v1/events/{eid}/result", {}, 422, "result"),
    ]
    for url, body, status, field in cases:
        r = api.http.post(url, json=body, headers=d)
        assert r.status_code == status, (url, body, r.text)
        assert r.json()["error"]["field"] == field, (url, r.text)
    assert api.brain.log.last_seq() == seq
    r = api.http.post(f"/api/v1/events/{eid}/evidence", headers=d,
                      files={"photo": ("big.jpg", b"x" * (6 * 1024 * 1024), "image/jpeg")})
    assert r.status_code == 413 and r.json()["error"]["field"] == "body"
    # a body sent in chunks, without a Content-Length: counted as it comes
    big = (b"x" * 8192 for _ in range(10))
    r = api.http.post("/api/v1/events", content=big, headers={**d, "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["field"] == "body", r.text
    small = (part for part in (b'{"scenario": "CM01", ', b'"lon": 0, "lat": 0}'))
    r = api.http.post("/api/v1/events", content=small, headers={**d, "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "location", r.text  # read whole, then judged
    r = api.http.post(f"/api/v1/events/{eid}/evidence", headers=d, files={"photo": ("a.exe", b"MZ", "application/x")})
    assert r.status_code == 415 and r.json()["error"]["field"] == "photo"
    r = api.http.get("/api/v1/kpis", params={"since": 10, "until": 5}, headers=d)
    assert r.status_code == 422 and r.json()["error"]["field"] == "until"
    r = api.http.get("/api/v1/events", params={"limit": 0}, headers=d)
    assert r.status_code == 422 and r.json()["error"]["field"] == "limit"


def test_timers_escalate_and_supervise_and_wartime_tightens_them(api: Api, spot: tuple[float, float],
                                                                  origin: float) -> None:
    ev = api.report(spot, scenario="CM01")
    eid = ev["id"]
    twin = api.brain.twin
    targets = twin.targets(twin.event(eid))
    # Nobody signs: at respond_s the dispatch is reassigned, at the next deadline escalated.
    twin.tick(now=origin + targets.respond_s - 1)
    assert twin.event(eid).reassignments == 0
    twin.tick(now=origin + targets.respond_s + 0.5)
    e = twin.event(eid)
    assert e.reassignments == 1 and e.assignee != ev["assignee"]
    twin.tick(now=origin + targets.respond_s + 0.6)  # the same deadline does not fire twice
    assert twin.event(eid).reassignments == 1
    twin.tick(now=e.dispatched_at + targets.respond_s)
    e = twin.event(eid)
    assert e.escalations == 1 and e.tier == 1 and e.state.value == "dispatched"
    hist = api.http.get(f"/api/v1/events/{eid}", headers=api.auth("viewer")).json()["history"]
    assert [h["action"] for h in hist][:5] == ["report", "dispatch", "reassign", "escalate", "dispatch"]
    assert all(h["data"].get("timer") == "sign" for h in hist if h["actor"] == "timer")
    # Wartime: 60/180/300 s at most.
    r = api.http.post("/api/v1/roster/mode", json={"mode": "wartime"}, headers=api.auth("dispatcher"))
    assert r.status_code == 200 and r.json()["mode"] == "wartime"
    assert twin.targets(twin.event(eid)).respond_s <= 60.0
    assert api.http.post("/api/v1/roster/mode", json={"mode": "chaos"},
                         headers=api.auth("dispatcher")).json()["error"]["field"] == "mode"


def test_restart_recovers_state_and_timers_without_double_dispatch(api: Api, spot: tuple[float, float],
                                                                    origin: float, xiaohe: District) -> None:
    a = api.report(spot)
    b = api.report(spot, scenario="TR01")
    h = {"Authorization": f"Bearer {api.handler(a['assignee'])}"}
    api.http.post(f"/api/v1/events/{a['id']}/sign", headers=h)
    before = {e.id: e for e in api.brain.twin.events.values()}
    holding = dict(api.brain.twin.holding)
    seq = api.brain.log.last_seq()
    # A new brain on the same log (the process was killed): the same state, then timers resume.
    again = Brain(xiaohe, open_log(api.brain.log.url), Clock(speed=1.0, origin=origin))
    assert again.twin.events == before and again.twin.holding == holding
    assert again.log.last_seq() == seq
    t = again.twin.targets(again.twin.event(b["id"]))
    again.twin.tick(now=origin + t.respond_s + 1)
    reassigned = [r for _, r in again.log.records(event_id=b["id"]) if r.action.value == "reassign"]
    assert len(reassigned) == 1
    third = Brain(xiaohe, open_log(api.brain.log.url), Clock(speed=1.0, origin=origin))
    third.twin.tick(now=origin + t.respond_s + 2)  # already handled before the restart: not again
    assert len([r for _, r in third.log.records(event_id=b["id"]) if r.action.value == "reassign"]) == 1
    dispatched = [r.data["member"] for _, r in third.log.records() if r.action.value in ("dispatch", "reassign")]
    assert len(dispatched) == len(set(dispatched))  # nobody got two assignments


def test_shift_swap_moves_duty_and_survives_a_restart(api: Api, xiaohe: District, origin: float) -> None:
    twin = api.brain.twin
    roster = twin.district.roster
    duty = roster.on_duty_ids(origin)
    role_members = [m for m in roster.members if m.role.value == "co_governance"]
    on = next(m for m in role_members if m.id in duty)
    off = next(m for m in role_members if m.id not in duty)
    r = api.http.post("/api/v1/roster/swaps", json={"member_a": on.id, "member_b": off.id, "date": "2026-03-02"},
                      headers=api.auth("dispatcher"))
    assert r.status_code == 200, r.text
    assert off.id in r.json()["roster"]["on_duty"] and on.id not in r.json()["roster"]["on_duty"]
    assert xiaohe.roster.on_duty_ids(origin) == duty  # the shared district is untouched
    again = Brain(xiaohe, open_log(api.brain.log.url), Clock(speed=1.0, origin=origin))
    assert off.id in again.twin.district.roster.on_duty_ids(origin)
    bad = [({"member_a": on.id, "member_b": on.id, "date": "2026-03-02"}, "member_b"),
           ({"member_a": on.id, "member_b": "NOBODY", "date": "2026-03-02"}, "member_b"),
           ({"member_a": on.id, "member_b": off.id, "date": "2026-02-30"}, "date"),
           ({"member_a": on.id, "member_b": next(m.id for m in roster.members if m.role.value == "grid_worker"),
             "date": "2026-03-02"}, "member_b")]
    for body, field in bad:
        r = api.http.post("/api/v1/roster/swaps", json=body, headers=api.auth("dispatcher"))
        assert r.status_code == 422 and r.json()["error"]["field"] == field, (body, r.text)
    assert api.http.post("/api/v1/roster/swaps", json=bad[0][0], headers=api.auth("viewer")).status_code == 403


def test_whatif_fork_over_http(api: Api, xiaohe: District) -> None:
    for cam in xiaohe.cameras[10:50:10]:  # four places apart (reports at one place would merge)
        lon, lat = xiaohe.projection.to_lonlat(cam.x, cam.y)
        api.report((float(lon), float(lat)))
    body = {"hours": 2, "change": {"staff.co_governance.count": 70}, "replications": 2, "seed": 3}
    r = api.http.post("/api/v1/whatif", json=body, headers=api.auth("dispatcher"))
    assert r.status_code == 200, r.text
    out = r.json()
    open_now = sum(e.is_open for e in api.brain.twin.events.values())
    assert open_now >= 3 and out["open_events_at_fork"] == open_now and out["hours"] == 2
    assert set(out["as_is"]) == set(out["proposed"]) and "on_scene_within_180s" in out["as_is"]
    assert out["as_is"]["responded_within_60s"]["n"] == 2
    # the fork ran in a worker process of its own, scheduled below the live twin
    import os

    import psutil

    runner = api.http.app.state.forks  # type: ignore[attr-defined]
    pid = api.http.portal.call(runner.worker_pid)  # type: ignore[attr-defined]
    assert pid != os.getpid() and psutil.Process(pid).nice() >= psutil.Process().nice() + 10
    r = api.http.post("/api/v1/whatif", json={**body, "change": {"staff.nobody.count": 3}},
                      headers=api.auth("dispatcher"))
    assert r.status_code == 422 and r.json()["error"]["field"].startswith("change")
    r = api.http.post("/api/v1/whatif", json={**body, "hours": 0}, headers=api.auth("dispatcher"))
    assert r.status_code == 422 and r.json()["error"]["field"] == "hours"
    h = {"Authorization": f"Bearer {api.handler(api.brain.district.roster.members[0].id)}"}
    assert api.http.post("/api/v1/whatif", json=body, headers=h).status_code == 403


def test_the_replay_window_lists_the_records_of_the_events_reported_in_it(api: Api, spot: tuple[float, float]
                                                                          ) -> None:
    """`GET /api/v1/replay`: every record of the events reported in the window, in time order;
    an empty or reversed window is refused naming `until`."""
    t = datetime.fromisoformat(api.http.get("/health").json()["now"]).timestamp()
    made = api.report(spot, scenario="TR01")
    r = api.http.get("/api/v1/replay", params={"since": t - 60, "until": t + 3600}, headers=api.auth("viewer"))
    assert r.status_code == 200, r.text
    body = r.json()
    mine = [x for x in body["records"] if x["event_id"] == made["id"]]
    assert [x["action"] for x in mine][:2] == ["report", "dispatch"] and body["truncated"] is False
    assert body["events"] == 1
    ats = [x["at"] for x in body["records"]]
    assert ats == sorted(ats)
    bad = api.http.get("/api/v1/replay", params={"since": t, "until": t}, headers=api.auth("viewer"))
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "until"
    assert api.http.get("/api/v1/replay", params={"since": t, "until": t + 1}).status_code == 401


def test_kpis_per_area_and_per_shift_partition_the_events(api: Api, xiaohe: District) -> None:
    for k in (0, 60, 120):
        c = xiaohe.cameras[k]
        api.report(tuple(float(v) for v in xiaohe.projection.to_lonlat(c.x, c.y)), scenario="TR01")  # type: ignore[arg-type]
    k = api.http.get("/api/v1/kpis", headers=api.auth("viewer")).json()
    assert sum(v["events"] for v in k["by_area"].values()) == k["events"] == 3
    assert set(k["by_area"]) <= {a.id for a in xiaohe.regions.areas}
    assert list(k["by_shift"]) == ["day"] and k["by_shift"]["day"]["events"] == 3  # reported at 10:00


def test_the_staffing_optimiser_runs_as_a_job_followed_to_its_plan(tiny_folder: Path, tmp_path: Path) -> None:
    """`POST /api/v1/staffing` starts the optimiser in a worker process; `GET /api/v1/staffing/{job}`
    follows it to the plan (positions per area and shift, people, the cost/service curve).
    A second job while one runs is 429; a bad question names its field."""
    import time as _time

    import scenarios

    district = scenarios.load(str(tiny_folder))
    origin = datetime(2026, 3, 2, 10, 0, tzinfo=district.roster.tz).timestamp()
    brain = Brain(district, open_log(tmp_path / "events.db"), Clock(speed=1.0, origin=origin))
    app = create_app(LocalClient(brain), tick_s=None, district=district, scenario=str(tiny_folder))
    h = {"Authorization": f"Bearer {brain.create_token('dispatcher', name='planner')['token']}"}
    with TestClient(app) as http:
        bad = http.post("/api/v1/staffing", json={"target": 1.5}, headers=h)
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "target"
        r = http.post("/api/v1/staffing", json={"target": 0.8, "days": 2, "replications": 2}, headers=h)
        assert r.status_code == 202, r.text
        job = r.json()
        if job["state"] == "running":
            again = http.post("/api/v1/staffing", json={"target": 0.8, "days": 2}, headers=h)
            assert again.status_code in (202, 429)
        deadline = _time.monotonic() + 240
        while job["state"] == "running" and _time.monotonic() < deadline:
            _time.sleep(0.5)
            job = http.get(f"/api/v1/staffing/{job['job']}", headers=h).json()
        assert job["state"] == "done", job
        plan = job["result"]
        assert set(plan["per_area"]) == {a.id for a in district.regions.areas}
        assert plan["positions"] == sum(sum(v.values()) for v in plan["per_area"].values())
        assert plan["headcount_total"] == sum(plan["headcount"].values()) and plan["curve"]
        assert job["progress"] and job["question"]["target"] == 0.8
        assert http.get("/api/v1/staffing/S9999", headers=h).status_code == 404
    brain.log.close()
