"""What-if forks in a process of their own, at low priority.

A fork (:func:`scenarios.whatif.fork`) runs the SimPy engine for hours of twin time from the
live snapshot, both arms and every replication: seconds to a minute or two of CPU. Run in a
thread of the API's process it held the interpreter, so the event loop answered reports only
between its time slices, and it competed with the live brain for the cores. Here it runs in
one worker process, spawned on the first fork with the district (shipped once), at a lower
scheduling priority (``nice``), so that the operating system serves the live twin first. One
fork runs at a time; the API answers 429 to a second one meanwhile.
"""

from __future__ import annotations

import asyncio
import copy
import multiprocessing as mp
import os
import pickle
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from twin.district import District
from twin.errors import TwinError

#: How much lower than the live twin's processes the fork worker is scheduled (``nice``).
FORK_NICE = 10

_DISTRICT: District | None = None  # in the worker: the live district, shipped once


class ForkFailed(TwinError):
    """The fork's worker process died (e.g. out of memory); the next fork starts a new one."""


def _start_worker(district: bytes | str, nice: int) -> None:
    global _DISTRICT
    if nice:  # first: loading the district is the worker's start-up work
        os.nice(nice)
    if isinstance(district, str):
        from scenarios.loader import load_cached

        _DISTRICT = load_cached(district)
    else:
        _DISTRICT = pickle.loads(district)


def _run_fork(snapshot: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    from scenarios.whatif import fork

    assert _DISTRICT is not None, "the worker was started without a district"
    live = copy.copy(_DISTRICT)  # the live twin's roster, with its shift swaps
    live.roster = _DISTRICT.roster.with_swaps(snapshot.get("swaps") or {})
    return dict(fork(live, snapshot, **options))


def _worker_pid() -> int:
    return os.getpid()


class ForkRunner:
    """Runs what-if forks in a worker process of their own (see the module doc).

    Args:
        district: The live twin's district (without shift swaps: each snapshot carries them).
        source: The scenario it was loaded from (a name or a folder): the worker loads it
            itself, at its low priority, instead of this process pickling it (~0.5 s of this
            process's interpreter for Xiaohe; the event loop would wait).
        nice: How much lower the worker is scheduled (0: as the caller).
    """

    def __init__(self, district: District, *, source: str | None = None, nice: int = FORK_NICE) -> None:
        self.district, self.source, self.nice = district, source, nice
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"),
                                             initializer=_start_worker,
                                             initargs=(self.source or pickle.dumps(self.district, protocol=5),
                                                       self.nice))
        return self._pool

    async def run(self, snapshot: dict[str, Any], **options: Any) -> dict[str, Any]:
        """:func:`scenarios.whatif.fork` of ``snapshot`` with ``options`` (``hours``, ``change``,
        ``replications``, ``seed``), in the worker; its errors are raised here unchanged.

        Raises:
            ForkFailed: the worker process died; a new one serves the next fork.
        """
        try:
            # (submitting may start the worker: a process start and the district's pickling,
            # ~1 s that must not stall the event loop)
            future = await asyncio.to_thread(lambda: self._executor().submit(_run_fork, snapshot, options))
            answer = await asyncio.wrap_future(future)
            return dict(answer)
        except BrokenProcessPool as exc:
            self.close()
            raise ForkFailed(f"the what-if worker process stopped ({exc}); try again") from None

    async def worker_pid(self) -> int:
        """The worker's process id (starting it if need be)."""
        future = await asyncio.to_thread(lambda: self._executor().submit(_worker_pid))
        pid = await asyncio.wrap_future(future)
        return int(pid)

    def close(self) -> None:
        """Stop the worker (a fork still running is abandoned)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            for proc in list(getattr(pool, "_processes", {}).values()):  # do not wait for a long fork
                proc.terminate()
            pool.shutdown(wait=False, cancel_futures=True)


def _run_staffing(scenario: str, question: dict[str, Any], progress_path: str) -> dict[str, Any]:
    from scenarios.staffing import optimise_staffing, plan_answer

    with open(progress_path, "a", encoding="utf-8") as log:
        def progress(line: str) -> None:
            log.write(line.rstrip() + "\n")
            log.flush()

        plan = optimise_staffing(scenario, **question, progress=progress)
    return plan_answer(plan)


class StaffingJobs:
    """The staffing optimiser (:func:`scenarios.staffing.optimise_staffing`) as jobs for the
    cockpit: one at a time, in a worker process of its own at low priority (a plan takes
    minutes of CPU), its progress lines readable while it runs.

    Args:
        scenario: The scenario the live twin was loaded from (a name or a folder): the worker
            simulates it.
        nice: How much lower the worker is scheduled.
    """

    def __init__(self, scenario: str, *, nice: int = FORK_NICE) -> None:
        import tempfile

        self.scenario, self.nice = scenario, nice
        self._pool: ProcessPoolExecutor | None = None
        self._dir = tempfile.mkdtemp(prefix="streetbrain-staffing-")
        self.jobs: dict[str, dict[str, Any]] = {}

    def running(self) -> bool:
        return any(j["state"] == "running" for j in self.jobs.values())

    def start(self, question: dict[str, Any]) -> str:
        """Start a job; its id. Raises ``RuntimeError`` while another runs."""
        if self.running():
            raise RuntimeError("a staffing job is already running")
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"),
                                             initializer=_start_worker, initargs=(self.scenario, self.nice))
        job = f"S{len(self.jobs) + 1:04d}"
        path = os.path.join(self._dir, f"{job}.log")
        open(path, "w").close()
        future = self._pool.submit(_run_staffing, self.scenario, dict(question), path)
        entry: dict[str, Any] = {"job": job, "state": "running", "question": dict(question), "progress_path": path,
                                 "result": None, "error": None}
        self.jobs[job] = entry

        def done(f: Any) -> None:
            try:
                entry["result"], entry["state"] = f.result(), "done"
            except TwinError as exc:
                entry["error"], entry["state"] = str(exc), "failed"
            except BrokenProcessPool as exc:
                entry["error"], entry["state"] = f"the staffing worker stopped ({exc})", "failed"
                self._pool = None
            except Exception as exc:  # reported to the page, not raised in the pool's thread
                entry["error"], entry["state"] = f"{type(exc).__name__}: {exc}", "failed"

        future.add_done_callback(done)
        return job

    def status(self, job: str) -> dict[str, Any]:
        """A job: state (``running``, ``done``, ``failed``), the question, its last progress
        lines, and the plan (:func:`scenarios.staffing.plan_answer`) or the error."""
        entry = self.jobs[job]
        try:
            with open(entry["progress_path"], encoding="utf-8") as fh:
                lines = fh.read().splitlines()[-12:]
        except OSError:
            lines = []
        return {k: v for k, v in entry.items() if k != "progress_path"} | {"progress": lines}

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
