"""`streetbrain serve` as a real process: HTTP on loopback, the SSE stream, the admin token from
the environment, a Ray-hosted brain, SIGKILL and restart with nothing lost or doubled, and
`streetbrain replay` of the stored day."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from twin.district import District

BIN = Path(sys.executable).parent / "streetbrain"
TOKEN = "test-admin-token-0123456789abcdef"
pytestmark = pytest.mark.timeout(300)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, db: Path | str, *, ray: bool, extra: tuple[str, ...] = (), out: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, **(env or {}), "STREETBRAIN_ADMIN_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
        args = [str(BIN), "serve", "--db", str(db), "--port", str(self.port), *extra]
        if not ray:
            args.append("--no-ray")
        self.out = out or Path(str(db)).with_suffix(f".{self.port}.out")
        self.proc = subprocess.Popen(args, env=env, stdout=self.out.open("w"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited {self.proc.returncode}: {self.out.read_text()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError("serve did not answer /health within 120 s: " + self.out.read_text())

    def kill(self, sig: int = signal.SIGKILL) -> None:
        with __import__("contextlib").suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        self.proc.wait(timeout=60)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill(signal.SIGINT)


H = {"Authorization": f"Bearer {TOKEN}"}


def listening() -> set[str]:
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=False).stdout
    return {line.split()[3] for line in out.splitlines() if line.strip()}


@pytest.fixture(scope="module")
def spot(xiaohe: District) -> tuple[float, float]:
    c = xiaohe.cameras[5]
    lon, lat = xiaohe.projection.to_lonlat(c.x, c.y)
    return float(lon), float(lat)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "events.db"


def report(url: str, spot: tuple[float, float], key: str) -> dict[str, Any]:
    r = httpx.post(url + "/api/v1/events", json={"scenario": "TR01", "lon": spot[0], "lat": spot[1],
                                                 "source": "camera"},
                   headers={**H, "Idempotency-Key": key}, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()["event"]


@pytest.mark.skipif(not BIN.exists() or __import__("shutil").which("ss") is None, reason="needs the CLI and ss")
def test_serve_with_ray_streams_and_stays_on_loopback(db: Path, spot: tuple[float, float]) -> None:
    before = listening()
    # (a stale RAY_ADDRESS, as `ray start` elsewhere leaves: serve still starts a cluster of its own)
    server = Server(db, ray=True, env={"RAY_ADDRESS": "127.0.0.1:9"})
    try:
        health = httpx.get(server.url + "/health").json()
        assert health["status"] == "ok" and health["district"] == "xiaohe"
        out = server.out.read_text()
        assert TOKEN not in out  # the token came from the environment: never printed
        assert not [x for x in out.splitlines() if "WARNING" in x or "ERROR" in x or " E " in x], out  # quiet
        ps = subprocess.run(["ps", "-o", "args=", "-g", str(server.proc.pid)], capture_output=True, text=True,
                            check=False).stdout
        assert "raylet" in ps and "dashboard/dashboard.py" not in ps, ps  # Ray without its dashboard head
        new = listening() - before
        exposed = {a for a in new if not a.startswith(("127.0.0.1:", "[::1]:", "[::ffff:127.0.0.1]:", "localhost:"))}
        assert new and not exposed, exposed
        got: list[dict[str, Any]] = []
        ready = threading.Event()

        def watch() -> None:
            with httpx.stream("GET", server.url + "/api/v1/stream", headers=H, timeout=30) as r:
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
                for line in r.iter_lines():
                    ready.set()
                    if line.startswith("data: "):
                        got.append(json.loads(line[6:]))
                        if any(g["action"] == "dispatch" for g in got):
                            return

        t = threading.Thread(target=watch, daemon=True)
        t.start()
        assert ready.wait(20)
        time.sleep(0.5)
        ev = report(server.url, spot, "stream-1")
        t.join(20)
        assert [g["action"] for g in got][:2] == ["report", "dispatch"]
        assert got[0]["event_id"] == ev["id"] and got[1]["data"]["member"] == ev["assignee"]
        r = httpx.get(server.url + f"/api/v1/events/{ev['id']}", headers=H)
        assert r.status_code == 200 and len(r.json()["history"]) == 2
        assert httpx.get(server.url + "/api/v1/events", headers={"Authorization": "Bearer nope"}).status_code == 401
    finally:
        server.stop()


@pytest.mark.skipif(not BIN.exists(), reason="needs the CLI")
def test_sigkill_and_restart_lose_nothing_and_dispatch_nothing_twice(db: Path, spot: tuple[float, float],
                                                                     tmp_path: Path) -> None:
    server = Server(db, ray=False)
    acked: dict[str, str] = {}
    try:
        for k in range(25):
            acked[f"k{k}"] = report(server.url, spot, f"k{k}")["id"]
    finally:
        server.kill(signal.SIGKILL)
    again = Server(db, ray=False)
    try:
        listed = httpx.get(again.url + "/api/v1/events", params={"limit": 1000}, headers=H).json()["events"]
        ids = [e["id"] for e in listed]
        assert sorted(ids) == sorted(acked.values()) and len(ids) == len(set(ids))
        # A client retrying an acknowledged request after the crash gets the same event back.
        assert report(again.url, spot, "k3")["id"] == acked["k3"]
        assert len(httpx.get(again.url + "/api/v1/events", params={"limit": 1000}, headers=H).json()["events"]) == 25
    finally:
        again.stop()
    from actors.eventlog import open_log

    with open_log(db) as log:
        recs = [r for _, r in log.records()]
    dispatches = [(r.event_id, r.data["member"]) for r in recs if r.action.value == "dispatch"]
    assert len({e for e, _ in dispatches}) == len(dispatches)  # no event dispatched twice
    # Re-play the stored day into a fresh twin.
    out = subprocess.run([str(BIN), "replay", "--db", str(db), "--into", str(tmp_path / "again.db"), "--json"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["events"] == 25 and result["records"] == len(recs) and result["consistent"] is True
    bad = subprocess.run([str(BIN), "replay", "--db", str(db), "--since", "yesterday"], capture_output=True,
                         text=True, timeout=120, check=False)
    assert bad.returncode == 2 and "since" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.skipif(not BIN.exists(), reason="needs the CLI")
def test_serve_on_postgresql_survives_sigkill(postgres_url: str, spot: tuple[float, float], tmp_path: Path) -> None:
    """The multi-node store end to end: the event log in PostgreSQL, the server killed and
    restarted, every acknowledged event there once."""
    import psycopg

    schema = f"serve_{os.getpid()}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = f"{postgres_url}?options=-csearch_path%3D{schema}"
    server = Server(url, ray=False, out=tmp_path / "pg.out")
    try:
        acked = [report(server.url, spot, f"pg{k}")["id"] for k in range(5)]
        assert httpx.get(server.url + "/health").json()["db"].startswith("postgresql://")
    finally:
        server.kill(signal.SIGKILL)
    again = Server(url, ray=False, out=tmp_path / "pg2.out")
    try:
        listed = httpx.get(again.url + "/api/v1/events", params={"limit": 100}, headers=H).json()["events"]
        assert sorted(e["id"] for e in listed) == sorted(acked)
        assert report(again.url, spot, "pg2")["id"] == acked[2]  # a retried key: the same event, nothing new
    finally:
        again.stop()


@pytest.mark.skipif(not BIN.exists(), reason="needs the CLI")
def test_serve_with_ray_hosts_area_shards_of_cameras_road_units_and_patrol_teams(db: Path, spot: tuple[float, float]
                                                                            ) -> None:
    """With the feed, simulated handlers run in patrol-shard actors of their own and act through the
    brain actor; road units follow the log in their shard actor; every actor is a process of Ray's."""
    server = Server(db, ray=True, extra=("--speed", "60", "--feed", "synthetic", "--feed-rate", "4", "--start",
                                         "09:00", "--shards", "3"))
    try:
        out = server.out.read_text()
        assert "actors: brain, 3 area shards holding cameras, roads, patrols of 2 + 2 + 1 areas" in out, out
        titles = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
        assert titles.count("ray::ShardActor") >= 3 and "ray::BrainHost" in titles
        ev = report(server.url, spot, "roads-1")
        deadline = time.monotonic() + 60
        acted: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not acted:  # an hour a minute: handlers sign within seconds
            time.sleep(1)
            rows = httpx.get(server.url + "/api/v1/events?limit=500", headers=H, timeout=10).json()["events"]
            acted = [e for e in rows if e["signed_at"] is not None]
        assert acted, "no simulated handler signed anything"
        r = httpx.get(server.url + f"/api/v1/roads/{ev['road_id']}", headers=H, timeout=10)
        assert r.status_code == 200, r.text
        unit = r.json()
        assert unit["area_id"] == ev["area_id"] and unit["reports"] >= 1 and unit["squad_id"].endswith(ev["area_id"])
        busiest = httpx.get(server.url + "/api/v1/roads?limit=5", headers=H, timeout=10).json()["roads"]
        assert busiest and all(b["open_events"] or b["reports_last_24h"] for b in busiest)
        bad = httpx.get(server.url + "/api/v1/roads?area_id=Z9", headers=H, timeout=10)
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "area_id"
        assert httpx.get(server.url + "/api/v1/roads/nope", headers=H, timeout=10).status_code == 404
    finally:
        server.stop()


