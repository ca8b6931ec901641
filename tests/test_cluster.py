"""`streetbrain serve --ray-address` on a real multi-node Ray cluster on this machine: a head
node (no CPUs, as Ray advises for clusters) and two worker nodes, with Ray's own
`ray.cluster_utils.Cluster` on 127.0.0.1 with token authentication (`tests/ray_cluster.py`;
`ray start` refuses a second node on loopback); the event log in PostgreSQL; the area shards spread
over the nodes. Under load, the node holding the brain is killed (its raylet and every process
of it, SIGKILL): Ray restarts the brain on the other node from the scenario's name and the log,
and every acknowledged event is there once, none dispatched twice. Every listening socket stays
on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.test_serve import BIN, H, Server, listening
from twin.district import District

pytestmark = [pytest.mark.timeout(600),
              pytest.mark.skipif(not BIN.exists() or shutil.which("ss") is None or shutil.which("pgrep") is None,
                                 reason="needs the CLI, ss and pgrep")]

#: Where the brain and the shards are, asked from a driver of its own.
WHERE = """
import json, ray
ray.init(address={address!r}, log_to_driver=False, namespace="streetbrain")
out = {{"brain": ray.get(ray.get_actor("brain").where.remote(), timeout=60),
       "shards": [ray.get(ray.get_actor(f"area-shard-{{k}}").where.remote(), timeout=60) for k in range(2)],
       "nodes": [{{"id": n["NodeID"], "alive": n["Alive"], "raylet": n["RayletSocketName"]}} for n in ray.nodes()]}}
