"""Road units (the road is the smallest unit of responsibility) following a real brain's log,
and the shards that hold entities by area — in this process, as in unit tests and notebooks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actors.brain import Brain
from actors.client import LocalClient
from actors.host import AreaShards, area_groups
from actors.roads import RoadUnits
from twin.district import District
from twin.errors import NotFound, ValidationError

pytestmark = pytest.mark.timeout(120)


def spot_of(xiaohe: District, k: int) -> tuple[float, float]:
    c = xiaohe.cameras[k]
    lon, lat = xiaohe.projection.to_lonlat(c.x, c.y)
    return float(lon), float(lat)


def report(brain: Brain, spot: tuple[float, float], scenario: str = "CM01", **extra: Any) -> dict[str, Any]:
    return brain.create_event({"scenario": scenario, "lon": spot[0], "lat": spot[1], "source": "camera", **extra},
                              actor="test")["event"]


def test_road_areas_cover_every_patrolled_road(xiaohe: District) -> None:
    areas = xiaohe.road_areas()
    assert len(areas) == len(xiaohe.responsible)
    assert set(areas.values()) == {a.id for a in xiaohe.regions.areas}
    seg = xiaohe.roads.segment(next(iter(areas)))
    mid = seg.line.interpolate(0.5, normalized=True)
    lon, lat = xiaohe.projection.to_lonlat(mid.x, mid.y)
    assert xiaohe.locate(float(lon), float(lat)).area_id == areas[seg.id]


def test_a_road_unit_counts_reports_duplicates_repeats_and_open_events(xiaohe: District, brain: Brain) -> None:
    units = RoadUnits(xiaohe, LocalClient(brain), catch_up=True)
    spot = spot_of(xiaohe, 0)
    first = report(brain, spot)
    dup = report(brain, spot)                       # the same problem again at once: merged
    other = report(brain, spot, "TR01")              # another scenario on the same road
    assert dup["state"] == "merged" and first["road_id"] == other["road_id"]
    road = units.road(first["road_id"])
    assert road["open_events"] == sorted([first["id"], other["id"]])
    assert road["reports"] == 2 and road["reports_last_24h"] == 2 and road["repeat_alarms"] == 0
    assert road["area_id"] == first["area_id"] and road["squad_id"] == xiaohe.squad_for_area(first["area_id"]).id
    duty = xiaohe.roster.on_duty_ids(brain.now())
    assert road["on_duty"] and set(road["on_duty"]) <= duty
    assert all(xiaohe.roster.member(m).squad_id == road["squad_id"] for m in road["on_duty"])
    # the first case is closed; then the same scenario comes back on the road: a repeat alarm
    brain.act(first["id"], "false_alarm", {"reason": "nothing there"}, actor="dispatcher")
    again = report(brain, spot)
    assert again["state"] != "merged"
    road = units.road(first["road_id"])
    assert road["open_events"] == sorted([other["id"], again["id"]])
    assert road["reports"] == 3 and road["repeat_alarms"] == 1
    assert units.hot(limit=1)[0]["road_id"] == first["road_id"]
    with pytest.raises(NotFound):
        units.road("no-such-road")


def test_road_shards_route_by_area_and_merge_the_busiest(xiaohe: District, brain: Brain) -> None:
    client = LocalClient(brain)
    shards = AreaShards(xiaohe, 2, kinds=("roads",), client=client)
    assert [len(g) for g in shards.groups] == [3, 2] and area_groups(xiaohe, 9) == [[a] for a in
                                                                                    ["A1", "A2", "A3", "A4", "A5"]]
    events = [report(brain, spot_of(xiaohe, k)) for k in (0, 40, 80, 120, 160)]
    by_area = {e["area_id"] for e in events}
    assert len(by_area) >= 2  # the reports fall in areas of both shards

    async def main() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
        everything = await shards.hot(limit=50)
        one_area = await shards.hot(limit=50, area_id=events[0]["area_id"])
        one = await shards.road(events[-1]["road_id"])
        return everything, one_area, one

    everything, one_area, one = asyncio.run(main())
    assert {r["road_id"] for r in everything} == {e["road_id"] for e in events}
    assert all(r["area_id"] == events[0]["area_id"] for r in one_area)
    assert one["open_events"] and events[-1]["id"] in one["open_events"]
    with pytest.raises(ValidationError, match="area_id"):
        asyncio.run(shards.hot(area_id="Z9"))
    with pytest.raises(NotFound):
        asyncio.run(shards.road("no-such-road"))


def test_shards_hold_every_entity_of_their_areas(xiaohe: District, brain: Brain) -> None:
    shards = AreaShards(xiaohe, 2, kinds=("cameras", "roads", "patrols"), client=LocalClient(brain))
    grid_area = {g.id: xiaohe.regions.area_of(g.id) for g in xiaohe.regions.grids}
    cams = [shards.local(k, "cameras").cameras for k in range(2)]
    assert sum(len(c) for c in cams) == len(xiaohe.cameras)
    members = [shards.local(k, "patrols").members for k in range(2)]
    assert sum(len(m) for m in members) == len(xiaohe.roster.members)
    roads = [shards.local(k, "roads").area_of for k in range(2)]
    assert sum(len(r) for r in roads) == len(xiaohe.responsible)
    for k, areas in enumerate(shards.groups):
        assert {grid_area[c.grid_id] for c in cams[k].values()} <= set(areas)
        assert {xiaohe.roster.member(m).area_id for m in members[k]} <= set(areas)
        assert set(roads[k].values()) <= set(areas)
        assert all(shards.routes["cameras"][c] == k for c in cams[k])
    assert len(AreaShards(xiaohe, 9).shards) == len(xiaohe.regions.areas)  # at most one shard per area
    with pytest.raises(ValueError, match="kinds"):
        AreaShards(xiaohe, kinds=("lamps",))
    with pytest.raises(ValueError, match="client"):
        AreaShards(xiaohe, kinds=("roads",))


def test_road_units_over_http(xiaohe: District, brain: Brain) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    token = brain.create_token("viewer")["token"]
    handler = brain.create_token("ingest")["token"]
    ev = report(brain, spot_of(xiaohe, 7))
    with TestClient(create_app(LocalClient(brain), tick_s=None)) as http:
        h = {"Authorization": f"Bearer {token}"}
        r = http.get(f"/api/v1/roads/{ev['road_id']}", headers=h)
        assert r.status_code == 200 and r.json()["open_events"] == [ev["id"]]
        assert http.get("/api/v1/roads", headers=h).json()["roads"][0]["road_id"] == ev["road_id"]
        bad = http.get("/api/v1/roads?limit=0", headers=h)
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "limit"
        area = http.get("/api/v1/roads?area_id=nowhere", headers=h)
        assert area.status_code == 422 and area.json()["error"]["field"] == "area_id"
        assert http.get("/api/v1/roads/nope", headers=h).status_code == 404
        assert http.get("/api/v1/roads", headers={"Authorization": f"Bearer {handler}"}).status_code == 403
        assert http.get("/api/v1/roads").status_code == 401


def test_followers_read_the_newest_transitions_from_memory_as_the_log_has_them(
        xiaohe: District, brain: Brain, tmp_path: Any) -> None:
    from actors.eventlog import open_log
    from actors.live import Clock, LiveTwin, _Tail

    for k in range(6):
        report(brain, spot_of(xiaohe, k * 7))
    brain.twin.flush()
    last = brain.twin.last_seq
    in_log = brain.log.transitions(0, 1000)
    assert len(in_log) == last and brain.twin.transitions(0, 1000) == in_log
    assert brain.twin.transitions(3, 2) == in_log[3:5]
    assert brain.twin.transitions(last, 10) == []
    assert brain.twin._committer.tail.after(0, 10) is not None  # served from memory
    # a restarted twin holds nothing yet: it reads the log, then memory from its first write on
    again = LiveTwin(xiaohe, open_log(tmp_path / "events.db"), Clock(origin=brain.now()))
    assert again._committer.tail.after(0, 10) is None and again.transitions(0, 1000) == in_log
    # road changes carry the event's road and scenario
    changes = brain.road_changes(0)
    assert [c[:5] for c in changes] == in_log
    assert all(c[5] == brain.twin.events[c[1]].location.road_id and c[6] == brain.twin.events[c[1]].scenario
               for c in changes)
    again.log.close()
    # a gap (a record some other writer made) starts the tail afresh; it stays bounded
    tail = _Tail(size=3)
    recs = [r for _, r in brain.log.records(limit=9)]
    tail.add(recs[:2], [1, 2])
    tail.add(recs[2:4], [5, 6])
    assert tail.after(0, 10) is None and [r[0] for r in tail.after(4, 10)] == [5, 6]  # type: ignore[union-attr]
    tail.add(recs[4:9], [7, 8, 9, 10, 11])
    assert len(tail.seqs) <= 6 and tail.after(10, 5) == [(11, recs[8])]


def test_streams_read_records_from_memory_as_the_log_has_them(xiaohe: District, brain: Brain) -> None:
    import json

    for k in range(5):
        report(brain, spot_of(xiaohe, k * 9))
    ev = report(brain, spot_of(xiaohe, 60))
    brain.act(ev["id"], "false_alarm", {"reason": "nothing there"}, actor="dispatcher")
    brain.twin.flush()
    assert brain.twin._committer.tail.after(0, 1) is not None  # (served from memory)
    from_memory = brain.changes(0, 1000)
    from_log = [brain.record_view(seq, r) for seq, r in brain.log.records(since=0)]
    assert len(from_memory) == brain.twin.last_seq
    assert json.dumps(from_memory, sort_keys=True) == json.dumps(from_log, sort_keys=True)
    assert [r["log_seq"] for r in brain.changes(3, 2)] == [4, 5]


def test_patrol_teams_play_a_dispatch_through_to_closure_asking_only_their_members_positions(
        xiaohe: District, brain: Brain, monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulated handlers of a shard run the simulator's handler script: the first member
    signs (a grid worker then reminds, and the case may climb), the last handler travels,
    handles and resolves; where a member stands is asked for that member alone (a 100x roster
    has 17k members)."""
    from actors.feed import PatrolTeams

    asked: list[Any] = []
    real = brain.positions
    monkeypatch.setattr(brain, "positions", lambda members=None: asked.append(members) or real(members))
    teams = PatrolTeams(xiaohe, LocalClient(brain))
    ev = report(brain, spot_of(xiaohe, 3))
    member = ev["assignee"]
    assert member is not None and ev["state"] == "dispatched"
    now = brain.now()
    for _ in range(400):  # ten-minute steps until it is closed
        now += 600.0
        teams.step(now)
        if brain.get_event(ev["id"])["state"] == "closed":
            break
    done = brain.get_event(ev["id"])
    assert done["state"] == "closed"
    actors = [(h["actor"], h["action"]) for h in done["history"]]
    last = done["assignee"]
    assert (member, "sign") in actors
    assert (last, "sign") in actors and (last, "resolve") in actors and ("verifier", "verify") in actors
    assert (last, "arrive") in actors or done["result"].startswith("self-corrected")
    assert teams._travel_estimate(last, ev["id"]) >= 0
    assert asked and all(len(a) == 1 for a in asked)
    one = brain.positions([last])
    assert len(one) == 1 and one[0]["member_id"] == last and one[0]["busy"] is False
    with pytest.raises(ValidationError, match="members"):
        brain.positions(["NOBODY"])


