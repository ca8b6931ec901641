"""The `streetbrain` console script, run as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "streetbrain"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=120)


def test_help_reads_well() -> None:
    out = run("--help")
    assert out.returncode == 0
    assert "digital twin" in out.stdout and "scenario" in out.stdout
    sub = run("scenario", "--help")
    assert all(cmd in sub.stdout for cmd in ("show", "list", "validate"))


def test_scenario_show_json() -> None:
    out = run("scenario", "show", "xiaohe", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    for key in ("grids", "roads", "areas", "cameras", "shops", "shifts", "categories", "scenarios"):
        assert isinstance(data[key], int) and data[key] > 0, key
    assert data["members_by_role"] == {"grid_leader": 34, "grid_worker": 152, "grid_instructor": 39,
                                       "co_governance": 50, "enforcement": 30}


def test_scenario_show_text_names_the_approximation() -> None:
    out = run("scenario", "show", "xiaohe")
    assert out.returncode == 0
    assert "APPROXIMATION" in out.stdout and "OpenStreetMap" in out.stdout and "76 grids" in out.stdout


def test_bad_input_is_one_clear_line_and_exit_2(tmp_path: Path) -> None:
    out = run("scenario", "show", str(tmp_path / "missing"))
    assert out.returncode == 2
    assert out.stderr.startswith("error: scenario: no scenario") and "Traceback" not in out.stderr
    (tmp_path / "scenario.toml").write_text("schema_version = 1\nname = 'x'\n")
    out = run("scenario", "validate", str(tmp_path))
    assert out.returncode == 2 and "scenario.toml: regions: is required but missing" in out.stderr
    assert "Traceback" not in out.stderr


def test_scenario_validate_checks_the_frigate_names(tmp_path: Path) -> None:
    import shutil

    ok = run("scenario", "validate", "xiaohe")
    assert ok.returncode == 0 and "Frigate names of 1 camera)" in ok.stdout, ok.stdout + ok.stderr
    folder = tmp_path / "xiaohe"
    shutil.copytree(Path(__file__).parent.parent / "scenarios" / "xiaohe", folder)
    (folder / "frigate.toml").write_text('[cameras.gate_east]\ncamera = "K0060"\nzones = { east = "lawn" }\n')
    out = run("scenario", "validate", str(folder))
    assert out.returncode == 2 and "frigate.toml: cameras.gate_east.zones.east" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--shift-offsets", "7-2"], "--shift-offsets: '7-2' is not hours"),
    (["--shift-offsets", "0,x"], "--shift-offsets: '0,x' is not hours"),
    (["--shift-offsets", "0,9"], "shift_offsets: [9] hour(s) out of range"),
    (["--min-per-shift", "night"], "--min-per-shift: 'night' is not SHIFT=N"),
    (["--min-per-shift", "dusk=2"], "min_per_shift: unknown shift(s) ['dusk']"),
])
def test_staff_refuses_bad_shift_options_in_one_line(args: list[str], message: str) -> None:
    out = subprocess.run([str(BIN), "staff", "--days", "1", "--backend", "local", *args],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