def _cameras_file(xiaohe: District, folder: Path) -> tuple[Path, str, str]:
    """A synthetic camera that can show illegal parking, and a stream nobody serves."""
    from detection.synthetic import can_show

    synthetic = next(c.id for c in xiaohe.cameras if can_show(c, xiaohe.catalog["TR01"]))
    dead = next(c.id for c in xiaohe.cameras if c.id != synthetic)
    path = folder / "cameras.toml"
    path.write_text(f'fps = 1\nretry_s = 1\n[cameras.{synthetic}]\nsource = "synthetic"\ndetector = "street"\n'
                    f'[cameras.{dead}]\nsource = "rtsp://cam:pw@127.0.0.1:9/live"\n')
    return path, synthetic, dead


def _streams_until(url: str, synthetic: str, dead: str) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + 60
    rows: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        r = httpx.get(url + "/api/v1/cameras/streams", headers=H, timeout=10)
        assert r.status_code == 200, r.text
        rows = {row["camera"]: row for row in r.json()["streams"]}
        if rows[synthetic]["frames"] >= 3 and rows[dead]["state"] == "offline":
            return rows
        time.sleep(0.5)
    raise AssertionError(f"camera streams did not come up: {rows}")


@pytest.mark.skipif(not BIN.exists(), reason="needs the CLI")
def test_serve_with_ray_runs_city_eye_camera_actors(db: Path, xiaohe: District, tmp_path: Path) -> None:
    """`--cameras FILE`: a camera actor of Ray's (with the file's CPU and GPU share) renders the
    synthetic camera from the feed's draws and analyses it; a dead stream is reported offline
    with its password masked; the streams are listed to readers only."""
    path, synthetic, dead = _cameras_file(xiaohe, tmp_path)
    server = Server(db, ray=True, extra=("--cameras", str(path), "--speed", "60", "--feed", "synthetic", "--start",
                                         "09:00", "--shards", "1"))
    try:
        out = server.out.read_text()
        assert "City Eye: 2 cameras with video (1 stream, 1 synthetic) at 1 fps on cpu; 1 camera actor (1 CPU, 0 GPU each)" \
            in out, out
        titles = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
        assert "ray::CityEyeActor" in titles
        rows = _streams_until(server.url, synthetic, dead)
        assert rows[synthetic]["state"] == "online" and rows[synthetic]["detector"] == "street"
        assert rows[dead]["source"] == "rtsp://cam:***@127.0.0.1:9/live" and "cannot be opened" in rows[dead]["error"]
        assert httpx.get(server.url + "/api/v1/cameras/streams", timeout=10).status_code == 401
        assert "pw@" not in server.out.read_text()
    finally:
        server.stop()


@pytest.mark.skipif(not BIN.exists(), reason="needs the CLI")
def test_serve_without_ray_runs_city_eye_in_process_and_refuses_a_bad_cameras_file(db: Path, xiaohe: District,
                                                                                  tmp_path: Path) -> None:
    path, synthetic, dead = _cameras_file(xiaohe, tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text('[cameras.K9999]\nsource = "x.mp4"\n')
    run = subprocess.run([str(BIN), "serve", "--db", str(tmp_path / "x.db"), "--cameras", str(bad), "--no-ray"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 2 and run.stderr.strip().splitlines() == [
        f"error: {bad}: cameras.K9999: no camera 'K9999' in district 'xiaohe' ({len(xiaohe.cameras)} cameras, "
        f"e.g. {min(c.id for c in xiaohe.cameras)})"], run.stderr
    server = Server(db, ray=False, extra=("--cameras", str(path), "--speed", "60", "--feed", "synthetic"))
    try:
        rows = _streams_until(server.url, synthetic, dead)
        assert "in this process" in server.out.read_text()
        assert rows[synthetic]["state"] == "online"
    finally:
        server.stop()