print("WHERE " + json.dumps(out))
"""


def loopback(addr: str) -> bool:
    return addr.startswith(("127.0.0.1:", "[::1]:", "[::ffff:127.0.0.1]:", "localhost:"))


class RayCluster:
    """A head node without CPUs and worker nodes of two CPUs each, on loopback, with token
    authentication: Ray's own ``Cluster`` in a process of its own (``tests/ray_cluster.py``)."""

    def __init__(self, workers: int = 2) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        self.env = {**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token",
                    "RAY_AUTH_TOKEN": secrets.token_hex(16), "RAY_USAGE_STATS_ENABLED": "0"}
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("ray_cluster.py")), str(workers)],
                                     env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     start_new_session=True)
        info = self._answer()
        self.address: str = info["address"]
        self.head: str = info["head"]
        self.nodes: dict[str, str] = info["nodes"]

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"the cluster process ended ({self.proc.poll()})"
        return json.loads(line)  # type: ignore[no-any-return]

    def where(self) -> dict[str, Any]:
        out = subprocess.run([sys.executable, "-c", WHERE.format(address=self.address)], env=self.env,
                             capture_output=True, text=True, timeout=120, check=False)
        line = next((x for x in out.stdout.splitlines() if x.startswith("WHERE ")), None)
        assert line is not None, out.stdout + out.stderr
        return json.loads(line[6:])  # type: ignore[no-any-return]

    def kill_node(self, node_id: str) -> list[int]:
        """SIGKILL every process of one node (a machine lost); the pids killed."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"kill {node_id}\n")
        self.proc.stdin.flush()
        return list(self._answer()["killed"])

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def spot(xiaohe: District) -> tuple[float, float]:
    lon, lat = xiaohe.projection.to_lonlat(xiaohe.cameras[5].x, xiaohe.cameras[5].y)
    return float(lon), float(lat)


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    c = RayCluster()
    try:
        yield c
    finally:
        c.stop()


def test_a_file_event_log_is_refused_on_a_multi_node_cluster(cluster: RayCluster, tmp_path: Path) -> None:
    """A brain that Ray may restart on another node needs a log every node reaches."""
    out = subprocess.run([str(BIN), "serve", "--ray-address", cluster.address, "--db", str(tmp_path / "events.db"),
                          "--duration", "1"], env={**cluster.env, "STREETBRAIN_ADMIN_TOKEN": "x" * 32},
                         capture_output=True, text=True, timeout=180, check=False)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "db:" in out.stderr and "postgresql://" in out.stderr and "Traceback" not in out.stderr


def test_brain_survives_the_loss_of_its_node_on_a_multi_node_cluster(cluster: RayCluster, postgres_url: str,
                                                                      spot: tuple[float, float],
                                                                      tmp_path: Path) -> None:
    import psycopg

    schema = f"cluster_{os.getpid()}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    db = f"{postgres_url}?options=-csearch_path%3D{schema}"
    before = listening()
    server = Server(db, ray=True, extra=("--ray-address", cluster.address, "--shards", "2"),
                    out=tmp_path / "serve.out", env=cluster.env)
    acked: dict[str, str] = {}
    refused = {"503": 0, "conn": 0}
    times: list[float] = []
    stop = threading.Event()

    def load() -> None:
        """~20 reports a second, each retried with its key until acknowledged."""
        k = 0
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                key = f"c{k}"
                while not stop.is_set():
                    try:
                        r = http.post(server.url + "/api/v1/events", headers={**H, "Idempotency-Key": key},
                                      json={"scenario": "TR01", "lon": spot[0], "lat": spot[1], "source": "camera"})
                    except httpx.HTTPError:
                        refused["conn"] += 1
                        time.sleep(0.2)
                        continue
                    if r.status_code == 201:
                        acked[key] = r.json()["event"]["id"]
                        times.append(time.monotonic())
                        break
                    assert r.status_code == 503, r.text  # the brain restarting: try again later
                    refused["503"] += 1
                    time.sleep(float(r.headers.get("retry-after", "0.5")))
                k += 1
                time.sleep(0.05)

    try:
        out = server.out.read_text()
        assert "WARNING" not in out and " E " not in out and "ERROR" not in out, out
        where = cluster.where()
        alive = {n["id"] for n in where["nodes"] if n["alive"]}
        assert alive == set(cluster.nodes)
        brain_node = where["brain"]["node_id"]
        assert brain_node in alive and brain_node != cluster.head  # a CPU asked for: off the head
        assert len({s["node_id"] for s in where["shards"]}) == 2, where  # the shards spread over two nodes
        exposed = {a for a in listening() - before if not loopback(a)}
        assert not exposed, exposed
        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        time.sleep(6)
        n_before = len(acked)
        assert n_before > 20
        t_kill = time.monotonic()
        killed = cluster.kill_node(brain_node)
        assert where["brain"]["pid"] in killed
        time.sleep(25)  # the node declared dead, the brain restarted elsewhere, load going on
        stop.set()
        loader.join(30)
        assert len(acked) > n_before + 20, (len(acked), n_before, refused)  # the twin went on taking reports
        gap = max(b - a for a, b in zip(times, times[1:], strict=False) if b > t_kill)
        print(f"\ncluster: {len(acked)} reports acknowledged ({n_before} before the kill), {len(killed)} processes "
              f"of the brain's node killed, longest gap between acknowledgements {gap:.1f} s, "
              f"503 answers {refused['503']}, connection errors {refused['conn']}")
        after = cluster.where()
        assert after["brain"]["node_id"] not in (brain_node, cluster.head)
        listed = httpx.get(server.url + "/api/v1/events", params={"limit": 1000}, headers=H, timeout=30
                           ).json()["events"]
        ids = [e["id"] for e in listed]
        assert len(ids) == len(set(ids)) and set(ids) == set(acked.values())  # every acknowledged event, once
        health = httpx.get(server.url + "/health", timeout=10).json()
        assert health["status"] == "ok" and health["db"].startswith("postgresql://")
    finally:
        stop.set()
        server.stop()
    from actors.eventlog import open_log

    with open_log(db) as log:
        dispatched = [r.event_id for _, r in log.records() if r.action.value == "dispatch"]
    assert len(dispatched) == len(set(dispatched)) and set(dispatched) <= set(acked.values())  # none twice
