"""Shared fixtures: the xiaohe district (loaded once), a tiny hand-made district, and a
tiny synthetic scenario folder to break in bad-file tests."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from shapely.geometry import box

from twin.catalog import Catalog, Category, ScenarioSpec, Severity, Source
from twin.district import District
from twin.geo import LocalProjection, Region, RegionIndex, TravelMode, road_network_from_features
from twin.staff import Member, Role, Roster, Shift, ShiftPlan, Squad

TZ = ZoneInfo("Asia/Shanghai")


def at(hhmmss: str, day: int = 2) -> float:
    """POSIX seconds of a local Asia/Shanghai time on 2026-03-<day>."""
    h, m, *s = (int(v) for v in hhmmss.split(":"))
    return datetime(2026, 3, day, h, m, s[0] if s else 0, tzinfo=TZ).timestamp()


@pytest.fixture(scope="session")
def xiaohe() -> District:
    from scenarios import load_cached

    return load_cached("xiaohe")


@pytest.fixture
def brain(xiaohe: District, tmp_path: Path) -> Iterator[Any]:
    """A live brain of xiaohe on a fresh SQLite event log, its clock at Monday 2026-03-02
    10:00 local (the day shift)."""
    from actors.brain import Brain
    from actors.eventlog import open_log
    from actors.live import Clock

    origin = datetime(2026, 3, 2, 10, 0, tzinfo=xiaohe.roster.tz).timestamp()
    b = Brain(xiaohe, open_log(tmp_path / "events.db"), Clock(speed=1.0, origin=origin))
    yield b
    b.log.close()


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small valid scenario folder (0.05 x Xiaohe); copy it before changing anything."""
    from scenarios.synth import write_synthetic

    folder = tmp_path_factory.mktemp("tiny")
    write_synthetic(folder, 0.05)
    return folder


