"""Describe the machine a benchmark ran on (benchmarks are compared only within one run)."""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from typing import Any


def describe(packages: tuple[str, ...] = ("numpy", "scipy", "shapely")) -> dict[str, Any]:
    """CPU, cores, memory, OS, Python and package versions, and the time of the run."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = None
    try:
        with open("/proc/meminfo") as fh:
            mem_gib = round(int(fh.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    versions = {}
    for p in packages:
        try:
            versions[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            versions[p] = None
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": mem_gib,
        "os": f"{platform.system()} {platform.release()}", "python": sys.version.split()[0],
        "packages": versions, "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
