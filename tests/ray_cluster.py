"""A multi-node Ray cluster on this machine, on loopback, for the cluster tests: run as a
process of its own (``python tests/ray_cluster.py WORKERS``), it starts a head node without
CPUs and ``WORKERS`` nodes of two CPUs each with Ray's own :class:`ray.cluster_utils.Cluster`,
prints one JSON line (``{"address", "nodes": {node_id: raylet socket}}``), then obeys lines on
its standard input:

* ``kill <node_id>``: SIGKILL every process of that node (its raylet and its descendants: its
  agents, its workers), as a machine lost would; answers ``{"killed": [pids]}``;
* ``quit`` (or end of input): shut the cluster down.

The environment chooses loopback (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``: every node binds
127.0.0.1; ``ray start`` refuses a second node in that mode, ``Cluster`` does not) and token
authentication (``RAY_AUTH_MODE=token``, ``RAY_AUTH_TOKEN``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys


def main(workers: int) -> None:
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "include_dashboard": False, "object_store_memory": 80 * 2**20,
        # a lost node declared dead in ~3 s rather than Ray's default ~30 s
        "_system_config": {"health_check_period_ms": 1000, "health_check_failure_threshold": 3,
                           "health_check_timeout_ms": 1000}})
    try:
        cluster.head_node.kill_dashboard()  # not needed; keeps the test's socket count honest
        nodes = [cluster.add_node(num_cpus=2, object_store_memory=80 * 2**20) for _ in range(workers)]
        cluster.wait_for_nodes()
        by_id = {n.node_id: n for n in [cluster.head_node, *nodes]}
        print(json.dumps({"address": cluster.address, "head": cluster.head_node.node_id,
                          "nodes": {i: n.raylet_socket_name for i, n in by_id.items()}}), flush=True)
        for line in sys.stdin:
            cmd, _, arg = line.strip().partition(" ")
            if cmd == "quit":
                break
            if cmd == "kill":
                node = by_id[arg]
                raylets = subprocess.run(["pgrep", "-f", node.raylet_socket_name], capture_output=True, text=True,
                                         check=False).stdout
                pids = _tree([int(p) for p in raylets.split() if int(p) != os.getpid()])
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(Exception):
                    cluster.remove_node(node, allow_graceful=False)
                print(json.dumps({"killed": pids}), flush=True)
    finally:
        cluster.shutdown()


def _tree(roots: list[int]) -> list[int]:
    """The processes and all their descendants (a node's workers and agents are its raylet's
    children; their titles, ``ray::...``, no longer name the node)."""
    out, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        out.append(pid)
        kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
        todo.extend(int(k) for k in kids.split())
    return out


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
