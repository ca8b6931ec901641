"""Ray start-up, one place for the sweeps (:mod:`scenarios.sweep`) and the live host
(:mod:`actors.host`).

Lean by default: no dashboard, an explicit CPU count, a bounded object store, and a local
cluster bound to the loopback interface only.
"""

from __future__ import annotations

import os
from typing import Any

#: Object store of a local cluster: what a sweep's results and the live district need.
OBJECT_STORE_BYTES = 200 * 2**20


def init_ray(*, address: str | None = None, num_cpus: int | None = None) -> Any:
    """Start (or join) Ray lean: no dashboard, bounded object store, loopback when local.

    A local cluster binds 127.0.0.1 only; Ray reads the switch for that when it is first
    imported, so it is set before the import (importing Ray elsewhere first defeats it).

    Args:
        address: A Ray cluster to join (``"auto"``, ``ray://host:port``); ``None``: start a
            local one.
        num_cpus: CPUs of a local cluster (default: all of this machine's).

    Returns:
        The ``ray`` module, initialised (as it was, if it already was).
    """
    if address is None:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # bind 127.0.0.1 only
    import ray

    if ray.is_initialized():
        return ray
    if address is None:
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 object_store_memory=OBJECT_STORE_BYTES, ignore_reinit_error=True)
    else:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    return ray


__all__ = ["OBJECT_STORE_BYTES", "init_ray"]
