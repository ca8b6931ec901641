"""Ray start-up, one place for the sweeps (:mod:`scenarios.sweep`) and the live host
(:mod:`actors.host`).

Lean and quiet by default: no dashboard, an explicit CPU count, a bounded object store, a
local cluster bound to the loopback interface only, no usage statistics sent anywhere, and
token authentication chosen explicitly rather than by Ray's default (which warns):

* a local cluster uses Ray's token authentication (``RAY_AUTH_MODE=token``; Ray keeps the
  token in ``~/.ray/auth_token``, generated on first use);
* joining a cluster (``address``) uses a token where one is available (``RAY_AUTH_TOKEN``,
  ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``); without one Ray's own warning about an
  unauthenticated cluster stands, since it is true.

An explicit ``RAY_AUTH_MODE`` or ``RAY_USAGE_STATS_ENABLED`` in the environment wins.

``include_dashboard=False`` still starts Ray's dashboard head process (Ray 2.x loads its usage
statistics module there); a local cluster stops it once started, so no dashboard process runs.
The per-node dashboard *agent* stays: the raylet shares its fate.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

#: Object store of a local cluster: what a sweep's results and the live district need.
OBJECT_STORE_BYTES = 200 * 2**20

log = logging.getLogger("streetbrain.ray")


def ray_environment(address: str | None = None) -> None:
    """Set Ray's environment switches before Ray is imported or started (each only where the
    environment does not already say): loopback only and token authentication for a local
    cluster (``address`` ``None``), token authentication when joining one if a token is at hand,
    no usage statistics. A cluster joined at a loopback address is joined on loopback (else Ray
    rewrites 127.0.0.1 to the machine's own address and finds no node there)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
    if address is None or _loopback(address):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # bind and connect on 127.0.0.1
    if address is None or _token_at_hand():
        os.environ.setdefault("RAY_AUTH_MODE", "token")


def _loopback(address: str) -> bool:
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")


def _token_at_hand() -> bool:
    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    return Path(path).is_file() if path else (Path.home() / ".ray" / "auth_token").is_file()


def stop_dashboard_head() -> bool:
    """Stop the dashboard head process that a local Ray cluster starts even without a dashboard
    (it serves only Ray's job and state APIs, which streetbrain does not use). Returns whether
    one was stopped."""
    try:
        from ray._private import ray_constants, worker

        node = worker._global_node
        if node is None or not node.head or ray_constants.PROCESS_TYPE_DASHBOARD not in node.all_processes:
            return False
        node.kill_dashboard(check_alive=False)
        return True
    except Exception as exc:  # a Ray whose internals moved: the process stays, the twin works
        log.debug("could not stop Ray's dashboard head: %s", exc)
        return False


def init_ray(*, address: str | None = None, num_cpus: int | None = None, namespace: str | None = None) -> Any:
    """Start (or join) Ray lean: no dashboard, bounded object store, loopback when local.

    A local cluster binds 127.0.0.1 only; Ray reads the switch for that when it is first
    imported, so it is set before the import (importing Ray elsewhere first defeats it).

    Args:
        address: A Ray cluster to join (``"auto"``, ``host:port``, ``ray://host:port``); ``None``:
            start a local one of its own (never the cluster that ``RAY_ADDRESS`` or the last
            ``ray start`` on this machine names).
        num_cpus: CPUs of a local cluster (default: all of this machine's).
        namespace: Ray namespace of this driver's named actors (``None``: one of its own).

    Returns:
        The ``ray`` module, initialised (as it was, if it already was).
    """
    ray_environment(address)
    import ray

    if ray.is_initialized():
        return ray
    if address is None:  # "local": a cluster of our own, even where RAY_ADDRESS or `ray start` names another
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 object_store_memory=OBJECT_STORE_BYTES, ignore_reinit_error=True, namespace=namespace)
        stop_dashboard_head()
    else:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                 namespace=namespace)
    return ray


__all__ = ["OBJECT_STORE_BYTES", "init_ray", "ray_environment", "stop_dashboard_head"]
