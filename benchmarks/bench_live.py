"""Benchmark: the live twin under load, its start-up, memory and crashes (``streetbrain serve``).

    python benchmarks/bench_live.py [--quick] [--profile] [--no-crash] [--rates 100,200] [--modes ray]

``streetbrain serve`` (xiaohe, a fresh SQLite WAL log in a temp folder, clock speed 1, no
feed) runs in a process group of its own; the load comes from a SEPARATE process: an asyncio
client (a minimal HTTP/1.1 keep-alive client by default, ``--client httpx`` for httpx, which
costs the generator about 6x the CPU per request), open loop: request ``i`` is due at
``i / rate`` whatever the answers, at most ``MAX_INFLIGHT`` in flight (a request that cannot
start because of that bound waits; one that would wait behind more than ``MAX_BACKLOG_S``
seconds of offered load is shed, never sent). Every request is ``POST /api/v1/events`` with
a unique Idempotency-Key, spread over the 320 cameras' positions and the camera-discoverable
scenarios; its latency (send -> 201) is ingest -> assignment (the dispatch is appended
durably before the answer).

1. Load curve: 100, 200, 300, 500, 700, 1000 events/s for 10 s each (``--quick``: 3 s),
   with the brain in a Ray actor and again with ``--no-ray``; per step p50/p95/p99/max (also
   from the scheduled send time), achieved throughput, errors, timeouts, shed requests, CPU
   milliseconds per event of every process of the twin (by role) and of the generator, and
   the CPU other jobs took (the machine is shared: a step waits up to 10 s for a quiet
   machine and is marked noisy if others used over 0.3 core); after each step the SQLite log
   is read: every acknowledged event id must be there exactly once (its REPORT record). The
   curve breaks at the first step with p99 > 100 ms, throughput < 95 % of offered, or any
   loss; after two broken steps in a row the higher rates are skipped. Target: >= 500
   events/s sustained with p99 <= 100 ms and nothing lost. Beside it: closed-loop probes (one
   connection, one request at a time) of ``GET /health`` and of the POST, the CPU the idle
   twin burns, and the brain's own cost measured in this process (``Brain.create_event`` on
   a temp log, the SQLite append alone, and k requests' rows in one transaction: what a group
   commit would cost per request).
2. Start-up: launch -> first 200 from /health, Ray and --no-ray, 3 times each (median;
   ``--quick``: once each, the load-curve launch).
3. Memory: RSS and PSS (``/proc/<pid>/smaps_rollup``) of the serve process and every
   descendant (Ray's gcs, raylet, agents, workers, the brain and camera-shard actors), idle
   after start and after the load curve.
4. Crashes under ~200 events/s (Ray mode): (a) SIGKILL of the whole twin (its process group
   and every descendant: Ray workers sit in process groups of their own), restart on the
   same log, check every acknowledged event is there once, no member holds two open events
   at any point of the log, ``twin.workflow.replay`` re-plays it, and re-sending the
   acknowledged and in-flight requests with their keys returns the same ids and creates
   nothing new; (b) on the restarted twin, SIGKILL of the brain's actor process only
   (``ray::BrainHost``); Ray restarts it, the generator retries failed requests with the same
   key (bounded), and afterwards every acknowledged event is there once; outage = first
   failure -> first success.

``--repeat N``: the load curves N times, each on a fresh server, and per offered rate the p99s
and in how many runs the step held (this is a virtual machine on a shared host: a step's
"others" includes the CPU the hypervisor gave to other guests, reported as "stolen").

``--profile``: also sample the API process and the brain with py-spy (``--gil``: samples of
the thread holding the GIL) during the first step: GIL milliseconds per request, split by
named frames (locate, append, Ray call, middleware, ...). ``--server-path DIR`` puts DIR first
on the servers' PYTHONPATH (a what-if: with uvloop and httptools there uvicorn uses them).
Writes benchmarks/results/live.json (``--out``). Every server and Ray process started here is
killed at the end, even on failure; the summary says whether any is left.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._machine import describe

OUT = Path(__file__).resolve().parent / "results" / "live.json"
BIN = Path(sys.executable).parent / "streetbrain"
PYSPY = Path(sys.executable).parent / "py-spy"
TOKEN = "bench-live-admin-token-0123456789abcdef"
RATES = (100, 200, 300, 500, 700, 1000)
TARGET_RATE = 500
P99_LIMIT_MS = 100.0
THROUGHPUT_SHARE = 0.95
MAX_INFLIGHT = 256
MAX_BACKLOG_S = 2.0
REQUEST_TIMEOUT_S = 10.0
IDLE_S = 3.0
PYSPY_HZ = 200
QUIET_SHARE = 0.15  # machine busy share under which a step may start
NOISY_CORES = 0.3   # a step is marked noisy if other processes used more than this many cores on average
SERVER_PATH: str | None = None  # --server-path
CRASH_RATE = 200


# --- what the generator sends -------------------------------------------------------------------------

def district_points() -> tuple[list[tuple[float, float]], list[str]]:
    """The 320 cameras' positions (lon, lat) and the scenarios a camera can report."""
    from scenarios.loader import load_cached
    from twin.catalog import Source

    d = load_cached("xiaohe")
    spots = [tuple(float(v) for v in d.projection.to_lonlat(c.x, c.y)) for c in d.cameras]
    codes = [s.code for s in d.catalog if Source.CAMERA in s.sources]
    return spots, codes  # type: ignore[return-value]