def test_a_handler_acts_only_while_holding_the_event(xiaohe: District, brain: Brain) -> None:
    """``holder``: the brain refuses an act by a member the event has moved away from (a
    simulated handler's late signature after a reassignment), and changes nothing."""
    from twin.desk import NotHolder

    ev = report(brain, spot_of(xiaohe, 5))
    first = ev["assignee"]
    role = next(m["role"] for m in brain.members() if m["id"] == first)
    other = next(m["id"] for m in brain.members() if m["role"] == role and m["id"] != first
                 and not m["busy"] and m["on_duty"])
    brain.act(ev["id"], "reassign", {"member": other, "reason": "closer"}, actor="dispatcher")
    before = brain.get_event(ev["id"])
    with pytest.raises(NotHolder, match=first):
        brain.act(ev["id"], "sign", {"holder": first}, actor=first)
    assert brain.get_event(ev["id"])["version"] == before["version"]
    signed = brain.act(ev["id"], "sign", {"holder": other}, actor=other)["event"]
    assert (signed["state"], signed["assignee"]) == ("signed", other)


def test_an_actor_restarted_before_the_brain_waits_for_it() -> None:
    """A shard or camera actor that Ray restarts with the brain after a node's loss may start
    first: it tries again while the brain is away (an error in a Ray actor's constructor would
    end it for good), and gives up on anything else at once."""
    from actors.client import BrainUnavailable
    from actors.host import until_brain

    tries: list[int] = []

    def build() -> str:
        tries.append(1)
        if len(tries) == 1:
            raise ValueError("Failed to look up actor with name 'brain'.")
        if len(tries) < 4:
            raise BrainUnavailable("the brain is restarting")
        return "built"

    assert until_brain(build, timeout_s=30) == "built" and len(tries) == 4

    def broken() -> str:
        raise ValueError("kinds must be some of cameras, roads, patrols")

    with pytest.raises(ValueError, match="kinds"):
        until_brain(broken, timeout_s=30)
    with pytest.raises(BrainUnavailable):
        until_brain(lambda: (_ for _ in ()).throw(BrainUnavailable("down")), timeout_s=0.1)