@pytest.fixture
def tiny_copy(tiny_folder: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny scenario folder, to break."""
    dst = tmp_path / "scenario"
    shutil.copytree(tiny_folder, dst)
    return dst


# --- a hand-made district where the right dispatch answer is known --------------------------
#
#   n0 ---- n1 ---- n2 ---- n3 ---- n4      one straight street, 100 m segments, west → east
#   |  grid G1 (area A1)  |  grid G2 (area A2) |      boundary at x = 200 m between the grids
#
# Members (all e-bike, 4.5 m/s ⇒ 100 m ≈ 22.2 s):
#   GW1 grid G1 post n0, GW2 grid G1 post n2, GW3 grid G2 post n4 (day + evening shifts)
#   CG1 area A1 post n1, CG2 area A2 post n4 (every shift); EN1 area A1 post n0 (car)

PROJ = LocalProjection(120.0, 30.0)


def _ll(x: float, y: float) -> list[float]:
    lon, lat = PROJ.to_lonlat(x, y)
    return [float(lon), float(lat)]


def make_spec(code: str = "CM01", chain: tuple[Role, ...] = (Role.GRID_WORKER, Role.CO_GOVERNANCE,
                                                              Role.ENFORCEMENT), **kw: object) -> ScenarioSpec:
    base: dict[str, object] = dict(
        code=code, name_zh="出店经营", name_en="Shop outside storefront", category="city_management",
        sources=(Source.PATROL,), severity=Severity.LOW, department="城市管理科",
        handler_chain=chain, respond_s=60, on_scene_s=180, reinforce_s=300, handling_min=10,
        merge_radius_m=50, merge_window_s=1800)
    base.update(kw)
    return ScenarioSpec(**base)  # type: ignore[arg-type]


def make_tiny_district(*, day_night: bool = False) -> District:
    """The hand-made street above.

    Args:
        day_night: Two 12-hour shifts (day 08-20, night 20-08) instead of one 24-hour
            shift: grid workers work days only; CG1 days, CG2 nights; EN1 both (no rotation).
    """
    feats = []
    for i in range(4):
        feats.append({"type": "Feature",
                      "geometry": {"type": "LineString", "coordinates": [_ll(100 * i, 0), _ll(100 * (i + 1), 0)]},
                      "properties": {"id": f"r{i}", "from": f"n{i}", "to": f"n{i + 1}", "length_m": 100.0,
                                     "speed_kmh": 36.0, "oneway": False, "class": "residential"}})
    net = road_network_from_features(feats, projection=PROJ)
    g1 = Region("G1", "grid", "G1", box(-10, -50, 200, 50), parent="C1")
    g2 = Region("G2", "grid", "G2", box(200, -50, 410, 50), parent="C2")
    c1 = Region("C1", "community", "C1", g1.polygon, parent="A1")
    c2 = Region("C2", "community", "C2", g2.polygon, parent="A2")
    a1 = Region("A1", "area", "A1", g1.polygon)
    a2 = Region("A2", "area", "A2", g2.polygon)
    regions = RegionIndex([g1, g2], [c1, c2], [a1, a2])
    node = {k: i for i, k in enumerate(net.node_keys)}

    def m(mid: str, role: Role, area: str, grids: tuple[str, ...], post: str, slot: int = 0,
          mode: TravelMode = TravelMode.EBIKE) -> Member:
        return Member(mid, mid, role, area, f"SQ-{area}", grids, slot, node[post], mode)

    members = [
        m("GW1", Role.GRID_WORKER, "A1", ("G1",), "n0"),
        m("GW2", Role.GRID_WORKER, "A1", ("G1",), "n2"),
        m("GW3", Role.GRID_WORKER, "A2", ("G2",), "n4"),
        m("CG1", Role.CO_GOVERNANCE, "A1", (), "n1", slot=0),
        m("CG2", Role.CO_GOVERNANCE, "A2", (), "n4", slot=1),
        m("EN1", Role.ENFORCEMENT, "A1", (), "n0", mode=TravelMode.CAR),
    ]
    if day_night:
        plan = ShiftPlan([Shift("day", 8 * 3600, 20 * 3600), Shift("night", 20 * 3600, 8 * 3600)])
        role_shifts = {Role.GRID_WORKER: ("day",), Role.CO_GOVERNANCE: ("day", "night"),
                       Role.ENFORCEMENT: ("day",)}
    else:
        plan = ShiftPlan([Shift("all", 0, 86400)])
        role_shifts = {r: ("all",) for r in Role}
    roster = Roster(members, plan, role_shifts)
    catalog = Catalog([Category("city_management", "城市管理", "City management", "CM01")], [make_spec()])
    mids = np.array([s.line.interpolate(0.5, normalized=True).coords[0] for s in net.segments])
    return District(name="tiny", title="Tiny test street", boundary=box(-10, -50, 410, 50), roads=net,
                    responsible=np.arange(len(net)), road_grid=regions.grids_at(mids), regions=regions,
                    squads=(Squad("SQ-A1", "SQ-A1", ("A1",)), Squad("SQ-A2", "SQ-A2", ("A2",))),
                    roster=roster, catalog=catalog)


@pytest.fixture
def tiny() -> District:
    return make_tiny_district()


def hypot(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


# --- a private, throwaway PostgreSQL cluster for the event-log tests ----------------------------


def _pg_bindir() -> Path | None:
    """The folder holding PostgreSQL's ``initdb`` and ``pg_ctl`` (Debian keeps them in
    /usr/lib/postgresql/<version>/bin, off PATH), newest version first; ``None`` if absent."""
    import glob
    import os

    candidates = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parent)
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += [Path(p) for p in sorted(versions, key=lambda p: [int(v) for v in p.split("/")[-2].split(".")
                                                                    if v.isdigit()], reverse=True)]
    for folder in candidates:
        if all(os.access(folder / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "createdb")):
            return folder
    return None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of an empty database in a private PostgreSQL cluster started for this test session.

    The cluster lives in a temporary folder, listens only on 127.0.0.1 (a free port; its unix
    socket in the folder), trusts every local connection, and is stopped and deleted at the end.
    PostgreSQL refuses to run as root: as root, it runs as the ``postgres`` user. Skips the
    tests that use it when PostgreSQL is not installed (``make postgres`` installs it).
    """
    import os
    import pwd
    import socket
    import subprocess
    import tempfile

    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin); "
                    "`make postgres` installs it")
    as_owner: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="streetbrain-pg-"))
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            pytest.skip("PostgreSQL refuses to run as root and there is no 'postgres' user to run it as")
        os.chown(root, owner.pw_uid, owner.pw_gid)
        as_owner = ["runuser", "-u", "postgres", "--"] if shutil.which("runuser") else []
        if not as_owner:
            shutil.rmtree(root)
            pytest.skip("running as root without runuser: cannot start PostgreSQL as the 'postgres' user")
    data, logfile = root / "data", root / "server.log"

    def run(*cmd: str | Path) -> None:
        out = subprocess.run([*as_owner, *map(str, cmd)], capture_output=True, text=True, check=False)
        if out.returncode != 0:
            server_log = logfile.read_text(errors="replace") if logfile.exists() else ""
            pytest.fail(f"{' '.join(map(str, cmd))} failed:\n{out.stdout}{out.stderr}{server_log}")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = False
    try:
        run(bindir / "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C",
            "--no-sync")
        run(bindir / "pg_ctl", "-D", data, "-l", logfile, "-w", "-t", "60", "-o",
            f"-c listen_addresses=127.0.0.1 -p {port} -k {root}", "start")
        started = True
        run(bindir / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "streetbrain_test")
        yield f"postgresql://postgres@127.0.0.1:{port}/streetbrain_test"
    finally:
        if started:
            subprocess.run([*as_owner, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)