def event_body(spots: list[tuple[float, float]], codes: list[str], i: int, salt: int) -> bytes:
    """Request ``i`` of a run: a camera position and a scenario, deterministic (a retry sends
    the same bytes, so the server's request hash matches)."""
    lon, lat = spots[(i * 7 + salt * 31) % len(spots)]
    code = codes[(i + i // len(spots) + salt) % len(codes)]
    return json.dumps({"scenario": code, "lon": lon, "lat": lat, "source": "camera"},
                      separators=(",", ":")).encode()


# --- the load generator (runs in its own process) -----------------------------------------------------

def _gen_main(cfg: dict[str, Any], out_q: Any, stop_ev: Any) -> None:
    try:
        res = asyncio.run(_generate(cfg, stop_ev))
    except BaseException as exc:  # reported to the parent, which raises
        res = {"error": f"{type(exc).__name__}: {exc}"}
    out_q.put(res)


class RawPool:
    """A minimal HTTP/1.1 keep-alive client over asyncio streams: a pre-built request, the
    status line and Content-Length read back. It costs the generator a small fraction of
    httpx's CPU per request, which matters when client and server share two cores."""

    def __init__(self, url: str, size: int) -> None:
        hostport = url.split("://", 1)[1]
        self.host, port = hostport.rsplit(":", 1)
        self.port = int(port)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.size = size
        self.stale_retries = 0
        self.head = (f"POST /api/v1/events HTTP/1.1\r\nHost: {hostport}\r\nAuthorization: Bearer {TOKEN}\r\n"
                     "Content-Type: application/json\r\n").encode()

    async def post(self, key: str, body: bytes, timeout_s: float) -> tuple[Any, bytes | None]:
        """``(status, body)``, or ``('timeout' | 'conn', None)``. A kept-alive connection the
        server has closed meanwhile (uvicorn drops idle ones after 5 s) is retried once on a new
        one, as HTTP clients do (safe: the request carries its Idempotency-Key)."""
        reused = bool(self.idle)
        code, data = await self._post(key, body, timeout_s, self.idle.pop() if reused else None)
        if code == "stale":
            self.stale_retries += 1
            code, data = await self._post(key, body, timeout_s, None)
        return ("conn" if code == "stale" else code), data

    async def _post(self, key: str, body: bytes, timeout_s: float,
                    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> tuple[Any, bytes | None]:
        reused = conn is not None
        got_head = False
        try:
            if conn is None:
                conn = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), min(5.0, timeout_s))
            reader, writer = conn
            writer.write(self.head + f"Idempotency-Key: {key}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                         + body)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout_s)
            got_head = True
            status = int(head[9:12])
            lower = head.lower()
            at = lower.find(b"content-length:")
            length = int(lower[at + 15:lower.find(b"\r\n", at)]) if at >= 0 else 0
            data = await asyncio.wait_for(reader.readexactly(length), timeout_s) if length else b""
        except TimeoutError:
            self._close(conn)
            return "timeout", None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            self._close(conn)
            stale = reused and not got_head and isinstance(exc, (asyncio.IncompleteReadError, ConnectionError))
            return ("stale" if stale else "conn"), None
        except asyncio.CancelledError:
            self._close(conn)
            raise
        if b"connection: close" in lower or len(self.idle) >= self.size:
            self._close(conn)
        else:
            self.idle.append(conn)
        return status, data

    @staticmethod
    def _close(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
        if conn is not None:
            with contextlib.suppress(Exception):
                conn[1].close()

    async def aclose(self) -> None:
        for conn in self.idle:
            self._close(conn)
        self.idle.clear()


class HttpxPool:
    """The same over httpx.AsyncClient (``--client httpx``)."""

    def __init__(self, url: str, size: int, timeout_s: float) -> None:
        self.url = url + "/api/v1/events"
        self.headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        self.client = httpx.AsyncClient(limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
                                        timeout=httpx.Timeout(timeout_s, connect=min(5.0, timeout_s)))

    async def post(self, key: str, body: bytes, timeout_s: float) -> tuple[Any, bytes | None]:
        try:
            r = await self.client.post(self.url, content=body, headers={**self.headers, "Idempotency-Key": key})
        except httpx.TimeoutException:
            return "timeout", None
        except httpx.HTTPError:
            return "conn", None
        return r.status_code, r.content

    async def aclose(self) -> None:
        await self.client.aclose()


async def _generate(cfg: dict[str, Any], stop_ev: Any) -> dict[str, Any]:
    """Open loop (``rate``) or a given list of requests (``items``, as fast as ``inflight``
    allows); ``retry``: failed attempts (connection, timeout, 5xx, 409 'restarting') are
    retried with the same key until ``retry_deadline_s``."""
    spots, codes = cfg["spots"], cfg["codes"]
    inflight = int(cfg["inflight"])
    retry = bool(cfg.get("retry"))
    timeout_s = float(cfg["timeout_s"])
    if cfg.get("items") is not None:
        plan = [(key, i, salt) for key, i, salt in cfg["items"]]
        rate = None
    else:
        rate = float(cfg["rate"])
        plan = [(f"{cfg['prefix']}-{i}", i, cfg["salt"]) for i in range(int(rate * cfg["duration_s"]))]
    sem = asyncio.Semaphore(inflight)
    out: list[list[Any]] = []       # per request: key, i, salt, status, event id, t_sched, t_send, t_done, tries, replay
    attempts: list[tuple[float, float, Any]] = []  # every attempt: send, end, 201 / status / 'conn' / 'timeout'
    waiting = 0
    shed = 0
    cpu0 = time.process_time()
    pool: RawPool | HttpxPool = (HttpxPool(cfg["url"], inflight, timeout_s) if cfg.get("client") == "httpx"
                                 else RawPool(cfg["url"], inflight))

    try:
        async def one(key: str, i: int, salt: int, t_sched: float) -> None:
            nonlocal waiting
            body = event_body(spots, codes, i, salt)
            row: list[Any] = [key, i, salt, None, None, t_sched, None, None, 0, False]
            out.append(row)
            try:
                async with sem:
                    waiting -= 1
                    deadline = time.monotonic() + cfg.get("retry_deadline_s", 0.0)
                    while True:
                        t_send = time.monotonic()
                        row[8] += 1
                        code, data = await pool.post(key, body, timeout_s)
                        t_end = time.monotonic()
                        attempts.append((t_send, t_end, code))
                        row[3], row[6], row[7] = code, t_send, t_end
                        if code == 201 and data is not None:
                            ev = json.loads(data)
                            row[4] = ev["event"]["id"]
                            row[9] = bool(ev.get("idempotent_replay"))
                            return
                        transient = code in ("conn", "timeout") or (isinstance(code, int) and code >= 500) or (
                            code == 409 and data is not None and b"restart" in data)
                        if not (retry and transient) or time.monotonic() > deadline or stop_ev.is_set():
                            return
                        await asyncio.sleep(0.2)
            except asyncio.CancelledError:
                row[3] = "cancelled"
                raise

        tasks: set[asyncio.Task[None]] = set()
        t0 = time.monotonic() + 0.05
        k = 0
        while k < len(plan) and not stop_ev.is_set():
            now = time.monotonic()
            due = t0 + (k / rate if rate else 0.0)
            if due > now:
                await asyncio.sleep(min(due - now, 0.01))
                continue
            while k < len(plan) and (rate is None or t0 + k / rate <= now):
                key, i, salt = plan[k]
                t_sched = t0 + k / rate if rate else now
                k += 1
                if rate is not None and waiting > rate * MAX_BACKLOG_S and not retry:
                    shed += 1
                    out.append([key, i, salt, "shed", None, t_sched, None, None, 0, False])
                    continue
                waiting += 1
                task = asyncio.create_task(one(key, i, salt, t_sched))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                if rate is None:
                    break
            if rate is None:
                await asyncio.sleep(0)
        t_offered_end = time.monotonic()
        hard = t_offered_end + cfg["drain_s"]
        while tasks and time.monotonic() < hard:
            await asyncio.sleep(0.05)
        for task in list(tasks):
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await pool.aclose()
    return {"rows": out, "attempts": attempts, "shed": shed, "cpu_s": time.process_time() - cpu0,
            "stale_connection_retries": getattr(pool, "stale_retries", 0),
            "t0": t0, "t_offered_end": t_offered_end, "unfinished": sum(r[3] == "cancelled" for r in out)}


class Generator:
    """The load generator in a spawned process."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        ctx = mp.get_context("spawn")
        self.q = ctx.Queue()
        self.stop_ev = ctx.Event()
        self.proc = ctx.Process(target=_gen_main, args=(cfg, self.q, self.stop_ev), daemon=True)
        self.proc.start()
        self.limit = cfg.get("duration_s", 0) + cfg.get("retry_deadline_s", 0) + cfg["drain_s"] + 60

    def stop(self) -> None:
        self.stop_ev.set()

    def result(self) -> dict[str, Any]:
        try:
            res: dict[str, Any] = self.q.get(timeout=self.limit)
        finally:
            self.proc.join(timeout=10)
            if self.proc.is_alive():
                self.proc.kill()
        if "error" in res:
            raise RuntimeError("load generator failed: " + res["error"])
        return res


# --- the server and its process tree ------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_SERVERS: list[Serve] = []
_SUPPORTS_DURATION: bool | None = None


def _supports_duration() -> bool:
    global _SUPPORTS_DURATION
    if _SUPPORTS_DURATION is None:
        out = subprocess.run([str(BIN), "serve", "--help"], capture_output=True, text=True, timeout=60, check=False)
        _SUPPORTS_DURATION = "--duration" in out.stdout
    return _SUPPORTS_DURATION


def role_of(p: psutil.Process, root: int) -> str:
    """Which part of the twin a process is."""
    if p.pid == root:
        return "api"
    try:
        cmd = " ".join(p.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return "gone"
    for needle, role in (("BrainHost", "brain"), ("CameraShard", "camera_shards"), ("ShardActor", "shards"),
                         ("raylet", "raylet"),
                         ("gcs_server", "gcs"), ("ray::IDLE", "ray_idle_workers"),
                         ("DashboardAgent", "ray_dashboard_agent"), ("RuntimeEnvAgent", "ray_runtime_env_agent"),
                         ("autoscaler", "ray_autoscaler_monitor"), ("log_monitor", "ray_log_monitor"),
                         ("dashboard", "ray_dashboard_head")):
        if needle in cmd:
            return role
    return "ray_other"


class Serve:
    """``streetbrain serve`` in its own session (process group); every descendant seen is
    remembered so that all of them can be killed, also Ray workers in groups of their own."""

    def __init__(self, db: Path, *, ray: bool, log_dir: Path, cap_s: float) -> None:
        self.db, self.ray = db, ray
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "STREETBRAIN_ADMIN_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
        if SERVER_PATH:  # --server-path: e.g. uvloop and httptools, which uvicorn picks up when importable
            env["PYTHONPATH"] = os.pathsep.join([SERVER_PATH, *filter(None, [env.get("PYTHONPATH")])])
        args = [str(BIN), "serve", "--scenario", "xiaohe", "--db", str(db), "--port", str(self.port), "--speed", "1"]
        if not ray:
            args.append("--no-ray")
        if _supports_duration():  # the server stops by itself even if this script is killed
            args += ["--duration", str(int(cap_s))]
        self.out = log_dir / f"serve-{self.port}.out"
        self.known: dict[int, psutil.Process] = {}
        self._lock = threading.Lock()
        self.t_launch = time.monotonic()
        self._log = self.out.open("w")
        self.proc = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        _SERVERS.append(self)
        self.refresh()

    def wait_ready(self, timeout_s: float = 180.0) -> float:
        """Seconds from launch to the first 200 from /health."""
        deadline = self.t_launch + timeout_s
        with httpx.Client(timeout=2.0) as c:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"serve exited {self.proc.returncode}: {self.out.read_text()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if c.get(self.url + "/health").status_code == 200:
                        ready = time.monotonic() - self.t_launch
                        self.refresh()
                        return ready
                time.sleep(0.1)
                self.refresh()
        raise RuntimeError(f"serve did not answer /health within {timeout_s} s: {self.out.read_text()[-3000:]}")

    def refresh(self) -> list[psutil.Process]:
        """The live tree now (the serve process and its descendants), remembered."""
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            procs = []
        with self._lock:
            for p in procs:
                self.known.setdefault(p.pid, p)
        return procs

    def find(self, needle: str) -> psutil.Process | None:
        for p in self.refresh():
            with contextlib.suppress(psutil.Error):
                if needle in " ".join(p.cmdline()):
                    return p
        return None

    def alive(self) -> list[psutil.Process]:
        with self._lock:
            procs = list(self.known.values())
        out = []
        for p in procs:
            with contextlib.suppress(psutil.Error):
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    out.append(p)
        return out

    def kill(self) -> dict[str, int]:
        """SIGKILL the process group and every remembered descendant; how many lay outside the group."""
        self.refresh()
        outside = 0
        for p in self.alive():
            with contextlib.suppress(psutil.Error, OSError):
                if os.getpgid(p.pid) != self.proc.pid:
                    outside += 1
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for p in self.alive():
            with contextlib.suppress(psutil.Error):
                p.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        self._log.close()
        return {"killed_outside_group": outside, "left_alive": len(self.alive())}

    def stop(self) -> None:
        """SIGINT (uvicorn and Ray shut down), then SIGKILL whatever is left."""
        if self.proc.poll() is None:
            self.refresh()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=20)
        self.kill()

    # --- measurements ---
    def memory(self) -> dict[str, Any]:
        """RSS and PSS (MiB) of the whole tree, by role."""
        by_role: dict[str, dict[str, float]] = {}
        total_rss = total_pss = 0.0
        pss_ok = True
        procs = self.refresh()
        for p in procs:
            try:
                rss = p.memory_info().rss / 2**20
            except psutil.Error:
                continue
            pss = _pss_mib(p.pid)
            if pss is None:
                pss_ok = False
            role = role_of(p, self.proc.pid)
            r = by_role.setdefault(role, {"processes": 0, "rss_mib": 0.0, "pss_mib": 0.0})
            r["processes"] += 1
            r["rss_mib"] += rss
            r["pss_mib"] += pss or 0.0
            total_rss += rss
            total_pss += pss or 0.0
        for r in by_role.values():
            r["rss_mib"], r["pss_mib"] = round(r["rss_mib"], 1), round(r["pss_mib"], 1)
        return {"processes": len(procs), "rss_mib": round(total_rss, 1),
                "pss_mib": round(total_pss, 1) if pss_ok else None, "by_role": by_role}

    def cpu(self) -> dict[int, tuple[str, float]]:
        """CPU seconds (user + system) so far of every live process of the tree, with its role."""
        out = {}
        for p in self.refresh():
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                out[p.pid] = (role_of(p, self.proc.pid), t.user + t.system)
        return out


def _pss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def steal_cpu_s() -> float:
    """CPU seconds the hypervisor gave to other guests while this machine wanted to run (part of
    "others": a virtual machine on a shared host)."""
    return float(getattr(psutil.cpu_times(), "steal", 0.0))


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has been busy (all cores, everything but idle and iowait)."""
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def cpu_delta(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    by_role: dict[str, float] = {}
    for pid, (role, t) in after.items():
        by_role[role] = by_role.get(role, 0.0) + t - before.get(pid, (role, 0.0))[1]
    return by_role


def _sampler(stop: threading.Event) -> None:
    """Remember every process of every server every half second (Ray restarts workers)."""
    while not stop.wait(0.5):
        for s in list(_SERVERS):
            if s.proc.poll() is None:
                with contextlib.suppress(Exception):
                    s.refresh()


def cleanup() -> dict[str, Any]:
    """Kill every server started here and all their processes; report what is left."""
    for s in list(_SERVERS):
        with contextlib.suppress(Exception):
            s.kill()
    left = [p.pid for s in _SERVERS for p in s.alive()]
    return {"servers_started": len(_SERVERS), "our_processes_left": left}


# --- the log -----------------------------------------------------------------------------------------

def read_log(db: Path, since: int = 0) -> list[tuple[int, Any]]:
    from actors.eventlog import open_log

    with open_log(db) as log:
        return log.records(since=since)


def idempotency_ids(db: Path) -> dict[str, str]:
    """Idempotency key -> the event id of its stored response (read-only)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = con.execute("SELECT key, response FROM idempotency").fetchall()
    finally:
        con.close()
    out = {}
    for key, resp in rows:
        ev = json.loads(resp).get("event") or {}
        if "id" in ev:
            out[str(key)] = str(ev["id"])
    return out


class LogCheck:
    """Incremental check of the log: REPORT records per event id, gap-free sequence numbers."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.last = 0
        self.reports: Counter[str] = Counter()
        self.records = 0
        self.gaps = 0

    def update(self) -> None:
        rows = read_log(self.db, self.last)
        for seq, rec in rows:
            if seq != self.last + 1:
                self.gaps += 1
            self.last = seq
            self.records += 1
            if rec.action.value == "report":
                self.reports[rec.event_id] += 1

    def verify(self, acked_ids: list[str]) -> dict[str, Any]:
        """Every acknowledged id present exactly once."""
        self.update()
        missing = sum(1 for e in acked_ids if self.reports.get(e, 0) == 0)
        doubled = sum(1 for e in acked_ids if self.reports.get(e, 0) > 1)
        same_id_two_acks = len(acked_ids) - len(set(acked_ids))
        return {"acked": len(acked_ids), "missing": missing, "reported_twice": doubled,
                "ids_acked_twice": same_id_two_acks, "log_records": self.records, "log_events": len(self.reports),
                "seq_gaps": self.gaps, "lost": missing}


def check_whole_log(db: Path) -> dict[str, Any]:
    """``twin.workflow.replay`` of the whole log, and a walk that checks that no member ever holds
    two open events at once; dispatch records per event."""
    from actors.live import HELD
    from twin.workflow import Action, apply, event_from_report, replay

    rows = read_log(db)
    out: dict[str, Any] = {"records": len(rows)}
    t = time.perf_counter()
    try:
        events = replay(rec for _, rec in rows)
        out["replay_ok"], out["replay_events"] = True, len(events)
    except Exception as exc:
        out["replay_ok"], out["replay_error"] = False, f"{type(exc).__name__}: {exc}"
    out["replay_s"] = round(time.perf_counter() - t, 2)
    cur: dict[str, Any] = {}
    held_by: dict[str, str] = {}
    holders: dict[str, set[str]] = {}
    violations: list[str] = []
    dispatches: Counter[str] = Counter()
    redispatched_without_cause = 0
    since_dispatch: dict[str, bool] = {}
    for _, rec in rows:
        try:
            if rec.action is Action.REPORT:
                e = event_from_report(rec)
            else:
                e, _ = apply(cur[rec.event_id], rec.action, now=rec.at, actor=rec.actor, reason=rec.reason,
                             **dict(rec.data))
        except Exception as exc:
            violations.append(f"walk stopped at {rec.event_id}#{rec.seq}: {exc}")
            break
        cur[rec.event_id] = e
        if rec.action is Action.DISPATCH:
            if dispatches[rec.event_id] and not since_dispatch.get(rec.event_id):
                redispatched_without_cause += 1
            dispatches[rec.event_id] += 1
            since_dispatch[rec.event_id] = False
        elif rec.action in (Action.ESCALATE, Action.REOPEN, Action.REASSIGN, Action.WITHDRAW):
            since_dispatch[rec.event_id] = True
        now_hold = ({m for m in (e.assignee, *e.reinforcements) if m} if e.state in HELD else set())
        for m in holders.get(e.id, set()) - now_hold:
            if held_by.get(m) == e.id:
                del held_by[m]
        for m in now_hold:
            other = held_by.get(m)
            if other is not None and other != e.id and cur[other].state in HELD and len(violations) < 20:
                violations.append(f"{m} holds {other} and {e.id} (at {rec.event_id}#{rec.seq})")
            held_by[m] = e.id
        holders[e.id] = now_hold
    out["member_double_holds"] = len(violations)
    out["double_hold_examples"] = violations[:5]
    out["events_with_several_dispatch_records"] = sum(1 for n in dispatches.values() if n > 1)
    out["dispatched_again_without_escalation_or_reassign"] = redispatched_without_cause
    return out


# --- statistics ---------------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(q / 100.0 * (len(v) - 1)))))
    return v[k]


def ms(x: float | None) -> float | None:
    return None if x is None else round(x * 1000.0, 1)


def summarize(res: dict[str, Any], offered: float) -> dict[str, Any]:
    rows = res["rows"]
    ok = [r for r in rows if r[3] == 201]
    lat = [r[7] - r[6] for r in ok]
    lat_sched = [r[7] - r[5] for r in ok]
    lag = [r[6] - r[5] for r in rows if r[6] is not None]
    status = Counter(str(r[3]) for r in rows if r[3] != 201)
    t_first = min((r[5] for r in rows), default=0.0)
    t_last = max((r[7] for r in ok), default=t_first)
    span = max(t_last - t_first, 1e-9)
    return {
        "offered_per_s": offered, "requests": len(rows), "acked": len(ok),
        "achieved_per_s": round(len(ok) / span, 1) if ok else 0.0,
        "latency_ms": {"p50": ms(pct(lat, 50)), "p95": ms(pct(lat, 95)), "p99": ms(pct(lat, 99)),
                       "max": ms(max(lat) if lat else None), "mean": ms(statistics.fmean(lat) if lat else None)},
        "latency_from_schedule_ms": {"p50": ms(pct(lat_sched, 50)), "p99": ms(pct(lat_sched, 99)),
                                     "max": ms(max(lat_sched) if lat_sched else None)},
        "send_lag_ms_p99": ms(pct(lag, 99)),
        "errors": {k: v for k, v in status.items() if k not in ("timeout", "shed", "cancelled")},
        "timeouts": status.get("timeout", 0) + status.get("cancelled", 0), "shed": status.get("shed", 0),
        "generator_cpu_s": round(res["cpu_s"], 2),
        "stale_keepalive_retries": res.get("stale_connection_retries", 0),
    }


# --- probes of the parts, in this process ---------------------------------------------------------------

def bench_components(n: int, tmp: Path) -> dict[str, Any]:
    """The brain's own cost per report (no HTTP, no Ray), the append alone, and group commit."""
    from actors.brain import Brain
    from actors.eventlog import SQLiteEventLog
    from actors.live import Clock
    from scenarios.loader import load_cached

    d = load_cached("xiaohe")
    d.roads.precompute_travel()
    spots, codes = district_points()
    log = SQLiteEventLog(tmp / "components.db")
    brain = Brain(d, log, Clock())
    spent = [0.0, 0, 0]  # seconds in the log's append, requests, transactions
    originals = {name: getattr(log, name) for name in ("append", "append_many") if hasattr(log, name)}

    def timing(name: str) -> Any:
        fn = originals[name]

        def wrapped(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[0] += time.perf_counter() - t
                spent[1] += len(a[0]) if name == "append_many" else 1
                spent[2] += 1
        return wrapped

    for name in originals:  # append calls the class's append_many, not this wrapper: no double count
        setattr(log, name, timing(name))
    for i in range(50):  # warm-up
        brain.create_event(json.loads(event_body(spots, codes, i, 99)), actor="bench", idem=(f"w{i}", "p", "h"))
    spent[:] = [0.0, 0, 0]
    t = time.perf_counter()
    for i in range(n):
        brain.create_event(json.loads(event_body(spots, codes, i, 0)), actor="bench", idem=(f"k{i}", "p", "h"))
    total = time.perf_counter() - t
    out: dict[str, Any] = {"brain_create_event_ms": round(total / n * 1e3, 3),
                           "log_write_ms_per_request": round(spent[0] / max(spent[1], 1) * 1e3, 3),
                           "requests_per_transaction": round(spent[1] / max(spent[2], 1), 2), "events": n,
                           "note": "one caller at a time: each request its own transaction"}
    # A typical request's rows (2 records + the idempotency response), appended k per transaction.
    recs = [r for _, r in log.records(since=max(0, log.last_seq() - 2))]
    resp = json.dumps(brain.event_view(brain.twin.events[recs[-1].event_id]))
    for name, fn in originals.items():
        setattr(log, name, fn)
    rows = [(r.event_id, r.seq, r.at, r.actor, r.action.value, r.from_state.value if r.from_state else None,
             r.to_state.value, r.reason, json.dumps(dict(r.data), default=dict)) for r in recs]
    conn = log._conn  # the benchmark's own file: the pragmas below are for this measurement only
    group: dict[str, Any] = {}
    serial = 0
    for sync in ("FULL", "NORMAL"):
        conn.execute(f"PRAGMA synchronous = {sync}")
        for k in (1, 8, 32):
            reps = max(8, n // k) if k > 1 else n
            t = time.perf_counter()
            for _ in range(reps):
                conn.execute("BEGIN IMMEDIATE")
                last = conn.execute("SELECT COALESCE(MAX(gseq), 0) FROM audit_log").fetchone()[0]
                for _ in range(k):
                    serial += 1
                    for j, row in enumerate(rows):
                        last += 1
                        conn.execute("INSERT INTO audit_log (gseq, event_id, seq, at, actor, action, from_state, "
                                     "to_state, reason, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                     (last, f"G{serial}-{j}", *row[1:]))
                    conn.execute("INSERT INTO idempotency (key, principal, request_hash, response) VALUES (?, ?, ?, ?)",
                                 (f"g{serial}", "p", "h", resp))
                conn.execute("COMMIT")
            group[f"{sync.lower()}_k{k}_ms_per_request"] = round((time.perf_counter() - t) / (reps * k) * 1e3, 3)
    log.close()
    out["append_group_commit"] = group
    return out


def probe_sequential(url: str, n: int, spots: list[tuple[float, float]], codes: list[str], prefix: str
                     ) -> dict[str, Any]:
    """Closed loop, one connection: GET /health and POST one at a time (ms)."""
    h = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    out: dict[str, Any] = {}
    with httpx.Client(timeout=10.0) as c:
        def health(i: int) -> httpx.Response:
            return c.get(url + "/health")

        def post(i: int) -> httpx.Response:
            return c.post(url + "/api/v1/events", content=event_body(spots, codes, i, 7),
                          headers={**h, "Idempotency-Key": f"{prefix}-{i}"})

        for name, fn in (("health", health), ("post", post)):
            lat = []
            for i in range(n):
                t = time.perf_counter()
                r = fn(i)
                lat.append(time.perf_counter() - t)
                if r.status_code not in (200, 201):
                    raise RuntimeError(f"probe {name}: {r.status_code} {r.text[:200]}")
            out[name] = {"p50_ms": ms(pct(lat, 50)), "p95_ms": ms(pct(lat, 95)), "mean_ms": ms(statistics.fmean(lat))}
    return out


def pyspy(pid: int, seconds: float, path: Path) -> subprocess.Popen[bytes] | None:
    if not PYSPY.exists():
        return None
    return subprocess.Popen([str(PYSPY), "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))),
                             "--rate", str(PYSPY_HZ), "--nonblocking", "--gil", "--format", "raw", "--threads", "-o", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


#: Where a GIL sample goes: the innermost of these frames on its stack (a name, a ``Class.``
#: prefix when it ends with a dot, or the suffix after a dot); samples under none: "other".
KEY_FRAMES = (
    ("District.locate", "brain: locate the point (shapely)"),
    ("District.locate_all", "brain: locate the point (shapely)"),
    ("json_bytes", "brain: answer as JSON"),
    ("EventLog.append", "brain: log append (SQLite, fsync=FULL)"),
    ("EventLog.append_many", "brain: log append (SQLite, fsync=FULL)"),
    ("_Committer._run", "brain: group committer (rest)"),
    ("LiveTwin._settle", "brain: settle after durability"),
    ("EventLog.idempotent", "brain: idempotency lookup"),
    ("Brain.event_view", "brain: event view (response dict)"),
    ("LiveTwin._plan_dispatch", "brain: dispatch (policy)"),
    ("DuplicateIndex.find", "brain: duplicate search"),
    ("_serial", "brain: _serial (digits of the event id)"),
    ("LiveTwin._commit", "brain: commit bookkeeping (absorb, timers)"),
    ("LiveTwin.report", "brain: report (rest)"),
    ("LiveTwin.report_many", "brain: report (rest)"),
    ("Brain.create_event", "brain: create_event (rest)"),
    ("Brain.create_events", "brain: create_event (rest)"),
    ("LiveTwin.tick", "brain: timer ticks"),
    ("deserialize_objects", "ray: deserialize"),
    ("SerializationContext.serialize", "ray: serialize"),
    ("ActorMethod._remote", "api: Ray actor call (submit)"),
    ("RayClient._send", "api: Ray actor call (rest)"),
    ("Coalescer.", "api: coalescer (batches of reports)"),
    ("FastReports.", "api: plain-ASGI report path (FastReports)"),
    ("to_thread", "api: asyncio.to_thread hop"),
    ("solve_dependencies", "api: FastAPI dependencies (token, Idempotency-Key, body)"),
    ("serialize_response", "api: FastAPI response serialization"),
    ("create_event", "api: route handler (rest)"),  # (api.routes.events; the brain's are above)
    ("APIRoute.handle", "api: FastAPI/Starlette routing and request (rest)"),
    ("BaseHTTPMiddleware.", "api: BaseHTTPMiddleware machinery (_limit_size)"),
    ("_StreamingResponse.", "api: BaseHTTPMiddleware machinery (_limit_size)"),
    ("H11Protocol.", "api: uvicorn h11 parsing"),
    ("RequestResponseCycle.send", "api: uvicorn h11 response writing"),
    ("RequestResponseCycle.run_asgi", "api: ASGI middleware stack (rest)"),
)


def _key_of(frames: list[str]) -> str:
    for f in reversed(frames):
        nm = f.split(" (", 1)[0]
        for needle, label in KEY_FRAMES:
            if (nm.startswith(needle) if needle.endswith(".") else (nm == needle or nm.endswith("." + needle))):
                return label
    return "other (event loop, threads, idle polling)"


def summarize_stacks(path: Path, *, rate_hz: int, requests: int, top: int = 12) -> dict[str, Any]:
    """py-spy ``--gil`` collapsed stacks: GIL-holding milliseconds per request, split by the
    innermost named frame of each sample (they add up), and the top functions by self samples."""
    if not path.exists():
        return {"error": "no profile written"}
    by_key: Counter[str] = Counter()
    self_: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    brain_all = 0
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        cnt = int(n)
        frames = [f.strip() for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        total += cnt
        threads[frames[0].split(":", 1)[-1].strip()] += cnt
        by_key[_key_of(frames[1:])] += cnt
        brain_all += cnt if any(f.startswith("Brain.create_event ") for f in frames) else 0
        self_[_short(frames[-1])] += cnt
    per = 1e3 / rate_hz / max(requests, 1)  # ms per request of one sample
    return {"gil_samples": total, "gil_seconds": round(total / rate_hz, 2),
            "gil_ms_per_request": round(total * per, 2), "brain_create_event_ms_per_request": round(brain_all * per, 2),
            "threads": dict(threads.most_common(6)),
            "ms_per_request": {k: round(v * per, 3) for k, v in by_key.most_common()},
            "top_self_share": [(f, round(v / max(total, 1), 3)) for f, v in self_.most_common(top)]}


def _short(frame: str) -> str:
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for cut in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if cut in where:
            where = where.split(cut, 1)[1]
    return f"{name} ({where.rsplit(':', 1)[0]})"


# --- 1. + 3. the load curve ---------------------------------------------------------------------------

def load_curve(ray: bool, args: argparse.Namespace, tmp: Path, spots: list[tuple[float, float]],
               codes: list[str]) -> dict[str, Any]:
    mode = "ray" if ray else "no_ray"
    step_s = 3.0 if args.quick else 10.0
    cap = 60 + len(args.rate_list) * (step_s + REQUEST_TIMEOUT_S + 45) + 120
    db = Path(tempfile.mkstemp(prefix=f"curve-{mode}-", suffix=".db", dir=tmp)[1])  # a fresh log every curve
    db.unlink()
    server = Serve(db, ray=ray, log_dir=tmp, cap_s=cap)
    out: dict[str, Any] = {"mode": mode}
    try:
        out["startup_s"] = round(server.wait_ready(), 2)
        time.sleep(2.0)
        out["memory_idle"] = server.memory()
        cpu0 = server.cpu()
        time.sleep(IDLE_S)
        out["idle_cpu_share_of_a_core"] = {k: round(v / IDLE_S, 3) for k, v in
                                           sorted(cpu_delta(cpu0, server.cpu()).items())}
        out["sequential"] = probe_sequential(server.url, 60 if args.quick else 200, spots, codes, f"{mode}-seq")
        check = LogCheck(db)
        check.update()
        acked_total = len(check.reports)  # the sequential probe's events
        steps: list[dict[str, Any]] = []
        for si, rate in enumerate(args.rate_list):
            if len(steps) >= 2 and steps[-1].get("breaks", True) and steps[-2].get("breaks", True):
                steps.append({"offered_per_s": rate, "skipped": "the two steps before broke"})
                print(f"  [{mode}] {rate:5d}/s skipped (the two steps before broke)", flush=True)
                continue
            settle = settle_s(server.url)
            quiet = wait_quiet(5.0 if args.quick else 10.0)
            prof: list[tuple[str, subprocess.Popen[bytes] | None, Path]] = []
            if args.profile and si == 0:
                for role, needle in (("api", None), ("brain", "BrainHost")) if ray else (("api", None),):
                    p = psutil.Process(server.proc.pid) if needle is None else server.find(needle)
                    if p is not None:
                        path = tmp / f"pyspy-{role}.txt"
                        prof.append((role, pyspy(p.pid, step_s + 2, path), path))
            cfg = {"url": server.url, "spots": spots, "codes": codes, "inflight": MAX_INFLIGHT, "rate": rate,
                   "duration_s": step_s, "prefix": f"{mode}-r{rate}", "salt": si, "timeout_s": REQUEST_TIMEOUT_S,
                   "drain_s": REQUEST_TIMEOUT_S + 5, "client": args.client}
            cpu0, sys0, wall0, steal0 = server.cpu(), busy_cpu_s(), time.monotonic(), steal_cpu_s()
            gen = Generator(cfg)
            res = gen.result()
            cpu1, sys1, wall1, steal1 = server.cpu(), busy_cpu_s(), time.monotonic(), steal_cpu_s()
            row = summarize(res, rate)
            cpu = cpu_delta(cpu0, cpu1)
            acked = max(row["acked"], 1)
            row["server_cpu_s"] = {k: round(v, 2) for k, v in sorted(cpu.items())}
            row["machine_busy_share"] = round((sys1 - sys0) / ((wall1 - wall0) * (os.cpu_count() or 1)), 2)
            row["other_processes_cpu_s"] = round(max(0.0, sys1 - sys0 - sum(cpu.values()) - res["cpu_s"]), 2)
            row["stolen_by_hypervisor_cpu_s"] = round(steal1 - steal0, 2)  # included in the line above
            row["cpu_ms_per_event"] = {**{k: round(v / acked * 1e3, 2) for k, v in sorted(cpu.items())},
                                       "generator": round(res["cpu_s"] / acked * 1e3, 2),
                                       "twin_total": round(sum(cpu.values()) / acked * 1e3, 2)}
            row["loss_check"] = check.verify([r[4] for r in res["rows"] if r[3] == 201])
            acked_total += row["acked"]
            row["unacked_events_in_log"] = row["loss_check"]["log_events"] - acked_total
            row["breaks"] = _breaks(row)
            row["settle_before_s"] = settle
            row["quiet_before"] = quiet
            row["noisy"] = row["other_processes_cpu_s"] > NOISY_CORES * step_s
            for role, p, path in prof:
                if p is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        p.wait(timeout=30)
                    row.setdefault("profile", {})[role] = summarize_stacks(path, rate_hz=PYSPY_HZ,
                                                                           requests=row["acked"])
            steps.append(row)
            lc = row["latency_ms"]
            print(f"  [{mode}] {rate:5d}/s offered: {row['achieved_per_s']:7.1f}/s acked, p50 {lc['p50']} ms, "
                  f"p99 {lc['p99']} ms, max {lc['max']} ms, errors {sum(row['errors'].values())}, "
                  f"timeouts {row['timeouts']}, shed {row['shed']}, lost {row['loss_check']['lost']}, "
                  f"cpu/event {row['cpu_ms_per_event']['twin_total']} ms (+gen {row['cpu_ms_per_event']['generator']}), "
                  f"machine busy {row['machine_busy_share']:.0%} (others {row['other_processes_cpu_s']} cpu-s, of which "
                  f"stolen {row['stolen_by_hypervisor_cpu_s']})"
                  f"{'  <- breaks: ' + ', '.join(row['breaks']) if row['breaks'] else ''}"
                  f"{'  (NOISY: other jobs on the machine)' if row['noisy'] else ''}", flush=True)
        out["steps"] = steps
        ran = [s for s in steps if "skipped" not in s]
        broken = [s for s in ran if s["breaks"]]
        out["breaks_at_per_s"] = broken[0]["offered_per_s"] if broken else None
        below = [s["offered_per_s"] for s in ran if not broken or s["offered_per_s"] < broken[0]["offered_per_s"]]
        out["max_sustained_per_s"] = max(below, default=None)
        out["peak_achieved_per_s"] = max((s["achieved_per_s"] for s in ran), default=None)
        out["memory_after_load"] = server.memory()
        out["log_records_after"] = check.records
        out["target_met"] = bool(out["max_sustained_per_s"] and out["max_sustained_per_s"] >= TARGET_RATE)
    finally:
        server.stop()
    return out


def settle_s(url: str, limit_s: float = 30.0) -> float:
    """Wait until the server is idle again (two /health answers under 50 ms in a row, the
    last step's backlog worked off); seconds waited."""
    t = time.monotonic()
    fast = 0
    with httpx.Client(timeout=5.0) as c:
        while time.monotonic() - t < limit_s and fast < 2:
            t1 = time.perf_counter()
            with contextlib.suppress(httpx.HTTPError):
                c.get(url + "/health")
            fast = fast + 1 if time.perf_counter() - t1 < 0.05 else 0
            time.sleep(0.2)
    return round(time.monotonic() - t, 1)


def wait_quiet(limit_s: float) -> dict[str, Any]:
    """Wait (at most ``limit_s``) until the machine is nearly idle (other people's jobs share it):
    under ``QUIET_SHARE`` of all cores busy over one second, our idle servers included."""
    t = time.monotonic()
    busy = psutil.cpu_percent(interval=1.0) / 100.0
    while busy > QUIET_SHARE and time.monotonic() - t < limit_s:
        busy = psutil.cpu_percent(interval=1.0) / 100.0
    return {"waited_s": round(time.monotonic() - t, 1), "busy_share": round(busy, 2), "quiet": busy <= QUIET_SHARE}


def _breaks(row: dict[str, Any]) -> list[str]:
    why = []
    p99 = row["latency_ms"]["p99"]
    if p99 is None or p99 > P99_LIMIT_MS:
        why.append(f"p99 {p99} ms > {P99_LIMIT_MS:g}")
    if row["achieved_per_s"] < THROUGHPUT_SHARE * row["offered_per_s"]:
        why.append(f"throughput {row['achieved_per_s']} < {THROUGHPUT_SHARE:.0%} of offered")
    if row["loss_check"]["lost"] or row["loss_check"]["reported_twice"]:
        why.append("loss")
    return why


# --- 2. start-up ---------------------------------------------------------------------------------------

def startup(ray: bool, times: int, tmp: Path) -> list[float]:
    out = []
    for k in range(times):
        s = Serve(tmp / f"startup-{'ray' if ray else 'noray'}-{k}.db", ray=ray, log_dir=tmp, cap_s=240)
        try:
            out.append(round(s.wait_ready(), 2))
        finally:
            s.stop()
    return out


# --- 4. crashes ----------------------------------------------------------------------------------------

def crash_tests(args: argparse.Namespace, tmp: Path, spots: list[tuple[float, float]], codes: list[str]
                ) -> dict[str, Any]:
    load_s = 6.0 if args.quick else 12.0
    db = tmp / "crash.db"
    out: dict[str, Any] = {"rate_per_s": CRASH_RATE, "load_s": load_s}
    first = Serve(db, ray=True, log_dir=tmp, cap_s=300)
    first.wait_ready()
    # a. the whole twin, SIGKILL, mid-load
    gen = Generator({"url": first.url, "spots": spots, "codes": codes, "inflight": 64, "rate": CRASH_RATE,
                     "duration_s": load_s, "prefix": "crash-a", "salt": 11, "timeout_s": 5.0, "drain_s": 8.0,
                     "client": args.client})
    time.sleep(0.05 + load_s / 2)
    t_kill = time.monotonic()
    killed = first.kill()
    gen.stop()
    res = gen.result()
    rows = res["rows"]
    acked = {r[0]: r[4] for r in rows if r[3] == 201}
    sent_failed = [r for r in rows if r[3] not in (201, "shed") and r[6] is not None]
    a: dict[str, Any] = {"acked": len(acked), "failed_after_send": len(sent_failed),
                         "in_flight_at_kill": sum(1 for r in sent_failed if r[6] <= t_kill),
                         "never_sent": sum(1 for r in rows if r[6] is None),
                         "answered_after_kill": sum(1 for r in rows if r[3] == 201 and r[7] > t_kill), **killed}
    second = Serve(db, ray=True, log_dir=tmp, cap_s=300)
    try:
        a["restart_s"] = round(second.wait_ready(), 2)
        check = LogCheck(db)
        a["after_restart"] = check.verify(list(acked.values()))
        a["log"] = check_whole_log(db)
        before_events = len(check.reports)
        # Re-send the acknowledged and the in-flight requests with their keys and bodies.
        items = [[r[0], r[1], r[2]] for r in rows if r[3] == 201] + [[r[0], r[1], r[2]] for r in sent_failed]
        again = Generator({"url": second.url, "spots": spots, "codes": codes, "inflight": 32, "items": items,
                           "timeout_s": 10.0, "drain_s": 60.0, "retry": True, "retry_deadline_s": 30.0,
                           "client": args.client})
        res2 = again.result()
        got = {r[0]: r for r in res2["rows"]}
        same = sum(1 for k, eid in acked.items() if got.get(k, [None] * 10)[4] == eid and got[k][9])
        inflight_committed = sum(1 for r in sent_failed if got.get(r[0], [None] * 10)[9])
        created = sum(1 for r in sent_failed if got.get(r[0], [None] * 10)[3] == 201 and not got[r[0]][9])
        check.update()
        keys = idempotency_ids(db)
        a["resend"] = {
            "acked_resent": len(acked), "acked_same_id_replayed": same,
            "inflight_resent": len(sent_failed), "inflight_had_committed": inflight_committed,
            "inflight_created_now": created,
            "resend_failures": sum(1 for r in res2["rows"] if r[3] != 201),
            "new_events_in_log": len(check.reports) - before_events,
            "new_events_expected": created,
            "acked_keys_with_other_id_stored": sum(1 for k, eid in acked.items() if keys.get(k) not in (None, eid)),
        }
        a["ok"] = (a["after_restart"]["lost"] == 0 and a["after_restart"]["reported_twice"] == 0
                   and a["log"]["replay_ok"] and a["log"]["member_double_holds"] == 0
                   and same == len(acked) and a["resend"]["new_events_in_log"] == created
                   and a["resend"]["acked_keys_with_other_id_stored"] == 0)
        out["kill_whole_twin"] = a
        print(f"  crash a (SIGKILL twin): {len(acked)} acked, {a['in_flight_at_kill']} in flight at the kill, "
          f"{len(sent_failed) - a['in_flight_at_kill']} refused after it; restart "
              f"{a['restart_s']} s; lost {a['after_restart']['lost']}, twice {a['after_restart']['reported_twice']}, "
              f"replay {'ok' if a['log']['replay_ok'] else 'FAILED'}, member double holds "
              f"{a['log']['member_double_holds']}; resend: {same}/{len(acked)} same id, {inflight_committed} "
              f"in-flight had committed, {created} created now, {a['resend']['new_events_in_log']} new in log "
              f"-> {'OK' if a['ok'] else 'FAILED'}", flush=True)

        # b. only the brain's actor process, SIGKILL, mid-load; the generator retries
        b: dict[str, Any] = {"log_records_before": check.records}
        old = second.find("BrainHost")
        if old is None:
            raise RuntimeError("no ray::BrainHost process found in the serve tree")
        gen = Generator({"url": second.url, "spots": spots, "codes": codes, "inflight": 128, "rate": CRASH_RATE,
                         "duration_s": load_s, "prefix": "crash-b", "salt": 13, "timeout_s": 10.0, "drain_s": 90.0,
                         "retry": True, "retry_deadline_s": 60.0, "client": args.client})
        time.sleep(0.05 + load_s * 0.4)
        t_kill = time.monotonic()
        old.kill()
        t_new = None
        while time.monotonic() - t_kill < 90:
            p = second.find("BrainHost")
            if p is not None and p.pid != old.pid:
                t_new = time.monotonic()
                break
            time.sleep(0.1)
        res = gen.result()
        rows = res["rows"]
        att = res["attempts"]
        fails = sorted(e for s, e, c in att if c != 201 and e >= t_kill)
        first_fail = fails[0] if fails else None
        succ_after = [e for s, e, c in att if c == 201 and first_fail is not None and s >= first_fail]
        first_ok = min(succ_after) if succ_after else None
        done = sorted(e for s, e, c in att if c == 201)
        gaps = [(y - x, x) for x, y in zip(done, done[1:])]
        gap = max(gaps, default=(0.0, 0.0))
        codes_seen = Counter(str(c) for s, e, c in att if c != 201)
        acked_b = [r[4] for r in rows if r[3] == 201]
        b.update({
            "requests": len(rows), "acked": len(acked_b), "failed_finally": sum(1 for r in rows if r[3] != 201),
            "failed_attempts": len(fails) + sum(1 for s, e, c in att if c != 201 and e < t_kill),
            "failed_attempts_by_kind": dict(codes_seen),
            "retried_requests": sum(1 for r in rows if r[8] > 1),
            "answered_by_replay": sum(1 for r in rows if r[9]),
            "brain_process_back_s": round(t_new - t_kill, 2) if t_new else None,
            "outage_first_failure_to_first_success_s": round(first_ok - first_fail, 2) if first_ok and first_fail
            else None,
            "kill_to_first_success_after_failure_s": round(first_ok - t_kill, 2) if first_ok else None,
            "longest_gap_between_201s_s": round(gap[0], 2), "gap_started_after_kill_s": round(gap[1] - t_kill, 2),
            "latency_ms": summarize(res, CRASH_RATE)["latency_ms"],
        })
        b["after"] = check.verify(acked_b)
        b["log"] = check_whole_log(db)
        b["ok"] = (b["after"]["lost"] == 0 and b["after"]["reported_twice"] == 0 and b["failed_finally"] == 0
                   and b["log"]["replay_ok"] and b["log"]["member_double_holds"] == 0)
        out["kill_brain_actor"] = b
        print(f"  crash b (SIGKILL ray::BrainHost): {b['acked']}/{b['requests']} acked, {b['failed_finally']} "
              f"failed for good, {b['failed_attempts']} failed attempts {dict(codes_seen)}, {b['retried_requests']} "
              f"retried ({b['answered_by_replay']} answered from their key); brain process back after "
              f"{b['brain_process_back_s']} s, outage {b['outage_first_failure_to_first_success_s']} s "
              f"(longest gap between 201s {b['longest_gap_between_201s_s']} s); lost {b['after']['lost']}, "
              f"twice {b['after']['reported_twice']} -> {'OK' if b['ok'] else 'FAILED'}", flush=True)
    finally:
        second.stop()
    return out


# --- main ----------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 s steps, one start-up each, shorter crash loads")
    ap.add_argument("--profile", action="store_true", help="py-spy (GIL samples) the API process and the brain "
                    "during the first step")
    ap.add_argument("--no-crash", action="store_true", help="skip the crash tests")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (logs, databases)")
    ap.add_argument("--client", choices=("raw", "httpx"), default="raw",
                    help="load generator's HTTP client (raw asyncio streams: cheapest; httpx: the usual one)")
    ap.add_argument("--rates", help="comma-separated offered rates instead of " + ",".join(map(str, RATES)))
    ap.add_argument("--server-path", help="a folder put first on the servers' PYTHONPATH (what-if: e.g. "
                    "'pip install --target DIR uvloop httptools', which uvicorn uses when it can import them)")
    ap.add_argument("--out", type=Path, default=OUT, help=f"where to write the results (default {OUT})")
    ap.add_argument("--modes", default="ray,no_ray", help="which load curves: ray, no_ray or both (default)")
    ap.add_argument("--repeat", type=int, default=1, help="run the load curves this many times (each on a fresh "
                    "server) and report how often each step held: the machine is shared and noisy")
    args = ap.parse_args()
    args.mode_list = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not args.mode_list or any(m not in ("ray", "no_ray") for m in args.mode_list):
        ap.error("--modes: ray, no_ray or ray,no_ray")
    global SERVER_PATH
    SERVER_PATH = args.server_path
    args.rate_list = tuple(int(x) for x in args.rates.split(",")) if args.rates else RATES
    if not BIN.exists():
        raise SystemExit(f"{BIN} not found: install the project into this venv")
    t_start = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="bench-live-"))
    stop = threading.Event()
    threading.Thread(target=_sampler, args=(stop,), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result: dict[str, Any] = {"machine": describe(("numpy", "ray", "fastapi", "uvicorn", "httpx", "psutil")),
                              "quick": args.quick, "rates": list(args.rate_list), "client": args.client,
                              "target_per_s": TARGET_RATE,
                              "p99_limit_ms": P99_LIMIT_MS, "max_inflight": MAX_INFLIGHT,
                              "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
                              "server_path": args.server_path}
    try:
        spots, codes = district_points()
        print("components (in this process, no HTTP, no Ray):", flush=True)
        result["components"] = bench_components(300 if args.quick else 1000, tmp)
        c = result["components"]
        print(f"  Brain.create_event {c['brain_create_event_ms']} ms/event (log write {c['log_write_ms_per_request']} ms); "
              f"group commit ms/request: {c['append_group_commit']}", flush=True)
        curves = {}
        for ray in [m == "ray" for m in args.mode_list]:
            print(f"load curve, brain {'in a Ray actor' if ray else 'in the API process (--no-ray)'}:", flush=True)
            curves["ray" if ray else "no_ray"] = cv = load_curve(ray, args, tmp, spots, codes)
            print(f"  start-up {cv['startup_s']} s; sequential: {cv['sequential']}; memory idle "
                  f"{cv['memory_idle']['rss_mib']} MiB RSS / {cv['memory_idle']['pss_mib']} MiB PSS in "
                  f"{cv['memory_idle']['processes']} processes, after load {cv['memory_after_load']['rss_mib']} / "
                  f"{cv['memory_after_load']['pss_mib']} MiB; sustained {cv['max_sustained_per_s']}/s, breaks at "
                  f"{cv['breaks_at_per_s']}/s", flush=True)
        result["load_curve"] = curves
        if args.repeat > 1:  # a shared machine: how often does each step hold?
            result["repeats"] = repeats = {k: [c] for k, c in curves.items()}
            for r in range(1, args.repeat):
                for ray in [m == "ray" for m in args.mode_list]:
                    print(f"load curve again ({r + 1}/{args.repeat}), {'ray' if ray else 'no_ray'}:", flush=True)
                    repeats["ray" if ray else "no_ray"].append(load_curve(ray, args, tmp, spots, codes))
            result["repeat_summary"] = {k: repeat_summary(v) for k, v in repeats.items()}
            for k, v in result["repeat_summary"].items():
                print(f"  {k}: " + "; ".join(f"{rate}/s p99 {x['p99_ms']} (held {x['held']}/{x['runs']})"
                                             for rate, x in v.items()), flush=True)
        if len(curves) == 2:
            result["ray_vs_no_ray"] = ray_vs_no_ray(curves["ray"], curves["no_ray"])
        times = 1 if args.quick else 3
        su = {k: [c["startup_s"]] for k, c in curves.items()}
        if times > 1:
            print("start-up:", flush=True)
            for k in su:
                su[k] += startup(k == "ray", times - 1, tmp)
        result["startup_s"] = {k: {"runs": v, "median": round(statistics.median(v), 2)} for k, v in su.items()}
        if len(su) == 2:
            result["startup_s"]["ratio_ray_to_no_ray"] = _ratio(result["startup_s"]["ray"]["median"],
                                                                result["startup_s"]["no_ray"]["median"])
        print(f"  start-up (launch -> first 200 from /health): {result['startup_s']}", flush=True)
        result["memory_mib"] = {k: {"idle": curves[k]["memory_idle"], "after_load": curves[k]["memory_after_load"]}
                                for k in curves}
        if not args.no_crash:
            print(f"crash tests (Ray mode, {CRASH_RATE} events/s):", flush=True)
            result["crash"] = crash_tests(args, tmp, spots, codes)
    finally:
        stop.set()
        result["cleanup"] = cleanup()
        result["wall_s"] = round(time.monotonic() - t_start, 1)
        if args.keep:
            result["tmp"] = str(tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    verdict(result, args.out)


def repeat_summary(runs: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Per offered rate over repeated curves: the p99s, and in how many runs the step held."""
    out: dict[int, dict[str, Any]] = {}
    for cv in runs:
        for st in cv["steps"]:
            if "skipped" in st:
                continue
            x = out.setdefault(st["offered_per_s"], {"p99_ms": [], "held": 0, "runs": 0})
            x["p99_ms"].append(st["latency_ms"]["p99"])
            x["runs"] += 1
            x["held"] += not st.get("breaks")
    return out


def ray_vs_no_ray(r: dict[str, Any], n: dict[str, Any]) -> dict[str, Any]:
    both = [(a, b) for a, b in zip(r["steps"], n["steps"]) if "skipped" not in a and "skipped" not in b]
    return {
        "p50_ms_ratio_per_step": {a["offered_per_s"]: _ratio(a["latency_ms"]["p50"], b["latency_ms"]["p50"])
                                  for a, b in both},
        "p99_ms_ratio_per_step": {a["offered_per_s"]: _ratio(a["latency_ms"]["p99"], b["latency_ms"]["p99"])
                                  for a, b in both},
        "twin_cpu_per_event_ratio_per_step": {
            a["offered_per_s"]: _ratio(a["cpu_ms_per_event"]["twin_total"], b["cpu_ms_per_event"]["twin_total"])
            for a, b in both},
        "sequential_post_p50_ratio": _ratio(r["sequential"]["post"]["p50_ms"], n["sequential"]["post"]["p50_ms"]),
        "sequential_health_p50_ratio": _ratio(r["sequential"]["health"]["p50_ms"],
                                              n["sequential"]["health"]["p50_ms"]),
        "max_sustained_per_s": {"ray": r["max_sustained_per_s"], "no_ray": n["max_sustained_per_s"]},
        "peak_achieved_ratio": _ratio(r["peak_achieved_per_s"], n["peak_achieved_per_s"]),
        "pss_idle_ratio": _ratio(r["memory_idle"]["pss_mib"], n["memory_idle"]["pss_mib"]),
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def verdict(result: dict[str, Any], out: Path) -> None:
    cv = result.get("load_curve", {})
    print("\nsummary:")
    for mode, c in cv.items():
        ran = [st for st in c["steps"] if "skipped" not in st]
        noisy = [st["offered_per_s"] for st in ran if st.get("noisy")]
        print(f"  {mode:6s}: sustained {c['max_sustained_per_s']}/s (p99 <= {P99_LIMIT_MS:g} ms, >= "
              f"{THROUGHPUT_SHARE:.0%} of offered, nothing lost); breaks at {c['breaks_at_per_s']}/s; peak "
              f"{c['peak_achieved_per_s']}/s acked; target {TARGET_RATE}/s {'MET' if c['target_met'] else 'MISSED'}"
              f"{f'; noisy steps {noisy}' if noisy else ''}; lost {sum(st['loss_check']['lost'] for st in ran)}; "
              f"memory idle {c['memory_idle']['pss_mib']} MiB PSS ({c['memory_idle']['rss_mib']} RSS, "
              f"{c['memory_idle']['processes']} processes)")
    if "ray_vs_no_ray" in result:
        rv = result["ray_vs_no_ray"]
        print(f"  ray / no-ray: p99 per step {rv['p99_ms_ratio_per_step']}, twin CPU per event "
              f"{rv['twin_cpu_per_event_ratio_per_step']}, one-at-a-time POST p50 {rv['sequential_post_p50_ratio']}, "
              f"idle PSS {rv['pss_idle_ratio']}")
    if "startup_s" in result:
        print("  start-up median: " + ", ".join(f"{k} {v['median']} s" for k, v in result["startup_s"].items()
                                                 if isinstance(v, dict)))
    cr = result.get("crash", {})
    if "kill_whole_twin" in cr:
        a = cr["kill_whole_twin"]
        print(f"  crash, SIGKILL of the whole twin: {'OK' if a['ok'] else 'FAILED'} (restart {a.get('restart_s')} s)")
    if "kill_brain_actor" in cr:
        b = cr["kill_brain_actor"]
        print(f"  crash, SIGKILL of ray::BrainHost: {'OK' if b['ok'] else 'FAILED'} (outage "
              f"{b['outage_first_failure_to_first_success_s']} s, no 201 for {b['longest_gap_between_201s_s']} s)")
    print(f"  cleanup: {result['cleanup']}; wall {result['wall_s']} s; written {out}")


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup()
